//! `jit_test::conformance::check` against the `redis` provider and the real server.

use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test_providers::redis::{RedisGrant, RedisProvider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_provider_keeps_the_contract() {
    let provider = jit_test::provider::<RedisProvider>().unwrap();
    let plan = Plan {
        scope: "redis:command(get,set):jit_conf:*",
        invalid: "redis:fly:jit_conf:*",
        short_ttl: Duration::from_secs(2),
    };
    let report = conformance::check(
        provider,
        plan,
        async |redis: &RedisGrant| -> Result<(), BoxError> {
            let mut con = redis.connect().await?;
            redis::cmd("SET")
                .arg("jit_conf:a")
                .arg("1")
                .query_async::<()>(&mut con)
                .await?;
            Ok(())
        },
        async |redis: &RedisGrant| -> Result<(), BoxError> {
            let mut con = redis.connect().await?;
            redis::cmd("GET")
                .arg("jit_other:a")
                .query_async::<Option<String>>(&mut con)
                .await?;
            Ok(())
        },
    )
    .await;
    println!("{report}");
    report.assert_passed();
}
