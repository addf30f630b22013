//! Revoking a role (NOLOGIN, end its sessions, drop what it owns in the databases where
//! it owns anything, drop it) and proving it dead (log in with the old password, require
//! a refusal): while the role still exists, NOLOGIN, or else after the drop.

use std::time::Duration;

use jit_test::{ErrorClass, Proof, ProviderError};
use tokio::sync::Semaphore;
use tokio_postgres::error::SqlState;

use super::class::classify_code;
use super::credential::{PgLease, connect};
use super::ident::{quote_ident, quote_literal};
use super::pool::Pool;
use super::retry::{ATTEMPTS, backoff, code, describe, is_transient};
use super::settings::{URL_VAR, address};

/// How long to wait for each of the role's sessions to end.
const TERMINATE_WAIT_MS: u32 = 5000;

fn owned_sql(role: &str, keep_owned_objects: bool) -> String {
    let role = quote_ident(role);
    if keep_owned_objects {
        format!("REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}")
    } else {
        format!("DROP OWNED BY {role}")
    }
}

/// The revocation batch, one transaction (one WAL flush): end the role's sessions, drop
/// what it owns or was granted here, drop it; after the commit, end any session that
/// logged in meanwhile (it has no privileges left: the role is gone). The role's oid is
/// kept in a session setting for that last step, since `pg_stat_activity` no longer
/// names a dropped role.
pub(crate) fn revoke_sql(role: &str, keep_owned_objects: bool) -> String {
    let ident = quote_ident(role);
    let sessions = "FROM pg_stat_activity WHERE usesysid = current_setting('jit.revoked')::oid \
                    AND pid <> pg_backend_pid()";
    format!(
        "BEGIN;\n\
         SELECT set_config('jit.revoked', \
                coalesce((SELECT oid::text FROM pg_roles WHERE rolname = {}), '0'), false);\n\
         SELECT pg_terminate_backend(pid, {TERMINATE_WAIT_MS}) {sessions};\n\
         {};\n\
         DROP ROLE {ident};\n\
         COMMIT;\n\
         SELECT pg_terminate_backend(pid) {sessions};",
        quote_literal(role),
        owned_sql(role, keep_owned_objects),
    )
}

/// Makes `role` unable to log in and ends its sessions, each statement committed on its
/// own; the fallback when the revocation transaction fails.
pub(crate) fn disable_sql(role: &str) -> String {
    format!(
        "ALTER ROLE {} NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE usename = {} AND pid <> pg_backend_pid();",
        quote_ident(role),
        quote_literal(role)
    )
}

/// `ALTER ROLE ... NOLOGIN`, committed without waiting for its WAL flush: the drop that
/// follows is flushed after it, so the change is durable whenever the revocation is.
pub(crate) fn bar_login_sql(role: &str) -> String {
    format!(
        "BEGIN; SET LOCAL synchronous_commit TO off; ALTER ROLE {} NOLOGIN; COMMIT",
        quote_ident(role)
    )
}

/// Revokes the lease's role ([`revoke`]), proving its credential dead on the way: the
/// role is made NOLOGIN, the old password is tried while the role exists (the server
/// checks it against the role's own verifier, of `scram_iterations`, then refuses the
/// login), and the role is dropped after that. The outcome is kept in the lease for
/// [`Provider::prove_dead`](jit_test::Provider::prove_dead). When the role is gone
/// already, or the attempt does not get an answer, nothing is kept, and the proof logs
/// in after the drop: for a role that does not exist, PostgreSQL answers with a made-up
/// SCRAM challenge of 4096 iterations, which the client would have to compute.
pub(crate) async fn revoke_proving(
    pool: &Pool,
    logins: &Semaphore,
    lease: &PgLease,
    keep_owned_objects: bool,
) -> Result<(), ProviderError> {
    let barred = {
        let mut conn = pool.get().await?;
        let barred = conn
            .client()
            .batch_execute(&bar_login_sql(&lease.role))
            .await;
        if barred.is_err() {
            conn.rollback().await;
        }
        barred.is_ok()
    };
    let proof = if barred {
        let _permit = logins.acquire().await.expect("never closed");
        try_login(lease).await.ok()
    } else {
        None
    };
    revoke(pool, &lease.role, keep_owned_objects).await?;
    if let Some(proof) = proof {
        *lease.proof.lock().expect("not poisoned") = Some(proof);
    }
    Ok(())
}

/// The proof: what the login attempt made while revoking found, or else a login attempt
/// now.
pub(crate) async fn prove_dead(
    lease: &PgLease,
    logins: &Semaphore,
) -> Result<Proof, ProviderError> {
    let kept = lease.proof.lock().expect("not poisoned").take();
    match kept {
        Some(proof) => Ok(proof),
        None => {
            let _permit = logins.acquire().await.expect("never closed");
            try_login(lease).await
        }
    }
}

