//! The `amqp` provider against the real broker (`.ci/setup-amqp` first): anchored
//! permissions, the default exchange, topic permissions, vhosts, `deny`, errors classified
//! as the broker produces them, a live consumer cut on revoke, and an unreachable or
//! silent broker.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Proof, Provider, ProviderError, Scope,
    assert_denied, assert_unauthenticated, classify,
};
use jit_test_providers::amqp::{AmqpGrant, AmqpProvider, AmqpSettings, ConnectError};
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn provider() -> Arc<AmqpProvider> {
    jit_test::provider::<AmqpProvider>().unwrap()
}

fn request(scope: &str, deny: &str) -> GrantRequest {
    let parse = |s: &str| match s {
        "" => Vec::new(),
        s => Scope::parse(s).unwrap().permissions,
    };
    GrantRequest {
        test: "amqp_provider".into(),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("p{}_{}", jit_test::rand::hex(4), std::process::id()),
        permissions: parse(scope),
        deny: parse(deny),
        ttl: Duration::from_secs(60),
    }
}

async fn grant(scope: &str) -> Granted<AmqpProvider> {
    provider().grant(&request(scope, "")).await.unwrap()
}

/// Declares queues and a topic exchange as the administrator.
async fn fixtures(queues: &[&str]) {
    let admin = provider().admin_connection().await.unwrap();
    let channel = admin.create_channel().await.unwrap();
    for queue in queues {
        channel
            .queue_declare(
                (*queue).into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    channel
        .exchange_declare(
            "jit_p.topic".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    admin.close(200, "done".into()).await.unwrap();
}

async fn channel(amqp: &AmqpGrant) -> Result<Channel, BoxError> {
    Ok(amqp.connect().await?.create_channel().await?)
}

async fn get(amqp: &AmqpGrant, queue: &str) -> Result<(), BoxError> {
    channel(amqp)
        .await?
        .basic_get(queue.into(), BasicGetOptions::default())
        .await?;
    Ok(())
}

/// Publishes with confirms, so that a refusal (which closes the channel) is seen.
async fn publish(amqp: &AmqpGrant, exchange: &str, key: &str) -> Result<(), BoxError> {
    let channel = channel(amqp).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await?
        .await?;
    Ok(())
}

async fn declare(amqp: &AmqpGrant, queue: &str) -> Result<(), BoxError> {
    channel(amqp)
        .await?
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

async fn revoke(granted: &Granted<AmqpProvider>) {
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_matched_exactly_not_as_regexes() {
    fixtures(&["jit_p.orders.q", "jit_p.ordersXq", "jit_p.orders.q.evil"]).await;
    let granted = grant("amqp:read:/jit_p.orders.q").await;
    assert!(
        granted.beyond_scope.is_empty(),
        "{:?}",
        granted.beyond_scope
    );
    let amqp = &granted.credential;
    get(amqp, "jit_p.orders.q").await.unwrap();
    assert_denied!(get(amqp, "jit_p.ordersXq").await);
    assert_denied!(get(amqp, "jit_p.orders.q.evil").await);
    assert_denied!(declare(amqp, "jit_p.orders.q").await);
    assert_denied!(publish(amqp, "", "jit_p.orders.q").await);
    revoke(&granted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_configure_and_the_default_exchange_is_explicit() {
    fixtures(&["jit_p.orders.q"]).await;
    let granted = grant("amqp:configure:/jit_p.tmp.*, amqp:write:/amq.default").await;
    let amqp = &granted.credential;
    declare(amqp, "jit_p.tmp.a").await.unwrap();
    assert_denied!(declare(amqp, "jit_p.tmpXa").await);
    publish(amqp, "", "jit_p.orders.q").await.unwrap();
    let without = grant("amqp:read:/jit_p.orders.q").await;
    assert_denied!(publish(&without.credential, "", "jit_p.orders.q").await);
    let admin = provider().admin_connection().await.unwrap();
    admin
        .create_channel()
        .await
        .unwrap()
        .queue_delete("jit_p.tmp.a".into(), Default::default())
        .await
        .unwrap();
    revoke(&granted).await;
    revoke(&without).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_permissions_narrow_routing_keys_and_open_ones_are_reported() {
    fixtures(&[]).await;
    let narrow = grant("amqp:write:/jit_p.topic, amqp:topic_write:/jit_p.topic:eu.*").await;
    assert!(narrow.beyond_scope.is_empty(), "{:?}", narrow.beyond_scope);
    publish(&narrow.credential, "jit_p.topic", "eu.fr")
        .await
        .unwrap();
    assert_denied!(publish(&narrow.credential, "jit_p.topic", "us.ny").await);

    let open = grant("amqp:write:/jit_p.topic").await;
    assert_eq!(
        open.credential.beyond_scope(),
        [
            "amqp:topic_write:/jit_p.topic:* (no topic permission: any routing key on this topic exchange)"
        ]
    );
    publish(&open.credential, "jit_p.topic", "us.ny")
        .await
        .unwrap();
    revoke(&narrow).await;
    revoke(&open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_as_the_broker_sends_them() {
    fixtures(&["jit_p.orders.q"]).await;
    let granted = grant("amqp:read:/jit_p.orders.q").await;
    let amqp = &granted.credential;
    // Another vhost: 530 NOT_ALLOWED at connection.open, a denial.
    let vhost = amqp.connect_to("jit-shop").await.unwrap_err();
    assert_eq!(vhost.reply_code(), Some(530), "{vhost}");
    assert_eq!(classify(&vhost), ErrorClass::Denied);
    // On an open channel: 403, a denial.
    let channel = assert_denied!(get(amqp, "jit_p.other").await);
    assert!(channel.to_string().contains("ACCESS_REFUSED"), "{channel}");
    revoke(&granted).await;
    // A refused login through the credential: 403 at login, an authentication failure.
    let login = assert_unauthenticated!(amqp.connect().await);
    let login = login.downcast_ref::<ConnectError>().unwrap();
    assert_eq!(login.reply_code(), Some(403));
    // The same refusal to a client that connected by itself: RabbitMQ's text tells.
    let raw = Connection::connect(amqp.uri().expose(), ConnectionProperties::default()).await;
    assert_unauthenticated!(raw);
    let text = format!("{login}");
    assert!(!text.contains(amqp.password().expose()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_are_granted_by_name() {
    let granted = grant("amqp:configure:jit-shop/jit_p.*").await;
    let amqp = &granted.credential;
    assert_eq!(amqp.vhost(), "jit-shop");
    let channel = amqp
        .connect()
        .await
        .unwrap()
        .create_channel()
        .await
        .unwrap();
    channel
        .queue_declare(
            "jit_p.shop".into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_denied!(amqp.connect_to("/").await);
    revoke(&granted).await;
}

/// Whether the user of `request` exists on the broker.
async fn exists(request: &GrantRequest) -> bool {
    let user = request.principal_name("jit_");
    provider()
        .lease_users()
        .await
        .unwrap()
        .iter()
        .any(|(name, _)| *name == user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_unknown_vhosts_fail_the_grant_and_leave_no_user() {
    let denied = request("amqp:configure:/jit_p.*", "amqp:configure:/jit_p.orders.q");
    let e = provider().grant(&denied).await.err().unwrap();
    assert!(
        e.to_string().contains("amqp:configure:/jit_p.orders.q"),
        "{e}"
    );
    assert!(!exists(&denied).await);
    let unknown = request("amqp:read:nosuchvhost/q", "");
    let e = provider().grant(&unknown).await.err().unwrap();
    assert!(e.to_string().contains("nosuchvhost"), "{e}");
    assert!(!exists(&unknown).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_cuts_a_live_consumer_and_the_password_is_refused() {
    fixtures(&["jit_p.orders.q"]).await;
    let granted = grant("amqp:read:/jit_p.orders.q").await;
    let connection = granted.credential.connect().await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let _consumer = channel
        .basic_consume(
            "jit_p.orders.q".into(),
            "jit_p.consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(connection.status().connected());
    revoke(&granted).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while connection.status().connected() {
        assert!(
            Instant::now() < deadline,
            "the consumer's connection survived revocation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        channel
            .basic_get("jit_p.orders.q".into(), BasicGetOptions::default())
            .await
            .is_err()
    );
    match provider().prove_dead(&granted.lease).await.unwrap() {
        Proof::Refused(how) => assert!(how.contains("403"), "{how}"),
        Proof::Accepted => panic!("the deleted user still logs in"),
    }
    // Revoking again is fine.
    revoke(&granted).await;
}

/// A provider whose `key` points at `url`, with the default timeout.
fn provider_at(key: &str, url: &str) -> AmqpProvider {
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[amqp]\n{key} = \"{url}\"")).unwrap();
    AmqpProvider::new(AmqpSettings::from_config(&config).unwrap())
}

/// A port nobody listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A listener that accepts connections and never answers; it lives as long as the test.
fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

async fn expect_unreachable(provider: &AmqpProvider, port: u16, setting: &str) {
    let started = Instant::now();
    let ask = request("amqp:read:/jit_p.orders.q", "");
    let e = provider.grant(&ask).await.err().unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "{setting} at port {port}: {took:?}: {e}"
    );
    assert!(matches!(e, ProviderError::Unreachable { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains(setting),
        "{text}"
    );
    // Where the API answered and the AMQP port did not, the user created is gone again.
    assert!(!exists(&ask).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_broker_fails_fast_naming_the_setting() {
    for port in [closed_port(), silent_port()] {
        let admin = format!("http://guest:guest@127.0.0.1:{port}");
        expect_unreachable(
            &provider_at("admin_url", &admin),
            port,
            "JIT_TEST_AMQP_ADMIN_URL",
        )
        .await;
        let amqp = format!("amqp://127.0.0.1:{port}");
        expect_unreachable(&provider_at("url", &amqp), port, "JIT_TEST_AMQP_URL").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_administrator_is_a_configuration_error() {
    let provider = provider_at("admin_url", "http://guest:wrong@127.0.0.1:15672");
    let e = provider
        .grant(&request("amqp:read:/q", ""))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ProviderError::Misconfigured(_)), "{e}");
    assert!(e.to_string().contains("JIT_TEST_AMQP_ADMIN_URL"), "{e}");
    assert!(!e.to_string().contains("wrong"), "{e}");
}
