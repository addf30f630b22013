//! Settings: `jit-test.toml` and `JIT_TEST_*` environment variables.
//!
//! Precedence, highest first: environment variable, `jit-test.toml`, built-in default.
//! The file is `$JIT_TEST_CONFIG` if set, else the first `jit-test.toml` found walking up
//! from the test crate's directory (`CARGO_MANIFEST_DIR`, else the working directory).
//!
//! | key in `jit-test.toml` | variable | default |
//! |---|---|---|
//! | `ttl` | `JIT_TEST_TTL` | `30s` |
//! | `timeout` | `JIT_TEST_TIMEOUT` | `60s` |
//! | `max_ttl` | `JIT_TEST_MAX_TTL` | `10m` |
//! | `reap_grace` | `JIT_TEST_REAP_GRACE` | `60s` |
//! | `audit_log` | `JIT_TEST_AUDIT_LOG` | `<target>/jit-test/audit.jsonl` |
//! | — | `JIT_TEST_RUN_ID` | `NEXTEST_RUN_ID`, else derived from the parent process (all test binaries of one `cargo test` share it) |
//!
//! Provider settings live in `[providers.<scheme>]` tables; see each provider.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

/// The resolved settings of this process.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file the settings came from, if any.
    pub file: Option<PathBuf>,
    /// Default lifetime of a credential.
    pub ttl: Duration,
    /// Default limit on a test body's run time.
    pub timeout: Duration,
    /// Longest ttl the default approver allows.
    pub max_ttl: Duration,
    /// How long past its expiry a leftover principal is kept before the reaper removes it.
    pub reap_grace: Duration,
    /// Where the audit log is written.
    pub audit_log: PathBuf,
    /// The id shared by all processes of one run.
    pub run_id: String,
    /// `[providers.<scheme>]` tables, for providers to read.
    pub providers: toml::Table,
    /// The `[policy]` table, for approvers to read.
    pub policy: toml::Table,
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("jit-test configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    ttl: Option<String>,
    timeout: Option<String>,
    max_ttl: Option<String>,
    reap_grace: Option<String>,
    audit_log: Option<PathBuf>,
    #[serde(default)]
    providers: toml::Table,
    #[serde(default)]
    policy: toml::Table,
}

/// Parses a duration such as `30s`, `500ms` or `2m`; `what` names the setting in errors.
pub fn parse_duration(text: &str, what: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        ConfigError(format!(
            "{what} = {text:?} is not a duration ({e}); write e.g. \"30s\", \"500ms\" or \"2m\""
        ))
    })
}

fn setting(
    var: &str,
    file_value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match std::env::var(var).ok().or(file_value) {
        Some(text) => parse_duration(&text, var),
        None => Ok(default),
    }
}

fn find_upwards(start: &Path, name: &str) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn start_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The workspace root: the directory of the `Cargo.lock` above the test crate (else the
/// test crate's directory).
pub fn workspace_root() -> PathBuf {
    let start = start_dir();
    find_upwards(&start, "Cargo.lock")
        .and_then(|lock| lock.parent().map(Path::to_path_buf))
        .unwrap_or(start)
}

/// The Cargo target directory of the current build (`CARGO_TARGET_DIR`, else `target/`
/// in the [workspace root](workspace_root)).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// A run id shared by the test binaries one `cargo test` starts: the parent process's
/// id and start time (so a recycled pid gives a new id), else a random one.
fn parent_run_id() -> String {
    let ppid = std::os::unix::process::parent_id();
    let started = std::fs::read_to_string(format!("/proc/{ppid}/stat"))
        .ok()
        .and_then(|stat| {
            // Field 22 (starttime) counts from the field after the ")" that ends the name.
            let after_name = stat.rsplit_once(')')?.1.to_owned();
            after_name.split_whitespace().nth(19).map(str::to_owned)
        });
    match started {
        Some(start) => format!("{}-{ppid}-{start}", hostname()),
        None => crate::random::hex(8),
    }
}

/// This machine's name, for lease metadata.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

impl Config {
    /// Reads the settings from the file and environment.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var_os("JIT_TEST_CONFIG")
            .map(PathBuf::from)
            .or_else(|| find_upwards(&start_dir(), "jit-test.toml"));
        let raw = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let audit_log = std::env::var_os("JIT_TEST_AUDIT_LOG")
            .map(PathBuf::from)
            .or(raw.audit_log)
            .unwrap_or_else(|| target_dir().join("jit-test").join("audit.jsonl"));
        let run_id = std::env::var("JIT_TEST_RUN_ID")
            .or_else(|_| std::env::var("NEXTEST_RUN_ID"))
            .unwrap_or_else(|_| parent_run_id());
        Ok(Config {
            ttl: setting("JIT_TEST_TTL", raw.ttl, Duration::from_secs(30))?,
            timeout: setting("JIT_TEST_TIMEOUT", raw.timeout, Duration::from_secs(60))?,
            max_ttl: setting("JIT_TEST_MAX_TTL", raw.max_ttl, Duration::from_secs(600))?,
            reap_grace: setting(
                "JIT_TEST_REAP_GRACE",
                raw.reap_grace,
                Duration::from_secs(60),
            )?,
            file,
            audit_log,
            run_id,
            providers: raw.providers,
            policy: raw.policy,
        })
    }

    /// The settings of this process, loaded once. Panics with the reason if they cannot
    /// be read: every test would fail the same way.
    pub fn global() -> &'static Config {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| Config::load().unwrap_or_else(|e| panic!("{e}")))
    }

    /// The `[providers.<scheme>]` table, if present.
    pub fn provider(&self, scheme: &str) -> Option<&toml::Table> {
        self.providers.get(scheme).and_then(toml::Value::as_table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_errors_name_the_setting() {
        assert_eq!(
            parse_duration("1m 30s", "ttl").unwrap(),
            Duration::from_secs(90)
        );
        let err = parse_duration("soon", "JIT_TEST_TTL")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JIT_TEST_TTL") && err.contains("soon"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = toml::from_str::<FileConfig>("tll = \"3s\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("tll"), "{err}");
    }
}
