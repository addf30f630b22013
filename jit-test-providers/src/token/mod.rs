//! The `token` provider: an in-process token authority that issues real, signed JWTs.
//!
//! A test asking for `token:read:orders` receives a [`TokenGrant`]: a compact JWS signed
//! with EdDSA (Ed25519, a key generated per process) or HS256, whose claims are
//!
//! | claim | value |
//! |---|---|
//! | `iss`, `aud` | [`TokenSettings::issuer`], [`TokenSettings::audience`] |
//! | `sub` | the principal, `jit_` followed by the lease id |
//! | `jti` | 128 random bits |
//! | `iat`, `exp` | issue time, and at most the ttl later |
//! | `scope` | `read:orders`: each `token:ACTION:RESOURCE` as `ACTION:RESOURCE`, space separated |
//!
//! and whose header is `{"alg":"EdDSA","typ":"JWT","kid":…}`. The service under test
//! checks it with the authority's [`Verifier`] (in process) or with any JWT library and
//! the authority's [JWKS](TokenAuthority::jwks). Revocation puts the `jti` on the
//! authority's revocation list, which every verifier of that authority consults; the
//! proof of death runs the verifier on the old token.
//!
//! ```
//! use jit_test::Test;
//! use jit_test_providers::token::{TokenAuthority, TokenGrant};
//!
//! Test::new("doc::reads_orders").scope("token:read:orders").run(|(token,): (TokenGrant,)| async move {
//!     let claims = TokenAuthority::shared().verifier().verify(token.token().expose()).unwrap();
//!     assert!(claims.allows("read:orders"));
//!     assert!(!claims.allows("write:orders"));
//! });
//! ```

mod claims;
mod error;
mod grant;
mod jwt;
mod settings;
mod verifier;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jit_test::unix_seconds;
use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError, Secret,
};

pub use claims::Claims;
pub use error::TokenError;
pub use grant::{TokenGrant, TokenLease};
pub use settings::{Algorithm, TokenSettings};
pub use verifier::Verifier;

use jwt::Key;
use verifier::RevocationList;

/// An in-process token authority: the `token` scheme's [`Provider`].
///
/// Each authority generates its own signing key when it is made; the key never leaves
/// the process. Tests normally use the process-wide one, [`TokenAuthority::shared`],
/// which is also the one the `#[jit_test]` runner grants from.
pub struct TokenAuthority {
    settings: TokenSettings,
    key: Arc<Key>,
    revoked: Arc<RevocationList>,
}

impl TokenAuthority {
    /// An authority with `settings` and a fresh key. Panics only if the system's random
    /// number generator fails.
    pub fn new(settings: TokenSettings) -> TokenAuthority {
        TokenAuthority {
            key: Arc::new(Key::generate(settings.algorithm)),
            revoked: Arc::new(RevocationList::default()),
            settings,
        }
    }

    /// The process-wide authority, built on first use from `[providers.token]` in the
    /// configuration: the one that grants every `token` credential of this process, and so
    /// the one whose [`verifier`](Self::verifier) and [`jwks`](Self::jwks) a service under
    /// test must use.
    ///
    /// Panics with the reason if the configuration is wrong: every test would fail the
    /// same way.
    pub fn shared() -> Arc<TokenAuthority> {
        jit_test::provider::<TokenAuthority>()
            .unwrap_or_else(|e| panic!("jit-test: cannot set up the token authority: {e}"))
    }

