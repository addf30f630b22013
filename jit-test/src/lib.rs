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

pub mod approve;
pub mod baseline;
pub mod broker;
pub mod classify;
pub mod config;
pub mod conformance;
pub mod credentials;
pub mod minimize;
pub mod policy;
pub mod provider;
mod random;
mod record;
pub mod registry;
pub mod runner;
pub mod scope;
pub mod secret;

pub use approve::{AccessRequest, Approver, Decision};
pub use broker::{Broker, Lease, LeaseRequest, LifecycleError};
pub use classify::{ErrorClass, HttpStatus, classify};
pub use config::Config;
pub use credentials::Credentials;
pub use jit_test_macros::jit_test;
pub use provider::{
    Credential, GrantRequest, Granted, LeaseMeta, Proof, Provider, ProviderError, unix_seconds,
};
pub use record::{audit, report, summary};
pub use registry::{broker_runtime, provider};
pub use runner::{Flavor, Outcome, Test, run};
pub use scope::{Permission, Scope, ScopeError};
pub use secret::Secret;

/// Random values from the system CSPRNG, for providers' principal names and secrets.
pub mod rand {
    pub use crate::random::{bytes, hex, token};
}

/// Support for the code `#[jit_test]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::classify::expect_class;
    pub use crate::provider::scheme_of;
    pub use crate::runner::{Flavor, Test};
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
