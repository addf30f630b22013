//! One audit event: who (run, process, test, scheme, lease, principal), when, and what
//! happened, each kind with fields of its own.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use jit_test_scope::Permission;

use crate::minimize::Verdict;
use crate::provider::unix_seconds;

/// The line format this crate writes (`"v":1`). Lines without `v` were written before
/// the format had a version; both are read.
pub const FORMAT: u32 = 1;

/// One audit event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// The run id.
    pub run: String,
    /// The process that wrote it.
    pub pid: u32,
    /// The machine it ran on (empty in lines written before events named it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The shard of the run it belongs to, `k/N`, when the run is split over machines
    /// ([`config::shard`](crate::config::shard)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
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
    /// What happened, with its fields.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized as `"event":"<snake_case name>"` beside its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A test asked for permissions.
    Requested {
        /// The permissions asked for.
        permissions: Vec<String>,
        /// The ttl asked for, in milliseconds.
        ttl_ms: u64,
        /// Why the test needs them, when it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An approver allowed the request.
    Approved {
        /// The approver that decided.
        approver: String,
    },
    /// An approver refused the request.
    Denied {
        /// The approver that refused.
        approver: String,
        /// Its reason.
        reason: String,
    },
    /// A principal was created.
    Granted {
        /// The permissions granted.
        permissions: Vec<String>,
        /// The principal's expiry, seconds since the Unix epoch.
        expires_at: u64,
    },
    /// Creating the principal failed.
    GrantFailed {
        /// The provider's error.
        error: String,
    },
    /// The watchdog revoked a lease at its ttl while the test still ran.
    Expired,
    /// The principal was removed.
    Revoked,
    /// Removing the principal failed.
    RevokeFailed {
        /// The provider's error.
        error: String,
    },
    /// The old credential was tried and refused.
    ProvenDead {
        /// How the system refused it.
        refusal: String,
    },
    /// The old credential still worked after revocation.
    LeakDetected,
    /// The reaper removed a principal left by a crashed run.
    Reaped,
    /// A test asserted that an operation was denied.
    DenialAsserted {
        /// The asserted expression.
        expression: String,
    },
    /// A principal holds privileges beyond its scope.
    BeyondScope {
        /// The privileges beyond its scope.
        privileges: Vec<String>,
    },
    /// The minimizer ran the passing test once per permission with it removed
    /// (`JIT_TEST_MINIMIZE`): recorded so that a run split over machines has every
    /// test's verdict in one trail.
    Minimized {
        /// The permissions the test failed without.
        needed: Vec<String>,
        /// The permissions the test passed without.
        unneeded: Vec<String>,
        /// How a second run with the full scope failed, when it did (nothing else was
        /// tried).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_rerunnable: Option<String>,
    },
    /// The writer named by the line's `key` signed the chain's head, the line before:
    /// every line it wrote so far is covered.
    Sealed {
        /// Its Ed25519 public key, hex.
        public_key: String,
        /// Its signature of the head, hex.
        signature: String,
    },
    /// The log ended in an incomplete append (a crash mid-write); the next writer copied
    /// those bytes beside the log, cut them off and wrote this line before its own.
    TornTail {
        /// Where the incomplete append began, in bytes from the start of the log.
        offset: u64,
        /// How many bytes it had.
        bytes: u64,
        /// The file they were copied to.
        kept: String,
    },
    /// `jit-test prune` removed the lines before this one, the first of the log; the
    /// chain goes on from this line's `prev`, the hash of the last line removed.
    Pruned {
        /// How many lines were removed.
        lines: u64,
        /// How many runs they held.
        runs: u64,
    },
}

fn listed(permissions: &[Permission]) -> Vec<String> {
    permissions.iter().map(ToString::to_string).collect()
}

impl EventKind {
    /// [`EventKind::Requested`] for `permissions`, `ttl` and an optional reason.
    pub fn requested(permissions: &[Permission], ttl: Duration, reason: Option<&str>) -> Self {
        EventKind::Requested {
            permissions: listed(permissions),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            reason: reason.map(str::to_owned),
        }
    }

    /// [`EventKind::Minimized`] for the minimizer's `verdict`.
    pub fn minimized(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::NotRerunnable { error } => EventKind::Minimized {
                needed: Vec::new(),
                unneeded: Vec::new(),
                not_rerunnable: Some(error.clone()),
            },
            Verdict::Findings(findings) => {
                let with = |needed: bool| {
                    findings
                        .iter()
                        .filter(|f| f.needed == needed)
                        .map(|f| f.permission.clone())
                        .collect()
                };
                EventKind::Minimized {
                    needed: with(true),
                    unneeded: with(false),
                    not_rerunnable: None,
                }
            }
        }
    }

    /// [`EventKind::Granted`] of `permissions`, expiring at `expires_at`.
    pub fn granted(permissions: &[Permission], expires_at: SystemTime) -> Self {
        EventKind::Granted {
            permissions: listed(permissions),
            expires_at: unix_seconds(expires_at),
        }
    }
}

impl Event {
    /// A new event of `kind` for `scheme`, stamped now, in this process, host, shard and
    /// run.
    pub fn new(run: &str, scheme: &str, kind: EventKind) -> Event {
        Event {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            run: run.to_owned(),
            pid: std::process::id(),
            host: crate::config::hostname(),
            shard: crate::config::shard(),
            test: String::new(),
            scheme: scheme.to_owned(),
            lease: None,
            principal: None,
            kind,
        }
    }

    /// The same event, for `test`.
    pub fn with_test(mut self, test: &str) -> Event {
        test.clone_into(&mut self.test);
        self
    }

    /// The same event, about lease `id`.
    pub fn with_lease(mut self, id: &str) -> Event {
        self.lease = Some(id.to_owned());
        self
    }

    /// The same event, about principal `name`.
    pub fn with_principal(mut self, name: &str) -> Event {
        self.principal = Some(name.to_owned());
        self
    }

    /// The same event, stamped at `at` instead of now.
    pub fn at(mut self, at: SystemTime) -> Event {
        self.ts = humantime::format_rfc3339_millis(at).to_string();
        self
    }
}
