//! 200 tests at once, each on a thread of its own as libtest runs them, through the whole
//! lifecycle against the real broker; none fails and none leaves a client behind. In a
//! file of its own so that no other test of this process holds clients meanwhile.

use std::sync::{Arc, Mutex};

use jit_test::{Test, assert_denied};
use jit_test_providers::mqtt::{MqttError, MqttGrant, MqttProvider};
use serde_json::json;

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn two_hundred_concurrent_tests_all_pass_and_leave_no_client() {
    const TESTS: usize = 200;
    // At most this many of the tests' own sessions connect at once (the broker's listen
    // backlog is 100).
    static SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(40);
    let names: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..TESTS)
        .map(|i| {
            let names = Arc::clone(&names);
            std::thread::Builder::new()
                .name(format!("mqtt_concurrency::test_{i}"))
                .spawn(move || {
                    Test::new(format!("mqtt_concurrency::test_{i}"))
                        .scope(format!("mqtt:publish:jit_cc/d{i}/telemetry"))
                        .run(move |(mqtt,): (MqttGrant,)| {
                            let names = Arc::clone(&names);
                            async move {
                                names.lock().unwrap().push(mqtt.username().to_owned());
                                let _session = SESSIONS.acquire().await.unwrap();
                                let mut session = mqtt.connect().await?;
                                session
                                    .publish(&format!("jit_cc/d{i}/telemetry"), "1")
                                    .await?;
                                assert_denied!(
                                    session.publish("jit_cc/other/telemetry", "1").await
                                );
                                session.disconnect().await;
                                Ok::<(), MqttError>(())
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
    let mut names = names.lock().unwrap().clone();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), TESTS, "every test had a client of its own");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listed = runtime.block_on(async {
        let provider = jit_test::provider::<MqttProvider>().unwrap();
        provider
            .control(vec![
                json!({ "command": "listClients", "count": -1 }),
                json!({ "command": "listRoles", "count": -1 }),
            ])
            .await
            .unwrap()
    });
    let mine = format!("_{}_", std::process::id());
    let left: Vec<&str> = listed
        .iter()
        .flat_map(|r| {
            let list = r["data"]["clients"]
                .as_array()
                .or(r["data"]["roles"].as_array());
            list.into_iter().flatten().filter_map(|n| n.as_str())
        })
        .filter(|n| n.starts_with("jit_") && n.contains(&mine))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
