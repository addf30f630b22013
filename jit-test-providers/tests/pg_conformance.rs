//! `jit_test::conformance::check` against the `pg` provider and the real server.

use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test_providers::postgres::{PgGrant, PgProvider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pg_provider_keeps_the_contract() {
    let provider = jit_test::provider::<PgProvider>().unwrap();
    let admin = provider.admin_client().await.unwrap();
    admin
        .batch_execute(
            "SELECT pg_advisory_xact_lock(4242, 3);
             CREATE SCHEMA IF NOT EXISTS jit_conf;
             CREATE TABLE IF NOT EXISTS jit_conf.items (id int);",
        )
        .await
        .unwrap();
    let plan = Plan {
        scope: "pg:select:jit_conf.items",
        invalid: "pg:fly:jit_conf.items",
        short_ttl: Duration::from_secs(2),
    };
    let report = conformance::check(
        provider,
        plan,
        async |pg: &PgGrant| -> Result<(), BoxError> {
            let db = pg.connect().await?;
            db.query("SELECT id FROM jit_conf.items", &[]).await?;
            Ok(())
        },
        async |pg: &PgGrant| -> Result<(), BoxError> {
            let db = pg.connect().await?;
            db.execute("DELETE FROM jit_conf.items", &[]).await?;
            Ok(())
        },
    )
    .await;
    println!("{report}");
    report.assert_passed();
}
