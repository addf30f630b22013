//! `[providers.nats]` settings: the server's address, the key file, the timeout.

use std::path::PathBuf;
use std::time::Duration;

use jit_test::{Config, ProviderError};

/// The variable that chooses the server; named in every "unreachable" error.
pub const URL_VAR: &str = "JIT_TEST_NATS_URL";

/// The variable that chooses the key file.
pub const KEYS_VAR: &str = "JIT_TEST_NATS_KEYS";

/// Where `.ci/setup-nats` writes the key file, read when nothing else is configured.
pub const DEFAULT_KEY_FILE: &str = "/var/lib/jit-test/nats/provider.toml";

const KEYS: [&str; 3] = ["url", "keys", "connect_timeout"];

/// The resolved settings of the `nats` provider.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// The operator-mode server, e.g. `nats://127.0.0.1:14222`; `None` takes the key
    /// file's.
    pub url: Option<String>,
    /// The key file written by `jit-test-nats-setup`.
    pub key_file: PathBuf,
    /// How long to wait for the server to answer.
    pub connect_timeout: Duration,
}

fn misconfigured(message: String) -> ProviderError {
    ProviderError::Misconfigured(format!("[providers.nats]: {message}"))
}

impl NatsSettings {
    /// Reads the settings: the URL from `JIT_TEST_NATS_URL`, else `url` in
    /// `[providers.nats]`, else the key file's; the key file from `JIT_TEST_NATS_KEYS`,
    /// else `keys`, else [`DEFAULT_KEY_FILE`].
    pub fn from_config(config: &Config) -> Result<NatsSettings, ProviderError> {
        let empty = toml::Table::new();
        let table = config.provider("nats").unwrap_or(&empty);
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(misconfigured(format!(
                "unknown key `{unknown}`; the keys are {}",
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| -> Result<Option<String>, ProviderError> {
            match table.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .map(|s| Some(s.to_owned()))
                    .ok_or_else(|| misconfigured(format!("`{key}` must be a string"))),
            }
        };
        let connect_timeout = match string("connect_timeout")? {
            Some(text) => {
                jit_test::config::parse_duration(&text, "[providers.nats] connect_timeout")
                    .map_err(|e| ProviderError::Misconfigured(e.to_string()))?
            }
            None => Duration::from_secs(5),
        };
        Ok(NatsSettings {
            url: std::env::var(URL_VAR)
                .ok()
                .map_or_else(|| string("url"), |u| Ok(Some(u)))?,
            key_file: std::env::var(KEYS_VAR)
                .ok()
                .map_or_else(|| string("keys"), |k| Ok(Some(k)))?
                .unwrap_or_else(|| DEFAULT_KEY_FILE.to_owned())
                .into(),
            connect_timeout,
        })
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
        let e = NatsSettings::from_config(&with("[nats]\nuri = 'x'")).unwrap_err();
        assert!(e.to_string().contains("uri"), "{e}");
        let e = NatsSettings::from_config(&with("[nats]\nkeys = 1")).unwrap_err();
        assert!(e.to_string().contains("keys"), "{e}");
        let e = NatsSettings::from_config(&with("[nats]\nconnect_timeout = 'soon'")).unwrap_err();
        assert!(e.to_string().contains("connect_timeout"), "{e}");
    }
}
