//! What happens to a token when its test is over, or its ttl runs out mid-test: the
//! service refuses it, with 401.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use examples::client::Client;
use examples::{AppState, serve};
use jit_test::{Secret, Test, assert_unauthenticated, jit_test};
use jit_test_providers::token::{TokenAuthority, TokenGrant};

/// A token that expires while its test runs is refused from then on.
///
/// The ttl is 2 s rather than 1 s: a JWT's `exp` counts whole seconds and is rounded
/// down, so a 1 s token may have only milliseconds left when the body starts.
#[jit_test(scope = "token:read:orders", ttl = "2s")]
async fn a_token_that_expires_mid_test_is_refused(token: TokenGrant) -> anyhow::Result<()> {
    let verifier = TokenAuthority::shared().verifier();
    let dead_at = token.claims().expires_at() + verifier.leeway();
    let server = serve(AppState::in_memory(verifier)).await?;
    let reader = Client::new(server.addr(), token.token());
    assert_eq!(reader.list_orders().await?, []);

    let left = dead_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    // Had the test not expected the expiry (`reader.list_orders().await?` here), its
    // failure would name the cause:
    //
    //   Error: GET /orders answered HTTP status 401 (WWW-Authenticate: Bearer
    //   error="invalid_token", error_description="expired")
    //   ...
    //   note: the token credential (jit_47d0b2c6_12837_0) expired during the test, 1s 544ms
    //   after it was granted (ttl 2s; a JWT's exp is whole seconds); the body ran 1s 601ms.
    //   Failures after that point come from the expiry, not from a missing permission
    assert_unauthenticated!(reader.list_orders().await);
    Ok(())
}

/// After its test, a token is revoked: the service that accepted it during the test
/// refuses it afterwards. Taking the token out of the test to try that needs `Test`
/// itself rather than `#[jit_test]`.
#[test]
fn a_revoked_token_is_refused_by_the_running_service() -> anyhow::Result<()> {
    // A multi-threaded runtime serves on its own workers while this thread waits for the
    // test body, which runs on a runtime of its own.
    let runtime = tokio::runtime::Runtime::new()?;
    let verifier = TokenAuthority::shared().verifier();
    let server = runtime.block_on(serve(AppState::in_memory(verifier)))?;
    let addr = server.addr();

    // The token, taken out of the test as if it had leaked (a log line, a cache).
    let leaked = Arc::new(Mutex::new(None::<Secret>));
    let leak = Arc::clone(&leaked);
    Test::new("token_lifecycle::a_revoked_token_is_refused_by_the_running_service")
        .scope("token:read:orders")
        .run(move |(token,): (TokenGrant,)| {
            *leak.lock().unwrap() = Some(token.token().clone());
            async move {
                let orders = Client::new(addr, token.token()).list_orders().await?;
                assert_eq!(orders, []);
                anyhow::Ok(())
            }
        });

    let old = leaked.lock().unwrap().take().expect("the test body ran");
    let refused = assert_unauthenticated!(runtime.block_on(Client::new(addr, &old).list_orders()));
    assert!(
        refused
            .to_string()
            .contains(r#"error_description="revoked""#),
        "{refused}"
    );
    Ok(())
}
