//! The run report: what the [audit log](crate::audit) says about a run, test by test.
//!
//! [`build`] reads the log (one run, or all of it) and assembles a [`RunReport`]: per
//! test its schemes, permissions, ttl, how long each lease was held, the denials it
//! asserted, and everything that went wrong (approvals denied, failed grants and
//! revocations, leaks, privileges beyond scope), plus the result of
//! [`audit::verify`] on the whole file. [`write`](fn@write) turns it into
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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::audit::{self, Event, EventKind, ProblemKind};

/// The page's template: inline CSS and JS, with two slots filled by [`RunReport::to_html`].
const TEMPLATE: &str = include_str!("report.html");
/// Where the report's JSON goes, inside `<script type="application/json">`.
const JSON_SLOT: &str = "/*{{REPORT_JSON}}*/";
/// Where the summary line goes, as HTML text, for readers without JavaScript.
const SUMMARY_SLOT: &str = "{{SUMMARY_TEXT}}";

/// Everything the audit log says about one run (or all runs in the file).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// When this report was built, RFC 3339 UTC.
    pub generated_at: String,
    /// The audit log that was read.
    pub log: String,
    /// The run asked for, or `None` for every run in the log.
    pub run: Option<String>,
    /// The run ids of the events read, in order of first appearance.
    pub runs: Vec<String>,
    /// How many events were read (of the runs asked for).
    pub events: usize,
    /// The first event's time, RFC 3339.
    pub started_at: Option<String>,
    /// The last event's time, RFC 3339.
    pub ended_at: Option<String>,
    /// The first event's time, milliseconds since the Unix epoch.
    pub start_ms: Option<u64>,
    /// The last event's time, milliseconds since the Unix epoch.
    pub end_ms: Option<u64>,
    /// The tests, in order of their first event.
    pub tests: Vec<TestReport>,
    /// Principals the reaper removed (left behind by crashed runs; tied to no test).
    pub reaps: Vec<Reap>,
    /// Incomplete appends (left by crashes) that a writer of these runs set aside.
    pub tears: Vec<Tear>,
    /// The Ed25519 public keys that sealed these runs' appends, one per writer: keep
    /// them (this report, the CI log) to tell later whether the log was re-signed.
    pub signing_keys: Vec<SigningKey>,
    /// What [`audit::verify`] found in the whole file.
    pub chain: ChainReport,
    /// Where `report.html` was written, once known; [`RunReport::summary_line`] points
    /// at it. [`build`] leaves it `None`: set it after [`write`](fn@write).
    #[serde(skip)]
    pub html: Option<PathBuf>,
}

/// What one test did with its credentials.
#[derive(Clone, Debug, Serialize)]
pub struct TestReport {
    /// The test's name (as the broker recorded it, usually its Rust path).
    pub name: String,
    /// The run it belongs to.
    pub run: String,
    /// Its schemes, in the order requested.
    pub schemes: Vec<String>,
    /// Every permission it asked for, in the order requested.
    pub permissions: Vec<String>,
    /// The ttl it asked for (from the `requested` event, e.g. `30s`); several values are
    /// joined with `, ` when its leases differ.
    pub ttl: Option<String>,
    /// Why it needs its permissions, when the test said (`#[jit_test(reason = "...")]`).
    pub reason: Option<String>,
    /// Its leases, in the order granted.
    pub leases: Vec<LeaseReport>,
    /// How many denials it asserted (`denial_asserted` events).
    pub denials_asserted: usize,
    /// The denials it asserted.
    pub assertions: Vec<Assertion>,
    /// Requests an approver refused.
    pub approvals_denied: Vec<Failure>,
    /// Requests the provider failed to grant.
    pub grant_failures: Vec<Failure>,
    /// Principals found holding privileges beyond their scope.
    pub beyond_scope: Vec<BeyondScope>,
    /// Short labels of what is notable: `leak`, `revoke failed`, `unrevoked`,
    /// `unproven`, `approval denied`, `grant failed`, `beyond scope`, `expired`,
    /// `reaped`. Empty when all is well.
    pub flags: Vec<String>,
    /// The worst of it.
    pub health: Health,
}

