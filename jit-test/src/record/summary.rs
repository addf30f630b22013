//! The end-of-process summary: when a test process that ran `#[jit_test]` tests exits,
//! it writes the run report (`target/jit-test/report.{json,md,html}`) for its run and
//! prints one line when all is well, one line per problem otherwise. All test binaries
//! of one `cargo test` share a run id, so the last one to exit reports the whole run.
//! `JIT_TEST_SUMMARY=0` turns it off (the runner reads it).

use std::io::Write;
use std::path::Path;
use std::sync::Once;

use crate::config::Config;
use crate::report::{self, RunReport};

/// How many problems the terminal summary lists; the report has them all.
const SHOWN_PROBLEMS: usize = 10;

unsafe extern "C" {
    /// The C library's exit hook registration; libtest ends with `process::exit`, which
    /// runs these hooks.
    fn atexit(hook: extern "C" fn()) -> std::ffi::c_int;
}

/// Arranges for the summary to be written when the process exits (once per process).
pub(crate) fn at_exit() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a hook with no arguments that never unwinds into C.
        unsafe {
            atexit(on_exit);
        }
    });
}

extern "C" fn on_exit() {
    let _ = std::panic::catch_unwind(|| {
        let config = Config::global();
        let text = match config.audit_url() {
            Some(url) => summarize_table(url, &config.run_id),
            None => summarize(&config.audit_log, Some(&config.run_id)),
        };
        // Written to the stream directly: libtest captures only the print macros.
        let _ = std::io::stderr().write_all(text.as_bytes());
    });
}

/// Builds and writes the report of one run (all runs for `None`) of the audit log at
/// `log`; returns the text to show.
pub fn summarize(log: &Path, run_id: Option<&str>) -> String {
    match report::build(log, run_id) {
        Ok(mut report) => present(&mut report),
        // A test that kept its audit log in a temporary file may have removed it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => format!("jit-test: {e}\n"),
    }
}

/// Builds and writes the report of run `run_id` from the PostgreSQL audit table at `url`
/// (every shard of the run); returns the text to show.
pub fn summarize_table(url: &str, run_id: &str) -> String {
    match crate::audit::read_table(url, run_id) {
        Ok(contents) => present(&mut report::build_from(url, contents, Some(run_id))),
        Err(e) => format!("jit-test: {e}\n"),
    }
}

/// Writes `report` into the default directory (and points it at its page there);
/// returns the text to show: its summary line and up to ten problems.
pub fn present(report: &mut RunReport) -> String {
    let dir = report::default_dir();
    if let Err(e) = report::write(report, &dir) {
        return format!(
            "jit-test: cannot write the report to {}: {e}\n",
            dir.display()
        );
    }
    report.html = Some(dir.join("report.html"));
    let mut text = report.summary_line() + "\n";
    let problems = report.problems();
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        text += &format!("jit-test:   {problem}\n");
    }
    if problems.len() > SHOWN_PROBLEMS {
        text += &format!(
            "jit-test:   ... and {} more: see the report\n",
            problems.len() - SHOWN_PROBLEMS
        );
    }
    text
}
