//! The committed permission baseline: `jit-baseline.toml`, what each test is approved to
//! request.
//!
//! ```toml
//! [tests]
//! "orders::customer_places_order" = ["pg:insert:public.orders", "pg:select:public.orders"]
//! ```
//!
//! The `baseline` approver compares each request with the file:
//! - in CI (`CI` set), a permission missing from the baseline denies the request, with
//!   the diff and the command that accepts it;
//! - locally, the new set is recorded in `jit-baseline.pending.toml` beside it (review it
//!   like a snapshot) and the request goes on;
//! - with `JIT_TEST_BLESS=1`, the test's entry for that scheme is replaced by what it
//!   requested: `JIT_TEST_BLESS=1 cargo test` accepts new permissions and drops unneeded
//!   ones.
//!
//! Writes hold an exclusive file lock, so many test processes can update one file at once.
//! There is no baseline check until the file exists: create it with a blessed run.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::approver::{AccessRequest, Approver, Decision};
use crate::config::Config;
use crate::locked;

/// What the approver does with a permission missing from the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Deny the request (CI).
    Enforce,
    /// Record it in the pending file and go on (local runs).
    Record,
    /// Write it into the baseline (`JIT_TEST_BLESS=1`).
    Bless,
}

impl Mode {
    /// The mode the settings ask for: `JIT_TEST_BLESS` blesses, `CI` enforces.
    pub fn from_config(config: &Config) -> Mode {
        if config.bless {
            Mode::Bless
        } else if config.ci {
            Mode::Enforce
        } else {
            Mode::Record
        }
    }
}

/// The contents of a baseline file: test name → permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entries {
    /// Permissions per test, sorted.
    #[serde(default)]
    pub tests: BTreeMap<String, Vec<String>>,
}

impl Entries {
    /// Reads a baseline file; a missing file is an empty baseline.
    pub fn read(path: &Path) -> io::Result<Entries> {
        match std::fs::read_to_string(path) {
            Ok(text) => parse(&text, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Entries::default()),
            Err(e) => Err(e),
        }
    }

    /// Test names in the baseline that are not in `seen`: entries of tests that may no
    /// longer exist.
    pub fn stale<'a>(&'a self, seen: &[&str]) -> Vec<&'a str> {
        self.tests
            .keys()
            .map(String::as_str)
            .filter(|t| !seen.contains(t))
            .collect()
    }
}

