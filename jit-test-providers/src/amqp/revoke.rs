//! Revoke (delete the user: RabbitMQ closes its connections with 320 CONNECTION_FORCED)
//! and prove dead (an AMQP login with the old password, refused with 403).

use std::time::Duration;

use hyper::{Method, StatusCode};
use jit_test::{Proof, ProviderError};

use super::AmqpLease;
use super::api::{Api, reason, segment};
use super::classify::ACCESS_REFUSED;
use super::settings::URL_VAR;

/// How often a deletion is tried before its error is returned.
const ATTEMPTS: u32 = 6;

/// What one deletion attempt found.
enum Outcome {
    /// The user is gone (deleted now, or already).
    Gone,
    /// Worth another try: the broker failed or did not answer.
    Retry(ProviderError),
    /// Not worth another try.
    Fatal(ProviderError),
}

async fn attempt(api: &Api, user: &str) -> Outcome {
    let path = format!("/users/{}", segment(user));
    match api.send(Method::DELETE, &path, None).await {
        Ok(r) if r.status.is_success() || r.status == StatusCode::NOT_FOUND => Outcome::Gone,
        Ok(r) if r.status.is_server_error() => {
            Outcome::Retry(ProviderError::failed("revoke", reason(&r)))
        }
        Ok(r) => Outcome::Fatal(ProviderError::failed("revoke", reason(&r))),
        Err(e @ ProviderError::Unreachable { .. }) => Outcome::Retry(e),
        Err(e) => Outcome::Fatal(e),
    }
}

/// Deletes `user`, retrying with backoff; a user that does not exist counts as deleted.
pub(crate) async fn delete_user(api: &Api, user: &str) -> Result<(), ProviderError> {
    let mut tried = 0;
    loop {
        tried += 1;
        match attempt(api, user).await {
            Outcome::Gone => return Ok(()),
            Outcome::Retry(_) if tried < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(20 << tried)).await;
            }
            Outcome::Retry(e) | Outcome::Fatal(e) => {
                return Err(ProviderError::failed(
                    "revoke",
                    format!("user {user} could not be deleted after {tried} attempts: {e}"),
                ));
            }
        }
    }
}

/// Logins of a proof before a reset connection (a busy broker's full accept queue)
/// counts as an error.
const PROOF_ATTEMPTS: u32 = 3;

/// Logs in with the lease's old password: a 403 at login is the proof.
pub(crate) async fn prove_dead(lease: &AmqpLease) -> Result<Proof, ProviderError> {
    let mut tried = 0;
    loop {
        tried += 1;
        let e = match lease.login.connect(&lease.vhost).await {
            Ok(connection) => {
                let _ = connection.close(200, "jit-test proof".into()).await;
                return Ok(Proof::Accepted);
            }
            Err(e) => e,
        };
        if e.reply_code() == Some(ACCESS_REFUSED) {
            return Ok(Proof::Refused("AMQP 403 ACCESS_REFUSED at login".into()));
        }
        if e.is_reset() && tried < PROOF_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(50 * u64::from(tried))).await;
            continue;
        }
        return Err(if e.is_unreachable() {
            ProviderError::Unreachable {
                system: "RabbitMQ",
                address: lease.login.address.to_string(),
                setting: URL_VAR,
                reason: e.to_string(),
            }
        } else {
            ProviderError::failed("proof", e)
        });
    }
}
