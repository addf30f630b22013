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
//! | — | `JIT_TEST_RUN_ID` | the CI system's pipeline id ([`ci_run_id`]: every shard of one pipeline shares it), else `NEXTEST_RUN_ID`, else derived from the `cargo` process above (all test binaries and doc tests of one `cargo test` share it) |
//! | — | `JIT_TEST_SHARD` | the CI system's parallel job index as `k/N` ([`shard`]), else none |
//!
//! | — | `JIT_TEST_MINIMIZE` | off: find unneeded permissions after a pass |
//! | — | `JIT_TEST_BLESS` | off: accept the requested permissions into the baseline |
//! | — | `CI` | off: a permission missing from the baseline denies the request |
//! | — | `JIT_TEST_SUMMARY` | on: write the report and print a summary at exit |
//!
//! On/off variables read `1`, `true`, `yes`, `on` as on and `0`, `false`, `no`, `off` as
//! off (any case); unset or empty is the default; anything else is an error naming the
//! variable ([`env_flag`]). A value from the file that cannot be used is an error naming
//! the file, the line and the key. `ttl` must be positive and at most `max_ttl`.
//!
//! Provider settings live in `[providers.<scheme>]` tables; see each provider. A table of
//! a scheme no provider serves is an error naming the known ones
//! ([`Config::check_provider_tables`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

const DEFAULT_TTL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_TTL: Duration = Duration::from_secs(600);
const DEFAULT_REAP_GRACE: Duration = Duration::from_secs(60);

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
    /// Where the audit log is written: a file, or a PostgreSQL URL ([`Config::audit_url`]).
    pub audit_log: PathBuf,
    /// The id shared by all processes of one run.
    pub run_id: String,
    /// `[providers.<scheme>]` tables, for providers to read.
    pub providers: toml::Table,
    /// `file:line` of each `[providers.<scheme>]` table.
    provider_lines: Vec<(String, String)>,
    /// Whether to look for unneeded permissions after a pass (`JIT_TEST_MINIMIZE`).
    pub minimize: bool,
    /// Whether to accept requested permissions into the baseline (`JIT_TEST_BLESS`).
    pub bless: bool,
    /// Whether this is a CI run (`CI`): the baseline is enforced.
    pub ci: bool,
    /// Whether to write the report and print a summary at exit (`JIT_TEST_SUMMARY`).
    pub summary: bool,
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
    ttl: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_ttl: Option<Spanned<String>>,
    reap_grace: Option<Spanned<String>>,
    audit_log: Option<PathBuf>,
    #[serde(default)]
    providers: toml::Table,
    /// Read by [`crate::approval::Policy`]; accepted here.
    #[serde(default, rename = "policy")]
    _policy: toml::Table,
}

/// The text of a file, to name the line of a value in errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// `file:line` of a byte offset.
    fn at(&self, offset: usize) -> String {
        let line = self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        format!("{}:{line}", self.path.display())
    }
}

/// Parses a duration such as `30s`, `500ms` or `2m`; `what` names the setting in errors.
pub fn parse_duration(text: &str, what: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        ConfigError(format!(
            "{what} = {text:?} is not a duration ({e}); write e.g. \"30s\", \"500ms\" or \"2m\""
        ))
    })
}

