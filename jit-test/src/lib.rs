//! # jit-test
//!
//! Integration tests that prove least privilege. `#[jit_test(scope = "...")]` gives a test
//! fresh, scoped, short-lived credentials from a pluggable [`Provider`], revokes them
//! afterwards whatever the test did, proves them dead by trying them against the real
//! system, and writes every step to a hash-chained [audit log](audit).
//!
//! ```text
//! use jit_test::{jit_test, assert_denied};
//! use jit_test_providers::postgres::PgGrant;
//!
//! #[jit_test(scope = "pg:select:public.orders, pg:insert:public.orders", ttl = "30s")]
//! async fn customer_places_order(pg: PgGrant) -> anyhow::Result<()> {
//!     let db = pg.connect().await?;
//!     db.execute("INSERT INTO orders (sku) VALUES ('a1')", &[]).await?;
//!     assert_denied!(db.execute("DELETE FROM orders", &[]).await);
//!     Ok(())
//! }
//! ```
//!
//! The lifecycle of one test: request → approve ([`Approver`]) → grant → run body →
//! revoke → prove dead → audit. See the README for the scope grammar and for writing a
//! provider; [`conformance`] checks a provider against the contract.
//!
//! ## Layers
//!
//! Each layer uses only the layers listed before it (`tests/tests/module_cycles.rs`
//! checks that no module imports in a cycle):
//!
//! - the contract, at the root: the scope grammar (the `jit-test-scope` crate), the
//!   [`Provider`] trait, [`ErrorClass`], [`Secret`], [`Config`], [`rand`];
//! - the lifecycle: the [`provider`] registry, the [`Broker`] and its [`Lease`]s, the
//!   [`Credentials`] of a test, the runner ([`Test`], [`run`]);
//! - approval: the [`Approver`] chain, the [`approval::Policy`] and the
//!   [`approval::Baseline`]; the least-privilege finder ([`minimize`]);
//! - assertions: [`assert_denied!`] and [`assert_unauthenticated!`], which record
//!   through a hook the runner installs;
//! - the record: the [audit log](audit), the [`report`] and the end-of-run summary.

pub mod approval;
mod assertions;
mod class;
pub mod config;
pub mod conformance;
mod hex;
mod lifecycle;
mod locked;
pub mod minimize;
mod provider;
mod random;
mod record;
mod secret;

pub use approval::{AccessRequest, Approver, Decision};
pub use assertions::classify;
pub use class::{ErrorClass, HttpStatus};
pub use config::{Config, ConfigError};
pub use hex::to_hex;
pub use jit_test_macros::jit_test;
pub use jit_test_scope::{Permission, Scope, ScopeError};
pub use lifecycle::{
    Acquisition, AnyLease, Broker, Credentials, Flavor, Lease, LeaseInfo, LeaseRequest,
    LifecycleError, Outcome, Released, Test, broker_runtime, provider, register, run,
};
pub use provider::{
    Credential, GrantRequest, Granted, LeaseMeta, Proof, Provider, ProviderError, unix_seconds,
};
pub use record::{audit, report, summary};
pub use secret::Secret;

/// The scope grammar (the `jit-test-scope` crate): error details beyond [`ScopeError`].
pub mod scope {
    pub use jit_test_scope::*;
}

/// Random values from the system CSPRNG, for providers' principal names and secrets.
pub mod rand {
    pub use crate::random::{bytes, hex, token};
}

/// Support for the code `#[jit_test]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::assertions::expect_class;
    pub use crate::lifecycle::{BoxedBody, Flavor, Taking, Test, run_async, run_sync, take};
    pub use crate::provider::scheme_of;
    pub use std::time::Duration;

    /// Whether `list` contains `item`, usable in constant expressions.
    pub const fn contains(list: &[&str], item: &str) -> bool {
        let mut i = 0;
        while i < list.len() {
            if str_eq(list[i], item) {
                return true;
            }
            i += 1;
        }
        false
    }

    const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}
