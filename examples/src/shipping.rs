//! Shipping over MQTT: the orders service tells a warehouse device to ship an order
//! (`devices/<id>/commands`) and reads what the device reports (`devices/<id>/telemetry`).
//!
//! | side | needs the scope |
//! |---|---|
//! | the service ([`Dispatcher`]) | `mqtt:publish:devices/+/commands`, `mqtt:subscribe:devices/+/telemetry` |
//! | device `d1` ([`Device`]) | `mqtt:subscribe:devices/d1/commands`, `mqtt:publish:devices/d1/telemetry` |
//!
//! Both speak MQTT v5, so a publish or subscription outside the scope fails with the
//! broker's reason code (0x87) instead of vanishing. `tests/orders_mqtt.rs` runs each
//! side with a short-lived client holding exactly its topics.

use std::time::Duration;

use jit_test_providers::mqtt::{MqttError, MqttGrant, MqttSession};
use serde::{Deserialize, Serialize};

use crate::store::Order;

/// What the service asks a device to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipCommand {
    /// The order to ship.
    pub order: u64,
    /// What to take from the shelf.
    pub sku: String,
}

/// What a device reports about an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// The reporting device.
    pub device: String,
    /// The order it is about.
    pub order: u64,
    /// e.g. `shipped`.
    pub status: String,
}

/// A shipping failure: the broker's (classified by jit-test: `assert_denied!` works on
/// it) or a message that is not what the other side should send.
#[derive(Debug, thiserror::Error)]
pub enum ShippingError {
    /// The broker refused or the connection failed.
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
    /// A message did not parse.
    #[error("unreadable message on {topic}: {source}")]
    Payload {
        /// Where it came from.
        topic: String,
        /// Why it did not parse.
        source: serde_json::Error,
    },
}

fn commands(device: &str) -> String {
    format!("devices/{device}/commands")
}

fn telemetry(device: &str) -> String {
    format!("devices/{device}/telemetry")
}

/// The orders service's side: sends shipping commands, reads telemetry of all devices.
#[derive(Debug)]
pub struct Dispatcher {
    session: MqttSession,
}

impl Dispatcher {
    /// Connects as `mqtt`'s client and subscribes to every device's telemetry.
    pub async fn connect(mqtt: &MqttGrant) -> Result<Dispatcher, ShippingError> {
        let mut session = mqtt.connect().await?;
        session.subscribe(&telemetry("+")).await?;
        Ok(Dispatcher { session })
    }

    /// Tells `device` to ship `order`; returns once the broker has accepted the command.
    pub async fn ship(&mut self, device: &str, order: &Order) -> Result<(), ShippingError> {
        let command = ShipCommand {
            order: order.id,
            sku: order.sku.clone(),
        };
        let payload = serde_json::to_vec(&command).expect("a command always serialises");
        Ok(self.session.publish(&commands(device), payload).await?)
    }

    /// The next report about `order`, waiting at most `within` (reports about other
    /// orders are skipped).
    pub async fn report_on(
        &mut self,
        order: u64,
        within: Duration,
    ) -> Result<Telemetry, ShippingError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.session.recv(left).await?;
            let report: Telemetry = parse(&message.topic, &message.payload)?;
            if report.order == order {
                return Ok(report);
            }
        }
    }

    /// The session, to try what the service's scope does not allow.
    pub fn session(&mut self) -> &mut MqttSession {
        &mut self.session
    }
}

/// A warehouse device: receives its shipping commands, reports on them.
#[derive(Debug)]
pub struct Device {
    id: String,
    session: MqttSession,
}

impl Device {
    /// Connects as `mqtt`'s client and subscribes to device `id`'s commands.
    pub async fn connect(mqtt: &MqttGrant, id: &str) -> Result<Device, ShippingError> {
        let mut session = mqtt.connect().await?;
        session.subscribe(&commands(id)).await?;
        Ok(Device {
            id: id.to_owned(),
            session,
        })
    }

    /// The next shipping command, waiting at most `within`.
    pub async fn next_command(&mut self, within: Duration) -> Result<ShipCommand, ShippingError> {
        let message = self.session.recv(within).await?;
        parse(&message.topic, &message.payload)
    }

    /// Reports `status` of `order` on the device's telemetry topic.
    pub async fn report(&mut self, order: u64, status: &str) -> Result<(), ShippingError> {
        let report = Telemetry {
            device: self.id.clone(),
            order,
            status: status.to_owned(),
        };
        let payload = serde_json::to_vec(&report).expect("a report always serialises");
        Ok(self.session.publish(&telemetry(&self.id), payload).await?)
    }

    /// The session, to try what the device's scope does not allow.
    pub fn session(&mut self) -> &mut MqttSession {
        &mut self.session
    }
}

fn parse<T: for<'de> Deserialize<'de>>(topic: &str, payload: &[u8]) -> Result<T, ShippingError> {
    serde_json::from_slice(payload).map_err(|source| ShippingError::Payload {
        topic: topic.to_owned(),
        source,
    })
}
