//! NATS JWTs: JSON claims signed Ed25519 by an nkey (`"alg": "ed25519-nkey"`), in the
//! layout nats-server's `jwt/v2` library reads (`"nats": {..., "version": 2}`). The one
//! encoder of the project: the provider signs user and account JWTs with it, and
//! `jit-test-nats-setup` the operator's and the accounts' first ones.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// The header of every NATS JWT.
const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// Signs `claims` (an object) with `issuer`: sets `iss`, `iat` (now) and a fresh `jti`,
/// and returns the compact JWT.
pub fn sign(mut claims: Value, issuer: &KeyPair) -> Result<String, String> {
    let object = claims
        .as_object_mut()
        .ok_or("JWT claims must be an object")?;
    object.insert("iss".into(), issuer.public_key().into());
    object.insert("iat".into(), now().into());
    object.insert("jti".into(), jit_test::rand::hex(16).to_uppercase().into());
    let body = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer.sign(body.as_bytes()).map_err(|e| e.to_string())?;
    Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The claims of `jwt`, after checking its signature against its `iss`.
pub fn verified_claims(jwt: &str) -> Result<Value, String> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWT".into());
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("bad base64url in JWT: {e}"))
    };
    let claims: Value = serde_json::from_slice(&decode(body)?)
        .map_err(|e| format!("JWT claims are not JSON: {e}"))?;
    let issuer = claims["iss"].as_str().ok_or("JWT without `iss`")?;
    let signature = decode(signature)?;
    KeyPair::from_public_key(issuer)
        .and_then(|key| key.verify(format!("{header}.{body}").as_bytes(), &signature))
        .map_err(|e| format!("JWT signature does not verify against its issuer: {e}"))?;
    Ok(claims)
}

/// Seconds since the Unix epoch, by this machine's clock (the server's, on loopback).
pub fn now() -> u64 {
    jit_test::unix_seconds(std::time::SystemTime::now())
}

/// Limits meaning "no limit", for accounts and users (jwt/v2 reads a missing limit as 0).
fn unlimited() -> Value {
    json!({"subs": -1, "data": -1, "payload": -1})
}

/// Claims of an operator whose accounts may also be signed by `signing_key`.
pub fn operator(subject: &str, name: &str, signing_key: &str, system_account: &str) -> Value {
    json!({
        "sub": subject,
        "name": name,
        "nats": {
            "type": "operator",
            "version": 2,
            "signing_keys": [signing_key],
            "system_account": system_account,
        }
    })
}

/// Claims of an account without limits and without default permissions.
pub fn account(subject: &str, name: &str) -> Value {
    let mut limits = unlimited();
    for key in ["imports", "exports", "conn", "leaf"] {
        limits[key] = json!(-1);
    }
    limits["wildcards"] = json!(true);
    json!({
        "sub": subject,
        "name": name,
        "nats": {"type": "account", "version": 2, "limits": limits}
    })
}

/// What a user may publish and subscribe to: NATS' `pub`, `sub` and `resp` permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPermissions {
    /// Subjects the user may publish to; none means every publish is denied.
    pub publish: Vec<String>,
    /// Subjects (optionally `subject queue`) the user may subscribe to; none means every
    /// subscription is denied.
    pub subscribe: Vec<String>,
    /// Whether the user may publish one reply to each request it receives.
    pub respond: bool,
}

/// An allow list, or `deny: [">"]` when it is empty (an empty allow list means "all").
fn list(allow: &[String]) -> Value {
    if allow.is_empty() {
        json!({"deny": [">"]})
    } else {
        json!({"allow": allow})
    }
}

/// Claims of a user of `account` (issued by one of its keys), expiring at `expires_at`
/// (Unix seconds), with exactly `permissions`.
pub fn user(
    subject: &str,
    name: &str,
    account: &str,
    expires_at: u64,
    permissions: &UserPermissions,
    tags: Vec<String>,
) -> Value {
    let mut nats = unlimited();
    nats["type"] = json!("user");
    nats["version"] = json!(2);
    nats["issuer_account"] = json!(account);
    nats["pub"] = list(&permissions.publish);
    nats["sub"] = list(&permissions.subscribe);
    nats["tags"] = json!(tags);
    if permissions.respond {
        nats["resp"] = json!({"max": 1, "ttl": 0});
    }
    json!({"sub": subject, "name": name, "exp": expires_at, "nats": nats})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_claims_verify_and_tampering_is_caught() {
        let account = KeyPair::new_account();
        let claims = json!({"sub": "U", "nats": {"type": "user", "version": 2}});
        let jwt = sign(claims, &account).unwrap();
        let read = verified_claims(&jwt).unwrap();
        assert_eq!(read["iss"], account.public_key());
        assert_eq!(read["sub"], "U");
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"V","iss":"x"}"#);
        parts[1] = &forged;
        assert!(verified_claims(&parts.join(".")).is_err());
    }

    #[test]
    fn an_empty_allow_list_denies_everything() {
        let none = UserPermissions::default();
        let claims = user("U", "jit_x", "A", 10, &none, vec![]);
        assert_eq!(claims["nats"]["pub"], json!({"deny": [">"]}));
        assert_eq!(claims["nats"]["sub"], json!({"deny": [">"]}));
        assert!(claims["nats"].get("resp").is_none());
    }
}
