//! Test bodies shared by more than one test file.

use examples::client::Client;
use examples::{AppState, serve};
use jit_test_providers::token::{TokenAuthority, TokenGrant};

/// Lists the orders of a fresh service. Needs exactly `token:read:orders`.
pub async fn lists_orders(token: TokenGrant) -> anyhow::Result<()> {
    let server = serve(AppState::in_memory(TokenAuthority::shared().verifier())).await?;
    let orders = Client::new(server.addr(), token.token())
        .list_orders()
        .await?;
    assert_eq!(orders, []);
    Ok(())
}
