//! The admin connection: one multiplexed connection per process, driven on the broker's
//! runtime (so that it outlives every test's runtime), made again after a broken one;
//! beside it, one that never logs in, for proofs of death. Every failure to reach the
//! server becomes [`ProviderError::Unreachable`] naming the address and the setting,
//! within `connect_timeout`.

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, Pipeline, RedisError, cmd};
use jit_test::{ProviderError, Secret};

use super::credential::login_info;
use super::settings::{RedisSettings, URL_VAR};

/// The setting named in "unreachable" errors.
const SETTING: &str = "JIT_TEST_REDIS_URL (or `url` in [providers.redis])";

/// A connection made on first use and kept until it breaks.
struct Cached {
    client: Client,
    slot: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Cached {
    fn new(client: Client) -> Cached {
        Cached {
            client,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// The kept connection, or a new one made on the broker's runtime.
    async fn get(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, RedisError> {
        let mut slot = self.slot.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = connect(&self.client, config).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Drops the kept connection: the next [`Cached::get`] makes a new one.
    fn forget(&self) {
        if let Ok(mut slot) = self.slot.try_lock() {
            *slot = None;
        }
    }
}

/// The admin side of the provider.
pub(crate) struct Admin {
    admin: Cached,
    /// Never logged in (the server's `default` user until an `AUTH` succeeds).
    prover: Cached,
    config: AsyncConnectionConfig,
    address: String,
}

impl Admin {
    /// An admin for `settings`; connects lazily.
    pub(crate) fn new(settings: &RedisSettings) -> Result<Admin, ProviderError> {
        let open = |info| {
            Client::open(info).map_err(|e| {
                ProviderError::Misconfigured(format!(
                    "the Redis URL in {} is not usable ({}); set {URL_VAR}",
                    settings.source,
                    e.category()
                ))
            })
        };
        Ok(Admin {
            admin: Cached::new(open(settings.admin.clone())?),
            prover: Cached::new(open(login_info(&settings.admin, None))?),
            config: timeouts(settings),
            address: settings.address(),
        })
    }

    /// The server's address, without credentials.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Runs one command as the admin.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, ProviderError> {
        let (reply,): (T,) = self
            .pipeline(::redis::pipe().add_command(command.clone()))
            .await?;
        Ok(reply)
    }

    /// Runs a pipeline as the admin.
    pub(crate) async fn pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> Result<T, ProviderError> {
        let mut connection = self
            .admin
            .get(&self.config)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let result = pipeline.query_async(&mut connection).await;
        self.check(&self.admin, result)
    }

    /// Sends `AUTH user password` on the connection that never logged in. A success
    /// makes that connection the user's, so it is dropped then.
    pub(crate) async fn try_login(
        &self,
        user: &str,
        password: &Secret,
    ) -> Result<Result<(), RedisError>, ProviderError> {
        let mut connection = self
            .prover
            .get(&self.config)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let auth = cmd("AUTH")
            .arg(user)
            .arg(password.expose())
            .query_async::<()>(&mut connection)
            .await;
        match auth {
            Ok(()) => {
                self.prover.forget();
                Ok(Ok(()))
            }
            Err(e) if is_connection_error(&e) => {
                self.prover.forget();
                Err(self.unreachable(&e))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Passes a server's answer through; after a broken connection, `cached` is
    /// forgotten (the next call connects again) and the error is "unreachable".
    fn check<T>(&self, cached: &Cached, result: Result<T, RedisError>) -> Result<T, ProviderError> {
        result.map_err(|e| {
            if is_connection_error(&e) {
                cached.forget();
                self.unreachable(&e)
            } else {
                ProviderError::failed("redis", describe(&e))
            }
        })
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
fn is_connection_error(error: &RedisError) -> bool {
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
