//! Fixtures and helpers shared by the `mysql` tests (run `.ci/setup-mysql` first).
#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::time::Duration;

use jit_test::{Config, GrantRequest, Permission, Scope};
use jit_test_providers::mysql::MysqlProvider;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

/// Everything these tests use lives in databases `jit_my`, `jit_my_x`, `jit_myYx` and
/// `jit_my_public` (where `PUBLIC` may read one table).
const FIXTURES: &str = "
    CREATE DATABASE IF NOT EXISTS jit_my;
    CREATE TABLE IF NOT EXISTS jit_my.orders (id int AUTO_INCREMENT PRIMARY KEY,
        sku varchar(20) NOT NULL, status varchar(20), note varchar(50));
    CREATE TABLE IF NOT EXISTS jit_my.items (id int);
    CREATE DATABASE IF NOT EXISTS jit_my_public;
    CREATE TABLE IF NOT EXISTS jit_my_public.items (id int);
    CREATE TABLE IF NOT EXISTS jit_my_public.notes (note varchar(50));
    GRANT SELECT ON jit_my_public.notes TO PUBLIC;
    CREATE PROCEDURE IF NOT EXISTS jit_my.place_order(s varchar(20))
        INSERT INTO jit_my.orders (sku) VALUES (s);
    CREATE PROCEDURE IF NOT EXISTS jit_my.cancel_all() DELETE FROM jit_my.orders;
    CREATE DATABASE IF NOT EXISTS jit_my_x;
    CREATE TABLE IF NOT EXISTS jit_my_x.t (x int);
    CREATE DATABASE IF NOT EXISTS jit_myYx;
    CREATE TABLE IF NOT EXISTS jit_myYx.t (x int);
";

/// The provider as the configuration builds it.
pub fn provider() -> Arc<MysqlProvider> {
    jit_test::provider::<MysqlProvider>().expect("the mysql provider builds from the configuration")
}

/// A provider with these `[providers.mysql]` lines.
pub fn provider_with(settings: &str) -> MysqlProvider {
    use jit_test::Provider as _;
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[mysql]\n{settings}")).unwrap();
    MysqlProvider::from_config(&config).unwrap()
}

/// An admin connection on the current runtime, with the fixtures in place.
pub async fn admin() -> Conn {
    let mut conn = Conn::new(provider().settings().admin.clone())
        .await
        .expect("admin connection (run .ci/setup-mysql)");
    // Serialised across processes: CREATE ... IF NOT EXISTS races otherwise.
    conn.query_drop("DO GET_LOCK('jit_my.fixtures', 60)")
        .await
        .unwrap();
    conn.query_drop(FIXTURES).await.expect("fixtures");
    conn.query_drop("DO RELEASE_LOCK('jit_my.fixtures')")
        .await
        .unwrap();
    conn
}

/// A grant request with a fresh lease id.
pub fn request(test: &str, scope: &str, deny: &str, ttl: Duration) -> GrantRequest {
    let parse = |s: &str| -> Vec<Permission> {
        if s.is_empty() {
            Vec::new()
        } else {
            Scope::parse(s).unwrap().permissions
        }
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    GrantRequest {
        test: format!("mysql::{test}"),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("my{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: parse(scope),
        deny: parse(deny),
        ttl,
    }
}

/// Whether the user exists on the server.
pub async fn user_exists(admin: &mut Conn, user: &str) -> bool {
    let n: Option<u64> = admin
        .exec_first("SELECT COUNT(*) FROM mysql.user WHERE User = ?", (user,))
        .await
        .unwrap();
    n != Some(0)
}

/// Whether the user's expiry event exists.
pub async fn event_exists(admin: &mut Conn, user: &str) -> bool {
    let n: Option<u64> = admin
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'jit_test' AND EVENT_NAME = ?",
            (user,),
        )
        .await
        .unwrap();
    n != Some(0)
}

/// The server error code of a result, if it failed with one.
pub fn code<T>(result: &Result<T, mysql_async::Error>) -> Option<u16> {
    match result {
        Err(mysql_async::Error::Server(e)) => Some(e.code),
        _ => None,
    }
}

/// Whether a refusal says the user does not exist: 1045, or 1698 when the server
/// imitates the login of an unknown user with another account's plugin (MariaDB does,
/// so as not to tell which users exist).
pub fn gone(refusal: &str) -> bool {
    refusal.contains("1045") || refusal.contains("1698")
}
