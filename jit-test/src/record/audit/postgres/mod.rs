//! The audit trail in a PostgreSQL table, for a run split over many machines
//! (`audit_log = "postgres://…"`; feature `postgres-audit`).
//!
//! **One chain per writer.** Every test process is a writer with an id of its own
//! (`<host>/<pid>/<random>`) and keeps its own hash chain: row `seq` of a writer holds
//! the same line the file would (`v`, `prev`, the event, keyed or signed `hash`), chained
//! to the writer's row `seq - 1`. An append is one `INSERT` of consecutive rows, so
//! writers on any number of machines append concurrently with no lock between them; the
//! primary key `(run, writer, seq)` makes a row unique and an append all or nothing. One
//! chain per run would need every writer to read the head and insert under a lock held
//! across the network: a round trip more per append, and every machine of the run
//! waiting on the slowest one. [`read_run`] checks each writer's chain (no gap in `seq`,
//! each `prev` the hash before, keys and seals as in the file) and follows the leases
//! across all writers of the run: every grant revoked (or reaped) and proven dead.
//!
//! **Who may change what.** `jit-test migrate` (run as the table's owner) creates the
//! schema `jit_audit` with versioned, idempotent migrations, and grants the writers' role
//! `INSERT` and `SELECT` only: a writer's `UPDATE`, `DELETE` or `TRUNCATE` is refused by
//! the server (SQLSTATE 42501), and the primary key refuses a row that would replace
//! another. What this protects against, and no more: a test process (or anyone holding
//! the writers' role) cannot change or remove what was written. It can add rows: a row
//! added to another writer's chain is reported (it names another key than the writer's
//! first row, or follows the writer's last seal unsealed); rows under a writer id of its
//! own, signed with a key pair of its own, are caught only by comparing the keys the
//! report prints with those kept off the machine (as for the file). The table's owner
//! (or a superuser) can rewrite rows and recompute the chain: only copies kept elsewhere
//! show what the run wrote. Removing a writer's last rows leaves a shorter valid chain.
//!
//! **Fail closed, bounded.** An append is handed to a thread of the sink's own (with its
//! own runtime and connection), so it never waits on the runtime that calls it. That
//! thread connects as soon as the sink is made, while the test sets up and its providers
//! grant and reap. An append is tried [`ATTEMPTS`] times, each bounded by
//! [`ATTEMPT_TIMEOUT`] (connecting included); after a failure it reconnects and looks
//! whether the rows landed before it tries again. An append that does not land in time
//! returns the error, and the broker fails the test.
//!
//! The URL must not hold a password (it would show in messages): give it in
//! `JIT_TEST_AUDIT_PASSWORD`, or let `pg_hba.conf` authenticate the role otherwise.

mod connection;
mod read;
mod schema;
mod writer;

pub use connection::{ATTEMPT_TIMEOUT, ATTEMPTS, PASSWORD_VAR};
pub use read::read_run;
pub use schema::{VERSION, migrate};
pub use writer::PgSink;
