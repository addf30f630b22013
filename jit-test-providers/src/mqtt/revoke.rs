//! Revocation: `deleteClient` (the plugin disconnects the client's sessions, MQTT v5
//! DISCONNECT 0x98) and `deleteRole`, retried a bounded number of times; and the proof:
//! a real CONNECT with the old password, which the broker must refuse.

use std::time::Duration;

use jit_test::{Proof, ProviderError};
use serde_json::json;

use super::classify::{BAD_LOGIN, NOT_AUTHORIZED};
use super::control::{Control, Reply};
use super::credential::Login;
use super::session::MqttError;

/// Attempts at most, and the pause before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// How one attempt ended.
enum Attempt {
    Done,
    Retry(String),
}

/// The batch that removes a client and its role of the same name.
pub(crate) fn commands(name: &str) -> Vec<serde_json::Value> {
    vec![
        json!({ "command": "deleteClient", "username": name }),
        json!({ "command": "deleteRole", "rolename": name }),
    ]
}

/// Removes client `name` and its role; "not found" counts as removed. Loud when it
/// gives up.
pub(crate) async fn revoke(control: &Control, name: &str) -> Result<(), ProviderError> {
    let mut last = match attempt(control, name).await {
        Attempt::Done => return Ok(()),
        Attempt::Retry(why) => why,
    };
    for pause in BACKOFF {
        tokio::time::sleep(pause).await;
        last = match attempt(control, name).await {
            Attempt::Done => return Ok(()),
            Attempt::Retry(why) => why,
        };
    }
    Err(ProviderError::failed(
        "revoke",
        format!(
            "client {name} may still exist after {} attempts: {last}",
            BACKOFF.len() + 1
        ),
    ))
}

async fn attempt(control: &Control, name: &str) -> Attempt {
    match control.send("revoke", commands(name)).await {
        Err(e) => Attempt::Retry(e.to_string()),
        Ok(replies) => match failure(&replies) {
            None => Attempt::Done,
            Some(why) => Attempt::Retry(why),
        },
    }
}

/// The first error of `replies` other than "not found".
pub(crate) fn failure(replies: &[Reply]) -> Option<String> {
    replies.iter().find_map(|reply| {
        let error = reply.error.as_deref()?;
        (!error.ends_with("not found")).then(|| format!("{}: {error}", reply.command))
    })
}

/// Logs in with the old password: refused with CONNACK 0x86 or 0x87 is the proof.
pub(crate) async fn prove_dead(login: &Login) -> Result<Proof, ProviderError> {
    let client_id = format!("{}-proof", login.username);
    match login.connect(&client_id).await {
        Err(MqttError::ConnectRefused { code, .. })
            if code == BAD_LOGIN || code == NOT_AUTHORIZED =>
        {
            Ok(Proof::Refused(format!("CONNACK {code:#04x}")))
        }
        Err(other) => Err(ProviderError::failed("proof", other)),
        Ok(session) => {
            session.disconnect().await;
            Ok(Proof::Accepted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(command: &str, error: Option<&str>) -> Reply {
        Reply {
            command: command.into(),
            error: error.map(str::to_owned),
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn already_gone_counts_as_revoked() {
        let gone = [
            reply("deleteClient", Some("Client not found")),
            reply("deleteRole", Some("Role not found")),
        ];
        assert_eq!(failure(&gone), None);
        let busy = [
            reply("deleteClient", None),
            reply("deleteRole", Some("Internal error")),
        ];
        assert_eq!(
            failure(&busy).as_deref(),
            Some("deleteRole: Internal error")
        );
    }
}