/// A duration setting: the variable `var`, else `key` in the file, else `default`.
/// Returns it with where it came from, for later errors.
fn duration(
    var: &str,
    key: &str,
    file: Option<(&Source<'_>, Spanned<String>)>,
    default: Duration,
) -> Result<(Duration, String), ConfigError> {
    if let Ok(text) = std::env::var(var) {
        return Ok((parse_duration(&text, var)?, var.to_owned()));
    }
    match file {
        Some((source, value)) => {
            let at = format!("{}: {key}", source.at(value.span().start));
            Ok((parse_duration(value.get_ref(), &at)?, at))
        }
        None => Ok((default, format!("the default {key}"))),
    }
}

/// An on/off environment variable: `1`, `true`, `yes`, `on` are on; `0`, `false`, `no`,
/// `off` are off (any case, spaces trimmed); unset or empty is `None`; anything else is
/// an error naming the variable.
pub fn env_flag(var: &str) -> Result<Option<bool>, ConfigError> {
    let Some(value) = std::env::var_os(var) else {
        return Ok(None);
    };
    let text = value.to_string_lossy().trim().to_ascii_lowercase();
    match text.as_str() {
        "" => Ok(None),
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(ConfigError(format!(
            "{var} = {value:?} is neither on (1, true, yes, on) nor off (0, false, no, off)"
        ))),
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

/// Where jit-test writes its files: `jit-test/` in the [target directory](target_dir).
pub fn out_dir() -> PathBuf {
    target_dir().join("jit-test")
}

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProcStat {
    /// The command's name.
    name: String,
    /// The parent's pid.
    parent: u32,
    /// When it started, in clock ticks since boot.
    started: String,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    // After the name: state, ppid, ... starttime is the 20th field.
    let fields: Vec<&str> = tail.split_whitespace().collect();
    Some(ProcStat {
        name,
        parent: fields.get(1)?.parse().ok()?,
        started: (*fields.get(19)?).to_owned(),
    })
}

/// The process whose run this one belongs to, from `parent` up: the nearest `cargo`
/// (its test binaries are its children, its doc tests its grandchildren through
/// rustdoc), else `parent` itself.
fn run_owner(parent: u32, stat: impl Fn(u32) -> Option<ProcStat>) -> Option<(u32, ProcStat)> {
    let mut pid = parent;
    for _ in 0..16 {
        let Some(process) = stat(pid) else { break };
        if process.name == "cargo" {
            return Some((pid, process));
        }
        if process.parent <= 1 {
            break;
        }
        pid = process.parent;
    }
    stat(parent).map(|process| (parent, process))
}

/// A run id shared by everything one `cargo test` starts, test binaries and doc tests:
/// the id and start time of the `cargo` process (so a recycled pid gives a new id), else
/// of the parent process, else a random one.
fn parent_run_id() -> String {
    match run_owner(std::os::unix::process::parent_id(), proc_stat) {
        Some((pid, process)) => format!("{}-{pid}-{}", hostname(), process.started),
        None => crate::random::hex(8),
    }
}

/// `file:line` of the table `[providers.<name>]` (its first mention).
fn table_line(source: &Source<'_>, name: &str) -> String {
    let dotted = format!("providers.{name}");
    let offset = source
        .text
        .match_indices(&dotted)
        .map(|(i, _)| i)
        .next()
        .unwrap_or(0);
    source.at(offset)
}

/// A ttl must be positive and at most the maximum; the error names where each came from.
pub(crate) fn check_ttl(
    ttl: Duration,
    ttl_from: &str,
    max_ttl: Duration,
    max_from: &str,
) -> Result<(), ConfigError> {
    if ttl.is_zero() {
        return Err(ConfigError(format!(
            "ttl 0s ({ttl_from}) would grant credentials that are dead at birth; give a positive duration"
        )));
    }
    if ttl > max_ttl {
        return Err(ConfigError(format!(
            "ttl {} ({ttl_from}) exceeds the maximum of {} ({max_from}); lower the ttl or raise max_ttl",
            humantime::format_duration(ttl),
            humantime::format_duration(max_ttl)
        )));
    }
    Ok(())
}

/// This machine's name, for lease metadata and audit events (read once per process).
pub fn hostname() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".to_owned())
    })
    .clone()
}

/// A variable's value, `None` when unset or empty.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The pipeline ids of common CI systems: the system, the variable holding the id of the
/// whole pipeline (shared by all its parallel jobs), a variable qualifying it (a re-run's
/// attempt), and a variable that must be set for the id to count (for generic names).
const CI_RUN_IDS: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("github", "GITHUB_RUN_ID", Some("GITHUB_RUN_ATTEMPT"), None),
    ("gitlab", "CI_PIPELINE_ID", None, Some("GITLAB_CI")),
    ("buildkite", "BUILDKITE_BUILD_ID", None, None),
    ("circleci", "CIRCLE_WORKFLOW_ID", None, None),
    ("jenkins", "BUILD_TAG", None, Some("JENKINS_URL")),
    (
        "azure",
        "BUILD_BUILDID",
        Some("SYSTEM_STAGEATTEMPT"),
        Some("TF_BUILD"),
    ),
    ("travis", "TRAVIS_BUILD_ID", None, None),
    ("bitbucket", "BITBUCKET_PIPELINE_UUID", None, None),
];

