//! Grant: a fresh user with a client-side password hash, the lease metadata as a tag, and
//! the permissions of the plan, vhost by vhost.

use std::collections::BTreeMap;
use std::time::SystemTime;

use hyper::Method;
use jit_test::{GrantRequest, Granted, LeaseMeta, Permission, ProviderError, Secret};
use serde_json::json;

use super::api::{Api, reason, segment};
use super::login::Login;
use super::scope::{Plan, Rule, VhostGrant, any_regex};
use super::{AmqpGrant, AmqpLease, AmqpProvider, Inner, PREFIX, password, revoke};

/// The prefix of the tag that holds a user's [`LeaseMeta`] as JSON. RabbitMQ keeps user
/// tags as given (arbitrary strings; only `administrator`, `monitoring`, `policymaker`
/// and `management` open the management UI) and drops unknown fields of a user's JSON.
pub const META_TAG: &str = "jit-lease:";

/// The tag that carries `meta`.
pub(crate) fn meta_tag(meta: &LeaseMeta) -> String {
    format!(
        "{META_TAG}{}",
        serde_json::to_string(meta).expect("plain data")
    )
}

/// The lease metadata among a user's tags, if any.
pub(crate) fn parse_meta<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<LeaseMeta> {
    tags.into_iter()
        .find_map(|t| serde_json::from_str(t.strip_prefix(META_TAG)?).ok())
}

