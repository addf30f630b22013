//! Building the report from the audit log: one pass over its events, then each lease's
//! and test's outcome.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::{self, Event, EventKind, ProblemKind};

use super::hosts::Hosts;
use super::model::{
    Assertion, BeyondScope, ChainReport, Failure, Flag, Health, LeaseReport, LeaseStatus,
    MinimizerVerdict, Notice, Reap, RunReport, SigningKey, Tear, TestReport,
};

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
                host: event.host.clone(),
                shard: event.shard.clone(),
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
                minimizer: None,
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
            EventKind::Sealed { .. } | EventKind::Pruned { .. } => {}
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
            EventKind::Minimized {
                needed,
                unneeded,
                not_rerunnable,
            } => {
                self.test(event).minimizer = Some(MinimizerVerdict {
                    needed: needed.clone(),
                    unneeded: unneeded.clone(),
                    not_rerunnable: not_rerunnable.clone(),
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
        (ProblemKind::Leak, has(LeaseStatus::Leaked)),
        (
            ProblemKind::RevokeFailed,
            test.leases.iter().any(|l| !l.revoke_failures.is_empty()),
        ),
        (ProblemKind::Unrevoked, has(LeaseStatus::Unrevoked)),
        (ProblemKind::Unproven, has(LeaseStatus::Unproven)),
        (ProblemKind::BeyondScope, !test.beyond_scope.is_empty()),
        (ProblemKind::GrantFailed, !test.grant_failures.is_empty()),
        (
            ProblemKind::ApprovalDenied,
            !test.approvals_denied.is_empty(),
        ),
    ];
    let notices = [
        (
            Notice::Expired,
            test.leases.iter().any(|l| l.expired_at.is_some()),
        ),
        (Notice::Reaped, has(LeaseStatus::Reaped)),
    ];
    let problems = problems
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| Flag::Problem(k));
    let notices = notices
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| Flag::Notice(n));
    test.flags = problems.chain(notices).collect();
    test.health = match test.flags.first() {
        Some(Flag::Problem(_)) => Health::Problem,
        Some(Flag::Notice(_)) => Health::Notice,
        None => Health::Ok,
    };
}

/// Reads the audit log at `log` and assembles the report of run `run_id`, or of every run
/// in the file when `None`. The hash chain is verified over the whole file; for one run,
/// from the checkpoint nearest before it ([`audit::read_run`]), which finds the same.
///
/// Lines that cannot be read as events are skipped here and reported by the chain
/// verification. Fails only when the file cannot be read.
pub fn build(log: &Path, run_id: Option<&str>) -> io::Result<RunReport> {
    let contents = match run_id {
        Some(run) => audit::read_run(log, run),
        None => audit::read(log),
    }
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the audit log {}: {e}", log.display()),
        )
    })?;
    Ok(build_from(&log.display().to_string(), contents, run_id))
}

/// Assembles the report of run `run_id` (every run for `None`) from `contents` read
/// from `log` (a file, or another source such as the PostgreSQL sink's
/// [`audit::read_table`](crate::audit::read_table)).
pub fn build_from(log: &str, contents: audit::Contents, run_id: Option<&str>) -> RunReport {
    let audit::Contents {
        events,
        verification,
    } = contents;

    // A lease of this run may be reaped by a later run: look at every line read.
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
    let mut hosts = Hosts::default();
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
        hosts.add(event);
    }
    let mut tests = builder.tests;
    for test in &mut tests {
        for lease in &mut test.leases {
            finish_lease(lease, &reaped);
        }
        finish_test(test);
    }

    let intact = verification.chain_intact();
    let hosts = hosts.finish(&tests);
    RunReport {
        generated_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        log: log.to_owned(),
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
        hosts,
        signing_keys: builder.signing_keys,
        chain: ChainReport {
            lines: verification.lines,
            leases: verification.leases,
            problems: verification.problems,
            intact,
        },
        html: None,
    }
}
