//! A test process killed with SIGKILL while it holds a NATS user: the server still
//! accepts the user until its JWT's `exp` and refuses it after (server-side expiry is
//! the last line of defence), and the next reap records the crashed lease in the
//! killed process's audit log, which closes it there.
//!
//! The victim is this test binary itself, run again with `NATS_VICTIM_CREDS` set.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_test::{Secret, Test, assert_unauthenticated};
use jit_test_providers::nats::{NatsGrant, NatsProvider};

const VICTIM: &str = "nats_reap::killed_mid_test";
const TTL: Duration = Duration::from_secs(4);

/// The victim's body, when this binary runs as the victim: it writes its credential
/// where the killer reads it, says it is ready (a file), and waits to be killed. Otherwise it returns.
#[test]
fn victim_process() {
    let Some(creds_file) = std::env::var_os("NATS_VICTIM_CREDS") else {
        return; // run by the killer only
    };
    Test::new(VICTIM)
        .scope("nats:subscribe:reap.victim")
        .ttl(TTL)
        .run(move |(nats,): (NatsGrant,)| {
            let creds_file = creds_file.clone();
            async move {
                let _conn = nats.connect().await?;
                std::fs::write(&creds_file, nats.creds().expose())?;
                let ready = std::path::Path::new(&creds_file).with_extension("ready");
                std::fs::write(ready, nats.public_key())?;
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            }
        });
}

/// Runs the victim with its own audit log and credential file; returns the user's key.
fn start_victim(dir: &std::path::Path) -> (std::process::Child, String) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "victim_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NATS_VICTIM_CREDS", dir.join("creds"))
        .env("JIT_TEST_AUDIT_LOG", dir.join("audit.jsonl"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start the victim");
    let ready = dir.join("creds.ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    let user = loop {
        match std::fs::read_to_string(&ready) {
            Ok(user) if !user.is_empty() => break user,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => panic!("the victim did not get its credential within 60 s"),
        }
    };
    (child, user)
}

#[test]
fn a_test_killed_with_sigkill_leaves_a_user_the_server_expires_and_the_reaper_records() {
    if std::env::var_os("NATS_VICTIM_CREDS").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "jit-nats-reap-{}-{}",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    std::fs::create_dir(&dir).unwrap();
    let (mut child, user) = start_victim(&dir);
    let killed_at = Instant::now();
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no Drop, no unwind
    assert!(!child.wait().unwrap().success());
    let creds = Secret::new(std::fs::read_to_string(dir.join("creds")).unwrap());
    std::fs::remove_file(dir.join("creds")).unwrap();
    let audit_log = dir.join("audit.jsonl");
    let open = jit_test::audit::verify(&audit_log).unwrap();
    assert!(
        open.problems.iter().any(|p| p.finding
            == jit_test::audit::Finding::NeverRevoked {
                test: VICTIM.to_string(),
                principal: user.clone()
            }),
        "{:?}",
        open.problems
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = jit_test::provider::<NatsProvider>()
            .unwrap()
            .url()
            .to_owned();
        let login = || async {
            async_nats::ConnectOptions::with_credentials(creds.expose())
                .unwrap()
                .connect(url.as_str())
                .await
        };
        // Nobody revoked it: the server accepts it until its expiry...
        login()
            .await
            .expect("the crashed run's user still logs in before its expiry");
        tokio::time::sleep((TTL + Duration::from_millis(2100)).saturating_sub(killed_at.elapsed()))
            .await;
        // ...and refuses it after, by itself.
        assert_unauthenticated!(login().await);

        // The next reap records it in the victim's audit log.
        let mut settings = jit_test::Config::global().clone();
        settings.audit_log = audit_log.clone();
        let broker = jit_test::Broker::new(settings);
        let provider = jit_test::provider::<NatsProvider>().unwrap();
        let reaped = broker
            .reap(provider.as_ref(), Duration::ZERO)
            .await
            .unwrap();
        assert!(reaped.contains(&user), "{user} was not reaped: {reaped:?}");
    });
    let closed = jit_test::audit::verify(&audit_log).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}
