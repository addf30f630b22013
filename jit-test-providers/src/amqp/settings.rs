//! `[providers.amqp]` settings: where the broker's AMQP port and management API are.

use std::fmt;
use std::time::Duration;

use jit_test::{Config, ProviderError, Secret};

/// The variable that chooses the AMQP address credentials connect to.
pub const URL_VAR: &str = "JIT_TEST_AMQP_URL";

/// The variable that chooses the management API and its administrator.
pub const ADMIN_URL_VAR: &str = "JIT_TEST_AMQP_ADMIN_URL";

/// The AMQP address used when nothing else is configured (`.ci/setup-amqp`'s broker).
pub const DEFAULT_URL: &str = "amqp://127.0.0.1:5672";

/// The management API used when nothing else is configured: the broker's default
/// administrator, `guest`, which RabbitMQ accepts from loopback only.
pub const DEFAULT_ADMIN_URL: &str = "http://guest:guest@127.0.0.1:15672";

const KEYS: [&str; 3] = ["url", "admin_url", "connect_timeout"];

/// A host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The management API's address and administrator.
#[derive(Clone)]
pub struct Admin {
    /// Where the API listens.
    pub address: Address,
    /// A path prefix before `/api` (empty for the plugin's default).
    pub prefix: String,
    /// The administrator's name.
    pub user: String,
    /// The administrator's password.
    pub password: Secret,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("address", &self.address.to_string())
            .field("prefix", &self.prefix)
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The resolved settings of the `amqp` provider.
#[derive(Clone, Debug)]
pub struct AmqpSettings {
    /// Where credentials log in over AMQP.
    pub amqp: Address,
    /// Where `amqp` came from: `JIT_TEST_AMQP_URL`, `[providers.amqp] url` or `the default`.
    pub amqp_source: &'static str,
    /// The management API.
    pub admin: Admin,
    /// Where `admin` came from.
    pub admin_source: &'static str,
    /// How long to wait for the broker to answer (a connection, a request, a login).
    pub connect_timeout: Duration,
}

fn misconfigured(message: String) -> ProviderError {
    ProviderError::Misconfigured(format!("[providers.amqp]: {message}"))
}

/// Reads a setting from `var`, else `key` of the table, else `default`.
fn pick(
    table: &toml::Table,
    var: &'static str,
    key: &str,
    from_file: &'static str,
    default: &str,
) -> Result<(String, &'static str), ProviderError> {
    if let Ok(value) = std::env::var(var) {
        return Ok((value, var));
    }
    match table.get(key) {
        None => Ok((default.to_owned(), "the default")),
        Some(v) => v
            .as_str()
            .map(|s| (s.to_owned(), from_file))
            .ok_or_else(|| misconfigured(format!("`{key}` must be a string"))),
    }
}

impl AmqpSettings {
    /// Reads `JIT_TEST_AMQP_URL` / `url`, `JIT_TEST_AMQP_ADMIN_URL` / `admin_url` and
    /// `connect_timeout` (default `5s`) from the environment and `[providers.amqp]`.
    pub fn from_config(config: &Config) -> Result<AmqpSettings, ProviderError> {
        let empty = toml::Table::new();
        let table = config.provider("amqp").unwrap_or(&empty);
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(misconfigured(format!(
                "unknown key `{unknown}`; the keys are {}",
                KEYS.join(", ")
            )));
        }
        let (url, amqp_source) = pick(table, URL_VAR, "url", "[providers.amqp] url", DEFAULT_URL)?;
        let (admin_url, admin_source) = pick(
            table,
            ADMIN_URL_VAR,
            "admin_url",
            "[providers.amqp] admin_url",
            DEFAULT_ADMIN_URL,
        )?;
        let connect_timeout = match table.get("connect_timeout") {
            None => Duration::from_secs(5),
            Some(v) => v
                .as_str()
                .and_then(|s| humantime::parse_duration(s.trim()).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    misconfigured("`connect_timeout` must be a duration such as \"5s\"".into())
                })?,
        };
        Ok(AmqpSettings {
            amqp: parse_amqp(&url).map_err(|e| bad_url(amqp_source, &e, "amqp://host:5672"))?,
            amqp_source,
            admin: parse_admin(&admin_url)
                .map_err(|e| bad_url(admin_source, &e, "http://user:password@host:15672"))?,
            admin_source,
            connect_timeout,
        })
    }
}

