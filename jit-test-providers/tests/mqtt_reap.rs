//! A test process killed with SIGKILL leaves its Mosquitto client behind; the reaper
//! leaves it alone until its lease has expired, then removes it and records that in the
//! killed process's audit log. The test runs this binary again as the victim.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_test::{Secret, Test, assert_unauthenticated};
use jit_test_providers::mqtt::{LOCK_TTL, MqttGrant, MqttProvider, REAPER_LOCK};
use serde_json::json;

/// Set in the victim: the file its password goes to (mode 0600, never the output).
const VICTIM_VAR: &str = "JIT_TEST_MQTT_VICTIM_SECRET";
const TEST: &str = "a_test_killed_with_sigkill_leaves_a_client_that_is_reaped";
const TTL_SECS: u64 = 4;

/// The victim: holds a credential and a live session, says so, waits to be killed.
fn victim(secret_file: std::ffi::OsString) {
    Test::new("mqtt_reap::killed_mid_test")
        .scope("mqtt:subscribe:jit_reap/+/commands")
        .ttl(Duration::from_secs(TTL_SECS))
        .timeout(Duration::from_secs(600))
        .run(move |(mqtt,): (MqttGrant,)| {
            let secret_file = secret_file.clone();
            async move {
                let mut session = mqtt.connect().await.expect("login");
                session
                    .subscribe("jit_reap/d1/commands")
                    .await
                    .expect("subscribe");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&secret_file)
                    .expect("secret file");
                file.write_all(mqtt.password().expose().as_bytes())
                    .expect("write");
                drop(file);
                println!("READY {}", mqtt.username());
                std::io::stdout().flush().expect("flush");
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
}

/// Takes the reapers' lock as a reaper does; false if another holds it.
async fn take_lock(provider: &MqttProvider) -> bool {
    let until = jit_test::unix_seconds(std::time::SystemTime::now() + LOCK_TTL);
    let replies = provider
        .control(vec![json!({
            "command": "createRole",
            "rolename": REAPER_LOCK,
            "textdescription": json!({ "expires_at": until }).to_string(),
        })])
        .await
        .unwrap();
    replies[0]["error"].is_null()
}

async fn client_exists(provider: &MqttProvider, name: &str) -> bool {
    let replies = provider
        .control(vec![json!({ "command": "getClient", "username": name })])
        .await
        .unwrap();
    replies[0]["error"].is_null()
}

#[test]
fn a_test_killed_with_sigkill_leaves_a_client_that_is_reaped() {
    if let Some(secret_file) = std::env::var_os(VICTIM_VAR) {
        return victim(secret_file);
    }
    let dir = std::env::temp_dir().join(format!(
        "jit-mqtt-reap-{}-{}",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    std::fs::create_dir(&dir).unwrap();
    let secret_file = dir.join("password");
    let audit_log = dir.join("audit.jsonl");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(VICTIM_VAR, &secret_file)
        .env("JIT_TEST_AUDIT_LOG", &audit_log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints the test's name on the same line.
            if let Some((_, name)) = line.split_once("READY ") {
                let _ = tx.send(name.trim().to_owned());
            }
        }
    });
    let name = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the victim holds its credential");
    let killed_at = Instant::now();
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no Drop, no unwind
    assert!(!child.wait().unwrap().success());
    let password = Secret::new(std::fs::read_to_string(&secret_file).unwrap());
    std::fs::remove_file(&secret_file).unwrap();
    let open = jit_test::audit::verify(&audit_log).unwrap();
    assert!(
        open.problems.iter().any(|p| p.finding
            == jit_test::audit::Finding::NeverRevoked {
                test: "mqtt_reap::killed_mid_test".to_string(),
                principal: name.clone()
            }),
        "{:?}",
        open.problems
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let provider = jit_test::provider::<MqttProvider>().unwrap();
        let mut settings = jit_test::Config::global().clone();
        settings.audit_log = audit_log.clone();
        let broker = jit_test::Broker::new(settings);
        // Its lease has not expired: no reaper may take it, and it still logs in.
        let early = broker
            .reap(provider.as_ref(), Duration::ZERO)
            .await
            .unwrap();
        assert!(!early.contains(&name), "reaped a lease before its expiry");
        assert!(client_exists(&provider, &name).await);

        // No other process's reaper may take it while it expires: hold the lock.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !take_lock(&provider).await {
            assert!(
                Instant::now() < deadline,
                "another reaper holds {REAPER_LOCK}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let expired = Duration::from_secs(TTL_SECS + 1).saturating_sub(killed_at.elapsed());
        tokio::time::sleep(expired).await;
        assert!(
            client_exists(&provider, &name).await,
            "reaped under the lock"
        );
        provider
            .control(vec![
                json!({ "command": "deleteRole", "rolename": REAPER_LOCK }),
            ])
            .await
            .unwrap();

        // Past expiry the next reap removes it (another process may hold the lock a while).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reaped = Vec::new();
        while client_exists(&provider, &name).await {
            assert!(Instant::now() < deadline, "{name} was not reaped");
            reaped.extend(
                broker
                    .reap(provider.as_ref(), Duration::ZERO)
                    .await
                    .unwrap(),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            reaped.contains(&name),
            "another process reaped {name}: {reaped:?}"
        );

        // The old password is refused.
        let settings = provider.settings();
        let mut options = jit_test_providers::mqtt::rumqttc::v5::MqttOptions::new(
            "jit-reap-proof",
            &settings.host,
            settings.port,
        );
        options.set_credentials(name.as_str(), password.expose());
        let (_client, mut events) =
            jit_test_providers::mqtt::rumqttc::v5::AsyncClient::new(options, 8);
        let refused = loop {
            if let Err(e) = events.poll().await {
                break e;
            }
        };
        assert_unauthenticated!(Err::<(), _>(refused));
    });
    let closed = jit_test::audit::verify(&audit_log).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}
