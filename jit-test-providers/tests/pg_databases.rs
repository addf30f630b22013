//! The cost of revoking a `pg` role does not depend on the databases it has nothing to do
//! with: with 50 extra databases on the real server, a revocation connects to none of them
//! (PostgreSQL's own per-database session counters say so) and takes no longer; the one
//! database where the role owns an object is the only one visited. The databases are
//! dropped afterwards, also when an assertion fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{Config, GrantRequest, Provider, Scope};
use jit_test_providers::postgres::PgProvider;
use jit_test_providers::postgres::ident::{quote_ident, quote_literal};
use tokio_postgres::Client;

/// Databases on the server that no role of these tests has anything to do with.
const EXTRA: usize = 50;
/// Revocations timed with and without the extra databases (medians compared).
const TIMED: usize = 7;
const SCOPE: &str = "pg:select:jit_pdb.items";

fn provider() -> Arc<PgProvider> {
    jit_test::provider::<PgProvider>().expect("the pg provider builds from the configuration")
}

fn request(scope: &str) -> GrantRequest {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    GrantRequest {
        test: "pg_databases::revocation".into(),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("pd{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: Scope::parse(scope).unwrap().permissions,
        deny: Vec::new(),
        ttl: Duration::from_secs(60),
    }
}

/// Sessions ever opened in each of `databases` (`pg_stat_database.sessions`), once no
/// backend is connected to any of them any more: a backend's counts reach the statistics
/// when it exits.
async fn sessions(admin: &Client, databases: &[String]) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let busy: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1)",
                &[&databases],
            )
            .await
            .unwrap()
            .get(0);
        if busy == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{busy} sessions stay open in the extra databases"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each query is its own transaction, so the statistics snapshot is fresh.
    let rows = admin
        .query(
            "SELECT d.datname::text, coalesce(s.sessions, 0) FROM unnest($1::text[]) d(datname) \
             LEFT JOIN pg_stat_database s ON s.datname = d.datname ORDER BY d.datname",
            &[&databases],
        )
        .await
        .unwrap();
    let mut by_name: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    by_name.sort();
    let mut sorted = databases.to_vec();
    sorted.sort();
    assert_eq!(
        by_name.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        sorted.iter().collect::<Vec<_>>()
    );
    databases
        .iter()
        .map(|name| by_name.iter().find(|(n, _)| n == name).unwrap().1)
        .collect()
}

/// The median time of `TIMED` grant-then-revoke cycles, revocation only.
async fn revoke_time(p: &PgProvider) -> Duration {
    let mut times = Vec::new();
    for _ in 0..TIMED {
        let granted = p.grant(&request(SCOPE)).await.unwrap();
        let started = Instant::now();
        p.revoke(&granted.lease).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[TIMED / 2]
}

async fn check(admin: &Client, databases: &[String]) {
    let p = provider();
    let without = revoke_time(&p).await;
    for name in databases {
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
            .unwrap();
    }

    // A role with privileges in the admin database only: no extra database is visited.
    let before = sessions(admin, databases).await;
    let with = revoke_time(&p).await;
    let after = sessions(admin, databases).await;
    assert_eq!(
        before, after,
        "revoking roles unrelated to these databases connected to some of them"
    );
    eprintln!(
        "revocation, median of {TIMED}: {without:?} alone, {with:?} with {EXTRA} extra databases"
    );
    assert!(
        with <= without * 2 + Duration::from_millis(50),
        "revocation took {with:?} with {EXTRA} extra databases, {without:?} without"
    );

    // A role that owns a schema in the first extra database: its revocation drops it
    // there, and visits no other.
    let owner_db = &databases[0];
    let granted = p
        .grant(&request(&format!(
            "{SCOPE}, pg:connect:database:{owner_db}, pg:create:database:{owner_db}"
        )))
        .await
        .unwrap();
    let pg = &granted.credential;
    let schema = format!("s_{}", pg.role());
    let there = pg.connect_to(owner_db).await.unwrap();
    there
        .batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&schema)))
        .await
        .unwrap();
    drop(there);
    let before = sessions(admin, databases).await;
    p.revoke(&granted.lease).await.unwrap();
    let after = sessions(admin, databases).await;
    let visited: Vec<&String> = databases
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| a > b)
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        visited,
        [owner_db],
        "revocation visited these databases: {visited:?}"
    );
    let owner = admin_in(owner_db).await;
    let left: i64 = owner
        .query_one(
            &format!(
                "SELECT count(*) FROM pg_namespace WHERE nspname = {}",
                quote_literal(&schema)
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the role's schema outlived it");
}

/// An admin connection to `database`.
async fn admin_in(database: &str) -> Client {
    let mut config = provider().settings().admin.clone();
    config.dbname(database);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_visits_only_the_databases_the_role_has_objects_in() {
    let admin = provider().admin_client().await.expect("admin connection");
    admin
        .batch_execute(
            "SELECT pg_advisory_xact_lock(4242, 3); CREATE SCHEMA IF NOT EXISTS jit_pdb; \
             CREATE TABLE IF NOT EXISTS jit_pdb.items (id int);",
        )
        .await
        .unwrap();
    let databases: Vec<String> = (0..EXTRA)
        .map(|i| format!("jit_pdb_{}_{i}", std::process::id()))
        .collect();
    let admin = Arc::new(admin);
    let outcome = tokio::spawn({
        let (admin, databases) = (Arc::clone(&admin), databases.clone());
        async move { check(&admin, &databases).await }
    })
    .await;
    for name in &databases {
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await
            .unwrap();
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