fn parse(text: &str, path: &Path) -> io::Result<Entries> {
    toml::from_str(text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

const HEADER: &str = "# Permissions each test is approved to request (jit-test baseline).\n\
# Review changes like code. Accept new ones with: JIT_TEST_BLESS=1 cargo test\n\n";

/// Replaces `test`'s permissions of `scheme` in the file at `path` with `permissions`,
/// under an exclusive lock. Returns whether the file changed.
fn update(path: &Path, test: &str, scheme: &str, permissions: &[String]) -> io::Result<bool> {
    locked::rewrite(path, |text| {
        let mut entries = parse(text, path)?;
        let prefix = format!("{scheme}:");
        let entry = entries.tests.entry(test.to_owned()).or_default();
        let before = entry.clone();
        entry.retain(|p| !p.starts_with(&prefix));
        entry.extend(permissions.iter().cloned());
        entry.sort();
        entry.dedup();
        if *entry == before {
            return Ok(None);
        }
        if entry.is_empty() {
            entries.tests.remove(test);
        }
        let body = toml::to_string(&entries).map_err(io::Error::other)?;
        Ok(Some(format!("{HEADER}{body}")))
    })
}

/// The `baseline` approver.
#[derive(Clone, Debug)]
pub struct Baseline {
    path: PathBuf,
    mode: Mode,
}

impl Baseline {
    /// A baseline at `path`, acting in `mode`.
    pub fn new(path: impl Into<PathBuf>, mode: Mode) -> Baseline {
        Baseline {
            path: path.into(),
            mode,
        }
    }

    /// The baseline file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pending file beside it: `jit-baseline.pending.toml`.
    pub fn pending_path(&self) -> PathBuf {
        self.path.with_extension("pending.toml")
    }

    fn decide(&self, request: &AccessRequest<'_>) -> io::Result<Decision> {
        let requested: Vec<String> = request
            .permissions
            .iter()
            .map(ToString::to_string)
            .collect();
        if request.trial {
            return Ok(Decision::Pass);
        }
        if self.mode == Mode::Bless {
            update(&self.path, request.test, request.scheme, &requested)?;
            if self.pending_path().exists() {
                update(&self.pending_path(), request.test, request.scheme, &[])?;
            }
            return Ok(Decision::Pass);
        }
        if !self.path.exists() {
            return Ok(Decision::Pass);
        }
        let entries = Entries::read(&self.path)?;
        let known = entries.tests.get(request.test);
        let missing: Vec<&String> = requested
            .iter()
            .filter(|p| !known.is_some_and(|k| k.contains(p)))
            .collect();
        if missing.is_empty() {
            return Ok(Decision::Pass);
        }
        let diff: String = missing.iter().map(|p| format!("\n    + {p}")).collect();
        let what = format!(
            "{} requests permissions that are not in the baseline {}:{diff}",
            request.test,
            self.path.display()
        );
        match self.mode {
            Mode::Enforce => Ok(Decision::Deny(format!(
                "{what}\n  If this access is intended, accept it locally with `JIT_TEST_BLESS=1 cargo test` and commit {}",
                self.path.display()
            ))),
            _ => {
                update(
                    &self.pending_path(),
                    request.test,
                    request.scheme,
                    &requested,
                )?;
                eprintln!(
                    "jit-test: {what}\n  recorded in {}; accept with `JIT_TEST_BLESS=1 cargo test`",
                    self.pending_path().display()
                );
                Ok(Decision::Pass)
            }
        }
    }
}

impl Approver for Baseline {
    fn name(&self) -> &str {
        "baseline"
    }

    fn review(&self, request: &AccessRequest<'_>) -> Decision {
        self.decide(request).unwrap_or_else(|e| {
            Decision::Deny(format!(
                "cannot use the baseline {}: {e}",
                self.path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_test_scope::Scope;
    use std::time::Duration;

    fn review(baseline: &Baseline, test: &str, scope: &str) -> Decision {
        let permissions = Scope::parse(scope).unwrap().permissions;
        baseline.review(&AccessRequest {
            test,
            run_id: "r",
            scheme: &permissions[0].scheme.clone(),
            permissions: &permissions,
            ttl: Duration::from_secs(1),
            reason: None,
            trial: false,
        })
    }

    #[test]
    fn bless_records_enforce_denies_with_the_diff_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jit-baseline.toml");
        let bless = Baseline::new(&path, Mode::Bless);
        review(
            &bless,
            "t::a",
            "pg:select:public.orders, pg:insert:public.orders",
        );
        review(&bless, "t::a", "token:read:orders");
        let enforce = Baseline::new(&path, Mode::Enforce);
        assert_eq!(
            review(&enforce, "t::a", "pg:select:public.orders"),
            Decision::Pass
        );
        match review(
            &enforce,
            "t::a",
            "pg:select:public.orders, pg:delete:public.orders",
        ) {
            Decision::Deny(reason) => {
                assert!(reason.contains("+ pg:delete:public.orders"), "{reason}");
                assert!(reason.contains("JIT_TEST_BLESS=1 cargo test"), "{reason}");
                assert!(!reason.contains("+ pg:select"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Blessing a smaller set shrinks that scheme's entry and keeps the others.
        review(&bless, "t::a", "pg:select:public.orders");
        let entries = Entries::read(&path).unwrap();
        assert_eq!(
            entries.tests["t::a"],
            ["pg:select:public.orders", "token:read:orders"]
        );
        assert_eq!(entries.stale(&["t::b"]), ["t::a"]);
    }

    #[test]
    fn local_runs_record_pending_changes_and_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jit-baseline.toml");
        review(
            &Baseline::new(&path, Mode::Bless),
            "t::a",
            "pg:select:public.orders",
        );
        let record = Baseline::new(&path, Mode::Record);
        assert_eq!(
            review(&record, "t::a", "pg:delete:public.orders"),
            Decision::Pass
        );
        let pending = Entries::read(&record.pending_path()).unwrap();
        assert_eq!(pending.tests["t::a"], ["pg:delete:public.orders"]);
        // The committed baseline is untouched.
        assert_eq!(
            Entries::read(&path).unwrap().tests["t::a"],
            ["pg:select:public.orders"]
        );
        // Accepting it moves it from the pending file into the baseline.
        review(
            &Baseline::new(&path, Mode::Bless),
            "t::a",
            "pg:delete:public.orders",
        );
        assert!(
            Entries::read(&record.pending_path())
                .unwrap()
                .tests
                .is_empty()
        );
        assert_eq!(
            Entries::read(&path).unwrap().tests["t::a"],
            ["pg:delete:public.orders"]
        );
    }

    #[test]
    fn without_a_baseline_file_nothing_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let enforce = Baseline::new(dir.path().join("none.toml"), Mode::Enforce);
        assert_eq!(
            review(&enforce, "t::a", "pg:delete:public.x"),
            Decision::Pass
        );
    }
}
