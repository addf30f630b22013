//! Granting: one role holding the scope's ACLs and one client with a fresh password and
//! that role, both named `jit_<lease>` and carrying the lease metadata, in one batch.

use std::time::SystemTime;

use jit_test::{GrantRequest, Granted, Permission, ProviderError, Secret};
use serde_json::{Value, json};

use super::access::{self, Access};
use super::credential::{Login, MqttGrant, MqttLease};
use super::{Inner, MqttProvider, PREFIX, revoke};

/// The `textname` of every client and role a lease creates.
pub(crate) const TEXT_NAME: &str = "jit-test lease";

/// Everything a grant sends, decided before anything is sent.
pub(crate) struct Plan {
    pub(crate) name: String,
    pub(crate) password: Secret,
    pub(crate) expires_at: SystemTime,
    pub(crate) commands: Vec<Value>,
}

impl Plan {
    /// Checks the request and prepares the batch.
    pub(crate) fn new(request: &GrantRequest) -> Result<Plan, ProviderError> {
        let accesses = parse_all(&request.permissions)?;
        for (deny, denied) in request.deny.iter().zip(parse_all(&request.deny)?) {
            if let Some(held) = accesses.iter().find(|a| a.covers(&denied)) {
                return Err(ProviderError::InvalidPermission {
                    permission: deny.to_string(),
                    reason: format!("it is denied, but the scope's `{held}` allows it"),
                });
            }
        }
        let name = request.principal_name(PREFIX);
        let password = Secret::random(18);
        let expires_at = SystemTime::now() + request.ttl;
        let meta = serde_json::to_string(&request.meta(expires_at))
            .map_err(|e| ProviderError::failed("grant", e))?;
        let commands = vec![
            json!({
                "command": "createRole",
                "rolename": name,
                "textname": TEXT_NAME,
                "textdescription": meta,
                "acls": access::role_acls(&accesses),
            }),
            json!({
                "command": "createClient",
                "username": name,
                "password": password.expose(),
                "textname": TEXT_NAME,
                "textdescription": meta,
                "roles": [{ "rolename": name }],
            }),
        ];
        Ok(Plan {
            name,
            password,
            expires_at,
            commands,
        })
    }
}

fn parse_all(permissions: &[Permission]) -> Result<Vec<Access>, ProviderError> {
    permissions
        .iter()
        .map(|p| {
            Access::parse(p).map_err(|reason| ProviderError::InvalidPermission {
                permission: p.to_string(),
                reason,
            })
        })
        .collect()
}

/// Creates the role and the client; on failure removes whatever was made.
pub(crate) async fn grant(
    inner: &Inner,
    request: &GrantRequest,
) -> Result<Granted<MqttProvider>, ProviderError> {
    let plan = Plan::new(request)?;
    let facts = inner.facts().await?;
    let beyond_scope = facts.beyond_scope();
    if inner.settings.strict && !beyond_scope.is_empty() {
        return Err(ProviderError::Misconfigured(format!(
            "strict: a client of {} could do more than its scope: {}",
            inner.settings.address(),
            beyond_scope.join("; ")
        )));
    }
    let replies = inner.control.send("grant", plan.commands).await;
    let failed = match replies {
        Ok(replies) => replies
            .iter()
            .find_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.command))),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = failed {
        let _ = revoke::revoke(&inner.control, &plan.name).await;
        return Err(ProviderError::failed("grant", why));
    }
    let login = Login {
        username: plan.name.clone(),
        password: plan.password,
        host: inner.settings.host.clone(),
        port: inner.settings.port,
        timeout: inner.settings.connect_timeout,
    };
    Ok(Granted {
        principal: plan.name,
        expires_at: plan.expires_at,
        credential: MqttGrant {
            login: login.clone(),
            expires_at: plan.expires_at,
            beyond_scope: beyond_scope.clone(),
        },
        lease: MqttLease { login },
        beyond_scope,
    })
}
