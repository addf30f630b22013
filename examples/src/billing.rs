//! The orders service on NATS: the shop announces each order on [`PLACED`] and asks
//! billing to charge it with a request on [`CHARGE`]; [`serve_billing`] answers those
//! requests. Each side connects with a credential of its own, holding only its subjects:
//!
//! | side | `nats` scope |
//! |---|---|
//! | the shop ([`Shop`]) | `nats:publish:orders.placed, nats:request:billing.charge` |
//! | billing ([`serve_billing`]) | `nats:respond:billing.charge` |
//! | a listener of orders | `nats:subscribe:orders.placed` |
//!
//! `tests/orders_nats.rs` runs each side under its scope (`cargo test -p examples
//! --features nats`, with the operator-mode server of `.ci/setup-nats`).

use jit_test_providers::nats::{NatsConnection, NatsError};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::Order;

/// Where the shop announces orders.
pub const PLACED: &str = "orders.placed";

/// Where billing takes charge requests.
pub const CHARGE: &str = "billing.charge";

/// A charge request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The order to charge.
    pub order: u64,
    /// The amount, in cents.
    pub cents: u64,
}

/// Billing's answer to a charge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order charged.
    pub order: u64,
    /// The amount charged, in cents.
    pub cents: u64,
}

/// Why a NATS exchange failed. Its source is the [`NatsError`], so `assert_denied!`
/// recognises a refused subject through it.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The server refused, or the client failed.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// A message was not the JSON expected.
    #[error("unreadable message: {0}")]
    Json(#[from] serde_json::Error),
}

/// The shop's side: announces orders and has them charged.
#[derive(Debug)]
pub struct Shop {
    nats: NatsConnection,
}

impl Shop {
    /// The shop, on a connection made with its credential.
    pub fn new(nats: NatsConnection) -> Shop {
        Shop { nats }
    }

    /// The connection, for what the shop does not wrap.
    pub fn connection(&self) -> &NatsConnection {
        &self.nats
    }

    /// Publishes `order` on [`PLACED`], as JSON.
    pub async fn announce(&self, order: &Order) -> Result<(), EventError> {
        let body = serde_json::to_vec(order)?;
        Ok(self.nats.publish(PLACED, body).await?)
    }

    /// Asks billing to charge `cents` for `order` and returns its receipt.
    pub async fn charge(&self, order: &Order, cents: u64) -> Result<Receipt, EventError> {
        let charge = Charge {
            order: order.id,
            cents,
        };
        let reply = self
            .nats
            .request(CHARGE, serde_json::to_vec(&charge)?)
            .await?;
        Ok(serde_json::from_slice(&reply.payload)?)
    }
}

/// Billing's side: subscribes to [`CHARGE`] and answers every request with a
/// [`Receipt`], until the connection ends. Returns once the subscription is in place.
pub async fn serve_billing(nats: NatsConnection) -> Result<JoinHandle<()>, EventError> {
    use futures_util::StreamExt;
    let mut requests = nats.subscribe(CHARGE).await?;
    Ok(tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let (Some(reply), Ok(charge)) = (
                request.reply,
                serde_json::from_slice::<Charge>(&request.payload),
            ) else {
                continue;
            };
            let receipt = Receipt {
                order: charge.order,
                cents: charge.cents,
            };
            let body = serde_json::to_vec(&receipt).expect("a receipt serialises");
            // A reply that fails leaves the requester to time out, as with any responder.
            let _ = nats.client().publish(reply, body.into()).await;
        }
    }))
}
