//! The audit log: hash chain, tamper detection and lifecycle completeness. Many
//! processes appending at once are tested in the `tests` member.

use std::path::{Path, PathBuf};

use jit_test::audit::{AuditLog, Event, EventKind, verify};

fn event(kind: EventKind, lease: &str) -> Event {
    let mut e = Event::new(kind, "run-1", "token");
    e.test = "audit::lifecycle".into();
    e.lease = Some(lease.into());
    e.principal = Some(format!("jit_{lease}"));
    e
}

fn full_lifecycle(log: &AuditLog, lease: &str) {
    log.append(&[
        event(EventKind::Requested, lease),
        event(EventKind::Approved, lease),
        event(EventKind::Granted, lease),
    ])
    .unwrap();
    log.append(&[event(EventKind::Revoked, lease)]).unwrap();
    log.append(&[event(EventKind::ProvenDead, lease)]).unwrap();
}

fn temp_log(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join(name);
    (dir, path)
}

fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    edit(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_complete_log_verifies() {
    let (_dir, path) = temp_log("ok.jsonl");
    let log = AuditLog::new(&path);
    full_lifecycle(&log, "a");
    full_lifecycle(&log, "b");
    let report = verify(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.lines, report.leases), (10, 2));
}

#[test]
fn an_edited_line_breaks_its_hash() {
    let (_dir, path) = temp_log("edited.jsonl");
    full_lifecycle(&AuditLog::new(&path), "a");
    rewrite(&path, |lines| lines[2] = lines[2].replace("jit_a", "jit_b"));
    let report = verify(&path).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("line 3: hash")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_removed_line_breaks_the_chain() {
    let (_dir, path) = temp_log("removed.jsonl");
    full_lifecycle(&AuditLog::new(&path), "a");
    rewrite(&path, |lines| {
        lines.remove(1);
    });
    let report = verify(&path).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("chain broken")),
        "{:?}",
        report.problems
    );
}

#[test]
fn unrevoked_unproven_and_leaked_grants_are_reported() {
    let (_dir, path) = temp_log("open.jsonl");
    let log = AuditLog::new(&path);
    log.append(&[event(EventKind::Granted, "never")]).unwrap();
    log.append(&[
        event(EventKind::Granted, "unproven"),
        event(EventKind::Revoked, "unproven"),
    ])
    .unwrap();
    log.append(&[event(EventKind::Granted, "reaped")]).unwrap();
    let mut reaped = Event::new(EventKind::Reaped, "run-2", "token");
    reaped.principal = Some("jit_reaped".into());
    log.append(&[reaped, event(EventKind::LeakDetected, "leaky")])
        .unwrap();
    let problems = verify(&path).unwrap().problems.join("\n");
    assert!(
        problems.contains("jit_never granted to audit::lifecycle was never revoked"),
        "{problems}"
    );
    assert!(
        problems
            .contains("jit_unproven granted to audit::lifecycle was revoked but never proven dead"),
        "{problems}"
    );
    assert!(
        problems.contains("jit_leaky of test audit::lifecycle still worked"),
        "{problems}"
    );
    assert!(!problems.contains("jit_reaped"), "{problems}");
}
