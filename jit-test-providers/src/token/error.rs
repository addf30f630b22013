//! [`TokenError`]: why a token was refused.

/// Why a [`Verifier`](super::Verifier) refused a token. Every variant is an authentication
/// failure: [`jit_test::classify()`] reports it as
/// [`ErrorClass::Unauthenticated`](jit_test::ErrorClass::Unauthenticated), as a service
/// would answer HTTP 401. Messages never contain the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS of this authority's shape.
    #[error(
        "the token is malformed: expected a compact JWS (base64url JSON header, base64url JSON \
         claims with iss, aud, sub, jti, iat, exp and scope, base64url signature, joined by `.`). \
         Pass the token itself, without the `Bearer ` prefix"
    )]
    Malformed,
    /// The header names an algorithm other than the one this authority signs with.
    #[error(
        "the token's `alg` is not the algorithm this authority signs with (algorithm confusion \
         is refused); check `algorithm` in [providers.token]"
    )]
    WrongAlgorithm,
    /// The header's `kid` is not this authority's key: another authority issued the token.
    #[error(
        "the token's `kid` names a key this authority does not hold: it was issued by another \
         authority (another process has its own key); verify with the issuing authority's \
         verifier or JWKS"
    )]
    UnknownKey,
    /// The signature does not match the header and claims.
    #[error("the token's signature does not match: the token was altered or forged")]
    BadSignature,
    /// The `iss` claim is not the verifier's issuer.
    #[error("the token's `iss` is not this verifier's issuer; check `issuer` in [providers.token]")]
    WrongIssuer,
    /// The `aud` claim is not the verifier's audience.
    #[error(
        "the token's `aud` is not this verifier's audience; check `audience` in [providers.token]"
    )]
    WrongAudience,
    /// The token's `jti` is on the authority's revocation list.
    #[error("the token has been revoked")]
    Revoked,
    /// The `exp` claim, plus the verifier's leeway, lies in the past.
    #[error(
        "the token has expired: its `exp` plus the verifier's leeway is past. Ask for a longer \
         ttl if the test needs one"
    )]
    Expired,
}

impl TokenError {
    /// A short, stable code for the error (`malformed`, `wrong_algorithm`, `unknown_key`,
    /// `bad_signature`, `wrong_issuer`, `wrong_audience`, `revoked`, `expired`), e.g. for a
    /// service's `WWW-Authenticate` header or an audit record.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::WrongAlgorithm => "wrong_algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Revoked => "revoked",
            TokenError::Expired => "expired",
        }
    }
}