fn bad_url(source: &str, reason: &str, form: &str) -> ProviderError {
    ProviderError::Misconfigured(format!(
        "the URL in {source} does not parse: {reason}. Write it as {form}"
    ))
}

/// `amqp://host[:port][/]`: the address only (credentials come from each grant).
fn parse_amqp(url: &str) -> Result<Address, String> {
    if url.starts_with("amqps://") {
        return Err("TLS (`amqps`) is not built in: use a plain `amqp://` listener".into());
    }
    let rest = url
        .strip_prefix("amqp://")
        .ok_or("it does not start with amqp://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    parse_address(host_port, 5672)
}

/// `http://user:password@host[:port][/prefix]`.
fn parse_admin(url: &str) -> Result<Admin, String> {
    if url.starts_with("https://") {
        return Err("TLS (`https`) is not built in: use the plain HTTP listener".into());
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or("it does not start with http://")?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_.-".contains(*c)))
    {
        return Err(format!("character {c:?} is not allowed in the path"));
    }
    let (userinfo, host_port) = authority
        .rsplit_once('@')
        .ok_or("it names no administrator (user:password@)")?;
    let (user, password) = userinfo
        .split_once(':')
        .ok_or("the administrator has no password (user:password@)")?;
    Ok(Admin {
        address: parse_address(host_port, 15672)?,
        prefix: prefix.to_owned(),
        user: percent_decode(user)?,
        password: Secret::new(percent_decode(password)?),
    })
}

fn parse_address(text: &str, default_port: u16) -> Result<Address, String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse()
            .map_err(|_| format!("port `{p}` is not a number"))?,
    };
    Ok(Address {
        host: host.to_owned(),
        port,
    })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or("a `%` escape is cut short")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a `%` escape is not hex")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a `%` escape is not UTF-8".into())
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
    fn defaults_are_the_local_broker() {
        let s = AmqpSettings::from_config(&with("")).unwrap();
        assert_eq!(s.amqp.to_string(), "127.0.0.1:5672");
        assert_eq!(s.admin.address.to_string(), "127.0.0.1:15672");
        assert_eq!(
            (s.admin.user.as_str(), s.admin.password.expose()),
            ("guest", "guest")
        );
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let a = parse_admin("http://ad%40min:hunter%32@[::1]:8080/rabbit/").unwrap();
        assert_eq!(a.address.to_string(), "[::1]:8080");
        assert_eq!((a.user.as_str(), a.prefix.as_str()), ("ad@min", "/rabbit"));
        assert_eq!(a.password.expose(), "hunter2");
        assert!(!format!("{a:?}").contains("hunter"));
        assert_eq!(
            parse_amqp("amqp://u:p@broker/%2f").unwrap().to_string(),
            "broker:5672"
        );
    }

    #[test]
    fn errors_name_the_key_and_the_form() {
        let e = AmqpSettings::from_config(&with("[amqp]\nurll = \"x\"")).unwrap_err();
        assert!(e.to_string().contains("urll"), "{e}");
        let e = AmqpSettings::from_config(&with("[amqp]\nurl = \"amqps://h\"")).unwrap_err();
        assert!(e.to_string().contains("[providers.amqp] url"), "{e}");
        assert!(e.to_string().contains("TLS"), "{e}");
        let e = AmqpSettings::from_config(&with("[amqp]\nadmin_url = \"http://h:1\"")).unwrap_err();
        assert!(e.to_string().contains("user:password@"), "{e}");
        let e = AmqpSettings::from_config(&with("[amqp]\nconnect_timeout = \"soon\"")).unwrap_err();
        assert!(e.to_string().contains("connect_timeout"), "{e}");
    }
}
