//! The reaper: removes clients (and roles) that crashed runs left behind, once the expiry
//! in their lease metadata plus a grace period has passed.
//!
//! One reaper works at a time, across processes and machines: it holds the role
//! [`REAPER_LOCK`], whose creation the plugin refuses while it exists; a lock older than
//! [`LOCK_TTL`] (its holder died) is removed and taken by the next reap. A client is
//! reaped only if its name has the prefix and its `textdescription` is lease metadata
//! saying it is reapable: a live lease of any process, or a client jit-test did not make,
//! is never touched. Mosquitto has no clock to read, so "now" is this machine's.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use jit_test::{LeaseMeta, ProviderError, unix_seconds};
use serde_json::{Value, json};

use super::control::{Control, Reply};
use super::{PREFIX, revoke};

/// The role a reaper holds while it works.
pub const REAPER_LOCK: &str = "jit-reaper-lock";

/// How long a lock is honoured: a reaper that died holding it is ignored past this.
pub const LOCK_TTL: Duration = Duration::from_secs(60);

pub(crate) async fn reap(control: &Control, grace: Duration) -> Result<Vec<String>, ProviderError> {
    if !lock(control).await? {
        return Ok(Vec::new()); // another process is reaping
    }
    let reaped = sweep(control, grace).await;
    let unlocked = control
        .send(
            "reap",
            vec![json!({ "command": "deleteRole", "rolename": REAPER_LOCK })],
        )
        .await;
    let reaped = reaped?;
    unlocked?;
    Ok(reaped)
}

/// Takes the lock; false if another reaper holds it (a stale lock is removed instead).
async fn lock(control: &Control) -> Result<bool, ProviderError> {
    let expires_at = unix_seconds(SystemTime::now() + LOCK_TTL);
    let created = control
        .send(
            "reap",
            vec![json!({
                "command": "createRole",
                "rolename": REAPER_LOCK,
                "textname": "jit-test reaper lock",
                "textdescription": json!({ "expires_at": expires_at }).to_string(),
            })],
        )
        .await?;
    if first(&created)?.error.is_none() {
        return Ok(true);
    }
    let held = control
        .send(
            "reap",
            vec![json!({ "command": "getRole", "rolename": REAPER_LOCK })],
        )
        .await?;
    let until = first(&held)?.data["role"]["textdescription"]
        .as_str()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|meta| meta["expires_at"].as_u64())
        .unwrap_or(0);
    if until < unix_seconds(SystemTime::now()) {
        control
            .send(
                "reap",
                vec![json!({ "command": "deleteRole", "rolename": REAPER_LOCK })],
            )
            .await?;
    }
    Ok(false)
}

/// Removes every reapable client and role; one that resists is left for the next reap.
async fn sweep(control: &Control, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let listed = control
        .send(
            "reap",
            vec![
                json!({ "command": "listClients", "verbose": true, "count": -1, "offset": 0 }),
                json!({ "command": "listRoles", "verbose": true, "count": -1, "offset": 0 }),
            ],
        )
        .await?;
    if let Some(why) = revoke::failure(&listed) {
        return Err(ProviderError::failed("reap", why));
    }
    let now = SystemTime::now();
    let clients = reapable(&listed[0].data["clients"], "username", now, grace);
    let roles = reapable(&listed[1].data["roles"], "rolename", now, grace);
    let mut reaped = Vec::new();
    for name in clients.union(&roles) {
        match revoke::revoke(control, name).await {
            Ok(()) if clients.contains(name) => reaped.push(name.clone()),
            Ok(()) => {}
            Err(e) => eprintln!("jit-test: warning: the mqtt reaper could not remove {name}: {e}"),
        }
    }
    Ok(reaped)
}

/// The names (under `key`) of the listed entries whose lease metadata is reapable.
fn reapable(list: &Value, key: &str, now: SystemTime, grace: Duration) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry[key].as_str()?;
            let meta: LeaseMeta = serde_json::from_str(entry["textdescription"].as_str()?).ok()?;
            (name.starts_with(PREFIX) && meta.is_reapable(now, grace)).then(|| name.to_owned())
        })
        .collect()
}

fn first(replies: &[Reply]) -> Result<&Reply, ProviderError> {
    replies
        .first()
        .ok_or_else(|| ProviderError::failed("reap", "the plugin sent an empty answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_expired_leases_with_the_prefix_are_reapable() {
        let meta = |expires_at: u64| {
            json!({ "lease": "l", "run": "r", "test": "t", "pid": 1, "host": "h",
                    "expires_at": expires_at })
            .to_string()
        };
        let now = SystemTime::now();
        let past = unix_seconds(now) - 100;
        let list = json!([
            { "username": "jit_old", "textdescription": meta(past) },
            { "username": "jit_live", "textdescription": meta(past + 1000) },
            { "username": "someone", "textdescription": meta(past) },
            { "username": "jit_nometa", "textdescription": "hello" },
            { "username": "jit_notext" },
        ]);
        let names = reapable(&list, "username", now, Duration::from_secs(10));
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["jit_old"]);
        assert!(reapable(&list, "username", now, Duration::from_secs(1000)).is_empty());
    }
}
