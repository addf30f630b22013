//! The [`Broker`]: request → approve → record → grant → record (else revoke) → arm the
//! lease's watchdog. Nothing is granted before the request is in the audit log, and a
//! grant that cannot be recorded is revoked and proven dead at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use jit_test_scope::Permission;

use super::error::LifecycleError;
use super::lease::{Lease, LeaseInfo};
use super::registry::{first_reap, register};
use crate::approval::{AccessRequest, Approver, Baseline, Chain, Decision, MaxTtl, Mode, Policy};
use crate::audit::{AuditLog, Event, EventKind};
use crate::config::{Config, ConfigError};
use crate::provider::{GrantRequest, Granted, Provider, ProviderError, unix_seconds};

/// What a test asks the broker for, for one scheme.
#[derive(Clone, Debug)]
pub struct LeaseRequest {
    /// Full name of the test.
    pub test: String,
    /// The permissions to grant, all of one scheme.
    pub permissions: Vec<Permission>,
    /// Permissions the principal must not hold.
    pub deny: Vec<Permission>,
    /// The credential's lifetime.
    pub ttl: Duration,
    /// Why the test needs the access.
    pub reason: Option<String>,
    /// A least-privilege trial: the test's own request with permissions removed.
    pub trial: bool,
}

impl LeaseRequest {
    /// A request with no deny list and no reason.
    pub fn new(
        test: impl Into<String>,
        permissions: Vec<Permission>,
        ttl: Duration,
    ) -> LeaseRequest {
        LeaseRequest {
            test: test.into(),
            permissions,
            deny: Vec::new(),
            ttl,
            reason: None,
            trial: false,
        }
    }
}

/// Runs the credential lifecycle for any provider.
pub struct Broker {
    config: Config,
    approvers: Chain,
    audit: Arc<AuditLog>,
}

fn next_lease_id() -> String {
    static NONCE: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = NONCE.get_or_init(|| crate::random::hex(4));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nonce}_{}_{n}", std::process::id())
}

/// A request between its checks and its grant.
struct Pending {
    grant: GrantRequest,
    reason: Option<String>,
    trial: bool,
}

// A `LifecycleError` is large, and rare: it ends a test.
#[allow(clippy::result_large_err)]
impl Broker {
    /// A broker with the default approver ([`MaxTtl`] at `config.max_ttl`) and the audit
    /// log at `config.audit_log`.
    pub fn new(config: Config) -> Broker {
        Broker {
            approvers: Chain(vec![Arc::new(MaxTtl(config.max_ttl))]),
            audit: Arc::new(AuditLog::new(config.audit_log.clone())),
            config,
        }
    }

    /// Replaces the approval chain.
    pub fn with_approvers(mut self, approvers: Vec<Arc<dyn Approver>>) -> Broker {
        self.approvers = Chain(approvers);
        self
    }

    /// A broker whose approval chain is `[policy] approvers` of the configuration file
    /// (default: baseline, policy, max-ttl), with the baseline in the mode the
    /// settings ask for ([`Mode::from_config`]).
    pub fn from_config(config: Config) -> Result<Broker, ConfigError> {
        let policy = Policy::load(&config)?;
        let approvers = policy
            .approvers
            .iter()
            .map(|name| -> Arc<dyn Approver> {
                match name.as_str() {
                    "baseline" => {
                        Arc::new(Baseline::new(&policy.baseline, Mode::from_config(&config)))
                    }
                    "policy" => Arc::new(policy.clone()),
                    _ => Arc::new(MaxTtl(config.max_ttl)),
                }
            })
            .collect();
        Ok(Broker::new(config).with_approvers(approvers))
    }

