//! Real credential providers for [jit-test](jit_test), each behind a cargo feature.
//!
//! | feature | module | system |
//! |---|---|---|
//! | `token` (default) | [`token`] | an in-process authority issuing signed JWTs |
//! | `postgres` | `postgres` | PostgreSQL login roles with `VALID UNTIL` and exactly the scoped privileges |
//! | `redis` | `redis` | Redis ACL users with exactly the scoped keys, channels and commands |
//! | `mysql` | `mysql` | MariaDB/MySQL users with exactly the scoped grants, dropped by a server event at their ttl |
//! | `amqp` | `amqp` | RabbitMQ users with exactly the scoped vhost, queue and exchange permissions |
//! | `nats` | `nats` | NATS user JWTs with exactly the scoped subjects, expired by the server and revoked live |
//! | `mqtt` | `mqtt` | Mosquitto dynamic-security clients allowed exactly the scoped topics |
//!
//! Every provider implements [`jit_test::Provider`] and passes
//! [`jit_test::conformance::check`] against the real system it serves.

#[cfg(any(
    feature = "postgres",
    feature = "redis",
    feature = "mysql",
    feature = "amqp",
    feature = "nats",
    feature = "mqtt"
))]
mod handoff;

#[cfg(feature = "token")]
pub mod token;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "redis")]
pub mod redis;

/// The README's `rust` blocks, compiled and run as doc tests of this crate (a block that
/// needs a server is `rust,no_run,test_harness`: compiled, not run). Built with every
/// provider feature the README uses; add yours to the `cfg` with your README section.
#[cfg(all(
    doctest,
    feature = "token",
    feature = "postgres",
    feature = "redis",
    feature = "mysql",
    feature = "amqp",
    feature = "nats",
    feature = "mqtt"
))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
