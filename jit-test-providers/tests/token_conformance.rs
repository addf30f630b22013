//! The token authority keeps the provider contract (`jit_test::conformance`).
//!
//! `within` is what a service does with a request allowed by the scope: verify the token
//! and find the scope in it. `outside` is a request for a scope the token lacks: the
//! service answers 403, which must classify as a denial; a token the verifier refuses is
//! a `TokenError`, an authentication failure.

use std::sync::Arc;
use std::time::Duration;

use jit_test::conformance::{self, BoxError, Plan};
use jit_test::{Config, HttpStatus, Provider};
use jit_test_providers::token::{TokenAuthority, TokenGrant, Verifier};

/// A service endpoint that needs `scope`: 401 (as a `TokenError`) for a token it refuses,
/// 403 for a valid token without the scope.
fn serve(verifier: &Verifier, grant: &TokenGrant, scope: &str) -> Result<(), BoxError> {
    let claims = verifier.verify(grant.token().expose())?;
    if claims.allows(scope) {
        Ok(())
    } else {
        Err(Box::new(HttpStatus(403)))
    }
}

/// Runs the kit with `read:orders` granted; `outside` is the scope the denial probe asks for.
async fn check(outside: &'static str, short_ttl: Duration) -> conformance::Report {
    let authority = Arc::new(TokenAuthority::from_config(Config::global()).unwrap());
    let verifier = authority.verifier();
    let plan = Plan {
        scope: "token:read:orders",
        invalid: "token:read(id):orders",
        short_ttl,
    };
    conformance::check(
        authority,
        plan,
        async |grant: &TokenGrant| serve(&verifier, grant, "read:orders"),
        async |grant: &TokenGrant| serve(&verifier, grant, outside),
    )
    .await
}

#[tokio::test]
async fn the_token_authority_keeps_the_provider_contract() {
    let report = check("write:orders", Duration::from_secs(2)).await;
    println!("{report}");
    report.assert_passed();
    assert!(report.checks.len() >= 9, "every check ran:\n{report}");
}

#[tokio::test]
async fn a_broken_probe_fails_conformance() {
    // The kit is only as good as its probes: one that never denies must fail it.
    let report = check("read:orders", Duration::from_secs(1)).await;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(failed, ["outside the scope is denied"], "\n{report}");
}
