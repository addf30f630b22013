//! Checkpoints: what verifying the log up to a byte offset found, kept beside it
//! (`<log>.checkpoints`), so that reading one run costs the lines after the checkpoint
//! nearest before it, not the whole history.
//!
//! A checkpoint is a cache of the verifier's own state, written by readers. It is used
//! only where the line that ends at its offset still has the hash it records; a missing,
//! damaged or outdated one costs a read from the start, never a wrong result for the
//! lines after it. It is as trustworthy as the file it sits in: `jit-test verify` reads
//! every line and ignores checkpoints.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::line::{self, GENESIS, HASH_TAIL};
use super::sidecar::beside;
use super::verify::State;

/// How many checkpoints are kept, the latest ones.
const KEPT: usize = 8;

/// The verifier's state after the line that ends at `offset`.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    /// Where the next line begins, in bytes from the start of the log.
    pub offset: u64,
    /// What was found up to there.
    pub state: State,
}

fn path(log: &Path) -> PathBuf {
    beside(log, ".checkpoints")
}

/// The checkpoints kept beside `log`, latest first; none if they cannot be read.
pub(super) fn load(log: &Path) -> Vec<Checkpoint> {
    let mut kept: Vec<Checkpoint> = std::fs::read(path(log))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    kept.sort_by_key(|c| std::cmp::Reverse(c.offset));
    kept
}

/// Keeps `new` beside `log` with the latest of those already there. Readers race to
/// write; the loser's checkpoints are lost, which costs only a longer read later.
pub(super) fn save(log: &Path, new: Vec<Checkpoint>) -> io::Result<()> {
    let mut kept = load(log);
    for checkpoint in new {
        kept.retain(|c| c.offset != checkpoint.offset);
        kept.push(checkpoint.compacted());
    }
    kept.sort_by_key(|c| std::cmp::Reverse(c.offset));
    kept.truncate(KEPT);
    let target = path(log);
    let temporary = beside(&target, &format!(".{}", std::process::id()));
    std::fs::write(&temporary, serde_json::to_vec(&kept)?)?;
    std::fs::rename(temporary, target)
}

/// Forgets the checkpoints of `log` (its offsets changed).
pub(super) fn clear(log: &Path) -> io::Result<()> {
    match std::fs::remove_file(path(log)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Checkpoint {
    /// The same checkpoint, its state [compacted](State::compacted).
    fn compacted(&self) -> Checkpoint {
        Checkpoint {
            offset: self.offset,
            state: self.state.compacted(),
        }
    }

    /// Whether the line of `file` that ends at this checkpoint's offset is the one it
    /// recorded: its hash is the recorded head.
    pub fn holds(&self, file: &mut File) -> bool {
        if self.offset == 0 {
            return self.state.head() == GENESIS && self.state.lines() == 0;
        }
        let Some(start) = self.offset.checked_sub(HASH_TAIL as u64 + 1) else {
            return false;
        };
        let mut tail = vec![0; HASH_TAIL + 1];
        let read = file
            .seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut tail));
        read.is_ok()
            && tail.pop() == Some(b'\n')
            && line::tail_hash(&tail) == Some(self.state.head())
    }
}
