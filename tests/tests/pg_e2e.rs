//! End to end with the `pg` provider and the real server (`.ci/setup-postgres` first):
//! a test process killed with SIGKILL, a panicking test, a test outliving its ttl, a
//! denied permission, and 200 concurrent tests on the same tables.

use std::io::{BufRead as _, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_test::{Secret, Test, assert_unauthenticated};
use jit_test_providers::postgres::{PgGrant, REAPER_LOCK};
use tokio_postgres::{Client, NoTls};

use tests::{PG_SCOPE as SCOPE, panic_text, pg_admin as admin, pg_provider as provider, runtime};

async fn role_exists(admin: &Client, role: &str) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .unwrap()
        .is_some()
}

async fn login(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[test]
fn a_test_killed_with_sigkill_leaves_a_role_that_expires_and_is_reaped() {
    let rt = runtime();
    rt.block_on(admin());
    let dir = std::env::temp_dir().join(format!(
        "jit-e2e-{}-{}",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    std::fs::create_dir(&dir).unwrap();
    let secret_file = dir.join("url");
    // The victim keeps an audit log of its own, which the crash leaves open.
    let audit_log = dir.join("audit.jsonl");
    let ttl_secs = 5;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pg_victim"))
        .arg(ttl_secs.to_string())
        .env("PG_VICTIM_SECRET_FILE", &secret_file)
        .env("JIT_TEST_AUDIT_LOG", &audit_log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the victim");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(role) = line.strip_prefix("READY ") {
                let _ = tx.send(role.to_owned());
            }
        }
    });
    let role = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the victim holds its credential");
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no Drop, no unwind
    let status = child.wait().unwrap();
    assert!(!status.success());
    let url = Secret::new(std::fs::read_to_string(&secret_file).unwrap());
    std::fs::remove_file(&secret_file).unwrap();
    let open = jit_test::audit::verify(&audit_log).unwrap();
    let never_revoked = jit_test::audit::Finding::NeverRevoked {
        test: "pg_victim::killed_mid_test".into(),
        principal: role.clone(),
    };
    assert!(
        open.problems.iter().any(|p| p.finding == never_revoked),
        "{:?}",
        open.problems
    );
    let config: tokio_postgres::Config = url.expose().parse().unwrap();

    rt.block_on(async {
        let admin = admin().await;
        // No reaper may remove the role while its expiry is checked.
        let (a, b) = REAPER_LOCK;
        admin
            .query_one("SELECT pg_advisory_lock($1, $2)", &[&a, &b])
            .await
            .unwrap();
        let row = admin
            .query_one(
                "SELECT rolcanlogin, extract(epoch FROM rolvaliduntil - now())::float8 \
                 FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .await
            .expect("the killed test left its role behind");
        assert!(row.get::<_, bool>(0), "nobody revoked it");
        let left: f64 = row.get(1);
        assert!(left > 0.0 && left <= ttl_secs as f64, "{left}");
        tokio::time::sleep(Duration::from_secs_f64(left) + Duration::from_millis(1500)).await;

        let refused = assert_unauthenticated!(login(&config).await);
        let code = refused
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.code())
            .map(|c| c.code().to_owned());
        assert_eq!(
            code.as_deref(),
            Some("28P01"),
            "the server checks the expiry"
        );
        assert!(
            role_exists(&admin, &role).await,
            "refused while the role still exists"
        );
        admin
            .query_one("SELECT pg_advisory_unlock($1, $2)", &[&a, &b])
            .await
            .unwrap();

        // The next reap removes it (another process may hold the reaper lock a while),
        // and records it in the audit log, which closes the crashed lease there.
        let mut settings = jit_test::Config::global().clone();
        settings.audit_log = audit_log.clone();
        let broker = jit_test::Broker::new(settings);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reaped = Vec::new();
        while role_exists(&admin, &role).await {
            assert!(Instant::now() < deadline, "{role} was not reaped");
            reaped.extend(
                broker
                    .reap(provider().as_ref(), Duration::ZERO)
                    .await
                    .unwrap(),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            reaped.contains(&role),
            "another process reaped {role}: {reaped:?}"
        );
    });
    let closed = jit_test::audit::verify(&audit_log).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_panicking_test_leaves_nothing() {
    let rt = runtime();
    rt.block_on(admin());
    let seen: Arc<Mutex<Option<(String, tokio_postgres::Config)>>> = Arc::default();
    let inner = Arc::clone(&seen);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Test::new("pg_e2e::panics")
            .scope(SCOPE)
            .run(move |(pg,): (PgGrant,)| {
                let inner = Arc::clone(&inner);
                async move {
                    *inner.lock().unwrap() = Some((pg.role().to_owned(), pg.config().clone()));
                    let db = pg.connect().await.unwrap();
                    db.query("SELECT * FROM jit_e2e.orders", &[]).await.unwrap();
                    if !db.is_closed() {
                        panic!("the body panicked on purpose");
                    }
                }
            })
    }));
    let payload = outcome.expect_err("the test fails");
    assert!(panic_text(payload.as_ref()).contains("on purpose"));
    let (role, config) = seen.lock().unwrap().take().expect("the body ran");
    rt.block_on(async {
        let admin = admin().await;
        assert!(!role_exists(&admin, &role).await);
        assert_unauthenticated!(login(&config).await);
    });
}

