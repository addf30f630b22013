//! Reading a log back: the chain checked line by line, and every granted lease followed
//! to its revocation (or reaping) and proof.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::event::{Event, EventKind};
use super::key::{HmacKey, head_signed, signer_id, unhex};
use super::line::{GENESIS, Read, Sealed};
use super::problem::{Finding, Problem, ProblemKind};

/// What [`verify`] found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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

#[derive(Default, Clone, Serialize, Deserialize)]
struct LeaseTrail {
    test: String,
    principal: String,
    line: usize,
    revoked: bool,
    proven: bool,
}

/// A signer's last seal: its line, the head it signed, its public key and signature.
#[derive(Clone, Serialize, Deserialize)]
struct Seal {
    line: usize,
    head: String,
    public_key: String,
    signature: String,
}

/// What the [`Checker`] knows after some lines: enough to go on from there as if it had
/// read them again. A [checkpoint](super::checkpoint) keeps it.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct State {
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

impl Default for State {
    fn default() -> State {
        State {
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
}

impl State {
    /// The number of lines read so far.
    pub fn lines(&self) -> usize {
        self.report.lines
    }

    /// The hash of the last line read (the genesis hash before the first).
    pub fn head(&self) -> &str {
        &self.prev
    }

    /// What is unresolved so far, if anything: problems found, leases not yet revoked
    /// and proven dead (nor reaped), lines of a writer not yet sealed, seals that do not
    /// hold.
    pub fn unsettled(&self) -> Option<String> {
        let open = self.compacted();
        let counts = [
            (self.report.problems.len(), "problems"),
            (open.leases.len(), "leases not yet revoked and proven dead"),
            (self.unsealed.len(), "writers with unsealed lines"),
            (open.seals.len(), "seals that do not hold"),
        ];
        let unsettled: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        (!unsettled.is_empty()).then(|| unsettled.join(", "))
    }

    /// The same state without what can no longer lead to a problem: leases revoked and
    /// proven dead, or reaped, and seals whose signature holds (a signer's later seal
    /// covers everything its earlier ones did).
    pub fn compacted(&self) -> State {
        let mut state = self.clone();
        let reaped = &state.reaped;
        state
            .leases
            .retain(|_, t| !(reaped.contains(&t.principal) || t.revoked && t.proven));
        state.seals.retain(|signer, seal| !seal.holds(signer));
        state
    }
}

impl Seal {
    /// Whether it is `signer`'s valid signature of the head it names.
    fn holds(&self, signer: &str) -> bool {
        match (unhex(&self.public_key), unhex(&self.signature)) {
            (Some(public_key), Some(signature)) => {
                signer_id(&public_key) == signer && head_signed(&public_key, &signature, &self.head)
            }
            _ => false,
        }
    }
}

/// Follows the chain, its authentication and the leases, one line at a time.
pub(super) struct Checker<'k> {
    key: Option<&'k HmacKey>,
    state: State,
}

impl<'k> Checker<'k> {
    /// A checker of a log from its first line.
    pub fn new(key: Option<&'k HmacKey>) -> Checker<'k> {
        Checker::resume(key, State::default())
    }

    /// A checker that goes on from `state`.
    pub fn resume(key: Option<&'k HmacKey>, state: State) -> Checker<'k> {
        Checker { key, state }
    }

    fn problem(&mut self, line: usize, finding: Finding) {
        self.state.report.problems.push(Problem { line, finding });
    }

    /// Checks line `number` (without its newline) and returns its event, if readable.
    fn line(&mut self, number: usize, line: &[u8]) -> Option<Event> {
        self.state.report.lines = number;
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
        // A pruned log begins with a line that says so; the chain goes on from its `prev`.
        let anchor = number == 1 && matches!(read.event.kind, EventKind::Pruned { .. });
        if anchor && self.key.is_some() && read.key.is_none() {
            self.problem(number, Finding::Unauthenticated);
        }
        if read.prev != self.state.prev && !anchor {
            self.problem(number, Finding::ChainBroken);
        }
        self.state.prev = if anchor {
            read.prev.clone()
        } else {
            sealed.hash
        };
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
                    if self.state.unknown_keys.insert(key.to_owned()) {
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
            if self.state.authenticated {
                self.problem(number, Finding::Unauthenticated);
            }
            return;
        }
        self.state.authenticated = true;
        if !key.starts_with("ed25519:") {
            return;
        }
        match &read.event.kind {
            EventKind::Sealed {
                public_key,
                signature,
            } => {
                self.state.unsealed.remove(key);
                let seal = Seal {
                    line: number,
                    head: read.prev.clone(),
                    public_key: public_key.clone(),
                    signature: signature.clone(),
                };
                self.state.seals.insert(key.to_owned(), seal);
            }
            _ => {
                self.state
                    .unsealed
                    .entry(key.to_owned())
                    .or_insert((number, 0))
                    .1 += 1
            }
        }
    }

    fn follow(&mut self, number: usize, event: &Event) {
        let lease_id = event.lease.clone().unwrap_or_default();
        let principal = event.principal.clone().unwrap_or_default();
        match event.kind {
            EventKind::Granted { .. } => {
                self.state.report.leases += 1;
                let trail = LeaseTrail {
                    test: event.test.clone(),
                    principal,
                    line: number,
                    ..LeaseTrail::default()
                };
                self.state.leases.insert(lease_id, trail);
            }
            EventKind::Revoked => self.state.leases.entry(lease_id).or_default().revoked = true,
            EventKind::ProvenDead { .. } => {
                self.state.leases.entry(lease_id).or_default().proven = true
            }
            EventKind::Reaped => self.state.reaped.push(principal),
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

    /// Everything found, once every line was read.
    pub fn finish(mut self) -> Verification {
        for (signer, (line, lines)) in std::mem::take(&mut self.state.unsealed) {
            self.problem(line, Finding::Unsigned { signer, lines });
        }
        // A signer's last seal signs the head after everything before it: checking it
        // checks the signer's earlier seals too.
        for (signer, seal) in std::mem::take(&mut self.state.seals) {
            if !seal.holds(&signer) {
                self.problem(seal.line, Finding::BadSignature { signer });
            }
        }
        for trail in std::mem::take(&mut self.state.leases).into_values() {
            let was_reaped = self.state.reaped.contains(&trail.principal);
            let (test, principal) = (trail.test, trail.principal);
            if !(trail.revoked || was_reaped) {
                self.problem(trail.line, Finding::NeverRevoked { test, principal });
            } else if !trail.proven && !was_reaped {
                self.problem(trail.line, Finding::NeverProven { test, principal });
            }
        }
        self.state.report
    }
}

/// What [`scan`] read.
pub(super) struct Scan {
    /// The events of the lines it could read.
    pub events: Vec<Event>,
    /// The state before the line that begins at the offset it was asked about, if any does.
    pub before: Option<State>,
    /// Where the last complete line ends, and the state there: none when the lines end
    /// in an incomplete one.
    pub end: Option<(u64, State)>,
}

/// Reads the lines of `reader`, which begins at byte `offset` of the log, into
/// `checker`, keeping the state before the line that begins at `keep_before`.
pub(super) fn scan(
    mut reader: impl BufRead,
    checker: &mut Checker,
    mut offset: u64,
    keep_before: Option<u64>,
) -> io::Result<Scan> {
    let mut events = Vec::new();
    let mut before = None;
    let mut complete = true;
    let mut line = Vec::with_capacity(512);
    loop {
        if keep_before == Some(offset) {
            before = Some(checker.state.clone());
        }
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let number = checker.state.report.lines + 1;
        match line.strip_suffix(b"\n") {
            Some(text) => events.extend(checker.line(number, text)),
            None => {
                complete = false;
                checker.state.report.lines = number;
                checker.problem(number, Finding::Unterminated { offset });
            }
        }
        offset += read as u64;
    }
    let end = complete.then(|| (offset, checker.state.clone()));
    Ok(Scan {
        events,
        before,
        end,
    })
}

/// Reads every line of `reader`, checking the chain, its keys and seals (HMAC lines
/// under `key`), and the leases.
pub fn read_from(reader: impl BufRead, key: Option<&HmacKey>) -> io::Result<Contents> {
    let mut checker = Checker::new(key);
    let scan = scan(reader, &mut checker, 0, None)?;
    Ok(Contents {
        events: scan.events,
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
    checker.state.report.problems = problems;
    let mut events = Vec::new();
    let mut number = 0;
    for chain in chains {
        checker.state.prev = GENESIS.to_owned();
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
