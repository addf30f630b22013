//! The `mqtt` provider against the real Mosquitto broker with dynamic security
//! (`.ci/setup-mqtt` first).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{
    Config, ErrorClass, GrantRequest, Permission, Proof, Provider, ProviderError, Scope,
    assert_denied, assert_unauthenticated,
};
use jit_test_providers::mqtt::{
    ADMINISTRATIVE_ACTION, MqttError, MqttGrant, MqttProvider, MqttSettings, REAPER_LOCK, URL_VAR,
    rumqttc,
};
use serde_json::{Value, json};

fn provider() -> Arc<MqttProvider> {
    jit_test::provider::<MqttProvider>().expect("the mqtt provider builds from the configuration")
}

fn request(test: &str, scope: &str, deny: &str) -> GrantRequest {
    let parse = |s: &str| -> Vec<Permission> {
        if s.is_empty() {
            Vec::new()
        } else {
            Scope::parse(s).unwrap().permissions
        }
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    GrantRequest {
        test: format!("mqtt_provider::{test}"),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("mt{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: parse(scope),
        deny: parse(deny),
        ttl: Duration::from_secs(60),
    }
}

/// The plugin's answer to one command.
async fn control(command: Value) -> Value {
    let mut replies = provider().control(vec![command]).await.unwrap();
    replies.remove(0)
}

async fn client_exists(name: &str) -> bool {
    let reply = control(json!({ "command": "getClient", "username": name })).await;
    reply["error"].is_null()
}

fn broken_provider(url: &str) -> MqttProvider {
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!(
        "[mqtt]\nurl = \"{url}\"\nconnect_timeout = \"2s\""
    ))
    .unwrap();
    MqttProvider::new(MqttSettings::from_config(&config).unwrap())
}

#[tokio::test]
async fn a_client_gets_exactly_its_topics() {
    let provider = provider();
    let device = provider
        .grant(&request(
            "device",
            "mqtt:publish:jit_pt/d1/telemetry, mqtt:subscribe:jit_pt/d1/commands",
            "",
        ))
        .await
        .unwrap();
    let service = provider
        .grant(&request(
            "service",
            "mqtt:publish:jit_pt/+/commands, mqtt:subscribe:jit_pt/+/telemetry",
            "",
        ))
        .await
        .unwrap();
    assert!(device.beyond_scope.is_empty(), "{:?}", device.beyond_scope);

    let mut d = device.credential.connect().await.unwrap();
    let mut s = service.credential.connect().await.unwrap();
    d.subscribe("jit_pt/d1/commands").await.unwrap();
    s.subscribe("jit_pt/+/telemetry").await.unwrap();
    s.publish("jit_pt/d1/commands", "ship").await.unwrap();
    d.publish("jit_pt/d1/telemetry", "21.5").await.unwrap();
    let command = d.recv(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (command.topic.as_str(), &command.payload[..]),
        ("jit_pt/d1/commands", &b"ship"[..])
    );
    let telemetry = s.recv(Duration::from_secs(5)).await.unwrap();
    assert_eq!(telemetry.topic, "jit_pt/d1/telemetry");

    // Another device's topics, wider filters and the other direction are refused.
    let e = assert_denied!(d.publish("jit_pt/d2/telemetry", "0").await);
    assert!(e.to_string().contains("PUBACK reason 0x87"), "{e}");
    assert_denied!(d.publish("jit_pt/d1/commands", "0").await);
    let e = assert_denied!(d.subscribe("jit_pt/#").await);
    assert!(e.to_string().contains("SUBACK reason 0x87"), "{e}");
    assert_denied!(d.subscribe("jit_pt/d2/commands").await);
    assert_denied!(s.subscribe("jit_pt/+/commands").await);
    // Still connected after the denials.
    d.publish("jit_pt/d1/telemetry", "22").await.unwrap();

    for granted in [device, service] {
        provider.revoke(&granted.lease).await.unwrap();
    }
}

#[tokio::test]
async fn the_role_holds_the_scope_and_the_lease_metadata() {
    let provider = provider();
    // Resource characters the grammar allows reach the broker unchanged.
    let topic = "jit_pt/a:b@c=d-e.f/+/#";
    let granted = provider
        .grant(&request("metadata", &format!("mqtt:publish:{topic}"), ""))
        .await
        .unwrap();
    let role = control(json!({ "command": "getRole", "rolename": granted.principal })).await;
    let acls = role["data"]["role"]["acls"].as_array().unwrap().clone();
    let allowed: Vec<(&str, &str)> = acls
        .iter()
        .filter(|a| a["allow"] == true)
        .map(|a| (a["acltype"].as_str().unwrap(), a["topic"].as_str().unwrap()))
        .collect();
    assert_eq!(allowed, [("publishClientSend", topic)]);
    assert_eq!(acls.iter().filter(|a| a["allow"] == false).count(), 4);
    let client = control(json!({ "command": "getClient", "username": granted.principal })).await;
    let meta: jit_test::LeaseMeta = serde_json::from_str(
        client["data"]["client"]["textdescription"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta.pid, std::process::id());
    assert_eq!(meta.test, "mqtt_provider::metadata");
    provider.revoke(&granted.lease).await.unwrap();
    assert!(!client_exists(&granted.principal).await);
}

#[tokio::test]
async fn a_denied_permission_the_scope_covers_fails_the_grant() {
    let e = provider()
        .grant(&request(
            "deny",
            "mqtt:publish:jit_pt/#",
            "mqtt:publish:jit_pt/d1/telemetry",
        ))
        .await
        .err()
        .expect("the grant must fail");
    assert!(matches!(e, ProviderError::InvalidPermission { .. }), "{e}");
    assert!(e.to_string().contains("mqtt:publish:jit_pt/#"), "{e}");
    // A deny outside the scope is fine.
    let granted = provider()
        .grant(&request(
            "deny_ok",
            "mqtt:publish:jit_pt/d1/telemetry",
            "mqtt:subscribe:jit_pt/#",
        ))
        .await
        .unwrap();
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn revoking_cuts_a_live_session_and_the_password_is_refused() {
    let provider = provider();
    let granted = provider
        .grant(&request("kick", "mqtt:subscribe:jit_pt/kick", ""))
        .await
        .unwrap();
    let mut session = granted.credential.connect().await.unwrap();
    session.subscribe("jit_pt/kick").await.unwrap();
    assert_eq!(session.closed(Duration::from_millis(200)).await, None);

    provider.revoke(&granted.lease).await.unwrap();
    // Mosquitto sends DISCONNECT 0x98 and closes the socket; rumqttc 0.25 cannot read
    // that three-byte DISCONNECT and reports the close.
    let closed = session.closed(Duration::from_secs(5)).await;
    assert!(
        matches!(
            closed,
            Some(
                MqttError::Closed { .. }
                    | MqttError::Disconnected {
                        code: ADMINISTRATIVE_ACTION
                    }
            )
        ),
        "{closed:?}"
    );
    // The cut session stays dead: every later call reports how it ended.
    let e = session.publish("jit_pt/kick", "x").await.unwrap_err();
    assert_eq!(jit_test::classify(&e), ErrorClass::Other);

    provider.revoke(&granted.lease).await.unwrap(); // idempotent
    match provider.prove_dead(&granted.lease).await.unwrap() {
        Proof::Refused(how) => assert!(how.starts_with("CONNACK 0x8"), "{how}"),
        Proof::Accepted => panic!("the broker still accepts the revoked password"),
    }
    assert_unauthenticated!(granted.credential.connect().await);
}

#[tokio::test]
async fn rumqttc_errors_of_the_real_broker_are_classified() {
    let provider = provider();
    let granted = provider
        .grant(&request("classify", "mqtt:publish:jit_pt/c", ""))
        .await
        .unwrap();
    let grant: &MqttGrant = &granted.credential;
    // A client of the user's own making, with a wrong password.
    let mut options = rumqttc::v5::MqttOptions::new("jit-pt-classify", grant.host(), grant.port());
    options.set_credentials(grant.username(), "wrong");
    let (_client, mut events) = rumqttc::v5::AsyncClient::new(options, 8);
    let error = loop {
        match events.poll().await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(
        jit_test::classify(&error),
        ErrorClass::Unauthenticated,
        "{error}"
    );
    provider.revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_fails_within_seconds_naming_the_address_and_the_setting() {
    // A closed port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A listener that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for port in [port, silent_port] {
        let provider = broken_provider(&format!("mqtt://a:b@127.0.0.1:{port}"));
        let started = Instant::now();
        let e = provider
            .grant(&request("unreachable", "mqtt:publish:x", ""))
            .await;
        let e = e.err().expect("no broker there");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let text = e.to_string();
        assert!(matches!(e, ProviderError::Unreachable { .. }), "{text}");
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains(URL_VAR),
            "{text}"
        );
    }
    drop(silent);
}

/// A Mosquitto of its own on a free loopback port, from the Debian binary, stopped by
/// PID when dropped.
struct OwnBroker {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnBroker {
    /// Starts one with `config` (after its listener line) in directory `dir`, which
    /// becomes the user `mosquitto`'s: the broker drops to it.
    fn start(name: &str, config: impl FnOnce(&std::path::Path) -> String) -> OwnBroker {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("jit-mqtt-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        let rest = config(&dir);
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{rest}")).unwrap();
        let owned = std::process::Command::new("chown")
            .args(["-R", "mosquitto:mosquitto"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(owned.success(), "chown {}", dir.display());
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto) starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnBroker { child, port, dir }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn default_acl_access_that_allows_is_reported_and_fails_strict_grants() {
    // `mosquitto_ctrl dynsec init` leaves publishClientReceive and unsubscribe allowed
    // by default (.ci/setup-mqtt denies them).
    let password = jit_test::rand::hex(12);
    let broker = OwnBroker::start("defaults", |dir| {
        let state = dir.join("dynsec.json");
        let made = std::process::Command::new("mosquitto_ctrl")
            .args(["dynsec", "init"])
            .arg(&state)
            .args(["admin", password.as_str()])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(made.success());
        format!(
            "allow_anonymous false\nplugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n\
             plugin_opt_config_file {}\n",
            state.display()
        )
    });
    let url = format!("mqtt://admin:{password}@127.0.0.1:{}", broker.port);
    let provider = broken_provider(&url);
    let granted = provider
        .grant(&request("defaults", "mqtt:subscribe:jit_pt/x", ""))
        .await
        .unwrap();
    let reported = granted.credential.beyond_scope().join("\n");
    assert!(
        reported.contains("publishClientReceive") && reported.contains("unsubscribe"),
        "{reported}"
    );
    assert!(!reported.contains("publishClientSend"), "{reported}");
    // The role's deny of `#` still holds ordinary topics to the scope.
    let mut session = granted.credential.connect().await.unwrap();
    assert_denied!(session.subscribe("jit_pt/y").await);
    provider.revoke(&granted.lease).await.unwrap();

    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[mqtt]\nurl = \"{url}\"\nstrict = true")).unwrap();
    let strict = MqttProvider::from_config(&config).unwrap();
    let e = strict
        .grant(&request("strict", "mqtt:subscribe:jit_pt/x", ""))
        .await
        .err()
        .expect("strict refuses a client that could do more");
    assert!(e.to_string().contains("defaultACLAccess"), "{e}");
}

#[tokio::test]
async fn a_broker_that_lets_anyone_in_is_refused_with_the_fix() {
    let open = OwnBroker::start("open", |_| "allow_anonymous true\n".into());
    let provider = broken_provider(&format!("mqtt://nobody:nothing@127.0.0.1:{}", open.port));
    let e = provider
        .grant(&request("anonymous", "mqtt:publish:x", ""))
        .await
        .err()
        .expect("no grant on an open broker");
    let text = e.to_string();
    assert!(
        matches!(e, ProviderError::Misconfigured(_)) && text.contains("allow_anonymous false"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_admin_password_names_the_setting() {
    let settings = provider().settings().clone();
    let provider = broken_provider(&format!(
        "mqtt://{}:wrong@{}",
        settings.username,
        settings.address()
    ));
    let e = provider
        .grant(&request("admin", "mqtt:publish:x", ""))
        .await
        .err()
        .expect("the admin login is refused");
    let text = e.to_string();
    assert!(
        text.contains("refused the admin client") && text.contains(URL_VAR),
        "{text}"
    );
    assert!(!text.contains("wrong@"), "{text}");
}

#[tokio::test]
async fn a_reaper_waits_for_the_lock_and_breaks_a_stale_one() {
    let provider = provider();
    // An expired lease of this test, and a lock held by a live reaper elsewhere.
    let mut ask = request("reaped", "mqtt:publish:jit_pt/r", "");
    ask.ttl = Duration::ZERO;
    let granted = provider.grant(&ask).await.unwrap();
    let lock = |expires_at: u64| {
        json!({ "command": "createRole", "rolename": REAPER_LOCK,
                "textdescription": json!({ "expires_at": expires_at }).to_string() })
    };
    let now = jit_test::unix_seconds(std::time::SystemTime::now());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !control(lock(now + 60)).await["error"].is_null() {
        assert!(Instant::now() < deadline, "another reaper holds the lock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // expiry in whole seconds
    assert_eq!(
        provider.reap(Duration::ZERO).await.unwrap(),
        Vec::<String>::new()
    );
    assert!(
        client_exists(&granted.principal).await,
        "reaped under another's lock"
    );

    // A lock whose holder died is removed by the next reaper, then the one after reaps.
    control(json!({ "command": "deleteRole", "rolename": REAPER_LOCK })).await;
    control(lock(now - 1)).await;
    assert_eq!(
        provider.reap(Duration::ZERO).await.unwrap(),
        Vec::<String>::new()
    );
    let reaped = provider.reap(Duration::ZERO).await.unwrap();
    assert!(reaped.contains(&granted.principal), "{reaped:?}");
    assert!(!client_exists(&granted.principal).await);
}
