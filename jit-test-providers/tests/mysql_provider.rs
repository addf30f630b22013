//! The `mysql` provider against the real MariaDB server (run `.ci/setup-mysql` first):
//! grants, denials classified from the server's own errors, beyond-scope and `deny`
//! checks, live sessions cut on revoke, expiry by the server's event, the reaper, and an
//! unreachable server.

mod mysql_support;

use std::time::{Duration, Instant};

use jit_test::{
    ErrorClass, Granted, Proof, Provider, ProviderError, assert_denied, assert_unauthenticated,
    classify,
};
use jit_test_providers::mysql::{MysqlProvider, REAPER_LOCK, SET_PREFIX};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use mysql_support::{
    admin, code, event_exists, gone, provider, provider_with, request, user_exists,
};

const TTL: Duration = Duration::from_secs(60);

async fn grant(scope: &str) -> Granted<MysqlProvider> {
    provider()
        .grant(&request("grant", scope, "", TTL))
        .await
        .unwrap_or_else(|e| panic!("grant {scope}: {e}"))
}

async fn release(granted: &Granted<MysqlProvider>) {
    provider().revoke(&granted.lease).await.unwrap();
}

#[tokio::test]
async fn a_grant_works_within_its_scope_and_is_denied_outside() {
    drop(admin().await);
    let g = grant(
        "mysql:select:jit_my.orders, mysql:insert:jit_my.orders, mysql:update(status):jit_my.orders, \
         mysql:execute:procedure:jit_my.place_order",
    )
    .await;
    assert_eq!(g.beyond_scope, Vec::<String>::new(), "exactly the scope");
    // The privileges are held by the permission set's role, the user's default role.
    let roles: Vec<String> = admin()
        .await
        .exec(
            "SELECT Role FROM mysql.roles_mapping WHERE User = ?",
            (g.lease.user(),),
        )
        .await
        .unwrap();
    assert!(
        matches!(&roles[..], [r] if r.starts_with(SET_PREFIX)),
        "{roles:?}"
    );
    let mut db = g.credential.connect().await.unwrap();
    db.query_drop("INSERT INTO orders (sku) VALUES ('a1')")
        .await
        .unwrap();
    db.query_drop("UPDATE orders SET status = 'paid' WHERE sku = 'a1'")
        .await
        .unwrap();
    db.query_drop("CALL place_order('a2')").await.unwrap();
    let n: Option<u64> = db.query_first("SELECT COUNT(*) FROM orders").await.unwrap();
    assert!(n.unwrap() >= 2);

    let table = assert_denied!(db.query_drop("DELETE FROM orders").await);
    assert!(table.to_string().contains("1142"), "{table}");
    let column = assert_denied!(db.query_drop("UPDATE orders SET note = 'x'").await);
    assert!(column.to_string().contains("1143"), "{column}");
    let routine = assert_denied!(db.query_drop("CALL cancel_all()").await);
    assert!(routine.to_string().contains("1370"), "{routine}");
    let other_table = assert_denied!(db.query_drop("SELECT * FROM items").await);
    assert!(other_table.to_string().contains("1142"), "{other_table}");
    let database = assert_denied!(db.query_drop("USE jit_my_x").await);
    assert!(database.to_string().contains("1044"), "{database}");
    let admin_only = assert_denied!(db.query_drop("SET GLOBAL max_connections = 10").await);
    assert!(admin_only.to_string().contains("1227"), "{admin_only}");
    drop(db);
    release(&g).await;
}

#[tokio::test]
async fn a_database_grant_covers_that_database_only_not_its_wildcard_lookalikes() {
    drop(admin().await);
    // `jit_my_x.*` unescaped would also cover `jit_myYx` (`_` is a wildcard there).
    let g = grant("mysql:select:jit_my_x.*").await;
    let mut db = g.credential.connect().await.unwrap();
    db.query_drop("SELECT * FROM jit_my_x.t").await.unwrap();
    assert_denied!(db.query_drop("SELECT * FROM jit_myYx.t").await);
    assert_denied!(db.query_drop("INSERT INTO jit_my_x.t VALUES (1)").await);
    drop(db);
    release(&g).await;
}

