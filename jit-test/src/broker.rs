//! The [`Broker`]: request → approve → grant → (watchdog) → revoke → prove dead, every
//! step written to the audit log.

use std::any::TypeId;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::approve::{AccessRequest, Approver, Chain, Decision, MaxTtl};
use crate::audit::{AuditLog, Event, EventKind, Sink};
use crate::baseline::{Baseline, Mode};
use crate::config::{Config, ConfigError};
use crate::policy::Policy;
use crate::provider::{GrantRequest, Proof, Provider, ProviderError};
use crate::scope::Permission;

/// How often a failed revocation is retried before the broker gives up loudly.
const REVOKE_ATTEMPTS: u32 = 4;

/// A lifecycle step that failed. Messages name the test, scheme and principal, never a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The scope or a permission is not acceptable; nothing was granted.
    #[error("test {test}: {message}")]
    Invalid {
        /// The test.
        test: String,
        /// What is wrong.
        message: String,
    },
    /// An approver refused the request; nothing was granted.
    #[error("test {test}: access to {scheme} denied by {approver}: {reason}")]
    Denied {
        /// The test.
        test: String,
        /// The scheme.
        scheme: String,
        /// The approver that refused.
        approver: String,
        /// Its reason.
        reason: String,
    },
    /// The provider failed.
    #[error("test {test}: {scheme} {step} failed: {source}")]
    Provider {
        /// The test.
        test: String,
        /// The scheme.
        scheme: String,
        /// `grant`, `revoke` or `proof`.
        step: &'static str,
        /// The provider's error.
        source: ProviderError,
    },
    /// The old credential still worked after revocation.
    #[error(
        "test {test}: the {scheme} credential of principal {principal} still works after revocation"
    )]
    Leak {
        /// The test.
        test: String,
        /// The scheme.
        scheme: String,
        /// The principal that was not revoked.
        principal: String,
    },
}

/// What the broker knows of one lease (no secrets).
#[derive(Clone, Debug)]
pub struct LeaseInfo {
    /// The test.
    pub test: String,
    /// The scheme.
    pub scheme: &'static str,
    /// The lease id.
    pub lease_id: String,
    /// The principal's name.
    pub principal: String,
    /// The granted permissions.
    pub permissions: Vec<Permission>,
    /// The ttl asked for.
    pub ttl: Duration,
    /// When the principal was granted.
    pub granted_at: SystemTime,
    /// When the principal expires.
    pub expires_at: SystemTime,
    /// Privileges the principal held beyond its scope when granted.
    pub beyond_scope: Vec<String>,
}

impl LeaseInfo {
    /// How long the principal lives: from its grant to its expiry (at most the ttl; a
    /// system with whole-second expiry may round it down).
    pub fn lifetime(&self) -> Duration {
        self.expires_at
            .duration_since(self.granted_at)
            .unwrap_or(Duration::ZERO)
    }
}

/// What happened when a lease was released.
#[derive(Clone, Debug)]
pub struct Released {
    /// The lease.
    pub info: LeaseInfo,
    /// True when the watchdog revoked it at its ttl, before the test released it.
    pub expired_during_test: bool,
    /// How the system refused the old credential.
    pub refusal: String,
}

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

