//! The run report: what the [audit log](crate::audit) says about a run, test by test.
//!
//! [`build`] reads the log (one run, or all of it) and assembles a [`RunReport`]: per
//! test its schemes, permissions, ttl, how long each lease was held, the denials it
//! asserted, and everything that went wrong (approvals denied, failed grants and
//! revocations, leaks, privileges beyond scope), plus the result of
//! [`verify`](crate::audit::verify) on the whole file. [`write`](fn@write) turns it into
//! `report.json`, `report.md` and `report.html`, one self-contained page with a timeline
//! of every lease. [`RunReport::summary_line`] is the one line to print after a run.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let log = Path::new("target/jit-test/audit.jsonl");
//! let mut report = jit_test::report::build(log, None)?;
//! let dir = jit_test::report::default_dir();
//! jit_test::report::write(&report, &dir)?;
//! report.html = Some(dir.join("report.html"));
//! println!("{}", report.summary_line());
//! for problem in report.problems() {
//!     eprintln!("  {problem}");
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Everything in the report comes from the log, which holds no secrets; everything taken
//! from it is escaped when written as Markdown or HTML.

mod build;
mod hosts;
mod html;
mod junit;
mod markdown;
mod model;
mod problems;
mod text;

use std::io;
use std::path::{Path, PathBuf};

pub use build::{build, build_from};
pub use model::*;
pub use text::format_millis;

/// Where reports go by default: `<target>/jit-test/` (see
/// [`config::target_dir`](crate::config::target_dir)).
pub fn default_dir() -> PathBuf {
    crate::config::out_dir()
}

/// Writes `report.json`, `report.md` and `report.html` into `dir` (created if missing).
pub fn write(report: &RunReport, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), report.to_json() + "\n")?;
    std::fs::write(dir.join("report.md"), report.to_markdown())?;
    std::fs::write(dir.join("report.html"), report.to_html())?;
    Ok(())
}
