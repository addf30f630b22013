//! [`Claims`]: what a token says, and the OAuth-style scope string it carries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jit_test::Permission;
use serde::{Deserialize, Serialize};

/// The claims of a token issued by a [`TokenAuthority`](super::TokenAuthority).
///
/// `scope` is an OAuth 2.0 scope (RFC 6749 §3.3, RFC 8693 §4.2): space-separated entries,
/// one per granted permission, `token:ACTION:RESOURCE` written as `ACTION:RESOURCE`. A test
/// granted `token:read:orders, token:write:orders` gets `"read:orders write:orders"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: [`TokenSettings::issuer`](super::TokenSettings::issuer).
    pub iss: String,
    /// Audience: [`TokenSettings::audience`](super::TokenSettings::audience).
    pub aud: String,
    /// Subject: the principal's name, `jit_` followed by the lease id.
    pub sub: String,
    /// Token id: random, unique per token; what revocation records.
    pub jti: String,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, in seconds since the Unix epoch: at most the ttl after `iat`.
    pub exp: u64,
    /// The granted scopes, space separated.
    pub scope: String,
}

impl Claims {
    /// The granted scopes, e.g. `read:orders`, in the order granted.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    /// Whether the token grants `scope`, written `ACTION:RESOURCE` (e.g. `read:orders`).
    ///
    /// Scopes are compared exactly, as OAuth scopes are opaque strings: a granted
    /// `read:*` does not allow `read:orders`, and the `token:` prefix is not part of a
    /// scope.
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes().any(|granted| granted == scope)
    }

    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp)
    }
}

/// The scope string for `permissions`: `ACTION:RESOURCE` for each, in order, without
/// duplicates.
pub(crate) fn scope_of(permissions: &[Permission]) -> String {
    let mut scopes: Vec<String> = Vec::with_capacity(permissions.len());
    for p in permissions {
        let scope = format!("{}:{}", p.action, p.resource);
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "jit_x".into(),
            jti: "j".into(),
            iat: 10,
            exp: 40,
            scope: scope.into(),
        }
    }

    #[test]
    fn permissions_become_oauth_scopes() {
        let permissions: Vec<Permission> = [
            "token:read:orders",
            "token:write:orders",
            "token:read:orders",
            "token:admin:a:b",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
        assert_eq!(scope_of(&permissions), "read:orders write:orders admin:a:b");
    }

    #[test]
    fn allows_compares_whole_scopes_exactly() {
        let c = claims("read:orders write:*");
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read:orders", "write:*"]);
        assert!(c.allows("read:orders"));
        assert!(c.allows("write:*"));
        assert!(!c.allows("write:orders"), "no wildcard matching");
        assert!(!c.allows("read:order"), "no prefix matching");
        assert!(
            !c.allows("token:read:orders"),
            "the scheme is not part of the scope"
        );
        assert!(!c.allows("read:orders write:*"), "one scope at a time");
        assert!(!c.allows(""));
        assert!(!claims("").allows(""));
        assert_eq!(c.expires_at(), UNIX_EPOCH + Duration::from_secs(40));
    }
}
