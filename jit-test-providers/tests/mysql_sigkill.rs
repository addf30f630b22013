//! A test process killed with SIGKILL mid-test: no `Drop`, no watchdog, no jit-test
//! process holds the lease any more. The server's own event drops the user at the ttl,
//! a login with the old password is refused, and the reaper then clears the lease's
//! event and records the reap in the killed process's audit log.
//!
//! The victim is this test binary itself, re-executed with `MYSQL_VICTIM_DIR` set.

mod mysql_support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_test::{Provider as _, Secret, assert_unauthenticated};
use jit_test_providers::mysql::{MysqlGrant, MysqlProvider, MysqlSettings, REAPER_LOCK};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use mysql_support::{event_exists, gone, user_exists};

const TEST: &str = "a_test_killed_with_sigkill_loses_its_user_to_the_servers_event_at_the_ttl";
const TTL: Duration = Duration::from_secs(4);

#[test]
fn a_test_killed_with_sigkill_loses_its_user_to_the_servers_event_at_the_ttl() {
    match std::env::var_os("MYSQL_VICTIM_DIR") {
        Some(dir) => victim(Path::new(&dir)),
        None => killer(),
    }
}

/// Holds a credential and a live session, tells the killer, and waits to be killed.
fn victim(dir: &Path) {
    let secret_file = dir.join("url");
    jit_test::Test::new("mysql_sigkill::victim")
        .scope("mysql:select:jit_my.items")
        .ttl(TTL)
        .timeout(Duration::from_secs(600))
        .run(move |(db,): (MysqlGrant,)| {
            let secret_file = secret_file.clone();
            async move {
                let mut conn = db.connect().await.expect("login");
                conn.query_drop("SELECT * FROM items")
                    .await
                    .expect("select");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&secret_file)
                    .expect("secret file");
                file.write_all(db.url().expose().as_bytes()).expect("write");
                drop(file);
                println!("READY {}", db.user());
                std::io::stdout().flush().expect("flush");
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
}

fn killer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    drop(rt.block_on(mysql_support::admin()));
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "jit-mysql-kill-{}-{}",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    std::fs::create_dir(&dir).unwrap();
    let audit_log = dir.join("audit.jsonl");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("MYSQL_VICTIM_DIR", &dir)
        .env("JIT_TEST_AUDIT_LOG", &audit_log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest's "test ... " may stand before it on the same line.
            if let Some((_, user)) = line.split_once("READY ") {
                let _ = tx.send((user.trim().to_owned(), Instant::now()));
            }
        }
    });
    let (user, ready) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the victim holds its credential");
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no Drop, no unwind
    assert!(!child.wait().unwrap().success());
    let url = Secret::new(std::fs::read_to_string(dir.join("url")).unwrap());
    let open = jit_test::audit::verify(&audit_log).unwrap();
    assert!(
        open.problems.iter().any(|p| p.finding
            == jit_test::audit::Finding::NeverRevoked {
                test: "mysql_sigkill::victim".to_string(),
                principal: user.clone()
            }),
        "{:?}",
        open.problems
    );

    rt.block_on(async {
        // Plain admin connection: no provider, broker or watchdog of this process is
        // involved until the user is gone.
        let settings = MysqlSettings::from_config(jit_test::Config::global()).unwrap();
        let mut admin = Conn::new(settings.admin.clone()).await.unwrap();
        // No reaper anywhere may touch the lease while the server's expiry is watched.
        let locked: Option<i64> = admin
            .exec_first("SELECT GET_LOCK(?, 30)", (REAPER_LOCK,))
            .await
            .unwrap();
        assert_eq!(locked, Some(1));
        assert!(user_exists(&mut admin, &user).await, "nobody revoked it");
        let login = mysql_async::Opts::from_url(url.expose()).unwrap();
        Conn::new(login.clone())
            .await
            .expect("the credential still works before the ttl")
            .disconnect()
            .await
            .unwrap();
        while user_exists(&mut admin, &user).await {
            assert!(
                ready.elapsed() < TTL + Duration::from_secs(3),
                "the server did not drop {user}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dropped_after = ready.elapsed();
        assert!(
            dropped_after <= TTL + Duration::from_millis(1500),
            "{dropped_after:?}"
        );
        let refused = assert_unauthenticated!(Conn::new(login).await);
        assert!(gone(&refused.to_string()), "{refused}");
        assert!(
            event_exists(&mut admin, &user).await,
            "the event stays for the reaper"
        );
        admin
            .exec_drop("DO RELEASE_LOCK(?)", (REAPER_LOCK,))
            .await
            .unwrap();

        // The reaper clears the ended lease and records it in the victim's audit log,
        // which closes the lease there.
        let mut config = jit_test::Config::global().clone();
        config.audit_log = audit_log.clone();
        let broker = jit_test::Broker::new(config.clone());
        let provider = MysqlProvider::from_config(&config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reaped = Vec::new();
        while event_exists(&mut admin, &user).await {
            assert!(Instant::now() < deadline, "{user} was not reaped");
            reaped.extend(broker.reap(&provider, Duration::ZERO).await.unwrap());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            reaped.contains(&user),
            "another process reaped {user}: {reaped:?}"
        );
    });
    let closed = jit_test::audit::verify(&audit_log).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}
