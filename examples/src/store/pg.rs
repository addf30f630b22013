//! [`PgStore`]: orders in PostgreSQL, table `examples.orders`, and its [`migrate`]ion.

use tokio_postgres::{Client, Row};

use super::{Order, OrderStore, StoreError};

/// Creates schema `examples` and table `examples.orders` unless they exist. The
/// transaction-scoped advisory lock serialises concurrent migrations (test processes
/// started together), which `IF NOT EXISTS` alone does not: two sessions creating the same
/// table at once can both see it missing, and one then fails.
const MIGRATION: &str = "
    BEGIN;
    SELECT pg_advisory_xact_lock(hashtext('examples: migrate'));
    CREATE SCHEMA IF NOT EXISTS examples;
    CREATE TABLE IF NOT EXISTS examples.orders (
        id bigserial PRIMARY KEY,
        sku text NOT NULL,
        created_at timestamptz DEFAULT now()
    );
    COMMIT;
";

/// Creates the service's schema and table if they are missing; safe to run again, and
/// from many processes at once.
///
/// Run it with an administrative connection (one that may create schemas and tables),
/// not with the service's own: the service needs no DDL rights, only `SELECT`, `INSERT`
/// and `DELETE` on `examples.orders` and `USAGE` on `examples.orders_id_seq`.
pub async fn migrate(admin: &Client) -> Result<(), tokio_postgres::Error> {
    admin.batch_execute(MIGRATION).await
}

/// Orders in table `examples.orders` (see [`migrate`]), through one connection.
///
/// Each operation is one statement, so it needs exactly one privilege on the table:
///
/// | method | statement | privileges |
/// |---|---|---|
/// | `list` | `SELECT` | `SELECT` |
/// | `insert` | `INSERT ... RETURNING` | `INSERT`, `SELECT` (to read the row back), `USAGE` on `examples.orders_id_seq` |
/// | `delete` | `DELETE ... WHERE id = $1` | `DELETE`, `SELECT` (the `WHERE` reads `id`) |
///
/// A privilege the connection's role lacks fails the operation with SQLSTATE 42501, which
/// the service answers with 500 (see [`crate::ServiceError::Store`]).
#[derive(Debug)]
pub struct PgStore {
    client: Client,
}

impl PgStore {
    /// A store over `client`, a connection whose role holds the privileges above (and which
    /// is driven by a task of the current runtime, as `tokio_postgres::connect` leaves it).
    pub fn new(client: Client) -> PgStore {
        PgStore { client }
    }
}

/// An order from a row whose first two columns are `id, sku`.
fn order(row: &Row) -> Order {
    Order {
        // A bigserial starts at 1.
        id: row.get::<_, i64>(0) as u64,
        sku: row.get(1),
    }
}

impl OrderStore for PgStore {
    async fn list(&self) -> Result<Vec<Order>, StoreError> {
        let sql = "SELECT id, sku FROM examples.orders ORDER BY id";
        let rows = self.client.query(sql, &[]).await?;
        Ok(rows.iter().map(order).collect())
    }

    async fn insert(&self, sku: &str) -> Result<Order, StoreError> {
        let sql = "INSERT INTO examples.orders (sku) VALUES ($1) RETURNING id, sku";
        Ok(order(&self.client.query_one(sql, &[&sku]).await?))
    }

    async fn delete(&self, id: u64) -> Result<bool, StoreError> {
        // An id beyond bigint's range names no order.
        let Ok(id) = i64::try_from(id) else {
            return Ok(false);
        };
        let sql = "DELETE FROM examples.orders WHERE id = $1";
        Ok(self.client.execute(sql, &[&id]).await? == 1)
    }
}
