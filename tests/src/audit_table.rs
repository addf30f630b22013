//! A scratch PostgreSQL audit table for tests and benchmarks: a database and a writers'
//! role of its own, migrated, and removed again when dropped.

use std::future::Future;

use tokio_postgres::{Client, NoTls};

/// Where the tests' PostgreSQL server is, as the superuser `postgres`.
const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A database holding a migrated audit table, and a role that may only insert and read.
pub struct AuditTable {
    /// The database's name (also the prefix of the writers' role).
    pub name: String,
}

/// Runs `work` on a runtime of its own, on a thread of its own (callable from anywhere).
fn on_own_runtime<T: Send>(work: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| crate::runtime().block_on(work))
            .join()
            .expect("the scratch table's setup panicked")
    })
}

async fn superuser(database: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(&format!("{SERVER}/{database}"), NoTls)
        .await
        .expect("superuser connection to 127.0.0.1:5432");
    tokio::spawn(connection);
    client
}

impl AuditTable {
    /// Creates the database and the role, and migrates the table as its owner.
    pub fn create() -> AuditTable {
        let name = format!("audit_{}", jit_test::rand::hex(6));
        let table = AuditTable { name };
        let (database, writer) = (table.name.clone(), table.writer());
        on_own_runtime(async {
            let admin = superuser("postgres").await;
            // One statement each: CREATE DATABASE cannot run in a transaction block.
            for sql in [
                format!("CREATE ROLE \"{writer}\" LOGIN"),
                format!("CREATE DATABASE \"{database}\""),
            ] {
                admin
                    .batch_execute(&sql)
                    .await
                    .expect("scratch database and role");
            }
        });
        jit_test::audit::postgres::migrate(&table.owner_url(), Some(&writer))
            .expect("migrating the scratch audit table");
        table
    }

    /// The writers' role.
    pub fn writer(&self) -> String {
        format!("{}_w", self.name)
    }

    /// The URL of the table as its owner.
    pub fn owner_url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

    /// The URL of the table as the writers' role.
    pub fn writer_url(&self) -> String {
        format!("postgres://{}@127.0.0.1:5432/{}", self.writer(), self.name)
    }

    /// The same, over the server's Unix socket (`/var/run/postgresql`).
    pub fn writer_socket_url(&self) -> String {
        format!(
            "host=/var/run/postgresql port=5432 user={} dbname={}",
            self.writer(),
            self.name
        )
    }

    /// Runs `sql` as the table's owner (the superuser).
    pub fn as_owner(&self, sql: &str) {
        let database = self.name.clone();
        on_own_runtime(async move {
            superuser(&database)
                .await
                .batch_execute(sql)
                .await
                .expect("owner's statement");
        });
    }

    /// How many sessions the writers' role has open on the server.
    pub fn writer_sessions(&self) -> i64 {
        let writer = self.writer();
        on_own_runtime(async move {
            superuser("postgres")
                .await
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
                    &[&writer],
                )
                .await
                .expect("pg_stat_activity")
                .get(0)
        })
    }

    /// Runs `sql` as the writers' role and returns the server's error, if any.
    pub fn as_writer(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let url = self.writer_url();
        on_own_runtime(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls)
                .await
                .expect("writer connection");
            tokio::spawn(connection);
            client.batch_execute(sql).await
        })
    }
}

impl Drop for AuditTable {
    fn drop(&mut self) {
        let (database, writer) = (self.name.clone(), self.writer());
        on_own_runtime(async move {
            let admin = superuser("postgres").await;
            for sql in [
                format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
                format!("DROP ROLE IF EXISTS \"{writer}\""),
            ] {
                let _ = admin.batch_execute(&sql).await;
            }
        });
    }
}