#[test]
fn a_body_that_outlives_its_ttl_loses_its_session_and_is_told_why() {
    runtime().block_on(admin());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Test::new("pg_e2e::outlives_ttl")
            .scope(SCOPE)
            .ttl(Duration::from_secs(2))
            .run(|(pg,): (PgGrant,)| async move {
                let db = pg.connect().await?;
                tokio::time::sleep(Duration::from_secs(4)).await;
                db.query("SELECT 1 FROM jit_e2e.orders", &[]).await?;
                Ok::<(), tokio_postgres::Error>(())
            })
    }));
    let text = panic_text(outcome.expect_err("the session was ended").as_ref());
    assert!(text.contains("expired during the test"), "{text}");
}

#[test]
fn a_denied_permission_the_role_would_hold_fails_before_the_body_runs() {
    runtime().block_on(admin());
    static RAN: AtomicBool = AtomicBool::new(false);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Test::new("pg_e2e::deny")
            .scope("pg:select:jit_e2e_shared.archive")
            .deny("pg:select:jit_e2e_shared.public_notes")
            .run(|(_pg,): (PgGrant,)| async move {
                RAN.store(true, Ordering::SeqCst);
            })
    }));
    let text = panic_text(outcome.expect_err("the grant fails").as_ref());
    assert!(
        text.contains("denied permission pg:select:jit_e2e_shared.public_notes"),
        "{text}"
    );
    assert!(!RAN.load(Ordering::SeqCst));
}

#[test]
fn privileges_beyond_the_scope_are_written_to_the_audit_log() {
    runtime().block_on(admin());
    let name = format!("pg_e2e::beyond_scope_{}", std::process::id());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let inner = Arc::clone(&seen);
    Test::new(name.clone())
        .scope("pg:select:jit_e2e_shared.archive")
        .run(move |(pg,): (PgGrant,)| {
            let inner = Arc::clone(&inner);
            async move {
                *inner.lock().unwrap() = pg.beyond_scope().to_vec();
            }
        });
    let beyond = seen.lock().unwrap().clone();
    assert!(
        beyond.contains(&"pg:select:jit_e2e_shared.public_notes".to_owned()),
        "{beyond:?}"
    );
    let log = jit_test::audit::read(&jit_test::Broker::global().config().audit_log).unwrap();
    let privileges = log
        .events
        .iter()
        .filter(|e| e.test == name)
        .find_map(|e| match &e.kind {
            jit_test::audit::EventKind::BeyondScope { privileges } => Some(privileges),
            _ => None,
        })
        .expect("a beyond_scope event");
    assert_eq!(privileges, &["pg:select:jit_e2e_shared.public_notes"]);
}
