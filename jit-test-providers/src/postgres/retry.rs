//! Which server errors are worth retrying, and a bounded backoff with jitter.

use std::time::Duration;

use tokio_postgres::error::SqlState;

/// How often one catalog operation is tried before its error is returned.
pub(crate) const ATTEMPTS: u32 = 8;

/// Errors of concurrent catalog changes that succeed when tried again: serialization
/// failure, deadlock, lock not available, and "tuple concurrently updated/deleted"
/// (parallel GRANTs on one object).
pub(crate) fn is_transient(error: &tokio_postgres::Error) -> bool {
    let Some(db) = error.as_db_error() else {
        return false;
    };
    let code = db.code();
    *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || (*code == SqlState::INTERNAL_ERROR && db.message().contains("concurrently"))
}

/// The SQLSTATE of a server error, if it is one.
pub(crate) fn code(error: &tokio_postgres::Error) -> Option<&SqlState> {
    error.as_db_error().map(|db| db.code())
}

/// A server error as one line: message, SQLSTATE, detail and hint; the client's own
/// message otherwise. Never holds a statement (which could hold a password verifier).
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => error.to_string(),
    }
}

/// Sleeps before attempt `attempt + 1`: 5 ms doubling up to 320 ms, with up to 100 %
/// jitter so that colliding transactions spread out.
pub(crate) async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(jit_test::rand::bytes(1)[0]) * base / 255;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}