/// Revokes `role`. Idempotent: a role that does not exist counts as revoked. Collisions
/// with concurrent catalog changes are retried with backoff; objects the role owns in
/// other databases are dropped there (or handed to the admin where other objects depend
/// on them). Whenever the drop fails, the role is made NOLOGIN and its sessions ended
/// before anything else is tried.
pub(crate) async fn revoke(
    pool: &Pool,
    role: &str,
    keep_owned_objects: bool,
) -> Result<(), ProviderError> {
    let sql = revoke_sql(role, keep_owned_objects);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut conn = pool.get().await?;
        let error = match conn.client().simple_query(&sql).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        conn.rollback().await;
        if code(&error) == Some(&SqlState::UNDEFINED_OBJECT) {
            return Ok(()); // already gone
        }
        // The role could not be dropped yet: disable it now (committed on its own), so
        // it is unusable while the drop is retried, or after it gave up.
        let _ = conn.client().simple_query(&disable_sql(role)).await;
        drop(conn);
        match code(&error) {
            Some(c) if *c == SqlState::DEPENDENT_OBJECTS_STILL_EXIST && attempt < ATTEMPTS => {
                drop_owned_everywhere(pool, role).await?;
            }
            _ if is_transient(&error) && attempt < ATTEMPTS => backoff(attempt).await,
            _ => {
                return Err(ProviderError::failed(
                    "revoke",
                    format!(
                        "role {role}: {} (after {attempt} attempts). It expires by itself; the \
                         reaper removes it later",
                        describe(&error)
                    ),
                ));
            }
        }
    }
}

/// Drops what `role` owns or was granted in every database where it has any, handing
/// objects to the admin where dropping them would break other objects.
async fn drop_owned_everywhere(pool: &Pool, role: &str) -> Result<(), ProviderError> {
    let databases: Vec<String> = {
        let conn = pool.get().await?;
        let rows = conn
            .client()
            .query(
                "SELECT DISTINCT d.datname::text FROM pg_shdepend s \
                 JOIN pg_database d ON d.oid = s.dbid \
                 WHERE s.refclassid = 'pg_authid'::regclass \
                   AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1::text::name) \
                   AND d.datallowconn",
                &[&role],
            )
            .await
            .map_err(|e| ProviderError::failed("revoke", describe(&e)))?;
        rows.iter().map(|r| r.get(0)).collect()
    };
    for database in databases {
        let client = pool.connect(Some(&database)).await?;
        let dropped = client.batch_execute(&owned_sql(role, false)).await;
        let result = match dropped {
            Err(e) if code(&e) == Some(&SqlState::DEPENDENT_OBJECTS_STILL_EXIST) => {
                client.batch_execute(&owned_sql(role, true)).await
            }
            other => other,
        };
        match result {
            Ok(()) => {}
            Err(e) if code(&e) == Some(&SqlState::UNDEFINED_OBJECT) => return Ok(()),
            Err(e) => {
                return Err(ProviderError::failed(
                    "revoke",
                    format!(
                        "DROP OWNED BY {role} in database {database:?}: {}",
                        describe(&e)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Logs in with the old credential and requires an authentication failure
/// (SQLSTATE 28P01 or 28000). A login refused for another passing reason (too many
/// connections, server starting) is tried again.
async fn try_login(lease: &PgLease) -> Result<Proof, ProviderError> {
    let timeout = lease
        .config
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(5))
        + Duration::from_secs(1);
    let unreachable = |reason: String| ProviderError::Unreachable {
        system: "PostgreSQL",
        address: address(&lease.config),
        setting: URL_VAR,
        reason,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match tokio::time::timeout(timeout, connect(&lease.config)).await {
            Err(_) => return Err(unreachable("no answer to the login attempt".into())),
            Ok(Ok(_client)) => return Ok(Proof::Accepted),
            Ok(Err(e)) => e,
        };
        let Some(db) = error.as_db_error() else {
            return Err(unreachable(error.to_string()));
        };
        let code = db.code();
        if classify_code(code) == ErrorClass::Unauthenticated {
            return Ok(Proof::Refused(format!(
                "SQLSTATE {}: {}",
                code.code(),
                db.message()
            )));
        }
        let passing =
            *code == SqlState::TOO_MANY_CONNECTIONS || *code == SqlState::CANNOT_CONNECT_NOW;
        if passing && attempt < ATTEMPTS {
            backoff(attempt).await;
            continue;
        }
        return Err(ProviderError::failed(
            "proof",
            format!(
                "logging in as {} failed, but not with an authentication error: {}",
                lease.role,
                describe(&error)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_ends_sessions_before_and_after_dropping_and_quotes_the_role() {
        let sql = revoke_sql("jit_a\"b", false);
        let terminate = sql.find("pg_terminate_backend(pid, 5000)").unwrap();
        let drop_owned = sql.find("DROP OWNED BY \"jit_a\"\"b\"").unwrap();
        let drop_role = sql.find("DROP ROLE \"jit_a\"\"b\"").unwrap();
        let commit = sql.find("COMMIT;").unwrap();
        let sweep = sql.rfind("pg_terminate_backend(pid)").unwrap();
        assert!(terminate < drop_owned && drop_owned < drop_role && drop_role < commit);
        assert!(commit < sweep);
        assert!(sql.contains("rolname = E'jit_a\"b'"));
        assert_eq!(
            bar_login_sql("jit_a\"b"),
            "BEGIN; SET LOCAL synchronous_commit TO off; ALTER ROLE \"jit_a\"\"b\" NOLOGIN; COMMIT"
        );
        let disable = disable_sql("jit_a\"b");
        assert!(
            disable.starts_with("ALTER ROLE \"jit_a\"\"b\" NOLOGIN;"),
            "{disable}"
        );
        assert!(disable.contains("usename = E'jit_a\"b'"), "{disable}");
        let keep = revoke_sql("jit_a", true);
        assert!(
            keep.contains("REASSIGN OWNED BY \"jit_a\" TO CURRENT_USER; DROP OWNED BY \"jit_a\"")
        );
    }
}
