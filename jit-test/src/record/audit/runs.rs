//! Where each run begins in the log: `<log>.runs`, one line `<byte offset> <run id>` per
//! run, in the order the runs began. The writer notes a run, under the log's lock, before
//! the run's first line; readers use it to start near a run instead of at the log's start.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::sidecar::beside;

/// The index beside the log at `log`.
pub(super) fn path(log: &Path) -> PathBuf {
    beside(log, ".runs")
}

/// The runs of the index beside `log`, with the offsets where they begin, oldest first.
/// A missing or unreadable index has none.
pub(super) fn read(log: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path(log)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (offset, run) = line.split_once(' ')?;
            Some((offset.parse().ok()?, run.to_owned()))
        })
        .collect()
}

/// Notes that `run` begins at `offset`, unless the index already has it. The caller
/// holds the log's exclusive lock and writes the run's first line at `offset` or later.
pub(super) fn note(log: &Path, run: &str, offset: u64) -> io::Result<()> {
    if read(log).iter().any(|(_, known)| known == run) {
        return Ok(());
    }
    let mut index = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(log))?;
    index.write_all(format!("{offset} {run}\n").as_bytes())
}

/// Replaces the index beside `log` with `runs`.
pub(super) fn rewrite(log: &Path, runs: &[(u64, String)]) -> io::Result<()> {
    let text: String = runs.iter().map(|(o, r)| format!("{o} {r}\n")).collect();
    std::fs::write(path(log), text)
}

/// Where `run` begins in the log at `log`, if the index knows.
pub(super) fn start(log: &Path, run: &str) -> Option<u64> {
    read(log)
        .into_iter()
        .find_map(|(offset, known)| (known == run).then_some(offset))
}

/// The run that began last in the log at `log`, if the index knows.
pub fn latest(log: &Path) -> Option<String> {
    read(log).pop().map(|(_, run)| run)
}