/// The run id the CI system gives every job of one pipeline, from the variables `var`
/// reads: GitHub Actions (`github-<GITHUB_RUN_ID>-<GITHUB_RUN_ATTEMPT>`), GitLab
/// (`gitlab-<CI_PIPELINE_ID>`), Buildkite (`BUILDKITE_BUILD_ID`), CircleCI
/// (`CIRCLE_WORKFLOW_ID`), Jenkins (`BUILD_TAG`), Azure Pipelines (`BUILD_BUILDID` and
/// the stage attempt), Travis (`TRAVIS_BUILD_ID`), Bitbucket (`BITBUCKET_PIPELINE_UUID`).
/// `None` outside those.
pub fn ci_run_id(var: &impl Fn(&str) -> Option<String>) -> Option<String> {
    CI_RUN_IDS
        .iter()
        .find_map(|(system, id, qualifier, guard)| {
            if guard.is_some_and(|g| var(g).is_none()) {
                return None;
            }
            let id = var(id)?;
            Some(match qualifier.and_then(var) {
                Some(attempt) => format!("{system}-{id}-{attempt}"),
                None => format!("{system}-{id}"),
            })
        })
}

/// The run id: `JIT_TEST_RUN_ID`, else the CI pipeline's ([`ci_run_id`]), else
/// `NEXTEST_RUN_ID` (one `cargo nextest run`), else one `cargo test`'s ([`parent_run_id`]).
fn run_id(var: &impl Fn(&str) -> Option<String>) -> String {
    var("JIT_TEST_RUN_ID")
        .or_else(|| ci_run_id(var))
        .or_else(|| var("NEXTEST_RUN_ID"))
        .unwrap_or_else(parent_run_id)
}

/// The parallel jobs of CI systems: the index variable, whether it counts from 0, and
/// the count variable.
const CI_SHARDS: &[(&str, bool, &str)] = &[
    ("CI_NODE_INDEX", false, "CI_NODE_TOTAL"),
    ("CIRCLE_NODE_INDEX", true, "CIRCLE_NODE_TOTAL"),
    (
        "BUILDKITE_PARALLEL_JOB",
        true,
        "BUILDKITE_PARALLEL_JOB_COUNT",
    ),
    (
        "SYSTEM_JOBPOSITIONINPHASE",
        false,
        "SYSTEM_TOTALJOBSINPHASE",
    ),
];

/// Which shard of its run this process is, as `k/N` (1-based): `JIT_TEST_SHARD` as
/// given, else the parallel job of GitLab (`CI_NODE_INDEX`/`CI_NODE_TOTAL`), CircleCI,
/// Buildkite or Azure Pipelines; `None` when the run is not split that way. Read once.
pub fn shard() -> Option<String> {
    static SHARD: OnceLock<Option<String>> = OnceLock::new();
    SHARD.get_or_init(|| shard_from(&env_value)).clone()
}

fn shard_from(var: &impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(given) = var("JIT_TEST_SHARD") {
        return Some(given.trim().to_owned());
    }
    CI_SHARDS.iter().find_map(|(index, zero_based, total)| {
        let index: u32 = var(index)?.trim().parse().ok()?;
        let total: u32 = var(total)?.trim().parse().ok()?;
        Some(format!("{}/{total}", index + u32::from(*zero_based)))
    })
}

