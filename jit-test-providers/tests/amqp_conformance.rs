//! `jit_test::conformance::check` against the `amqp` provider and the real broker
//! (`.ci/setup-amqp` first).

use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test_providers::amqp::{AmqpGrant, AmqpProvider};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

const QUEUE: &str = "jit_conf.items";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_amqp_provider_keeps_the_contract() {
    let provider = jit_test::provider::<AmqpProvider>().unwrap();
    let admin = provider.admin_connection().await.unwrap();
    let channel = admin.create_channel().await.unwrap();
    for queue in [QUEUE, "jit_conf.other"] {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let plan = Plan {
        scope: "amqp:read:/jit_conf.items",
        invalid: "amqp:consume:/jit_conf.items",
        short_ttl: Duration::from_secs(2),
    };
    let get = async |amqp: &AmqpGrant, queue: &str| -> Result<(), BoxError> {
        let channel = amqp.connect().await?.create_channel().await?;
        channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await?;
        Ok(())
    };
    let report = conformance::check(
        provider,
        plan,
        async |amqp: &AmqpGrant| get(amqp, QUEUE).await,
        async |amqp: &AmqpGrant| get(amqp, "jit_conf.other").await,
    )
    .await;
    println!("{report}");
    report.assert_passed();
}
