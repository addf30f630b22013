//! A forger who can write the log, and recomputes the plain SHA-256 chain as any script
//! could, is caught: in a signed log (the default) and in a keyed one (HMAC-SHA-256).
//! Caught here means `verify` reports a problem; it cannot undo the forgery.

use std::path::Path;

use jit_test::audit::{
    AuditLog, Event, EventKind, Finding, HmacKey, ProblemKind, Verification, read_from,
};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn event(kind: EventKind, lease: &str) -> Event {
    Event::new("run-1", "token", kind)
        .with_test("forgery::victim")
        .with_lease(lease)
        .with_principal(&format!("jit_{lease}"))
}

fn granted() -> EventKind {
    EventKind::Granted {
        permissions: vec!["token:read:a".into()],
        expires_at: 1_800_000_000,
    }
}

fn lifecycle(log: &AuditLog, lease: &str) {
    log.append(&[event(granted(), lease)]).unwrap();
    let proof = EventKind::ProvenDead {
        refusal: "revoked".into(),
    };
    log.append(&[event(EventKind::Revoked, lease), event(proof, lease)])
        .unwrap();
}

fn verify_with(path: &Path, key: Option<&HmacKey>) -> Verification {
    let file = std::fs::File::open(path).unwrap();
    read_from(std::io::BufReader::new(file), key)
        .unwrap()
        .verification
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a forger writes: the line's JSON with `prev` set, sealed with a recomputed
/// SHA-256, as the writer of an unkeyed log does.
fn forge(mut line: serde_json::Value, prev: &str) -> (String, String) {
    let object = line.as_object_mut().unwrap();
    object.remove("hash");
    object.insert("prev".into(), prev.into());
    let body = serde_json::to_string(&line).unwrap();
    let hash = sha256_hex(body.as_bytes());
    (
        format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]),
        hash,
    )
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Appends a `reaped` line for `principal`, claiming `key` (or none), to close a lease
/// that was never revoked.
fn append_forged_reap(path: &Path, principal: &str, key: Option<&str>) {
    let last = lines(path).pop().unwrap();
    let mut reap = serde_json::json!({
        "v": 1, "ts": "2026-01-01T00:00:00.000Z", "run": "run-2", "pid": 1,
        "scheme": "token", "principal": principal, "event": "reaped"
    });
    if let Some(key) = key {
        reap["key"] = key.into();
    }
    let (line, _) = forge(reap, last["hash"].as_str().unwrap());
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(&line);
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Deletes every line of `lease` and re-chains the rest with recomputed hashes.
fn delete_and_rechain(path: &Path, lease: &str) {
    let mut prev = GENESIS.to_owned();
    let mut out = String::new();
    for line in lines(path) {
        if line["lease"] == lease {
            continue;
        }
        let (text, hash) = forge(line, &prev);
        out.push_str(&text);
        out.push('\n');
        prev = hash;
    }
    std::fs::write(path, out).unwrap();
}

fn kinds(report: &Verification) -> Vec<(ProblemKind, &Finding)> {
    report
        .problems
        .iter()
        .map(|p| (p.finding.kind(), &p.finding))
        .collect()
}

fn never_revoked(lease: &str) -> Finding {
    Finding::NeverRevoked {
        test: "forgery::victim".into(),
        principal: format!("jit_{lease}"),
    }
}

#[test]
fn a_forged_reap_appended_to_a_signed_log_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::signed(&path).unwrap();
    lifecycle(&log, "a");
    log.append(&[event(granted(), "open")]).unwrap();
    let honest = verify_with(&path, None);
    assert_eq!(
        kinds(&honest),
        [(ProblemKind::Unrevoked, &never_revoked("open"))]
    );
    let signer = lines(&path)[0]["key"].as_str().unwrap().to_owned();
    assert!(signer.starts_with("ed25519:"), "{signer}");

    // Unkeyed, as the writer of a plain log would write it.
    let plain = dir.path().join("plain.jsonl");
    std::fs::copy(&path, &plain).unwrap();
    append_forged_reap(&plain, "jit_open", None);
    let report = verify_with(&plain, None);
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.finding == never_revoked("open"))
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.finding == Finding::Unauthenticated),
        "{:?}",
        report.problems
    );

    // Claiming the honest writer's key: it never sealed that line.
    let claimed = dir.path().join("claimed.jsonl");
    std::fs::copy(&path, &claimed).unwrap();
    append_forged_reap(&claimed, "jit_open", Some(&signer));
    let report = verify_with(&claimed, None);
    assert!(
        report.problems.iter().any(|p| p.finding
            == Finding::Unsigned {
                signer: signer.clone(),
                lines: 1
            }),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_lease_deleted_from_a_signed_log_and_rechained_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::signed(&path).unwrap();
    lifecycle(&log, "a");
    log.append(&[event(granted(), "leaked")]).unwrap();
    lifecycle(&log, "c");
    assert_eq!(
        kinds(&verify_with(&path, None)),
        [(ProblemKind::Unrevoked, &never_revoked("leaked"))]
    );
    delete_and_rechain(&path, "leaked");
    let report = verify_with(&path, None);
    assert!(!report.chain_intact(), "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p.finding, Finding::BadSignature { .. })),
        "{:?}",
        report.problems
    );
}

#[test]
fn forgeries_of_a_keyed_log_fail_verify_and_the_key_is_needed_to_check_it() {
    let key = HmacKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::keyed(&path, key.clone());
    lifecycle(&log, "a");
    log.append(&[event(granted(), "open")]).unwrap();
    lifecycle(&log, "c");
    assert_eq!(
        kinds(&verify_with(&path, Some(&key))),
        [(ProblemKind::Unrevoked, &never_revoked("open"))]
    );
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("0123456789abcdef")
    );

    let reaped = dir.path().join("reaped.jsonl");
    std::fs::copy(&path, &reaped).unwrap();
    append_forged_reap(&reaped, "jit_open", Some(key.id()));
    let report = verify_with(&reaped, Some(&key));
    assert_eq!(
        report.problems.last().unwrap().finding,
        Finding::HashMismatch
    );

    delete_and_rechain(&path, "open");
    let report = verify_with(&path, Some(&key));
    let mismatches = report
        .problems
        .iter()
        .filter(|p| p.finding == Finding::HashMismatch)
        .count();
    assert_eq!(
        mismatches, 6,
        "every re-chained line: {:?}",
        report.problems
    );

    // Without the key nothing keyed can be checked, and verify says so.
    let unchecked = verify_with(&reaped, None);
    assert_eq!(
        unchecked.problems[0].finding,
        Finding::UnknownKey {
            key: key.id().to_owned()
        }
    );
}

#[test]
fn a_short_key_is_refused() {
    let err = HmacKey::new(b"short").unwrap_err().to_string();
    assert!(err.contains("at least 32 bytes"), "{err}");
    let key = HmacKey::new(&[7u8; 32]).unwrap();
    assert!(!format!("{key:?}").contains("0707"), "{key:?}");
}
