//! The admin connections: a small pool, made lazily, living on the broker's runtime.
//!
//! Every admin connection is opened *and* driven on `jit_test::runner::broker_runtime()`,
//! which lives as long as the process, so a provider used from any runtime (the broker's,
//! a `#[tokio::test]`'s, a benchmark's) never holds a connection bound to a runtime that
//! has gone away.

use std::sync::Mutex;
use std::time::Duration;

use jit_test::ProviderError;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls};

use super::settings::{PgSettings, URL_VAR, address};

/// A pool of admin connections.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    source: &'static str,
    timeout: Duration,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A connection taken from the pool; it goes back when dropped unless marked broken.
pub(crate) struct Conn<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    broken: bool,
    _permit: SemaphorePermit<'a>,
}

impl Conn<'_> {
    /// The client.
    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }

    /// Keeps the connection out of the pool (after an error left it in an unknown state).
    pub(crate) fn discard(&mut self) {
        self.broken = true;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !self.broken
            && !client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client);
        }
    }
}

impl Pool {
    pub(crate) fn new(settings: &PgSettings) -> Pool {
        Pool {
            config: settings.admin.clone(),
            source: settings.source,
            timeout: settings.connect_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(settings.pool_size),
        }
    }

    /// The admin connection's configuration.
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Takes an idle connection or opens one, waiting while `pool_size` are in use.
    pub(crate) async fn get(&self) -> Result<Conn<'_>, ProviderError> {
        let permit = self.permits.acquire().await.expect("never closed");
        let idle = loop {
            let candidate = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match candidate {
                Some(client) if client.is_closed() => continue,
                other => break other,
            }
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect(None).await?,
        };
        Ok(Conn {
            client: Some(client),
            pool: self,
            broken: false,
            _permit: permit,
        })
    }

    /// Opens an admin connection outside the pool, to `database` if given.
    pub(crate) async fn connect(&self, database: Option<&str>) -> Result<Client, ProviderError> {
        let mut config = self.config.clone();
        if let Some(database) = database {
            config.dbname(database);
        }
        connect_on_broker_runtime(config, self.timeout, self.source).await
    }
}

/// Connects with `config` on the broker's runtime and keeps the connection driven there.
pub(crate) async fn connect_on_broker_runtime(
    config: tokio_postgres::Config,
    timeout: Duration,
    source: &'static str,
) -> Result<Client, ProviderError> {
    let address = address(&config);
    let unreachable = |reason: String| ProviderError::Unreachable {
        system: "PostgreSQL",
        address: address.clone(),
        setting: URL_VAR,
        reason: format!("{reason} (the address comes from {source})"),
    };
    // Startup and authentication are bounded too, not only the TCP connect.
    let attempt = jit_test::runner::broker_runtime().spawn(async move {
        match tokio::time::timeout(timeout + Duration::from_secs(1), config.connect(NoTls)).await {
            Err(_) => Err(None),
            Ok(Err(e)) => Err(Some(e)),
            Ok(Ok((client, connection))) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
        }
    });
    match attempt.await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(None)) => Err(unreachable(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        ))),
        Ok(Err(Some(e))) => match e.as_db_error() {
            Some(db) => Err(ProviderError::Failed {
                operation: "admin login",
                message: format!(
                    "{} (SQLSTATE {}) at {address}; the admin connection comes from {source}: \
                     give it a superuser or a role with CREATEROLE (set {URL_VAR})",
                    db.message(),
                    db.code().code()
                ),
            }),
            None => Err(unreachable(e.to_string())),
        },
        Err(join) => Err(unreachable(format!("the connection task failed: {join}"))),
    }
}
