//! A server that would not check passwords is refused, whether its pg_hba.conf says so
//! or its loaded configuration does. The test starts a PostgreSQL of its own from the
//! Debian binaries (initdb with `trust` for everyone, as many CI images do) on a free
//! loopback port, as the `postgres` user, and stops it by its PID.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jit_test::{Config, GrantRequest, Proof, Provider, ProviderError, Scope};
use jit_test_providers::postgres::{PgProvider, PgSettings};

/// The newest installed PostgreSQL's bin directory.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (.ci/setup-postgres)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb")
}

fn as_postgres(program: &Path, args: &[&str]) {
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .status()
        .expect("runuser");
    assert!(status.success(), "{} {args:?} failed", program.display());
}

/// A throwaway cluster; stopped (by the PID in its postmaster.pid) and removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Cluster {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("jit-hba-{}-{port}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        let cluster = Cluster { dir, port };
        let data = cluster.data();
        let bin = bin_dir();
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.dir.display()
        );
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                "/dev/null",
                "-w",
                "start",
            ],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn provider(&self, settings: &str) -> PgProvider {
        let mut config = Config::global().clone();
        config.providers = toml::from_str(&format!(
            "[pg]\nurl = \"host=127.0.0.1 port={} user=postgres dbname=postgres\"\n{settings}",
            self.port
        ))
        .unwrap();
        PgProvider::new(PgSettings::from_config(&config).unwrap())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        if let Ok(pid) = std::fs::read_to_string(data.join("postmaster.pid"))
            && let Some(pid) = pid.lines().next()
        {
            let _ = Command::new("kill").args(["-QUIT", pid.trim()]).status();
            for _ in 0..50 {
                if !data.join("postmaster.pid").exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn request() -> GrantRequest {
    request_with_ttl(30)
}

fn request_with_ttl(seconds: u64) -> GrantRequest {
    GrantRequest {
        test: "pg_hba::trust".into(),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("h{}_{}_0", jit_test::rand::hex(3), std::process::id()),
        permissions: Scope::parse("pg:usage:schema:public").unwrap().permissions,
        deny: Vec::new(),
        ttl: Duration::from_secs(seconds),
    }
}

#[test]
fn a_server_that_trusts_everyone_is_refused_with_the_line_to_add() {
    // The environment's admin URL would win over the cluster's.
    if std::env::var_os("JIT_TEST_PG_URL").is_some() || std::env::var_os("DATABASE_URL").is_some() {
        return;
    }
    // Starting a cluster as the postgres user needs root (as in CI).
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if String::from_utf8_lossy(&uid).trim() != "0" {
        eprintln!("skipped: starting a PostgreSQL cluster as user postgres needs root");
        return;
    }
    let cluster = Cluster::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let refused = cluster
            .provider("")
            .grant(&request())
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(refused, ProviderError::Misconfigured(_)),
            "{refused:?}"
        );
        let text = refused.to_string();
        assert!(text.contains("would not check the passwords"), "{text}");
        assert!(text.contains("pg_hba.conf"), "{text}");
        assert!(text.contains("`trust`"), "{text}");
        assert!(
            text.contains("host    all   +jit_lease   127.0.0.1/32   scram-sha-256"),
            "{text}"
        );
        assert!(text.contains("allow_trust"), "{text}");

        // Opted out: it runs, and the proof still sees a refusal once the role is gone.
        let trusting = cluster.provider("allow_trust = true");
        let granted = trusting.grant(&request()).await.expect("allowed");
        trusting.revoke(&granted.lease).await.unwrap();
        match trusting.prove_dead(&granted.lease).await.unwrap() {
            Proof::Refused(how) => assert!(how.contains("28000"), "{how}"),
            Proof::Accepted => panic!("accepted after revocation"),
        }

        // The file asks for passwords, but the server has not reloaded it: the rules pass,
        // the live check does not, and the role it tried is gone.
        let hba = cluster.data().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("host all +jit_lease 127.0.0.1/32 scram-sha-256\n{rules}"),
        )
        .unwrap();
        let stale = cluster.provider("");
        let request = request();
        let role = request.principal_name("jit_");
        let refused = stale.grant(&request).await.err().expect("refused");
        let text = refused.to_string();
        assert!(text.contains("logged in without any password"), "{text}");
        assert!(text.contains("pg_reload_conf()"), "{text}");
        let admin = stale.admin_client().await.unwrap();
        let left = admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .unwrap();
        assert!(left.is_none(), "{role} was left behind");

        // Reloaded, the same provider grants, and the expired-password path is live.
        admin
            .query_one("SELECT pg_reload_conf()", &[])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let granted = stale.grant(&request_with_ttl(1)).await.expect("granted");
        let login = granted.credential.connect().await;
        assert!(login.is_ok(), "the role logs in with its password");
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let Err(expired) = granted.credential.connect().await else {
            panic!("the role still logs in past its expiry");
        };
        assert_eq!(expired.code().map(|c| c.code()), Some("28P01"), "{expired}");
        stale.revoke(&granted.lease).await.unwrap();
    });
}
