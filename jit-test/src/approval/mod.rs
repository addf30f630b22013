//! Approval: who decides whether a test may have the access it asks for, before anything
//! is granted. The [`Approver`] trait and its chain, the `[policy]` section of
//! `jit-test.toml` ([`Policy`]) and the committed baseline ([`Baseline`]).

mod approver;
mod baseline;
mod policy;

pub use approver::{AccessRequest, Approver, Chain, Decision, MaxTtl};
pub use baseline::{Baseline, Entries, Mode};
pub use policy::{DEFAULT_APPROVERS, Policy, Rule, glob_match};
