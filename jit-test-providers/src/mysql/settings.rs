//! `[providers.mysql]` settings and the admin connection's address.

use std::fmt;
use std::time::Duration;

use jit_test::{Config, ProviderError};
use mysql_async::{Opts, OptsBuilder};

/// The variable to set to choose the admin server; named in every "unreachable" error.
pub const URL_VAR: &str = "JIT_TEST_MYSQL_URL";

/// The admin connection used when nothing else is configured: the local server of the
/// development machines and CI (`.ci/setup-mysql`).
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

const KEYS: [&str; 6] = [
    "url",
    "strict",
    "connection_limit",
    "pool_size",
    "connect_timeout",
    "account_host",
];

/// The resolved settings of the `mysql` provider. `Debug` shows no password.
#[derive(Clone)]
pub struct MysqlSettings {
    /// The admin connection (a user that may create users, grant, create events and
    /// kill connections: `root` on the development machines).
    pub admin: Opts,
    /// Where `admin` came from: `JIT_TEST_MYSQL_URL`, `[providers.mysql] url` or
    /// `the default`.
    pub source: &'static str,
    /// Fail a grant whose user can do more than its scope.
    pub strict: bool,
    /// `MAX_USER_CONNECTIONS` of each user.
    pub connection_limit: u32,
    /// Admin connections kept open at most.
    pub pool_size: usize,
    /// How long to wait for the server to answer a connection.
    pub connect_timeout: Duration,
    /// The host part of each user's account (`'jit_…'@'<host>'`): `127.0.0.1` for a
    /// server on this machine's loopback, else `%`.
    pub account_host: String,
}

impl fmt::Debug for MysqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlSettings")
            .field("address", &self.address())
            .field("user", &self.admin.user())
            .field("password", &"[redacted]")
            .field("source", &self.source)
            .field("strict", &self.strict)
            .field("connection_limit", &self.connection_limit)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("account_host", &self.account_host)
            .finish()
    }
}

fn misconfigured(message: String) -> ProviderError {
    ProviderError::Misconfigured(format!("[providers.mysql]: {message}"))
}

impl MysqlSettings {
    /// Reads the settings: the admin URL from `JIT_TEST_MYSQL_URL`, else `url` in
    /// `[providers.mysql]`, else [`DEFAULT_URL`]; the rest from `[providers.mysql]`, with
    /// `JIT_TEST_MYSQL_STRICT` overriding `strict`.
    pub fn from_config(config: &Config) -> Result<MysqlSettings, ProviderError> {
        let empty = toml::Table::new();
        let table = config.provider("mysql").unwrap_or(&empty);
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(misconfigured(format!(
                "unknown key `{unknown}`; the keys are {}",
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| -> Result<Option<&str>, ProviderError> {
            table.get(key).map_or(Ok(None), |v| {
                v.as_str()
                    .map(Some)
                    .ok_or_else(|| misconfigured(format!("`{key}` must be a string")))
            })
        };
        let integer = |key: &str, default: i64, max: i64| -> Result<i64, ProviderError> {
            table.get(key).map_or(Ok(default), |v| {
                v.as_integer()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        misconfigured(format!("`{key}` must be an integer from 1 to {max}"))
                    })
            })
        };
        let strict = match std::env::var("JIT_TEST_MYSQL_STRICT") {
            Ok(v) => matches!(v.trim(), "1" | "true" | "yes" | "on"),
            Err(_) => table.get("strict").map_or(Ok(false), |v| {
                v.as_bool()
                    .ok_or_else(|| misconfigured("`strict` must be true or false".into()))
            })?,
        };

        let (url, source) = if let Ok(url) = std::env::var(URL_VAR) {
            (url, URL_VAR)
        } else if let Some(url) = string("url")? {
            (url.to_owned(), "[providers.mysql] url")
        } else {
            (DEFAULT_URL.to_owned(), "the default")
        };
        // mysql_async's URL errors never echo the URL (nor its password).
        let parsed = Opts::from_url(&url).map_err(|e| {
            ProviderError::Misconfigured(format!(
                "the MariaDB URL in {source} does not parse: {e}. Write it as \
                 mysql://user:password@host:port/database"
            ))
        })?;
        // Logins stay on TCP: with a socket the server would see another host.
        let admin: Opts = OptsBuilder::from_opts(parsed).prefer_socket(false).into();
        let connect_timeout = match string("connect_timeout")? {
            Some(text) => {
                jit_test::config::parse_duration(text, "[providers.mysql] connect_timeout")
                    .map_err(|e| ProviderError::Misconfigured(e.to_string()))?
            }
            None => Duration::from_secs(5),
        };
        let account_host = match string("account_host")? {
            Some(host) => host.to_owned(),
            None => default_account_host(admin.ip_or_hostname()).to_owned(),
        };
        Ok(MysqlSettings {
            source,
            strict,
            connection_limit: integer("connection_limit", 10, 10_000)? as u32,
            pool_size: integer("pool_size", 4, 1_000)? as usize,
            connect_timeout,
            account_host,
            admin,
        })
    }

    /// The server's address, without credentials: `127.0.0.1:3306`.
    pub fn address(&self) -> String {
        address(&self.admin)
    }
}

/// `127.0.0.1` for a loopback server (MariaDB sees TCP logins from there), `%` otherwise.
fn default_account_host(server: &str) -> &'static str {
    match server {
        "127.0.0.1" | "localhost" => "127.0.0.1",
        "::1" | "[::1]" => "::1",
        _ => "%",
    }
}

/// The host and port of `opts`, without credentials.
pub(crate) fn address(opts: &Opts) -> String {
    let host = opts.ip_or_hostname();
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", opts.tcp_port())
    } else {
        format!("{host}:{}", opts.tcp_port())
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
        let e = MysqlSettings::from_config(&with("[mysql]\nstrikt = true")).unwrap_err();
        assert!(e.to_string().contains("strikt"), "{e}");
        let e = MysqlSettings::from_config(&with("[mysql]\npool_size = 0")).unwrap_err();
        assert!(e.to_string().contains("pool_size"), "{e}");
        let e = MysqlSettings::from_config(&with("[mysql]\nurl = 'postgres://x'")).unwrap_err();
        assert!(e.to_string().contains("[providers.mysql] url"), "{e}");
    }

    #[test]
    fn debug_and_addresses_never_show_the_password() {
        let config = with("[mysql]\nurl = 'mysql://admin:hunter2@db.example:3307/shop'");
        let settings = MysqlSettings::from_config(&config).unwrap();
        assert_eq!(settings.address(), "db.example:3307");
        assert_eq!(settings.account_host, "%");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn loopback_servers_get_loopback_accounts() {
        assert_eq!(default_account_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(default_account_host("localhost"), "127.0.0.1");
        assert_eq!(default_account_host("db"), "%");
    }
}
