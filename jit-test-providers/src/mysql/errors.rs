//! MariaDB's error codes as the provider reads them: the classification behind
//! `assert_denied!` and `assert_unauthenticated!`, which errors are worth retrying, and
//! a bounded backoff.

use std::time::Duration;

use jit_test::ErrorClass;

/// `ER_ACCESS_DENIED_ERROR`: a bad login, or a user that no longer exists.
pub(crate) const ACCESS_DENIED: u16 = 1045;
/// `ER_ACCOUNT_HAS_BEEN_LOCKED`.
pub(crate) const ACCOUNT_LOCKED: u16 = 4151;
/// `ER_ACCESS_DENIED_NO_PASSWORD_ERROR` (SQLSTATE 28000): MariaDB answers a login of an
/// unknown user with the authentication plugin of some other account, so as not to tell
/// which users exist; when that plugin is one the client answers without a password
/// (root's `unix_socket`), the refusal is 1698 rather than 1045.
pub(crate) const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
/// `ER_CON_COUNT_ERROR`.
pub(crate) const TOO_MANY_CONNECTIONS: u16 = 1040;
/// `ER_TOO_MANY_USER_CONNECTIONS`.
pub(crate) const TOO_MANY_USER_CONNECTIONS: u16 = 1203;
/// `ER_OPTION_PREVENTS_STATEMENT`: `--skip-grant-tables` or `--read-only`.
pub(crate) const OPTION_PREVENTS_STATEMENT: u16 = 1290;

/// Denials: 1142 table, 1143 column, 1044 database, 1370 routine, 1227 "you need the
/// SUPER (or another) privilege", 1045, 1698 and 4151 bad, vanished or locked login; everything else
/// (1927 or a lost connection after a kill, a missing table) is neither.
pub(crate) fn classify_code(code: u16) -> ErrorClass {
    match code {
        1142 | 1143 | 1044 | 1370 | 1227 => ErrorClass::Denied,
        ACCESS_DENIED | ACCESS_DENIED_NO_PASSWORD | ACCOUNT_LOCKED => ErrorClass::Unauthenticated,
        _ => ErrorClass::Other,
    }
}

/// Deadlocks, lock wait timeouts and lost connections: worth another try.
pub(crate) fn is_transient(error: &mysql_async::Error) -> bool {
    match error {
        mysql_async::Error::Server(e) => matches!(e.code, 1205 | 1213 | TOO_MANY_CONNECTIONS),
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        _ => false,
    }
}

/// An error as one line. A server error holds the code, SQLSTATE and message, never the
/// statement.
pub(crate) fn describe(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Server(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// Sleeps before attempt `attempt + 1`: 5 ms doubling up to 320 ms, with up to 100 %
/// jitter so that colliding statements spread out.
pub(crate) async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(jit_test::rand::bytes(1)[0]) * base / 255;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        for code in [1142, 1143, 1044, 1370, 1227] {
            assert_eq!(classify_code(code), ErrorClass::Denied, "{code}");
        }
        assert_eq!(classify_code(1045), ErrorClass::Unauthenticated);
        assert_eq!(classify_code(4151), ErrorClass::Unauthenticated);
        assert_eq!(classify_code(1698), ErrorClass::Unauthenticated);
        assert_eq!(classify_code(1927), ErrorClass::Other);
        assert_eq!(classify_code(1146), ErrorClass::Other);
    }
}
