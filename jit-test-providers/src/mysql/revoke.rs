//! Revoking a user (lock the account, kill its connections, drop it and its event) and
//! proving it dead (log in with the old password, require a refusal).

use std::time::Duration;

use jit_test::{Proof, ProviderError};
use mysql_async::prelude::Queryable as _;

use super::credential::MysqlLease;
use super::expiry::drop_event_sql;
use super::ident::{quote_account, quote_literal};
use super::settings::{URL_VAR, address};
use super::{Inner, errors};

/// How often revocation and the proof's login are tried before giving up.
pub(crate) const ATTEMPTS: u32 = 8;

/// The revocation batch: lock the account (no new login from here on), kill every
/// connection of the user (on any host; a live session keeps db-level privileges
/// cached, so it must end), drop the user and its expiry event. Every statement is a
/// no-op for a user that is already gone.
pub(crate) fn revoke_sql(user: &str, host: &str) -> String {
    let account = quote_account(user, host);
    format!(
        "ALTER USER IF EXISTS {account} ACCOUNT LOCK;\n\
         KILL CONNECTION USER {};\n\
         DROP USER IF EXISTS {account};\n\
         {};",
        quote_literal(user),
        drop_event_sql(user)
    )
}

/// What one revocation attempt came to.
enum Attempt {
    Done,
    Retry(String),
    GiveUp(String),
}

/// Revokes the user. Idempotent; collisions and lost connections are retried with
/// backoff; loud when it gives up.
pub(crate) async fn revoke(inner: &Inner, user: &str, host: &str) -> Result<(), ProviderError> {
    let sql = revoke_sql(user, host);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let reason = match try_revoke(inner, &sql).await {
            Attempt::Done => return Ok(()),
            Attempt::Retry(_) if attempt < ATTEMPTS => {
                errors::backoff(attempt).await;
                continue;
            }
            Attempt::Retry(reason) | Attempt::GiveUp(reason) => reason,
        };
        return Err(ProviderError::failed(
            "revoke",
            format!(
                "user {user}: {reason} (after {attempt} attempts). Its event drops it at the \
                 ttl; the reaper removes what is left"
            ),
        ));
    }
}

async fn try_revoke(inner: &Inner, sql: &str) -> Attempt {
    let mut conn = match inner.conn().await {
        Ok(conn) => conn,
        Err(e) => return Attempt::Retry(e.to_string()),
    };
    match conn.query_drop(sql).await {
        Ok(()) => Attempt::Done,
        Err(e) if errors::is_transient(&e) => Attempt::Retry(errors::describe(&e)),
        Err(e) => Attempt::GiveUp(errors::describe(&e)),
    }
}

/// Logs in with the old credential and requires an authentication failure: 1045
/// (access denied: the user is gone), 1698 (the same, when the server imitated another
/// account's authentication plugin) or 4151 (the account is locked). A login refused for
/// a passing reason (too many connections) is tried again.
pub(crate) async fn prove_dead(
    lease: &MysqlLease,
    timeout: Duration,
) -> Result<Proof, ProviderError> {
    let unreachable = |reason: String| ProviderError::Unreachable {
        system: "MariaDB",
        address: address(&lease.opts),
        setting: URL_VAR,
        reason,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error =
            match tokio::time::timeout(timeout, mysql_async::Conn::new(lease.opts.clone())).await {
                Err(_) => return Err(unreachable("no answer to the login attempt".into())),
                Ok(Ok(conn)) => {
                    let _ = conn.disconnect().await;
                    return Ok(Proof::Accepted);
                }
                Ok(Err(e)) => e,
            };
        let mysql_async::Error::Server(server) = &error else {
            return Err(unreachable(error.to_string()));
        };
        match server.code {
            errors::ACCESS_DENIED | errors::ACCESS_DENIED_NO_PASSWORD | errors::ACCOUNT_LOCKED => {
                return Ok(Proof::Refused(server.to_string()));
            }
            errors::TOO_MANY_CONNECTIONS | errors::TOO_MANY_USER_CONNECTIONS
                if attempt < ATTEMPTS =>
            {
                errors::backoff(attempt).await;
            }
            _ => {
                return Err(ProviderError::failed(
                    "proof",
                    format!(
                        "logging in as {} failed, but not with an authentication error: {server}",
                        lease.user
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_locks_kills_then_drops_and_quotes_the_user() {
        let sql = revoke_sql("jit_a'b", "127.0.0.1");
        let lock = sql
            .find("ALTER USER IF EXISTS 'jit_a''b'@'127.0.0.1' ACCOUNT LOCK;")
            .unwrap();
        let kill = sql.find("KILL CONNECTION USER 'jit_a''b';").unwrap();
        let drop = sql
            .find("DROP USER IF EXISTS 'jit_a''b'@'127.0.0.1';")
            .unwrap();
        let event = sql
            .find("DROP EVENT IF EXISTS `jit_test`.`jit_a'b`;")
            .unwrap();
        assert!(lock < kill && kill < drop && drop < event, "{sql}");
    }
}
