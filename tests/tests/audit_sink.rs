//! The broker writes through the audit sink it is given: a whole token lifecycle lands in
//! an injected sink (not the configured file), and a sink that fails its first write
//! fails the acquisition loudly, naming the sink, with no lease handed out.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use jit_test::audit::{self, AuditLog, EventKind, FailingSink, Sink};
use jit_test::{Broker, Config, LeaseRequest, Permission};
use jit_test_providers::token::TokenAuthority;
use tests::{panic_text, runtime};

fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::load().unwrap();
    config.audit_log = dir.join("configured.jsonl");
    config
}

fn ask(test: &str) -> LeaseRequest {
    let read: Permission = "token:read:orders".parse().unwrap();
    LeaseRequest::new(test, vec![read], Duration::from_secs(30))
}

#[test]
fn a_lifecycle_is_recorded_in_the_injected_sink() {
    let dir = tempfile::tempdir().unwrap();
    let file = Arc::new(AuditLog::new(dir.path().join("injected.jsonl")));
    let sink = Arc::new(FailingSink::new(file, usize::MAX));
    let broker = Broker::new(config(dir.path())).with_sink(sink.clone());
    let authority = TokenAuthority::shared();
    runtime().block_on(async {
        let lease = broker
            .acquire(&authority, ask("sink::records"))
            .await
            .unwrap();
        lease.release().await.unwrap();
    });
    assert_eq!(
        sink.appends(),
        3,
        "the request with its verdict, the grant, then revocation with its proof"
    );
    assert!(!dir.path().join("configured.jsonl").exists());
    let contents = audit::read(dir.path().join("injected.jsonl")).unwrap();
    assert!(
        contents.verification.is_ok(),
        "{:?}",
        contents.verification.problems
    );
    let last = &contents.events.last().unwrap().kind;
    assert!(matches!(last, EventKind::ProvenDead { .. }), "{last:?}");
    assert_eq!(broker.audit().location(), sink.location());
}

#[test]
fn a_sink_that_fails_its_first_write_fails_the_acquisition_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let file = Arc::new(AuditLog::new(dir.path().join("injected.jsonl")));
    let sink = Arc::new(FailingSink::new(file, 1));
    let broker = Broker::new(config(dir.path())).with_sink(sink);
    let authority = TokenAuthority::shared();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let acquired = runtime().block_on(broker.acquire(&authority, ask("sink::fails")));
        acquired.map(drop).map_err(|e| e.to_string())
    }));
    let message = match outcome {
        Ok(Ok(_)) => panic!("a lease was handed out although its record failed"),
        Ok(Err(e)) => e,
        Err(payload) => panic_text(payload.as_ref()),
    };
    assert!(message.contains("injected fault"), "{message}");
    assert!(message.contains("injected.jsonl"), "{message}");
}
