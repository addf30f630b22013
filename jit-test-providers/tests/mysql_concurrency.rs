//! 200 tests granting on the same tables at once, each on a thread of its own as libtest
//! runs them, through the whole lifecycle (grant, use, denial, revoke, prove dead); none
//! fails and none leaves a user or an event behind. In a file of its own so that no other
//! test of this process holds users meanwhile.

mod mysql_support;

use std::sync::{Arc, Mutex};

use jit_test::{Test, assert_denied};
use jit_test_providers::mysql::MysqlGrant;
use mysql_async::prelude::Queryable;

const SCOPE: &str = "mysql:select:jit_my.orders, mysql:insert:jit_my.orders";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_hundred_concurrent_tests_on_the_same_tables_all_pass_and_leave_nothing() {
    const TESTS: usize = 200;
    runtime().block_on(mysql_support::admin());
    let users: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..TESTS)
        .map(|i| {
            let users = Arc::clone(&users);
            std::thread::Builder::new()
                .name(format!("mysql_concurrency::test_{i}"))
                .spawn(move || {
                    Test::new(format!("mysql_concurrency::test_{i}"))
                        .scope(SCOPE)
                        .run(move |(db,): (MysqlGrant,)| {
                            let users = Arc::clone(&users);
                            async move {
                                users.lock().unwrap().push(db.user().to_owned());
                                let mut conn = db.connect().await?;
                                let sku = format!("c{i}");
                                conn.exec_drop("INSERT INTO orders (sku) VALUES (?)", (&sku,))
                                    .await?;
                                let id: Option<i64> = conn
                                    .exec_first("SELECT id FROM orders WHERE sku = ?", (&sku,))
                                    .await?;
                                assert!(id.is_some());
                                assert_denied!(conn.query_drop("DELETE FROM orders").await);
                                conn.disconnect().await?;
                                Ok::<(), mysql_async::Error>(())
                            }
                        })
                })
                .unwrap()
        })
        .collect();
    let failed: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().err())
        .map(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {TESTS} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let mut users = users.lock().unwrap().clone();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), TESTS, "every test had a user of its own");
    runtime().block_on(async {
        let mut admin = mysql_support::admin().await;
        let pattern = format!("jit\\_%\\_{}\\_%", std::process::id());
        let left: Vec<String> = admin
            .exec(
                "SELECT User FROM mysql.user WHERE User LIKE ? UNION ALL \
                 SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_NAME LIKE ?",
                (&pattern, &pattern),
            )
            .await
            .unwrap();
        assert!(left.is_empty(), "left behind: {left:?}");
    });
}
