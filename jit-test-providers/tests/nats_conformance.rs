//! `jit_test::conformance::check` against the `nats` provider and the operator-mode
//! server, and 200 concurrent tests through the whole lifecycle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test::{Test, assert_denied, assert_unauthenticated};
use jit_test_providers::nats::{NatsGrant, NatsProvider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_provider_keeps_the_contract() {
    let provider = jit_test::provider::<NatsProvider>().unwrap();
    let plan = Plan {
        scope: "nats:publish:conformance.items, nats:subscribe:conformance.items",
        invalid: "nats:publish:conformance..items",
        short_ttl: Duration::from_secs(2),
    };
    let report = conformance::check(
        provider,
        plan,
        async |nats: &NatsGrant| -> Result<(), BoxError> {
            let conn = nats.connect().await?;
            let _sub = conn.subscribe("conformance.items").await?;
            conn.publish("conformance.items", "x").await?;
            Ok(())
        },
        async |nats: &NatsGrant| -> Result<(), BoxError> {
            let conn = nats.connect().await?;
            conn.publish("conformance.other", "x").await?;
            Ok(())
        },
    )
    .await;
    println!("{report}");
    report.assert_passed();
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

#[test]
fn two_hundred_concurrent_tests_pass_and_every_user_is_revoked() {
    const TESTS: usize = 200;
    let users: Arc<Mutex<Vec<(String, NatsGrant)>>> = Arc::default();
    let threads: Vec<_> = (0..TESTS)
        .map(|i| {
            let users = Arc::clone(&users);
            std::thread::Builder::new()
                .name(format!("nats_conformance::concurrent_{i}"))
                .spawn(move || {
                    Test::new(format!("nats_conformance::concurrent_{i}"))
                        .scope("nats:publish:concurrent.orders, nats:subscribe:concurrent.orders")
                        .run(move |(nats,): (NatsGrant,)| {
                            let users = Arc::clone(&users);
                            async move {
                                users
                                    .lock()
                                    .unwrap()
                                    .push((nats.public_key().to_owned(), nats.clone()));
                                let conn = nats.connect().await?;
                                let _sub = conn.subscribe("concurrent.orders").await?;
                                conn.publish("concurrent.orders", "x").await?;
                                assert_denied!(conn.publish("concurrent.refunds", "x").await);
                                Ok::<(), jit_test_providers::nats::NatsError>(())
                            }
                        })
                })
                .unwrap()
        })
        .collect();
    let failed: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().err().map(|p| panic_text(p.as_ref())))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {TESTS} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let users = users.lock().unwrap().clone();
    let mut keys: Vec<&str> = users.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), TESTS, "every test had a user of its own");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let provider = jit_test::provider::<NatsProvider>().unwrap();
        let revoked = provider.revocations().await.unwrap();
        let lost: Vec<&&str> = keys.iter().filter(|k| !revoked.contains_key(**k)).collect();
        assert!(lost.is_empty(), "revocations lost: {lost:?}");
        for (_, grant) in users.iter().step_by(20) {
            assert_unauthenticated!(grant.connect().await);
        }
    });
}
