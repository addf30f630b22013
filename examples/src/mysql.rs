//! [`MysqlStore`]: orders in MariaDB/MySQL, table `examples.orders`, and its
//! [`migrate`]ion.

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Row};
use tokio::sync::Mutex;

use crate::store::{Order, OrderStore, StoreError};
use jit_test_providers::token::Verifier;

use crate::AppState;

/// Creates database `examples` and table `examples.orders` unless they exist, under a
/// named lock: concurrent migrations (test processes started together) wait for each
/// other instead of racing on `IF NOT EXISTS`.
const MIGRATION: &str = "
    DO GET_LOCK('examples: migrate', 60);
    CREATE DATABASE IF NOT EXISTS examples;
    CREATE TABLE IF NOT EXISTS examples.orders (
        id bigint unsigned AUTO_INCREMENT PRIMARY KEY,
        sku varchar(64) NOT NULL,
        created_at timestamp DEFAULT CURRENT_TIMESTAMP
    );
    DO RELEASE_LOCK('examples: migrate');
";

/// Creates the service's database and table if they are missing; safe to run again,
/// and from many processes at once. Run it with an administrative connection, not the
/// service's own: the service needs no DDL rights.
pub async fn migrate(admin: &mut Conn) -> Result<(), mysql_async::Error> {
    admin.query_drop(MIGRATION).await
}

/// Orders in table `examples.orders` (see [`migrate`]), through one connection.
///
/// | method | statement | privileges |
/// |---|---|---|
/// | `list` | `SELECT` | `SELECT` |
/// | `insert` | `INSERT`, then the connection's `LAST_INSERT_ID()` | `INSERT` |
/// | `delete` | `DELETE ... WHERE id = ?` | `DELETE`, `SELECT` (the `WHERE` reads `id`) |
///
/// A privilege the connection's user lacks fails the operation with error 1142, which
/// the service answers with 500 (see [`crate::ServiceError::Store`]).
#[derive(Debug)]
pub struct MysqlStore {
    conn: Mutex<Conn>,
}

impl MysqlStore {
    /// A store over `conn`, a connection whose user holds the privileges above.
    pub fn new(conn: Conn) -> MysqlStore {
        MysqlStore {
            conn: Mutex::new(conn),
        }
    }
}

impl OrderStore for MysqlStore {
    async fn list(&self) -> Result<Vec<Order>, StoreError> {
        let sql = "SELECT id, sku FROM examples.orders ORDER BY id";
        let rows: Vec<Row> = self.conn.lock().await.query(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (id, sku) = mysql_async::from_row(row);
                Order { id, sku }
            })
            .collect())
    }

    async fn insert(&self, sku: &str) -> Result<Order, StoreError> {
        let mut conn = self.conn.lock().await;
        conn.exec_drop("INSERT INTO examples.orders (sku) VALUES (?)", (sku,))
            .await?;
        let id = conn.last_insert_id().ok_or("the INSERT returned no id")?;
        Ok(Order {
            id,
            sku: sku.to_owned(),
        })
    }

    async fn delete(&self, id: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock().await;
        conn.exec_drop("DELETE FROM examples.orders WHERE id = ?", (id,))
            .await?;
        Ok(conn.affected_rows() == 1)
    }
}

impl AppState<MysqlStore> {
    /// A service that checks tokens with `verifier` and keeps orders in MariaDB/MySQL,
    /// table `examples.orders`, through `conn` (see [`MysqlStore`] for the privileges
    /// its user needs).
    pub fn mysql(verifier: Verifier, conn: Conn) -> AppState<MysqlStore> {
        AppState::new(verifier, MysqlStore::new(conn))
    }
}