/// One lease: a principal granted to a test.
#[derive(Clone, Debug, Serialize)]
pub struct LeaseReport {
    /// The lease id.
    pub id: String,
    /// The provider's scheme.
    pub scheme: String,
    /// The principal's name.
    pub principal: String,
    /// The permissions granted.
    pub permissions: Vec<String>,
    /// The ttl asked for, e.g. `30s`.
    pub ttl: Option<String>,
    /// When it was requested, RFC 3339.
    pub requested_at: Option<String>,
    /// When it was granted, RFC 3339.
    pub granted_at: Option<String>,
    /// When it was granted, milliseconds since the Unix epoch.
    pub granted_ms: Option<u64>,
    /// The principal's expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// When the watchdog found its ttl reached while the test still ran, RFC 3339.
    pub expired_at: Option<String>,
    /// The same, milliseconds since the Unix epoch.
    pub expired_ms: Option<u64>,
    /// When it was revoked, RFC 3339.
    pub revoked_at: Option<String>,
    /// The same, milliseconds since the Unix epoch.
    pub revoked_ms: Option<u64>,
    /// How long it was held: granted to revoked, in milliseconds.
    pub held_ms: Option<u64>,
    /// Whether the old credential was tried after revocation and refused.
    pub proven_dead: bool,
    /// How the system refused it.
    pub proof: Option<String>,
    /// Whether the old credential still worked after revocation.
    pub leaked: bool,
    /// Revocations that gave up, with the provider's error.
    pub revoke_failures: Vec<String>,
    /// Whether the reaper removed its principal (in any run of the log).
    pub reaped: bool,
    /// When the reaper removed it, RFC 3339.
    pub reaped_at: Option<String>,
    /// The same, milliseconds since the Unix epoch.
    pub reaped_ms: Option<u64>,
    /// The outcome.
    pub status: LeaseStatus,
}

/// How a lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    /// Revoked and proven dead.
    Clean,
    /// Revoked by the watchdog at its ttl while the test ran, and proven dead.
    Expired,
    /// Never revoked by its test, but removed by the reaper.
    Reaped,
    /// Revoked, but never proven dead.
    Unproven,
    /// Neither revoked nor reaped.
    Unrevoked,
    /// A revocation gave up.
    RevokeFailed,
    /// The old credential still worked after revocation.
    Leaked,
}

impl LeaseStatus {
    /// Whether this outcome is a problem (see [`RunReport::problems`]).
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            LeaseStatus::Unproven
                | LeaseStatus::Unrevoked
                | LeaseStatus::RevokeFailed
                | LeaseStatus::Leaked
        )
    }
}

/// How a test fared with its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Every lease revoked and proven dead, nothing refused.
    Ok,
    /// Nothing wrong, but worth a look: a lease expired during the test or was reaped.
    Notice,
    /// At least one problem.
    Problem,
}

/// A denial a test asserted.
#[derive(Clone, Debug, Serialize)]
pub struct Assertion {
    /// When, RFC 3339.
    pub ts: String,
    /// When, milliseconds since the Unix epoch.
    pub ms: Option<u64>,
    /// The scheme.
    pub scheme: String,
    /// The asserted expression.
    pub expression: String,
}

/// A request that was refused or failed before anything was granted.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// When, RFC 3339.
    pub ts: String,
    /// The scheme.
    pub scheme: String,
    /// The permissions asked for.
    pub permissions: Vec<String>,
    /// The approver that refused (none for a failed grant).
    pub approver: Option<String>,
    /// The approver's reason or the provider's error.
    pub reason: String,
}

/// A principal holding privileges beyond its scope.
#[derive(Clone, Debug, Serialize)]
pub struct BeyondScope {
    /// When found, RFC 3339.
    pub ts: String,
    /// The scheme.
    pub scheme: String,
    /// The principal.
    pub principal: String,
    /// The privileges beyond its scope.
    pub privileges: Vec<String>,
}

/// A principal removed by the reaper.
#[derive(Clone, Debug, Serialize)]
pub struct Reap {
    /// When, RFC 3339.
    pub ts: String,
    /// The run whose reaper removed it.
    pub run: String,
    /// The scheme.
    pub scheme: String,
    /// The principal.
    pub principal: String,
}

/// The public half of a key pair that sealed appends of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SigningKey {
    /// The run.
    pub run: String,
    /// The writing process.
    pub pid: u32,
    /// The Ed25519 public key, hex.
    pub public_key: String,
}

/// An incomplete append, left by a crash, that a later writer set aside.
#[derive(Clone, Debug, Serialize)]
pub struct Tear {
    /// When it was set aside, RFC 3339.
    pub ts: String,
    /// The run whose writer set it aside.
    pub run: String,
    /// Where the incomplete append began, in bytes from the start of the log.
    pub offset: u64,
    /// How many bytes it had.
    pub bytes: u64,
    /// The file they were copied to.
    pub kept: String,
}

/// The result of [`audit::verify`] on the log file.
#[derive(Clone, Debug, Serialize)]
pub struct ChainReport {
    /// Lines in the file.
    pub lines: usize,
    /// Leases granted in the file (all runs).
    pub leases: usize,
    /// Every problem `verify` found (all runs).
    pub problems: Vec<audit::Problem>,
    /// Whether the hash chain itself is intact: no line edited, removed or unreadable.
    pub intact: bool,
}

/// One problem, as listed in the report.
#[derive(Clone, Debug, Serialize)]
struct Problem {
    kind: ProblemKind,
    /// The test's index in `tests`, if the problem belongs to one.
    test: Option<usize>,
    message: String,
}

