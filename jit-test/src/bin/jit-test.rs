//! `jit-test`: the command line for audit logs.
//!
//! ```text
//! jit-test verify [AUDIT_LOG]    check the hash chain and that every grant was revoked and proven dead
//! jit-test verify --run RUN [--sink URL]
//!                                the same for one run of the PostgreSQL audit table, every shard of it
//! jit-test report [RUN_ID]       write target/jit-test/report.{json,md,html} for a run (default: the latest)
//! jit-test report --run RUN [--sink URL] [--junit FILE]
//!                                the same from the table (all shards); --junit also writes JUnit XML
//! jit-test migrate [URL] [--writer ROLE]
//!                                create or upgrade the audit table (as its owner); ROLE may insert and read
//! jit-test prune --keep N [AUDIT_LOG]
//!                                remove all runs but the last N from the audit log; the rest still verifies
//! ```
//!
//! The audit log (or table) defaults to the configured one (`audit_log`, by default
//! `target/jit-test/audit.jsonl`).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: jit-test verify [AUDIT_LOG] [--run RUN] [--sink URL] | \
                     jit-test report [RUN_ID] [--run RUN] [--sink URL] [--junit FILE] | \
                     jit-test migrate [URL] [--writer ROLE] | \
                     jit-test prune --keep N [AUDIT_LOG]";

/// The command line, parsed: the command, its options, and what stood alone.
#[derive(Default)]
struct Args {
    command: String,
    run: Option<String>,
    sink: Option<String>,
    junit: Option<PathBuf>,
    writer: Option<String>,
    keep: Option<usize>,
    positional: Option<String>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Option<Args> {
        let mut parsed = Args {
            command: args.next()?,
            ..Args::default()
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--run" => parsed.run = Some(args.next()?),
                "--sink" => parsed.sink = Some(args.next()?),
                "--junit" => parsed.junit = Some(PathBuf::from(args.next()?)),
                "--writer" => parsed.writer = Some(args.next()?),
                "--keep" => parsed.keep = Some(args.next()?.parse().ok()?),
                _ if arg.starts_with("--") || parsed.positional.is_some() => return None,
                _ => parsed.positional = Some(arg),
            }
        }
        Some(parsed)
    }
}

fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

