#![cfg(feature = "mysql")]
//! The orders service on MariaDB/MySQL, under least privilege on both sides: the service
//! logs in as the test's short-lived database user (a `MysqlGrant`), the HTTP caller
//! holds the test's token (a `TokenGrant`). Each test's `mysql` scope is the least its
//! service needs, so a statement the code did not declare fails here, as it would in a
//! production deployment with the same grants.
//!
//! Needs a MariaDB server (`JIT_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`; `.ci/setup-mysql`):
//! `cargo test -p examples --features mysql`.
//!
//! Orders of all tests share `examples.orders`: each test orders a sku of its own (named
//! after its user) and looks only at that one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::OrderStore as _;
use examples::client::{ApiError, Client};
use examples::mysql::{MysqlStore, migrate};
use examples::{AppState, serve};
use jit_test::{
    ErrorClass, HttpStatus, Secret, Test, assert_denied, assert_unauthenticated, classify, jit_test,
};
use jit_test_providers::mysql::{MysqlGrant, MysqlProvider};
use jit_test_providers::token::{TokenAuthority, TokenGrant};
use mysql_async::prelude::Queryable;

/// Puts `examples.orders` in place, as the admin, before anything is granted (a grant
/// names tables, so they must exist).
async fn setup() -> anyhow::Result<()> {
    let provider = jit_test::provider::<MysqlProvider>()?;
    let mut admin = mysql_async::Conn::new(provider.settings().admin.clone()).await?;
    migrate(&mut admin).await?;
    Ok(())
}

/// A service on `db`'s user, checking the tokens `#[jit_test]`'s authority grants.
async fn service(db: &MysqlGrant) -> anyhow::Result<examples::Server> {
    let verifier = TokenAuthority::shared().verifier();
    let state: AppState<MysqlStore> = AppState::mysql(verifier, db.connect().await?);
    Ok(serve(state).await?)
}

/// The happy path: a customer places an order and finds it in the list. `deny` proves
/// before the body runs that the service's user cannot delete orders (not through
/// `PUBLIC` either).
#[jit_test(
    scope = "token:read:orders, token:write:orders, mysql:select:examples.orders, \
             mysql:insert:examples.orders",
    deny = "mysql:delete:examples.orders",
    setup = "setup"
)]
async fn customer_places_and_lists_an_order(
    token: TokenGrant,
    db: MysqlGrant,
) -> anyhow::Result<()> {
    let server = service(&db).await?;
    let customer = Client::new(server.addr(), token.token());
    let sku = format!("sku-{}", db.user());
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

/// A service deployed read-only: its user may only `SELECT`, although the caller's token
/// allows `write:orders`. MariaDB refuses the INSERT (error 1142) and the service answers
/// 500: the caller was allowed, the deployment is wrong.
#[jit_test(
    scope = "token:read:orders, token:write:orders, mysql:select:examples.orders",
    setup = "setup"
)]
async fn a_read_only_service_cannot_place_orders(
    token: TokenGrant,
    db: MysqlGrant,
) -> anyhow::Result<()> {
    let mut conn = db.connect().await?;
    assert_denied!(
        conn.query_drop("INSERT INTO orders (sku) VALUES ('x')")
            .await
    );
    let server = service(&db).await?;
    let customer = Client::new(server.addr(), token.token());
    customer.list_orders().await?;
    let refused = customer.place_order(&format!("sku-{}", db.user())).await;
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

/// The database user dies mid-test: at its ttl the server's own event drops it and kills
/// its connection, so the store fails from then on (a cut connection, neither a denial
/// nor an authentication failure) and the old password logs in no more.
#[jit_test(scope = "mysql:select:examples.orders", ttl = "3s", setup = "setup")]
async fn the_stores_user_dies_at_its_ttl(db: MysqlGrant) -> anyhow::Result<()> {
    let store = MysqlStore::new(db.connect().await?);
    store.list().await.map_err(anyhow::Error::from_boxed)?;
    let left = db
        .expires_at()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(1500)).await;
    let cut = store.list().await;
    assert!(cut.is_err(), "the store's session outlived its user");
    assert_eq!(classify(cut.unwrap_err().as_ref()), ErrorClass::Other);
    assert_unauthenticated!(db.connect().await);
    Ok(())
}

/// After its test, the user is gone: its password, taken out of the test as if it had
/// leaked, logs in no more; and the server's event, which would have dropped it at the
/// ttl had every process been killed, is gone with it.
#[test]
fn the_user_cannot_log_in_after_its_test() {
    let leaked = Arc::new(Mutex::new(None::<Secret>));
    let leak = Arc::clone(&leaked);
    let started = Instant::now();
    Test::new("orders_mysql::the_user_cannot_log_in_after_its_test")
        .setup(setup)
        .scope("token:read:orders, mysql:select:examples.orders")
        .run(move |(token, db): (TokenGrant, MysqlGrant)| {
            *leak.lock().unwrap() = Some(db.url());
            async move {
                let server = service(&db).await?;
                Client::new(server.addr(), token.token())
                    .list_orders()
                    .await?;
                anyhow::Ok(())
            }
        });
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "released at once, not at the ttl"
    );

    let url = leaked.lock().unwrap().take().expect("the test body ran");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let opts = mysql_async::Opts::from_url(url.expose()).expect("the credential's URL");
    // Error 1045: the server no longer knows the user.
    assert_unauthenticated!(runtime.block_on(mysql_async::Conn::new(opts)));
}
