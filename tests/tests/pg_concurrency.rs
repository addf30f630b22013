//! 200 tests granting on the same tables at once, each on a thread of its own as libtest
//! runs them, through the whole lifecycle; none fails and none leaves a role behind. In a
//! file of its own so that no other test of this process holds roles meanwhile.

use std::sync::{Arc, Mutex};

use jit_test::{Test, assert_denied};
use jit_test_providers::postgres::PgGrant;
use tokio_postgres::Client;

use tests::{PG_SCOPE as SCOPE, panic_text, pg_admin as admin, runtime};

/// Login roles of this process still on the server (lease ids hold the pid).
async fn my_login_roles(admin: &Client) -> Vec<String> {
    let pattern = format!("jit\\_%\\_{}\\_%", std::process::id());
    admin
        .query(
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 AND rolcanlogin",
            &[&pattern],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn two_hundred_concurrent_tests_on_the_same_tables_all_pass_and_leave_nothing() {
    const TESTS: usize = 200;
    // At most this many of the tests' own sessions at once (max_connections is 100).
    static SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(40);
    runtime().block_on(admin());
    let roles: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..TESTS)
        .map(|i| {
            let roles = Arc::clone(&roles);
            std::thread::Builder::new()
                .name(format!("pg_e2e::concurrent_{i}"))
                .spawn(move || {
                    Test::new(format!("pg_e2e::concurrent_{i}"))
                        .scope(SCOPE)
                        .run(move |(pg,): (PgGrant,)| {
                            let roles = Arc::clone(&roles);
                            async move {
                                roles.lock().unwrap().push(pg.role().to_owned());
                                let _session = SESSIONS.acquire().await.unwrap();
                                let db = pg.connect().await?;
                                let sku = format!("{}-{i}", pg.role());
                                db.execute("INSERT INTO jit_e2e.orders (sku) VALUES ($1)", &[&sku])
                                    .await?;
                                db.query_one(
                                    "SELECT id FROM jit_e2e.orders WHERE sku = $1",
                                    &[&sku],
                                )
                                .await?;
                                assert_denied!(db.execute("DELETE FROM jit_e2e.orders", &[]).await);
                                Ok::<(), tokio_postgres::Error>(())
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
    let mut roles = roles.lock().unwrap().clone();
    roles.sort();
    roles.dedup();
    assert_eq!(roles.len(), TESTS, "every test had a role of its own");
    runtime().block_on(async {
        let admin = admin().await;
        let left: Vec<String> = admin
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1)",
                &[&roles],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_eq!(my_login_roles(&admin).await, Vec::<String>::new());
    });
}
