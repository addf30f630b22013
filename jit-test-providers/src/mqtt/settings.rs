//! [`MqttSettings`]: where the broker is and how the admin client logs in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jit_test::{Config, ProviderError, Secret};

/// The environment variable holding the admin URL, `mqtt://user:password@host:port`.
pub const URL_VAR: &str = "JIT_TEST_MQTT_URL";

/// Where `.ci/setup-mqtt` writes the admin URL of the broker it starts.
pub const DEFAULT_ADMIN_FILE: &str = "/var/lib/jit-test/mqtt/admin.url";

/// The keys of `[providers.mqtt]`.
const KEYS: [&str; 4] = ["url", "admin_file", "connect_timeout", "strict"];

/// The provider's settings. `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct MqttSettings {
    /// The broker's host (an address or name).
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// The dynamic-security admin client.
    pub username: String,
    /// Its password.
    pub password: Secret,
    /// Where the URL came from, e.g. `JIT_TEST_MQTT_URL`.
    pub source: String,
    /// How long to wait for the broker (connections and answers).
    pub connect_timeout: Duration,
    /// Whether a grant fails when the client could do more than its scope.
    pub strict: bool,
}

fn misconfigured(message: String) -> ProviderError {
    ProviderError::Misconfigured(format!("[providers.mqtt]: {message}"))
}

impl MqttSettings {
    /// Reads the settings: the admin URL from `JIT_TEST_MQTT_URL`, else `url` in
    /// `[providers.mqtt]`, else the file named by `admin_file` (default
    /// [`DEFAULT_ADMIN_FILE`]); `connect_timeout` (default `5s`) and `strict` (default
    /// `false`, `JIT_TEST_MQTT_STRICT=1` overrides) from `[providers.mqtt]`.
    pub fn from_config(config: &Config) -> Result<MqttSettings, ProviderError> {
        let empty = toml::Table::new();
        let table = config.provider("mqtt").unwrap_or(&empty);
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(misconfigured(format!(
                "unknown key `{unknown}`; the keys are {}",
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| -> Result<Option<&str>, ProviderError> {
            table
                .get(key)
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| misconfigured(format!("`{key}` must be a string")))
                })
                .transpose()
        };
        let (url, source) = if let Ok(url) = std::env::var(URL_VAR) {
            (Secret::new(url), URL_VAR.to_owned())
        } else if let Some(url) = string("url")? {
            (Secret::new(url), "[providers.mqtt] url".to_owned())
        } else {
            let file =
                string("admin_file")?.map_or(PathBuf::from(DEFAULT_ADMIN_FILE), PathBuf::from);
            (read_admin_file(&file)?, file.display().to_string())
        };
        let connect_timeout = match string("connect_timeout")? {
            None => Duration::from_secs(5),
            Some(text) => humantime::parse_duration(text).map_err(|e| {
                misconfigured(format!(
                    "`connect_timeout` = {text:?} is not a duration: {e}"
                ))
            })?,
        };
        let strict = match std::env::var("JIT_TEST_MQTT_STRICT") {
            // Read as every provider reads its boolean variables.
            Ok(value) => matches!(value.trim(), "1" | "true" | "yes" | "on"),
            Err(_) => match table.get("strict") {
                None => false,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| misconfigured("`strict` must be true or false".into()))?,
            },
        };
        let (username, password, host, port) = parse_url(url.expose()).map_err(|why| {
            ProviderError::Misconfigured(format!(
                "the admin URL in {source} does not parse: {why}. Write it as \
                 mqtt://user:password@127.0.0.1:11883 (set {URL_VAR} or [providers.mqtt] url)"
            ))
        })?;
        Ok(MqttSettings {
            host,
            port,
            username,
            password,
            source,
            connect_timeout,
            strict,
        })
    }

    /// The broker's address, without credentials: `127.0.0.1:11883`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn read_admin_file(file: &Path) -> Result<Secret, ProviderError> {
    std::fs::read_to_string(file)
        .map(|text| Secret::new(text.trim()))
        .map_err(|e| {
            ProviderError::Misconfigured(format!(
                "cannot read the Mosquitto admin URL from {}: {e}. Run .ci/setup-mqtt (it starts \
                 a broker with dynamic security and writes that file), or set {URL_VAR} or \
                 [providers.mqtt] url to mqtt://user:password@host:port",
                file.display()
            ))
        })
}

/// Splits `mqtt://user:password@host:port` (port 1883 when left out). Errors never echo
/// the URL.
fn parse_url(url: &str) -> Result<(String, Secret, String, u16), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or("it must begin with mqtt://")?;
    let (login, address) = rest
        .rsplit_once('@')
        .ok_or("it names no user (user:password@ before the host)")?;
    let (user, password) = login
        .split_once(':')
        .ok_or("it has no password after the user name")?;
    let address = address.trim_end_matches('/');
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || address.starts_with('[') => (
            host,
            port.parse::<u16>()
                .map_err(|_| "the port is not a number")?,
        ),
        _ => (address, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if user.is_empty() || host.is_empty() {
        return Err("the user or the host is empty".into());
    }
    Ok((
        user.to_owned(),
        Secret::new(password),
        host.to_owned(),
        port,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_without_echoing_the_password() {
        let (user, password, host, port) =
            parse_url("mqtt://dynsec-admin:s3cr3t@127.0.0.1:11883").unwrap();
        assert_eq!(
            (user.as_str(), host.as_str(), port),
            ("dynsec-admin", "127.0.0.1", 11883)
        );
        assert_eq!(password.expose(), "s3cr3t");
        assert_eq!(parse_url("mqtt://a:b@localhost").unwrap().3, 1883);
        for bad in [
            "http://a:b@h:1",
            "mqtt://h:1",
            "mqtt://a@h:1",
            "mqtt://a:s3cr3t@h:x",
        ] {
            let why = parse_url(bad).unwrap_err();
            assert!(!why.contains("s3cr3t"), "{why}");
        }
    }

    fn with(table: &str) -> Config {
        let mut config = Config::global().clone();
        config.providers = toml::from_str(table).unwrap();
        config
    }

    #[test]
    fn keys_and_files_are_named_in_errors() {
        let e = MqttSettings::from_config(&with("[mqtt]\nstrikt = true")).unwrap_err();
        assert!(e.to_string().contains("strikt"), "{e}");
        if std::env::var(URL_VAR).is_err() {
            let e = MqttSettings::from_config(&with("[mqtt]\nadmin_file = \"/nonexistent/a\""))
                .unwrap_err()
                .to_string();
            assert!(e.contains("/nonexistent/a") && e.contains(URL_VAR), "{e}");
        }
        let settings = MqttSettings::from_config(&with(
            "[mqtt]\nurl = \"mqtt://u:hunter2@127.0.0.1:1\"\nconnect_timeout = \"2s\"",
        ));
        if std::env::var(URL_VAR).is_err() {
            let settings = settings.unwrap();
            assert_eq!(settings.connect_timeout, Duration::from_secs(2));
            assert!(!format!("{settings:?}").contains("hunter2"));
        }
    }
}
