//! The reaper: deletes users of crashed runs once the expiry in their name plus a grace
//! period has passed by the server's clock.
//!
//! A user is reaped only if its name parses as `jit_e<expiry>_<lease>`; a live lease of
//! any process or machine has an expiry in the future (the broker's watchdog deletes it at
//! its ttl), and users jit-test did not make are never touched. One process reaps at a
//! time: it holds the key [`REAPER_LOCK`] (`SET NX PX`); the others skip. Losing that key
//! (a `FLUSHALL`) only lets two reapers run at once, which is harmless: `ACL DELUSER` of a
//! user already gone is a no-op.

use std::time::Duration;

use ::redis::cmd;
use jit_test::ProviderError;

use super::Inner;
use super::principal::UserName;

/// The key a reaper holds while it works (a random token, expiring after a minute).
pub const REAPER_LOCK: &str = "jit-test:reaper-lock";

/// Deletes the lock only if it still holds our token.
const UNLOCK: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

pub(crate) async fn reap(inner: &Inner, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let token = jit_test::rand::hex(16);
    let locked: Option<String> = inner
        .admin
        .query(
            cmd("SET")
                .arg(REAPER_LOCK)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(60_000),
        )
        .await?;
    if locked.is_none() {
        return Ok(Vec::new()); // another process is reaping
    }
    let reaped = reap_expired(inner, grace).await;
    let unlock = cmd("EVAL")
        .arg(UNLOCK)
        .arg(1)
        .arg(REAPER_LOCK)
        .arg(&token)
        .clone();
    // A lock left behind expires on its own within a minute.
    let _: Result<i64, _> = inner.admin.query(&unlock).await;
    reaped
}

async fn reap_expired(inner: &Inner, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let users: Vec<String> = inner.admin.query(cmd("ACL").arg("USERS")).await?;
    let (now, _micros): (u64, u64) = inner.admin.query(&cmd("TIME")).await?;
    let mut reaped = Vec::new();
    for user in users {
        let Some(name) = UserName::parse(&user) else {
            continue;
        };
        if name.expires_at.saturating_add(grace.as_secs()) >= now {
            continue;
        }
        // One that resists is left for the next reap; the others go now.
        match super::revoke::delete(&inner.admin, &user).await {
            Ok(()) => reaped.push(user),
            Err(e) => eprintln!("jit-test: warning: the redis reaper could not remove {user}: {e}"),
        }
    }
    Ok(reaped)
}
