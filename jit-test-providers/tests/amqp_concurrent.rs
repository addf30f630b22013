//! 200 tests at once through the whole `amqp` lifecycle, each on a thread of its own as
//! libtest runs them, on the real broker (`.ci/setup-amqp` first): none fails, and none
//! leaves a user behind. A binary of its own, so that its load does not skew the timing
//! checks of `amqp_provider`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_test::{Test, assert_denied};
use jit_test_providers::amqp::{AmqpGrant, AmqpProvider};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const QUEUE: &str = "jit_p.orders.q";
const TESTS: usize = 200;

/// At most this many of the tests' own connections at once: RabbitMQ's accept queue
/// (128) overflows, and drops connections, when hundreds arrive in the same instant.
static SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);

async fn body(amqp: AmqpGrant) -> Result<(), BoxError> {
    let _session = SESSIONS.acquire().await?;
    let connection = amqp.connect().await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_get(QUEUE.into(), BasicGetOptions::default())
        .await?;
    let other = connection.create_channel().await?;
    assert_denied!(
        other
            .basic_get("jit_p.other".into(), BasicGetOptions::default())
            .await
    );
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_hundred_concurrent_tests_pass_and_leave_no_user() {
    let provider = jit_test::provider::<AmqpProvider>().unwrap();
    runtime().block_on(async {
        let admin = provider.admin_connection().await.unwrap();
        let channel = admin.create_channel().await.unwrap();
        for queue in [QUEUE, "jit_p.other"] {
            channel
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
    });
    let users: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..TESTS)
        .map(|i| {
            let users = Arc::clone(&users);
            std::thread::spawn(move || {
                Test::new(format!("amqp_concurrent::test_{i}"))
                    .scope(format!("amqp:read:/{QUEUE}"))
                    // Bodies wait for a session turn: on a busy 2-core machine the last
                    // ones start long after their grant.
                    .ttl(Duration::from_secs(180))
                    .timeout(Duration::from_secs(300))
                    .run(move |(amqp,): (AmqpGrant,)| {
                        users.lock().unwrap().push(amqp.user().to_owned());
                        body(amqp)
                    })
            })
        })
        .collect();
    let failed = threads.into_iter().filter_map(|t| t.join().err()).count();
    assert_eq!(failed, 0, "{failed} of {TESTS} tests failed");
    let mut users = users.lock().unwrap().clone();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), TESTS, "every test had a user of its own");
    let left: Vec<_> = runtime()
        .block_on(provider.lease_users())
        .unwrap()
        .into_iter()
        .filter(|(name, _)| users.contains(name))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
