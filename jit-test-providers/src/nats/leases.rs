//! The lease register: one small file per granted user (its public key and
//! [`LeaseMeta`], no secret) in a directory of this machine, removed at revocation. The
//! server keeps no record of users (they live in their JWTs), so this is where the
//! reaper of any process finds the users of crashed runs, to record them as reaped once
//! their expiry plus grace has passed (the server refuses them by then).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jit_test::{LeaseMeta, ProviderError};

/// The register of `account`'s users, in the system's temporary directory.
pub(crate) fn dir(account: &str) -> PathBuf {
    std::env::temp_dir().join(format!("jit-test-nats-leases-{account}"))
}

fn file(dir: &Path, user: &str) -> PathBuf {
    dir.join(format!("{user}.json"))
}

/// Records `user`'s lease.
pub(crate) fn record(dir: &Path, user: &str, meta: &LeaseMeta) -> Result<(), ProviderError> {
    let failed = |e: std::io::Error| {
        ProviderError::failed(
            "grant",
            format!("cannot record the lease in {}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let json = serde_json::to_vec(meta).expect("lease metadata serialises");
    std::fs::write(file(dir, user), json).map_err(failed)
}

/// Forgets `user`'s lease (revoked). Already forgotten is fine.
pub(crate) fn forget(dir: &Path, user: &str) {
    let _ = std::fs::remove_file(file(dir, user));
}

/// Forgets the leases whose expiry plus `grace` has passed; returns their users.
pub(crate) fn reap(dir: &Path, grace: Duration) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new(); // nothing granted on this machine yet
    };
    let now = SystemTime::now();
    let mut reaped = Vec::new();
    for path in entries.filter_map(|e| Some(e.ok()?.path())) {
        let Some(user) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        let meta = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LeaseMeta>(&bytes).ok());
        if meta.is_some_and(|m| m.is_reapable(now, grace)) && std::fs::remove_file(&path).is_ok() {
            reaped.push(user);
        }
    }
    reaped
}
