//! Shipping over MQTT under least privilege: the orders service and a warehouse device
//! each hold a short-lived Mosquitto client with exactly their topics (`MqttGrant`s).
//!
//! Needs the broker with dynamic security of `.ci/setup-mqtt` (see jit-test-providers'
//! `mqtt` module): `cargo test -p examples --features mqtt`.
//!
//! Devices are named after the test so that tests running at once never share a topic.

use std::time::Duration;

use examples::shipping::{Device, Dispatcher};
use examples::store::Order;
use jit_test::{Broker, LeaseRequest, Scope, assert_denied, assert_unauthenticated, jit_test};
use jit_test_providers::mqtt::{MqttError, MqttGrant, MqttProvider};

const WAIT: Duration = Duration::from_secs(5);

/// The happy path: the service ships an order to device `d1`, the device receives the
/// command and reports, the service reads the report. The test's own credential is the
/// service's; the device's is a second lease of its own, taken through the broker, with
/// exactly the device's topics.
#[jit_test(scope = "mqtt:publish:devices/+/commands, mqtt:subscribe:devices/+/telemetry")]
async fn the_service_ships_an_order_and_reads_the_device_report(
    mqtt: MqttGrant,
) -> anyhow::Result<()> {
    let device_scope =
        Scope::parse("mqtt:subscribe:devices/d1/commands, mqtt:publish:devices/d1/telemetry")?;
    let device_lease = Broker::global()
        .acquire(
            &jit_test::provider::<MqttProvider>()?,
            LeaseRequest::new("orders_mqtt::device_d1", device_scope.permissions, WAIT * 6),
        )
        .await?;
    let mut device = Device::connect(device_lease.credential().expect("not taken"), "d1").await?;
    let mut service = Dispatcher::connect(&mqtt).await?;

    let order = Order {
        id: u64::from_str_radix(&jit_test::rand::hex(6), 16)?,
        sku: "a1".into(),
    };
    service.ship("d1", &order).await?;
    let command = loop {
        // Commands of another run shipping to d1 at the same time are not ours.
        let command = device.next_command(WAIT).await?;
        if command.order == order.id {
            break command;
        }
    };
    assert_eq!(command.sku, "a1");
    device.report(command.order, "shipped").await?;
    let report = service.report_on(order.id, WAIT).await?;
    assert_eq!(
        (report.device.as_str(), report.status.as_str()),
        ("d1", "shipped")
    );

    // Each side holds its own direction only.
    assert_denied!(
        service
            .session()
            .publish("devices/d1/telemetry", "forged")
            .await
    );
    assert_denied!(
        device
            .session()
            .publish("devices/d1/commands", "self-made")
            .await
    );
    device_lease.release().await?;
    Ok(())
}

/// A device reaches its own topics and nothing else: not another device's telemetry,
/// not another device's commands, not the whole tree.
#[jit_test(scope = "mqtt:subscribe:devices/d2/commands, mqtt:publish:devices/d2/telemetry")]
async fn a_device_cannot_reach_other_devices(mqtt: MqttGrant) -> anyhow::Result<()> {
    let mut device = Device::connect(&mqtt, "d2").await?;
    device.report(7, "idle").await?;
    let session = device.session();
    assert_denied!(session.publish("devices/d3/telemetry", "spoofed").await); // PUBACK 0x87
    assert_denied!(session.subscribe("devices/#").await); // SUBACK 0x87
    assert_denied!(session.subscribe("devices/d3/commands").await);
    // The denials leave the session usable.
    device.report(7, "still here").await?;
    Ok(())
}

/// A credential that dies mid-test: at its ttl jit-test's watchdog removes the client,
/// the broker cuts its live session at once, and a new login is refused.
#[jit_test(scope = "mqtt:subscribe:devices/d3/commands", ttl = "2s")]
async fn a_device_session_is_cut_when_its_credential_expires(
    mqtt: MqttGrant,
) -> anyhow::Result<()> {
    let mut device = Device::connect(&mqtt, "d3").await?;
    // The broker ends the session (DISCONNECT 0x98, which rumqttc reads as a close).
    let ended = device.session().closed(Duration::from_secs(10)).await;
    assert!(
        matches!(
            ended,
            Some(MqttError::Closed { .. } | MqttError::Disconnected { .. })
        ),
        "{ended:?}"
    );
    assert_unauthenticated!(mqtt.connect().await); // CONNACK 0x87
    Ok(())
}
