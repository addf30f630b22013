//! The report's model: what the audit log says about a run, test by test and lease by
//! lease, as plain data.

use serde::Serialize;

use std::path::PathBuf;

use crate::audit::{self, ProblemKind};

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
    /// The machines the runs ran on, in order of their first event: what each did, when.
    pub hosts: Vec<HostReport>,
    /// The Ed25519 public keys that sealed these runs' appends, one per writer: keep
    /// them (this report, the CI log) to tell later whether the log was re-signed.
    pub signing_keys: Vec<SigningKey>,
    /// What [`audit::verify`] found in the whole file.
    pub chain: ChainReport,
    /// Where `report.html` was written, once known; [`RunReport::summary_line`] points
    /// at it. [`build`](super::build()) leaves it `None`: set it after [`write`](super::write()).
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
    /// The machine it ran on (empty in logs written before events named it).
    pub host: String,
    /// The shard of the run it ran in, `k/N`, when the run was split.
    pub shard: Option<String>,
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
    /// The minimizer's verdict (`JIT_TEST_MINIMIZE`), when it ran on this test.
    pub minimizer: Option<MinimizerVerdict>,
    /// What is notable, problems first (worst first), then notices. Empty when all is
    /// well.
    pub flags: Vec<Flag>,
    /// The worst of it.
    pub health: Health,
}

/// What the minimizer found for one test, wherever it ran.
#[derive(Clone, Debug, Serialize)]
pub struct MinimizerVerdict {
    /// The permissions the test failed without.
    pub needed: Vec<String>,
    /// The permissions the test passed without: candidates to remove from its scope.
    pub unneeded: Vec<String>,
    /// How a second run with the full scope failed, when it did.
    pub not_rerunnable: Option<String>,
}

/// What one machine of a run did.
#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    /// Its name (empty for events written before events named it).
    pub host: String,
    /// The shards it ran, `k/N`, in order of first appearance.
    pub shards: Vec<String>,
    /// How many tests ran there.
    pub tests: usize,
    /// How many leases were granted there.
    pub leases: usize,
    /// How many events it wrote.
    pub events: usize,
    /// Its first event, milliseconds since the Unix epoch.
    pub start_ms: Option<u64>,
    /// Its last event, milliseconds since the Unix epoch.
    pub end_ms: Option<u64>,
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

/// Something notable about a test: one of its problems, or a notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Flag {
    /// A problem of this kind.
    Problem(ProblemKind),
    /// Worth a look, but not a problem.
    Notice(Notice),
}

/// What is worth a look about a test without being a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A lease reached its ttl while the test ran.
    Expired,
    /// A lease was removed by the reaper after a crash.
    Reaped,
}

impl Flag {
    /// How people read it: `leak`, `beyond scope`, `expired`, ...
    pub fn label(self) -> &'static str {
        match self {
            Flag::Problem(kind) => kind.label(),
            Flag::Notice(Notice::Expired) => "expired",
            Flag::Notice(Notice::Reaped) => "reaped",
        }
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

impl RunReport {
    /// All leases of all tests.
    pub fn leases(&self) -> impl Iterator<Item = &LeaseReport> {
        self.tests.iter().flat_map(|t| t.leases.iter())
    }

    /// How many leases were granted.
    pub fn leases_granted(&self) -> usize {
        self.leases().filter(|l| l.granted_at.is_some()).count()
    }

    /// When the run was split into shards (`k/N`) and this report holds only some of
    /// them: the shards seen and `N`. A baseline entry of a test that did not run here
    /// may belong to a shard that is not in the report.
    pub fn missing_shards(&self) -> Option<(Vec<String>, usize)> {
        let seen: Vec<String> = self
            .hosts
            .iter()
            .flat_map(|h| h.shards.iter().cloned())
            .collect();
        let total = seen
            .iter()
            .filter_map(|s| s.split_once('/')?.1.parse::<usize>().ok())
            .max()?;
        let mut distinct = seen.clone();
        distinct.sort();
        distinct.dedup();
        (distinct.len() < total).then_some((distinct, total))
    }

    /// How many denials the tests asserted, in all.
    pub fn denials_asserted(&self) -> usize {
        self.tests.iter().map(|t| t.denials_asserted).sum()
    }
}
