//! The audit trail: an append-only, SHA-256 hash-chained JSON Lines file.
//!
//! Each line is one [`Event`] (its kind and that kind's own fields) plus `v` (the format
//! version, [`FORMAT`]), `prev` (the hash of the line before, 64 zeros for the first)
//! and, last, `hash`: the SHA-256 of the line's text without its `,"hash":…` tail. Lines
//! written before the format had a version are still read. Appends take an exclusive
//! file lock, so any number of test processes can share one log without interleaving or
//! losing lines. Events never contain secrets. Writers append through a [`Sink`], the
//! file by default.
//!
//! [`verify`] checks a log and returns typed [`Problem`]s; [`read`] also returns its
//! events, for the [report](crate::report). [`read_run`] reads one run at the cost of
//! that run, from a checkpoint that a reader before it left beside the log; [`prune`]
//! removes old runs so that the rest still verifies.
//!
//! With the feature `postgres-audit`, `audit_log = "postgres://…"` sends the events to a
//! PostgreSQL table instead (`postgres`), for a run split over many machines.

mod checkpoint;
mod event;
mod file;
mod key;
mod legacy;
mod line;
#[cfg(feature = "postgres-audit")]
pub mod postgres;
mod problem;
mod prune;
mod run;
mod runs;
mod sidecar;
mod sink;
mod table;
mod verify;

pub use event::{Event, EventKind, FORMAT};
pub use file::AuditLog;
pub use key::{HmacKey, KEY_FILE_VAR, KEY_VAR};
pub use problem::{Finding, Problem, ProblemKind};
pub use prune::{Pruned, prune};
pub use run::read_run;
pub use runs::latest as latest_run;
pub use sink::{FailingSink, Sink};
pub use table::read_table;
pub use verify::{Contents, Verification, read, read_from, verify};
