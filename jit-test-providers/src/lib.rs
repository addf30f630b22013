//! Real credential providers for [jit-test](jit_test), each behind a cargo feature.
//!
//! | feature | module | system |
//! |---|---|---|
//! | `token` (default) | [`token`] | an in-process authority issuing signed JWTs |
//! | `postgres` | `postgres` | PostgreSQL login roles with `VALID UNTIL` and exactly the scoped privileges |
//! | `amqp` | `amqp` | RabbitMQ users with exactly the scoped vhost, queue and exchange permissions |
//!
//! Every provider implements [`jit_test::Provider`] and passes
//! [`jit_test::conformance::check`] against the real system it serves.

#[cfg(feature = "token")]
pub mod token;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(feature = "amqp")]
pub mod amqp;
