//! A whole `token` lifecycle through the runner, checked in an audit log of its own: the
//! grant, revocation and proof are recorded for the principal, the chain verifies, and
//! the token appears nowhere in the file.
//!
//! `harness = false`: `main` sets `JIT_TEST_AUDIT_LOG` before any thread exists (and so
//! before `jit_test::Config` is first read), which a libtest test could not do safely.
//! It answers `--list` and test-name filters the way libtest does, so cargo-nextest can
//! list and run it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_test::Test;
use jit_test::audit::{self, Event, EventKind};
use jit_test_providers::token::{TokenAuthority, TokenError, TokenGrant};

const NAME: &str = "lifecycle_is_audited_without_the_token";

/// Whether the libtest-style arguments (as cargo test and cargo-nextest pass them) select
/// this binary's one test; `--list` prints it, as nextest expects, and runs nothing.
fn selected() -> bool {
    const TAKES_VALUE: [&str; 6] = [
        "--format",
        "--test-threads",
        "--color",
        "--logfile",
        "--skip",
        "-Z",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        if !has("--ignored") {
            println!("{NAME}: test");
        }
        return false;
    }
    let mut filters = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            iter.next();
        } else if !arg.starts_with('-') {
            filters.push(arg.as_str());
        }
    }
    let exact = has("--exact");
    !has("--ignored")
        && (filters.is_empty()
            || filters
                .iter()
                .any(|f| if exact { *f == NAME } else { NAME.contains(f) }))
}

fn main() {
    if !selected() {
        if !std::env::args().any(|a| a == "--list") {
            println!("0 passed, 0 failed");
        }
        return;
    }
    let log = std::env::temp_dir().join(format!(
        "jit-test-token-audit-{}-{}.jsonl",
        std::process::id(),
        jit_test::rand::hex(4)
    ));
    // SAFETY: the process has a single thread here, and nothing has read the environment
    // through jit-test yet.
    unsafe { std::env::set_var("JIT_TEST_AUDIT_LOG", &log) };
    let result = std::panic::catch_unwind(|| lifecycle_is_audited_without_the_token(&log));
    let _ = std::fs::remove_file(&log);
    match result {
        Ok(()) => println!("test {NAME} ... ok\n\n1 passed, 0 failed"),
        Err(panic) => {
            println!("test {NAME} ... FAILED\n\n0 passed, 1 failed");
            std::panic::resume_unwind(panic)
        }
    }
}

/// What the body saw, for checks after the lifecycle ended.
struct Seen {
    token: String,
    principal: String,
}

fn lifecycle_is_audited_without_the_token(log: &std::path::Path) {
    assert_eq!(jit_test::Config::global().audit_log, log);
    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let out = Arc::clone(&seen);
    Test::new("token_audit::reads_orders")
        .scope("token:read:orders")
        .ttl(Duration::from_secs(30))
        .run(move |(grant,): (TokenGrant,)| {
            let out = Arc::clone(&out);
            async move {
                let verifier = TokenAuthority::shared().verifier();
                let claims = verifier
                    .verify(grant.token().expose())
                    .expect("a fresh token verifies");
                assert!(claims.allows("read:orders"));
                assert!(!claims.allows("write:orders"));
                assert_eq!(claims.sub, grant.principal());
                assert!(grant.principal().starts_with("jit_"));
                *out.lock().unwrap() = Some(Seen {
                    token: grant.token().expose().to_owned(),
                    principal: grant.principal().to_owned(),
                });
            }
        });
    let seen = seen.lock().unwrap().take().expect("the body ran");

    // After the test, the token is dead for the verifier a service would hold.
    let verifier = TokenAuthority::shared().verifier();
    assert_eq!(verifier.verify(&seen.token), Err(TokenError::Revoked));

    let text = std::fs::read_to_string(log).expect("the audit log was written");
    let signature = seen.token.rsplit('.').next().unwrap();
    assert!(!text.contains(&seen.token), "the token is in the audit log");
    assert!(
        !text.contains(signature),
        "the token's signature is in the audit log"
    );

    let contents = audit::read(log).unwrap();
    let events: Vec<&Event> = contents.events.iter().collect();
    assert_eq!(events.len(), text.lines().count(), "each line is an event");
    let of_principal = |wanted: fn(&EventKind) -> bool| {
        events
            .iter()
            .filter(|e| wanted(&e.kind) && e.principal.as_deref() == Some(seen.principal.as_str()))
            .collect::<Vec<_>>()
    };
    let granted = of_principal(|k| matches!(k, EventKind::Granted { .. }));
    assert_eq!(granted.len(), 1, "{text}");
    assert_eq!(granted[0].scheme, "token");
    assert_eq!(granted[0].test, "token_audit::reads_orders");
    let EventKind::Granted { permissions, .. } = &granted[0].kind else {
        unreachable!("filtered on granted")
    };
    assert_eq!(permissions, &["token:read:orders"]);
    assert_eq!(
        of_principal(|k| *k == EventKind::Revoked).len(),
        1,
        "{text}"
    );
    let proven = of_principal(|k| matches!(k, EventKind::ProvenDead { .. }));
    assert_eq!(proven.len(), 1, "{text}");
    assert_eq!(
        proven[0].kind,
        EventKind::ProvenDead {
            refusal: "revoked".into()
        }
    );
    assert!(of_principal(|k| *k == EventKind::LeakDetected).is_empty());
    let order: Vec<String> = text
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["event"].as_str().unwrap().to_owned()
        })
        .collect();
    // Each of the three appends (the request before the grant, the grant, the release)
    // ends with the writer's seal.
    assert_eq!(
        order,
        [
            "requested",
            "approved",
            "sealed",
            "granted",
            "sealed",
            "revoked",
            "proven_dead",
            "sealed"
        ]
    );

    let verification = contents.verification;
    assert!(verification.is_ok(), "{:?}", verification.problems);
    assert_eq!((verification.lines, verification.leases), (8, 1));
}
