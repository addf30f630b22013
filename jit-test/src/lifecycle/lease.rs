//! A granted [`Lease`]: its watchdog, which revokes it at its ttl, and its release:
//! revoke (retried), prove dead, record.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use jit_test_scope::Permission;

use super::error::LifecycleError;
use crate::provider::{Granted, Proof, Provider, ProviderError};
use crate::record::audit::{Event, EventKind, Sink};

/// How often a failed revocation is retried before the broker gives up loudly.
const REVOKE_ATTEMPTS: u32 = 4;

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

struct LeaseState<P: Provider> {
    provider: Arc<P>,
    lease: P::Lease,
    info: LeaseInfo,
    audit: Arc<dyn Sink>,
    run_id: String,
    revoked: tokio::sync::Mutex<bool>,
    expired: AtomicBool,
}

fn until(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

impl<P: Provider> LeaseState<P> {
    fn event(&self, kind: EventKind) -> Event {
        Event::new(&self.run_id, P::SCHEME, kind)
            .with_test(&self.info.test)
            .with_lease(&self.info.lease_id)
            .with_principal(&self.info.principal)
    }

    fn failure(&self, step: &'static str, source: ProviderError) -> LifecycleError {
        LifecycleError::Provider {
            test: self.info.test.clone(),
            scheme: P::SCHEME.to_owned(),
            step,
            source,
        }
    }

    /// Tries the old credential, records `events` (the revocation's) with the outcome in
    /// one append, and requires a refusal, recorded.
    async fn prove(&self, mut events: Vec<Event>) -> Result<Released, LifecycleError> {
        let proof = self.provider.prove_dead(&self.lease).await;
        match &proof {
            Ok(Proof::Refused(how)) => events.push(self.event(EventKind::ProvenDead {
                refusal: how.clone(),
            })),
            Ok(Proof::Accepted) => events.push(self.event(EventKind::LeakDetected)),
            Err(_) => {}
        }
        let recorded = self.audit.append(&events);
        let refusal = match proof {
            Ok(Proof::Refused(how)) => how,
            Ok(Proof::Accepted) => {
                return Err(LifecycleError::Leak {
                    test: self.info.test.clone(),
                    scheme: P::SCHEME.to_owned(),
                    principal: self.info.principal.clone(),
                });
            }
            Err(e) => return Err(self.failure("proof", e)),
        };
        if let Err(e) = recorded {
            return Err(LifecycleError::Unrecorded {
                test: self.info.test.clone(),
                path: self.audit.location(),
                reason: e.to_string(),
                then: format!(
                    "the {} principal {} was revoked and proven dead ({refusal}), but the audit log does not say so",
                    P::SCHEME,
                    self.info.principal
                ),
            });
        }
        Ok(Released {
            info: self.info.clone(),
            expired_during_test: self.expired.load(Ordering::SeqCst),
            refusal,
        })
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
        let mut events: Vec<Event> = expired
            .then(|| self.event(EventKind::Expired))
            .into_iter()
            .collect();
        match self.revoke_with_retries().await {
            Ok(()) => {
                *revoked = true;
                events.push(self.event(EventKind::Revoked));
                Ok(events)
            }
            Err(e) => {
                let error = e.to_string();
                events.push(self.event(EventKind::RevokeFailed { error }));
                self.record(&events);
                Err(e)
            }
        }
    }

    /// The provider's revoke, tried up to [`REVOKE_ATTEMPTS`] times, 50 ms apart at
    /// first and four times longer each time.
    async fn revoke_with_retries(&self) -> Result<(), ProviderError> {
        let mut delay = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.provider.revoke(&self.lease).await {
                Err(e) if attempt < REVOKE_ATTEMPTS => {
                    eprintln!(
                        "jit-test: revoking {} (attempt {attempt}) failed, retrying: {e}",
                        self.info.principal
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                    attempt += 1;
                }
                result => return result,
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
    /// Holds `granted` and arms its watchdog, which revokes it at its expiry. Must run
    /// inside a Tokio runtime, which hosts the watchdog.
    pub(crate) fn arm(
        provider: &Arc<P>,
        granted: Granted<P>,
        info: LeaseInfo,
        audit: &Arc<dyn Sink>,
        run_id: &str,
    ) -> Lease<P> {
        let state = Arc::new(LeaseState {
            provider: Arc::clone(provider),
            lease: granted.lease,
            info,
            audit: Arc::clone(audit),
            run_id: run_id.to_owned(),
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
        Lease {
            credential: Some(granted.credential),
            state,
            watchdog: Some(watchdog),
        }
    }

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
        let events = state
            .revoke(false)
            .await
            .map_err(|e| state.failure("revoke", e))?;
        state.prove(events).await
    }

    /// For a grant that could not be recorded: revokes it and proves it dead at once.
    /// While the revocation fails, the watchdog stays armed and tries again at expiry.
    pub(crate) async fn revoke_unrecorded(mut self) -> Result<Released, LifecycleError> {
        drop(self.credential.take());
        let watchdog = self.watchdog.take();
        let state = Arc::clone(&self.state);
        let events = match state.revoke(false).await {
            Ok(events) => events,
            // Dropping the handle leaves the watchdog running.
            Err(e) => return Err(state.failure("revoke", e)),
        };
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        state.prove(events).await
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
