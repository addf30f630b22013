//! `jit_test::conformance::check` against the `mysql` provider and the real server.

mod mysql_support;

use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test_providers::mysql::MysqlGrant;
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_provider_keeps_the_contract() {
    drop(mysql_support::admin().await);
    let plan = Plan {
        scope: "mysql:select:jit_my.items",
        invalid: "mysql:fly:jit_my.items",
        short_ttl: Duration::from_secs(2),
    };
    let report = conformance::check(
        mysql_support::provider(),
        plan,
        async |db: &MysqlGrant| -> Result<(), BoxError> {
            let mut conn = db.connect().await?;
            conn.query_drop("SELECT id FROM jit_my.items").await?;
            Ok(())
        },
        async |db: &MysqlGrant| -> Result<(), BoxError> {
            let mut conn = db.connect().await?;
            conn.query_drop("DELETE FROM jit_my.items").await?;
            Ok(())
        },
    )
    .await;
    println!("{report}");
    report.assert_passed();
}
