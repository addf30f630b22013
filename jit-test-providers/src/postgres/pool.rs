//! The admin connections: a small pool, made lazily, living on the broker's runtime.
//!
//! Every admin connection is opened *and* driven on `jit_test::broker_runtime()`,
//! which lives as long as the process, so a provider used from any runtime (the broker's,
//! a `#[tokio::test]`'s, a benchmark's) never holds a connection bound to a runtime that
//! has gone away.

use std::sync::Mutex;
use std::time::Duration;

use jit_test::ProviderError;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use super::handoff::on_broker;
use super::outage::Outage;
use super::settings::{PgSettings, URL_VAR, address};

/// Settings of every admin session.
const ADMIN_SESSION: &str = "SET plan_cache_mode = force_generic_plan; \
                             SET lock_timeout = '10s'; SET statement_timeout = '60s'";

/// A pool of admin connections.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    source: &'static str,
    timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
    outage: Outage,
}

/// An idle connection and the statement prepared on it, if any.
type Idle = (Client, Option<Statement>);

/// A connection taken from the pool; it goes back when dropped unless marked broken.
pub(crate) struct Conn<'a> {
    client: Option<Client>,
    /// The effective-privilege query, prepared once per connection.
    effective: Option<Statement>,
    pool: &'a Pool,
    broken: bool,
    _permit: SemaphorePermit<'a>,
}

impl Conn<'_> {
    /// The client.
    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }

    /// The effective-privilege query, prepared on this connection.
    pub(crate) async fn effective(&mut self) -> Result<Statement, tokio_postgres::Error> {
        if self.effective.is_none() {
            let statement = self.client().prepare(super::effective::QUERY).await?;
            self.effective = Some(statement);
        }
        Ok(self.effective.clone().expect("prepared"))
    }

    /// Keeps the connection out of the pool (after an error left it in an unknown state).
    pub(crate) fn discard(&mut self) {
        self.broken = true;
    }

    /// Ends a failed transaction; a connection that cannot is not reused.
    pub(crate) async fn rollback(&mut self) {
        if self.client().batch_execute("ROLLBACK").await.is_err() {
            self.discard();
        }
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
                .push((client, self.effective.take()));
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
            outage: Outage::default(),
        }
    }

    /// The admin connection's configuration.
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Takes an idle connection or opens one, waiting while `pool_size` are in use.
    /// During an outage (see [`Outage`]) fails at once with the error that started it.
    pub(crate) async fn get(&self) -> Result<Conn<'_>, ProviderError> {
        self.outage.check()?;
        let permit = self.permits.acquire().await.expect("never closed");
        let idle = loop {
            let candidate = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match candidate {
                Some((client, _)) if client.is_closed() => continue,
                other => break other,
            }
        };
        let (client, effective) = match idle {
            Some(idle) => idle,
            None => (self.connect(None).await?, None),
        };
        Ok(Conn {
            client: Some(client),
            effective,
            pool: self,
            broken: false,
            _permit: permit,
        })
    }

    /// Opens an admin connection outside the pool, to `database` if given. During an
    /// outage (see [`Outage`]) fails at once with the error that started it.
    pub(crate) async fn connect(&self, database: Option<&str>) -> Result<Client, ProviderError> {
        self.outage.check()?;
        let mut config = self.config.clone();
        if let Some(database) = database {
            config.dbname(database);
        }
        let result = connect_on_broker_runtime(config, self.timeout, self.source).await;
        self.outage.record(&result);
        result
    }
}

/// What to do about an admin login the server refused, by its SQLSTATE.
fn admin_login_advice(code: &SqlState, database: &str) -> String {
    if *code == SqlState::INVALID_PASSWORD {
        format!("check the user and password in the URL ({URL_VAR})")
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        format!(
            "the server refused this user here (pg_hba.conf, or a role without LOGIN): check              the user in the URL ({URL_VAR}) and the server's pg_hba.conf"
        )
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        format!("there is no database {database:?}: name an existing one in the URL ({URL_VAR})")
    } else if *code == SqlState::TOO_MANY_CONNECTIONS {
        "the server has no connection slot left: raise its max_connections, or lower pool_size \
         under [providers.pg]"
            .to_owned()
    } else {
        format!("give it a superuser or a role with CREATEROLE (set {URL_VAR})")
    }
}

/// Connects with `config` on the broker's runtime and keeps the connection driven there.
async fn connect_on_broker_runtime(
    config: tokio_postgres::Config,
    timeout: Duration,
    source: &'static str,
) -> Result<Client, ProviderError> {
    let address = address(&config);
    let database = config.get_dbname().unwrap_or("postgres").to_owned();
    let at = address.clone();
    let unreachable = move |reason: String| ProviderError::Unreachable {
        system: "PostgreSQL",
        address: at.clone(),
        setting: URL_VAR,
        reason: format!("{reason} (the address comes from {source})"),
    };
    let timeout_text = humantime::format_duration(timeout).to_string();
    // Startup and authentication are bounded too, not only the TCP connect.
    let attempt = async move {
        let connected =
            tokio::time::timeout(timeout + Duration::from_secs(1), config.connect(NoTls));
        let (client, connection) = match connected.await {
            Err(_) => return Err(unreachable(format!("no answer within {timeout_text}"))),
            Ok(Err(e)) => return Err(refused(&e, &unreachable, &address, source, &database)),
            Ok(Ok(connected)) => connected,
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        // One plan for the effective-privilege query, made once per connection; no
        // admin statement waits on a lock or runs forever.
        match client.batch_execute(ADMIN_SESSION).await {
            Ok(()) => Ok(client),
            Err(e) => Err(refused(&e, &unreachable, &address, source, &database)),
        }
    };
    on_broker("admin login", attempt, drop).await
}

/// An admin login that failed: refused by the server (with advice by SQLSTATE), else
/// unreachable.
fn refused(
    e: &tokio_postgres::Error,
    unreachable: &impl Fn(String) -> ProviderError,
    address: &str,
    source: &str,
    database: &str,
) -> ProviderError {
    match e.as_db_error() {
        Some(db) => ProviderError::Failed {
            operation: "admin login",
            message: format!(
                "{} (SQLSTATE {}) at {address}; the admin connection comes from {source}: {}",
                db.message(),
                db.code().code(),
                admin_login_advice(db.code(), database)
            ),
        },
        None => unreachable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_login_advice_fits_the_sqlstate() {
        let advice = |code| admin_login_advice(&code, "shop");
        assert!(advice(SqlState::INVALID_PASSWORD).contains("password in the URL"));
        assert!(advice(SqlState::INVALID_CATALOG_NAME).contains("no database \"shop\""));
        assert!(advice(SqlState::TOO_MANY_CONNECTIONS).contains("max_connections"));
        assert!(advice(SqlState::INSUFFICIENT_PRIVILEGE).contains("CREATEROLE"));
        for code in [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_CATALOG_NAME,
            SqlState::TOO_MANY_CONNECTIONS,
        ] {
            assert!(!advice(code.clone()).contains("CREATEROLE"), "{code:?}");
        }
    }
}
