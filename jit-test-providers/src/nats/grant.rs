//! Granting: a fresh user key from the CSPRNG and a user JWT signed here with the
//! account's key — no round trip to the server.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use jit_test::{GrantRequest, Granted, LeaseMeta, ProviderError, Secret};
use nkeys::{KeyPair, KeyPairType};

use super::credential::{NatsGrant, NatsLease, User};
use super::subjects::{self, Grant};
use super::{NatsProvider, PREFIX, jwt, leases};

/// The checked permissions of `request`, failing on one of its `deny` permissions that
/// they would allow.
pub(crate) fn plan(request: &GrantRequest) -> Result<Vec<Grant>, ProviderError> {
    let parse = |p: &jit_test::Permission| {
        Grant::parse(p).map_err(|reason| ProviderError::InvalidPermission {
            permission: p.to_string(),
            reason,
        })
    };
    let grants = request
        .permissions
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    for deny in &request.deny {
        if subjects::allows(&grants, &parse(deny)?) {
            return Err(ProviderError::Misconfigured(format!(
                "the scope allows `{deny}`, which the test denies"
            )));
        }
    }
    Ok(grants)
}

/// Signs a user holding `grants` for `request.ttl` (whole seconds, rounded up).
pub(crate) fn sign_user(
    provider: &NatsProvider,
    request: &GrantRequest,
    grants: &[Grant],
) -> Result<Granted<NatsProvider>, ProviderError> {
    let failed = |e: String| ProviderError::failed("grant", e);
    let seed: [u8; 32] = jit_test::rand::bytes(32).try_into().expect("32 bytes");
    let key = KeyPair::new_from_raw(KeyPairType::User, seed).map_err(|e| failed(e.to_string()))?;
    let ttl = request.ttl.as_secs() + u64::from(request.ttl.subsec_nanos() > 0);
    let expires_at = jwt::now() + ttl.max(1);
    let name = request.principal_name(PREFIX);
    let inbox = format!("_INBOX.{name}");
    let meta = request.meta(UNIX_EPOCH + Duration::from_secs(expires_at));
    let claims = jwt::user(
        &key.public_key(),
        &name,
        &provider.account.keys.account,
        expires_at,
        &subjects::permissions(grants, &inbox),
        tags(&meta),
    );
    let user_jwt = jwt::sign(claims, &provider.account.keys.account_key).map_err(failed)?;
    leases::record(
        &leases::dir(&provider.account.keys.account),
        &key.public_key(),
        &meta,
    )?;
    let user = Arc::new(User {
        public_key: key.public_key(),
        name,
        url: provider.account.url.clone(),
        jwt: Secret::new(user_jwt),
        seed: Secret::new(key.seed().map_err(|e| failed(e.to_string()))?),
        inbox,
        expires_at,
        connect_timeout: provider.account.timeout,
    });
    let expires_at = UNIX_EPOCH + Duration::from_secs(expires_at);
    Ok(Granted {
        principal: user.public_key.clone(),
        expires_at,
        credential: NatsGrant {
            user: Arc::clone(&user),
            expires_at,
        },
        lease: NatsLease { user },
        beyond_scope: Vec::new(),
    })
}

/// The lease metadata as the user JWT's tags (`lease:...`, `run:...`, ...).
fn tags(meta: &LeaseMeta) -> Vec<String> {
    vec![
        "jit-test".into(),
        format!("lease:{}", meta.lease),
        format!("run:{}", meta.run),
        format!("test:{}", meta.test),
        format!("pid:{}", meta.pid),
        format!("host:{}", meta.host),
        format!("expires:{}", meta.expires_at),
    ]
}
