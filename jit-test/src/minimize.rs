//! The least-privilege finder: `JIT_TEST_MINIMIZE=1 cargo test` runs each passing test
//! again once per granted permission, with that permission removed, against the real
//! provider. A permission the test still passes without is unneeded.
//!
//! Before the reduced runs, the test runs once more with its full scope: a test that
//! fails on a second run cannot be minimized, and is reported as not re-runnable.
//! Findings go to the terminal (a table per test) and to
//! `target/jit-test/minimize.json` (merged across test processes).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use jit_test_scope::Scope;

use crate::locked;

/// What removing one permission did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The permission removed.
    pub permission: String,
    /// True when the test failed without it.
    pub needed: bool,
    /// The first error seen without it (first line), when needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The minimizer's verdict on one test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The test failed when run again with its full scope: its findings would mean nothing.
    NotRerunnable {
        /// How the second run failed.
        error: String,
    },
    /// One finding per granted permission.
    Findings(Vec<Finding>),
}

impl Verdict {
    /// The permissions the test passed without.
    pub fn unneeded(&self) -> Vec<&str> {
        match self {
            Verdict::Findings(findings) => findings
                .iter()
                .filter(|f| !f.needed)
                .map(|f| f.permission.as_str())
                .collect(),
            Verdict::NotRerunnable { .. } => Vec::new(),
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text);
    line.chars().take(240).collect()
}

/// Runs `rerun` with the full scope, then once per permission with it removed.
pub fn minimize(scope: &Scope, mut rerun: impl FnMut(&Scope) -> Result<(), String>) -> Verdict {
    if let Err(error) = rerun(scope) {
        return Verdict::NotRerunnable {
            error: first_line(&error),
        };
    }
    let findings = (0..scope.permissions.len())
        .map(|i| {
            let mut reduced = scope.clone();
            let removed = reduced.permissions.remove(i);
            let result = rerun(&reduced);
            Finding {
                permission: removed.to_string(),
                needed: result.is_err(),
                error: result.err().map(|e| first_line(&e)),
            }
        })
        .collect();
    Verdict::Findings(findings)
}

/// The table shown for one test.
pub fn render(test: &str, verdict: &Verdict) -> String {
    let mut out = format!("jit-test minimize: {test}\n");
    match verdict {
        Verdict::NotRerunnable { error } => {
            out +=
                &format!("  not re-runnable: a second run with the full scope failed: {error}\n");
        }
        Verdict::Findings(findings) => {
            let width = findings
                .iter()
                .map(|f| f.permission.len())
                .max()
                .unwrap_or(0);
            for f in findings {
                let (mark, note) = match &f.error {
                    Some(error) => ("needed  ", format!("  fails without it: {error}")),
                    None => ("UNNEEDED", "  passes without it".to_owned()),
                };
                out += &format!("  {mark}  {:width$}{note}\n", f.permission);
            }
        }
    }
    out
}

/// Where the findings of all tests are collected.
pub fn results_path() -> PathBuf {
    crate::config::out_dir().join("minimize.json")
}

/// Shows the table on the terminal (past the test harness's output capture) and merges
/// the verdict into [`results_path`].
pub(crate) fn publish(test: &str, verdict: &Verdict) {
    // Written to the stream directly: libtest captures only the print macros.
    let _ = io::stderr().write_all(render(test, verdict).as_bytes());
    if let Err(e) = merge(test, verdict) {
        let _ = writeln!(
            io::stderr(),
            "jit-test: cannot write {}: {e}",
            results_path().display()
        );
    }
}

/// The verdicts collected so far, by test name.
pub fn results() -> io::Result<BTreeMap<String, Verdict>> {
    match std::fs::read_to_string(results_path()) {
        Ok(text) if !text.trim().is_empty() => {
            serde_json::from_str(&text).map_err(io::Error::other)
        }
        Ok(_) => Ok(BTreeMap::new()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

fn merge(test: &str, verdict: &Verdict) -> io::Result<()> {
    locked::rewrite(&results_path(), |text| {
        let mut all: BTreeMap<String, Verdict> = if text.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str(text).map_err(io::Error::other)?
        };
        all.insert(test.to_owned(), verdict.clone());
        Ok(Some(serde_json::to_string_pretty(&all)?))
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_permission_the_test_passes_without() {
        let scope = Scope::parse("pg:select:a, pg:insert:a, pg:delete:a").unwrap();
        let verdict = minimize(&scope, |s| {
            let text = s.to_string();
            if text.contains("select") && text.contains("insert") {
                Ok(())
            } else {
                Err("SQLSTATE 42501\nmore".into())
            }
        });
        assert_eq!(verdict.unneeded(), ["pg:delete:a"]);
        let table = render("t", &verdict);
        assert!(table.contains("UNNEEDED  pg:delete:a"), "{table}");
        assert!(
            table.contains("fails without it: SQLSTATE 42501\n"),
            "{table}"
        );
    }

    #[test]
    fn a_test_that_fails_on_a_second_run_is_not_rerunnable() {
        let scope = Scope::parse("pg:select:a").unwrap();
        let mut runs = 0;
        let verdict = minimize(&scope, |_| {
            runs += 1;
            Err("duplicate key".into())
        });
        assert_eq!(runs, 1);
        assert!(matches!(verdict, Verdict::NotRerunnable { .. }));
        assert!(render("t", &verdict).contains("not re-runnable"));
    }
}
