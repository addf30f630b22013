//! A crash mid-append leaves the log ending in an incomplete line. `verify` reports it
//! without panicking; the next writer keeps those bytes beside the log, cuts them off,
//! records the tear in the chain, and later runs go on; `verify` then reports the tear
//! with its position and where its bytes went.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use jit_test::audit::{AuditLog, Event, EventKind, Finding, ProblemKind, read, verify};

fn granted(lease: &str) -> Event {
    let kind = EventKind::Granted {
        permissions: vec!["token:read:a".into()],
        expires_at: 1_800_000_000,
    };
    Event::new("run-1", "token", kind)
        .with_test("torn::test")
        .with_lease(lease)
        .with_principal(&format!("jit_{lease}"))
}

fn closed(lease: &str) -> [Event; 2] {
    let proof = EventKind::ProvenDead {
        refusal: "revoked".into(),
    };
    [EventKind::Revoked, proof].map(|kind| {
        Event::new("run-1", "token", kind)
            .with_test("torn::test")
            .with_lease(lease)
            .with_principal(&format!("jit_{lease}"))
    })
}

fn lifecycle(log: &AuditLog, lease: &str) {
    log.append(&[granted(lease)]).unwrap();
    log.append(&closed(lease)).unwrap();
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// `truncate -s -<bytes>`: what a crash mid-append leaves.
fn cut(path: &Path, bytes: u64) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len(path) - bytes).unwrap();
}

/// The files set aside beside `path`.
fn kept_beside(path: &Path) -> Vec<PathBuf> {
    let dir = path.parent().unwrap();
    let mut kept: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .collect();
    kept.sort();
    kept
}

#[test]
fn a_torn_tail_is_reported_by_verify_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::new(&path);
    lifecycle(&log, "a");
    lifecycle(&log, "b");
    cut(&path, 40);
    let text = std::fs::read(&path).unwrap();
    let last_line = text.iter().rposition(|&b| b == b'\n').unwrap() as u64 + 1;
    let report = verify(&path).unwrap();
    assert_eq!(
        (report.problems[0].line, &report.problems[0].finding),
        (6, &Finding::Unterminated { offset: last_line })
    );
    assert!(!report.chain_intact());
}

#[test]
fn the_next_writer_sets_a_torn_tail_aside_and_marks_it_in_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    lifecycle(&AuditLog::new(&path), "a");
    let before = std::fs::read(&path).unwrap();
    let sound = before.len() as u64;
    let writer = AuditLog::new(&path);
    writer.append(&[granted("b")]).unwrap();
    let torn_line = std::fs::read(&path).unwrap()[sound as usize..].to_vec();
    cut(&path, 40);

    // A later run, in another process (a fresh AuditLog), goes on.
    let later = AuditLog::new(&path);
    lifecycle(&later, "c");

    let kept = kept_beside(&path);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        torn_line[..torn_line.len() - 40],
        "the torn bytes are kept as they were"
    );
    assert!(std::fs::read(&path).unwrap().starts_with(&before));

    let contents = read(&path).unwrap();
    let report = &contents.verification;
    assert!(report.chain_intact(), "{:?}", report.problems);
    let torn = Finding::Torn {
        offset: sound,
        bytes: torn_line.len() as u64 - 40,
        kept: kept[0].display().to_string(),
    };
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].finding, torn);
    assert_eq!(report.problems[0].finding.kind(), ProblemKind::Torn);
    // The marker is the line right after the sound part, in the run that wrote next.
    assert_eq!(report.problems[0].line, 4);
    assert_eq!(contents.events[3].run, "run-1");
    assert!(
        report.problems[0].to_string().starts_with(&format!(
            "line 4: an append cut short by a crash ({} bytes at byte {sound})",
            torn_line.len() - 40
        )),
        "{}",
        report.problems[0]
    );

    let report = jit_test::report::build(&path, Some("run-1")).unwrap();
    assert!(report.chain.intact);
    let problems = report.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("torn audit log: "), "{problems:?}");
}

#[test]
fn a_writer_that_already_appended_also_notices_a_tear_left_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let ours = AuditLog::new(&path);
    lifecycle(&ours, "a");
    // Another process crashes mid-append.
    AuditLog::new(&path).append(&[granted("b")]).unwrap();
    cut(&path, 1);
    lifecycle(&ours, "c");
    let report = verify(&path).unwrap();
    assert!(report.chain_intact(), "{:?}", report.problems);
    assert!(matches!(report.problems[0].finding, Finding::Torn { .. }));
}

#[test]
fn a_tail_of_zeros_and_a_torn_first_line_are_set_aside_too() {
    let dir = tempfile::tempdir().unwrap();
    // After a power loss, a file system may leave the appended blocks as zeros.
    let zeros = dir.path().join("zeros.jsonl");
    lifecycle(&AuditLog::new(&zeros), "a");
    let sound = len(&zeros);
    let mut text = std::fs::read(&zeros).unwrap();
    text.extend([0u8; 300]);
    std::fs::write(&zeros, text).unwrap();
    lifecycle(&AuditLog::new(&zeros), "b");
    let report = verify(&zeros).unwrap();
    assert!(report.chain_intact(), "{:?}", report.problems);
    let Finding::Torn { offset, bytes, .. } = &report.problems[0].finding else {
        panic!("{:?}", report.problems);
    };
    assert_eq!((*offset, *bytes), (sound, 300));

    // The very first append was cut short: everything is set aside, the chain restarts.
    let first = dir.path().join("first.jsonl");
    AuditLog::new(&first).append(&[granted("x")]).unwrap();
    cut(&first, 10);
    lifecycle(&AuditLog::new(&first), "y");
    let report = verify(&first).unwrap();
    assert!(report.chain_intact(), "{:?}", report.problems);
    assert!(matches!(
        report.problems[0].finding,
        Finding::Torn { offset: 0, .. }
    ));
}

#[test]
fn a_log_without_any_complete_line_near_its_end_names_the_command_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    lifecycle(&AuditLog::new(&path), "a");
    let mut text = std::fs::read(&path).unwrap();
    text.extend(std::iter::repeat_n(b'x', 70_000));
    std::fs::write(&path, &text).unwrap();
    let err = AuditLog::new(&path).append(&[granted("b")]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("run `jit-test verify {}`", path.display())),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), text, "nothing was cut");
}
