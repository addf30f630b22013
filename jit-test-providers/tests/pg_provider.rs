//! The `pg` provider against the real PostgreSQL server (run `.ci/setup-postgres` first).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jit_test::{
    Config, GrantRequest, Permission, Proof, Provider, ProviderError, Scope, assert_denied,
    assert_unauthenticated,
};
use jit_test_providers::postgres::ident::{quote_ident, quote_literal};
use jit_test_providers::postgres::{GROUP_ROLE, PgGrant, PgProvider, REAPER_LOCK};
use tokio::sync::OnceCell;
use tokio_postgres::Client;

/// Everything these tests use lives in schema `jit_pt` (and database `jit_pt_other`).
const FIXTURES: &str = "
    CREATE SCHEMA IF NOT EXISTS jit_pt;
    CREATE TABLE IF NOT EXISTS jit_pt.orders (id serial PRIMARY KEY, sku text NOT NULL, price int);
    CREATE TABLE IF NOT EXISTS jit_pt.public_notes (note text);
    GRANT SELECT ON jit_pt.public_notes TO PUBLIC;
    CREATE TABLE IF NOT EXISTS jit_pt.recreated (x int);
    CREATE OR REPLACE FUNCTION jit_pt.place_order(s text) RETURNS int
        LANGUAGE sql AS $$ INSERT INTO jit_pt.orders (sku) VALUES (s) RETURNING id $$;
    REVOKE EXECUTE ON FUNCTION jit_pt.place_order(text) FROM PUBLIC;
    CREATE SCHEMA IF NOT EXISTS jit_pt_scratch;
";

fn provider() -> Arc<PgProvider> {
    jit_test::provider::<PgProvider>().expect("the pg provider builds from the configuration")
}

fn provider_with(settings: &str) -> PgProvider {
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[pg]\n{settings}")).unwrap();
    PgProvider::from_config(&config).unwrap()
}

async fn admin() -> Client {
    static READY: OnceCell<()> = OnceCell::const_new();
    let client = provider().admin_client().await.expect("admin connection");
    READY
        .get_or_init(|| async {
            // Serialised across processes: CREATE ... IF NOT EXISTS races otherwise.
            client
                .batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock(4242, 1); {FIXTURES}"
                ))
                .await
                .expect("fixtures");
            let exists = client
                .query_opt(
                    "SELECT 1 FROM pg_database WHERE datname = 'jit_pt_other'",
                    &[],
                )
                .await
                .unwrap()
                .is_some();
            if !exists {
                let _ = client.batch_execute("CREATE DATABASE jit_pt_other").await;
            }
        })
        .await;
    client
}

fn request(test: &str, scope: &str, deny: &str, ttl: Duration) -> GrantRequest {
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
        test: format!("pg_provider::{test}"),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("pt{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: parse(scope),
        deny: parse(deny),
        ttl,
    }
}

async fn role_exists(admin: &Client, role: &str) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn quoting_round_trips_through_the_server() {
    let admin = admin().await;
    for value in [
        "plain",
        "it's",
        "a\\b",
        "\\'",
        "'; DROP ROLE postgres; --",
        "schön \"q\"",
    ] {
        for conforming in ["on", "off"] {
            admin
                .batch_execute(&format!("SET standard_conforming_strings = {conforming}"))
                .await
                .unwrap();
            let row = admin
                .query_one(&format!("SELECT {}::text", quote_literal(value)), &[])
                .await
                .unwrap();
            assert_eq!(
                row.get::<_, String>(0),
                value,
                "literal {value:?} ({conforming})"
            );
        }
    }
    admin
        .batch_execute("RESET standard_conforming_strings")
        .await
        .unwrap();
    let weird = "we\"ird; DROP TABLE x; --";
    let sql = format!(
        "BEGIN; CREATE TABLE jit_pt_scratch.{} (x int); \
         SELECT relname::text FROM pg_class WHERE relname = {}; ROLLBACK;",
        quote_ident(weird),
        quote_literal(weird)
    );
    let messages = admin.simple_query(&sql).await.unwrap();
    let found = messages.iter().any(
        |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some(weird)),
    );
    assert!(found, "the quoted identifier names exactly {weird:?}");
}

