//! The [`Provider`] contract: how a system hands out, revokes and proves dead a
//! short-lived, least-privilege principal.

use std::error::Error;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use jit_test_scope::Permission;

use crate::class::ErrorClass;
use crate::config::Config;

/// A source of short-lived credentials for one scheme (`pg`, `redis`, `token`, ...).
///
/// The broker drives every provider through the same lifecycle and treats none
/// specially: it revokes each lease at its ttl through a watchdog, so a system without
/// native expiry (Redis ACL users, MariaDB users) is cut off on time, and a system with
/// one (PostgreSQL `VALID UNTIL`, JWT `exp`) keeps it as the last line of defence when the
/// process is killed. `jit_test::conformance` checks an implementation against this
/// contract.
pub trait Provider: Send + Sync + Sized + 'static {
    /// The scheme this provider serves: the first part of its permissions.
    const SCHEME: &'static str;
    /// What a test receives.
    type Credential: Credential<Provider = Self>;
    /// What the provider keeps to revoke the principal and prove it dead (it may hold
    /// the secret; it is never printed).
    type Lease: Send + Sync + 'static;

    /// Builds the provider from configuration. Must be cheap: connect lazily.
    fn from_config(config: &Config) -> Result<Self, ProviderError>;

    /// Checks one permission of this scheme before anything is granted. The error says
    /// why the permission is not acceptable.
    fn validate(permission: &Permission) -> Result<(), String>;

    /// Creates a fresh principal holding exactly `request.permissions`, expiring at most
    /// `request.ttl` from now, with a name no other run or test can collide with.
    fn grant(
        &self,
        request: &GrantRequest,
    ) -> impl Future<Output = Result<Granted<Self>, ProviderError>> + Send;

    /// Removes the principal and ends its live sessions. Idempotent: a principal that is
    /// already gone counts as revoked.
    fn revoke(&self, lease: &Self::Lease)
    -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// Uses the old credential against the real system and reports whether it was refused.
    /// The attempt may be made during [`revoke`](Provider::revoke), once the principal can
    /// no longer log in and before it is removed, and reported here (the `pg` provider
    /// does: a login after the removal would cost more and prove no more).
    fn prove_dead(
        &self,
        lease: &Self::Lease,
    ) -> impl Future<Output = Result<Proof, ProviderError>> + Send;

    /// Classifies an error raised by this system's clients, or `None` if it is not one of
    /// this system's errors.
    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass>;

    /// Removes principals left behind by crashed runs: only those whose expiry plus
    /// `grace` has passed, never a live lease of another process or machine. Returns the
    /// names removed.
    fn reap(
        &self,
        grace: Duration,
    ) -> impl Future<Output = Result<Vec<String>, ProviderError>> + Send;
}

/// The credential type a test parameter names; it ties the parameter to its provider.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a jit-test credential",
    label = "a `#[jit_test]` parameter must be a credential type",
    note = "credential types come from providers, e.g. `jit_test_providers::token::TokenGrant`; \
            your own provider's implement `jit_test::Credential`"
)]
pub trait Credential: Send + 'static {
    /// The provider that issues this credential.
    type Provider: Provider<Credential = Self>;
}

/// The scheme of a credential type, usable in constant expressions.
pub const fn scheme_of<C: Credential>() -> &'static str {
    <C::Provider as Provider>::SCHEME
}

/// What a provider is asked to grant.
#[derive(Clone, Debug)]
pub struct GrantRequest {
    /// Full name of the test, e.g. `orders::customer_places_order`.
    pub test: String,
    /// The run this test belongs to (shared by all processes of one `cargo nextest run`).
    pub run_id: String,
    /// Unique id of this lease: safe as part of a principal name (`[a-z0-9_]`, ≤ 32 bytes).
    pub lease_id: String,
    /// The permissions to grant, all of this provider's scheme.
    pub permissions: Vec<Permission>,
    /// Permissions the principal must not hold (checked by providers that can).
    pub deny: Vec<Permission>,
    /// The longest the principal may live.
    pub ttl: Duration,
}

impl GrantRequest {
    /// A principal name: `prefix` followed by the lease id, e.g. `jit_3f9a2c1b_4012_7`.
    pub fn principal_name(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.lease_id)
    }

    /// The lease metadata to store beside the principal for the reaper.
    pub fn meta(&self, expires_at: SystemTime) -> LeaseMeta {
        LeaseMeta {
            lease: self.lease_id.clone(),
            run: self.run_id.clone(),
            test: self.test.clone(),
            pid: std::process::id(),
            host: crate::config::hostname(),
            expires_at: unix_seconds(expires_at),
            expires_at_ms: unix_millis(expires_at),
        }
    }
}

