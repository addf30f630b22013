//! [`TokenGrant`], what a test receives, and [`TokenLease`], what the authority keeps.

use std::fmt;

use jit_test::{Credential, Secret};

use super::TokenAuthority;
use super::claims::Claims;

/// A signed, short-lived token for one test: the credential of the `token` scheme.
///
/// `Debug` shows the principal, scope and expiry, never the token.
///
/// ```
/// use jit_test::Test;
/// use jit_test_providers::token::TokenGrant;
///
/// Test::new("doc::bearer").scope("token:read:orders").run(|(token,): (TokenGrant,)| async move {
///     let authorization = token.bearer(); // for an `Authorization` header; secret
///     assert!(authorization.starts_with("Bearer ey"));
///     assert!(token.has_scope("read:orders"));
///     assert!(!format!("{token:?}").contains(token.token().expose()));
/// });
/// ```
pub struct TokenGrant {
    pub(crate) token: Secret,
    pub(crate) claims: Claims,
}

impl TokenGrant {
    /// The token (a compact JWS). Read it with [`Secret::expose`]; keep it out of logs.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// `Bearer <token>`, the value of an `Authorization` header (RFC 6750).
    ///
    /// The returned string holds the secret token in the clear: hand it to the HTTP
    /// client and never print or log it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }

    /// The token's claims (none of them secret).
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Whether the token grants `scope`, written `ACTION:RESOURCE` (e.g. `read:orders`
    /// for the permission `token:read:orders`); see [`Claims::allows`].
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.allows(scope)
    }

    /// The principal the token was issued to (its `sub`), e.g. `jit_3f9a2c1b_4012_7`.
    pub fn principal(&self) -> &str {
        &self.claims.sub
    }
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("principal", &self.claims.sub)
            .field("scope", &self.claims.scope)
            .field("exp", &self.claims.exp)
            .field("token", &self.token)
            .finish()
    }
}

impl Credential for TokenGrant {
    type Provider = TokenAuthority;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(TokenGrant);

/// What the authority keeps of one grant, to revoke the token and prove it dead.
/// `Debug` never shows the token.
pub struct TokenLease {
    pub(crate) jti: String,
    pub(crate) token: Secret,
}

impl fmt::Debug for TokenLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLease")
            .field("jti", &self.jti)
            .field("token", &self.token)
            .finish()
    }
}
