//! A test process for the crash tests of `tests/pg_e2e.rs`: runs one jit-test test that
//! holds a `pg` credential and a live session, prints `READY <role>` and waits to be
//! killed. The credential's connection URL goes to the file named by
//! `PG_VICTIM_SECRET_FILE` (created with mode 0600), never to the output.
//!
//! Usage: `pg_victim <ttl seconds>`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::Duration;

use jit_test_providers::postgres::PgGrant;

fn main() {
    let ttl: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: pg_victim <ttl seconds>");
    let secret_file = std::env::var_os("PG_VICTIM_SECRET_FILE").expect("PG_VICTIM_SECRET_FILE");
    jit_test::Test::new("pg_victim::killed_mid_test")
        .scope("pg:select:jit_e2e.orders")
        .ttl(Duration::from_secs(ttl))
        .timeout(Duration::from_secs(600))
        .run(move |(pg,): (PgGrant,)| {
            let secret_file = secret_file.clone();
            async move {
                let db = pg.connect().await.expect("login");
                db.query("SELECT count(*) FROM jit_e2e.orders", &[])
                    .await
                    .expect("select");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&secret_file)
                    .expect("secret file");
                file.write_all(pg.connection_string().expose().as_bytes())
                    .expect("write");
                drop(file);
                println!("READY {}", pg.role());
                std::io::stdout().flush().expect("flush");
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
}