/// Fails when the plan holds a permission of `deny`; nothing has been created yet.
fn check_deny(plan: &Plan, deny: &[Permission]) -> Result<(), ProviderError> {
    let mut held = Vec::new();
    for permission in deny {
        let rule = Rule::parse(permission).map_err(|e| ProviderError::InvalidPermission {
            permission: permission.to_string(),
            reason: e,
        })?;
        if plan.holds(&rule) {
            held.push(permission.to_string());
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(ProviderError::failed(
        "deny check",
        format!(
            "the scope's permissions would allow denied {}; nothing was granted. Narrow the \
             scope's globs, or remove it from `deny`",
            held.join(", ")
        ),
    ))
}

/// Creates the user, then its permissions; a user whose permissions fail is deleted.
pub(crate) async fn grant(
    inner: &Inner,
    request: &GrantRequest,
) -> Result<Granted<AmqpProvider>, ProviderError> {
    let plan = Plan::new(&request.permissions).map_err(|e| ProviderError::failed("grant", e))?;
    check_deny(&plan, &request.deny)?;
    let user = request.principal_name(PREFIX);
    let password = Secret::random(16);
    let expires_at = SystemTime::now() + request.ttl;
    create_user(&inner.api, &user, &password, &request.meta(expires_at)).await?;
    let login = Login {
        address: inner.settings.amqp.clone(),
        user: user.clone(),
        password,
        timeout: inner.settings.connect_timeout,
    };
    let vhost = plan.default_vhost();
    let set = async {
        for (name, grants) in &plan.vhosts {
            set_permissions(&inner.api, &user, name, grants).await?;
        }
        inner.check_passwords_once(&login, &vhost).await?;
        topic_exchanges(&inner.api, &plan).await
    };
    let topics = match set.await {
        Ok(topics) => topics,
        Err(e) => {
            if let Err(cleanup) = revoke::delete_user(&inner.api, &user).await {
                eprintln!(
                    "jit-test: warning: could not delete {user} after a failed grant: {cleanup}"
                );
            }
            return Err(e);
        }
    };
    let beyond_scope = plan.beyond_scope(&topics);
    Ok(Granted {
        principal: user,
        expires_at,
        credential: AmqpGrant {
            login: login.clone(),
            vhost: vhost.clone(),
            expires_at,
            beyond_scope: beyond_scope.clone(),
        },
        lease: AmqpLease { login, vhost },
        beyond_scope,
    })
}

/// Sends one request that must succeed.
pub(crate) async fn expect_success(
    api: &Api,
    operation: &'static str,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> Result<(), ProviderError> {
    let response = api.send(method, path, Some(&body)).await?;
    if response.status.is_success() {
        Ok(())
    } else {
        Err(ProviderError::failed(operation, reason(&response)))
    }
}

/// An exchange as `GET /api/exchanges/{vhost}?columns=name,type` lists it.
#[derive(serde::Deserialize)]
struct Exchange {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The topic exchanges of each vhost where the plan writes or reads.
async fn topic_exchanges(
    api: &Api,
    plan: &Plan,
) -> Result<BTreeMap<String, Vec<String>>, ProviderError> {
    let mut found = BTreeMap::new();
    for vhost in plan.vhosts_with_routing() {
        let path = format!("/exchanges/{}?columns=name,type", segment(vhost));
        let response = api.send(Method::GET, &path, None).await?;
        if !response.status.is_success() {
            return Err(ProviderError::failed("list exchanges", reason(&response)));
        }
        let exchanges: Vec<Exchange> = serde_json::from_slice(&response.body).map_err(|e| {
            ProviderError::failed("list exchanges", format!("unexpected answer: {e}"))
        })?;
        let topics = exchanges
            .into_iter()
            .filter(|x| x.kind == "topic")
            .map(|x| x.name);
        found.insert(vhost.to_owned(), topics.collect());
    }
    Ok(found)
}

async fn create_user(
    api: &Api,
    user: &str,
    password: &Secret,
    meta: &LeaseMeta,
) -> Result<(), ProviderError> {
    let body = json!({
        "password_hash": password::hash(password),
        "hashing_algorithm": password::ALGORITHM,
        "tags": [meta_tag(meta)],
    });
    let path = format!("/users/{}", segment(user));
    expect_success(api, "create user", Method::PUT, &path, body).await
}

async fn set_permissions(
    api: &Api,
    user: &str,
    vhost: &str,
    grants: &VhostGrant,
) -> Result<(), ProviderError> {
    let names = |globs: &[String]| any_regex(globs.iter().map(String::as_str));
    let body = json!({
        "configure": names(&grants.configure),
        "write": names(&grants.write),
        "read": names(&grants.read),
    });
    let path = format!("/permissions/{}/{}", segment(vhost), segment(user));
    expect_success(api, "set permissions", Method::PUT, &path, body)
        .await
        .map_err(|e| match e {
            ProviderError::Failed { message, .. } => ProviderError::failed(
                "set permissions",
                format!("on vhost {vhost:?}: {message} (does the vhost exist?)"),
            ),
            other => other,
        })?;
    for (exchange, (write, read)) in &grants.topics {
        let body = json!({ "exchange": exchange, "write": names(write), "read": names(read) });
        let path = format!("/topic-permissions/{}/{}", segment(vhost), segment(user));
        expect_success(api, "set topic permissions", Method::PUT, &path, body).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_metadata_round_trips_through_a_tag() {
        let meta = LeaseMeta {
            lease: "abc_1".into(),
            run: "r".into(),
            test: "t::x".into(),
            pid: 7,
            host: "h".into(),
            expires_at: 42,
            expires_at_ms: 42_000,
        };
        let tag = meta_tag(&meta);
        assert!(tag.starts_with("jit-lease:{"));
        assert_eq!(parse_meta(["management", tag.as_str()]), Some(meta));
        assert_eq!(parse_meta(["jit-lease:nope", "{}"]), None);
    }

    #[test]
    fn deny_is_checked_against_the_plan() {
        let scope = jit_test::Scope::parse("amqp:configure:/orders.*").unwrap();
        let plan = Plan::new(&scope.permissions).unwrap();
        let deny = |s: &str| vec![s.parse::<Permission>().unwrap()];
        assert!(check_deny(&plan, &deny("amqp:configure:/billing.q")).is_ok());
        let e = check_deny(&plan, &deny("amqp:configure:/orders.q")).unwrap_err();
        assert!(e.to_string().contains("amqp:configure:/orders.q"), "{e}");
    }
}
