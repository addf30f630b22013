//! The orders API under least privilege: each role can do its job and is refused the
//! next one, by the real service over a real socket.

mod common;

use examples::client::{ApiError, Client};
use examples::{AppState, MemoryStore, OrderStore, serve};
use jit_test::{HttpStatus, assert_denied, assert_unauthenticated, jit_test};
use jit_test_providers::token::{TokenAuthority, TokenGrant};

/// `GET /health` is open; the orders are not. A test that needs no credentials is a plain
/// `#[tokio::test]`.
#[tokio::test]
async fn health_is_open_and_orders_need_a_token() -> anyhow::Result<()> {
    let server = serve(AppState::in_memory(TokenAuthority::shared().verifier())).await?;
    let anonymous = Client::anonymous(server.addr());
    anonymous.health().await?;
    let refused = assert_unauthenticated!(anonymous.list_orders().await);
    assert!(
        refused.to_string().ends_with("(WWW-Authenticate: Bearer)"),
        "{refused}"
    );
    Ok(())
}

/// The happy path: a customer places an order and finds it in the list.
#[jit_test(scope = "token:read:orders, token:write:orders")]
async fn customer_places_and_lists_an_order(token: TokenGrant) -> anyhow::Result<()> {
    let server = serve(AppState::in_memory(TokenAuthority::shared().verifier())).await?;
    let customer = Client::new(server.addr(), token.token());
    let order = customer.place_order("a1").await?;
    assert_eq!(order.sku, "a1");
    assert_eq!(customer.list_orders().await?, [order]);
    Ok(())
}

/// A reader lists orders and is refused the rest with 403, not 401: the token is valid,
/// it just lacks the scope. The refusal comes before the lookup, so it does not reveal
/// whether the order exists.
#[jit_test(scope = "token:read:orders")]
async fn reader_cannot_place_or_delete_orders(token: TokenGrant) -> anyhow::Result<()> {
    let server = serve(AppState::in_memory(TokenAuthority::shared().verifier())).await?;
    let reader = Client::new(server.addr(), token.token());
    assert_eq!(reader.list_orders().await?, []);
    assert_denied!(reader.place_order("a1").await);
    let refused = assert_denied!(reader.delete_order(1).await);
    assert!(
        refused.to_string().contains(r#"scope="admin:orders""#),
        "{refused}"
    );
    Ok(())
}

/// Support staff delete an order. `reason` goes with the request to the approvers and
/// into the audit log (`target/jit-test/audit.jsonl`).
#[jit_test(
    scope = "token:admin:orders",
    reason = "support deletes fraudulent orders; DELETE /orders/{id} needs admin:orders"
)]
async fn support_deletes_an_order(token: TokenGrant) -> anyhow::Result<()> {
    let store = MemoryStore::default();
    let order = store
        .insert("a1")
        .await
        .map_err(anyhow::Error::from_boxed)?;
    let server = serve(AppState::new(TokenAuthority::shared().verifier(), store)).await?;
    let support = Client::new(server.addr(), token.token());
    support.delete_order(order.id).await?;
    let again = support.delete_order(order.id).await;
    assert!(
        matches!(
            again,
            Err(ApiError::Status {
                status: HttpStatus(404),
                ..
            })
        ),
        "the order is gone: {again:?}"
    );
    Ok(())
}

/// Order entry places orders and must never be an admin. `deny` says so where the test
/// is declared: adding `token:admin:orders` to the scope is a compile error, and the
/// service refuses the DELETE.
#[jit_test(scope = "token:write:orders", deny = "token:admin:orders")]
async fn order_entry_cannot_delete(token: TokenGrant) -> anyhow::Result<()> {
    let server = serve(AppState::in_memory(TokenAuthority::shared().verifier())).await?;
    let entry = Client::new(server.addr(), token.token());
    let order = entry.place_order("a1").await?;
    assert_denied!(entry.delete_order(order.id).await);
    Ok(())
}

/// Lists orders. DELIBERATELY OVER-PRIVILEGED: `token:write:orders` is not needed, to
/// show what the least-privilege finder reports (`tests/least_privilege.rs` checks that
/// it does). The minimal scope is `token:read:orders`.
#[jit_test(scope = "token:read:orders, token:write:orders")]
async fn over_privileged_listing(token: TokenGrant) -> anyhow::Result<()> {
    common::lists_orders(token).await
}
