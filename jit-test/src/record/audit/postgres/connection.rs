//! Connecting to the audit table: settings from the URL (never with a password in it),
//! bounded connects, server errors with their SQLSTATE, and work run to completion from
//! anywhere.

use std::io;
use std::time::Duration;

use tokio_postgres::NoTls;

/// How many times an append is tried.
pub const ATTEMPTS: u32 = 3;
/// How long one try may take, connecting included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The variable holding the password of the sink's role, if it needs one.
pub const PASSWORD_VAR: &str = "JIT_TEST_AUDIT_PASSWORD";

/// The connection settings of `url`, with the password from [`PASSWORD_VAR`]. A URL
/// holding a password is refused (messages would show it).
pub(super) fn settings(url: &str) -> io::Result<tokio_postgres::Config> {
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
pub(super) async fn connect(url: &str) -> io::Result<tokio_postgres::Client> {
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
pub(super) fn redact(url: &str) -> String {
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

pub(super) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A server error with its SQLSTATE, else the client's error.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Runs `work` to completion on a runtime of its own, on a thread of its own, so that it
/// can be called from anywhere, inside a runtime or not.
pub(super) fn block_on<T: Send>(work: impl Future<Output = io::Result<T>> + Send) -> io::Result<T> {
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
