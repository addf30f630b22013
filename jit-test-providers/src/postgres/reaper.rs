//! The reaper: removes login roles that crashed runs left behind, once their expiry plus
//! a grace period has passed by the server's clock, and permission sets no role uses.
//!
//! It holds an advisory lock while it works, so one process reaps at a time; the others
//! skip. A role is reaped only if it is a member of `jit_lease`, has the prefix, and its
//! comment is lease metadata saying it is reapable: a live lease of any process or
//! machine, or a role jit-test did not make, is never touched. Whether a lease is live
//! is judged by its expiry on the server's clock alone, never by the pid in its metadata:
//! a pid names a process on its own host only (the hosts of a run share this server, not
//! their process tables), so a lease of another machine is never taken for a crashed one.

use std::time::{Duration, UNIX_EPOCH};

use jit_test::{LeaseMeta, ProviderError};

use super::ident::quote_ident;
use super::permission_set::{SET_PREFIX, lock_key};
use super::retry::describe;
use super::revoke;
use super::roles::{GROUP_ROLE, LOCK_CLASS, PREFIX, REAPER_LOCK};
use super::state::Inner;

pub(crate) async fn reap(provider: &Inner, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let failed = |e: tokio_postgres::Error| ProviderError::failed("reap", describe(&e));
    // A connection of its own: the session-level lock ends with it, whatever happens.
    let lock = provider.pool.connect(None).await?;
    let locked: bool = lock
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&REAPER_LOCK.0, &REAPER_LOCK.1],
        )
        .await
        .map_err(failed)?
        .get(0);
    if !locked {
        return Ok(Vec::new()); // another process is reaping
    }
    let rows = lock
        .query(
            "SELECT r.rolname::text, shobj_description(r.oid, 'pg_authid'), \
                    extract(epoch FROM now())::float8 \
             FROM pg_roles r \
             JOIN pg_auth_members m ON m.member = r.oid \
             JOIN pg_roles g ON g.oid = m.roleid AND g.rolname = $1::text::name \
             WHERE starts_with(r.rolname::text, $2::text)",
            &[&GROUP_ROLE, &PREFIX],
        )
        .await
        .map_err(failed)?;
    let mut reaped = Vec::new();
    for row in rows {
        let (name, comment, now): (String, Option<String>, f64) =
            (row.get(0), row.get(1), row.get(2));
        let server_now = UNIX_EPOCH + Duration::from_secs_f64(now.max(0.0));
        let Some(meta) = comment.and_then(|c| serde_json::from_str::<LeaseMeta>(&c).ok()) else {
            continue;
        };
        if meta.is_reapable(server_now, grace) {
            // One that resists is left for the next reap; the others go now.
            match revoke::revoke(&provider.pool, &name, provider.settings.keep_owned_objects).await
            {
                Ok(()) => reaped.push(name),
                Err(e) => {
                    eprintln!("jit-test: warning: the pg reaper could not remove {name}: {e}")
                }
            }
        }
    }
    reaped.extend(reap_sets(provider, &lock, grace).await?);
    Ok(reaped)
}

/// Drops permission sets that have no members and were created more than `grace` ago,
/// each under its exclusive advisory lock (a grant adding a member holds it shared).
async fn reap_sets(
    provider: &Inner,
    lock: &tokio_postgres::Client,
    grace: Duration,
) -> Result<Vec<String>, ProviderError> {
    let failed = |e: tokio_postgres::Error| ProviderError::failed("reap", describe(&e));
    let rows = lock
        .query(
            "SELECT r.rolname::text, shobj_description(r.oid, 'pg_authid'), \
                    extract(epoch FROM now())::float8 \
             FROM pg_roles r \
             WHERE starts_with(r.rolname::text, $1::text) AND NOT r.rolcanlogin \
               AND NOT EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid = r.oid)",
            &[&SET_PREFIX],
        )
        .await
        .map_err(failed)?;
    let mut dropped = Vec::new();
    for row in rows {
        let (name, comment, now): (String, Option<String>, f64) =
            (row.get(0), row.get(1), row.get(2));
        let created = comment
            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .filter(|v| v.get("jit_test_permission_set").is_some())
            .and_then(|v| v.get("created_at").and_then(serde_json::Value::as_f64));
        let Some(created) = created else {
            continue; // not one of ours
        };
        if created + grace.as_secs_f64() >= now {
            continue;
        }
        let key = lock_key(&name[SET_PREFIX.len()..]);
        let ident = quote_ident(&name);
        let mut conn = provider.pool.get().await?;
        let sql = format!(
            "BEGIN;\n\
             SELECT pg_advisory_xact_lock({LOCK_CLASS}, {key});\n\
             SELECT count(*) AS jit_members FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
              WHERE r.rolname = {lit};",
            lit = super::ident::quote_literal(&name)
        );
        let members = match conn.client().simple_query(&sql).await {
            Ok(messages) => messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r)
                    if r.columns().first().map(|c| c.name()) == Some("jit_members") =>
                {
                    r.get(0).map(|v| v != "0")
                }
                _ => None,
            }),
            Err(e) => {
                conn.rollback().await;
                return Err(failed(e));
            }
        };
        let outcome = if members == Some(false) {
            conn.client()
                .simple_query(&format!(
                    "DROP OWNED BY {ident}; DROP ROLE {ident}; COMMIT;"
                ))
                .await
                .map(|_| true)
        } else {
            conn.client().batch_execute("COMMIT").await.map(|_| false)
        };
        match outcome {
            Ok(true) => dropped.push(name),
            Ok(false) => {}
            // Dropping a set can collide with concurrent grants; the next reap retries.
            Err(_) => conn.rollback().await,
        }
    }
    Ok(dropped)
}