    /// The process-wide broker, built from [`Config::global`] by [`Broker::from_config`].
    /// The first test of every process loads and checks the configuration and policy;
    /// a bad file fails every test with the same message.
    pub fn global() -> &'static Broker {
        static BROKER: OnceLock<Broker> = OnceLock::new();
        BROKER.get_or_init(|| {
            Broker::from_config(Config::global().clone()).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    /// The settings this broker runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The audit log this broker writes.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Appends `events`; on failure, the error says what `then` happened to the access.
    fn record(&self, test: &str, events: &[Event], then: &str) -> Result<(), LifecycleError> {
        self.audit
            .append(events)
            .map_err(|e| self.unrecorded(test, &e, then.to_owned()))
    }

    fn unrecorded(&self, test: &str, error: &std::io::Error, then: String) -> LifecycleError {
        LifecycleError::Unrecorded {
            test: test.to_owned(),
            path: self.audit.path().display().to_string(),
            reason: error.to_string(),
            then,
        }
    }

    fn event(&self, kind: EventKind, test: &str, scheme: &str) -> Event {
        let mut event = Event::new(kind, &self.config.run_id, scheme);
        event.test = test.to_owned();
        event
    }

    /// Records a passed assertion of `test` (see the runner's hook).
    pub(crate) fn record_assertion(&self, test: &str, scheme: &str, detail: String) {
        let mut event = self.event(EventKind::DenialAsserted, test, scheme);
        event.detail = Some(detail);
        if let Err(e) = self.audit.append(&[event]) {
            eprintln!("jit-test: cannot write the audit log: {e}");
        }
    }

    /// Removes leftovers of crashed runs, once per provider type and process.
    async fn reap_once<P: Provider>(&self, provider: &P) {
        if first_reap::<P>()
            && let Err(e) = self.reap(provider, self.config.reap_grace).await
        {
            eprintln!("jit-test: warning: the {} reaper failed: {e}", P::SCHEME);
        }
    }

    /// Removes principals of `provider` left behind by crashed runs (expired more than
    /// `grace` ago; see [`Provider::reap`]) and records each removal in the audit log,
    /// which closes the crashed lease there. The broker does this with the configured
    /// grace before its first grant from each provider.
    pub async fn reap<P: Provider>(
        &self,
        provider: &P,
        grace: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        let names = provider.reap(grace).await?;
        let events: Vec<Event> = names
            .iter()
            .map(|name| {
                let mut e = Event::new(EventKind::Reaped, &self.config.run_id, P::SCHEME);
                e.principal = Some(name.clone());
                e
            })
            .collect();
        if !events.is_empty() {
            self.audit.append(&events).map_err(|e| {
                ProviderError::failed("recording the reap", format!("{e}: {}", names.join(", ")))
            })?;
        }
        Ok(names)
    }

    /// Asks for `ask.permissions` (all of `P::SCHEME`; possibly none, for a principal
    /// that can only log in): validates them, asks the approvers, records the request,
    /// grants, records the grant (or revokes it when that fails), and arms a watchdog
    /// that revokes the lease at its ttl. Must run inside a Tokio runtime, which hosts
    /// the watchdog.
    pub async fn acquire<P: Provider>(
        &self,
        provider: &Arc<P>,
        ask: LeaseRequest,
    ) -> Result<Lease<P>, LifecycleError> {
        let pending = self.prepare::<P>(ask)?;
        self.reap_once(provider.as_ref()).await;
        self.approve::<P>(&pending)?;
        let granted = self.grant(provider, &pending).await?;
        self.hold(provider, pending, granted).await
    }

    /// Checks every permission against `P` and gives the request its lease id.
    fn prepare<P: Provider>(&self, ask: LeaseRequest) -> Result<Pending, LifecycleError> {
        let invalid = |message: String| LifecycleError::Invalid {
            test: ask.test.clone(),
            message,
        };
        for p in ask.permissions.iter().chain(&ask.deny) {
            if p.scheme != P::SCHEME {
                return Err(invalid(format!(
                    "permission `{p}` is not of scheme `{}`",
                    P::SCHEME
                )));
            }
            P::validate(p)
                .map_err(|reason| invalid(format!("permission `{p}` rejected: {reason}")))?;
        }
        register::<P>();
        Ok(Pending {
            grant: GrantRequest {
                test: ask.test,
                run_id: self.config.run_id.clone(),
                lease_id: next_lease_id(),
                permissions: ask.permissions,
                deny: ask.deny,
                ttl: ask.ttl,
            },
            reason: ask.reason,
            trial: ask.trial,
        })
    }

    /// Asks the approvers; records the request with the verdict before anything else
    /// happens. Fails on a denial.
    fn approve<P: Provider>(&self, pending: &Pending) -> Result<(), LifecycleError> {
        let request = &pending.grant;
        let test = request.test.as_str();
        let mut requested = self.event(EventKind::Requested, test, P::SCHEME);
        requested.lease = Some(request.lease_id.clone());
        requested.permissions = request
            .permissions
            .iter()
            .map(ToString::to_string)
            .collect();
        let ttl = humantime::format_duration(request.ttl);
        requested.detail = Some(match &pending.reason {
            Some(reason) => format!("ttl {ttl}; reason: {reason}"),
            None => format!("ttl {ttl}"),
        });
        let (decision, approver) = self.approvers.decide(&AccessRequest {
            test,
            run_id: &self.config.run_id,
            scheme: P::SCHEME,
            permissions: &request.permissions,
            ttl: request.ttl,
            reason: pending.reason.as_deref(),
            trial: pending.trial,
        });
        let mut verdict = self.event(EventKind::Approved, test, P::SCHEME);
        verdict.lease = Some(request.lease_id.clone());
        verdict.detail = Some(format!("by {approver}"));
        let nothing = "nothing was granted";
        if let Decision::Deny(reason) = decision {
            verdict.event = EventKind::Denied;
            verdict.detail = Some(format!("by {approver}: {reason}"));
            self.record(test, &[requested, verdict], nothing)?;
            return Err(LifecycleError::Denied {
                test: test.to_owned(),
                scheme: P::SCHEME.to_owned(),
                approver,
                reason,
            });
        }
        self.record(test, &[requested, verdict], nothing)
    }

    /// Has the provider grant the request; records a failure.
    async fn grant<P: Provider>(
        &self,
        provider: &Arc<P>,
        pending: &Pending,
    ) -> Result<Granted<P>, LifecycleError> {
        let request = &pending.grant;
        match provider.grant(request).await {
            Ok(granted) => Ok(granted),
            Err(source) => {
                let test = request.test.as_str();
                let mut failed = self.event(EventKind::GrantFailed, test, P::SCHEME);
                failed.lease = Some(request.lease_id.clone());
                failed.detail = Some(source.to_string());
                self.record(test, &[failed], "nothing was granted")?;
                Err(LifecycleError::Provider {
                    test: test.to_owned(),
                    scheme: P::SCHEME.to_owned(),
                    step: "grant",
                    source,
                })
            }
        }
    }

    /// Arms the lease and records the grant; a grant that cannot be recorded is revoked
    /// and proven dead at once, and fails the test.
    async fn hold<P: Provider>(
        &self,
        provider: &Arc<P>,
        pending: Pending,
        granted: Granted<P>,
    ) -> Result<Lease<P>, LifecycleError> {
        let request = pending.grant;
        let test = request.test.clone();
        let mut event = self.event(EventKind::Granted, &test, P::SCHEME);
        event.lease = Some(request.lease_id.clone());
        event.principal = Some(granted.principal.clone());
        event.permissions = request
            .permissions
            .iter()
            .map(ToString::to_string)
            .collect();
        event.expires_at = Some(unix_seconds(granted.expires_at));
        let mut events = vec![event];
        if !granted.beyond_scope.is_empty() {
            let mut beyond = self.event(EventKind::BeyondScope, &test, P::SCHEME);
            beyond.lease = Some(request.lease_id.clone());
            beyond.principal = Some(granted.principal.clone());
            beyond.permissions = granted.beyond_scope.clone();
            beyond.detail = Some(granted.beyond_scope.join(", "));
            events.push(beyond);
        }
        let info = LeaseInfo {
            test: test.clone(),
            scheme: P::SCHEME,
            lease_id: request.lease_id,
            principal: granted.principal.clone(),
            permissions: request.permissions,
            ttl: request.ttl,
            granted_at: SystemTime::now(),
            expires_at: granted.expires_at,
            beyond_scope: granted.beyond_scope.clone(),
        };
        // Armed first: from here on the watchdog covers the principal.
        let lease = Lease::arm(provider, granted, info, &self.audit, &self.config.run_id);
        let Err(error) = self.audit.append(&events) else {
            return Ok(lease);
        };
        let principal = lease.info().principal.clone();
        let then = match lease.revoke_unrecorded().await {
            Ok(released) => format!(
                "the {} principal {principal} was revoked and proven dead ({})",
                P::SCHEME,
                released.refusal
            ),
            Err(e) => format!(
                "revoking the {} principal {principal} failed ({e}); its watchdog tries again at its expiry",
                P::SCHEME
            ),
        };
        Err(self.unrecorded(&test, &error, then))
    }
}
