//! A read-through cache of the order list in Redis, in front of any [`OrderStore`].
//!
//! [`CachedStore`] keeps the JSON of `GET /orders` under `<namespace>:list` for a minute,
//! and deletes it whenever an order is placed or deleted. One namespace per tenant
//! (`orders:<tenant>`), so a deployment's Redis user needs exactly
//!
//! ```text
//! redis:command(get,set,del):orders:<tenant>:*
//! ```
//!
//! and nothing on other tenants' keys or on the server (`tests/orders_redis.rs`, run with
//! `cargo test -p examples --features redis` and the Redis of `JIT_TEST_REDIS_URL`, by
//! default `redis://127.0.0.1:6379`).

use redis::aio::MultiplexedConnection;

use crate::store::{Order, OrderStore, StoreError};

/// How long a cached list lives, in seconds, should an invalidation be lost.
const TTL_SECONDS: u64 = 60;

/// Orders from `inner`, with the list cached in Redis.
pub struct CachedStore<S> {
    inner: S,
    redis: MultiplexedConnection,
    key: String,
}

impl<S: OrderStore> CachedStore<S> {
    /// Caches `inner`'s list under `<namespace>:list` through `redis` (a connection
    /// logged in as the service's user).
    pub fn new(inner: S, redis: MultiplexedConnection, namespace: &str) -> CachedStore<S> {
        CachedStore {
            inner,
            redis,
            key: format!("{namespace}:list"),
        }
    }

    /// The key holding the cached list.
    pub fn key(&self) -> &str {
        &self.key
    }

    async fn invalidate(&self) -> Result<(), StoreError> {
        let mut redis = self.redis.clone();
        redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut redis)
            .await?;
        Ok(())
    }
}

impl<S: OrderStore> OrderStore for CachedStore<S> {
    async fn list(&self) -> Result<Vec<Order>, StoreError> {
        let mut redis = self.redis.clone();
        let cached: Option<String> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut redis)
            .await?;
        if let Some(json) = cached {
            return Ok(serde_json::from_str(&json)?);
        }
        let orders = self.inner.list().await?;
        redis::cmd("SET")
            .arg(&self.key)
            .arg(serde_json::to_string(&orders)?)
            .arg("EX")
            .arg(TTL_SECONDS)
            .query_async::<()>(&mut redis)
            .await?;
        Ok(orders)
    }

    async fn insert(&self, sku: &str) -> Result<Order, StoreError> {
        let order = self.inner.insert(sku).await?;
        self.invalidate().await?;
        Ok(order)
    }

    async fn delete(&self, id: u64) -> Result<bool, StoreError> {
        let deleted = self.inner.delete(id).await?;
        self.invalidate().await?;
        Ok(deleted)
    }
}
