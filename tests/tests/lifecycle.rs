//! The lifecycle around a body that does not simply pass: a panic, a hang, a body that
//! outlives its ttl, a failure. Each time the credential must be revoked and refused by
//! the real verifier afterwards, and the failure must say what happened.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_test::Test;
use jit_test_providers::token::{TokenAuthority, TokenError, TokenGrant};
use tests::panic_text;

/// Runs `test` with a body that records its token and then does `then`; returns the
/// failure message (if the test failed) and the token.
fn run_capturing(test: Test, then: impl Fn() + Send + Sync + 'static) -> (Option<String>, String) {
    let seen = Arc::new(Mutex::new(String::new()));
    let out = Arc::clone(&seen);
    let then = Arc::new(then);
    let result = catch_unwind(AssertUnwindSafe(|| {
        test.run_blocking(move |(token,): (TokenGrant,)| {
            *out.lock().unwrap() = token.token().expose().to_owned();
            then();
        })
    }));
    let message = result.err().map(|payload| panic_text(payload.as_ref()));
    let token = seen.lock().unwrap().clone();
    (message, token)
}

fn assert_revoked(token: &str) {
    assert!(!token.is_empty(), "the body never ran");
    let verdict = TokenAuthority::shared().verifier().verify(token);
    assert!(matches!(verdict, Err(TokenError::Revoked)), "{verdict:?}");
}

#[test]
fn a_panicking_body_is_re_raised_and_its_credential_revoked() {
    let test = Test::new("lifecycle::panics").scope("token:read:orders");
    let (message, token) = run_capturing(test, || panic!("the body broke"));
    assert_eq!(message.as_deref(), Some("the body broke"));
    assert_revoked(&token);
}

#[test]
fn a_hanging_body_times_out_and_its_credential_is_revoked() {
    let test = Test::new("lifecycle::hangs")
        .scope("token:read:orders")
        .ttl(Duration::from_secs(30))
        .timeout(Duration::from_millis(500));
    let started = Instant::now();
    // The body blocks its thread: no async cancellation could stop it.
    let (message, token) = run_capturing(test, || std::thread::sleep(Duration::from_secs(3600)));
    let message = message.expect("a hung test must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        message.contains("lifecycle::hangs timed out after 500ms"),
        "{message}"
    );
    assert!(message.contains("credentials were revoked"), "{message}");
    assert_revoked(&token);
}

#[test]
fn a_body_that_outlives_its_ttl_is_cut_off_and_the_failure_says_it_expired() {
    let test = Test::new("lifecycle::outlives_ttl")
        .scope("token:read:orders")
        .ttl(Duration::from_secs(1));
    let verifier = TokenAuthority::shared().verifier();
    let (message, token) = run_capturing(test, move || {
        std::thread::sleep(Duration::from_millis(2200));
        panic!("request refused");
    });
    let message = message.expect("the body failed");
    assert!(message.starts_with("request refused"), "{message}");
    assert!(message.contains("expired during the test, "), "{message}");
    assert!(
        message.contains("after it was granted (ttl 1s)"),
        "{message}"
    );
    assert!(
        message.contains("not from a missing permission"),
        "{message}"
    );
    assert!(verifier.verify(&token).is_err());
}

#[test]
fn a_failing_result_fails_the_test_with_its_error_and_revokes() {
    let seen = Arc::new(Mutex::new(String::new()));
    let out = Arc::clone(&seen);
    let result = catch_unwind(AssertUnwindSafe(|| {
        Test::new("lifecycle::returns_err")
            .scope("token:read:orders")
            .run(move |(token,): (TokenGrant,)| {
                *out.lock().unwrap() = token.token().expose().to_owned();
                async { Err::<(), _>("the order total is wrong") }
            })
    }));
    let payload = result.expect_err("an Err must fail the test");
    let message = panic_text(payload.as_ref());
    assert!(message.contains("the order total is wrong"), "{message}");
    assert_revoked(&seen.lock().unwrap());
}

#[test]
fn a_scope_the_provider_rejects_fails_before_anything_is_granted() {
    let result = catch_unwind(|| {
        Test::new("lifecycle::bad_token_scope")
            .scope("token:read(id):orders")
            .run(|(_token,): (TokenGrant,)| async {})
    });
    let payload = result.expect_err("an invalid permission must fail");
    let message = panic_text(payload.as_ref());
    assert!(
        message.contains("permission `token:read(id):orders` rejected"),
        "{message}"
    );
    assert!(message.contains("take no arguments"), "{message}");
}

#[test]
fn secrets_never_reach_failure_messages_or_the_audit_log() {
    let test = Test::new("lifecycle::secret_stays_secret").scope("token:read:orders");
    let (message, token) = run_capturing(test, || {});
    assert!(message.is_none());
    let audit = std::fs::read_to_string(&jit_test::Config::global().audit_log).unwrap();
    assert!(audit.contains("lifecycle::secret_stays_secret"));
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !audit.contains(signature),
        "the token's signature is in the audit log"
    );
}
