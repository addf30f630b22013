#![cfg(feature = "nats")]
//! The orders service on NATS, each side under its own credential with exactly its
//! subjects: the shop may announce orders and request charges, billing may only answer
//! charges, a listener may only hear orders. What a side does beyond its subjects is
//! refused by the server (`assert_denied!`), and a credential past its ttl is cut off
//! by the server while connected.
//!
//! Needs the operator-mode NATS server of `.ci/setup-nats`: `cargo test -p examples
//! --features nats`.
//!
//! A test has one credential per scheme, so the other side of each exchange (billing
//! for the shop's test, the shop for billing's) runs under a lease of its own, taken
//! from the same broker in the body: approved, audited and revoked like the test's.

use std::sync::Arc;
use std::time::Duration;

use examples::Order;
use examples::billing::{self, CHARGE, PLACED, Shop};
use futures_util::StreamExt;
use jit_test::{
    Broker, Lease, LeaseRequest, Scope, assert_denied, assert_unauthenticated, jit_test,
};
use jit_test_providers::nats::{NatsGrant, NatsProvider};

/// The other side of an exchange, under `scope`, for the test `test`.
async fn peer(test: &str, scope: &str) -> anyhow::Result<Lease<NatsProvider>> {
    let provider: Arc<NatsProvider> = jit_test::provider()?;
    let ask = LeaseRequest::new(
        test,
        Scope::parse(scope)?.permissions,
        Duration::from_secs(30),
    );
    Ok(Broker::global().acquire(&provider, ask).await?)
}

fn order(nats: &NatsGrant) -> Order {
    Order {
        id: 7,
        sku: format!("sku-{}", nats.name()),
    }
}

/// The shop announces an order, a listener hears it, billing charges it; the shop may
/// neither listen to all orders nor refund.
#[jit_test(scope = "nats:publish:orders.placed, nats:request:billing.charge")]
async fn the_shop_announces_an_order_and_has_it_charged(shop: NatsGrant) -> anyhow::Result<()> {
    let billing = peer(
        "orders_nats::billing_peer",
        "nats:respond:billing.charge, nats:subscribe:orders.placed",
    )
    .await?;
    let billing_side = billing.credential().expect("not taken").connect().await?;
    let mut heard = billing_side.subscribe(PLACED).await?;
    let _billing = billing::serve_billing(billing_side).await?;

    let order = order(&shop);
    let shop = Shop::new(shop.connect().await?);
    shop.announce(&order).await?;
    let announced = tokio::time::timeout(Duration::from_secs(5), heard.next()).await?;
    let announced: Order = serde_json::from_slice(&announced.expect("a message").payload)?;
    assert_eq!(announced, order);
    let receipt = shop.charge(&order, 1250).await?;
    assert_eq!((receipt.order, receipt.cents), (order.id, 1250));

    assert_denied!(shop.connection().subscribe("orders.>").await);
    assert_denied!(shop.connection().publish("billing.refund", "7").await);
    billing.release().await?;
    Ok(())
}

/// Billing answers charges and may do nothing else: announcing an order is refused.
#[jit_test(scope = "nats:respond:billing.charge")]
async fn billing_answers_charges_and_may_not_announce_orders(
    billing: NatsGrant,
) -> anyhow::Result<()> {
    let conn = billing.connect().await?;
    assert_denied!(conn.publish(PLACED, "{}").await);
    let _billing = billing::serve_billing(conn).await?;

    let shop = peer("orders_nats::shop_peer", "nats:request:billing.charge").await?;
    let order = order(&billing);
    let client = Shop::new(shop.credential().expect("not taken").connect().await?);
    let receipt = client.charge(&order, 300).await?;
    assert_eq!((receipt.order, receipt.cents), (order.id, 300));
    assert_denied!(
        client
            .connection()
            .request(CHARGE.replace("charge", "refund").as_str(), "x")
            .await
    );
    shop.release().await?;
    Ok(())
}

/// A listener whose ttl runs out while it is connected: the server closes its
/// connection (`User Authentication Expired` at the JWT's `exp`, or `User
/// Authentication Revoked` should the broker's watchdog revoke it first, at the same
/// second) and refuses it from then on.
#[jit_test(scope = "nats:subscribe:orders.placed", ttl = "2s")]
async fn a_listener_is_cut_off_by_the_server_when_its_ttl_runs_out(
    listener: NatsGrant,
) -> anyhow::Result<()> {
    let conn = listener.connect().await?;
    let _orders = conn.subscribe(PLACED).await?;
    let reason = conn.closed_by_server(Duration::from_secs(6)).await;
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("User Authentication")),
        "the server did not close the connection: {reason:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_unauthenticated!(listener.connect().await);
    Ok(())
}