#[tokio::test]
async fn a_grant_works_within_its_scope_and_is_denied_outside() {
    let admin = admin().await;
    let p = provider();
    let granted = p
        .grant(&request(
            "scoped",
            "pg:select(id,sku):jit_pt.orders, pg:insert(sku):jit_pt.orders, \
             pg:usage:sequence:jit_pt.orders_id_seq, pg:execute:function:jit_pt.place_order",
            "",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    let pg: &PgGrant = &granted.credential;
    // The first grant saw the server ask a fresh role for its password; later grants of
    // this process do not try again.
    assert!(jit_test_providers::postgres::__bench::auth_checked(&p));
    assert!(pg.role().starts_with("jit_pt"));
    let password = String::from_utf8(pg.config().get_password().unwrap().to_vec()).unwrap();
    assert_eq!(password.len(), 22, "128 random bits, base64url");
    assert!(!format!("{pg:?} {:?}", pg.connection_string()).contains(&password));
    let db = pg.connect().await.unwrap();
    db.execute("INSERT INTO jit_pt.orders (sku) VALUES ('a1')", &[])
        .await
        .unwrap();
    db.query("SELECT id, sku FROM jit_pt.orders", &[])
        .await
        .unwrap();
    db.query_one("SELECT jit_pt.place_order('f1')", &[])
        .await
        .unwrap();
    assert_denied!(db.query("SELECT price FROM jit_pt.orders", &[]).await);
    assert_denied!(db.execute("DELETE FROM jit_pt.orders", &[]).await);
    assert_denied!(db.execute("UPDATE jit_pt.orders SET sku = 'x'", &[]).await);
    assert_denied!(
        db.execute(
            "INSERT INTO jit_pt.orders (sku, price) VALUES ('a', 1)",
            &[]
        )
        .await
    );
    assert_denied!(db.execute("CREATE TABLE jit_pt.mine (x int)", &[]).await);

    // The server holds the lease: expiry on its clock, metadata, limit, verifier only.
    let row = admin
        .query_one(
            "SELECT extract(epoch FROM rolvaliduntil)::float8, rolconnlimit, \
                    shobj_description(oid, 'pg_authid'), rolcanlogin, \
                    (SELECT rolpassword FROM pg_authid a WHERE a.oid = r.oid) \
             FROM pg_roles r WHERE rolname = $1",
            &[&pg.role()],
        )
        .await
        .unwrap();
    let valid_until: f64 = row.get(0);
    let expected = jit_test::unix_seconds(granted.expires_at) as f64;
    assert!(
        (valid_until - expected).abs() < 3.0,
        "{valid_until} vs {expected}"
    );
    assert_eq!(row.get::<_, i32>(1), 10);
    let meta: jit_test::LeaseMeta = serde_json::from_str(&row.get::<_, String>(2)).unwrap();
    assert_eq!(meta.test, "pg_provider::scoped");
    assert_eq!(meta.pid, std::process::id());
    assert_eq!(meta.run, Config::global().run_id);
    assert!((meta.expires_at as f64 - valid_until).abs() <= 1.0);
    // The reaper's expiry, to the millisecond of the server's VALID UNTIL.
    assert!(
        (meta.expires_at_ms as f64 - valid_until * 1000.0).abs() <= 1.0,
        "{} vs {valid_until}",
        meta.expires_at_ms
    );
    assert!(row.get::<_, bool>(3));
    let verifier: String = row.get(4);
    // One PBKDF2 iteration: the password is 128 random bits (`scram_iterations`).
    assert!(verifier.starts_with("SCRAM-SHA-256$1:"), "{verifier}");
    let member = admin
        .query_one(
            "SELECT pg_has_role($1, $2, 'MEMBER')",
            &[&pg.role(), &GROUP_ROLE],
        )
        .await
        .unwrap();
    assert!(member.get::<_, bool>(0));

    assert_eq!(p.prove_dead(&granted.lease).await.unwrap(), Proof::Accepted);
    p.revoke(&granted.lease).await.unwrap();
    p.revoke(&granted.lease).await.unwrap(); // idempotent
    assert!(!role_exists(&admin, pg.role()).await);
    // The proof was made while revoking, before the drop: the server checked the password
    // against the role's verifier and refused the NOLOGIN role.
    match p.prove_dead(&granted.lease).await.unwrap() {
        Proof::Refused(how) => assert!(
            how.contains("28000") && how.contains("not permitted to log in"),
            "{how}"
        ),
        Proof::Accepted => panic!("accepted after revocation"),
    }
    // Asked again, the proof logs in now. 28000 once the role is gone: no longer a member
    // of jit_lease, the login falls to a later pg_hba.conf rule, which finds no such
    // role (28P01 where that rule asks for a password).
    match p.prove_dead(&granted.lease).await.unwrap() {
        Proof::Refused(how) => assert!(
            (how.contains("28P01") || how.contains("28000"))
                && !how.contains("not permitted to log in"),
            "{how}"
        ),
        Proof::Accepted => panic!("accepted after revocation"),
    }
    assert_unauthenticated!(pg.connect().await);
}

#[tokio::test]
async fn unknown_tables_and_columns_fail_with_postgres_own_message_and_leave_nothing() {
    let admin = admin().await;
    let p = provider();
    for (scope, message) in [
        (
            "pg:select:jit_pt.nope",
            "relation \"jit_pt.nope\" does not exist",
        ),
        (
            "pg:select(id,nope):jit_pt.orders",
            "column \"nope\" of relation \"orders\" does not exist",
        ),
        (
            "pg:usage:schema:jit_pt_nope",
            "schema \"jit_pt_nope\" does not exist",
        ),
    ] {
        let req = request("unknown", scope, "", Duration::from_secs(30));
        let role = req.principal_name("jit_");
        let err = p
            .grant(&req)
            .await
            .err()
            .expect("the grant fails")
            .to_string();
        assert!(err.contains(message), "{scope}: {err}");
        assert!(!role_exists(&admin, &role).await, "{scope} left {role}");
    }
}

#[tokio::test]
async fn a_denied_permission_the_role_holds_fails_the_grant_without_side_effects() {
    let admin = admin().await;
    let req = request(
        "deny",
        "pg:select:jit_pt.orders",
        "pg:select:jit_pt.public_notes, pg:delete:jit_pt.orders",
        Duration::from_secs(30),
    );
    let role = req.principal_name("jit_");
    let err = provider().grant(&req).await.err().unwrap().to_string();
    assert!(
        err.contains("denied permission pg:select:jit_pt.public_notes"),
        "{err}"
    );
    assert!(err.contains("PUBLIC"), "{err}");
    assert!(!err.contains("pg:delete"), "delete is not held: {err}");
    assert!(!role_exists(&admin, &role).await);

    // A denial that holds lets the grant through.
    let ok = provider()
        .grant(&request(
            "deny-ok",
            "pg:select:jit_pt.orders",
            "pg:delete:jit_pt.orders",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    provider().revoke(&ok.lease).await.unwrap();
}

#[tokio::test]
async fn effective_privileges_beyond_the_scope_are_reported_and_strict_fails() {
    admin().await;
    let granted = provider()
        .grant(&request(
            "effective",
            "pg:select:jit_pt.orders",
            "",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    let beyond = granted.credential.beyond_scope().to_vec();
    provider().revoke(&granted.lease).await.unwrap();
    assert!(
        beyond.contains(&"pg:select:jit_pt.public_notes".to_owned()),
        "{beyond:?}"
    );
    assert!(
        !beyond.iter().any(|b| b.contains("jit_pt.orders")),
        "{beyond:?}"
    );
    assert!(
        !beyond.iter().any(|b| b.contains("place_order")),
        "{beyond:?}"
    );

    let strict = provider_with("strict = true");
    let req = request(
        "strict",
        "pg:select:jit_pt.orders",
        "",
        Duration::from_secs(30),
    );
    let err = strict.grant(&req).await.err().unwrap().to_string();
    assert!(
        err.contains("can do more than its scope: pg:select:jit_pt.public_notes"),
        "{err}"
    );
    assert!(err.contains("strict"), "{err}");
    // Written into the scope, it is no longer beyond it.
    let ok = strict
        .grant(&request(
            "strict-ok",
            "pg:select:jit_pt.orders, pg:select:jit_pt.public_notes",
            "",
            Duration::from_secs(30),
        ))
        .await;
    let ok = ok.unwrap();
    assert!(
        ok.credential.beyond_scope().is_empty(),
        "{:?}",
        ok.credential.beyond_scope()
    );
    strict.revoke(&ok.lease).await.unwrap();
}

#[tokio::test]
async fn the_server_refuses_the_login_after_valid_until_while_the_role_still_exists() {
    let admin = admin().await;
    // Keep every reaper away from the expired role while it is checked.
    let (a, b) = REAPER_LOCK;
    admin
        .query_one("SELECT pg_advisory_lock($1, $2)", &[&a, &b])
        .await
        .unwrap();
    let p = provider();
    let granted = p
        .grant(&request(
            "expiry",
            "pg:select:jit_pt.orders",
            "",
            Duration::from_secs(2),
        ))
        .await
        .unwrap();
    let pg = &granted.credential;
    pg.connect().await.expect("works before its expiry");
    let wait = granted
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1500)).await;
    let refused = assert_unauthenticated!(pg.connect().await);
    let db = refused
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .expect("a server error");
    assert_eq!(db.code().code(), "28P01", "{db}");
    assert!(
        role_exists(&admin, pg.role()).await,
        "the role still exists"
    );
    p.revoke(&granted.lease).await.unwrap();
    admin
        .query_one("SELECT pg_advisory_unlock($1, $2)", &[&a, &b])
        .await
        .unwrap();
}

#[tokio::test]
async fn revocation_ends_live_sessions() {
    admin().await;
    let p = provider();
    let granted = p
        .grant(&request(
            "sessions",
            "pg:select:jit_pt.orders",
            "",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    let live = granted.credential.connect().await.unwrap();
    live.query("SELECT 1", &[]).await.unwrap();
    p.revoke(&granted.lease).await.unwrap();
    let after = live.query("SELECT 1 FROM jit_pt.orders", &[]).await;
    assert!(after.is_err(), "the session outlived the revocation");
}

#[tokio::test]
async fn objects_the_role_created_are_dropped_in_every_database() {
    let admin = admin().await;
    let other = provider().admin_client().await.unwrap();
    // In the other database, jit-test roles (members of jit_lease) may create tables.
    let other_db = {
        let mut config = provider().settings().admin.clone();
        config.dbname("jit_pt_other");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock(4242, 2); CREATE SCHEMA IF NOT EXISTS scratch; \
                 GRANT USAGE, CREATE ON SCHEMA scratch TO {GROUP_ROLE};"
            ))
            .await
            .unwrap();
        client
    };
    drop(other);
    let p = provider();
    let granted = p
        .grant(&request(
            "owned",
            "pg:usage:schema:jit_pt_scratch, pg:create:schema:jit_pt_scratch, pg:connect:database:jit_pt_other",
            "",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    let pg = &granted.credential;
    let table = format!("t_{}", pg.role());
    let here = pg.connect().await.unwrap();
    here.batch_execute(&format!("CREATE TABLE jit_pt_scratch.{table} (x int)"))
        .await
        .unwrap();
    let there = pg.connect_to("jit_pt_other").await.unwrap();
    there
        .batch_execute(&format!("CREATE TABLE scratch.{table} (x int)"))
        .await
        .unwrap();
    drop((here, there));
    p.revoke(&granted.lease).await.unwrap();
    assert!(!role_exists(&admin, pg.role()).await);
    assert_eq!(count_tables(&admin, "jit_pt_scratch", &table).await, 0);
    assert_eq!(count_tables(&other_db, "scratch", &table).await, 0);
}

async fn count_tables(client: &Client, schema: &str, table: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_permission_set_whose_table_was_recreated_is_granted_again() {
    let admin = admin().await;
    let p = provider();
    let scope = "pg:insert:jit_pt.recreated";
    let first = p
        .grant(&request("recreate", scope, "", Duration::from_secs(30)))
        .await
        .unwrap();
    p.revoke(&first.lease).await.unwrap();
    admin
        .batch_execute(
            "SELECT pg_advisory_xact_lock(4242, 1); DROP TABLE jit_pt.recreated; \
             CREATE TABLE jit_pt.recreated (x int);",
        )
        .await
        .unwrap();
    let second = p
        .grant(&request("recreate", scope, "", Duration::from_secs(30)))
        .await
        .unwrap();
    let db = second.credential.connect().await.unwrap();
    db.execute("INSERT INTO jit_pt.recreated VALUES (1)", &[])
        .await
        .unwrap();
    p.revoke(&second.lease).await.unwrap();
}

#[tokio::test]
async fn the_reaper_removes_expired_leases_only_and_never_foreign_roles() {
    let admin = admin().await;
    let p = provider();
    let expired = p
        .grant(&request(
            "reap-expired",
            "pg:select:jit_pt.orders",
            "",
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
    let live = p
        .grant(&request(
            "reap-live",
            "pg:select:jit_pt.orders",
            "",
            Duration::from_secs(120),
        ))
        .await
        .unwrap();
    // Prefixed and in jit_lease, but not made by jit-test: no lease metadata.
    let foreign = format!("jit_foreign_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "CREATE ROLE {foreign} NOLOGIN IN ROLE {GROUP_ROLE}; COMMENT ON ROLE {foreign} IS 'hands off'"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Another process may be reaping right now: try until this one gets the lock.
    let mut reaped = Vec::new();
    for _ in 0..100 {
        reaped.extend(p.reap(Duration::ZERO).await.unwrap());
        if !role_exists(&admin, &expired.principal).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!role_exists(&admin, &expired.principal).await, "{reaped:?}");
    assert!(!reaped.contains(&live.principal));
    assert!(role_exists(&admin, &live.principal).await);
    assert!(role_exists(&admin, &foreign).await);
    live.credential
        .connect()
        .await
        .expect("a live lease keeps working");
    p.revoke(&live.lease).await.unwrap();
    admin
        .batch_execute(&format!("DROP ROLE {foreign}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_the_address_and_the_variable() {
    let p = provider_with(
        "url = \"postgresql://postgres:hunter2@127.0.0.1:1/test\"\nconnect_timeout = \"2s\"",
    );
    // The environment may set JIT_TEST_PG_URL, which wins over `url`.
    if std::env::var_os("JIT_TEST_PG_URL").is_some() || std::env::var_os("DATABASE_URL").is_some() {
        return;
    }
    let started = std::time::Instant::now();
    let err = p
        .grant(&request(
            "unreachable",
            "pg:select:jit_pt.orders",
            "",
            Duration::from_secs(30),
        ))
        .await
        .err()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("127.0.0.1:1") && text.contains("JIT_TEST_PG_URL"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{text}"
    );
}

#[tokio::test]
async fn twenty_grants_against_a_server_that_never_answers_fail_in_about_one_timeout() {
    if std::env::var_os("JIT_TEST_PG_URL").is_some() || std::env::var_os("DATABASE_URL").is_some() {
        return;
    }
    // Accepts every connection and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().flatten().collect();
        drop(held);
    });
    let p = Arc::new(provider_with(&format!(
        "url = \"postgresql://postgres@127.0.0.1:{port}/test\"\nconnect_timeout = \"2s\""
    )));
    let started = std::time::Instant::now();
    let mut grants = tokio::task::JoinSet::new();
    for n in 0..20 {
        let p = Arc::clone(&p);
        let test = format!("silent_{n}");
        grants.spawn(async move {
            let request = request(
                &test,
                "pg:select:jit_pt.orders",
                "",
                Duration::from_secs(30),
            );
            p.grant(&request).await.err().map(|e| e.to_string())
        });
    }
    let mut messages = Vec::new();
    while let Some(done) = grants.join_next().await {
        messages.push(
            done.unwrap()
                .expect("a grant against a silent server fails"),
        );
    }
    let elapsed = started.elapsed();
    // One attempt waits 2 s + 1 s; queued one behind another, twenty took a minute.
    assert!(elapsed < Duration::from_secs(7), "{elapsed:?}");
    for message in &messages {
        assert!(
            message.contains(&format!("127.0.0.1:{port}"))
                && message.contains("no answer within 2s"),
            "{message}"
        );
    }
}

/// The message of an admin login that `url` makes the server refuse.
async fn refused_admin_login(url: &str) -> String {
    let p = provider_with(&format!("url = \"{url}\"\nconnect_timeout = \"3s\""));
    let err = p.admin_client().await.expect_err("the login is refused");
    err.to_string()
}

#[tokio::test]
async fn admin_login_errors_advise_by_sqlstate() {
    if std::env::var_os("JIT_TEST_PG_URL").is_some() || std::env::var_os("DATABASE_URL").is_some() {
        return;
    }
    let admin = admin().await;
    let missing = refused_admin_login("postgresql://postgres@127.0.0.1:5432/jit_no_such_db").await;
    assert!(
        missing.contains("3D000") && missing.contains("no database \"jit_no_such_db\""),
        "{missing}"
    );
    assert!(!missing.contains("CREATEROLE"), "{missing}");
    // A role the server checks passwords of (a member of jit_lease), asked with a wrong one.
    admin
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(4242, 6);
             DROP ROLE IF EXISTS probe_wrong_password;
             CREATE ROLE probe_wrong_password LOGIN PASSWORD 'right-one' IN ROLE {GROUP_ROLE};"
        ))
        .await
        .unwrap();
    let wrong =
        refused_admin_login("postgresql://probe_wrong_password:wrong@127.0.0.1:5432/test").await;
    admin
        .batch_execute("DROP ROLE probe_wrong_password")
        .await
        .unwrap();
    assert!(
        wrong.contains("28P01") && wrong.contains("password in the URL"),
        "{wrong}"
    );
    assert!(
        !wrong.contains("CREATEROLE") && !wrong.contains("wrong@"),
        "{wrong}"
    );
}

#[tokio::test]
async fn a_wildcard_covers_tables_created_after_the_permission_set() {
    let admin = admin().await;
    admin
        .batch_execute("CREATE SCHEMA IF NOT EXISTS jit_pt_wild; CREATE TABLE IF NOT EXISTS jit_pt_wild.a (x int);")
        .await
        .unwrap();
    let p = provider();
    let scope = "pg:select:jit_pt_wild.*";
    let first = p
        .grant(&request("wild", scope, "", Duration::from_secs(30)))
        .await
        .unwrap();
    p.revoke(&first.lease).await.unwrap();
    let late = format!("b_{}", jit_test::rand::hex(4));
    admin
        .batch_execute(&format!("CREATE TABLE jit_pt_wild.{late} (x int)"))
        .await
        .unwrap();
    let second = p
        .grant(&request("wild", scope, "", Duration::from_secs(30)))
        .await
        .unwrap();
    let db = second.credential.connect().await.unwrap();
    db.query(&format!("SELECT * FROM jit_pt_wild.{late}"), &[])
        .await
        .unwrap();
    db.query("SELECT * FROM jit_pt_wild.a", &[]).await.unwrap();
    assert_denied!(
        db.execute("INSERT INTO jit_pt_wild.a VALUES (1)", &[])
            .await
    );
    p.revoke(&second.lease).await.unwrap();
    admin
        .batch_execute(&format!("DROP TABLE jit_pt_wild.{late}"))
        .await
        .unwrap();
}
