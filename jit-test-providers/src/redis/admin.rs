//! The admin connection: one multiplexed connection per process, driven on the broker's
//! runtime (so that it outlives every test's runtime), made again after a broken one.
//! Every failure to reach the server becomes [`ProviderError::Unreachable`] naming the
//! address and the setting, within `connect_timeout`.

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, Pipeline, RedisError};
use jit_test::ProviderError;

use super::settings::{RedisSettings, URL_VAR};

/// The setting named in "unreachable" errors.
const SETTING: &str = "JIT_TEST_REDIS_URL (or `url` in [providers.redis])";

/// The admin side of the provider.
pub(crate) struct Admin {
    client: Client,
    config: AsyncConnectionConfig,
    address: String,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Admin {
    /// An admin for `settings`; connects lazily.
    pub(crate) fn new(settings: &RedisSettings) -> Result<Admin, ProviderError> {
        let client = Client::open(settings.admin.clone()).map_err(|e| {
            ProviderError::Misconfigured(format!(
                "the Redis URL in {} is not usable ({}); set {URL_VAR}",
                settings.source,
                e.category()
            ))
        })?;
        Ok(Admin {
            client,
            config: timeouts(settings),
            address: settings.address(),
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// The server's address, without credentials.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Runs one command as the admin.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, ProviderError> {
        let mut connection = self.connection().await?;
        let result = command.query_async(&mut connection).await;
        self.check(result)
    }

    /// Runs a pipeline as the admin.
    pub(crate) async fn pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> Result<T, ProviderError> {
        let mut connection = self.connection().await?;
        let result = pipeline.query_async(&mut connection).await;
        self.check(result)
    }

    /// Passes a server's answer through; a broken connection is forgotten (the next call
    /// connects again) and reported as unreachable.
    fn check<T>(&self, result: Result<T, RedisError>) -> Result<T, ProviderError> {
        result.map_err(|e| {
            if is_connection_error(&e) {
                if let Ok(mut cached) = self.connection.try_lock() {
                    *cached = None;
                }
                self.unreachable(&e)
            } else {
                ProviderError::failed("redis", describe(&e))
            }
        })
    }

    /// The cached connection, or a new one made on the broker's runtime.
    async fn connection(&self) -> Result<MultiplexedConnection, ProviderError> {
        let mut cached = self.connection.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Ok(connection.clone());
        }
        let connection = connect(&self.client, &self.config)
            .await
            .map_err(|e| self.unreachable(&e))?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    /// [`ProviderError::Unreachable`] for `error`.
    pub(crate) fn unreachable(&self, error: &RedisError) -> ProviderError {
        ProviderError::Unreachable {
            system: "Redis",
            address: self.address.clone(),
            setting: SETTING,
            reason: describe(error),
        }
    }

    /// A fresh connection without any login (the server's `default` user until `AUTH`),
    /// on the broker's runtime: for proofs of death.
    pub(crate) async fn anonymous(
        &self,
        settings: &RedisSettings,
    ) -> Result<MultiplexedConnection, ProviderError> {
        let info = super::credential::login_info(&settings.admin, None);
        let client = Client::open(info).map_err(|e| self.unreachable(&e))?;
        connect(&client, &self.config)
            .await
            .map_err(|e| self.unreachable(&e))
    }
}

/// Connects on the broker's runtime, which then drives the connection.
async fn connect(
    client: &Client,
    config: &AsyncConnectionConfig,
) -> Result<MultiplexedConnection, RedisError> {
    let (client, config) = (client.clone(), config.clone());
    jit_test::broker_runtime()
        .spawn(async move {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        })
        .await
        .map_err(|e| RedisError::from(std::io::Error::other(e.to_string())))?
}

fn timeouts(settings: &RedisSettings) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.connect_timeout))
}

/// Whether `error` says the server could not be reached or stopped answering.
pub(crate) fn is_connection_error(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
}

/// A server or client error as one line: the server's code and message, or the client's
/// description. Never holds a command (which could hold a password hash).
pub(crate) fn describe(error: &RedisError) -> String {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => error.to_string(),
    }
}