    /// The authority's public keys as a JSON Web Key Set (RFC 7517), for a service that
    /// verifies tokens with its own JWT library:
    /// `{"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}]}`.
    /// The `kid` is the key's RFC 7638 thumbprint.
    ///
    /// With [`Algorithm::HS256`] the set is empty, `{"keys":[]}`: an HMAC key both signs
    /// and verifies, so publishing it would let anyone forge tokens. Verify HS256 tokens
    /// with [`TokenAuthority::verifier`].
    pub fn jwks(&self) -> String {
        let keys: Vec<serde_json::Value> = self.key.public_jwk().into_iter().collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A verifier sharing this authority's key and revocation list, with the configured
    /// leeway.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(
            Arc::clone(&self.key),
            Arc::clone(&self.revoked),
            &self.settings,
        )
    }

    /// The settings this authority issues and verifies with.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The claims of a grant of `permissions` to `principal` made at `now` for `ttl`.
    fn claims(
        &self,
        principal: String,
        permissions: &[Permission],
        now: SystemTime,
        ttl: Duration,
    ) -> Claims {
        Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: principal,
            jti: jit_test::rand::token(16),
            iat: unix_seconds(now),
            // Rounded down: the token never outlives the ttl.
            exp: unix_seconds(now + ttl),
            scope: claims::scope_of(permissions),
        }
    }

    /// Signs `claims` with this authority's key.
    pub(crate) fn sign(&self, claims: &Claims) -> Secret {
        Secret::new(self.key.sign(claims))
    }
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("settings", &self.settings)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn is_action(action: &str) -> bool {
    let mut chars = action.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A character allowed in an OAuth scope token (RFC 6749 §3.3): printable ASCII except
/// space, `"` and `\`.
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

impl Provider for TokenAuthority {
    const SCHEME: &'static str = "token";
    type Credential = TokenGrant;
    type Lease = TokenLease;

    fn from_config(config: &Config) -> Result<TokenAuthority, ProviderError> {
        Ok(TokenAuthority::new(TokenSettings::from_config(config)?))
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        if permission.scheme != Self::SCHEME {
            return Err(format!(
                "scheme `{}` is not `token`: this provider only grants `token:ACTION:RESOURCE`",
                permission.scheme
            ));
        }
        if !permission.args.is_empty() {
            return Err(format!(
                "token actions take no arguments: write `token:{}:{}`",
                permission.action, permission.resource
            ));
        }
        if !is_action(&permission.action) {
            return Err(format!(
                "action `{}` must start with a lowercase letter and contain only a-z, 0-9, `_` and `-`",
                permission.action
            ));
        }
        if permission.resource.is_empty() || !permission.resource.chars().all(is_scope_char) {
            return Err(format!(
                "resource `{}` cannot be part of an OAuth scope: it must be non-empty printable \
                 ASCII without spaces, `\"` or `\\`",
                permission.resource.escape_debug()
            ));
        }
        Ok(())
    }

    async fn grant(
        &self,
        request: &GrantRequest,
    ) -> Result<Granted<TokenAuthority>, ProviderError> {
        if request.ttl < Duration::from_secs(1) {
            return Err(ProviderError::failed(
                "grant",
                format!(
                    "ttl {:?} is below one second, the resolution of a JWT `exp`: ask for a ttl of at least 1s",
                    request.ttl
                ),
            ));
        }
        for p in &request.permissions {
            Self::validate(p).map_err(|reason| ProviderError::InvalidPermission {
                permission: p.to_string(),
                reason,
            })?;
        }
        if let Some(p) = request
            .deny
            .iter()
            .find(|d| request.permissions.contains(d))
        {
            return Err(ProviderError::InvalidPermission {
                permission: p.to_string(),
                reason: "it is both granted and denied; remove it from one of the two".into(),
            });
        }
        let claims = self.claims(
            request.principal_name("jit_"),
            &request.permissions,
            SystemTime::now(),
            request.ttl,
        );
        let token = self.sign(&claims);
        Ok(Granted {
            principal: claims.sub.clone(),
            expires_at: UNIX_EPOCH + Duration::from_secs(claims.exp),
            lease: TokenLease {
                jti: claims.jti.clone(),
                token: token.clone(),
            },
            credential: TokenGrant { token, claims },
            // A token carries its scope claim and nothing else.
            beyond_scope: Vec::new(),
        })
    }

    async fn revoke(&self, lease: &TokenLease) -> Result<(), ProviderError> {
        self.revoked.revoke(&lease.jti);
        Ok(())
    }

    async fn prove_dead(&self, lease: &TokenLease) -> Result<Proof, ProviderError> {
        Ok(match self.verifier().verify(lease.token.expose()) {
            Ok(_) => Proof::Accepted,
            Err(e) => Proof::Refused(e.code().to_owned()),
        })
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        // HTTP 401/403 from a service are classified by `jit_test::HttpStatus`.
        error
            .downcast_ref::<TokenError>()
            .map(|_| ErrorClass::Unauthenticated)
    }

    /// Nothing to reap: tokens, the key that signs them and the revocation list all live
    /// in this process's memory, so a crashed process takes its authority with it, and
    /// its tokens can no longer be verified by anyone that trusts a live authority (each
    /// has its own key). Their `exp` bounds them for a verifier that kept the old JWKS.
    async fn reap(&self, _grace: Duration) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests;
