//! Bearer-token authentication (RFC 6750) and the service's error answers.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jit_test_providers::token::{Claims, TokenError};

use crate::AppState;
use crate::store::{OrderStore, StoreError};

/// The verified claims of a request's bearer token.
///
/// As an extractor it refuses the request with 401 unless the `Authorization: Bearer`
/// header holds a token the service's verifier accepts: correctly signed, for this
/// audience, not expired, not revoked. Which scopes the token must grant is each
/// handler's decision: [`Caller::require`].
#[derive(Debug)]
pub struct Caller(pub Claims);

impl Caller {
    /// `Ok` when the token grants `scope` (e.g. `read:orders`), else a 403.
    pub fn require(&self, scope: &'static str) -> Result<(), ServiceError> {
        match self.0.allows(scope) {
            true => Ok(()),
            false => Err(ServiceError::InsufficientScope(scope)),
        }
    }
}

impl<S: OrderStore> FromRequestParts<AppState<S>> for Caller {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Caller, ServiceError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ServiceError::MissingToken)?;
        let claims = state
            .verifier
            .verify(token)
            .map_err(ServiceError::InvalidToken)?;
        Ok(Caller(claims))
    }
}

/// Why the service refused or failed a request; each variant is one HTTP answer.
#[derive(Debug)]
pub enum ServiceError {
    /// No bearer token: 401 with `WWW-Authenticate: Bearer` and, as RFC 6750 §3.1 asks,
    /// no error code.
    MissingToken,
    /// A token the verifier refused (malformed, forged, expired, revoked): 401 with
    /// `WWW-Authenticate: Bearer error="invalid_token"` and the reason's code.
    InvalidToken(TokenError),
    /// A valid token without the scope the endpoint needs: 403 with
    /// `WWW-Authenticate: Bearer error="insufficient_scope"` and the scope.
    InsufficientScope(&'static str),
    /// No such order: 404.
    NotFound,
    /// The store failed: 500, with the details kept out of the answer (they go to the
    /// service's log).
    ///
    /// That includes a database that refuses the service's own role a privilege
    /// (PostgreSQL's SQLSTATE 42501), deliberately: the caller's token allowed the request,
    /// so a 403 would tell the caller that *they* may not do it, when the service is
    /// deployed with too few rights. That is the operator's problem, which a 5xx reports
    /// to them; the caller can do nothing about it. `tests/orders_pg.rs` asserts it.
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        ServiceError::Store(error)
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let challenge = |params: String| [(header::WWW_AUTHENTICATE, format!("Bearer{params}"))];
        match self {
            ServiceError::MissingToken => {
                (StatusCode::UNAUTHORIZED, challenge(String::new())).into_response()
            }
            ServiceError::InvalidToken(error) => {
                let params = format!(
                    r#" error="invalid_token", error_description="{}""#,
                    error.code()
                );
                (StatusCode::UNAUTHORIZED, challenge(params)).into_response()
            }
            ServiceError::InsufficientScope(scope) => {
                let params = format!(r#" error="insufficient_scope", scope="{scope}""#);
                (StatusCode::FORBIDDEN, challenge(params)).into_response()
            }
            ServiceError::NotFound => StatusCode::NOT_FOUND.into_response(),
            ServiceError::Store(error) => {
                eprintln!("orders: the store failed: {error}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
