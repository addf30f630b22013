//! A test process killed with SIGKILL leaves its RabbitMQ user behind (RabbitMQ has no
//! expiry of its own: the password keeps working); once the lease's expiry has passed,
//! the reaper deletes it and records the reap in the killed process's audit log.
//!
//! The victim is this binary run again with `AMQP_REAP_VICTIM=<ttl seconds>`: it holds
//! an `amqp` credential and a live connection, writes the credential's URI to the file
//! named by `AMQP_REAP_SECRET_FILE` (mode 0600, never to the output), prints
//! `READY <user>` and waits to be killed. `harness = false`: `main` picks the role.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jit_test::{Broker, Config, Secret, assert_unauthenticated};
use jit_test_providers::amqp::{AmqpGrant, AmqpProvider};
use lapin::{Connection, ConnectionProperties};

const VICTIM: &str = "AMQP_REAP_VICTIM";
const SECRET_FILE: &str = "AMQP_REAP_SECRET_FILE";
const TEST: &str = "amqp_reap::killed_mid_test";

fn main() {
    match std::env::var(VICTIM) {
        Ok(ttl) => victim(ttl.parse().expect("ttl seconds")),
        Err(_) => {
            a_test_killed_with_sigkill_leaves_a_user_that_is_reaped_after_expiry();
            println!(
                "test a_test_killed_with_sigkill_leaves_a_user_that_is_reaped_after_expiry ... ok"
            );
        }
    }
}

fn victim(ttl: u64) {
    let secret_file = std::env::var_os(SECRET_FILE).expect(SECRET_FILE);
    jit_test::Test::new(TEST)
        .scope("amqp:read:/jit_p.orders.q")
        .ttl(Duration::from_secs(ttl))
        .timeout(Duration::from_secs(600))
        .run(move |(amqp,): (AmqpGrant,)| {
            let secret_file = secret_file.clone();
            async move {
                let connection = amqp.connect().await.expect("login");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&secret_file)
                    .expect("secret file");
                file.write_all(amqp.uri().expose().as_bytes())
                    .expect("write");
                drop(file);
                println!("READY {}", amqp.user());
                std::io::stdout().flush().expect("flush");
                tokio::time::sleep(Duration::from_secs(600)).await;
                drop(connection);
            }
        });
}

/// Starts the victim and returns it with the user it holds.
fn start_victim(dir: &Path, ttl: u64) -> (std::process::Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(VICTIM, ttl.to_string())
        .env(SECRET_FILE, dir.join("uri"))
        .env("JIT_TEST_AUDIT_LOG", dir.join("audit.jsonl"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(user) = line.strip_prefix("READY ") {
                let _ = tx.send(user.to_owned());
            }
        }
    });
    let user = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the victim holds its credential");
    (child, user)
}

fn a_test_killed_with_sigkill_leaves_a_user_that_is_reaped_after_expiry() {
    let dir = std::env::temp_dir().join(format!(
        "jit-amqp-reap-{}-{}",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    std::fs::create_dir(&dir).unwrap();
    let audit_log = dir.join("audit.jsonl");
    let (mut child, user) = start_victim(&dir, 4);
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no Drop, no unwind
    assert!(!child.wait().unwrap().success());
    let uri = Secret::new(std::fs::read_to_string(dir.join("uri")).unwrap());
    let open = jit_test::audit::verify(&audit_log).unwrap();
    let unclosed = jit_test::audit::Finding::NeverRevoked {
        test: TEST.to_string(),
        principal: user.clone(),
    };
    assert!(
        open.problems.iter().any(|p| p.finding == unclosed),
        "{:?}",
        open.problems
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let provider = jit_test::provider::<AmqpProvider>().unwrap();
        let meta = provider
            .lease_users()
            .await
            .unwrap()
            .into_iter()
            .find_map(|(name, meta)| (name == user).then_some(meta))
            .expect("the killed test left its user behind");
        // No expiry on the broker: until reaped, the password still logs in.
        let live = Connection::connect(uri.expose(), ConnectionProperties::default()).await;
        live.expect("the user works until reaped")
            .close(200, "ok".into())
            .await
            .unwrap();

        let mut settings = Config::global().clone();
        settings.audit_log = audit_log.clone();
        let broker = Broker::new(settings);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now + 1 < meta.expires_at {
            let early = broker
                .reap(provider.as_ref(), Duration::ZERO)
                .await
                .unwrap();
            assert!(!early.contains(&user), "reaped {user} before its expiry");
        }
        let expiry = UNIX_EPOCH + Duration::from_secs(meta.expires_at + 2);
        if let Ok(wait) = expiry.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
        // Another process may hold the reaper lock a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reaped = Vec::new();
        while !reaped.contains(&user) {
            assert!(Instant::now() < deadline, "{user} was not reaped");
            reaped.extend(
                broker
                    .reap(provider.as_ref(), Duration::ZERO)
                    .await
                    .unwrap(),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dead = Connection::connect(uri.expose(), ConnectionProperties::default()).await;
        assert_unauthenticated!(dead);
    });
    let closed = jit_test::audit::verify(&audit_log).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}
