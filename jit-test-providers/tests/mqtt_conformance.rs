//! `jit_test::conformance::check` against the `mqtt` provider and the real broker
//! (`.ci/setup-mqtt` first).

use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test_providers::mqtt::{MqttGrant, MqttProvider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mqtt_provider_keeps_the_contract() {
    let provider = jit_test::provider::<MqttProvider>().unwrap();
    let plan = Plan {
        scope: "mqtt:publish:jit_conf/+/telemetry",
        invalid: "mqtt:publish:jit_conf/#/telemetry",
        short_ttl: Duration::from_secs(2),
    };
    let report = conformance::check(
        provider,
        plan,
        async |mqtt: &MqttGrant| -> Result<(), BoxError> {
            let mut session = mqtt.connect().await?;
            session.publish("jit_conf/d1/telemetry", "1").await?;
            Ok(())
        },
        async |mqtt: &MqttGrant| -> Result<(), BoxError> {
            let mut session = mqtt.connect().await?;
            session.publish("jit_conf/d1/commands", "1").await?;
            Ok(())
        },
    )
    .await;
    println!("{report}");
    report.assert_passed();
}