#[tokio::test]
async fn unknown_objects_fail_with_the_servers_message_and_leave_nothing() {
    let mut admin = admin().await;
    let request = request("unknown", "mysql:select:jit_my.nope", "", TTL);
    let user = request.principal_name("jit_");
    let e = provider().grant(&request).await.err().expect("refused");
    assert!(e.to_string().contains("1146"), "{e}");
    assert!(!user_exists(&mut admin, &user).await);
    assert!(!event_exists(&mut admin, &user).await);
    let e = provider()
        .grant(&request_for("mysql:execute:procedure:jit_my.nope"))
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("1305"), "{e}");
}

fn request_for(scope: &str) -> jit_test::GrantRequest {
    request("t", scope, "", TTL)
}

#[tokio::test]
async fn public_grants_are_beyond_the_scope_a_held_deny_fails_the_grant_and_strict_too() {
    let mut admin = admin().await;
    let g = grant("mysql:select:jit_my_public.items").await;
    assert!(
        g.beyond_scope
            .iter()
            .any(|b| b == "mysql:select:jit_my_public.notes ('PUBLIC'@'')"),
        "{:?}",
        g.beyond_scope
    );
    let mut db = g.credential.connect().await.unwrap();
    db.query_drop("SELECT * FROM jit_my_public.notes")
        .await
        .unwrap();
    drop(db);
    release(&g).await;

    let denied = request(
        "deny",
        "mysql:select:jit_my.items",
        "mysql:select:jit_my_public.notes",
        TTL,
    );
    let user = denied.principal_name("jit_");
    let e = provider().grant(&denied).await.err().expect("refused");
    assert!(
        e.to_string()
            .contains("denied permission mysql:select:jit_my_public.notes"),
        "{e}"
    );
    assert!(!user_exists(&mut admin, &user).await);

    let strict = provider_with("strict = true");
    let e = strict
        .grant(&request_for("mysql:select:jit_my_public.items"))
        .await
        .err()
        .expect("strict");
    assert!(e.to_string().contains("strict = true"), "{e}");
}

#[tokio::test]
async fn revocation_cuts_live_sessions_and_the_login_is_refused() {
    let mut admin = admin().await;
    let g = grant("mysql:select:jit_my.*").await;
    let mut live = g.credential.connect().await.unwrap();
    live.query_drop("SELECT * FROM orders").await.unwrap();
    release(&g).await;
    assert!(!user_exists(&mut admin, g.lease.user()).await);
    assert!(!event_exists(&mut admin, g.lease.user()).await);
    // A database-level privilege stays cached in a session: only the kill stops it.
    let cut = live.query_drop("SELECT * FROM orders").await;
    assert!(cut.is_err(), "the live session survived the revocation");
    assert_eq!(
        classify(&cut.unwrap_err()),
        ErrorClass::Other,
        "a cut session is neither"
    );
    let refused = assert_unauthenticated!(g.credential.connect().await);
    assert!(gone(&refused.to_string()), "{refused}");
    match provider().prove_dead(&g.lease).await.unwrap() {
        Proof::Refused(how) => assert!(gone(&how), "{how}"),
        Proof::Accepted => panic!("still accepted"),
    }
    // Revoking again is a no-op.
    release(&g).await;
}

#[tokio::test]
async fn a_locked_account_is_refused_with_4151_an_authentication_failure() {
    let mut admin = admin().await;
    let g = grant("mysql:select:jit_my.items").await;
    admin
        .query_drop(format!(
            "ALTER USER '{}'@'127.0.0.1' ACCOUNT LOCK",
            g.lease.user()
        ))
        .await
        .unwrap();
    let locked = assert_unauthenticated!(g.credential.connect().await);
    assert!(locked.to_string().contains("4151"), "{locked}");
    match provider().prove_dead(&g.lease).await.unwrap() {
        Proof::Refused(how) => assert!(how.contains("4151"), "{how}"),
        Proof::Accepted => panic!("a locked account logged in"),
    }
    release(&g).await;
}