fn until(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

impl Broker {
    /// A broker with the default approver ([`MaxTtl`] at `config.max_ttl`) and the audit
    /// log at `config.audit_log`, keyed or signed ([`AuditLog::from_env`]). Panics, naming
    /// the variable, when the configured audit key is unusable.
    pub fn new(config: Config) -> Broker {
        let target = crate::config::target_dir();
        let audit = AuditLog::from_env(config.audit_log.clone(), &target)
            .unwrap_or_else(|e| panic!("cannot set up the audit log: {e}"));
        Broker {
            approvers: Chain(vec![Arc::new(MaxTtl(config.max_ttl))]),
            audit: Arc::new(audit),
            config,
        }
    }

    /// Replaces the audit sink (by default the [`AuditLog`] at `config.audit_log`): every
    /// event of this broker and its leases goes there.
    pub fn with_sink(mut self, sink: Arc<dyn Sink>) -> Broker {
        self.audit = sink;
        self
    }

    /// Replaces the approval chain.
    pub fn with_approvers(mut self, approvers: Vec<Arc<dyn Approver>>) -> Broker {
        self.approvers = Chain(approvers);
        self
    }

    /// A broker whose approval chain is `[policy] approvers` of the configuration file
    /// (default: baseline, policy, max-ttl), with the baseline in the mode the
    /// environment asks for ([`Mode::from_env`]).
    pub fn from_config(config: Config) -> Result<Broker, ConfigError> {
        let policy = Policy::load(&config)?;
        let approvers = policy
            .approvers
            .iter()
            .map(|name| -> Arc<dyn Approver> {
                match name.as_str() {
                    "baseline" => Arc::new(Baseline::new(&policy.baseline, Mode::from_env())),
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

    /// The audit sink this broker writes to.
    pub fn audit(&self) -> &dyn Sink {
        self.audit.as_ref()
    }

    fn record(&self, events: &[Event]) {
        if let Err(e) = self.audit.append(events) {
            panic!(
                "cannot write the audit log {}: {e}. Set JIT_TEST_AUDIT_LOG to a writable path",
                self.audit.location()
            );
        }
    }

    fn event(&self, kind: EventKind, test: &str, scheme: &str) -> Event {
        Event::new(&self.config.run_id, scheme, kind).with_test(test)
    }

    /// Removes leftovers of crashed runs, once per provider type and process.
    async fn reap_once<P: Provider>(&self, provider: &P) {
        static DONE: Mutex<Option<HashSet<TypeId>>> = Mutex::new(None);
        let first = DONE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(TypeId::of::<P>());
        if first && let Err(e) = self.reap(provider, self.config.reap_grace).await {
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
            self.record(&events);
        }
        Ok(names)
    }

    /// Asks for `ask.permissions` (all of `P::SCHEME`; possibly none, for a principal
    /// that can only log in): validates them, asks the approvers, grants, and arms a
    /// watchdog that revokes the lease at its ttl. Must run inside a Tokio runtime, which
    /// hosts the watchdog.
    pub async fn acquire<P: Provider>(
        &self,
        provider: &Arc<P>,
        ask: LeaseRequest,
    ) -> Result<Lease<P>, LifecycleError> {
        let LeaseRequest {
            test,
            permissions,
            deny,
            ttl,
            reason,
            trial,
        } = ask;
        let test = test.as_str();
        let invalid = |message: String| LifecycleError::Invalid {
            test: test.to_owned(),
            message,
        };
        for p in permissions.iter().chain(&deny) {
            if p.scheme != P::SCHEME {
                return Err(invalid(format!(
                    "permission `{p}` is not of scheme `{}`",
                    P::SCHEME
                )));
            }
            P::validate(p)
                .map_err(|reason| invalid(format!("permission `{p}` rejected: {reason}")))?;
        }
        crate::classify::register::<P>();
        self.reap_once(provider.as_ref()).await;

        let request = GrantRequest {
            test: test.to_owned(),
            run_id: self.config.run_id.clone(),
            lease_id: next_lease_id(),
            permissions,
            deny,
            ttl,
        };
        let lease_id = request.lease_id.as_str();
        let requested = self
            .event(
                EventKind::requested(&request.permissions, ttl, reason.as_deref()),
                test,
                P::SCHEME,
            )
            .with_lease(lease_id);

        let (decision, approver) = self.approvers.decide(&AccessRequest {
            test,
            run_id: &self.config.run_id,
            scheme: P::SCHEME,
            permissions: &request.permissions,
            ttl,
            reason: reason.as_deref(),
            trial,
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
        let verdict = self.event(verdict, test, P::SCHEME).with_lease(lease_id);
        if let Decision::Deny(reason) = decision {
            self.record(&[requested, verdict]);
            return Err(LifecycleError::Denied {
                test: test.to_owned(),
                scheme: P::SCHEME.to_owned(),
                approver,
                reason,
            });
        }

        let granted = match provider.grant(&request).await {
            Ok(granted) => granted,
            Err(source) => {
                let error = source.to_string();
                let failed = self.event(EventKind::GrantFailed { error }, test, P::SCHEME);
                let failed = failed.with_lease(lease_id);
                self.record(&[requested, verdict, failed]);
                return Err(LifecycleError::Provider {
                    test: test.to_owned(),
                    scheme: P::SCHEME.to_owned(),
                    step: "grant",
                    source,
                });
            }
        };
        let kind = EventKind::granted(&request.permissions, granted.expires_at);
        let event = self.event(kind, test, P::SCHEME);
        let mut events = vec![requested, verdict, event];
        if !granted.beyond_scope.is_empty() {
            let privileges = granted.beyond_scope.clone();
            events.push(self.event(EventKind::BeyondScope { privileges }, test, P::SCHEME));
        }
        for event in &mut events[2..] {
            event.lease = Some(request.lease_id.clone());
            event.principal = Some(granted.principal.clone());
        }
        self.record(&events);

        let state = Arc::new(LeaseState {
            provider: Arc::clone(provider),
            lease: granted.lease,
            info: LeaseInfo {
                test: test.to_owned(),
                scheme: P::SCHEME,
                lease_id: request.lease_id,
                principal: granted.principal,
                permissions: request.permissions,
                ttl,
                granted_at: SystemTime::now(),
                expires_at: granted.expires_at,
                beyond_scope: granted.beyond_scope,
            },
            audit: Arc::clone(&self.audit),
            run_id: self.config.run_id.clone(),
            revoked: tokio::sync::Mutex::new(false),
            expired: AtomicBool::new(false),
        });
        let watchdog = {
            let state = Arc::clone(&state);
            let deadline = Instant::now() + until(state.info.expires_at);
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                state.expired.store(true, Ordering::SeqCst);
                if let Ok(events) = state.revoke(true).await {
                    state.record(&events);
                }
            })
        };
        Ok(Lease {
            credential: Some(granted.credential),
            state,
            watchdog: Some(watchdog),
        })
    }
}

struct LeaseState<P: Provider> {
    provider: Arc<P>,
    lease: P::Lease,
    info: LeaseInfo,
    audit: Arc<dyn Sink>,
    run_id: String,
    revoked: tokio::sync::Mutex<bool>,
    expired: AtomicBool,
}

impl<P: Provider> LeaseState<P> {
    fn event(&self, kind: EventKind) -> Event {
        Event::new(&self.run_id, P::SCHEME, kind)
            .with_test(&self.info.test)
            .with_lease(&self.info.lease_id)
            .with_principal(&self.info.principal)
    }

    fn record(&self, events: &[Event]) {
        if let Err(e) = self.audit.append(events) {
            eprintln!(
                "jit-test: cannot write the audit log {}: {e}",
                self.audit.location()
            );
        }
    }

    /// Revokes once (later calls return at once, with no events), retrying with backoff.
    /// Returns the events to record: `Revoked`, after `Expired` when the watchdog revokes
    /// (`expired`). A revocation that gives up is recorded at once.
    async fn revoke(&self, expired: bool) -> Result<Vec<Event>, ProviderError> {
        let mut revoked = self.revoked.lock().await;
        if *revoked {
            return Ok(Vec::new());
        }
        let mut events = Vec::with_capacity(2);
        if expired {
            events.push(self.event(EventKind::Expired));
        }
        let mut delay = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.provider.revoke(&self.lease).await {
                Ok(()) => {
                    *revoked = true;
                    events.push(self.event(EventKind::Revoked));
                    return Ok(events);
                }
                Err(e) if attempt < REVOKE_ATTEMPTS => {
                    eprintln!(
                        "jit-test: revoking {} (attempt {attempt}) failed, retrying: {e}",
                        self.info.principal
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                    attempt += 1;
                }
                Err(e) => {
                    let error = e.to_string();
                    events.push(self.event(EventKind::RevokeFailed { error }));
                    self.record(&events);
                    return Err(e);
                }
            }
        }
    }
}

/// A granted lease. Release it with [`Lease::release`]; a lease dropped unreleased is
/// revoked in the background (and by its watchdog at the latest).
pub struct Lease<P: Provider> {
    credential: Option<P::Credential>,
    state: Arc<LeaseState<P>>,
    watchdog: Option<tokio::task::JoinHandle<()>>,
}

impl<P: Provider> Lease<P> {
    /// What the broker knows of the lease.
    pub fn info(&self) -> &LeaseInfo {
        &self.state.info
    }

    /// The credential, unless already taken.
    pub fn credential(&self) -> Option<&P::Credential> {
        self.credential.as_ref()
    }

    /// Takes the credential out, to hand it to a test body.
    pub fn take_credential(&mut self) -> Option<P::Credential> {
        self.credential.take()
    }

    /// Revokes the lease, tries the old credential and requires a refusal, and records
    /// both steps. Fails on a revocation that gave up or a credential that still works.
    pub async fn release(mut self) -> Result<Released, LifecycleError> {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
        }
        drop(self.credential.take());
        let state = Arc::clone(&self.state);
        let fail = |step, source| LifecycleError::Provider {
            test: state.info.test.clone(),
            scheme: P::SCHEME.to_owned(),
            step,
            source,
        };
        // Recorded with the proof's outcome, in one append.
        let mut events = state.revoke(false).await.map_err(|e| fail("revoke", e))?;
        let proof = state.provider.prove_dead(&state.lease).await;
        match &proof {
            Ok(Proof::Refused(how)) => events.push(state.event(EventKind::ProvenDead {
                refusal: how.clone(),
            })),
            Ok(Proof::Accepted) => events.push(state.event(EventKind::LeakDetected)),
            Err(_) => {}
        }
        state.record(&events);
        match proof {
            Ok(Proof::Refused(how)) => Ok(Released {
                info: state.info.clone(),
                expired_during_test: state.expired.load(Ordering::SeqCst),
                refusal: how,
            }),
            Ok(Proof::Accepted) => Err(LifecycleError::Leak {
                test: state.info.test.clone(),
                scheme: P::SCHEME.to_owned(),
                principal: state.info.principal.clone(),
            }),
            Err(e) => Err(fail("proof", e)),
        }
    }
}

impl<P: Provider> Drop for Lease<P> {
    fn drop(&mut self) {
        if self.watchdog.is_none() {
            return; // released
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let state = Arc::clone(&self.state);
            handle.spawn(async move {
                if let Ok(events) = state.revoke(false).await {
                    state.record(&events);
                }
            });
        }
    }
}

/// A lease of any provider, for code that holds leases of several schemes at once.
pub trait AnyLease: Send {
    /// What the broker knows of the lease.
    fn info(&self) -> &LeaseInfo;
    /// [`Lease::release`], boxed.
    fn release(
        self: Box<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<Released, LifecycleError>> + Send>>;
}

impl<P: Provider> AnyLease for Lease<P> {
    fn info(&self) -> &LeaseInfo {
        Lease::info(self)
    }

    fn release(
        self: Box<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<Released, LifecycleError>> + Send>> {
        Box::pin(Lease::release(*self))
    }
}
