//! The lifecycle of one test: the provider [registry](registry), the [`Broker`] that
//! requests, approves, grants and watches a [`Lease`], the [`Credentials`] a test takes,
//! and the runner ([`Test`], [`run`]) that runs a body between grant and release.

mod broker;
mod credentials;
mod error;
pub(crate) mod hook;
mod lease;
mod registry;
mod runner;

pub use broker::{Broker, LeaseRequest};
pub use credentials::{Acquisition, Credentials, Taking, take};
pub use error::LifecycleError;
pub use lease::{AnyLease, Lease, LeaseInfo, Released};
pub(crate) use registry::classifiers;
pub use registry::{broker_runtime, provider, register};
pub use runner::{BoxedBody, Flavor, Outcome, Test, run, run_async, run_sync};
