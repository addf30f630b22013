//! The `redis` provider against the real server (`.ci/setup-redis`): what a user may and
//! may not do for each scope form, `deny`, beyond-scope findings, live connections cut
//! on revocation, the proof of death, classification of the server's own errors, and
//! unreachable servers.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use jit_test::{
    ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError, Scope,
    assert_denied, assert_unauthenticated, classify,
};
use jit_test_providers::redis::{RedisProvider, RedisSettings};
use redis::aio::MultiplexedConnection;
use redis::{IntoConnectionInfo, Value, cmd};

#[path = "support/redis.rs"]
mod support;
use support::{admin, provider};

fn request(scope: &str, deny: &str) -> GrantRequest {
    let permissions = |s: &str| -> Vec<Permission> {
        if s.is_empty() {
            Vec::new()
        } else {
            Scope::parse(s).unwrap().permissions
        }
    };
    GrantRequest {
        test: "redis_provider::test".into(),
        run_id: jit_test::Config::global().run_id.clone(),
        lease_id: format!("t{}_{}", jit_test::rand::hex(4), std::process::id()),
        permissions: permissions(scope),
        deny: permissions(deny),
        ttl: Duration::from_secs(60),
    }
}

async fn users(admin: &mut MultiplexedConnection) -> Vec<String> {
    cmd("ACL").arg("USERS").query_async(admin).await.unwrap()
}

async fn run(con: &mut MultiplexedConnection, argv: &[&str]) -> redis::RedisResult<Value> {
    cmd(argv[0]).arg(&argv[1..]).query_async(con).await
}

async fn grant(scope: &str) -> Granted<RedisProvider> {
    provider().grant(&request(scope, "")).await.unwrap()
}

