#![cfg(feature = "postgres")]
//! The orders service on PostgreSQL, under least privilege on both sides: the service
//! logs in as the test's short-lived database role (a `PgGrant`), the HTTP caller holds
//! the test's token (a `TokenGrant`). Each test's `pg` scope is the least its service
//! needs, so a statement the code did not declare fails here, as it would in a
//! production deployment with the same grants.
//!
//! Needs a PostgreSQL server (`JIT_TEST_PG_URL`; see jit-test-providers' `postgres`
//! module): `cargo test -p examples --features postgres`.
//!
//! A grant names tables, so they must exist *before* it: `setup = "migrate"` runs the
//! migration as the admin before anything is granted.
//!
//! Orders of all tests, of this run and of earlier ones, share `examples.orders`: each
//! test orders a sku of its own (named after its role) and looks only at that one.

use std::sync::{Arc, Mutex};

use examples::client::{ApiError, Client};
use examples::{AppState, serve, store};
use jit_test::{HttpStatus, Test, assert_denied, assert_unauthenticated, jit_test};
use jit_test_providers::postgres::{PgGrant, PgProvider};
use jit_test_providers::token::{TokenAuthority, TokenGrant};

/// Puts `examples.orders` in place: [`store::migrate`], as the admin. Idempotent and
/// serialised by the migration itself, so every test may run it, in any process.
async fn migrate() -> anyhow::Result<()> {
    let admin = jit_test::provider::<PgProvider>()?.admin_client().await?;
    store::migrate(&admin).await?;
    Ok(())
}

/// A service on `db`, checking the tokens `#[jit_test]`'s authority grants.
async fn service(db: tokio_postgres::Client) -> std::io::Result<examples::Server> {
    serve(AppState::postgres(TokenAuthority::shared().verifier(), db)).await
}

/// The happy path on PostgreSQL: a customer places an order and finds it in the list.
/// `deny` proves before the body runs that the service's role cannot delete orders:
/// the grant fails if it could (through `PUBLIC`, a group role, a default privilege).
#[jit_test(
    scope = "token:read:orders, token:write:orders, pg:select:examples.orders, \
             pg:insert:examples.orders, pg:usage:sequence:examples.orders_id_seq",
    deny = "pg:delete:examples.orders",
    setup = "migrate"
)]
async fn customer_places_and_lists_an_order(token: TokenGrant, pg: PgGrant) -> anyhow::Result<()> {
    let server = service(pg.connect().await?).await?;
    let customer = Client::new(server.addr(), token.token());
    let sku = format!("sku-{}", pg.role());
    let order = customer.place_order(&sku).await?;
    assert_eq!(order.sku, sku);
    let mine: Vec<_> = customer
        .list_orders()
        .await?
        .into_iter()
        .filter(|o| o.sku == sku)
        .collect();
    assert_eq!(mine, [order]);
    Ok(())
}

/// A service deployed read-only: its role may only `SELECT`, even though the caller's
/// token allows `write:orders`. The database refuses the INSERT, and the service answers
/// 500, not 403: the caller was allowed, the deployment is wrong (see
/// `ServiceError::Store`).
#[jit_test(
    scope = "token:read:orders, token:write:orders, pg:select:examples.orders",
    setup = "migrate"
)]
async fn a_read_only_service_cannot_place_orders(
    token: TokenGrant,
    pg: PgGrant,
) -> anyhow::Result<()> {
    let db = pg.connect().await?;
    let sku = format!("sku-{}", pg.role());
    // The role's own connection: PostgreSQL refuses with SQLSTATE 42501.
    assert_denied!(
        db.execute("INSERT INTO examples.orders (sku) VALUES ($1)", &[&sku])
            .await
    );

    let server = service(db).await?;
    let customer = Client::new(server.addr(), token.token());
    customer.list_orders().await?;
    let refused = customer.place_order(&sku).await;
    assert!(
        matches!(
            refused,
            Err(ApiError::Status {
                status: HttpStatus(500),
                ..
            })
        ),
        "a refused INSERT is the service's failure: {refused:?}"
    );
    Ok(())
}

/// After its test, the role is gone: its password, taken out of the test as if it had
/// leaked (a log line, a connection string in a crash report), logs in no more. The
/// plain-function form, [`Test`], lets the test look at the credential after release.
#[test]
fn the_role_cannot_log_in_after_its_test() {
    let leaked = Arc::new(Mutex::new(None::<tokio_postgres::Config>));
    let leak = Arc::clone(&leaked);
    Test::new("orders_pg::the_role_cannot_log_in_after_its_test")
        .setup(migrate)
        .scope("token:read:orders, pg:select:examples.orders")
        .run(move |(token, pg): (TokenGrant, PgGrant)| {
            *leak.lock().unwrap() = Some(pg.config().clone());
            async move {
                let server = service(pg.connect().await?).await?;
                Client::new(server.addr(), token.token())
                    .list_orders()
                    .await?;
                anyhow::Ok(())
            }
        });

    let config = leaked.lock().unwrap().take().expect("the test body ran");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // SQLSTATE 28P01: the server no longer knows the role.
    assert_unauthenticated!(runtime.block_on(config.connect(tokio_postgres::NoTls)));
}