/// Where reports go by default: `<target>/jit-test/` (see
/// [`config::target_dir`](crate::config::target_dir)).
pub fn default_dir() -> PathBuf {
    crate::config::target_dir().join("jit-test")
}

fn millis(ts: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339(ts).ok()?;
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

/// What a `requested` event said, kept until the lease is granted or refused.
struct Requested {
    ts: String,
    permissions: Vec<String>,
    ttl: Option<String>,
}

#[derive(Default)]
struct Builder {
    tests: Vec<TestReport>,
    test_index: HashMap<(String, String), usize>,
    /// (run, lease id) → (test index, lease index).
    lease_index: HashMap<(String, String), (usize, usize)>,
    requested: HashMap<(String, String), Requested>,
    signing_keys: Vec<SigningKey>,
}

impl Builder {
    fn test(&mut self, event: &Event) -> &mut TestReport {
        let key = (event.run.clone(), event.test.clone());
        let index = *self.test_index.entry(key).or_insert_with(|| {
            self.tests.push(TestReport {
                name: event.test.clone(),
                run: event.run.clone(),
                schemes: Vec::new(),
                permissions: Vec::new(),
                ttl: None,
                reason: None,
                leases: Vec::new(),
                denials_asserted: 0,
                assertions: Vec::new(),
                approvals_denied: Vec::new(),
                grant_failures: Vec::new(),
                beyond_scope: Vec::new(),
                flags: Vec::new(),
                health: Health::Ok,
            });
            self.tests.len() - 1
        });
        &mut self.tests[index]
    }

    fn lease(&mut self, event: &Event) -> &mut LeaseReport {
        let id = event.lease.clone().unwrap_or_default();
        let key = (event.run.clone(), id.clone());
        let (t, l) = match self.lease_index.get(&key) {
            Some(&found) => found,
            None => {
                let requested = self.requested.get(&key);
                let lease = LeaseReport {
                    id,
                    scheme: event.scheme.clone(),
                    principal: event.principal.clone().unwrap_or_default(),
                    permissions: requested.map(|r| r.permissions.clone()).unwrap_or_default(),
                    ttl: requested.and_then(|r| r.ttl.clone()),
                    requested_at: requested.map(|r| r.ts.clone()),
                    granted_at: None,
                    granted_ms: None,
                    expires_at: None,
                    expired_at: None,
                    expired_ms: None,
                    revoked_at: None,
                    revoked_ms: None,
                    held_ms: None,
                    proven_dead: false,
                    proof: None,
                    leaked: false,
                    revoke_failures: Vec::new(),
                    reaped: false,
                    reaped_at: None,
                    reaped_ms: None,
                    status: LeaseStatus::Clean,
                };
                let leases = &mut self.test(event).leases;
                leases.push(lease);
                let l = leases.len() - 1;
                let t = self.test_index[&(event.run.clone(), event.test.clone())];
                self.lease_index.insert(key, (t, l));
                (t, l)
            }
        };
        let lease = &mut self.tests[t].leases[l];
        if lease.principal.is_empty() {
            lease.principal = event.principal.clone().unwrap_or_default();
        }
        lease
    }

    fn failure(&self, event: &Event, approver: Option<&str>, reason: &str) -> Failure {
        let key = (event.run.clone(), event.lease.clone().unwrap_or_default());
        Failure {
            ts: event.ts.clone(),
            scheme: event.scheme.clone(),
            permissions: self
                .requested
                .get(&key)
                .map(|r| r.permissions.clone())
                .unwrap_or_default(),
            approver: approver.map(str::to_owned),
            reason: reason.to_owned(),
        }
    }

    fn add(&mut self, event: &Event, reaps: &mut Vec<Reap>, tears: &mut Vec<Tear>) {
        if let EventKind::Sealed { public_key, .. } = &event.kind {
            let key = SigningKey {
                run: event.run.clone(),
                pid: event.pid,
                public_key: public_key.clone(),
            };
            if !self.signing_keys.contains(&key) {
                self.signing_keys.push(key);
            }
            return;
        }
        match &event.kind {
            EventKind::Requested {
                permissions,
                ttl_ms,
                reason,
            } => {
                let ttl = humantime::format_duration(Duration::from_millis(*ttl_ms)).to_string();
                let ttl = Some(ttl);
                let test = self.test(event);
                if test.reason.is_none() {
                    test.reason.clone_from(reason);
                }
                push_unique(&mut test.schemes, &event.scheme);
                for p in permissions {
                    push_unique(&mut test.permissions, p);
                }
                if let Some(ttl) = &ttl {
                    match &mut test.ttl {
                        None => test.ttl = Some(ttl.clone()),
                        Some(known) if !known.split(", ").any(|k| k == ttl) => {
                            known.push_str(", ");
                            known.push_str(ttl);
                        }
                        Some(_) => {}
                    }
                }
                let key = (event.run.clone(), event.lease.clone().unwrap_or_default());
                self.requested.insert(
                    key,
                    Requested {
                        ts: event.ts.clone(),
                        permissions: permissions.clone(),
                        ttl,
                    },
                );
            }
            EventKind::Approved { .. } => {}
            EventKind::Denied { approver, reason } => {
                let failure = self.failure(event, Some(approver), reason);
                self.test(event).approvals_denied.push(failure);
            }
            EventKind::GrantFailed { error } => {
                let failure = self.failure(event, None, error);
                self.test(event).grant_failures.push(failure);
            }
            EventKind::Granted {
                permissions,
                expires_at,
            } => {
                let scheme = event.scheme.clone();
                push_unique(&mut self.test(event).schemes, &scheme);
                let lease = self.lease(event);
                lease.granted_at = Some(event.ts.clone());
                lease.granted_ms = millis(&event.ts);
                lease.expires_at = Some(*expires_at);
                if !permissions.is_empty() {
                    lease.permissions.clone_from(permissions);
                }
            }
            EventKind::Expired => {
                let lease = self.lease(event);
                lease.expired_at.get_or_insert_with(|| event.ts.clone());
                lease.expired_ms = lease.expired_ms.or_else(|| millis(&event.ts));
            }
            EventKind::Revoked => {
                let lease = self.lease(event);
                if lease.revoked_at.is_none() {
                    lease.revoked_at = Some(event.ts.clone());
                    lease.revoked_ms = millis(&event.ts);
                }
            }
            EventKind::RevokeFailed { error } => {
                self.lease(event).revoke_failures.push(error.clone());
            }
            EventKind::ProvenDead { refusal } => {
                let lease = self.lease(event);
                lease.proven_dead = true;
                lease.proof = Some(refusal.clone());
            }
            EventKind::LeakDetected => self.lease(event).leaked = true,
            EventKind::Sealed { .. } => {}
            EventKind::TornTail {
                offset,
                bytes,
                kept,
            } => tears.push(Tear {
                ts: event.ts.clone(),
                run: event.run.clone(),
                offset: *offset,
                bytes: *bytes,
                kept: kept.clone(),
            }),
            EventKind::Reaped => reaps.push(Reap {
                ts: event.ts.clone(),
                run: event.run.clone(),
                scheme: event.scheme.clone(),
                principal: event.principal.clone().unwrap_or_default(),
            }),
            EventKind::DenialAsserted { expression } => {
                let test = self.test(event);
                test.denials_asserted += 1;
                test.assertions.push(Assertion {
                    ts: event.ts.clone(),
                    ms: millis(&event.ts),
                    scheme: event.scheme.clone(),
                    expression: expression.clone(),
                });
            }
            EventKind::BeyondScope { privileges } => {
                let found = BeyondScope {
                    ts: event.ts.clone(),
                    scheme: event.scheme.clone(),
                    principal: event.principal.clone().unwrap_or_default(),
                    privileges: privileges.clone(),
                };
                self.test(event).beyond_scope.push(found);
            }
        }
    }
}

fn finish_lease(lease: &mut LeaseReport, reaped: &HashMap<String, String>) {
    let reap = reaped
        .get(&lease.principal)
        .filter(|_| !lease.principal.is_empty());
    lease.reaped = reap.is_some();
    lease.reaped_at = reap.cloned();
    lease.reaped_ms = reap.and_then(|ts| millis(ts));
    lease.held_ms = match (lease.granted_ms, lease.revoked_ms) {
        (Some(from), Some(to)) => Some(to.saturating_sub(from)),
        _ => None,
    };
    let revoked = lease.revoked_at.is_some();
    lease.status = if lease.leaked {
        LeaseStatus::Leaked
    } else if !lease.revoke_failures.is_empty() && !revoked && !lease.reaped {
        LeaseStatus::RevokeFailed
    } else if !revoked && !lease.reaped && lease.granted_at.is_some() {
        LeaseStatus::Unrevoked
    } else if revoked && !lease.proven_dead && !lease.reaped {
        LeaseStatus::Unproven
    } else if !lease.revoke_failures.is_empty() {
        LeaseStatus::RevokeFailed
    } else if lease.reaped && !revoked {
        LeaseStatus::Reaped
    } else if lease.expired_at.is_some() {
        LeaseStatus::Expired
    } else {
        LeaseStatus::Clean
    };
}

fn finish_test(test: &mut TestReport) {
    let has = |status: LeaseStatus| test.leases.iter().any(|l| l.status == status);
    let problems = [
        ("leak", has(LeaseStatus::Leaked)),
        (
            "revoke failed",
            test.leases.iter().any(|l| !l.revoke_failures.is_empty()),
        ),
        ("unrevoked", has(LeaseStatus::Unrevoked)),
        ("unproven", has(LeaseStatus::Unproven)),
        ("approval denied", !test.approvals_denied.is_empty()),
        ("grant failed", !test.grant_failures.is_empty()),
        ("beyond scope", !test.beyond_scope.is_empty()),
    ];
    let notices = [
        (
            "expired",
            test.leases.iter().any(|l| l.expired_at.is_some()),
        ),
        ("reaped", has(LeaseStatus::Reaped)),
    ];
    let on = |list: &[(&str, bool)]| -> Vec<String> {
        list.iter()
            .filter(|(_, on)| *on)
            .map(|(label, _)| (*label).to_owned())
            .collect()
    };
    let (problems, notices) = (on(&problems), on(&notices));
    test.health = if !problems.is_empty() {
        Health::Problem
    } else if !notices.is_empty() {
        Health::Notice
    } else {
        Health::Ok
    };
    test.flags = problems.into_iter().chain(notices).collect();
}

/// Reads the audit log at `log` and assembles the report of run `run_id`, or of every run
/// in the file when `None`. The hash chain is verified over the whole file.
///
/// Lines that cannot be read as events are skipped here and reported by the chain
/// verification. Fails only when the file cannot be read.
pub fn build(log: &Path, run_id: Option<&str>) -> io::Result<RunReport> {
    let audit::Contents {
        events,
        verification,
    } = audit::read(log).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the audit log {}: {e}", log.display()),
        )
    })?;

    // A lease of this run may be reaped by a later run: look at the whole file.
    let mut reaped: HashMap<String, String> = HashMap::new();
    for event in events.iter().filter(|e| e.kind == EventKind::Reaped) {
        if let Some(principal) = &event.principal {
            reaped
                .entry(principal.clone())
                .or_insert_with(|| event.ts.clone());
        }
    }

    let mut builder = Builder::default();
    let mut reaps = Vec::new();
    let mut tears = Vec::new();
    let mut runs: Vec<String> = Vec::new();
    // The earliest and latest event: (milliseconds, its timestamp).
    let mut first: Option<(u64, &str)> = None;
    let mut last: Option<(u64, &str)> = None;
    let mut selected = 0;
    for event in events
        .iter()
        .filter(|e| run_id.is_none_or(|run| e.run == run))
    {
        selected += 1;
        push_unique(&mut runs, &event.run);
        if let Some(ms) = millis(&event.ts) {
            if first.is_none_or(|(f, _)| ms < f) {
                first = Some((ms, &event.ts));
            }
            if last.is_none_or(|(l, _)| ms > l) {
                last = Some((ms, &event.ts));
            }
        }
        builder.add(event, &mut reaps, &mut tears);
    }
    let mut tests = builder.tests;
    for test in &mut tests {
        for lease in &mut test.leases {
            finish_lease(lease, &reaped);
        }
        finish_test(test);
    }

    let intact = verification.chain_intact();
    Ok(RunReport {
        generated_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        log: log.display().to_string(),
        run: run_id.map(str::to_owned),
        runs,
        events: selected,
        started_at: first.map(|(_, ts)| ts.to_owned()),
        ended_at: last.map(|(_, ts)| ts.to_owned()),
        start_ms: first.map(|(ms, _)| ms),
        end_ms: last.map(|(ms, _)| ms),
        tests,
        reaps,
        tears,
        signing_keys: builder.signing_keys,
        chain: ChainReport {
            lines: verification.lines,
            leases: verification.leases,
            problems: verification.problems,
            intact,
        },
        html: None,
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration in milliseconds for people: `87 ms`, `1.25 s`, `12.3 s`, `2 min 05 s`.
pub fn format_millis(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 => format!("{:.2} s", ms as f64 / 1000.0),
        10_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

impl LeaseReport {
    /// How long it was held, for people: `628 ms`, or why that is unknown (`reaped`,
    /// `never revoked`, `not granted`).
    pub fn held_text(&self) -> String {
        match self.held_ms {
            Some(ms) => format_millis(ms),
            None if self.granted_at.is_none() => "not granted".to_owned(),
            None if self.reaped => "reaped".to_owned(),
            None => "never revoked".to_owned(),
        }
    }
}

impl RunReport {
    /// All leases of all tests.
    pub fn leases(&self) -> impl Iterator<Item = &LeaseReport> {
        self.tests.iter().flat_map(|t| t.leases.iter())
    }

    /// How many leases were granted.
    pub fn leases_granted(&self) -> usize {
        self.leases().filter(|l| l.granted_at.is_some()).count()
    }

    /// How many denials the tests asserted, in all.
    pub fn denials_asserted(&self) -> usize {
        self.tests.iter().map(|t| t.denials_asserted).sum()
    }

    fn problem_list(&self) -> Vec<Problem> {
        let many_runs = self.runs.len() > 1;
        let mut out = Vec::new();
        for (index, test) in self.tests.iter().enumerate() {
            let name = if test.name.is_empty() {
                "(unnamed)"
            } else {
                &test.name
            };
            let of = if many_runs {
                format!("test {name} (run {})", test.run)
            } else {
                format!("test {name}")
            };
            let mut push = |kind, message: String| {
                out.push(Problem {
                    kind,
                    test: Some(index),
                    message,
                })
            };
            for lease in &test.leases {
                let who = format!("{} principal {}", lease.scheme, lease.principal);
                if lease.leaked {
                    push(
                        ProblemKind::Leak,
                        format!("leak: {who} of {of} still worked after revocation"),
                    );
                }
                for failure in &lease.revoke_failures {
                    let after = if lease.revoked_at.is_some() {
                        "; revoked later"
                    } else if lease.reaped {
                        "; reaped later"
                    } else {
                        "; never revoked or reaped"
                    };
                    push(
                        ProblemKind::RevokeFailed,
                        format!("revoke failed: {who} of {of}: {failure}{after}"),
                    );
                }
                match lease.status {
                    LeaseStatus::Unrevoked => push(
                        ProblemKind::Unrevoked,
                        format!("unrevoked: {who} of {of} was never revoked or reaped"),
                    ),
                    LeaseStatus::Unproven => push(
                        ProblemKind::Unproven,
                        format!("unproven: {who} of {of} was revoked but never proven dead"),
                    ),
                    _ => {}
                }
            }
            for denied in &test.approvals_denied {
                push(
                    ProblemKind::ApprovalDenied,
                    format!(
                        "approval denied: {of} asked for {} ({}): by {}: {}",
                        denied.permissions.join(", "),
                        denied.scheme,
                        denied.approver.as_deref().unwrap_or("an approver"),
                        denied.reason
                    ),
                );
            }
            for failed in &test.grant_failures {
                push(
                    ProblemKind::GrantFailed,
                    format!(
                        "grant failed: {of}, {} ({}): {}",
                        failed.permissions.join(", "),
                        failed.scheme,
                        failed.reason
                    ),
                );
            }
            for beyond in &test.beyond_scope {
                push(
                    ProblemKind::BeyondScope,
                    format!(
                        "beyond scope: {} principal {} of {of} holds privileges beyond its scope: {}",
                        beyond.scheme,
                        beyond.principal,
                        beyond.privileges.join(", ")
                    ),
                );
            }
        }
        for tear in &self.tears {
            out.push(Problem {
                kind: ProblemKind::Torn,
                test: None,
                message: format!(
                    "torn audit log: an append cut short by a crash ({} bytes at byte {}) \
                     was set aside in {}",
                    tear.bytes, tear.offset, tear.kept
                ),
            });
        }
        for problem in &self.chain.problems {
            if problem.finding.kind() == ProblemKind::Chain {
                out.push(Problem {
                    kind: ProblemKind::Chain,
                    test: None,
                    message: format!("audit chain: {problem}"),
                });
            }
        }
        // Worst first (stable: within a kind, in the order of the log).
        out.sort_by_key(|p| p.kind);
        out
    }

    /// Everything wrong, one line each, worst first: leaks, a damaged audit chain, failed
    /// revocations, leases never revoked or never proven dead, privileges beyond scope,
    /// failed grants and refused approvals. Empty when all is well. An expiry during a test or a reaped
    /// leftover is not a problem by itself.
    pub fn problems(&self) -> Vec<String> {
        self.problem_list().into_iter().map(|p| p.message).collect()
    }

    /// One line to print after a run, e.g. `jit-test: 12 tests, 14 leases granted,
    /// revoked and proven dead; audit chain verified (70 lines) → target/jit-test/report.html`.
    /// With problems it counts them and names the first. Points at [`RunReport::html`]
    /// when set (relative to the working directory when below it).
    pub fn summary_line(&self) -> String {
        let tests = plural(self.tests.len(), "test", "tests");
        let problems = self.problems();
        let mut line = if problems.is_empty() {
            let clean = self
                .leases()
                .filter(|l| matches!(l.status, LeaseStatus::Clean | LeaseStatus::Expired))
                .count();
            let mut line = format!(
                "jit-test: {tests}, {} granted, revoked and proven dead",
                plural(clean, "lease", "leases")
            );
            let reaped = self
                .leases()
                .filter(|l| l.status == LeaseStatus::Reaped)
                .count();
            if reaped > 0 {
                let _ = write!(line, ", {reaped} reaped after a crash");
            }
            let expired = self.leases().filter(|l| l.expired_at.is_some()).count();
            if expired > 0 {
                let _ = write!(
                    line,
                    " ({} during {})",
                    plural(expired, "expired", "expired"),
                    if expired == 1 {
                        "its test"
                    } else {
                        "their tests"
                    }
                );
            }
            let _ = write!(
                line,
                "; audit chain verified ({})",
                plural(self.chain.lines, "line", "lines")
            );
            line
        } else {
            let mut line = format!(
                "jit-test: {tests}, {} granted; {}: {}",
                plural(self.leases_granted(), "lease", "leases"),
                plural(problems.len(), "PROBLEM", "PROBLEMS"),
                problems[0]
            );
            if problems.len() > 1 {
                let _ = write!(line, " (and {} more)", problems.len() - 1);
            }
            line
        };
        if let Some(html) = &self.html {
            let shown = std::env::current_dir()
                .ok()
                .and_then(|cwd| html.strip_prefix(cwd).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| html.clone());
            let _ = write!(line, " → {}", shown.display());
        }
        line
    }

    /// The report as Markdown: a summary, the problems, a table of tests and the reaps.
    /// Everything taken from the log is escaped.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# jit-test run report\n");
        let _ = writeln!(md, "{}\n", md_text(&self.summary_line()));
        let _ = writeln!(md, "| | |\n|---|---|");
        let runs = if self.runs.is_empty() {
            "(none)".to_owned()
        } else {
            self.runs
                .iter()
                .map(|r| md_code(r, true))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(md, "| Run | {runs} |");
        let _ = writeln!(md, "| Audit log | {} |", md_code(&self.log, true));
        if let (Some(from), Some(to)) = (&self.started_at, &self.ended_at) {
            let span = match (self.start_ms, self.end_ms) {
                (Some(a), Some(b)) => format!(" ({})", format_millis(b.saturating_sub(a))),
                _ => String::new(),
            };
            let _ = writeln!(md, "| Time | {} → {}{span} |", md_text(from), md_text(to));
        }
        let _ = writeln!(md, "| Tests | {} |", self.tests.len());
        let clean = self.leases().filter(|l| !l.status.is_problem()).count();
        let _ = writeln!(
            md,
            "| Leases | {} granted, {clean} ended cleanly |",
            self.leases_granted()
        );
        let _ = writeln!(md, "| Denials asserted | {} |", self.denials_asserted());
        let chain = if self.chain.intact {
            format!("verified, {}", plural(self.chain.lines, "line", "lines"))
        } else {
            format!(
                "**damaged** ({} read)",
                plural(self.chain.lines, "line", "lines")
            )
        };
        let _ = writeln!(md, "| Audit chain | {chain} |\n");

        let _ = writeln!(md, "## Problems\n");
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(md, "None.\n");
        }
        for problem in &problems {
            let _ = writeln!(md, "- {}", md_text(problem));
        }
        if !problems.is_empty() {
            md.push('\n');
        }

        let _ = writeln!(md, "## Tests\n");
        if self.tests.is_empty() {
            let _ = writeln!(md, "No tests in this log.\n");
        } else {
            let _ = writeln!(
                md,
                "| Test | Scheme | Permissions | TTL | Held | Denials asserted | Status |"
            );
            let _ = writeln!(md, "|---|---|---|---:|---:|---:|---|");
            for test in &self.tests {
                let held: Vec<String> = test.leases.iter().map(LeaseReport::held_text).collect();
                let name = if self.runs.len() > 1 {
                    format!(
                        "{} (run {})",
                        md_code(&test.name, true),
                        md_code(&test.run, true)
                    )
                } else {
                    md_code(&test.name, true)
                };
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    md_text(&test.schemes.join(", ")),
                    test.permissions
                        .iter()
                        .map(|p| md_code(p, true))
                        .collect::<Vec<_>>()
                        .join(", "),
                    md_text(test.ttl.as_deref().unwrap_or("—")),
                    if held.is_empty() {
                        "—".to_owned()
                    } else {
                        held.join(", ")
                    },
                    test.denials_asserted,
                    if test.flags.is_empty() {
                        "ok".to_owned()
                    } else {
                        md_text(&test.flags.join(", "))
                    }
                );
            }
            md.push('\n');
        }

        if !self.reaps.is_empty() {
            let _ = writeln!(md, "## Reaped leftovers\n");
            for reap in &self.reaps {
                let _ = writeln!(
                    md,
                    "- {} ({}) at {}",
                    md_code(&reap.principal, false),
                    md_text(&reap.scheme),
                    md_text(&reap.ts)
                );
            }
            md.push('\n');
        }
        if !self.signing_keys.is_empty() {
            let _ = writeln!(md, "## Signing keys\n");
            let _ = writeln!(
                md,
                "Each append of this run was sealed by one of these Ed25519 keys. Keep this \
                 list: `jit-test verify` later checks the seals, but only this list tells \
                 whether they were made by these keys.\n"
            );
            for key in &self.signing_keys {
                let _ = writeln!(
                    md,
                    "- {} (run {}, process {})",
                    md_code(&key.public_key, false),
                    md_code(&key.run, false),
                    key.pid
                );
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "_Generated {} from {}._",
            md_text(&self.generated_at),
            md_code(&self.log, false)
        );
        md
    }

    /// The report as one self-contained HTML page: inline CSS and JS, no external
    /// resources, the report's JSON embedded in `<script type="application/json"
    /// id="jit-report">` and rendered in the browser.
    pub fn to_html(&self) -> String {
        let json = serde_json::to_string(&self.view()).expect(SERIALIZES);
        fill(
            TEMPLATE,
            &[
                (JSON_SLOT, &script_safe_json(&json)),
                (SUMMARY_SLOT, &html_escape(&self.summary_line())),
            ],
        )
    }

    /// The report as pretty-printed JSON: every field of [`RunReport`], then `summary`
    /// ([`RunReport::summary_line`]) and `problems` (each with its `kind`, its `message`
    /// as in [`RunReport::problems`], and the index of its `test` in `tests`, if any).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.view()).expect(SERIALIZES)
    }

    fn view(&self) -> View<'_> {
        View {
            report: self,
            summary: self.summary_line(),
            problems: self.problem_list(),
        }
    }
}