#[tokio::test]
async fn each_scope_form_reaches_exactly_its_keys_channels_and_commands() {
    let granted = grant(
        "redis:read:jt_cache:*, redis:write:jt_cart:*, redis:readwrite:jt_session:*, \
         redis:command(get,set,expire):jt_kv:*, redis:category(stream):jt_jobs:*, \
         redis:publish:jt_events.*",
    )
    .await;
    let user = granted.credential.user().to_owned();
    assert!(user.starts_with("jit_e"), "{user}");
    let mut con = granted.credential.connect().await.unwrap();
    for allowed in [
        &["GET", "jt_cache:a"][..],
        &["OBJECT", "ENCODING", "jt_cache:none"],
        &["SET", "jt_cart:a", "1"],
        &["INCR", "jt_session:n"],
        &["SET", "jt_kv:a", "1"],
        &["EXPIRE", "jt_kv:a", "60"],
        &["XADD", "jt_jobs:1", "*", "a", "b"],
        &["PUBLISH", "jt_events.created", "x"],
        &["PING"],
        &["CLIENT", "SETNAME", "orders"],
    ] {
        run(&mut con, allowed)
            .await
            .unwrap_or_else(|e| panic!("{allowed:?}: {e}"));
    }
    for denied in [
        &["SET", "jt_cache:a", "1"][..],
        &["GET", "jt_cart:a"],
        &["INCR", "jt_cart:n"],
        &["DEL", "jt_kv:a"],
        &["GET", "jt_other"],
        &["XADD", "jt_cache:1", "*", "a", "b"],
        &["KEYS", "*"],
        &["SCAN", "0"],
        &["DBSIZE"],
        &["FLUSHALL"],
        &["CONFIG", "GET", "maxmemory"],
        &["PUBLISH", "jt_other", "x"],
        &["SELECT", "1"],
    ] {
        assert_denied!(run(&mut con, denied).await);
    }
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn a_bare_scope_can_only_connect() {
    let granted = grant("").await;
    let mut con = granted.credential.connect().await.unwrap();
    run(&mut con, &["PING"]).await.unwrap();
    run(&mut con, &["CLIENT", "SETNAME", "x"]).await.unwrap();
    for denied in [
        &["GET", "a"][..],
        &["SELECT", "0"],
        &["INFO"],
        &["CLIENT", "LIST"],
    ] {
        assert_denied!(run(&mut con, denied).await);
    }
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn commands_that_take_no_key_are_only_granted_by_name_on_star() {
    let refused = provider()
        .grant(&request("redis:command(get,flushall):jt_cache:*", ""))
        .await
        .err()
        .expect("a keyless command under a key pattern");
    let text = refused.to_string();
    assert!(text.contains("redis:command(flushall):*"), "{text}");
    let unknown = provider()
        .grant(&request("redis:command(gte):jt_cache:*", ""))
        .await
        .err()
        .expect("an unknown command");
    assert!(unknown.to_string().contains("`get`"), "{unknown}");

    let granted = grant("redis:command(dbsize):*").await;
    let mut con = granted.credential.connect().await.unwrap();
    run(&mut con, &["DBSIZE"]).await.unwrap();
    assert_denied!(run(&mut con, &["GET", "x"]).await);
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn a_denied_permission_the_user_would_hold_fails_the_grant_and_leaves_no_user() {
    let ok = provider()
        .grant(&request(
            "redis:read:jt_cache:*",
            "redis:write:jt_cache:*, redis:command(flushall):*",
        ))
        .await
        .unwrap();
    provider().revoke(&ok.lease).await.unwrap();

    let ask = request(
        "redis:readwrite:jt_cache:*",
        "redis:command(set):jt_cache:a*",
    );
    let error = provider()
        .grant(&ask)
        .await
        .err()
        .expect("deny overlaps the scope");
    assert!(
        error.to_string().contains("redis:command(set):jt_cache:a*"),
        "{error}"
    );
    let mut admin = admin().await;
    let left: Vec<String> = users(&mut admin)
        .await
        .into_iter()
        .filter(|u| u.ends_with(&ask.lease_id))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn users_without_a_password_are_reported_beyond_the_scope_and_strict_refuses() {
    let mut admin = admin().await;
    let default: Vec<Value> = cmd("ACL")
        .arg("GETUSER")
        .arg("default")
        .query_async(&mut admin)
        .await
        .unwrap();
    let flags = format!("{default:?}");
    let open = flags.contains("\"on\"") && flags.contains("\"nopass\"");
    let granted = grant("redis:read:jt_cache:*").await;
    let reported = granted
        .beyond_scope
        .iter()
        .any(|f| f.starts_with("redis:user(default)"));
    assert_eq!(reported, open, "{:?} / {flags}", granted.beyond_scope);
    assert_eq!(granted.beyond_scope, granted.credential.beyond_scope());
    // The user itself holds nothing beyond its scope.
    assert!(
        granted
            .beyond_scope
            .iter()
            .all(|f| f.starts_with("redis:user(")),
        "{:?}",
        granted.beyond_scope
    );
    provider().revoke(&granted.lease).await.unwrap();

    let mut settings = provider().settings().clone();
    settings.strict = true;
    let strict = RedisProvider::new(settings).unwrap();
    let result = strict.grant(&request("redis:read:jt_cache:*", "")).await;
    match (open, result) {
        (true, Err(ProviderError::Misconfigured(m))) => {
            assert!(
                m.contains("default") && m.contains("JIT_TEST_REDIS_URL"),
                "{m}"
            )
        }
        (false, Ok(g)) => strict.revoke(&g.lease).await.unwrap(),
        (open, other) => panic!("open={open}: {:?}", other.map(|g| g.principal)),
    }
}

#[tokio::test]
async fn revocation_cuts_live_connections_where_disabling_would_not() {
    // The server fact: `ACL SETUSER u off` leaves u's connections working.
    let mut admin = admin().await;
    let name = format!("jit_fact_{}", jit_test::rand::hex(4));
    cmd("ACL")
        .arg(&["SETUSER", &name, "on", ">fact-pass-1", "~jt_fact:*", "+get"][..])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let admin_info = provider().settings().admin.clone();
    let login = admin_info
        .redis_settings()
        .clone()
        .set_username(&name)
        .set_password("fact-pass-1");
    let info = admin_info.set_redis_settings(login);
    let mut disabled = redis::Client::open(info)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    cmd("ACL")
        .arg(&["SETUSER", &name, "off"][..])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    run(&mut disabled, &["GET", "jt_fact:a"])
        .await
        .expect("a disabled user's live connection keeps working");
    cmd("ACL")
        .arg("DELUSER")
        .arg(&name)
        .query_async::<()>(&mut admin)
        .await
        .unwrap();

    // The provider deletes the user, which closes its connection.
    let granted = grant("redis:read:jt_cache:*").await;
    let mut live = granted.credential.connect().await.unwrap();
    run(&mut live, &["GET", "jt_cache:a"]).await.unwrap();
    provider().revoke(&granted.lease).await.unwrap();
    let after = run(&mut live, &["GET", "jt_cache:a"])
        .await
        .expect_err("the live connection is cut");
    assert_eq!(classify(&after), ErrorClass::Other, "{after}");
    assert_unauthenticated!(granted.credential.connect().await);
    match provider().prove_dead(&granted.lease).await.unwrap() {
        Proof::Refused(code) => assert!(code.starts_with("WRONGPASS"), "{code}"),
        Proof::Accepted => panic!("the revoked password still works"),
    }
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn the_servers_own_errors_are_classified() {
    let granted = grant("redis:read:jt_cache:*, redis:subscribe:jt_events.*").await;
    let mut con = granted.credential.connect().await.unwrap();
    let noperm = run(&mut con, &["SET", "jt_cache:a", "1"])
        .await
        .unwrap_err();
    assert_eq!(classify(&noperm), ErrorClass::Denied);
    let channel = run(&mut con, &["PUBLISH", "jt_events.a", "x"])
        .await
        .unwrap_err();
    assert_eq!(classify(&channel), ErrorClass::Denied, "{channel}");
    // A raw AUTH with a wrong password: WRONGPASS.
    let wrongpass = run(
        &mut con,
        &["AUTH", granted.credential.user(), "not-the-password"],
    )
    .await
    .unwrap_err();
    assert_eq!(wrongpass.code(), Some("WRONGPASS"));
    assert_eq!(classify(&wrongpass), ErrorClass::Unauthenticated);
    // The client's own login failure.
    let info = granted.credential.connection_info().clone();
    let wrong = info.redis_settings().clone().set_password("wrong");
    let info = info.set_redis_settings(wrong);
    let login = redis::Client::open(info)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_err();
    assert_eq!(classify(&login), ErrorClass::Unauthenticated, "{login}");
    // NOAUTH, as a server with `requirepass` sends it to a connection that skipped AUTH.
    let noauth =
        redis::make_extension_error("NOAUTH".into(), Some("Authentication required.".into()));
    assert_eq!(classify(&noauth), ErrorClass::Unauthenticated);
    provider().revoke(&granted.lease).await.unwrap();
}

fn settings_for(port: u16) -> RedisSettings {
    let mut settings = provider().settings().clone();
    settings.admin = format!("redis://127.0.0.1:{port}")
        .into_connection_info()
        .unwrap();
    settings.connect_timeout = Duration::from_secs(1);
    settings
}

async fn expect_unreachable(port: u16) {
    let provider = RedisProvider::new(settings_for(port)).unwrap();
    let started = Instant::now();
    let error = provider
        .grant(&request("redis:read:a:*", ""))
        .await
        .err()
        .expect("unreachable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(matches!(error, ProviderError::Unreachable { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("JIT_TEST_REDIS_URL"), "{text}");
}

#[tokio::test]
async fn a_closed_port_fails_within_seconds_naming_the_address_and_setting() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    expect_unreachable(port).await;
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_seconds() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, never answering.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    expect_unreachable(port).await;
}

#[test]
fn validate_explains_rejections() {
    let check = |s: &str| RedisProvider::validate(&s.parse().unwrap());
    assert_eq!(check("redis:category(hash):jt_h:*"), Ok(()));
    assert!(
        check("redis:raed:a:*")
            .unwrap_err()
            .contains("redis:read:a:*")
    );
    assert!(check("redis:category(admin):*").is_err());
    // `?` and `[...]` never reach the provider: the scope grammar refuses them.
    assert!("redis:read:a?".parse::<Permission>().is_err());
    assert!("redis:read:a[bc]".parse::<Permission>().is_err());
}

#[tokio::test]
async fn the_password_never_reaches_the_server_in_clear() {
    let granted = grant("redis:read:jt_cache:*").await;
    let mut admin = admin().await;
    let rules: Vec<String> = cmd("ACL")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    let line = rules
        .iter()
        .find(|l| l.contains(granted.credential.user()))
        .unwrap();
    let password = support::password(&granted.credential.url());
    assert!(!line.contains(&password), "{line}");
    assert!(line.contains(" #"), "stored as a hash: {line}");
    assert!(!format!("{:?}", granted.credential).contains(&password));
    provider().revoke(&granted.lease).await.unwrap();
}
