//! A history that grows every run: reading one run costs that run (from the checkpoint
//! before it), finds what reading the whole log finds, and old runs can be pruned with
//! the rest still verifying.

use std::path::Path;

use jit_test::audit::{
    AuditLog, Event, EventKind, Finding, HmacKey, Verification, prune, read_from, read_run, verify,
};

fn event(run: &str, kind: EventKind, lease: &str) -> Event {
    Event::new(run, "token", kind)
        .with_test("history::test")
        .with_lease(lease)
        .with_principal(&format!("jit_{lease}"))
}

fn granted() -> EventKind {
    EventKind::Granted {
        permissions: vec!["token:read:a".into()],
        expires_at: 1_800_000_000,
    }
}

/// Appends a whole lifecycle of `lease` in `run`, as a test process does.
fn lifecycle(log: &AuditLog, run: &str, lease: &str) {
    log.append(&[event(run, granted(), lease)]).unwrap();
    let proof = EventKind::ProvenDead {
        refusal: "revoked".into(),
    };
    log.append(&[
        event(run, EventKind::Revoked, lease),
        event(run, proof, lease),
    ])
    .unwrap();
}

/// `runs` runs of `leases` leases each, every run by writers of its own.
fn history(path: &Path, runs: usize, leases: usize) {
    for run in 0..runs {
        let log = AuditLog::signed(path).unwrap();
        for lease in 0..leases {
            lifecycle(&log, &format!("run-{run}"), &format!("{run}x{lease}"));
        }
    }
}

fn same(a: &Verification, b: &Verification) {
    assert_eq!(
        (a.lines, a.leases, &a.problems),
        (b.lines, b.leases, &b.problems)
    );
}

fn runs_in(events: &[Event]) -> Vec<&str> {
    let mut runs: Vec<&str> = events.iter().map(|e| e.run.as_str()).collect();
    runs.dedup();
    runs
}

#[test]
fn a_run_is_read_from_the_checkpoint_before_it_and_verifies_as_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    history(&path, 5, 20);
    // A lease of run-1 left unrevoked: a problem of the history that every reader reports.
    AuditLog::signed(&path)
        .unwrap()
        .append(&[event("run-1", granted(), "leaked")])
        .unwrap();
    let whole = verify(&path).unwrap();
    assert_eq!(whole.problems.len(), 1, "{:?}", whole.problems);

    // The first read of a run has no checkpoint: it reads everything, and leaves some.
    let first = read_run(&path, "run-3").unwrap();
    same(&first.verification, &whole);
    assert_eq!(runs_in(&first.events)[0], "run-0");

    // Later reads of the next run start where it begins.
    let log = AuditLog::signed(&path).unwrap();
    lifecycle(&log, "run-5", "5x0");
    let whole = verify(&path).unwrap();
    let later = read_run(&path, "run-5").unwrap();
    same(&later.verification, &whole);
    assert!(
        !later.events.iter().any(|e| e.run.starts_with("run-0")),
        "run-5 was read from the start: {:?}",
        runs_in(&later.events)
    );
    // And again, from the checkpoint the last read left where run-5 begins.
    lifecycle(&log, "run-5", "5x1");
    let again = read_run(&path, "run-5").unwrap();
    same(&again.verification, &verify(&path).unwrap());
    assert_eq!(runs_in(&again.events), ["run-5"]);
    assert_eq!(
        again.events.len(),
        2 * 5,
        "two lifecycles of 3 events and 2 seals"
    );
}

#[test]
fn a_checkpoint_that_no_longer_matches_the_log_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    history(&path, 3, 5);
    read_run(&path, "run-2").unwrap();
    // The log is replaced by another history with the same runs; the checkpoints stay.
    std::fs::remove_file(&path).unwrap();
    history(&path, 3, 6);
    let read = read_run(&path, "run-2").unwrap();
    same(&read.verification, &verify(&path).unwrap());
    assert_eq!(
        runs_in(&read.events)[0],
        "run-0",
        "read from a stale checkpoint"
    );
}

