//! The `nats` provider against the operator-mode server `.ci/setup-nats` starts.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use jit_test::{
    Config, ErrorClass, GrantRequest, Permission, Proof, Provider, ProviderError, Scope,
    assert_denied, assert_unauthenticated, classify,
};
use jit_test_providers::nats::{NatsGrant, NatsProvider};

fn provider() -> Arc<NatsProvider> {
    jit_test::provider::<NatsProvider>().expect("the nats provider builds from the configuration")
}

fn provider_with(settings: &str) -> NatsProvider {
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[nats]\n{settings}")).unwrap();
    NatsProvider::from_config(&config).unwrap()
}

fn request(test: &str, scope: &str, deny: &str, ttl: Duration) -> GrantRequest {
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
        test: format!("nats_provider::{test}"),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("nt{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: parse(scope),
        deny: parse(deny),
        ttl,
    }
}

/// A subject of this test alone.
fn subject(base: &str) -> String {
    format!("{base}.{}", jit_test::rand::hex(4))
}

#[tokio::test]
async fn a_user_publishes_and_subscribes_exactly_its_subjects() {
    let p = provider();
    let placed = subject("orders.placed");
    let scope = format!("nats:publish:{placed}, nats:subscribe:{placed}");
    let granted = p
        .grant(&request("exact", &scope, "", Duration::from_secs(60)))
        .await
        .unwrap();
    let conn = granted.credential.connect().await.unwrap();

    let mut sub = conn.subscribe(&placed).await.unwrap();
    conn.publish(&placed, "a1").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"a1");

    let denied = assert_denied!(conn.publish("billing.refund", "a1").await);
    assert!(
        denied
            .to_string()
            .contains("Permissions Violation for Publish"),
        "{denied}"
    );
    let denied = assert_denied!(conn.subscribe("orders.>").await);
    assert!(
        denied
            .to_string()
            .contains("Permissions Violation for Subscription"),
        "{denied}"
    );
    // A denial leaves the connection open.
    conn.publish(&placed, "a2").await.unwrap();

    p.revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn request_and_respond_pair_through_the_own_inbox_only() {
    let p = provider();
    let charge = subject("billing.charge");
    let scope_requester = format!("nats:request:{charge}");
    let scope_responder = format!("nats:respond:{charge}");
    let requester = p
        .grant(&request(
            "req",
            &scope_requester,
            "",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    let responder = p
        .grant(&request(
            "resp",
            &scope_responder,
            "",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    let server = responder.credential.connect().await.unwrap();
    let client = requester.credential.connect().await.unwrap();

    let mut requests = server.subscribe(&charge).await.unwrap();
    let answer = tokio::spawn({
        let replies = server.client().clone();
        async move {
            let message = requests.next().await.unwrap();
            replies
                .publish(message.reply.unwrap(), "ok".into())
                .await
                .unwrap();
            replies.flush().await.unwrap();
        }
    });
    let reply = client.request(&charge, "12.50").await.unwrap();
    assert_eq!(&reply.payload[..], b"ok");
    answer.await.unwrap();

    // The responder may only reply; the requester may not listen to requests.
    assert_denied!(server.publish(&charge, "x").await);
    assert_denied!(client.subscribe(&charge).await);
    // Another credential's inbox is not its own.
    assert_denied!(
        client
            .subscribe(&format!("{}.>", responder.credential.inbox()))
            .await
    );

    p.revoke(&requester.lease).await.unwrap();
    p.revoke(&responder.lease).await.unwrap();
}

#[tokio::test]
async fn revocation_closes_a_live_connection_and_the_credential_is_refused() {
    let p = provider();
    let topic = subject("orders.live");
    let scope = format!("nats:subscribe:{topic}");
    let granted = p
        .grant(&request("live", &scope, "", Duration::from_secs(60)))
        .await
        .unwrap();
    let conn = granted.credential.connect().await.unwrap();
    let mut sub = conn.subscribe(&topic).await.unwrap();

    let feeder = p
        .grant(&request(
            "feeder",
            &format!("nats:publish:{topic}"),
            "",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    let feed = feeder.credential.connect().await.unwrap();
    feed.publish(&topic, "before").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"before");

    let revoked_at = Instant::now();
    p.revoke(&granted.lease).await.unwrap();
    let reason = conn.closed_by_server(Duration::from_secs(5)).await;
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("Revoked")),
        "the server did not close the revoked user's connection: {reason:?}"
    );
    assert!(
        revoked_at.elapsed() < Duration::from_secs(2),
        "{:?}",
        revoked_at.elapsed()
    );
    feed.publish(&topic, "after").await.unwrap();
    let after = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
    assert!(
        !matches!(after, Ok(Some(_))),
        "the subscription still receives: {after:?}"
    );

    match p.prove_dead(&granted.lease).await.unwrap() {
        Proof::Refused(code) => assert!(code.contains("Authorization Violation"), "{code}"),
        Proof::Accepted => panic!("the revoked credential still logs in"),
    }
    assert_unauthenticated!(granted.credential.connect().await);
    p.revoke(&granted.lease)
        .await
        .expect("revoking again is a no-op");
    p.revoke(&feeder.lease).await.unwrap();
}

#[tokio::test]
async fn the_server_itself_closes_a_live_connection_at_expiry() {
    // The provider alone: no broker, so no watchdog.
    let p = provider();
    let topic = subject("orders.expiry");
    let granted = p
        .grant(&request(
            "expiry",
            &format!("nats:subscribe:{topic}"),
            "",
            Duration::from_secs(2),
        ))
        .await
        .unwrap();
    let conn = granted.credential.connect().await.unwrap();
    let _sub = conn.subscribe(&topic).await.unwrap();
    let reason = conn.closed_by_server(Duration::from_secs(6)).await;
    let closed_at = SystemTime::now();
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("User Authentication Expired")),
        "{reason:?}"
    );
    let exp = granted.expires_at;
    let late = closed_at.duration_since(exp).unwrap_or_default();
    assert!(
        closed_at + Duration::from_millis(1000) >= exp,
        "closed before exp"
    );
    assert!(late < Duration::from_secs(2), "closed {late:?} after exp");
    // New logins are refused once the second of `exp` has passed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_unauthenticated!(granted.credential.connect().await);
    // Nothing to revoke on the server, but revoking an expired user still succeeds.
    p.revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn the_reaper_prunes_revocations_of_expired_users_only() {
    let p = provider();
    let short = p
        .grant(&request(
            "reap_short",
            "nats:publish:reap.x",
            "",
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
    let long = p
        .grant(&request(
            "reap_long",
            "nats:publish:reap.x",
            "",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    p.revoke(&short.lease).await.unwrap();
    p.revoke(&long.lease).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reaped = p.reap(Duration::ZERO).await.unwrap();
    assert!(reaped.contains(&short.principal), "{reaped:?}");
    assert!(!reaped.contains(&long.principal), "{reaped:?}");
    // The long-lived user's revocation still holds.
    assert!(matches!(
        p.prove_dead(&long.lease).await.unwrap(),
        Proof::Refused(_)
    ));
    assert_unauthenticated!(short.credential.connect().await);
}

#[tokio::test]
async fn a_deny_the_scope_allows_fails_the_grant_and_bad_subjects_are_rejected() {
    let p = provider();
    let err = p
        .grant(&request(
            "deny",
            "nats:publish:billing.*",
            "nats:publish:billing.refund",
            Duration::from_secs(5),
        ))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("billing.refund"), "{err}");
    let err = p
        .grant(&request(
            "bad",
            "nats:publish:orders..x",
            "",
            Duration::from_secs(5),
        ))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ProviderError::InvalidPermission { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_seed_or_the_jwt() {
    let p = provider();
    let granted = p
        .grant(&request(
            "debug",
            "nats:publish:x.y",
            "",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    let creds = granted.credential.creds();
    let seed_line = creds
        .expose()
        .lines()
        .find(|l| l.starts_with("SU"))
        .unwrap()
        .to_owned();
    let printed = format!(
        "{:?} {:?} {creds} {creds:?}",
        granted.credential, granted.lease
    );
    assert!(!printed.contains(&seed_line), "{printed}");
    assert!(!printed.contains("eyJ"), "{printed}");
    p.revoke(&granted.lease).await.unwrap();
}

async fn grant_error(p: &NatsProvider) -> (ProviderError, Duration) {
    let started = Instant::now();
    let err = p
        .grant(&request(
            "unreachable",
            "nats:publish:x.y",
            "",
            Duration::from_secs(30),
        ))
        .await
        .err()
        .expect("the grant fails");
    (err, started.elapsed())
}

#[tokio::test]
async fn an_unreachable_or_silent_server_fails_fast_naming_the_address_and_the_variable() {
    if std::env::var_os("JIT_TEST_NATS_URL").is_some() {
        return; // the variable wins over `url`
    }
    let closed = provider_with("url = \"nats://127.0.0.1:1\"\nconnect_timeout = \"2s\"");
    let (err, took) = grant_error(&closed).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    let text = err.to_string();
    assert!(
        text.contains("127.0.0.1:1") && text.contains("JIT_TEST_NATS_URL"),
        "{text}"
    );

    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let p = provider_with(&format!(
        "url = \"nats://127.0.0.1:{port}\"\nconnect_timeout = \"2s\""
    ));
    let (err, took) = grant_error(&p).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("JIT_TEST_NATS_URL"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_checks_no_credentials_is_refused_with_the_fix() {
    if std::env::var_os("JIT_TEST_NATS_URL").is_some() {
        return;
    }
    // The machine's own NATS on 4222 runs without operator mode.
    let p = provider_with("url = \"nats://127.0.0.1:4222\"");
    let (err, _) = grant_error(&p).await;
    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    assert!(err.to_string().contains("setup-nats"), "{err}");
}

#[tokio::test]
async fn errors_of_the_real_server_classify() {
    let p = provider();
    let granted = p
        .grant(&request(
            "classify",
            "nats:publish:c.x",
            "",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    let conn: jit_test_providers::nats::NatsConnection =
        granted.credential.connect().await.unwrap();
    let denied = conn.publish("c.y", "x").await.unwrap_err();
    assert_eq!(classify(&denied), ErrorClass::Denied);
    p.revoke(&granted.lease).await.unwrap();
    let refused = granted
        .credential
        .connect_options()
        .connect(granted.credential.url())
        .await
        .unwrap_err();
    assert_eq!(classify(&refused), ErrorClass::Unauthenticated);
    let unreachable = async_nats::ConnectOptions::new()
        .connect("nats://127.0.0.1:1")
        .await
        .unwrap_err();
    assert_eq!(classify(&unreachable), ErrorClass::Other);
    let _: &NatsGrant = &granted.credential;
}

#[tokio::test]
async fn a_queue_group_permission_allows_that_group_only_and_a_bare_scope_only_logs_in() {
    let p = provider();
    let work = subject("orders.work");
    let scope = format!("nats:subscribe(workers):{work}");
    let granted = p
        .grant(&request("queue", &scope, "", Duration::from_secs(30)))
        .await
        .unwrap();
    let conn = granted.credential.connect().await.unwrap();
    conn.queue_subscribe(&work, "workers").await.unwrap();
    assert_denied!(conn.queue_subscribe(&work, "others").await);
    assert_denied!(conn.subscribe(&work).await);

    let bare = p
        .grant(&request("bare", "", "", Duration::from_secs(30)))
        .await
        .unwrap();
    let conn = bare.credential.connect().await.unwrap();
    assert_denied!(conn.publish(&work, "x").await);
    assert_denied!(conn.subscribe(&work).await);
    p.revoke(&granted.lease).await.unwrap();
    p.revoke(&bare.lease).await.unwrap();
}
