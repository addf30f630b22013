//! The audit log file: appends under an exclusive file lock, so any number of test
//! processes can share one log without interleaving or losing lines. Before a run's
//! first line, the writer notes where it begins in the [run index](super::runs).
//!
//! A crash mid-append can leave the file ending in an incomplete line. The next writer
//! finds it, copies those bytes beside the log (`audit.jsonl.torn-<offset>-<millis>`),
//! cuts them off, and chains a [`EventKind::TornTail`] line recording where they were and
//! where they went before its own lines; `verify` reports it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::event::{Event, EventKind};
use super::key::{Authentication, HmacKey, Signer};
use super::line::{self, GENESIS};
use super::runs;
use super::sidecar::beside;

struct Tail {
    file: File,
    /// File length after our last append and the hash of its last line.
    known: Option<(u64, String)>,
    /// The runs this writer noted in the run index.
    noted: Vec<String>,
}

/// An audit log file, shared safely by threads and processes.
pub struct AuditLog {
    path: PathBuf,
    auth: Authentication,
    tail: Mutex<Option<Tail>>,
}

/// How far back a writer looks for the end of the last complete line: far more than one
/// append (a few lines) can leave behind.
const TEAR_WINDOW: u64 = 64 * 1024;

/// How the file ends.
enum End {
    /// With a complete line whose hash is this (or empty: the genesis hash).
    Sealed(String),
    /// With an incomplete append from `at` on, after a complete line whose hash is `prev`.
    Torn { at: u64, prev: String },
}

/// Finds the last complete line, looking back at most [`TEAR_WINDOW`] bytes.
fn find_end(file: &mut File, len: u64, path: &Path) -> io::Result<End> {
    if len == 0 {
        return Ok(End::Sealed(GENESIS.to_owned()));
    }
    let start = len.saturating_sub(TEAR_WINDOW);
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or_default());
    file.seek(SeekFrom::Start(start))?;
    file.take(len - start).read_to_end(&mut buf)?;
    let sealed_end = (0..buf.len())
        .rev()
        .filter(|&i| buf[i] == b'\n')
        .find_map(|i| line::tail_hash(&buf[..i]).map(|hash| (start + i as u64 + 1, hash)));
    match sealed_end {
        Some((end, hash)) if end == len => Ok(End::Sealed(hash.to_owned())),
        Some((end, hash)) => Ok(End::Torn {
            at: end,
            prev: hash.to_owned(),
        }),
        None if start == 0 => Ok(End::Torn {
            at: 0,
            prev: GENESIS.to_owned(),
        }),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the audit log {} ends in {TEAR_WINDOW} bytes without a complete line; \
                 run `jit-test verify {}` to see what is wrong, then move the file aside",
                path.display(),
                path.display()
            ),
        )),
    }
}

/// Copies the bytes of `file` from `at` to `len` into a new file beside `path` and
/// returns its path; the caller then cuts them off the log.
fn set_aside(file: &mut File, at: u64, len: u64, path: &Path) -> io::Result<PathBuf> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let kept = beside(path, &format!(".torn-{at}-{millis}"));
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&kept)?;
    file.seek(SeekFrom::Start(at))?;
    io::copy(&mut file.take(len - at), &mut copy)?;
    copy.sync_all()?;
    Ok(kept)
}

impl AuditLog {
    /// An audit log at `path` whose lines are plain SHA-256, which anyone who can write
    /// the file can recompute: for tools and tests. The file and its directory are
    /// created on first append.
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog::with(path.into(), Authentication::Plain)
    }

    /// An audit log at `path` whose lines are HMAC-SHA-256 under `key`.
    pub fn keyed(path: impl Into<PathBuf>, key: HmacKey) -> AuditLog {
        AuditLog::with(path.into(), Authentication::Keyed(key))
    }

    /// An audit log at `path` whose appends are each sealed with the signature of an
    /// Ed25519 key pair made now, for this writer only.
    pub fn signed(path: impl Into<PathBuf>) -> io::Result<AuditLog> {
        Ok(AuditLog::with(
            path.into(),
            Authentication::Signed(Signer::generate()?),
        ))
    }

    /// The audit log the broker writes at `path`: keyed when `JIT_TEST_AUDIT_KEY` or
    /// `JIT_TEST_AUDIT_KEY_FILE` (outside `target`) gives a key, signed otherwise.
    pub fn from_env(path: impl Into<PathBuf>, target: &Path) -> io::Result<AuditLog> {
        match HmacKey::from_env(target)? {
            Some(key) => Ok(AuditLog::keyed(path, key)),
            None => AuditLog::signed(path),
        }
    }

    fn with(path: PathBuf, auth: Authentication) -> AuditLog {
        AuditLog {
            path,
            auth,
            tail: Mutex::new(None),
        }
    }

    /// The public key (hex) that seals this writer's appends, when it signs them.
    pub fn public_key(&self) -> Option<&str> {
        match &self.auth {
            Authentication::Signed(signer) => Some(signer.public_hex()),
            _ => None,
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
            *guard = Some(Tail {
                file,
                known: None,
                noted: Vec::new(),
            });
        }
        let tail = guard.as_mut().expect("opened above");
        tail.file.lock()?;
        let result = self.append_locked(tail, events);
        tail.file.unlock()?;
        result
    }

    fn append_locked(&self, tail: &mut Tail, events: &[Event]) -> io::Result<()> {
        let mut len = tail.file.metadata()?.len();
        let mut out = Vec::with_capacity((events.len() + 1) * 320);
        let mut prev = match &tail.known {
            Some((known_len, hash)) if *known_len == len => hash.clone(),
            _ => match find_end(&mut tail.file, len, &self.path)? {
                End::Sealed(hash) => hash,
                End::Torn { at, prev } => {
                    let marker = self.cut_torn_tail(&mut tail.file, at, len, events)?;
                    len = at;
                    line::encode(&prev, &marker, &self.auth, &mut out)?
                }
            },
        };
        for event in events {
            if !tail.noted.contains(&event.run) {
                runs::note(&self.path, &event.run, len)?;
                tail.noted.push(event.run.clone());
            }
        }
        prev = line::encode_append(&prev, events, &self.auth, &mut out)?;
        tail.file.write_all(&out)?;
        tail.known = Some((len + out.len() as u64, prev));
        Ok(())
    }

    /// Sets the incomplete append from `at` to `len` aside, cuts it off the log, and
    /// returns the event that records this, in the run of the `events` about to follow.
    fn cut_torn_tail(
        &self,
        file: &mut File,
        at: u64,
        len: u64,
        events: &[Event],
    ) -> io::Result<Event> {
        let kept = set_aside(file, at, len, &self.path)?;
        file.set_len(at)?;
        let kind = EventKind::TornTail {
            offset: at,
            bytes: len - at,
            kept: kept.display().to_string(),
        };
        let run = events.first().map_or("", |e| e.run.as_str());
        Ok(Event::new(run, "audit", kind))
    }
}
