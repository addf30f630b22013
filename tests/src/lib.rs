//! End-to-end tests of the whole framework (in `tests/`), the helper binaries they start
//! (in `src/bin/`), and what those tests share (here).

use std::any::Any;

pub mod audit_table;

use jit_test_providers::postgres::PgProvider;
use tokio_postgres::Client;

/// The permissions the PostgreSQL end-to-end tests grant: insert and read orders.
pub const PG_SCOPE: &str = "pg:select:jit_e2e.orders, pg:insert:jit_e2e.orders, \
                            pg:usage:sequence:jit_e2e.orders_id_seq";

/// The text of a panic payload (`String` or `&str`), empty for anything else.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// A current-thread runtime for a test's own async work.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

/// The process-wide `pg` provider.
pub fn pg_provider() -> std::sync::Arc<PgProvider> {
    jit_test::provider::<PgProvider>().expect("the pg provider builds from the configuration")
}

/// An admin connection, with the fixtures in place: `jit_e2e.orders` for the tests'
/// scopes, and `jit_e2e_shared`, whose `public_notes` PUBLIC may read (a privilege beyond
/// any scope, for the tests that look for one). Serialised across processes.
pub async fn pg_admin() -> Client {
    let client = pg_provider()
        .admin_client()
        .await
        .expect("admin connection");
    client
        .batch_execute(
            "SELECT pg_advisory_xact_lock(4242, 4);
             CREATE SCHEMA IF NOT EXISTS jit_e2e;
             CREATE TABLE IF NOT EXISTS jit_e2e.orders (id serial PRIMARY KEY, sku text NOT NULL);
             DROP TABLE IF EXISTS jit_e2e.public_notes;
             CREATE SCHEMA IF NOT EXISTS jit_e2e_shared;
             CREATE TABLE IF NOT EXISTS jit_e2e_shared.archive (sku text);
             CREATE TABLE IF NOT EXISTS jit_e2e_shared.public_notes (note text);
             GRANT SELECT ON jit_e2e_shared.public_notes TO PUBLIC;",
        )
        .await
        .expect("fixtures");
    client
}
