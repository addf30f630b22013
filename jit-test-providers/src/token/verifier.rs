//! [`Verifier`]: how a service under test checks a token, and the revocation list it
//! shares with its authority.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::claims::Claims;
use super::error::TokenError;
use super::jwt::Key;
use super::settings::TokenSettings;

/// The `jti`s an authority has revoked.
///
/// Entries are kept for the life of the process rather than dropped once their token
/// expires: a verifier may have any leeway, so no point in time makes an entry useless.
/// An entry is a 22-byte id; a test process revokes a handful.
#[derive(Debug, Default)]
pub(crate) struct RevocationList(Mutex<HashSet<String>>);

impl RevocationList {
    /// Adds `jti`; adding it again changes nothing.
    pub(crate) fn revoke(&self, jti: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(jti.to_owned());
    }

    fn is_revoked(&self, jti: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(jti)
    }
}

/// Checks tokens of one [`TokenAuthority`](super::TokenAuthority), as the service under
/// test would: signature (with the authority's key), `iss`, `aud`, the authority's
/// revocation list, and `exp` (with a leeway). Cheap to clone; clones share the key and
/// the revocation list, so a token revoked after the verifier was made is refused.
///
/// ```
/// # use jit_test_providers::token::{TokenAuthority, TokenSettings};
/// let verifier = TokenAuthority::new(TokenSettings::default()).verifier();
/// let error = verifier.verify("not-a-token").unwrap_err();
/// assert_eq!(error.code(), "malformed");
/// ```
#[derive(Clone)]
pub struct Verifier {
    key: Arc<Key>,
    revoked: Arc<RevocationList>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl Verifier {
    pub(crate) fn new(
        key: Arc<Key>,
        revoked: Arc<RevocationList>,
        settings: &TokenSettings,
    ) -> Verifier {
        Verifier {
            key,
            revoked,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway,
        }
    }

    /// Checks `token` (the compact JWS, without a `Bearer ` prefix) and returns its claims.
    ///
    /// Checks, in order: structure and header (`alg` must be the authority's, `kid` its
    /// key), signature, `iss`, `aud`, `exp` (refused once `exp` plus the leeway is
    /// reached), then revocation. An expired token reports [`TokenError::Expired`] even
    /// though jit-test also revokes it at its ttl, so a service under test tells expiry
    /// from revocation. Scopes are not checked: that is the caller's decision, with
    /// [`Claims::allows`].
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, SystemTime::now())
    }

    pub(crate) fn verify_at(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let claims = self.key.open(token)?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        let expiry = UNIX_EPOCH
            .checked_add(Duration::from_secs(claims.exp))
            .and_then(|exp| exp.checked_add(self.leeway))
            .ok_or(TokenError::Malformed)?;
        if now >= expiry {
            return Err(TokenError::Expired);
        }
        if self.revoked.is_revoked(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// A verifier like this one that accepts tokens up to `leeway` past their `exp`, as a
    /// service with a clock-skew allowance would.
    pub fn with_leeway(&self, leeway: Duration) -> Verifier {
        Verifier {
            leeway,
            ..self.clone()
        }
    }

    /// How long past `exp` a token is still accepted.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithm", &self.key.algorithm())
            .field("kid", &self.key.kid())
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}
