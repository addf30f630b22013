//! # An orders service, tested with least privilege
//!
//! A small but real HTTP API (axum, on a real loopback socket) and the integration
//! tests in `examples/tests/`, written the way a user of jit-test should write theirs.
//!
//! | endpoint | needs the scope | test permission |
//! |---|---|---|
//! | `GET /health` | nothing | none |
//! | `GET /orders` | `read:orders` | `token:read:orders` |
//! | `POST /orders` `{"sku": "a1"}` | `write:orders` | `token:write:orders` |
//! | `DELETE /orders/{id}` | `admin:orders` | `token:admin:orders` |
//!
//! Requests carry `Authorization: Bearer <jwt>`. The service checks the token with a
//! [`Verifier`]: 401 when it is missing, malformed, forged, expired or revoked, 403 when
//! it is valid but lacks the endpoint's scope (see [`ServiceError`]). In production the
//! verifier would come from the identity provider's JWKS; a test builds the service with
//! the verifier of the authority that `#[jit_test]` grants from, so the service under
//! test checks the very tokens, expiry and revocations of the test. A test looks like
//! this (as text: a doctest does not compile the body of a `#[test]` function; `tests/`
//! holds the compiled ones):
//!
//! ```text
//! use examples::{client::Client, serve, AppState};
//! use jit_test::jit_test;
//! use jit_test_providers::token::{TokenAuthority, TokenGrant};
//!
//! #[jit_test(scope = "token:read:orders")]
//! async fn reader_lists_orders(token: TokenGrant) -> anyhow::Result<()> {
//!     let server = serve(AppState::in_memory(TokenAuthority::shared().verifier())).await?;
//!     let orders = Client::new(server.addr(), token.token()).list_orders().await?;
//!     assert!(orders.is_empty());
//!     Ok(())
//! }
//! ```
//!
//! The tests, by theme:
//!
//! - `tests/orders_api.rs`: each role does its job and is refused the next one
//!   (`assert_denied!` on a real 403), `reason`, `deny`, and a deliberately
//!   over-privileged test;
//! - `tests/token_lifecycle.rs`: a token that expires mid-test, and a revoked token tried
//!   against the running service after its test ended;
//! - `tests/least_privilege.rs`: the minimizer finds the over-privileged test's unneeded
//!   permission. `JIT_TEST_MINIMIZE=1 cargo test -p examples` does the same for every test.
//!
//! Run them with `cargo test -p examples` or, one process per test,
//! `cargo nextest run -p examples`: the token authority is in-process, nothing to set up.
//!
//! Orders live behind the [`OrderStore`] trait; [`MemoryStore`] keeps them in memory.
//!
//! ## On PostgreSQL
//!
//! With the `postgres` feature, `PgStore` keeps them in table `examples.orders`, and
//! `AppState::postgres(verifier, client)` builds the service on a `tokio_postgres`
//! connection. The service needs no DDL: `store::migrate(&admin)` creates the schema and
//! table (idempotent, serialised by an advisory lock) and runs with an admin connection;
//! the service's role needs only the table privileges of the statements it sends.
//!
//! `tests/orders_pg.rs` runs the service as each test's short-lived database role and
//! calls it with the test's token, each test with the least `pg` scope it needs:
//!
//! | the service | `pg` scope |
//! |---|---|
//! | lists orders | `pg:select:examples.orders` |
//! | places them (`INSERT ... RETURNING`) | also `pg:insert:examples.orders`, `pg:usage:sequence:examples.orders_id_seq` |
//! | deletes them | `pg:select:examples.orders`, `pg:delete:examples.orders` |
//!
//! A role without a privilege fails the statement with SQLSTATE 42501 (`assert_denied!`
//! recognises it); the service answers 500 then, not 403, as the caller was allowed and
//! the deployment is at fault ([`ServiceError::Store`]). After each test the role is
//! dropped and its password refused (`assert_unauthenticated!`). The tables must exist
//! when a scope naming them is granted, so these tests migrate first, with `setup`:
//!
//! ```text
//! async fn migrate() -> anyhow::Result<()> {
//!     let admin = jit_test::provider::<PgProvider>()?.admin_client().await?;
//!     Ok(store::migrate(&admin).await?)
//! }
//!
//! #[jit_test(scope = "token:write:orders, pg:select:examples.orders, pg:insert:examples.orders, \
//!                     pg:usage:sequence:examples.orders_id_seq",
//!            deny = "pg:delete:examples.orders", setup = "migrate")]
//! async fn customer_places_an_order(token: TokenGrant, pg: PgGrant) -> anyhow::Result<()> {
//!     let server = serve(AppState::postgres(verifier, pg.connect().await?)).await?;
//!     Client::new(server.addr(), token.token()).place_order("a1").await?;
//!     Ok(())
//! }
//! ```
//!
//! Run them with `cargo test -p examples --features postgres` and a server at
//! `JIT_TEST_PG_URL` (default `host=127.0.0.1 user=postgres dbname=test`) that checks
//! passwords (see jit-test-providers' `postgres` module).
//!
//! ## On NATS
//!
//! With the `nats` feature, the `billing` module announces orders on `orders.placed` and
//! has them charged by a billing responder on `billing.charge`, each side with a NATS
//! credential holding exactly its subjects (`tests/orders_nats.rs`).
//!
//! ## Shipping over MQTT
//!
//! With the `mqtt` feature, `shipping` sends each order's shipping command to a warehouse
//! device (`devices/<id>/commands`) and reads the device's reports
//! (`devices/<id>/telemetry`). `tests/orders_mqtt.rs` gives the service and the device
//! each a short-lived Mosquitto client with exactly their topics, shows a device denied
//! another device's topics and `devices/#`, and a device's session cut when its
//! credential expires. Run them with `cargo test -p examples --features mqtt` and the
//! broker of `.ci/setup-mqtt` (see jit-test-providers' `mqtt` module).
//!
//! ## On MariaDB/MySQL
//!
//! With the `mysql` feature, `mysql::MysqlStore` keeps them in table `examples.orders` of
//! a MariaDB server, and `AppState::mysql(verifier, conn)` builds the service on a
//! `mysql_async` connection; `mysql::migrate` creates the database and table as the
//! admin. `tests/orders_mysql.rs` runs it as each test's short-lived MariaDB user
//! (`mysql:select:examples.orders`, `mysql:insert:examples.orders`): the happy path, an
//! INSERT the read-only user is refused (error 1142), and a user the server's own event
//! drops mid-test. Run them with `cargo test -p examples --features mysql` and a server at
//! `JIT_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`; `.ci/setup-mysql`).

