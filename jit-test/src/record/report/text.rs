//! The report for people in one line, and the durations it shows.

use std::fmt::Write as _;
use std::path::Path;

use super::model::{LeaseReport, LeaseStatus, RunReport};

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration in milliseconds for people: `87 ms`, `1.25 s`, `12.3 s`, `2 min 05 s`.
pub fn format_millis(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 => format!("{:.2} s", ms as f64 / 1000.0),
        10_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

impl LeaseReport {
    /// How long it was held, for people: `628 ms`, or why that is unknown (`reaped`,
    /// `never revoked`, `not granted`).
    pub fn held_text(&self) -> String {
        match self.held_ms {
            Some(ms) => format_millis(ms),
            None if self.granted_at.is_none() => "not granted".to_owned(),
            None if self.reaped => "reaped".to_owned(),
            None => "never revoked".to_owned(),
        }
    }
}

impl RunReport {
    /// One line to print after a run, e.g. `jit-test: 12 tests, 14 leases granted,
    /// revoked and proven dead; audit chain verified (70 lines) → target/jit-test/report.html`.
    /// With problems it counts them and names the first. Points at [`RunReport::html`]
    /// when set (relative to the working directory when below it).
    pub fn summary_line(&self) -> String {
        let tests = plural(self.tests.len(), "test", "tests");
        let problems = self.problems();
        let mut line = if problems.is_empty() {
            let clean = self
                .leases()
                .filter(|l| matches!(l.status, LeaseStatus::Clean | LeaseStatus::Expired))
                .count();
            let mut line = format!(
                "jit-test: {tests}, {} granted, revoked and proven dead",
                plural(clean, "lease", "leases")
            );
            let reaped = self
                .leases()
                .filter(|l| l.status == LeaseStatus::Reaped)
                .count();
            if reaped > 0 {
                let _ = write!(line, ", {reaped} reaped after a crash");
            }
            let expired = self.leases().filter(|l| l.expired_at.is_some()).count();
            if expired > 0 {
                let _ = write!(
                    line,
                    " ({} during {})",
                    plural(expired, "expired", "expired"),
                    if expired == 1 {
                        "its test"
                    } else {
                        "their tests"
                    }
                );
            }
            let _ = write!(
                line,
                "; audit chain verified ({})",
                plural(self.chain.lines, "line", "lines")
            );
            line
        } else {
            let mut line = format!(
                "jit-test: {tests}, {} granted; {}: {}",
                plural(self.leases_granted(), "lease", "leases"),
                plural(problems.len(), "PROBLEM", "PROBLEMS"),
                problems[0]
            );
            if problems.len() > 1 {
                let _ = write!(line, " (and {} more)", problems.len() - 1);
            }
            line
        };
        if let Some(html) = &self.html {
            let shown = std::env::current_dir()
                .ok()
                .and_then(|cwd| html.strip_prefix(cwd).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| html.clone());
            let _ = write!(line, " → {}", shown.display());
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_millis(87), "87 ms");
        assert_eq!(format_millis(1250), "1.25 s");
        assert_eq!(format_millis(12_340), "12.3 s");
        assert_eq!(format_millis(125_000), "2 min 05 s");
    }
}
