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
use crate::config::{Config, ConfigError};
use crate::provider::{GrantRequest, Granted, Provider, ProviderError};
use crate::record::audit::{AuditLog, Event, EventKind, Sink};

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
    audit: Arc<dyn Sink>,
}

fn next_lease_id() -> String {
    static NONCE: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = NONCE.get_or_init(|| crate::random::hex(4));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nonce}_{}_{n}", std::process::id())
}

/// The sink `config.audit_log` names: a file, or a PostgreSQL table.
fn configured_sink(config: &Config) -> std::io::Result<Arc<dyn Sink>> {
    let target = crate::config::target_dir();
    match config.audit_url() {
        None => Ok(Arc::new(AuditLog::from_env(
            config.audit_log.clone(),
            &target,
        )?)),
        #[cfg(feature = "postgres-audit")]
        Some(url) => Ok(Arc::new(crate::record::audit::postgres::PgSink::from_env(
            url,
            &config.run_id,
            &target,
        )?)),
        #[cfg(not(feature = "postgres-audit"))]
        Some(_) => Err(std::io::Error::other(
            "audit_log names a PostgreSQL table, which needs the feature `postgres-audit` \
             of jit-test: add it to your dev-dependency, or set audit_log to a file",
        )),
    }
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
    /// log at `config.audit_log`, keyed or signed ([`AuditLog::from_env`]), or the
    /// PostgreSQL table it names (feature `postgres-audit`). Panics, naming the setting,
    /// when the configured audit key or sink is unusable.
    pub fn new(config: Config) -> Broker {
        let audit =
            configured_sink(&config).unwrap_or_else(|e| panic!("cannot set up the audit log: {e}"));
        Broker {
            approvers: Chain(vec![Arc::new(MaxTtl(config.max_ttl))]),
            audit,
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

    /// Replaces the audit sink (by default the [`AuditLog`] at `config.audit_log`): every
    /// event of this broker and its leases goes there.
    pub fn with_sink(mut self, sink: Arc<dyn Sink>) -> Broker {
        self.audit = sink;
        self
    }

    /// The audit sink this broker writes to.
    pub fn audit(&self) -> &dyn Sink {
        self.audit.as_ref()
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
            path: self.audit.location(),
            reason: error.to_string(),
            then,
        }
    }

    fn event(&self, kind: EventKind, test: &str, scheme: &str) -> Event {
        Event::new(&self.config.run_id, scheme, kind).with_test(test)
    }

    /// Records a passed assertion of `test` (see the runner's hook).
    pub(crate) fn record_assertion(&self, test: &str, scheme: &str, expression: String) {
        let event = self.event(EventKind::DenialAsserted { expression }, test, scheme);
        if let Err(e) = self.audit.append(&[event]) {
            eprintln!("jit-test: cannot write the audit log: {e}");
        }
    }

    /// Records the minimizer's verdict on `test`, so that the run's trail holds it
    /// wherever the test ran.
    pub(crate) fn record_minimized(&self, test: &str, verdict: &crate::minimize::Verdict) {
        let event = self.event(EventKind::minimized(verdict), test, "jit-test");
        if let Err(e) = self.audit.append(&[event]) {
            eprintln!("jit-test: cannot record the minimizer's verdict on {test}: {e}");
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
                Event::new(&self.config.run_id, P::SCHEME, EventKind::Reaped).with_principal(name)
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
        let requested =
            EventKind::requested(&request.permissions, request.ttl, pending.reason.as_deref());
        let requested = self
            .event(requested, test, P::SCHEME)
            .with_lease(&request.lease_id);
        let (decision, approver) = self.approvers.decide(&AccessRequest {
            test,
            run_id: &self.config.run_id,
            scheme: P::SCHEME,
            permissions: &request.permissions,
            ttl: request.ttl,
            reason: pending.reason.as_deref(),
            trial: pending.trial,
        });
        let verdict = match &decision {
            Decision::Deny(reason) => EventKind::Denied {
                approver: approver.clone(),
                reason: reason.clone(),
            },
            _ => EventKind::Approved {
                approver: approver.clone(),
            },
        };
        let verdict = self
            .event(verdict, test, P::SCHEME)
            .with_lease(&request.lease_id);
        let nothing = "nothing was granted";
        if let Decision::Deny(reason) = decision {
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
                let error = source.to_string();
                let failed = self.event(EventKind::GrantFailed { error }, test, P::SCHEME);
                let failed = failed.with_lease(&request.lease_id);
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
        let granted_kind = EventKind::granted(&request.permissions, granted.expires_at);
        let mut events = vec![self.event(granted_kind, &test, P::SCHEME)];
        if !granted.beyond_scope.is_empty() {
            let privileges = granted.beyond_scope.clone();
            events.push(self.event(EventKind::BeyondScope { privileges }, &test, P::SCHEME));
        }
        let events: Vec<Event> = events
            .into_iter()
            .map(|e| {
                e.with_lease(&request.lease_id)
                    .with_principal(&granted.principal)
            })
            .collect();
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
