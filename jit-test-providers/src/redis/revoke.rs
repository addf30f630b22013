//! Revocation (`ACL DELUSER`, which also closes the user's connections; `ACL SETUSER u
//! off` would leave them open) and the proof of death (a real `AUTH`, refused with
//! `WRONGPASS`).

use std::time::Duration;

use ::redis::cmd;
use jit_test::{Proof, ProviderError};

use super::admin::{Admin, describe};
use super::credential::RedisLease;

/// How often a deletion is tried before the error is returned.
const ATTEMPTS: u32 = 5;

/// The outcome of one attempt.
enum Attempt {
    Done,
    Retry(ProviderError),
    Fail(ProviderError),
}

/// Deletes `user`, retrying a lost connection with backoff; a user that is already gone
/// counts as deleted. Loud when it gives up.
pub(crate) async fn delete(admin: &Admin, user: &str) -> Result<(), ProviderError> {
    let mut attempt = 0;
    loop {
        match try_delete(admin, user).await {
            Attempt::Done => return Ok(()),
            Attempt::Retry(_) if attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            Attempt::Retry(e) | Attempt::Fail(e) => {
                return Err(ProviderError::failed(
                    "ACL DELUSER",
                    format!("{user} is still on the server after {ATTEMPTS} attempts: {e}"),
                ));
            }
        }
    }
}

async fn try_delete(admin: &Admin, user: &str) -> Attempt {
    // The reply counts the users deleted: 0 when it was already gone.
    match admin
        .query::<i64>(cmd("ACL").arg("DELUSER").arg(user))
        .await
    {
        Ok(_) => Attempt::Done,
        Err(e @ ProviderError::Unreachable { .. }) => Attempt::Retry(e),
        Err(e) => Attempt::Fail(e),
    }
}

/// Sends `AUTH user password` on a connection that has not logged in.
pub(crate) async fn prove_dead(admin: &Admin, lease: &RedisLease) -> Result<Proof, ProviderError> {
    match admin.try_login(&lease.user, &lease.password).await? {
        Ok(()) => Ok(Proof::Accepted),
        Err(e) if e.code() == Some("WRONGPASS") => Ok(Proof::Refused(describe(&e))),
        Err(e) => Err(ProviderError::failed("proof", describe(&e))),
    }
}
