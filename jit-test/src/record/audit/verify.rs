//! Reading a log back: the chain checked line by line, and every granted lease followed
//! to its revocation (or reaping) and proof.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::event::{Event, EventKind};
use super::key::{HmacKey, head_signed, signer_id, unhex};
use super::line::{GENESIS, Read, Sealed};
use super::problem::{Finding, Problem, ProblemKind};

/// What [`verify`] found.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// Lines read.
    pub lines: usize,
    /// Leases granted.
    pub leases: usize,
    /// Everything wrong, in the order of the log. Empty when the log is sound.
    pub problems: Vec<Problem>,
}

impl Verification {
    /// True when the chain is intact and every grant was revoked and proven dead.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when no line was edited, removed or unreadable (whatever the leases did).
    pub fn chain_intact(&self) -> bool {
        !self
            .problems
            .iter()
            .any(|p| p.finding.kind() == ProblemKind::Chain)
    }
}

/// A log read back: its events, and what verifying it found.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// Every event that could be read, in the order of the log.
    pub events: Vec<Event>,
    /// The verification of the whole log.
    pub verification: Verification,
}

#[derive(Default)]
struct LeaseTrail {
    test: String,
    principal: String,
    line: usize,
    revoked: bool,
    proven: bool,
}

/// A signer's last seal: its line, the head it signed, its public key and signature.
struct Seal {
    line: usize,
    head: String,
    public_key: String,
    signature: String,
}

/// Follows the chain, its authentication and the leases, one line at a time.
struct Checker<'k> {
    key: Option<&'k HmacKey>,
    report: Verification,
    prev: String,
    leases: BTreeMap<String, LeaseTrail>,
    reaped: Vec<String>,
    /// Whether a keyed or signed line was seen: from then on, every line must be.
    authenticated: bool,
    unknown_keys: BTreeSet<String>,
    /// Per signer, the first line and the number of lines not yet sealed.
    unsealed: BTreeMap<String, (usize, usize)>,
    seals: BTreeMap<String, Seal>,
}

