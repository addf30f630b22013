//! 200 tests through the whole `amqp` lifecycle at once, on the real broker
//! (`.ci/setup-amqp` first): all pass, and no user is left. A binary of its own, so its
//! load does not skew the timing checks of `amqp_provider`.

use std::sync::Arc;
use std::time::Duration;

use jit_test::{Broker, Config, LeaseRequest, Scope};
use jit_test_providers::amqp::{AmqpGrant, AmqpProvider, AmqpSettings};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const QUEUE: &str = "jit_p.orders.q";

async fn get(amqp: &AmqpGrant) -> Result<(), BoxError> {
    let connection = amqp.connect().await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_get(QUEUE.into(), BasicGetOptions::default())
        .await?;
    connection.close(200, "done".into()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_lifecycles_leave_no_user() {
    // 400 logins at once queue up at the broker for longer than the default 5 s.
    let mut config = Config::global().clone();
    config.providers = toml::from_str("[amqp]\nconnect_timeout = \"60s\"").unwrap();
    let provider = Arc::new(AmqpProvider::new(
        AmqpSettings::from_config(&config).unwrap(),
    ));
    let started = std::time::Instant::now();
    let admin = provider.admin_connection().await.unwrap();
    let channel = admin.create_channel().await.unwrap();
    channel
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let broker = Arc::new(Broker::new(Config::global().clone()));
    let permissions = Scope::parse(&format!("amqp:read:/{QUEUE}"))
        .unwrap()
        .permissions;
    let mut tasks = Vec::new();
    for n in 0..200 {
        let (broker, provider, permissions) = (
            Arc::clone(&broker),
            Arc::clone(&provider),
            permissions.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ask = LeaseRequest::new(
                format!("amqp_concurrent::test{n}"),
                permissions,
                Duration::from_secs(120),
            );
            let lease = broker.acquire(&provider, ask).await?;
            let principal = lease.info().principal.clone();
            get(lease.credential().unwrap()).await?;
            lease.release().await?;
            Ok::<_, BoxError>(principal)
        }));
    }
    let mut principals = Vec::new();
    for task in tasks {
        principals.push(task.await.unwrap().unwrap());
    }
    println!("200 lifecycles in {:?}", started.elapsed());
    principals.sort();
    principals.dedup();
    assert_eq!(principals.len(), 200);
    let left: Vec<_> = provider
        .lease_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|(name, _)| principals.contains(name))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
