//! Real credential providers for [jit-test](jit_test), each behind a cargo feature.
//!
//! | feature | module | system |
//! |---|---|---|
//! | `token` (default) | [`token`] | an in-process authority issuing signed JWTs |
//! | `postgres` | `postgres` | PostgreSQL login roles with `VALID UNTIL` and exactly the scoped privileges |
//!
//! Every provider implements [`jit_test::Provider`] and passes
//! [`jit_test::conformance::check`] against the real system it serves.

#[cfg(feature = "token")]
pub mod token;

#[cfg(feature = "postgres")]
pub mod postgres;

/// The README's `rust` blocks, compiled and run as doc tests of this crate (a block that
/// needs a server is `rust,no_run,test_harness`: compiled, not run). Built with every
/// provider feature the README uses; add yours to the `cfg` with your README section.
#[cfg(all(doctest, feature = "token", feature = "postgres"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
