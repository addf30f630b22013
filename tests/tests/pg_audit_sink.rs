//! The audit trail in PostgreSQL: many writers append concurrently without loss, each
//! chain verifies, a writer cannot change or remove rows (the owner can, and `read_run`
//! sees it), migrations are idempotent, a whole lifecycle lands in the table and is
//! verified from there, and a sink that cannot be written fails the test within bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::audit::postgres::{self, PgSink, VERSION};
use jit_test::audit::{Event, EventKind, Finding, Sink};
use jit_test::{Broker, Config, LeaseRequest, Permission};
use jit_test_providers::token::TokenAuthority;
use tests::audit_table::AuditTable;
use tests::runtime;

fn run_id() -> String {
    format!("sink-{}", jit_test::rand::hex(6))
}

fn reaped(run: &str, n: usize) -> Event {
    Event::new(run, "token", EventKind::Reaped).with_principal(&format!("jit_p{n}"))
}

#[test]
fn migrations_are_versioned_and_run_once() {
    let table = AuditTable::create();
    let again = postgres::migrate(&table.owner_url(), Some(&table.writer())).unwrap();
    assert_eq!(again, Vec::<i32>::new(), "already at version {VERSION}");
    // A writer may read the version but not migrate.
    let err = postgres::migrate(&table.writer_url(), None).unwrap_err();
    assert!(err.to_string().contains("SQLSTATE 42501"), "{err}");
}

#[test]
fn many_writers_append_concurrently_and_every_chain_holds() {
    let table = AuditTable::create();
    let run = run_id();
    let (writers, threads, appends) = (4, 4, 25);
    std::thread::scope(|scope| {
        for _ in 0..writers {
            // One sink per writer, as one per test process; threads share it.
            let sink = Arc::new(PgSink::plain(&table.writer_url(), &run).unwrap());
            for t in 0..threads {
                let (sink, run) = (sink.clone(), run.clone());
                scope.spawn(move || {
                    for a in 0..appends {
                        let n = t * 1000 + a;
                        sink.append(&[reaped(&run, n), reaped(&run, n + 500)])
                            .unwrap();
                    }
                });
            }
        }
    });
    let contents = postgres::read_run(&table.writer_url(), &run).unwrap();
    let expected = writers * threads * appends * 2;
    assert!(
        contents.verification.is_ok(),
        "{:?}",
        contents.verification.problems
    );
    assert_eq!(contents.events.len(), expected);
    assert_eq!(contents.verification.lines, expected);
    // Another run's rows are not read.
    let other = postgres::read_run(&table.writer_url(), "no-such-run").unwrap();
    assert!(other.events.is_empty());
}

#[test]
fn a_writer_cannot_change_or_remove_rows_and_what_the_owner_changes_shows() {
    let table = AuditTable::create();
    let run = run_id();
    let sink = PgSink::plain(&table.writer_url(), &run).unwrap();
    for n in 0..3 {
        sink.append(&[reaped(&run, n)]).unwrap();
    }
    for sql in [
        "UPDATE jit_audit.events SET line = line",
        "DELETE FROM jit_audit.events",
        "TRUNCATE jit_audit.events",
        "DROP TABLE jit_audit.events",
    ] {
        let err = table.as_writer(sql).unwrap_err();
        let db = err.as_db_error().expect("a refusal by the server");
        assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
    }
    let intact = postgres::read_run(&table.writer_url(), &run).unwrap();
    assert!(intact.verification.is_ok(), "{:?}", intact.verification);

    table.as_owner(
        "UPDATE jit_audit.events SET line = replace(line, 'jit_p1', 'jit_px') WHERE seq = 2",
    );
    let edited = postgres::read_run(&table.writer_url(), &run).unwrap();
    let findings: Vec<&Finding> = edited
        .verification
        .problems
        .iter()
        .map(|p| &p.finding)
        .collect();
    assert_eq!(findings, [&Finding::HashMismatch], "{findings:?}");

    table.as_owner("DELETE FROM jit_audit.events WHERE seq = 2");
    let cut = postgres::read_run(&table.writer_url(), &run).unwrap();
    let gap = cut
        .verification
        .problems
        .iter()
        .find_map(|p| match &p.finding {
            Finding::Gap {
                writer,
                expected,
                found,
            } => Some((writer.clone(), *expected, *found)),
            _ => None,
        });
    assert_eq!(gap, Some((sink.writer().to_owned(), 2, 3)));
    assert!(
        cut.verification
            .problems
            .iter()
            .any(|p| p.finding == Finding::ChainBroken),
        "{:?}",
        cut.verification.problems
    );
}

