//! `[providers.redis]` settings and the admin connection's address.

use std::time::Duration;

use ::redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use jit_test::{Config, ProviderError};

/// The variable to set to choose the admin server; named in every "unreachable" error.
pub const URL_VAR: &str = "JIT_TEST_REDIS_URL";

/// The admin connection used when nothing else is configured (`.ci/setup-redis`).
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

const KEYS: [&str; 3] = ["url", "strict", "connect_timeout"];

/// The resolved settings of the `redis` provider.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// The admin connection: a user allowed `ACL SETUSER`, `ACL DELUSER`, `ACL DRYRUN`,
    /// `ACL LIST`, `COMMAND INFO` (its Debug output redacts the password).
    pub admin: ConnectionInfo,
    /// Where `admin` came from: `JIT_TEST_REDIS_URL`, `[providers.redis] url` or
    /// `the default`.
    pub source: &'static str,
    /// Fail a grant whose user, or a connection that skips `AUTH`, can do more than the
    /// scope.
    pub strict: bool,
    /// How long to wait for the server to accept a connection or answer a command.
    pub connect_timeout: Duration,
}

fn misconfigured(message: String) -> ProviderError {
    ProviderError::Misconfigured(format!("[providers.redis]: {message}"))
}

impl RedisSettings {
    /// Reads the settings: the admin URL from `JIT_TEST_REDIS_URL`, else `url` in
    /// `[providers.redis]`, else [`DEFAULT_URL`]; `JIT_TEST_REDIS_STRICT` overrides
    /// `strict`.
    pub fn from_config(config: &Config) -> Result<RedisSettings, ProviderError> {
        let empty = toml::Table::new();
        let table = config.provider("redis").unwrap_or(&empty);
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(misconfigured(format!(
                "unknown key `{unknown}`; the keys are {}",
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| match table.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| misconfigured(format!("`{key}` must be a string"))),
        };
        let strict = match (
            std::env::var("JIT_TEST_REDIS_STRICT").ok(),
            table.get("strict"),
        ) {
            (Some(v), _) => matches!(v.trim(), "1" | "true" | "yes" | "on"),
            (None, None) => false,
            (None, Some(v)) => v
                .as_bool()
                .ok_or_else(|| misconfigured("`strict` must be true or false".into()))?,
        };
        let (url, source) = match (std::env::var(URL_VAR).ok(), string("url")?) {
            (Some(url), _) => (url, URL_VAR),
            (None, Some(url)) => (url.to_owned(), "[providers.redis] url"),
            (None, None) => (DEFAULT_URL.to_owned(), "the default"),
        };
        let connect_timeout = match string("connect_timeout")? {
            Some(text) => {
                jit_test::config::parse_duration(text, "[providers.redis] connect_timeout")
                    .map_err(|e| ProviderError::Misconfigured(e.to_string()))?
            }
            None => Duration::from_secs(5),
        };
        Ok(RedisSettings {
            admin: parse_url(&url, source)?,
            source,
            strict,
            connect_timeout,
        })
    }

    /// The server's address, without credentials: `127.0.0.1:6379`.
    pub fn address(&self) -> String {
        address(&self.admin)
    }
}

/// Parses the admin URL; the error never echoes it (it may hold a password).
fn parse_url(url: &str, source: &'static str) -> Result<ConnectionInfo, ProviderError> {
    url.into_connection_info().map_err(|_| {
        ProviderError::Misconfigured(format!(
            "the Redis URL in {source} does not parse. Write it as \
             redis://[user:password@]host:port[/db]"
        ))
    })
}

/// The host and port of `info`, without credentials.
pub(crate) fn address(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) if host.contains(':') => format!("[{host}]:{port}"),
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_and_values_are_named() {
        for (entry, named) in [
            ("strikt = true", "strikt"),
            ("url = 3", "`url`"),
            ("strict = \"yes\"", "`strict`"),
            ("connect_timeout = \"soon\"", "connect_timeout"),
        ] {
            let mut config = Config::global().clone();
            config.providers = toml::from_str(&format!("[redis]\n{entry}")).unwrap();
            let e = RedisSettings::from_config(&config).unwrap_err();
            assert!(e.to_string().contains(named), "{entry}: {e}");
        }
    }

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let info = parse_url("redis://admin:hunter2@db.example:6380/0", "test").unwrap();
        assert_eq!(address(&info), "db.example:6380");
        assert!(!format!("{info:?}").contains("hunter2"));
        let e = parse_url("http://admin:hunter2@x", "test").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("redis://"), "{e}");
    }
}
