//! Never a live credential without a record: each audit write of a PostgreSQL lifecycle
//! fails in turn (an injected sink fault on the Nth append), and the broker fails closed.
//!
//! 1. the request cannot be recorded: nothing is granted;
//! 2. the grant cannot be recorded: the role is revoked and proven dead at once;
//! 3. the release cannot be recorded: the role is gone, and the release fails saying so;
//!
//! and an audit log in a directory that cannot exist behaves as (1).

use std::sync::{Arc, Once};
use std::time::Duration;

use jit_test::audit::{AuditLog, FailingSink, Sink};
use jit_test::{Broker, Config, LeaseRequest, Scope};
use tests::{PG_SCOPE, pg_admin, pg_provider, runtime};

/// A broker that writes to `sink`, with the default approver.
fn broker(sink: Arc<dyn Sink>) -> Broker {
    // The process's first grant from a provider reaps leftovers of crashed runs first,
    // and records them: done once here, so that no test's count of writes includes it.
    static REAPED: Once = Once::new();
    REAPED.call_once(|| {
        let dir = tempfile::tempdir().unwrap();
        let plain = Arc::new(AuditLog::new(dir.path().join("audit.jsonl")));
        let broker = Broker::new(Config::global().clone()).with_sink(plain);
        let rt = runtime();
        // The scope's table must exist, whichever test binary ran first.
        rt.block_on(pg_admin());
        let lease = rt
            .block_on(broker.acquire(&pg_provider(), ask("fail_closed::first")))
            .unwrap();
        rt.block_on(lease.release()).unwrap();
    });
    Broker::new(Config::global().clone()).with_sink(sink)
}

fn ask(test: &str) -> LeaseRequest {
    let permissions = Scope::parse(PG_SCOPE).unwrap().permissions;
    LeaseRequest::new(test, permissions, Duration::from_secs(120))
}

/// Login roles whose lease metadata names `test`.
async fn roles_of(test: &str) -> Vec<String> {
    let admin = pg_admin().await;
    admin
        .query(
            "SELECT rolname::text FROM pg_roles \
             WHERE shobj_description(oid, 'pg_authid') LIKE '%' || $1 || '%'",
            &[&format!("\"test\":\"{test}\"")],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A sink over a fresh file that fails its `n`th append.
fn failing(dir: &tempfile::TempDir, n: usize) -> Arc<FailingSink> {
    let file = Arc::new(AuditLog::new(dir.path().join("audit.jsonl")));
    Arc::new(FailingSink::new(file, n))
}

/// Acquires for `test` through a sink that fails its `n`th append; returns the error
/// and how many appends were asked of the sink.
fn refused_acquisition(n: usize, test: &str) -> (String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let sink = failing(&dir, n);
    let error = runtime()
        .block_on(broker(sink.clone()).acquire(&pg_provider(), ask(test)))
        .err()
        .expect("no lease without a record")
        .to_string();
    (error, sink.appends())
}

#[test]
fn a_request_that_cannot_be_recorded_grants_nothing() {
    let test = "fail_closed::request";
    let (error, appends) = refused_acquisition(1, test);
    assert!(
        error.contains("injected fault") && error.contains("nothing was granted"),
        "{error}"
    );
    assert_eq!(appends, 1);
    assert!(runtime().block_on(roles_of(test)).is_empty());
}

#[test]
fn a_grant_that_cannot_be_recorded_is_revoked_and_proven_dead_at_once() {
    let test = "fail_closed::grant";
    let (error, appends) = refused_acquisition(2, test);
    assert!(error.contains("injected fault"), "{error}");
    assert!(
        error.contains("was revoked and proven dead (SQLSTATE 28"),
        "{error}"
    );
    // The request, the lost grant, then the revocation with its proof.
    assert_eq!(appends, 3);
    assert!(runtime().block_on(roles_of(test)).is_empty());
}

#[test]
fn a_release_that_cannot_be_recorded_fails_after_revoking() {
    let dir = tempfile::tempdir().unwrap();
    let sink = failing(&dir, 3);
    let broker = broker(sink.clone());
    let test = "fail_closed::release";
    let rt = runtime();
    let lease = rt
        .block_on(broker.acquire(&pg_provider(), ask(test)))
        .unwrap();
    assert_eq!(rt.block_on(roles_of(test)).len(), 1);
    let error = rt
        .block_on(lease.release())
        .expect_err("a release that is not recorded fails")
        .to_string();
    assert!(
        error.contains("injected fault") && error.contains("revoked and proven dead"),
        "{error}"
    );
    assert!(rt.block_on(roles_of(test)).is_empty());
}

#[test]
fn an_audit_log_that_cannot_be_created_grants_nothing() {
    let sink = Arc::new(AuditLog::new("/proc/no-such-dir/audit.jsonl"));
    let broker = broker(sink);
    let test = "fail_closed::no_dir";
    let error = runtime()
        .block_on(broker.acquire(&pg_provider(), ask(test)))
        .err()
        .expect("no lease without a record")
        .to_string();
    assert!(
        error.contains("/proc/no-such-dir/audit.jsonl")
            && error.contains("nothing was granted")
            && error.contains("JIT_TEST_AUDIT_LOG"),
        "{error}"
    );
    assert!(runtime().block_on(roles_of(test)).is_empty());
}