#[tokio::test]
async fn the_servers_event_drops_the_user_and_kills_its_sessions_at_the_ttl() {
    let mut admin = admin().await;
    assert!(
        provider().server_expiry().await.unwrap(),
        "event_scheduler is off: run .ci/setup-mysql"
    );
    let ttl = Duration::from_secs(2);
    // No broker and no watchdog: only the server acts.
    let g = provider()
        .grant(&request("expiry", "mysql:select:jit_my.items", "", ttl))
        .await
        .unwrap();
    let started = Instant::now();
    let mut live = g.credential.connect().await.unwrap();
    live.query_drop("SELECT * FROM items").await.unwrap();
    while user_exists(&mut admin, g.lease.user()).await {
        assert!(
            started.elapsed() < ttl + Duration::from_secs(3),
            "the event did not drop the user"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() <= ttl + Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        live.query_drop("SELECT * FROM items").await.is_err(),
        "the live session outlived the ttl"
    );
    assert_unauthenticated!(g.credential.connect().await);
    release(&g).await;
}

#[tokio::test]
async fn the_reaper_clears_ended_leases_only_and_never_a_live_or_foreign_one() {
    let mut admin = admin().await;
    // A foreign event in the events' database, without lease metadata.
    admin
        .query_drop(
            "CREATE EVENT IF NOT EXISTS jit_test.jit_foreign ON SCHEDULE EVERY 1 DAY \
             STARTS CURRENT_TIMESTAMP + INTERVAL 1 DAY DO DO 1",
        )
        .await
        .unwrap();
    let live = grant("mysql:select:jit_my.items").await;
    let ended = provider()
        .grant(&request(
            "reap",
            "mysql:select:jit_my.items",
            "",
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !user_exists(&mut admin, ended.lease.user()).await,
        "the event dropped it"
    );
    assert!(
        event_exists(&mut admin, ended.lease.user()).await,
        "its event is kept for the reaper"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reaped = Vec::new();
    while event_exists(&mut admin, ended.lease.user()).await {
        assert!(Instant::now() < deadline, "not reaped");
        reaped.extend(provider().reap(Duration::ZERO).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!reaped.contains(&live.principal), "{reaped:?}");
    assert!(!reaped.iter().any(|r| r == "jit_foreign"), "{reaped:?}");
    assert!(user_exists(&mut admin, live.lease.user()).await);
    assert!(event_exists(&mut admin, "jit_foreign").await);
    // A reaper that cannot take the lock skips.
    admin
        .exec_drop("DO GET_LOCK(?, 10)", (REAPER_LOCK,))
        .await
        .unwrap();
    let skipped = provider().reap(Duration::ZERO).await.unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    admin
        .exec_drop("DO RELEASE_LOCK(?)", (REAPER_LOCK,))
        .await
        .unwrap();
    release(&live).await;
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_the_address_and_the_variable() {
    // A closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    for port in [closed_port, silent_port] {
        let p = provider_with(&format!(
            "url = 'mysql://root@127.0.0.1:{port}/test'\nconnect_timeout = '2s'"
        ));
        let started = Instant::now();
        let e = p
            .grant(&request_for("mysql:select:jit_my.items"))
            .await
            .err()
            .expect("unreachable");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(e, ProviderError::Unreachable { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("JIT_TEST_MYSQL_URL"), "{text}");
    }
    held.abort();
}

#[tokio::test]
async fn invalid_permissions_are_rejected_before_anything_is_granted() {
    for (scope, why) in [
        ("mysql:drop:jit_my.orders", "unknown action"),
        ("mysql:select:orders", "shop.orders"),
        ("mysql:execute:jit_my.place_order", "procedure:"),
    ] {
        let reason = MysqlProvider::validate(&scope.parse().unwrap()).unwrap_err();
        assert!(reason.contains(why), "{scope}: {reason}");
    }
}

#[tokio::test]
async fn a_connection_error_is_neither_a_denial_nor_an_authentication_failure() {
    let opts = mysql_async::Opts::from_url("mysql://root@127.0.0.1:1/test").unwrap();
    let refused = Conn::new(opts).await;
    assert_eq!(code(&refused), None, "not a server error");
    assert_eq!(classify(&refused.err().unwrap()), ErrorClass::Other);
}