#[test]
fn pruning_keeps_the_last_runs_and_the_rest_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    history(&path, 6, 10);
    let before = std::fs::metadata(&path).unwrap().len();
    let of_run_5 = |events: Vec<Event>| -> Vec<Event> {
        events.into_iter().filter(|e| e.run == "run-5").collect()
    };
    let report_before = of_run_5(read_run(&path, "run-5").unwrap().events);

    let pruned = prune(&path, 2).unwrap();
    assert_eq!(pruned.runs, ["run-0", "run-1", "run-2", "run-3"]);
    assert_eq!(pruned.lines, 4 * 10 * 5);
    assert!(std::fs::metadata(&path).unwrap().len() < before / 2);

    let whole = verify(&path).unwrap();
    assert!(whole.is_ok(), "{:?}", whole.problems);
    assert_eq!((whole.lines, whole.leases), (1 + 2 * 10 * 5, 20));
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(
        first
            .lines()
            .next()
            .unwrap()
            .contains("\"event\":\"pruned\"")
    );
    // The kept run reads as before, and the log goes on growing soundly.
    let report_after = of_run_5(read_run(&path, "run-5").unwrap().events);
    assert_eq!(report_after, report_before);
    lifecycle(&AuditLog::signed(&path).unwrap(), "run-6", "6x0");
    assert!(verify(&path).unwrap().is_ok());
    assert_eq!(prune(&path, 3).unwrap().runs, Vec::<String>::new());
}

#[test]
fn pruning_refuses_to_remove_what_is_unresolved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    history(&path, 2, 3);
    AuditLog::signed(&path)
        .unwrap()
        .append(&[event("run-1", granted(), "open")])
        .unwrap();
    history_run(&path, "run-2");
    let size = std::fs::metadata(&path).unwrap().len();
    let e = prune(&path, 1).unwrap_err().to_string();
    assert!(
        e.contains("1 leases not yet revoked and proven dead") && e.contains("jit-test verify"),
        "{e}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "nothing cut");
}

fn history_run(path: &Path, run: &str) {
    lifecycle(
        &AuditLog::signed(path).unwrap(),
        run,
        &format!("{run}-lease"),
    );
}

#[test]
fn removing_old_lines_without_the_prune_line_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    history(&path, 2, 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: String = text.lines().skip(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, cut).unwrap();
    let problems = verify(&path).unwrap().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.line == 1 && p.finding == Finding::ChainBroken),
        "{problems:?}"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_keyed_log_cannot_be_pruned_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key = HmacKey::new(b"a key of thirty-two bytes or more!!").unwrap();
    for run in ["run-0", "run-1"] {
        lifecycle(&AuditLog::keyed(&path, key.clone()), run, run);
    }
    // No key in the environment: the lines cannot be verified, so nothing is cut.
    let e = prune(&path, 1).unwrap_err().to_string();
    assert!(e.contains("problems before the cut"), "{e}");

    // A forger cuts run-0 and writes the prune line by hand, with a plain SHA-256.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let removed = &lines[..3];
    let head = &removed[2][removed[2].len() - 66..removed[2].len() - 2];
    let body = format!(
        "{{\"v\":1,\"prev\":\"{head}\",\"ts\":\"2026-11-30T00:00:00.000Z\",\"run\":\"run-1\",\
         \"pid\":1,\"scheme\":\"audit\",\"event\":\"pruned\",\"lines\":3,\"runs\":1}}"
    );
    let anchor = format!(
        "{},\"hash\":\"{}\"}}",
        &body[..body.len() - 1],
        sha256_hex(body.as_bytes())
    );
    let forged: String = std::iter::once(anchor.as_str())
        .chain(lines[3..].iter().copied())
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, forged).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let found = read_from(std::io::BufReader::new(file), Some(&key))
        .unwrap()
        .verification
        .problems;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].line, &found[0].finding),
        (1, &Finding::Unauthenticated)
    );
}
