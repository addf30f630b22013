#![cfg(feature = "redis")]
//! The orders service with its list cached in Redis, under least privilege: the cache
//! logs in as the test's short-lived ACL user (a `RedisGrant`) that may run `GET`, `SET`
//! and `DEL` on its tenant's keys and nothing else, the HTTP caller holds the test's
//! token (a `TokenGrant`).
//!
//! Needs a Redis 7 server (`JIT_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; see
//! jit-test-providers' `redis` module): `cargo test -p examples --features redis`.
//!
//! Keys of all tests share the server: each test caches under a namespace of its own,
//! named after its user, inside the tenant prefix its scope names.

use std::time::{Duration, SystemTime};

use examples::cache::CachedStore;
use examples::client::{ApiError, Client};
use examples::{AppState, MemoryStore, OrderStore, serve};
use jit_test::{HttpStatus, assert_denied, assert_unauthenticated, jit_test};
use jit_test_providers::redis::RedisGrant;
use jit_test_providers::token::{TokenAuthority, TokenGrant};
use redis::cmd;

/// A cache for tenant `tenant`, in a namespace of this test's own.
async fn cache(redis: &RedisGrant, tenant: &str) -> anyhow::Result<CachedStore<MemoryStore>> {
    let namespace = format!("orders:{tenant}:{}", redis.user());
    Ok(CachedStore::new(
        MemoryStore::default(),
        redis.connect().await?,
        &namespace,
    ))
}

/// The happy path: the list is served from the cache and invalidated by a new order.
/// `deny` proves before the body runs that the cache's user can neither flush the
/// server nor read another tenant's orders.
#[jit_test(
    scope = "token:read:orders, token:write:orders, redis:command(get,set,del):orders:acme:*",
    deny = "redis:command(flushall):*, redis:read:orders:globex:*"
)]
async fn customer_lists_orders_through_the_cache(
    token: TokenGrant,
    redis: RedisGrant,
) -> anyhow::Result<()> {
    let store = cache(&redis, "acme").await?;
    let key = store.key().to_owned();
    let server = serve(AppState::new(TokenAuthority::shared().verifier(), store)).await?;
    let customer = Client::new(server.addr(), token.token());
    assert_eq!(customer.list_orders().await?, []);
    let order = customer.place_order("a1").await?;
    assert_eq!(customer.list_orders().await?, [order]);
    // What the service cached, read with the service's own credential.
    let mut con = redis.connect().await?;
    let cached: Option<String> = cmd("GET").arg(&key).query_async(&mut con).await?;
    assert!(cached.is_some_and(|json| json.contains("\"a1\"")));
    Ok(())
}

/// The cache's user reaches its tenant's keys and nothing else: another tenant's keys
/// and server-wide commands are refused with `NOPERM`. A service deployed with another
/// tenant's namespace fails (500): the caller was allowed, the deployment is wrong.
#[jit_test(scope = "token:read:orders, redis:command(get,set,del):orders:acme:*")]
async fn the_cache_cannot_reach_another_tenant_or_the_server(
    token: TokenGrant,
    redis: RedisGrant,
) -> anyhow::Result<()> {
    let mut con = redis.connect().await?;
    let other = cmd("GET").arg("orders:globex:list").clone();
    assert_denied!(other.query_async::<Option<String>>(&mut con).await);
    assert_denied!(cmd("FLUSHALL").query_async::<()>(&mut con).await);
    assert_denied!(
        cmd("KEYS")
            .arg("*")
            .query_async::<Vec<String>>(&mut con)
            .await
    );
    assert_denied!(
        cmd("EXPIRE")
            .arg("orders:acme:x")
            .arg(1)
            .query_async::<i64>(&mut con)
            .await
    );

    let misdeployed = cache(&redis, "globex").await?;
    assert_denied!(misdeployed.list().await);
    let server = serve(AppState::new(
        TokenAuthority::shared().verifier(),
        misdeployed,
    ))
    .await?;
    let refused = Client::new(server.addr(), token.token())
        .list_orders()
        .await;
    assert!(
        matches!(
            refused,
            Err(ApiError::Status {
                status: HttpStatus(500),
                ..
            })
        ),
        "a refused cache read is the service's failure: {refused:?}"
    );
    Ok(())
}

/// Redis users do not expire: at the ttl the broker's watchdog deletes the user, which
/// closes the cache's live connection, and the password is refused from then on.
#[jit_test(scope = "redis:command(get,set,del):orders:acme:*", ttl = "2s")]
async fn a_cache_credential_that_expires_mid_test_is_cut_off(
    redis: RedisGrant,
) -> anyhow::Result<()> {
    let store = cache(&redis, "acme").await?;
    store
        .insert("a1")
        .await
        .map_err(anyhow::Error::from_boxed)?;
    let listed = store.list().await.map_err(anyhow::Error::from_boxed)?;
    assert_eq!(listed.len(), 1);

    let left = redis
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(500)).await;
    assert!(
        store.list().await.is_err(),
        "the cache's connection outlived its user"
    );
    assert_unauthenticated!(redis.connect().await);
    Ok(())
}
