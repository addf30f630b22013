//! Real credential providers for [jit-test](jit_test), each behind a cargo feature.
//!
//! | feature | module | system |
//! |---|---|---|
//! | `token` (default) | [`token`] | an in-process authority issuing signed JWTs |
//!
//! Every provider implements [`jit_test::Provider`] and passes
//! [`jit_test::conformance::check`] against the real system it serves.

#[cfg(feature = "token")]
pub mod token;