/// Why serializing a report cannot fail: it holds only strings, numbers, options, lists
/// and unit enums, and no maps.
const SERIALIZES: &str = "a report is plain strings, numbers and lists";

/// What `report.json` and the page's embedded JSON hold.
#[derive(Serialize)]
struct View<'a> {
    #[serde(flatten)]
    report: &'a RunReport,
    summary: String,
    problems: Vec<Problem>,
}

/// Writes `report.json`, `report.md` and `report.html` into `dir` (created if missing).
pub fn write(report: &RunReport, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), report.to_json() + "\n")?;
    std::fs::write(dir.join("report.md"), report.to_markdown())?;
    std::fs::write(dir.join("report.html"), report.to_html())?;
    Ok(())
}

/// Fills each slot once, where it stands in `template`; values are never searched for
/// slots, so data cannot inject into another slot.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut found: Vec<(usize, &str, &str)> = slots
        .iter()
        .filter_map(|&(slot, value)| template.find(slot).map(|at| (at, slot, value)))
        .collect();
    found.sort_by_key(|&(at, _, _)| at);
    let mut out =
        String::with_capacity(template.len() + found.iter().map(|f| f.2.len()).sum::<usize>());
    let mut from = 0;
    for (at, slot, value) in found {
        out.push_str(&template[from..at]);
        out.push_str(value);
        from = at + slot.len();
    }
    out.push_str(&template[from..]);
    out
}

