//! The reaper: removes what crashed runs left behind once expiry plus grace has passed
//! by the server's clock: users whose event did not run (the event scheduler was off),
//! and the preserved events of leases that ended by expiry.
//!
//! It holds the named lock [`REAPER_LOCK`] while it works, so one process reaps at a
//! time; the others skip. Only events in [`EVENT_SCHEMA`](super::EVENT_SCHEMA) named
//! `jit_…` whose comment is lease metadata saying the lease is over are touched: a live
//! lease of any process or machine, or anything jit-test did not make, is left alone.

use std::time::Duration;

use jit_test::ProviderError;
use mysql_async::prelude::Queryable as _;

use super::expiry::{EVENT_SCHEMA, EventMeta};
use super::grant::PREFIX;
use super::{Inner, errors, revoke};

/// The named lock (`GET_LOCK`) a reaper holds while it works. A session holding it keeps
/// every reaper away (they skip rather than wait).
pub const REAPER_LOCK: &str = "jit_test.reaper";

/// Reaps; returns the users removed (or whose leftover event was).
pub(crate) async fn reap(inner: &Inner, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let failed = |e: mysql_async::Error| ProviderError::failed("reap", errors::describe(&e));
    // A connection of its own: the lock ends with it, whatever happens.
    let mut lock = inner.connect().await?;
    let locked: Option<Option<i64>> = lock
        .exec_first("SELECT GET_LOCK(?, 0)", (REAPER_LOCK,))
        .await
        .map_err(failed)?;
    if locked.flatten() != Some(1) {
        return Ok(Vec::new()); // another process is reaping
    }
    let rows: Vec<(String, String, u64)> = lock
        .exec(
            "SELECT EVENT_NAME, EVENT_COMMENT, UNIX_TIMESTAMP() FROM information_schema.EVENTS \
             WHERE EVENT_SCHEMA = ? AND EVENT_NAME LIKE ?",
            (EVENT_SCHEMA, format!("{}%", PREFIX.replace('_', "\\_"))),
        )
        .await
        .map_err(failed)?;
    let mut reaped = Vec::new();
    for (user, comment, now) in rows {
        let Ok(meta) = serde_json::from_str::<EventMeta>(&comment) else {
            continue; // not one of ours
        };
        if !reapable(meta, now, grace) {
            continue;
        }
        let hosts: Vec<String> = lock
            .exec("SELECT Host FROM mysql.user WHERE User = ?", (&user,))
            .await
            .map_err(failed)?;
        // The event alone when it ran (the user is gone); the user too when it did not.
        let host = hosts
            .into_iter()
            .next()
            .unwrap_or_else(|| inner.settings.account_host.clone());
        match revoke::revoke(inner, &user, &host).await {
            Ok(()) => reaped.push(user),
            Err(e) => eprintln!("jit-test: warning: the mysql reaper could not remove {user}: {e}"),
        }
    }
    let _ = lock.exec_drop("DO RELEASE_LOCK(?)", (REAPER_LOCK,)).await;
    Ok(reaped)
}

/// Whether the lease is over by the server's clock (`now`, Unix seconds), plus `grace`:
/// the rule of [`LeaseMeta::is_reapable`](jit_test::LeaseMeta::is_reapable).
fn reapable(meta: EventMeta, now: u64, grace: Duration) -> bool {
    meta.expires_at.saturating_add(grace.as_secs()) < now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leases_past_expiry_and_grace_are_reapable() {
        let meta = EventMeta {
            expires_at: 1000,
            pid: 1,
        };
        assert!(!reapable(meta, 1000, Duration::ZERO));
        assert!(reapable(meta, 1001, Duration::ZERO));
        assert!(!reapable(meta, 1005, Duration::from_secs(10)));
        assert!(reapable(meta, 1011, Duration::from_secs(10)));
    }
}
