//! `[providers.pg]` settings and the admin connection's address.

use std::time::Duration;

use jit_test::{Config, ProviderError};
use tokio_postgres::config::Host;

/// The variable to set to choose the admin server; named in every "unreachable" error.
pub const URL_VAR: &str = "JIT_TEST_PG_URL";

/// The admin connection used when nothing else is configured.
pub const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

const KEYS: [&str; 8] = [
    "url",
    "strict",
    "allow_trust",
    "connection_limit",
    "pool_size",
    "connect_timeout",
    "keep_owned_objects",
    "scram_iterations",
];

/// The resolved settings of the `pg` provider.
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// The admin connection (its Debug output redacts the password).
    pub admin: tokio_postgres::Config,
    /// Where `admin` came from: `JIT_TEST_PG_URL`, `DATABASE_URL`, `[providers.pg] url`
    /// or `the default`.
    pub source: &'static str,
    /// Fail a grant whose role can do more than its scope.
    pub strict: bool,
    /// Run even where the server would not check the roles' passwords.
    pub allow_trust: bool,
    /// `CONNECTION LIMIT` of each login role.
    pub connection_limit: u32,
    /// Admin connections kept open at most.
    pub pool_size: usize,
    /// How long to wait for the server to answer a connection.
    pub connect_timeout: Duration,
    /// On revocation, hand objects the role created to the admin instead of dropping them.
    pub keep_owned_objects: bool,
    /// PBKDF2 iterations of the roles' SCRAM-SHA-256 verifiers; 1 by default, as the
    /// passwords are 128 random bits that stretching cannot make any harder to guess
    /// (4096 for clients that refuse fewer).
    pub scram_iterations: u32,
}

fn misconfigured(message: String) -> ProviderError {
    ProviderError::Misconfigured(format!("[providers.pg]: {message}"))
}

/// An on/off variable, read by jit-test's one rule for them.
fn flag(var: &str) -> Result<Option<bool>, ProviderError> {
    jit_test::config::env_flag(var).map_err(|e| ProviderError::Misconfigured(e.to_string()))
}

impl PgSettings {
    /// Reads the settings: the admin URL from `JIT_TEST_PG_URL`, else `DATABASE_URL`,
    /// else `url` in `[providers.pg]`, else [`DEFAULT_URL`]; the rest from
    /// `[providers.pg]`, with `JIT_TEST_PG_ALLOW_TRUST` and `JIT_TEST_PG_STRICT` overriding
    /// `allow_trust` and `strict`.
    pub fn from_config(config: &Config) -> Result<PgSettings, ProviderError> {
        let empty = toml::Table::new();
        let table = config.provider("pg").unwrap_or(&empty);
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(misconfigured(format!(
                "unknown key `{unknown}`; the keys are {}",
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| -> Result<Option<&str>, ProviderError> {
            match table.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .map(Some)
                    .ok_or_else(|| misconfigured(format!("`{key}` must be a string"))),
            }
        };
        let boolean = |key: &str| -> Result<bool, ProviderError> {
            match table.get(key) {
                None => Ok(false),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| misconfigured(format!("`{key}` must be true or false"))),
            }
        };
        let integer = |key: &str, default: i64, max: i64| -> Result<i64, ProviderError> {
            match table.get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_integer()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        misconfigured(format!("`{key}` must be an integer from 1 to {max}"))
                    }),
            }
        };

        let (url, source) = if let Ok(url) = std::env::var(URL_VAR) {
            (url, URL_VAR)
        } else if let Ok(url) = std::env::var("DATABASE_URL") {
            (url, "DATABASE_URL")
        } else if let Some(url) = string("url")? {
            (url.to_owned(), "[providers.pg] url")
        } else {
            (DEFAULT_URL.to_owned(), "the default")
        };
        // The parse error of tokio-postgres never echoes the password.
        let mut admin: tokio_postgres::Config = url.parse().map_err(|e| {
            ProviderError::Misconfigured(format!(
                "the PostgreSQL URL in {source} does not parse: {e}. Write it as \
                 postgresql://user@host:port/dbname or `host=... user=... dbname=...`"
            ))
        })?;
        if admin.get_user().is_none() {
            let user = std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned());
            admin.user(user);
        }
        if admin.get_hosts().is_empty() {
            admin.host("127.0.0.1");
        }
        if admin.get_application_name().is_none() {
            admin.application_name("jit-test");
        }
        let connect_timeout = match string("connect_timeout")? {
            Some(text) => jit_test::config::parse_duration(text, "[providers.pg] connect_timeout")
                .map_err(|e| ProviderError::Misconfigured(e.to_string()))?,
            None => admin
                .get_connect_timeout()
                .copied()
                .unwrap_or(Duration::from_secs(5)),
        };
        admin.connect_timeout(connect_timeout);

        Ok(PgSettings {
            source,
            strict: flag("JIT_TEST_PG_STRICT")?.map_or_else(|| boolean("strict"), Ok)?,
            allow_trust: flag("JIT_TEST_PG_ALLOW_TRUST")?
                .map_or_else(|| boolean("allow_trust"), Ok)?,
            connection_limit: integer("connection_limit", 10, 10_000)? as u32,
            pool_size: integer("pool_size", 4, 1_000)? as usize,
            connect_timeout,
            keep_owned_objects: boolean("keep_owned_objects")?,
            scram_iterations: integer(
                "scram_iterations",
                i64::from(super::scram::DEFAULT_ITERATIONS),
                10_000_000,
            )? as u32,
            admin,
        })
    }

    /// The server's address, without credentials: `127.0.0.1:5432`.
    pub fn address(&self) -> String {
        address(&self.admin)
    }

    /// The database the credentials connect to (PostgreSQL's default: the user's name).
    pub fn database(&self) -> String {
        self.admin
            .get_dbname()
            .or(self.admin.get_user())
            .unwrap_or("postgres")
            .to_owned()
    }
}

/// The first host and port of `config`, without credentials.
pub(crate) fn address(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) if host.contains(':') => format!("[{host}]:{port}"),
        Some(Host::Tcp(host)) => format!("{host}:{port}"),
        Some(Host::Unix(path)) => format!("{} (port {port})", path.display()),
        None => format!("127.0.0.1:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(table: &str) -> Config {
        let mut config = Config::global().clone();
        config.providers = toml::from_str(table).unwrap();
        config
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let e = PgSettings::from_config(&with("[pg]\nstrikt = true")).unwrap_err();
        assert!(e.to_string().contains("strikt"), "{e}");
        let e = PgSettings::from_config(&with("[pg]\npool_size = 0")).unwrap_err();
        assert!(e.to_string().contains("pool_size"), "{e}");
        let e = PgSettings::from_config(&with("[pg]\nscram_iterations = 0")).unwrap_err();
        assert!(e.to_string().contains("scram_iterations"), "{e}");
    }

    #[test]
    fn verifiers_take_one_iteration_unless_configured() {
        let default = PgSettings::from_config(&with("[pg]")).unwrap();
        assert_eq!(default.scram_iterations, 1);
        let set = PgSettings::from_config(&with("[pg]\nscram_iterations = 4096")).unwrap();
        assert_eq!(set.scram_iterations, 4096);
    }

    #[test]
    fn addresses_never_show_the_password() {
        let config: tokio_postgres::Config = "postgresql://admin:hunter2@db.example:6543/shop"
            .parse()
            .unwrap();
        assert_eq!(address(&config), "db.example:6543");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