pub mod auth;
#[cfg(feature = "nats")]
pub mod billing;
#[cfg(feature = "redis")]
pub mod cache;
pub mod client;
#[cfg(feature = "amqp")]
pub mod events;
#[cfg(feature = "mysql")]
pub mod mysql;
pub mod store;

#[cfg(feature = "mqtt")]
pub mod shipping;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use jit_test_providers::token::Verifier;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use auth::{Caller, ServiceError};
#[cfg(feature = "postgres")]
pub use store::PgStore;
pub use store::{MemoryStore, Order, OrderStore, StoreError};

/// What every request handler shares: how to check tokens, and where orders live.
#[derive(Debug)]
pub struct AppState<S> {
    verifier: Verifier,
    store: Arc<S>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            verifier: self.verifier.clone(),
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: OrderStore> AppState<S> {
    /// A service that checks tokens with `verifier` and keeps orders in `store`.
    pub fn new(verifier: Verifier, store: S) -> AppState<S> {
        AppState {
            verifier,
            store: Arc::new(store),
        }
    }
}

impl AppState<MemoryStore> {
    /// A service that checks tokens with `verifier` and starts with no orders.
    pub fn in_memory(verifier: Verifier) -> AppState<MemoryStore> {
        AppState::new(verifier, MemoryStore::default())
    }
}

#[cfg(feature = "postgres")]
impl AppState<PgStore> {
    /// A service that checks tokens with `verifier` and keeps orders in PostgreSQL, table
    /// `examples.orders`, through `client` (see [`PgStore`] for the privileges its role
    /// needs).
    pub fn postgres(verifier: Verifier, client: tokio_postgres::Client) -> AppState<PgStore> {
        AppState::new(verifier, PgStore::new(client))
    }
}

/// The body of `POST /orders`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The stock-keeping unit to order.
    pub sku: String,
}

/// The service's routes.
pub fn router<S: OrderStore>(state: AppState<S>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders", get(list_orders::<S>).post(place_order::<S>))
        .route("/orders/{id}", delete(delete_order::<S>))
        .with_state(state)
}

async fn list_orders<S: OrderStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Result<Json<Vec<Order>>, ServiceError> {
    caller.require("read:orders")?;
    Ok(Json(state.store.list().await?))
}

async fn place_order<S: OrderStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), ServiceError> {
    caller.require("write:orders")?;
    let order = state.store.insert(&new.sku).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

async fn delete_order<S: OrderStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<StatusCode, ServiceError> {
    caller.require("admin:orders")?;
    match state.store.delete(id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ServiceError::NotFound),
    }
}

/// A running service. Dropping it shuts the service down gracefully: it stops accepting
/// connections and lets the requests in flight finish.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    /// Dropped with the server, which tells the service to stop.
    _shutdown: oneshot::Sender<()>,
}

impl Server {
    /// Where the service listens: `127.0.0.1` and a port of its own.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts the service on `127.0.0.1` with a port chosen by the system, so that every test
/// gets a server of its own on a real socket. The service runs on the current Tokio
/// runtime until the returned [`Server`] is dropped.
pub async fn serve<S: OrderStore>(state: AppState<S>) -> std::io::Result<Server> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router(state))
            // The sender is dropped with the `Server`, which completes `stopped`.
            .with_graceful_shutdown(async move { _ = stopped.await })
            .await
    });
    Ok(Server {
        addr,
        _shutdown: shutdown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_test_providers::token::TokenAuthority;

    #[tokio::test]
    async fn dropping_the_server_stops_it() {
        let server = serve(AppState::in_memory(TokenAuthority::shared().verifier()))
            .await
            .unwrap();
        let api = client::Client::anonymous(server.addr());
        api.health().await.unwrap();
        drop(server);
        for _ in 0..100 {
            if api.health().await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the server still answers a second after it was dropped");
    }
}
