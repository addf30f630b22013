#![cfg(feature = "amqp")]
//! Order events on RabbitMQ, under least privilege on each side: the service publishes
//! `order.placed` as the test's short-lived RabbitMQ user (an `AmqpGrant`) that may only
//! write to the exchange; the worker consumes as one that may only read its queue.
//!
//! Needs a broker with the management plugin (`.ci/setup-amqp`; see jit-test-providers'
//! `amqp` module): `cargo test -p examples --features amqp`.
//!
//! `setup = "declare"` puts the exchange and queue in place as the administrator before
//! anything is granted. Events of all tests share the queue: each test orders a sku of
//! its own and looks only for that one.

use std::time::{Duration, SystemTime};

use examples::events::{self, EXCHANGE, OrderEvents, PublishingStore, QUEUE, Worker};
use examples::{AppState, MemoryStore, Order, client::Client, serve};
use jit_test::{assert_denied, assert_unauthenticated, jit_test};
use jit_test_providers::amqp::{AmqpGrant, AmqpProvider};
use jit_test_providers::token::{TokenAuthority, TokenGrant};
use lapin::BasicProperties;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;

/// Declares the exchange and the worker's queue, as the administrator. Idempotent.
async fn declare() -> anyhow::Result<()> {
    let admin = jit_test::provider::<AmqpProvider>()?
        .admin_connection()
        .await?;
    events::declare(&admin).await?;
    admin.close(200, "declared".into()).await?;
    Ok(())
}

/// Publishes an order event as the administrator (what a service would have sent).
async fn announce(order: &Order) -> anyhow::Result<()> {
    let admin = jit_test::provider::<AmqpProvider>()?
        .admin_connection()
        .await?;
    OrderEvents::new(&admin).await?.placed(order).await?;
    Ok(())
}

/// The service side: an order placed over HTTP is announced on the exchange, by a user
/// that may write there and nothing else.
#[jit_test(
    scope = "token:write:orders, amqp:write:/examples.orders, \
             amqp:topic_write:/examples.orders:order.placed",
    setup = "declare"
)]
async fn the_service_announces_a_placed_order(
    token: TokenGrant,
    amqp: AmqpGrant,
) -> anyhow::Result<()> {
    let connection = amqp.connect().await?;
    let store = PublishingStore::new(MemoryStore::default(), OrderEvents::new(&connection).await?);
    let verifier = TokenAuthority::shared().verifier();
    let server = serve(AppState::new(verifier, store)).await?;
    let order = Client::new(server.addr(), token.token())
        .place_order(&format!("sku-{}", amqp.user()))
        .await?;
    assert_eq!(order.id, 1);
    Ok(())
}

/// The worker side: it takes the event of an order, with read on its queue only.
#[jit_test(scope = "amqp:read:/examples.orders.placed", setup = "declare")]
async fn the_worker_takes_an_order_event(amqp: AmqpGrant) -> anyhow::Result<()> {
    let sku = format!("sku-{}", amqp.user());
    announce(&Order {
        id: 7,
        sku: sku.clone(),
    })
    .await?;
    let worker = Worker::new(&amqp.connect().await?).await?;
    let order = worker.find(&sku, Duration::from_secs(10)).await?;
    assert_eq!(order, Some(Order { id: 7, sku }));
    Ok(())
}

/// The publisher's user may neither consume the worker's queue, nor declare a queue of
/// its own, nor publish another routing key: each attempt is refused by the broker with
/// 403 ACCESS_REFUSED.
#[jit_test(
    scope = "amqp:write:/examples.orders, amqp:topic_write:/examples.orders:order.placed",
    setup = "declare"
)]
async fn the_publisher_can_neither_consume_nor_declare(amqp: AmqpGrant) -> anyhow::Result<()> {
    let connection = amqp.connect().await?;
    let consume = connection.create_channel().await?;
    assert_denied!(
        consume
            .basic_get(QUEUE.into(), BasicGetOptions::default())
            .await
    );
    let declare = connection.create_channel().await?;
    assert_denied!(
        declare
            .queue_declare(
                "examples.orders.mine".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
    );
    let other_key = connection.create_channel().await?;
    other_key
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let publish = other_key
        .basic_publish(
            EXCHANGE.into(),
            "order.cancelled".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await?;
    assert_denied!(publish.await);
    // It still publishes its own events: a refusal closes only the channel.
    let events = OrderEvents::new(&connection).await?;
    events
        .placed(&Order {
            id: 1,
            sku: format!("sku-{}", amqp.user()),
        })
        .await?;
    Ok(())
}

/// A worker whose credential's ttl runs out mid-test: the broker deletes the user, which
/// closes the worker's connection, and a new login is refused.
#[jit_test(
    scope = "amqp:read:/examples.orders.placed",
    ttl = "2s",
    setup = "declare"
)]
async fn a_worker_whose_credential_expires_is_cut_off(amqp: AmqpGrant) -> anyhow::Result<()> {
    let connection = amqp.connect().await?;
    let worker = Worker::new(&connection).await?;
    let left = amqp
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(500)).await;
    // The connection was closed with 320 CONNECTION_FORCED ("user ... is deleted").
    assert!(!connection.status().connected());
    assert!(worker.next(Duration::ZERO).await.is_err());
    assert_unauthenticated!(amqp.connect().await);
    Ok(())
}
