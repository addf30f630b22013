//! `jit-test`: the command line for audit logs.
//!
//! ```text
//! jit-test verify [AUDIT_LOG]    check the hash chain and that every grant was revoked and proven dead
//! jit-test report [RUN_ID]       write target/jit-test/report.{json,md,html} for a run (default: the latest)
//! jit-test prune --keep N        remove all runs but the last N from the audit log; the rest still verifies
//! ```
//!
//! The audit log defaults to the configured one (`target/jit-test/audit.jsonl`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let default_log = || jit_test::Config::global().audit_log.clone();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["verify"] => verify(default_log()),
        ["verify", path] => verify(PathBuf::from(path)),
        ["report"] => report(default_log(), None),
        ["report", run] => report(default_log(), Some(run.to_string())),
        ["prune", "--keep", keep] => match keep.parse() {
            Ok(keep) => prune(default_log(), keep),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: jit-test verify [AUDIT_LOG] | jit-test report [RUN_ID] | jit-test prune --keep N"
    );
    ExitCode::from(2)
}

fn prune(log: PathBuf, keep: usize) -> ExitCode {
    match jit_test::audit::prune(&log, keep) {
        Ok(pruned) if pruned.runs.is_empty() => {
            println!(
                "audit log {}: nothing to prune (it holds no more runs than the {keep} to keep)",
                log.display()
            );
            ExitCode::SUCCESS
        }
        Ok(pruned) => {
            println!(
                "audit log {}: removed {} runs ({} lines, {} bytes); the rest verifies from its first line",
                log.display(),
                pruned.runs.len(),
                pruned.lines,
                pruned.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-test: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(log: PathBuf, run: Option<String>) -> ExitCode {
    let run = run.or_else(|| jit_test::audit::latest_run(&log));
    match jit_test::report::build(&log, run.as_deref()) {
        Ok(mut report) => {
            eprint!("{}", jit_test::summary::present(&mut report));
            stale_baseline_entries(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-test: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Lists baseline entries of tests the run did not request anything for.
fn stale_baseline_entries(report: &jit_test::report::RunReport) {
    let Ok(policy) = jit_test::approval::Policy::load(jit_test::Config::global()) else {
        return;
    };
    let Ok(entries) = jit_test::approval::Entries::read(&policy.baseline) else {
        return;
    };
    let seen: Vec<&str> = report.tests.iter().map(|t| t.name.as_str()).collect();
    let stale = entries.stale(&seen);
    if !stale.is_empty() {
        eprintln!(
            "jit-test: {} entries of {} belong to tests that did not run (removed or renamed?):",
            stale.len(),
            policy.baseline.display()
        );
        for test in stale {
            eprintln!("jit-test:   {test}");
        }
    }
}

fn verify(path: PathBuf) -> ExitCode {
    let contents = match jit_test::audit::read(&path) {
        Ok(contents) => contents,
        Err(e) => {
            eprintln!("cannot read the audit log {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let report = &contents.verification;
    let code = if report.is_ok() {
        println!(
            "audit log {} verified: {} lines, {} leases, every one revoked and proven dead",
            path.display(),
            report.lines,
            report.leases
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "audit log {}: {} problems",
            path.display(),
            report.problems.len()
        );
        for problem in &report.problems {
            eprintln!("  {problem}");
        }
        ExitCode::FAILURE
    };
    print_last_run_keys(&contents.events);
    code
}

/// Prints the keys that sealed the last run's appends, to compare with its report.
fn print_last_run_keys(events: &[jit_test::audit::Event]) {
    let Some(last) = events.last() else {
        return;
    };
    let mut keys: Vec<&str> = Vec::new();
    for event in events.iter().filter(|e| e.run == last.run) {
        if let jit_test::audit::EventKind::Sealed { public_key, .. } = &event.kind
            && !keys.contains(&public_key.as_str())
        {
            keys.push(public_key);
        }
    }
    if !keys.is_empty() {
        println!(
            "run {} was sealed by these Ed25519 keys (they must match its report):",
            last.run
        );
        for key in keys {
            println!("  {key}");
        }
    }
}