impl Config {
    /// Reads the settings from the file and environment.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var_os("JIT_TEST_CONFIG")
            .map(PathBuf::from)
            .or_else(|| find_upwards(&start_dir(), "jit-test.toml"));
        let text = match &file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?,
            None => String::new(),
        };
        Config::parse(file, &text)
    }

    /// The settings from `text`, the contents of the file at `file` (none: empty), and
    /// the environment.
    pub fn parse(file: Option<PathBuf>, text: &str) -> Result<Config, ConfigError> {
        let path = file.as_deref().unwrap_or(Path::new("jit-test.toml"));
        let source = Source { path, text };
        let raw = toml::from_str::<FileConfig>(text)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let with = |value: Option<Spanned<String>>| value.map(|v| (&source, v));
        let (ttl, ttl_from) = duration("JIT_TEST_TTL", "ttl", with(raw.ttl), DEFAULT_TTL)?;
        let (max_ttl, max_from) = duration(
            "JIT_TEST_MAX_TTL",
            "max_ttl",
            with(raw.max_ttl),
            DEFAULT_MAX_TTL,
        )?;
        check_ttl(ttl, &ttl_from, max_ttl, &max_from)?;
        let (timeout, _) = duration(
            "JIT_TEST_TIMEOUT",
            "timeout",
            with(raw.timeout),
            DEFAULT_TIMEOUT,
        )?;
        let (reap_grace, _) = duration(
            "JIT_TEST_REAP_GRACE",
            "reap_grace",
            with(raw.reap_grace),
            DEFAULT_REAP_GRACE,
        )?;
        let audit_log = std::env::var_os("JIT_TEST_AUDIT_LOG")
            .map(PathBuf::from)
            .or(raw.audit_log)
            .unwrap_or_else(|| out_dir().join("audit.jsonl"));
        let run_id = run_id(&env_value);
        let provider_lines = raw
            .providers
            .keys()
            .map(|name| (name.clone(), table_line(&source, name)))
            .collect();
        Ok(Config {
            ttl,
            timeout,
            max_ttl,
            reap_grace,
            file,
            audit_log,
            run_id,
            providers: raw.providers,
            provider_lines,
            minimize: env_flag("JIT_TEST_MINIMIZE")?.unwrap_or(false),
            bless: env_flag("JIT_TEST_BLESS")?.unwrap_or(false),
            ci: env_flag("CI")?.unwrap_or(false),
            summary: env_flag("JIT_TEST_SUMMARY")?.unwrap_or(true),
        })
    }

    /// The settings of this process, loaded once. Panics with the reason if they cannot
    /// be read: every test would fail the same way.
    pub fn global() -> &'static Config {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| Config::load().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Fails on a `[providers.<name>]` table whose name is not in `known`, naming the
    /// file, the line and the known names.
    pub fn check_provider_tables(&self, known: &[&str]) -> Result<(), ConfigError> {
        let Some((name, line)) = self
            .provider_lines
            .iter()
            .find(|(name, _)| !known.contains(&name.as_str()))
        else {
            return Ok(());
        };
        let mut known = known.to_vec();
        known.sort_unstable();
        known.dedup();
        Err(ConfigError(format!(
            "{line}: unknown provider table [providers.{name}]; the known providers are {}",
            known.join(", ")
        )))
    }

    /// The PostgreSQL URL `audit_log` names (`postgres://…` or `postgresql://…`), when
    /// the audit trail goes to a table instead of a file.
    pub fn audit_url(&self) -> Option<&str> {
        let text = self.audit_log.to_str()?;
        (text.starts_with("postgres://") || text.starts_with("postgresql://")).then_some(text)
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

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn every_shard_of_one_pipeline_shares_its_run_id() {
        let github = [("GITHUB_RUN_ID", "991"), ("GITHUB_RUN_ATTEMPT", "2")];
        assert_eq!(run_id(&vars(&github)), "github-991-2");
        let gitlab = [("GITLAB_CI", "true"), ("CI_PIPELINE_ID", "77")];
        assert_eq!(run_id(&vars(&gitlab)), "gitlab-77");
        // A generic name counts only under its own CI system.
        let not_jenkins = [("BUILD_TAG", "x"), ("NEXTEST_RUN_ID", "n-1")];
        assert_eq!(run_id(&vars(&not_jenkins)), "n-1");
        let jenkins = [("JENKINS_URL", "http://ci"), ("BUILD_TAG", "jenkins-app-5")];
        assert_eq!(run_id(&vars(&jenkins)), "jenkins-jenkins-app-5");
        let circle = [("CIRCLE_WORKFLOW_ID", "w-1"), ("NEXTEST_RUN_ID", "n-1")];
        assert_eq!(run_id(&vars(&circle)), "circleci-w-1");
        let given = [("JIT_TEST_RUN_ID", "mine"), ("GITHUB_RUN_ID", "991")];
        assert_eq!(run_id(&vars(&given)), "mine");
        assert_eq!(run_id(&vars(&[("BUILDKITE_BUILD_ID", "b")])), "buildkite-b");
        assert!(!run_id(&vars(&[])).is_empty());
    }

    #[test]
    fn a_shard_is_k_of_n_counted_from_one() {
        assert_eq!(shard_from(&vars(&[])), None);
        let gitlab = [("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")];
        assert_eq!(shard_from(&vars(&gitlab)).as_deref(), Some("2/3"));
        let circle = [("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "4")];
        assert_eq!(shard_from(&vars(&circle)).as_deref(), Some("1/4"));
        let given = [("JIT_TEST_SHARD", "a"), ("CI_NODE_INDEX", "2")];
        assert_eq!(shard_from(&vars(&given)).as_deref(), Some("a"));
        assert_eq!(shard_from(&vars(&[("CI_NODE_INDEX", "2")])), None);
    }

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Some(PathBuf::from("/ws/jit-test.toml")), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_bad_duration_in_the_file_names_the_file_line_and_key() {
        let err = parse("timeout = \"1m\"\nttl = \"soon\"\n").unwrap_err();
        assert!(err.contains("/ws/jit-test.toml:2: ttl = \"soon\""), "{err}");
        assert!(!err.contains("JIT_TEST_TTL"), "{err}");
    }

    #[test]
    fn ttl_must_be_positive_and_at_most_max_ttl() {
        let zero = parse("ttl = \"0s\"").unwrap_err();
        assert!(
            zero.contains("/ws/jit-test.toml:1: ttl") && zero.contains("positive"),
            "{zero}"
        );
        let huge = parse("max_ttl = \"5m\"\nttl = \"100years\"").unwrap_err();
        assert!(
            huge.contains("exceeds the maximum of 5m (/ws/jit-test.toml:1: max_ttl)"),
            "{huge}"
        );
        assert!(parse("ttl = \"5m\"\nmax_ttl = \"5m\"").is_ok());
    }

    #[test]
    fn unknown_provider_tables_name_the_known_ones() {
        let config = parse("ttl = \"3s\"\n\n[providers.pgg]\nurl = \"x\"\n").unwrap();
        let err = config
            .check_provider_tables(&["token", "pg", "redis"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/ws/jit-test.toml:3"), "{err}");
        assert!(
            err.contains("[providers.pgg]") && err.contains("pg, redis, token"),
            "{err}"
        );
        assert!(config.check_provider_tables(&["pgg"]).is_ok());
    }

    #[test]
    fn doc_tests_share_the_run_of_the_cargo_process_above_them() {
        let table = |pid: u32| {
            let (name, parent) = match pid {
                30 => ("rust_out", 20),
                20 => ("rustdoc", 10),
                10 => ("cargo", 5),
                5 => ("bash", 1),
                40 => ("my-runner", 5),
                _ => return None,
            };
            Some(ProcStat {
                name: name.to_owned(),
                parent,
                started: format!("t{pid}"),
            })
        };
        // A test binary (parent cargo) and a doc test (parent rustdoc) share cargo's run.
        assert_eq!(run_owner(10, table).unwrap().0, 10);
        assert_eq!(run_owner(20, table).unwrap().0, 10);
        // Without cargo above, the parent's.
        assert_eq!(run_owner(40, table).unwrap().0, 40);
        let me = proc_stat(std::process::id()).unwrap();
        assert_eq!(me.parent, std::os::unix::process::parent_id());
    }

    #[test]
    fn on_off_variables_follow_one_rule() {
        // Variables no other test reads; set before any thread of this test reads them.
        let var = "JIT_TEST_FLAG_RULE_PROBE";
        for (value, expected) in [("1", true), ("TRUE", true), (" yes ", true), ("on", true)]
            .into_iter()
            .chain([
                ("0", false),
                ("false", false),
                ("No", false),
                ("off", false),
            ])
        {
            // SAFETY: no other thread reads this variable.
            unsafe { std::env::set_var(var, value) };
            assert_eq!(env_flag(var).unwrap(), Some(expected), "{value}");
        }
        unsafe { std::env::set_var(var, "enabled") };
        let err = env_flag(var).unwrap_err().to_string();
        assert!(err.contains(var) && err.contains("enabled"), "{err}");
        unsafe { std::env::remove_var(var) };
        assert_eq!(env_flag(var).unwrap(), None);
    }
}
