//! Pruning: removing the oldest runs from a log without breaking the verification of the
//! rest. The log then begins with a [`EventKind::Pruned`] line that says how many lines
//! and runs went, and whose `prev` is the hash of the last line removed: the chain goes
//! on from there. With an HMAC key configured, that line is keyed, so only a key holder
//! can prune.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::checkpoint;
use super::event::{Event, EventKind};
use super::key::{Authentication, HmacKey};
use super::line;
use super::runs;
use super::sidecar::beside;
use super::verify::{Checker, scan};

/// What [`prune`] removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    /// The runs removed (those in the run index), oldest first.
    pub runs: Vec<String>,
    /// The lines removed.
    pub lines: u64,
    /// The bytes removed (less the line that records the removal).
    pub bytes: u64,
}

fn refused(path: &Path, why: String) -> io::Error {
    io::Error::other(format!(
        "cannot prune the audit log {}: {why}",
        path.display()
    ))
}

/// Removes every run of the log at `path` but the `keep` that began last, under the
/// log's exclusive lock. Refuses when anything before the cut is unresolved — a problem
/// `verify` would report, a lease not yet revoked and proven dead (or reaped), a writer's
/// lines not yet sealed — since the lines that would explain it would be gone. While it
/// rewrites the log, `<log>.pruning` holds the whole new log.
pub fn prune(path: impl AsRef<Path>, keep: usize) -> io::Result<Pruned> {
    let path = path.as_ref();
    let key = HmacKey::from_env(&crate::config::target_dir())?;
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    file.lock()?;
    let result = prune_locked(&mut file, path, key, keep);
    file.unlock()?;
    result
}

fn prune_locked(
    file: &mut File,
    path: &Path,
    key: Option<HmacKey>,
    keep: usize,
) -> io::Result<Pruned> {
    let index = runs::read(path);
    let Some(removed) = index.len().checked_sub(keep).filter(|n| *n > 0) else {
        return Ok(Pruned {
            runs: Vec::new(),
            lines: 0,
            bytes: 0,
        });
    };
    let (cut, first_kept) = index.get(removed).cloned().map_or_else(
        || (file.metadata().map_or(0, |m| m.len()), None),
        |(offset, run)| (offset, Some(run)),
    );
    let mut checker = Checker::new(key.as_ref());
    file.seek(SeekFrom::Start(0))?;
    let scanned = scan(BufReader::new(&*file), &mut checker, 0, Some(cut))?;
    let Some(state) = scanned.before.or_else(|| {
        let (end, state) = scanned.end?;
        (end == cut).then_some(state)
    }) else {
        return Err(refused(
            path,
            format!(
                "its run index ({}) names offset {cut}, where no line begins; \
                 run `jit-test verify {}`",
                runs::path(path).display(),
                path.display()
            ),
        ));
    };
    if let Some(why) = state.unsettled() {
        return Err(refused(
            path,
            format!(
                "{why} before the cut (line {}); run `jit-test verify {}`",
                state.lines() + 1,
                path.display()
            ),
        ));
    }
    let auth = key.map_or(Authentication::Plain, Authentication::Keyed);
    let anchor = Event::new(
        first_kept.as_deref().unwrap_or_default(),
        "audit",
        EventKind::Pruned {
            lines: state.lines() as u64,
            runs: removed as u64,
        },
    );
    let mut log = Vec::new();
    line::encode(state.head(), &anchor, &auth, &mut log)?;
    let shift = log.len() as u64;
    file.seek(SeekFrom::Start(cut))?;
    file.read_to_end(&mut log)?;
    let pending = beside(path, ".pruning");
    std::fs::write(&pending, &log)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&log)?;
    file.sync_all()?;
    std::fs::remove_file(&pending)?;
    let kept: Vec<(u64, String)> = index[removed..]
        .iter()
        .map(|(offset, run)| (offset - cut + shift, run.clone()))
        .collect();
    runs::rewrite(path, &kept)?;
    checkpoint::clear(path)?;
    Ok(Pruned {
        runs: index[..removed]
            .iter()
            .map(|(_, run)| run.clone())
            .collect(),
        lines: state.lines() as u64,
        bytes: cut,
    })
}
