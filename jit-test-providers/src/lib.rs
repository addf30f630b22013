//! Real credential providers for [jit-test](jit_test), each behind a cargo feature.
//!
//! | feature | module | system |
//! |---|---|---|
//! | `token` (default) | [`token`] | an in-process authority issuing signed JWTs |
//! | `postgres` | `postgres` | PostgreSQL login roles with `VALID UNTIL` and exactly the scoped privileges |
//! | `mqtt` | `mqtt` | Mosquitto dynamic-security clients allowed exactly the scoped topics |
//!
//! Every provider implements [`jit_test::Provider`] and passes
//! [`jit_test::conformance::check`] against the real system it serves.

#[cfg(feature = "token")]
pub mod token;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(feature = "mqtt")]
pub mod mqtt;
