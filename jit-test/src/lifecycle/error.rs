//! [`LifecycleError`]: a step of the lifecycle that failed.

use crate::provider::ProviderError;

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
    /// The audit log could not record a step. Nothing is granted before the request is
    /// recorded; a grant that could not be recorded was revoked and proven dead (`then`
    /// says how that went).
    #[error(
        "test {test}: cannot write the audit log {path}: {reason}; {then}. Set JIT_TEST_AUDIT_LOG (or audit_log in jit-test.toml) to a writable path"
    )]
    Unrecorded {
        /// The test.
        test: String,
        /// The audit log.
        path: String,
        /// Why the write failed.
        reason: String,
        /// What happened to the access: nothing granted, or revoked and proven dead.
        then: String,
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