/// JSON that can stand inside a `<script>` element: `<`, `>` and `&` (which occur only
/// inside strings) become `\u` escapes, so no `</script>` or `<!--` can appear; so do
/// U+2028 and U+2029.
fn script_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML element content or a quoted attribute.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Plain Markdown text: every character Markdown or inline HTML could act on is
/// backslash-escaped (but `_` inside a word, which cannot start emphasis, is left as it is,
/// so `jit_7f3a` stays readable), line breaks become spaces.
fn md_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let intraword = c == '_'
            && i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        match c {
            '_' if intraword => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '$' | '#' | '!'
            | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span holding `text` literally: a backtick fence longer than any run of
/// backticks in it, line breaks as spaces, and in a table cell `|` as `\|` (which GFM
/// turns back into `|`).
fn md_code(text: &str, in_table: bool) -> String {
    let mut body: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if in_table {
        body = body.replace('|', "\\|");
    }
    if body.is_empty() {
        return "(none)".to_owned();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cannot_close_its_script_element() {
        let json = script_safe_json(r#"{"name":"</script><!--x-->&"}"#);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["name"], "</script><!--x-->&");
    }

    #[test]
    fn slots_are_filled_once_and_values_are_not_rescanned() {
        let out = fill("a[X]b[Y]c", &[("[Y]", "y[X]"), ("[X]", "x[Y]")]);
        assert_eq!(out, "ax[Y]by[X]c");
    }

    #[test]
    fn the_template_has_both_slots_and_loads_nothing() {
        assert_eq!(TEMPLATE.matches(JSON_SLOT).count(), 1);
        assert_eq!(TEMPLATE.matches(SUMMARY_SLOT).count(), 1);
        for external in ["http:", "https:", "//cdn", "src=", "@import", "url("] {
            assert!(!TEMPLATE.contains(external), "template contains {external}");
        }
    }

    #[test]
    fn markdown_escapes_text_and_code() {
        assert_eq!(md_text("a_b <i>|x|"), "a_b \\<i\\>\\|x\\|");
        assert_eq!(md_text("_a_ b_ __c"), "\\_a\\_ b\\_ \\_\\_c");
        assert_eq!(md_code("a::b", true), "`a::b`");
        assert_eq!(md_code("x`y|z", true), "``x`y\\|z``");
        assert_eq!(md_code("`x", false), "`` `x ``");
        assert_eq!(md_text("two\nlines"), "two lines");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_millis(87), "87 ms");
        assert_eq!(format_millis(1250), "1.25 s");
        assert_eq!(format_millis(12_340), "12.3 s");
        assert_eq!(format_millis(125_000), "2 min 05 s");
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
