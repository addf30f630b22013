//! The provider conformance kit: checks any [`Provider`] — ours or yours — against the
//! contract, on the real system.
//!
//! ```text
//! #[tokio::test]
//! async fn my_provider_keeps_the_contract() {
//!     let provider = Arc::new(MyProvider::from_config(Config::global()).unwrap());
//!     let plan = Plan { scope: "my:read:a", invalid: "my:fly:a", short_ttl: Duration::from_secs(2) };
//!     conformance::check(provider, plan,
//!         async |cred| cred.read("a").await.map_err(Into::into),   // allowed by the scope
//!         async |cred| cred.read("b").await.map_err(Into::into),   // must be denied
//!     ).await.assert_passed();
//! }
//! ```

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jit_test_scope::{Permission, Scope};

use crate::assertions::classify;
use crate::class::ErrorClass;
use crate::config::Config;
use crate::lifecycle::{Broker, LeaseRequest, register};
use crate::provider::{GrantRequest, Proof, Provider};

/// A boxed error, as the probes return.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// What to grant and what to try.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    /// A scope of the provider's scheme for which `within` succeeds and `outside` is denied.
    pub scope: &'a str,
    /// A permission of the provider's scheme that `validate` must reject.
    pub invalid: &'a str,
    /// A short ttl for the expiry check (the check waits this long, plus a second).
    pub short_ttl: Duration,
}

/// The outcome of every check, by name.
#[derive(Debug, Default)]
pub struct Report {
    /// `(check, Ok or the reason it failed)`.
    pub checks: Vec<(&'static str, Result<(), String>)>,
}

impl Report {
    fn record(&mut self, name: &'static str, result: Result<(), String>) {
        self.checks.push((name, result));
    }

    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }

    /// Panics listing the failed checks, if any.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "provider conformance failed:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, result) in &self.checks {
            match result {
                Ok(()) => writeln!(f, "  ok    {name}")?,
                Err(why) => writeln!(f, "  FAIL  {name}: {why}")?,
            }
        }
        Ok(())
    }
}

fn expect_class(result: Result<(), BoxError>, expected: ErrorClass) -> Result<(), String> {
    match result {
        Ok(()) => Err(format!("succeeded, but {expected} was expected")),
        Err(e) if classify(e.as_ref()) == expected => Ok(()),
        Err(e) => Err(format!(
            "expected {expected}, got {}: {e}",
            classify(e.as_ref())
        )),
    }
}

fn request(test: &str, permissions: Vec<Permission>, ttl: Duration, n: usize) -> GrantRequest {
    GrantRequest {
        test: format!("conformance::{test}"),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("c{}_{}_{n}", crate::random::hex(4), std::process::id()),
        permissions,
        deny: Vec::new(),
        ttl,
    }
}

