//! Real credential providers for jit-test, each behind a cargo feature.

#[cfg(feature = "postgres")]
pub mod postgres;
