//! The audit trail: an append-only, SHA-256 hash-chained JSON Lines file.
//!
//! Each line is one [`Event`] plus `prev` (the hash of the line before, 64 zeros for the
//! first) and, last, `hash`: the SHA-256 of the line's text without its `,"hash":…` tail.
//! Appends take an exclusive file lock, so any number of test processes can share one
//! log without interleaving or losing lines. Events never contain secrets.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_TAIL: usize = 9 + 64 + 2;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A test asked for permissions.
    Requested,
    /// An approver allowed the request.
    Approved,
    /// An approver refused the request.
    Denied,
    /// A principal was created.
    Granted,
    /// Creating the principal failed.
    GrantFailed,
    /// The watchdog revoked a lease at its ttl while the test still ran.
    Expired,
    /// The principal was removed.
    Revoked,
    /// Removing the principal failed.
    RevokeFailed,
    /// The old credential was tried and refused.
    ProvenDead,
    /// The old credential still worked after revocation.
    LeakDetected,
    /// The reaper removed a principal left by a crashed run.
    Reaped,
    /// A test asserted that an operation was denied; `detail` is the asserted expression.
    DenialAsserted,
    /// A principal holds privileges beyond its scope; `detail` lists them.
    BeyondScope,
}

/// One audit event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// The run id.
    pub run: String,
    /// The process that wrote it.
    pub pid: u32,
    /// What happened.
    pub event: EventKind,
    /// The test, if any (the reaper has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub test: String,
    /// The provider's scheme.
    pub scheme: String,
    /// The lease id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// The principal's name, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The permissions concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// A reason, an error message, or how a proof was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    /// A new event of `kind` for `scheme`, stamped now, in this process and run.
    pub fn new(kind: EventKind, run: &str, scheme: &str) -> Event {
        Event {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            run: run.to_owned(),
            pid: std::process::id(),
            event: kind,
            test: String::new(),
            scheme: scheme.to_owned(),
            lease: None,
            principal: None,
            permissions: Vec::new(),
            expires_at: None,
            detail: None,
        }
    }
}

#[derive(Serialize)]
struct Record<'a> {
    prev: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Deserialize)]
struct StoredRecord {
    prev: String,
    #[serde(flatten)]
    event: Event,
}

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

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the hash at the end of the file's last line (`…"<64 hex>"}\n`).
fn last_hash(file: &mut File, len: u64) -> io::Result<String> {
    if len == 0 {
        return Ok(GENESIS.to_owned());
    }
    let mut buf = [0u8; 67];
    file.seek(SeekFrom::Start(len.saturating_sub(67)))?;
    file.read_exact(&mut buf)?;
    match std::str::from_utf8(&buf[..64]) {
        Ok(hex) if buf[64..] == *b"\"}\n" && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(hex.to_owned())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the audit log's last line is damaged; run jit_test::audit::verify on it",
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
        let result = Self::append_locked(tail, events);
        tail.file.unlock()?;
        result
    }

    fn append_locked(tail: &mut Tail, events: &[Event]) -> io::Result<()> {
        let len = tail.file.metadata()?.len();
        let mut prev = match &tail.known {
            Some((known_len, hash)) if *known_len == len => hash.clone(),
            _ => last_hash(&mut tail.file, len)?,
        };
        let mut out = Vec::with_capacity(events.len() * 320);
        for event in events {
            let mut line = serde_json::to_vec(&Record { prev: &prev, event })?;
            prev = sha256_hex(&line);
            line.pop();
            out.extend_from_slice(&line);
            out.extend_from_slice(b",\"hash\":\"");
            out.extend_from_slice(prev.as_bytes());
            out.extend_from_slice(b"\"}\n");
        }
        tail.file.write_all(&out)?;
        tail.known = Some((len + out.len() as u64, prev));
        Ok(())
    }
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Lines read.
    pub lines: usize,
    /// Leases granted.
    pub leases: usize,
    /// Everything wrong, one sentence each. Empty when the log is sound.
    pub problems: Vec<String>,
}

impl Verification {
    /// True when the chain is intact and every grant was revoked and proven dead.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct LeaseTrail {
    test: String,
    principal: String,
    line: usize,
    revoked: bool,
    proven: bool,
}

/// Checks the hash chain of the log at `path`, and that every granted lease was revoked
/// (or reaped) and proven dead. Leak detections and failed revocations are problems.
pub fn verify(path: impl AsRef<Path>) -> io::Result<Verification> {
    let reader = BufReader::new(File::open(path)?);
    let mut report = Verification::default();
    let mut prev = GENESIS.to_owned();
    let mut leases: BTreeMap<String, LeaseTrail> = BTreeMap::new();
    let mut reaped = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let (line, number) = (line?, index + 1);
        report.lines = number;
        let Some(split) = line.len().checked_sub(HASH_TAIL) else {
            report
                .problems
                .push(format!("line {number}: too short to be an audit record"));
            continue;
        };
        let hash = line.get(split + 9..line.len() - 2).unwrap_or_default();
        let body = format!("{}}}", &line[..split]);
        if sha256_hex(body.as_bytes()) != hash {
            report.problems.push(format!(
                "line {number}: hash does not match its content (edited?)"
            ));
        }
        let record: StoredRecord = match serde_json::from_str(&body) {
            Ok(r) => r,
            Err(e) => {
                report
                    .problems
                    .push(format!("line {number}: not an audit record: {e}"));
                continue;
            }
        };
        if record.prev != prev {
            report.problems.push(format!(
                "line {number}: chain broken (a line before it was removed or changed)"
            ));
        }
        prev = hash.to_owned();
        let event = record.event;
        let lease_id = event.lease.clone().unwrap_or_default();
        match event.event {
            EventKind::Granted => {
                report.leases += 1;
                leases.insert(
                    lease_id,
                    LeaseTrail {
                        test: event.test,
                        principal: event.principal.unwrap_or_default(),
                        line: number,
                        ..LeaseTrail::default()
                    },
                );
            }
            EventKind::Revoked => leases.entry(lease_id).or_default().revoked = true,
            EventKind::ProvenDead => leases.entry(lease_id).or_default().proven = true,
            EventKind::Reaped => reaped.extend(event.principal),
            EventKind::LeakDetected => report.problems.push(format!(
                "line {number}: {} of test {} still worked after revocation",
                event.principal.unwrap_or_default(),
                event.test
            )),
            _ => {}
        }
    }
    for trail in leases.values() {
        let was_reaped = reaped.contains(&trail.principal);
        if !(trail.revoked || was_reaped) {
            report.problems.push(format!(
                "line {}: {} granted to {} was never revoked or reaped",
                trail.line, trail.principal, trail.test
            ));
        } else if !trail.proven && !was_reaped {
            report.problems.push(format!(
                "line {}: {} granted to {} was revoked but never proven dead",
                trail.line, trail.principal, trail.test
            ));
        }
    }
    Ok(report)
}