/// Runs every check of the contract against `provider` and reports each one. Must run
/// inside a Tokio runtime (with the time driver).
///
/// - `validate` rejects `plan.invalid`;
/// - a grant works within its scope (`within`) and is denied outside it (`outside`, an
///   error the provider classifies as a denial);
/// - concurrent grants get distinct principals that all work;
/// - revocation is idempotent, and the dead credential is refused by the real system;
/// - a lease past its ttl is unusable;
/// - the reaper leaves a live lease alone.
pub async fn check<P, W, O>(provider: Arc<P>, plan: Plan<'_>, within: W, outside: O) -> Report
where
    P: Provider,
    W: AsyncFn(&P::Credential) -> Result<(), BoxError>,
    O: AsyncFn(&P::Credential) -> Result<(), BoxError>,
{
    register::<P>();
    let mut report = Report::default();
    let permissions = match Scope::parse(plan.scope) {
        Ok(scope) => scope.permissions,
        Err(e) => {
            report.record("plan", Err(format!("the plan's scope does not parse: {e}")));
            return report;
        }
    };
    let ttl = Duration::from_secs(60);

    report.record(
        "validate rejects an invalid permission",
        match plan.invalid.parse::<Permission>() {
            Ok(p) if P::validate(&p).is_err() => Ok(()),
            Ok(p) => Err(format!("`{p}` was accepted")),
            Err(e) => Err(format!("plan.invalid does not parse: {e}")),
        },
    );

    // Grant, use, deny, revoke twice, prove dead.
    match provider
        .grant(&request("direct", permissions.clone(), ttl, 0))
        .await
    {
        Err(e) => report.record("grant works within its scope", Err(e.to_string())),
        Ok(granted) => {
            report.record(
                "expiry is at most the ttl",
                if granted.expires_at <= SystemTime::now() + ttl + Duration::from_secs(1) {
                    Ok(())
                } else {
                    Err("the principal outlives its ttl".into())
                },
            );
            report.record(
                "grant works within its scope",
                within(&granted.credential).await.map_err(|e| e.to_string()),
            );
            report.record(
                "outside the scope is denied",
                expect_class(outside(&granted.credential).await, ErrorClass::Denied),
            );
            report.record(
                "the reaper leaves a live lease alone",
                match provider.reap(Duration::ZERO).await {
                    Ok(names) if names.contains(&granted.principal) => {
                        Err(format!("reaped the live principal {}", granted.principal))
                    }
                    Ok(_) => within(&granted.credential).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            );
            let first = provider.revoke(&granted.lease).await;
            let second = provider.revoke(&granted.lease).await;
            report.record(
                "revoke is idempotent",
                first.and(second).map_err(|e| e.to_string()),
            );
            report.record(
                "the revoked credential is refused",
                match provider.prove_dead(&granted.lease).await {
                    Ok(Proof::Refused(_)) => Ok(()),
                    Ok(Proof::Accepted) => Err("the system still accepts it".into()),
                    Err(e) => Err(e.to_string()),
                },
            );
            report.record(
                "the revoked credential no longer works",
                match within(&granted.credential).await {
                    Ok(()) => Err("an allowed operation still succeeds".into()),
                    Err(_) => Ok(()),
                },
            );
        }
    }

    let broker = Broker::new(Config::global().clone());
    let grant = |n: usize| {
        let (broker, provider, permissions) = (&broker, &provider, permissions.clone());
        async move {
            let ask = LeaseRequest::new(format!("conformance::concurrent{n}"), permissions, ttl);
            broker.acquire(provider, ask).await
        }
    };
    let (a, b, c, d) = tokio::join!(grant(1), grant(2), grant(3), grant(4));
    let leases: Vec<_> = [a, b, c, d].into_iter().filter_map(Result::ok).collect();
    let mut names: Vec<&str> = leases.iter().map(|l| l.info().principal.as_str()).collect();
    names.sort();
    names.dedup();
    let mut concurrent = if leases.len() < 4 {
        Err(format!(
            "only {} of 4 concurrent grants succeeded",
            leases.len()
        ))
    } else if names.len() < 4 {
        Err("concurrent grants share a principal".into())
    } else {
        Ok(())
    };
    for lease in leases {
        let credential = lease.credential().expect("not taken");
        if let Err(e) = within(credential).await {
            concurrent = concurrent.and(Err(format!("a concurrent grant does not work: {e}")));
        }
        if let Err(e) = lease.release().await {
            concurrent = concurrent.and(Err(e.to_string()));
        }
    }
    report.record("concurrent grants do not collide", concurrent);

    let ask = LeaseRequest::new("conformance::expiry", permissions, plan.short_ttl);
    let expiry = match broker.acquire(&provider, ask).await {
        Err(e) => Err(e.to_string()),
        Ok(lease) => {
            tokio::time::sleep(plan.short_ttl + Duration::from_secs(1)).await;
            let used = within(lease.credential().expect("not taken")).await;
            match (used, lease.release().await) {
                (Ok(()), _) => Err("the credential still works past its ttl".into()),
                (Err(_), Ok(released)) if released.expired_during_test => Ok(()),
                (Err(_), Ok(_)) => Err("the watchdog did not revoke the lease at its ttl".into()),
                (Err(_), Err(e)) => Err(e.to_string()),
            }
        }
    };
    report.record("a lease past its ttl is unusable", expiry);
    report
}