/// What a provider hands back from a grant.
pub struct Granted<P: Provider> {
    /// The principal's name on the system (never secret).
    pub principal: String,
    /// When the system (or the watchdog) stops honouring it.
    pub expires_at: SystemTime,
    /// What the test receives.
    pub credential: P::Credential,
    /// What the provider needs to revoke and prove dead.
    pub lease: P::Lease,
    /// Privileges the principal holds beyond its scope (through PUBLIC grants, default
    /// privileges, ownership, ...), as far as the provider can see: recorded in the audit
    /// log and shown with a failing test. Empty where the system has no such paths.
    pub beyond_scope: Vec<String>,
}

/// The result of trying a revoked credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The system refused it; the text says how (e.g. `SQLSTATE 28P01`).
    Refused(String),
    /// The system still accepted it: a leak.
    Accepted,
}

/// Lease metadata stored on the server beside a principal (as a comment, an ACL
/// annotation, ...) so that the reaper of any process can tell who owns it and when it
/// may be removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseMeta {
    /// The lease id.
    pub lease: String,
    /// The run id.
    pub run: String,
    /// The test that holds it.
    pub test: String,
    /// The process that holds it.
    pub pid: u32,
    /// The machine that holds it.
    pub host: String,
    /// Expiry, in whole seconds since the Unix epoch (for people reading it).
    pub expires_at: u64,
    /// Expiry, in milliseconds since the Unix epoch: what the reaper goes by. 0 in
    /// metadata written before it existed, where `expires_at` counts.
    #[serde(default)]
    pub expires_at_ms: u64,
}

impl LeaseMeta {
    /// Sets the expiry, e.g. to the value the server computed.
    pub fn set_expiry(&mut self, expires_at: SystemTime) {
        self.expires_at = unix_seconds(expires_at);
        self.expires_at_ms = unix_millis(expires_at);
    }

    /// True once the lease's expiry plus `grace` lies in the past, to the millisecond:
    /// nobody may still use it.
    pub fn is_reapable(&self, now: SystemTime, grace: Duration) -> bool {
        let expiry = if self.expires_at_ms > 0 {
            self.expires_at_ms
        } else {
            self.expires_at.saturating_mul(1000)
        };
        let grace = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        expiry.saturating_add(grace) < unix_millis(now)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A provider failure. Messages name what was tried and what to change; they never hold
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The system could not be reached.
    #[error("cannot reach {system} at {address}: {reason}. Set {setting} to a reachable server")]
    Unreachable {
        /// Which system, e.g. `PostgreSQL`.
        system: &'static str,
        /// The address tried (without credentials).
        address: String,
        /// The setting that chooses the address, e.g. `JIT_TEST_PG_URL`.
        setting: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A permission the provider does not accept.
    #[error("permission `{permission}` rejected: {reason}")]
    InvalidPermission {
        /// The permission, as written.
        permission: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The system is set up so that the credential would not be checked.
    #[error("{0}")]
    Misconfigured(String),
    /// The system refused or failed an operation.
    #[error("{operation} failed: {message}")]
    Failed {
        /// What was attempted, e.g. `grant` or `DROP ROLE`.
        operation: &'static str,
        /// The system's message.
        message: String,
    },
}

impl ProviderError {
    /// Shorthand for [`ProviderError::Failed`].
    pub fn failed(operation: &'static str, message: impl std::fmt::Display) -> ProviderError {
        ProviderError::Failed {
            operation,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_expiring_at(expires_at: SystemTime) -> LeaseMeta {
        let mut meta = LeaseMeta {
            lease: "l".into(),
            run: "r".into(),
            test: "t".into(),
            pid: 1,
            host: "h".into(),
            expires_at: 0,
            expires_at_ms: 0,
        };
        meta.set_expiry(expires_at);
        meta
    }

    #[test]
    fn a_lease_is_reapable_as_soon_as_expiry_plus_grace_has_passed() {
        let expiry = UNIX_EPOCH + Duration::from_millis(1_000_400);
        let meta = meta_expiring_at(expiry);
        let grace = Duration::from_secs(1);
        let at = |ms| expiry + grace + Duration::from_millis(ms);
        assert!(!meta.is_reapable(at(0), grace));
        assert!(meta.is_reapable(at(1), grace));
        assert!(meta.is_reapable(at(100), grace));
        // Metadata of older versions: whole seconds.
        let old = LeaseMeta {
            expires_at_ms: 0,
            ..meta
        };
        assert!(old.is_reapable(UNIX_EPOCH + Duration::from_millis(1_001_001), grace));
        let json = r#"{"lease":"l","run":"r","test":"t","pid":1,"host":"h","expires_at":5}"#;
        assert_eq!(
            serde_json::from_str::<LeaseMeta>(json)
                .unwrap()
                .expires_at_ms,
            0
        );
    }
}
