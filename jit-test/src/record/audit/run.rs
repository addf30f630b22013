//! Reading one run of a log at the cost of that run: from the [checkpoint](super::checkpoint)
//! nearest before the run's first line (the [run index](super::runs) says where that is)
//! to the end, with the verification going on from the checkpoint's state, so that it
//! finds what reading the whole log would.

use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::checkpoint::{self, Checkpoint};
use super::key::HmacKey;
use super::runs;
use super::verify::{Checker, Contents, State, scan};

/// Reads the log at `path` from the nearest checkpoint before run `run` began: the events
/// of every line from there on (all of that run's among them), and the verification of
/// the whole log. Leaves checkpoints where the run begins and where the log ends, for the
/// next reader. Reads the whole log when the run or a checkpoint before it is unknown.
/// Holds a shared lock meanwhile, so no append is seen half-written.
pub fn read_run(path: impl AsRef<Path>, run: &str) -> io::Result<Contents> {
    let path = path.as_ref();
    let key = HmacKey::from_env(&crate::config::target_dir())?;
    let mut file = File::open(path)?;
    file.lock_shared()?;
    let start = runs::start(path, run);
    let from = start.and_then(|start| {
        checkpoint::load(path)
            .into_iter()
            .filter(|c| c.offset <= start)
            .find(|c| c.holds(&mut file))
    });
    let (offset, state) = from.map_or((0, State::default()), |c| (c.offset, c.state));
    let mut checker = Checker::resume(key.as_ref(), state);
    let scanned = file
        .seek(SeekFrom::Start(offset))
        .and_then(|_| scan(BufReader::new(&file), &mut checker, offset, start));
    file.unlock()?;
    let scanned = scanned?;
    let mut new = Vec::new();
    if let (Some(offset), Some(state)) = (start, scanned.before) {
        new.push(Checkpoint { offset, state });
    }
    if let Some((offset, state)) = scanned.end {
        new.push(Checkpoint { offset, state });
    }
    // A checkpoint that cannot be kept costs the next reader time, not correctness.
    let _ = checkpoint::save(path, new);
    Ok(Contents {
        events: scanned.events,
        verification: checker.finish(),
    })
}