impl<'k> Checker<'k> {
    fn new(key: Option<&'k HmacKey>) -> Checker<'k> {
        Checker {
            key,
            report: Verification::default(),
            prev: GENESIS.to_owned(),
            leases: BTreeMap::new(),
            reaped: Vec::new(),
            authenticated: false,
            unknown_keys: BTreeSet::new(),
            unsealed: BTreeMap::new(),
            seals: BTreeMap::new(),
        }
    }

    fn problem(&mut self, line: usize, finding: Finding) {
        self.report.problems.push(Problem { line, finding });
    }

    /// Checks line `number` (without its newline) and returns its event, if readable.
    fn line(&mut self, number: usize, line: &[u8]) -> Option<Event> {
        self.report.lines = number;
        let sealed = match Sealed::open(line) {
            Ok(sealed) => sealed,
            Err(finding) => {
                self.problem(number, finding);
                return None;
            }
        };
        let read = match sealed.read() {
            Ok(read) => read,
            Err(finding) => {
                self.problem(number, finding);
                return None;
            }
        };
        self.authenticate(number, &sealed, &read);
        if read.prev != self.prev {
            self.problem(number, Finding::ChainBroken);
        }
        self.prev = sealed.hash;
        self.follow(number, &read.event);
        Some(read.event)
    }

    /// Checks the line's hash under its key, and keeps track of what its signer sealed.
    fn authenticate(&mut self, number: usize, sealed: &Sealed, read: &Read) {
        let key = read.key.as_deref().unwrap_or_default();
        let mac_key = if key.starts_with("hmac:") {
            match self.key.filter(|k| k.id() == key) {
                Some(mac_key) => Some(mac_key),
                None => {
                    if self.unknown_keys.insert(key.to_owned()) {
                        let key = key.to_owned();
                        self.problem(number, Finding::UnknownKey { key });
                    }
                    return;
                }
            }
        } else {
            None
        };
        if !sealed.hash_matches(mac_key) {
            self.problem(number, Finding::HashMismatch);
        }
        if key.is_empty() {
            if self.authenticated {
                self.problem(number, Finding::Unauthenticated);
            }
            return;
        }
        self.authenticated = true;
        if !key.starts_with("ed25519:") {
            return;
        }
        match &read.event.kind {
            EventKind::Sealed {
                public_key,
                signature,
            } => {
                self.unsealed.remove(key);
                let seal = Seal {
                    line: number,
                    head: read.prev.clone(),
                    public_key: public_key.clone(),
                    signature: signature.clone(),
                };
                self.seals.insert(key.to_owned(), seal);
            }
            _ => self.unsealed.entry(key.to_owned()).or_insert((number, 0)).1 += 1,
        }
    }

    fn follow(&mut self, number: usize, event: &Event) {
        let lease_id = event.lease.clone().unwrap_or_default();
        let principal = event.principal.clone().unwrap_or_default();
        match event.kind {
            EventKind::Granted { .. } => {
                self.report.leases += 1;
                let trail = LeaseTrail {
                    test: event.test.clone(),
                    principal,
                    line: number,
                    ..LeaseTrail::default()
                };
                self.leases.insert(lease_id, trail);
            }
            EventKind::Revoked => self.leases.entry(lease_id).or_default().revoked = true,
            EventKind::ProvenDead { .. } => self.leases.entry(lease_id).or_default().proven = true,
            EventKind::Reaped => self.reaped.push(principal),
            EventKind::TornTail {
                offset,
                bytes,
                ref kept,
            } => self.problem(
                number,
                Finding::Torn {
                    offset,
                    bytes,
                    kept: kept.clone(),
                },
            ),
            EventKind::LeakDetected => self.problem(
                number,
                Finding::Leaked {
                    test: event.test.clone(),
                    principal,
                },
            ),
            _ => {}
        }
    }

    fn finish(mut self) -> Verification {
        for (signer, (line, lines)) in std::mem::take(&mut self.unsealed) {
            self.problem(line, Finding::Unsigned { signer, lines });
        }
        // A signer's last seal signs the head after everything before it: checking it
        // checks the signer's earlier seals too.
        for (signer, seal) in std::mem::take(&mut self.seals) {
            let signed = match (unhex(&seal.public_key), unhex(&seal.signature)) {
                (Some(public_key), Some(signature)) => {
                    signer_id(&public_key) == signer
                        && head_signed(&public_key, &signature, &seal.head)
                }
                _ => false,
            };
            if !signed {
                self.problem(seal.line, Finding::BadSignature { signer });
            }
        }
        for trail in std::mem::take(&mut self.leases).into_values() {
            let was_reaped = self.reaped.contains(&trail.principal);
            let (test, principal) = (trail.test, trail.principal);
            if !(trail.revoked || was_reaped) {
                self.problem(trail.line, Finding::NeverRevoked { test, principal });
            } else if !trail.proven && !was_reaped {
                self.problem(trail.line, Finding::NeverProven { test, principal });
            }
        }
        self.report
    }
}

/// Reads every line of `reader`, checking the chain, its keys and seals (HMAC lines
/// under `key`), and the leases.
pub fn read_from(mut reader: impl BufRead, key: Option<&HmacKey>) -> io::Result<Contents> {
    let mut checker = Checker::new(key);
    let mut events = Vec::new();
    let mut line = Vec::with_capacity(512);
    let (mut number, mut offset) = (0, 0u64);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        number += 1;
        match line.strip_suffix(b"\n") {
            Some(text) => events.extend(checker.line(number, text)),
            None => {
                checker.report.lines = number;
                checker.problem(number, Finding::Unterminated { offset });
            }
        }
        offset += read as u64;
    }
    Ok(Contents {
        events,
        verification: checker.finish(),
    })
}

/// Checks several chains that each start from the genesis hash (one per writer, as the
/// PostgreSQL sink keeps them) and follows the leases across all of them; `problems`
/// found before (gaps in a chain) come first. Lines are numbered across the chains in
/// the order given; the events come back in that order.
#[cfg(feature = "postgres-audit")]
pub(super) fn read_chains<'a>(
    chains: impl IntoIterator<Item = Vec<&'a [u8]>>,
    key: Option<&HmacKey>,
    problems: Vec<Problem>,
) -> Contents {
    let mut checker = Checker::new(key);
    checker.report.problems = problems;
    let mut events = Vec::new();
    let mut number = 0;
    for chain in chains {
        checker.prev = GENESIS.to_owned();
        for line in chain {
            number += 1;
            events.extend(checker.line(number, line));
        }
    }
    Contents {
        events,
        verification: checker.finish(),
    }
}

/// Reads the log at `path`: its events and the verification of the whole file, with the
/// HMAC key configured in the environment ([`HmacKey::from_env`]), if any. Holds a shared
/// lock meanwhile, so no append is seen half-written.
pub fn read(path: impl AsRef<Path>) -> io::Result<Contents> {
    let key = HmacKey::from_env(&crate::config::target_dir())?;
    let file = File::open(path)?;
    file.lock_shared()?;
    let contents = read_from(BufReader::new(&file), key.as_ref());
    file.unlock()?;
    contents
}

/// Checks the hash chain of the log at `path`, and that every granted lease was revoked
/// (or reaped) and proven dead. A leak detection is a problem.
pub fn verify(path: impl AsRef<Path>) -> io::Result<Verification> {
    read(path).map(|contents| contents.verification)
}