fn main() -> ExitCode {
    let configured = || {
        jit_test::Config::global()
            .audit_log
            .to_string_lossy()
            .into_owned()
    };
    let Some(args) = Args::parse(std::env::args().skip(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match args.command.as_str() {
        "verify" if args.junit.is_none() && args.writer.is_none() => {
            let source = args.sink.or(args.positional).unwrap_or_else(configured);
            match (is_url(&source), args.run) {
                (true, Some(run)) => verify_run(&source, &run),
                (true, None) => {
                    eprintln!("jit-test: give the run to verify in the table: --run <id>");
                    ExitCode::from(2)
                }
                (false, None) => verify(PathBuf::from(source)),
                (false, Some(_)) => {
                    eprintln!(
                        "jit-test: --run reads one run of a PostgreSQL audit table (--sink \
                         postgres://…, or audit_log); a file is verified whole: jit-test verify {source}"
                    );
                    ExitCode::from(2)
                }
            }
        }
        "report" if args.writer.is_none() => {
            let source = args.sink.unwrap_or_else(configured);
            report(&source, args.run.or(args.positional), args.junit)
        }
        "migrate" if args.run.is_none() && args.junit.is_none() && args.sink.is_none() => {
            match args
                .positional
                .or_else(|| Some(configured()).filter(|s| is_url(s)))
            {
                Some(url) => migrate(&url, args.writer.as_deref()),
                None => {
                    eprintln!(
                        "jit-test: give the audit table's URL (postgres://…), or set audit_log to it"
                    );
                    ExitCode::from(2)
                }
            }
        }
        "prune" if args.run.is_none() && args.junit.is_none() && args.sink.is_none() => {
            match args.keep {
                Some(keep) => prune(
                    PathBuf::from(args.positional.unwrap_or_else(configured)),
                    keep,
                ),
                None => {
                    eprintln!("jit-test: say how many of the latest runs to keep: --keep N");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
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

fn migrate(url: &str, writer: Option<&str>) -> ExitCode {
    #[cfg(feature = "postgres-audit")]
    match jit_test::audit::postgres::migrate(url, writer) {
        Ok(applied) => {
            match applied.as_slice() {
                [] => println!(
                    "audit table at {url}: already at version {}",
                    jit_test::audit::postgres::VERSION
                ),
                versions => println!("audit table at {url}: applied migrations {versions:?}"),
            }
            if let Some(role) = writer {
                println!("role {role} may insert into and read the audit table, nothing else");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-test: {e}");
            ExitCode::FAILURE
        }
    }
    #[cfg(not(feature = "postgres-audit"))]
    {
        let _ = (url, writer);
        eprintln!("jit-test: this jit-test was built without the feature `postgres-audit`");
        ExitCode::FAILURE
    }
}

/// Verifies run `run` of the audit table at `url`: every writer's chain, every lease.
fn verify_run(url: &str, run: &str) -> ExitCode {
    let contents = match jit_test::audit::read_table(url, run) {
        Ok(contents) => contents,
        Err(e) => {
            eprintln!("jit-test: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = &contents.verification;
    let mut hosts: Vec<&str> = contents.events.iter().map(|e| e.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let code = if report.is_ok() && report.lines > 0 {
        println!(
            "audit table {url}, run {run} verified: {} rows from {} hosts ({}), {} leases, \
             every one revoked and proven dead",
            report.lines,
            hosts.len(),
            hosts.join(", "),
            report.leases
        );
        ExitCode::SUCCESS
    } else if report.lines == 0 {
        eprintln!("audit table {url}: no rows of run {run}");
        ExitCode::FAILURE
    } else {
        print_problems(&format!("audit table {url}, run {run}"), &report.problems)
    };
    print_last_run_keys(&contents.events);
    code
}

fn report(source: &str, run: Option<String>, junit: Option<PathBuf>) -> ExitCode {
    let built = if is_url(source) {
        let Some(run) = run else {
            eprintln!("jit-test: give the run to report from the table: --run <id>");
            return ExitCode::from(2);
        };
        jit_test::audit::read_table(source, &run)
            .map(|contents| jit_test::report::build_from(source, contents, Some(&run)))
    } else {
        let log = PathBuf::from(source);
        let run = run.or_else(|| jit_test::audit::latest_run(&log));
        jit_test::report::build(&log, run.as_deref())
    };
    match built {
        Ok(mut report) => {
            eprint!("{}", jit_test::summary::present(&mut report));
            stale_baseline_entries(&report);
            unneeded_permissions(&report);
            if let Some(path) = junit {
                if let Err(e) = std::fs::write(&path, report.to_junit()) {
                    eprintln!("jit-test: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("jit-test: JUnit XML written to {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-test: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Lists the permissions the minimizer found unneeded, over every test of the report
/// (every shard, when it was read from the table).
fn unneeded_permissions(report: &jit_test::report::RunReport) {
    let found: Vec<(&str, &[String])> = report
        .tests
        .iter()
        .filter_map(|t| Some((t.name.as_str(), t.minimizer.as_ref()?.unneeded.as_slice())))
        .filter(|(_, unneeded)| !unneeded.is_empty())
        .collect();
    if found.is_empty() {
        return;
    }
    eprintln!("jit-test: the minimizer found permissions tests passed without:");
    for (test, unneeded) in found {
        eprintln!("jit-test:   {test}: {}", unneeded.join(", "));
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
    if let Some((seen, total)) = report.missing_shards() {
        eprintln!(
            "jit-test: this report holds shards {} of {total}: stale baseline entries are \
             listed only over the whole run (put the run's audit trail in PostgreSQL and \
             report with --run)",
            seen.join(", ")
        );
        return;
    }
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
        print_problems(&format!("audit log {}", path.display()), &report.problems)
    };
    print_last_run_keys(&contents.events);
    code
}

/// Prints what `verify` found wrong in `what`; the exit code that says so.
fn print_problems(what: &str, problems: &[jit_test::audit::Problem]) -> ExitCode {
    eprintln!("{what}: {} problems", problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::FAILURE
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
