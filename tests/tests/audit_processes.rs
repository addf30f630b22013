//! Many processes append to one audit log at once (as cargo-nextest runs tests): no line
//! is lost or interleaved and the chain verifies.

use std::process::{Command, Stdio};

use jit_test::audit::{AuditLog, Event, EventKind, Finding, verify};

const PROCESSES: usize = 6;
const LEASES_PER_PROCESS: usize = 60;

#[test]
fn many_processes_append_without_losing_or_interleaving_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.jsonl");
    // This process writes before and after, so its cached tail goes stale meanwhile.
    let own = AuditLog::new(&path);
    let granted = |lease: &str| {
        let kind = EventKind::Granted {
            permissions: vec!["token:read:a".into()],
            expires_at: 1_800_000_000,
        };
        Event::new("multi-process", "token", kind)
            .with_lease(lease)
            .with_principal(&format!("jit_{lease}"))
    };
    own.append(&[granted("parent")]).unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_audit-writer"))
                .arg(&path)
                .arg(LEASES_PER_PROCESS.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let revoked = Event::new("multi-process", "token", EventKind::Revoked).with_lease("parent");
    own.append(&[revoked]).unwrap();

    let report = verify(&path).unwrap();
    assert_eq!(report.lines, PROCESSES * LEASES_PER_PROCESS * 5 + 2);
    assert_eq!(report.leases, PROCESSES * LEASES_PER_PROCESS + 1);
    // The only problem is the parent's lease, deliberately never proven dead.
    assert_eq!(
        report.problems.len(),
        1,
        "{:?}",
        &report.problems[..report.problems.len().min(5)]
    );
    assert_eq!(
        report.problems[0].finding,
        Finding::NeverProven {
            test: String::new(),
            principal: "jit_parent".into()
        }
    );
}