fn config(url: &str, run: &str) -> Config {
    let mut config = Config::load().unwrap();
    config.audit_log = url.into();
    config.run_id = run.to_owned();
    config
}

fn ask(test: &str) -> LeaseRequest {
    let read: Permission = "token:read:orders".parse().unwrap();
    LeaseRequest::new(test, vec![read], Duration::from_secs(30))
}

#[test]
fn a_lifecycle_lands_in_the_table_and_is_verified_and_reported_from_there() {
    let table = AuditTable::create();
    let run = run_id();
    let broker = Broker::new(config(&table.writer_url(), &run));
    assert_eq!(broker.audit().location(), table.writer_url());
    let authority = TokenAuthority::shared();
    let kept = runtime().block_on(async {
        let lease = broker
            .acquire(&authority, ask("sink::released"))
            .await
            .unwrap();
        lease.release().await.unwrap();
        broker.acquire(&authority, ask("sink::kept")).await.unwrap()
    });
    let contents = postgres::read_run(&table.writer_url(), &run).unwrap();
    let never: Vec<String> = contents
        .verification
        .problems
        .iter()
        .filter_map(|p| match &p.finding {
            Finding::NeverRevoked { test, .. } => Some(test.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(never, ["sink::kept"], "{:?}", contents.verification);
    assert!(contents.verification.chain_intact());
    assert!(
        contents
            .events
            .iter()
            .all(|e| e.host == jit_test::config::hostname())
    );
    let report = jit_test::report::build_from(&table.writer_url(), contents, Some(&run));
    let names: Vec<&str> = report.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["sink::released", "sink::kept"]);
    assert_eq!(report.signing_keys.len(), 1, "one signed writer");
    assert_eq!(report.hosts.len(), 1);
    assert_eq!(report.hosts[0].tests, 2);
    assert_eq!(report.hosts[0].leases, 2);
    assert_eq!(report.missing_shards(), None);
    let junit = report.to_junit();
    let released = &report.tests[0].leases[0];
    for expected in [
        "<testcase classname=\"sink\" name=\"released\">".to_owned(),
        "<property name=\"permission\" value=\"token:read:orders\"/>".to_owned(),
        format!(
            "<property name=\"lease.{}\" value=\"{}\"/>",
            released.id, released.principal
        ),
        format!(
            "<property name=\"lease.{}.status\" value=\"clean\"/>",
            released.id
        ),
        "<failure type=\"unrevoked\" message=\"sink::kept: unrevoked\"/>".to_owned(),
    ] {
        assert!(junit.contains(&expected), "{expected} in {junit}");
    }
    // What a test process prints at its exit: this run's rows of the table.
    let summary = jit_test::summary::summarize_table(&table.writer_url(), &run);
    assert!(
        summary.starts_with("jit-test: 2 tests, 2 leases"),
        "{summary}"
    );
    assert!(summary.contains("sink::kept"), "{summary}");
    runtime().block_on(kept.release()).unwrap();
    let done = postgres::read_run(&table.writer_url(), &run).unwrap();
    assert!(done.verification.is_ok(), "{:?}", done.verification);
}

#[test]
fn a_sink_that_cannot_be_written_fails_the_test_within_its_bounds() {
    let run = run_id();
    // Nothing listens on port 1: every try is refused at once.
    let broker = Broker::new(config("postgres://nobody@127.0.0.1:1/none", &run));
    let started = Instant::now();
    let err = runtime()
        .block_on(broker.acquire(&TokenAuthority::shared(), ask("sink::down")))
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("127.0.0.1:1") || err.contains("postgres://nobody@127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("nothing was granted"), "{err}");

    // A server without the table: refused at once, naming the command that sets it up.
    let table = AuditTable::create();
    table.as_owner("DROP SCHEMA jit_audit CASCADE");
    let broker = Broker::new(config(&table.writer_url(), &run));
    let err = runtime()
        .block_on(broker.acquire(&TokenAuthority::shared(), ask("sink::unset")))
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(err.contains("jit-test migrate"), "{err}");
}

#[test]
fn a_password_in_the_url_is_refused_without_showing_it() {
    let err = PgSink::plain("postgres://w:hunter2hunter2@127.0.0.1/x", "r")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("JIT_TEST_AUDIT_PASSWORD"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_writer_goes_on_after_rows_it_did_not_expect_and_verify_reports_them() {
    let table = AuditTable::create();
    let run = run_id();
    let sink = PgSink::plain(&table.writer_url(), &run).unwrap();
    sink.append(&[reaped(&run, 1)]).unwrap();
    // A row under this writer's id that it did not write (as an append that landed after
    // its caller gave up would be, or a forgery by another holder of the role).
    table
        .as_writer(&format!(
            "INSERT INTO jit_audit.events (run, writer, seq, hash, line) \
             VALUES ('{run}', '{}', 2, 'x', 'not a line')",
            sink.writer()
        ))
        .unwrap();
    sink.append(&[reaped(&run, 3)]).unwrap();
    let contents = postgres::read_run(&table.writer_url(), &run).unwrap();
    assert_eq!(contents.events.len(), 2, "both appends landed");
    let findings: Vec<(usize, &Finding)> = contents
        .verification
        .problems
        .iter()
        .map(|p| (p.line, &p.finding))
        .collect();
    assert_eq!(
        findings,
        [(2, &Finding::Unsealed), (3, &Finding::ChainBroken)],
        "{findings:?}"
    );
}

#[test]
fn a_row_another_signer_adds_to_a_writers_chain_is_reported() {
    let table = AuditTable::create();
    let run = run_id();
    let target = std::env::temp_dir();
    let writer = PgSink::from_env(&table.writer_url(), &run, &target).unwrap();
    let forger = PgSink::from_env(&table.writer_url(), &run, &target).unwrap();
    writer.append(&[reaped(&run, 1)]).unwrap();
    forger.append(&[reaped(&run, 2)]).unwrap();
    // The forger's first row (its own key), copied to the end of the writer's chain.
    table
        .as_writer(&format!(
            "INSERT INTO jit_audit.events (run, writer, seq, hash, line) \
             SELECT run, '{}', 3, hash, line FROM jit_audit.events \
             WHERE run = '{run}' AND writer = '{}' AND seq = 1",
            writer.writer(),
            forger.writer()
        ))
        .unwrap();
    let contents = postgres::read_run(&table.writer_url(), &run).unwrap();
    let foreign: Vec<&str> = contents
        .verification
        .problems
        .iter()
        .filter_map(|p| match &p.finding {
            Finding::ForeignRow { writer, .. } => Some(writer.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(foreign, [writer.writer()], "{:?}", contents.verification);
}

#[test]
fn a_sink_connects_before_its_first_append() {
    let table = AuditTable::create();
    let run = run_id();
    assert_eq!(table.writer_sessions(), 0);
    let sink = PgSink::plain(&table.writer_url(), &run).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while table.writer_sessions() == 0 {
        assert!(
            Instant::now() < deadline,
            "no session of the writer within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sink.append(&[reaped(&run, 1)]).unwrap();
    assert_eq!(
        table.writer_sessions(),
        1,
        "the append used the connection made ahead"
    );
}
