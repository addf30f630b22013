//! The `redis` provider through the whole lifecycle on the real server: 200 concurrent
//! tests leave no user behind, and a test process killed with SIGKILL leaves a user that
//! the reaper removes once its expiry has passed, never before, recording it in the
//! killed process's audit log.
//!
//! The SIGKILL test runs this binary again as its victim: `victim_holds_a_credential_until_killed`
//! does its work only when `REDIS_VICTIM_SECRET_FILE` is set.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{Broker, Config, LeaseRequest, Scope, Secret, Test, assert_unauthenticated};
use jit_test_providers::redis::RedisGrant;
use redis::aio::MultiplexedConnection;
use redis::{IntoConnectionInfo, cmd};

#[path = "support/redis.rs"]
mod support;
use support::{admin, provider};

const CONCURRENT: usize = 200;
const VICTIM_VAR: &str = "REDIS_VICTIM_SECRET_FILE";
const VICTIM_SCOPE: &str = "redis:command(get,set):jt_victim:*";

async fn user_exists(admin: &mut MultiplexedConnection, user: &str) -> bool {
    let users: Vec<String> = cmd("ACL").arg("USERS").query_async(admin).await.unwrap();
    users.iter().any(|u| u == user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_lifecycles_leave_no_user() {
    let broker = Arc::new(Broker::new(Config::global().clone()));
    let permissions = Scope::parse("redis:command(get,set,del):jt_many:*")
        .unwrap()
        .permissions;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CONCURRENT {
        let (broker, permissions) = (Arc::clone(&broker), permissions.clone());
        tasks.spawn(async move { lifecycle(&broker, permissions, n).await });
    }
    let mut principals = Vec::new();
    while let Some(result) = tasks.join_next().await {
        principals.push(result.unwrap().expect("a lifecycle failed"));
    }
    principals.sort();
    principals.dedup();
    assert_eq!(principals.len(), CONCURRENT, "principals collided");
    let mut admin = admin().await;
    let users: Vec<String> = cmd("ACL")
        .arg("USERS")
        .query_async(&mut admin)
        .await
        .unwrap();
    let left: Vec<&String> = users.iter().filter(|u| principals.contains(u)).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Acquire, use, release, prove dead: returns the principal.
async fn lifecycle(
    broker: &Broker,
    permissions: Vec<jit_test::Permission>,
    n: usize,
) -> Result<String, String> {
    let ask = LeaseRequest::new(
        format!("redis_lifecycle::many{n}"),
        permissions,
        Duration::from_secs(120),
    );
    let lease = broker
        .acquire(&provider(), ask)
        .await
        .map_err(|e| e.to_string())?;
    let principal = lease.info().principal.clone();
    let redis = lease.credential().expect("not taken");
    let mut con = redis.connect().await.map_err(|e| e.to_string())?;
    let key = format!("jt_many:{n}");
    let set = cmd("SET")
        .arg(&key)
        .arg(n)
        .query_async::<()>(&mut con)
        .await;
    let del = cmd("DEL").arg(&key).query_async::<()>(&mut con).await;
    set.and(del).map_err(|e| e.to_string())?;
    let released = lease.release().await.map_err(|e| e.to_string())?;
    assert!(!released.expired_during_test);
    Ok(principal)
}

/// The victim of the SIGKILL test (a no-op unless that test started this process): holds
/// a credential and a live connection, writes the credential's URL to the secret file
/// (mode 0600, never to the output), prints `READY <user>` and waits to be killed.
#[test]
fn victim_holds_a_credential_until_killed() {
    let Some(secret_file) = std::env::var_os(VICTIM_VAR) else {
        return;
    };
    Test::new("redis_victim::killed_mid_test")
        .scope(VICTIM_SCOPE)
        .ttl(Duration::from_secs(4))
        .timeout(Duration::from_secs(600))
        .run(move |(redis,): (RedisGrant,)| {
            let secret_file = secret_file.clone();
            async move {
                let mut con = redis.connect().await.expect("login");
                cmd("SET")
                    .arg("jt_victim:a")
                    .arg("1")
                    .query_async::<()>(&mut con)
                    .await
                    .expect("set");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&secret_file)
                    .expect("secret file");
                file.write_all(redis.url().expose().as_bytes())
                    .expect("write");
                drop(file);
                println!("READY {}", redis.user());
                std::io::stdout().flush().expect("flush");
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
}

#[test]
fn a_test_killed_with_sigkill_leaves_a_user_that_is_reaped_after_its_expiry() {
    let dir = std::env::temp_dir().join(format!(
        "jit-redis-{}-{}",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    std::fs::create_dir(&dir).unwrap();
    let secret_file = dir.join("url");
    let audit_log = dir.join("audit.jsonl");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "victim_holds_a_credential_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(VICTIM_VAR, &secret_file)
        .env("JIT_TEST_AUDIT_LOG", &audit_log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints `test <name> ... ` first, on the same line.
            if let Some((_, user)) = line.split_once("READY ") {
                let _ = tx.send(user.trim().to_owned());
            }
        }
    });
    let user = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the victim holds its credential");
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no Drop, no unwind
    assert!(!child.wait().unwrap().success());
    let url = Secret::new(std::fs::read_to_string(&secret_file).unwrap());
    let open = jit_test::audit::verify(&audit_log).unwrap();
    assert!(
        open.problems.iter().any(|p| p.finding
            == jit_test::audit::Finding::NeverRevoked {
                test: "redis_victim::killed_mid_test".to_string(),
                principal: user.clone()
            }),
        "{:?}",
        open.problems
    );
    let audit_text = std::fs::read_to_string(&audit_log).unwrap();
    let password = support::password(&url);
    assert!(
        !audit_text.contains(&password),
        "the audit log holds the password"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut admin = admin().await;
        let mut settings = Config::global().clone();
        settings.audit_log = audit_log.clone();
        let broker = Broker::new(settings);
        // Before its expiry the user is a live lease: no reaper may touch it. Redis has no
        // expiry of its own, so the password still works until the reaper runs.
        let early = broker
            .reap(provider().as_ref(), Duration::ZERO)
            .await
            .unwrap();
        assert!(!early.contains(&user), "reaped a live lease: {early:?}");
        assert!(user_exists(&mut admin, &user).await);
        let info = url.expose().into_connection_info().unwrap();
        redis::Client::open(info.clone())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();

        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reaped = Vec::new();
        while user_exists(&mut admin, &user).await {
            assert!(Instant::now() < deadline, "{user} was not reaped");
            tokio::time::sleep(Duration::from_millis(250)).await;
            reaped.extend(
                broker
                    .reap(provider().as_ref(), Duration::ZERO)
                    .await
                    .unwrap(),
            );
        }
        assert!(
            reaped.contains(&user),
            "another process reaped {user}: {reaped:?}"
        );
        let client = redis::Client::open(info).unwrap();
        assert_unauthenticated!(client.get_multiplexed_async_connection().await);
    });
    let closed = jit_test::audit::verify(&audit_log).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}
