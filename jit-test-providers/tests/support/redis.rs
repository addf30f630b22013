//! What the `redis` tests share: the provider, an admin connection, and the password
//! inside a credential's URL.

use std::sync::Arc;

use jit_test::Secret;
use jit_test_providers::redis::RedisProvider;
use redis::IntoConnectionInfo;
use redis::aio::MultiplexedConnection;

/// The process-wide provider, from the default configuration.
pub fn provider() -> Arc<RedisProvider> {
    jit_test::provider::<RedisProvider>().unwrap()
}

/// A connection as the provider's admin.
pub async fn admin() -> MultiplexedConnection {
    redis::Client::open(provider().settings().admin.clone())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The password of a `redis://user:password@host/db` URL.
pub fn password(url: &Secret) -> String {
    let info = url.expose().into_connection_info().unwrap();
    info.redis_settings().password().unwrap().to_owned()
}
