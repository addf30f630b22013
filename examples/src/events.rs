//! Order events over RabbitMQ: the service publishes `order.placed` for every order it
//! stores, and a worker consumes them.
//!
//! | side | does | `amqp` scope |
//! |---|---|---|
//! | the service ([`OrderEvents`], through [`PublishingStore`]) | publishes to exchange [`EXCHANGE`] with routing key [`PLACED`] | `amqp:write:/examples.orders, amqp:topic_write:/examples.orders:order.placed` |
//! | the worker ([`Worker`]) | takes events from queue [`QUEUE`] | `amqp:read:/examples.orders.placed` |
//!
//! The topic permission keeps the publisher to its routing key: without it, RabbitMQ would
//! let it publish any key to the topic exchange (the provider reports that as beyond
//! scope). Neither side declares anything: [`declare`] puts the exchange and queues in place as
//! the administrator (a deployment step), so neither needs `configure`.

use std::time::{Duration, Instant};

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};

use crate::store::{Order, OrderStore, StoreError};

/// The topic exchange order events are published to.
pub const EXCHANGE: &str = "examples.orders";
/// The routing key of a placed order.
pub const PLACED: &str = "order.placed";
/// The worker's queue: every `order.placed` event.
pub const QUEUE: &str = "examples.orders.placed";
/// Events kept in [`QUEUE`] at most (older ones are dropped).
const MAX_LENGTH: i64 = 1000;

/// Declares the exchange and the worker's queue and binds them. Idempotent; needs
/// `configure` on both (run it as the administrator).
pub async fn declare(admin: &Connection) -> Result<(), lapin::Error> {
    let channel = admin.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(MAX_LENGTH));
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(QUEUE.into(), options, arguments)
        .await?;
    channel
        .queue_bind(
            QUEUE.into(),
            EXCHANGE.into(),
            PLACED.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel.close(200, "declared".into()).await
}

/// The publishing side: one channel in confirm mode, so a publish returns once the broker
/// took the event (or refused it: 403 closes the channel).
#[derive(Debug)]
pub struct OrderEvents {
    channel: Channel,
}

impl OrderEvents {
    /// A publisher on `connection`. Needs write on [`EXCHANGE`].
    pub async fn new(connection: &Connection) -> Result<OrderEvents, lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(OrderEvents { channel })
    }

    /// Publishes `order.placed` with the order as JSON and waits for the broker's
    /// confirmation.
    pub async fn placed(&self, order: &Order) -> Result<(), lapin::Error> {
        let body = serde_json::to_vec(order).expect("an order is plain data");
        let properties = BasicProperties::default().with_content_type("application/json".into());
        self.channel
            .basic_publish(
                EXCHANGE.into(),
                PLACED.into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await?
            .await?;
        Ok(())
    }
}

/// An [`OrderStore`] that publishes `order.placed` after each order it stores: the service
/// gets events without its handlers knowing. A publish that fails fails the request (500).
#[derive(Debug)]
pub struct PublishingStore<S> {
    store: S,
    events: OrderEvents,
}

impl<S: OrderStore> PublishingStore<S> {
    /// Stores orders in `store` and announces them through `events`.
    pub fn new(store: S, events: OrderEvents) -> PublishingStore<S> {
        PublishingStore { store, events }
    }
}

impl<S: OrderStore> OrderStore for PublishingStore<S> {
    async fn list(&self) -> Result<Vec<Order>, StoreError> {
        self.store.list().await
    }

    async fn insert(&self, sku: &str) -> Result<Order, StoreError> {
        let order = self.store.insert(sku).await?;
        self.events.placed(&order).await?;
        Ok(order)
    }

    async fn delete(&self, id: u64) -> Result<bool, StoreError> {
        self.store.delete(id).await
    }
}

/// The consuming side.
#[derive(Debug)]
pub struct Worker {
    channel: Channel,
}

/// Why the worker could not take an event.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The broker refused or the connection is gone.
    #[error("taking an event from {QUEUE} failed: {0}")]
    Amqp(#[from] lapin::Error),
    /// An event that is not an order.
    #[error("an event of {QUEUE} is not an order: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl Worker {
    /// A worker on `connection`. Needs read on [`QUEUE`].
    pub async fn new(connection: &Connection) -> Result<Worker, lapin::Error> {
        Ok(Worker {
            channel: connection.create_channel().await?,
        })
    }

    /// Takes the next event (acknowledging it), waiting up to `wait`; `None` if none came.
    pub async fn next(&self, wait: Duration) -> Result<Option<Order>, WorkerError> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self
                .channel
                .basic_get(QUEUE.into(), BasicGetOptions::default())
                .await?;
            if let Some(message) = got {
                message.delivery.ack(BasicAckOptions::default()).await?;
                return Ok(Some(serde_json::from_slice(&message.delivery.data)?));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes events until one for `sku` comes (events of other orders are acknowledged
    /// and passed over), waiting up to `wait` in all.
    pub async fn find(&self, sku: &str, wait: Duration) -> Result<Option<Order>, WorkerError> {
        let deadline = Instant::now() + wait;
        while let Some(order) = self
            .next(deadline.saturating_duration_since(Instant::now()))
            .await?
        {
            if order.sku == sku {
                return Ok(Some(order));
            }
        }
        Ok(None)
    }
}
