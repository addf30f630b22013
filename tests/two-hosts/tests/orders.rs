//! Orders on two hosts. `.ci/two-hosts` runs these as `--partition count:1/2` on host A
//! and `count:2/2` on host B: the first test by name, which lands on A, keeps its lease
//! while B's tests run (each of B's processes reaps, with no grace), and then logs in
//! again with it. Run alone (`cargo test -p two-hosts`), nothing waits.

use std::time::{Duration, Instant};

use jit_test::{assert_denied, jit_test};
use jit_test_providers::postgres::{PgGrant, PgProvider};

/// The table the scopes name, created as the provider's admin (serialised across
/// processes and hosts by an advisory lock).
async fn orders_table() {
    let admin = jit_test::provider::<PgProvider>()
        .expect("the pg provider")
        .admin_client()
        .await
        .expect("admin connection");
    admin
        .batch_execute(
            "BEGIN;
             SELECT pg_advisory_xact_lock(4242, 22);
             CREATE SCHEMA IF NOT EXISTS two_hosts;
             CREATE TABLE IF NOT EXISTS two_hosts.orders (
                 id serial PRIMARY KEY, sku text NOT NULL, host text NOT NULL);
             COMMIT;",
        )
        .await
        .expect("the two_hosts.orders table");
}

fn host() -> String {
    jit_test::config::hostname()
}

/// Waits for the file `TWO_HOSTS_RELEASE` names, if it names one: the other host is done.
/// (Blocking is fine: the lease's watchdog runs on the broker's runtime, not this one.)
fn wait_for_release() -> Result<(), String> {
    let Some(path) = std::env::var_os("TWO_HOSTS_RELEASE") else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(100);
    while !std::path::Path::new(&path).exists() {
        if Instant::now() > deadline {
            return Err(format!("{} did not appear within 100 s", path.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[jit_test(
    scope = "pg:select:two_hosts.orders, pg:insert:two_hosts.orders, pg:usage:sequence:two_hosts.orders_id_seq",
    ttl = "110s",
    timeout = "115s",
    setup = "orders_table"
)]
async fn a_lease_held_on_one_host_outlives_the_other_hosts_reapers(
    pg: PgGrant,
) -> Result<(), Box<dyn std::error::Error>> {
    let db = pg.connect().await?;
    db.execute(
        "INSERT INTO two_hosts.orders (sku, host) VALUES ('held', $1)",
        &[&host()],
    )
    .await?;
    wait_for_release()?;
    // A fresh login: the role is still there and still valid.
    let again = pg.connect().await?;
    let rows = again
        .query("SELECT 1 FROM two_hosts.orders WHERE sku = 'held'", &[])
        .await?;
    assert!(!rows.is_empty());
    Ok(())
}

#[jit_test(
    scope = "pg:select:two_hosts.orders, pg:insert:two_hosts.orders, pg:usage:sequence:two_hosts.orders_id_seq",
    setup = "orders_table"
)]
async fn an_order_is_placed_and_read_back(pg: PgGrant) -> Result<(), Box<dyn std::error::Error>> {
    let db = pg.connect().await?;
    let sku = format!("placed-on-{}", host());
    db.execute(
        "INSERT INTO two_hosts.orders (sku, host) VALUES ($1, $2)",
        &[&sku, &host()],
    )
    .await?;
    let rows = db
        .query("SELECT sku FROM two_hosts.orders WHERE sku = $1", &[&sku])
        .await?;
    assert!(!rows.is_empty());
    Ok(())
}

#[jit_test(scope = "pg:select:two_hosts.orders", setup = "orders_table")]
async fn a_reader_cannot_place_orders(pg: PgGrant) -> Result<(), Box<dyn std::error::Error>> {
    let db = pg.connect().await?;
    db.query("SELECT count(*) FROM two_hosts.orders", &[])
        .await?;
    assert_denied!(
        db.execute(
            "INSERT INTO two_hosts.orders (sku, host) VALUES ('x', 'y')",
            &[]
        )
        .await
    );
    Ok(())
}

#[jit_test(
    scope = "pg:select:two_hosts.orders, pg:insert:two_hosts.orders, pg:usage:sequence:two_hosts.orders_id_seq",
    deny = "pg:delete:two_hosts.orders",
    setup = "orders_table"
)]
async fn a_writer_cannot_delete_orders(pg: PgGrant) -> Result<(), Box<dyn std::error::Error>> {
    let db = pg.connect().await?;
    assert_denied!(db.execute("DELETE FROM two_hosts.orders", &[]).await);
    Ok(())
}
