//! The audit log file: appends under an exclusive file lock, so any number of test
//! processes can share one log without interleaving or losing lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::event::Event;
use super::line::{self, GENESIS};

struct Tail {
    file: File,
    /// File length after our last append and the hash of its last line.
    known: Option<(u64, String)>,
}

/// An audit log file, shared safely by threads and processes.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Option<Tail>>,
}

/// Reads the hash at the end of the file's last line (`…"<64 hex>"}\n`).
fn last_hash(file: &mut File, len: u64, path: &Path) -> io::Result<String> {
    if len == 0 {
        return Ok(GENESIS.to_owned());
    }
    let mut buf = [0u8; line::HASH_TAIL + 1];
    let start = len.saturating_sub(buf.len() as u64);
    file.seek(SeekFrom::Start(start))?;
    let read = usize::try_from(len - start).unwrap_or(buf.len());
    file.read_exact(&mut buf[..read])?;
    let last = buf[..read].strip_suffix(b"\n");
    match last.and_then(line::tail_hash) {
        Some(hash) => Ok(hash.to_owned()),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the audit log's last line is damaged; run `jit-test verify {}`",
                path.display()
            ),
        )),
    }
}

impl AuditLog {
    /// An audit log at `path`; the file and its directory are created on first append.
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog {
            path: path.into(),
            tail: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `events` as consecutive lines, atomically with respect to other writers.
    pub fn append(&self, events: &[Event]) -> io::Result<()> {
        let mut guard = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&self.path)?;
            *guard = Some(Tail { file, known: None });
        }
        let tail = guard.as_mut().expect("opened above");
        tail.file.lock()?;
        let result = self.append_locked(tail, events);
        tail.file.unlock()?;
        result
    }

    fn append_locked(&self, tail: &mut Tail, events: &[Event]) -> io::Result<()> {
        let len = tail.file.metadata()?.len();
        let mut prev = match &tail.known {
            Some((known_len, hash)) if *known_len == len => hash.clone(),
            _ => last_hash(&mut tail.file, len, &self.path)?,
        };
        let mut out = Vec::with_capacity(events.len() * 320);
        for event in events {
            prev = line::encode(&prev, event, &mut out)?;
        }
        tail.file.write_all(&out)?;
        tail.known = Some((len + out.len() as u64, prev));
        Ok(())
    }
}
