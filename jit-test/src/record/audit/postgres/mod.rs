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
//! the writers' role) cannot change or remove what was written. It can add rows; a row
//! added to another writer's chain after that writer's last seal is reported unsealed,
//! and one signed with a key pair of its own is caught only by comparing the keys the
//! report prints with those kept off the machine (as for the file). The table's owner
//! (or a superuser) can rewrite rows and recompute the chain: only copies kept elsewhere
//! show what the run wrote. Removing a writer's last rows leaves a shorter valid chain.
//!
//! **Fail closed, bounded.** An append is handed to a thread of the sink's own (with its
//! own runtime and connection), so it never waits on the runtime that calls it. It tries
//! [`ATTEMPTS`] times, each bounded by [`ATTEMPT_TIMEOUT`] (connecting included); after
//! a failure it reconnects and looks whether the rows landed before it tries again. An
//! append that does not land in time returns the error, and the broker fails the test.
//!
//! The URL must not hold a password (it would show in messages): give it in
//! `JIT_TEST_AUDIT_PASSWORD`, or let `pg_hba.conf` authenticate the role otherwise.

mod read;
mod schema;
mod writer;

use std::io;
use std::time::Duration;

use tokio_postgres::NoTls;

pub use read::read_run;
pub use schema::{VERSION, migrate};
pub use writer::PgSink;

/// How many times an append is tried.
pub const ATTEMPTS: u32 = 3;
/// How long one try may take, connecting included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The variable holding the password of the sink's role, if it needs one.
pub const PASSWORD_VAR: &str = "JIT_TEST_AUDIT_PASSWORD";

/// The connection settings of `url`, with the password from [`PASSWORD_VAR`]. A URL
/// holding a password is refused (messages would show it).
fn settings(url: &str) -> io::Result<tokio_postgres::Config> {
    let shown = redact(url);
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        invalid(format!(
            "audit_log = {shown:?} is not a PostgreSQL URL ({e}); set audit_log or JIT_TEST_AUDIT_LOG"
        ))
    })?;
    if config.get_password().is_some() {
        return Err(invalid(format!(
            "audit_log = {shown:?} holds a password; remove it from the URL and give it in \
             {PASSWORD_VAR}"
        )));
    }
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        config.password(password);
    }
    config.connect_timeout(ATTEMPT_TIMEOUT);
    Ok(config)
}

/// Connects to `url` and drives the connection on the current runtime.
async fn connect(url: &str) -> io::Result<tokio_postgres::Client> {
    let config = settings(url)?;
    let (client, connection) = tokio::time::timeout(ATTEMPT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting took more than {ATTEMPT_TIMEOUT:?}"),
            )
        })?
        .map_err(|e| io::Error::other(describe(&e)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with any password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            return format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]);
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A server error with its SQLSTATE, else the client's error.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Runs `work` to completion on a runtime of its own, on a thread of its own, so that it
/// can be called from anywhere, inside a runtime or not.
fn block_on<T: Send>(work: impl Future<Output = io::Result<T>> + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(work)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the audit reader panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_and_is_refused_in_the_url() {
        assert_eq!(
            redact("postgres://w:s3cret@db:5432/ci?sslmode=disable"),
            "postgres://w:***@db:5432/ci?sslmode=disable"
        );
        assert_eq!(redact("postgres://w@db/ci"), "postgres://w@db/ci");
        assert_eq!(
            redact("host=db password=s3cret user=w"),
            "host=db password=*** user=w"
        );
        let err = settings("postgres://w:s3cret@db/ci")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(PASSWORD_VAR) && !err.contains("s3cret"),
            "{err}"
        );
        let err = settings("postgres://w:s3cret@db:notaport/ci")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
