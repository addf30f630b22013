//! The run report built from a small audit log written with `AuditLog`: a clean lease, a
//! leak, an expiry, a denied approval, a failed grant, a reap, denial assertions and
//! privileges beyond scope; and the files `write` produces.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jit_test::audit::ProblemKind;
use jit_test::audit::{AuditLog, Event, EventKind};
use jit_test::report::{self, Flag, Health, LeaseStatus, Notice, RunReport};

/// 2025-01-01T10:00:00Z, the time every test log starts at.
fn base() -> SystemTime {
    humantime::parse_rfc3339("2025-01-01T10:00:00Z").unwrap()
}

/// Writes events with chosen times, as the broker would.
struct Writer {
    log: AuditLog,
    run: &'static str,
}

impl Writer {
    fn new(path: &Path, run: &'static str) -> Writer {
        Writer {
            log: AuditLog::new(path),
            run,
        }
    }

    fn event(&self, at_ms: u64, kind: EventKind, test: &str, lease: &str) -> Event {
        let e = Event::new(self.run, "token", kind)
            .at(base() + Duration::from_millis(at_ms))
            .with_test(test);
        if lease.is_empty() {
            e
        } else {
            e.with_lease(lease).with_principal(&format!("jit_{lease}"))
        }
    }

    fn write(&self, at_ms: u64, kind: EventKind, test: &str, lease: &str) {
        self.log
            .append(&[self.event(at_ms, kind, test, lease)])
            .unwrap();
    }

    /// requested + approved + granted at `at_ms`.
    fn grant(&self, at_ms: u64, test: &str, lease: &str, permissions: &[&str], ttl: &str) {
        self.grant_for(at_ms, test, lease, permissions, ttl, None);
    }

    /// [`Writer::grant`], with the test's reason.
    fn grant_for(
        &self,
        at_ms: u64,
        test: &str,
        lease: &str,
        permissions: &[&str],
        ttl: &str,
        reason: Option<&str>,
    ) {
        let permissions: Vec<String> = permissions.iter().map(|p| (*p).to_owned()).collect();
        let asked = EventKind::Requested {
            permissions: permissions.clone(),
            ttl_ms: humantime::parse_duration(ttl).unwrap().as_millis() as u64,
            reason: reason.map(str::to_owned),
        };
        let mut requested = self.event(at_ms, asked, test, lease);
        requested.principal = None;
        let approver = "max-ttl".to_owned();
        let mut approved = self.event(at_ms, EventKind::Approved { approver }, test, lease);
        approved.principal = None;
        let granted = EventKind::Granted {
            permissions,
            expires_at: 1_735_725_630,
        };
        let granted = self.event(at_ms, granted, test, lease);
        self.log.append(&[requested, approved, granted]).unwrap();
    }

    /// revoked at `at_ms` and proven dead right after.
    fn release(&self, at_ms: u64, test: &str, lease: &str) {
        self.write(at_ms, EventKind::Revoked, test, lease);
        let refusal = "401 Unauthorized".to_owned();
        self.write(at_ms + 5, EventKind::ProvenDead { refusal }, test, lease);
    }

    fn refuse(&self, at_ms: u64, refused: EventKind, test: &str, lease: &str) {
        let asked = EventKind::Requested {
            permissions: vec!["token:admin:everything".into()],
            ttl_ms: 30_000,
            reason: None,
        };
        let mut requested = self.event(at_ms, asked, test, lease);
        requested.principal = None;
        let mut refused = self.event(at_ms, refused, test, lease);
        refused.principal = None;
        self.log.append(&[requested, refused]).unwrap();
    }
}

fn temp_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    (dir, path)
}

/// Two tests, three leases, all revoked and proven dead; one denial asserted.
fn clean_log(path: &Path) -> usize {
    let w = Writer::new(path, "run-clean");
    w.grant(
        0,
        "orders::places_order",
        "a1",
        &["token:read:orders", "token:write:orders"],
        "30s",
    );
    w.write(
        100,
        EventKind::DenialAsserted {
            expression: "client.delete(\"orders\")".into(),
        },
        "orders::places_order",
        "a1",
    );
    w.release(250, "orders::places_order", "a1");
    w.grant_for(
        300,
        "orders::lists",
        "b1",
        &["token:read:orders"],
        "10s",
        Some("lists them"),
    );
    w.grant(310, "orders::lists", "b2", &["token:read:customers"], "10s");
    w.release(400, "orders::lists", "b1");
    w.release(1_500, "orders::lists", "b2");
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn a_clean_run_reports_its_tests_and_one_summary_line() {
    let (dir, path) = temp_log();
    let lines = clean_log(&path);
    let mut report = report::build(&path, None).unwrap();

    assert!(report.problems().is_empty(), "{:?}", report.problems());
    assert_eq!(report.runs, ["run-clean"]);
    assert_eq!(report.events, lines);
    assert_eq!((report.chain.lines, report.chain.leases), (lines, 3));
    assert!(report.chain.intact);
    assert_eq!(
        report.started_at.as_deref(),
        Some("2025-01-01T10:00:00.000Z")
    );
    assert_eq!(report.ended_at.as_deref(), Some("2025-01-01T10:00:01.505Z"));

    let names: Vec<&str> = report.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders::places_order", "orders::lists"]);
    let order = &report.tests[0];
    assert_eq!(order.schemes, ["token"]);
    assert_eq!(
        order.permissions,
        ["token:read:orders", "token:write:orders"]
    );
    assert_eq!(order.ttl.as_deref(), Some("30s"));
    assert_eq!(order.denials_asserted, 1);
    assert_eq!(order.assertions[0].expression, "client.delete(\"orders\")");
    assert_eq!(order.health, Health::Ok);
    assert!(order.flags.is_empty());
    let lease = &order.leases[0];
    assert_eq!(lease.principal, "jit_a1");
    assert_eq!(lease.held_ms, Some(250));
    assert_eq!(lease.status, LeaseStatus::Clean);
    assert_eq!(lease.proof.as_deref(), Some("401 Unauthorized"));
    assert_eq!(lease.expires_at, Some(1_735_725_630));

    assert_eq!(order.reason, None);
    let lists = &report.tests[1];
    assert_eq!(lists.reason.as_deref(), Some("lists them"));
    assert_eq!(lists.ttl.as_deref(), Some("10s"));
    assert_eq!(
        lists.permissions,
        ["token:read:orders", "token:read:customers"]
    );
    let held: Vec<Option<u64>> = lists.leases.iter().map(|l| l.held_ms).collect();
    assert_eq!(held, [Some(100), Some(1_190)]);
    assert_eq!(report.denials_asserted(), 1);

    assert_eq!(
        report.summary_line(),
        format!(
            "jit-test: 2 tests, 3 leases granted, revoked and proven dead; \
             audit chain verified ({lines} lines)"
        )
    );
    report.html = Some(dir.path().join("out").join("report.html"));
    let line = report.summary_line();
    assert!(
        line.ends_with(&format!(
            " → {}",
            dir.path().join("out/report.html").display()
        )),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

/// One run with everything that can go wrong, and a second run that reaps a leftover.
fn troubled_log(path: &Path) {
    let w = Writer::new(path, "run-1");
    w.grant(0, "t::clean", "c1", &["token:read:a"], "30s");
    w.release(50, "t::clean", "c1");

    w.grant(10, "t::leaky", "l1", &["token:read:a"], "30s");
    w.write(60, EventKind::Revoked, "t::leaky", "l1");
    w.write(70, EventKind::LeakDetected, "t::leaky", "l1");

    w.grant(20, "t::slow", "s1", &["token:read:a"], "1s");
    w.write(1_020, EventKind::Expired, "t::slow", "s1");
    w.release(1_030, "t::slow", "s1");

    let denied = EventKind::Denied {
        approver: "policy".into(),
        reason: "token:admin:everything is not allowed".into(),
    };
    w.refuse(30, denied, "t::greedy", "g1");
    let error = "connection refused".to_owned();
    w.refuse(40, EventKind::GrantFailed { error }, "t::unlucky", "u1");

    w.grant(50, "t::wide", "w1", &["token:read:a"], "30s");
    w.write(
        55,
        EventKind::BeyondScope {
            privileges: vec!["token:write:a".into()],
        },
        "t::wide",
        "w1",
    );
    w.write(
        56,
        EventKind::DenialAsserted {
            expression: "api.put(a)".into(),
        },
        "t::wide",
        "w1",
    );
    w.write(
        57,
        EventKind::DenialAsserted {
            expression: "api.delete(a)".into(),
        },
        "t::wide",
        "w1",
    );
    w.release(90, "t::wide", "w1");

    w.grant(60, "t::stuck", "x1", &["token:read:a"], "30s");
    w.write(
        100,
        EventKind::RevokeFailed {
            error: "server unreachable".into(),
        },
        "t::stuck",
        "x1",
    );

    w.grant(70, "t::unproven", "p1", &["token:read:a"], "30s");
    w.write(120, EventKind::Revoked, "t::unproven", "p1");

    w.grant(80, "t::crashed", "k1", &["token:read:a"], "30s");

    // The next run's reaper removes the crashed test's principal.
    let next = Writer::new(path, "run-2");
    let reaped = next
        .event(90_000, EventKind::Reaped, "", "")
        .with_principal("jit_k1");
    next.log.append(&[reaped]).unwrap();
    next.grant(90_100, "t::clean", "c2", &["token:read:a"], "30s");
    next.release(90_200, "t::clean", "c2");
}

fn test<'a>(report: &'a RunReport, name: &str) -> &'a jit_test::report::TestReport {
    report
        .tests
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no test {name}"))
}

#[test]
fn every_kind_of_trouble_is_reported_once() {
    let (_dir, path) = temp_log();
    troubled_log(&path);
    let report = report::build(&path, Some("run-1")).unwrap();
    assert_eq!(report.runs, ["run-1"]);
    assert_eq!(report.tests.len(), 9);

    let leaky = test(&report, "t::leaky");
    assert!(leaky.leases[0].leaked);
    assert_eq!(leaky.leases[0].status, LeaseStatus::Leaked);
    assert_eq!(leaky.flags, [Flag::Problem(ProblemKind::Leak)]);
    assert_eq!(leaky.health, Health::Problem);

    let slow = test(&report, "t::slow");
    assert_eq!(slow.leases[0].status, LeaseStatus::Expired);
    assert_eq!(
        slow.leases[0].expired_at.as_deref(),
        Some("2025-01-01T10:00:01.020Z")
    );
    assert_eq!(slow.leases[0].held_ms, Some(1_010));
    assert_eq!(slow.ttl.as_deref(), Some("1s"));
    assert_eq!(
        (slow.health, slow.flags.as_slice()),
        (Health::Notice, &[Flag::Notice(Notice::Expired)][..])
    );

    let greedy = test(&report, "t::greedy");
    assert!(greedy.leases.is_empty());
    assert_eq!(greedy.approvals_denied.len(), 1);
    assert_eq!(
        greedy.approvals_denied[0].approver.as_deref(),
        Some("policy")
    );
    assert_eq!(
        greedy.approvals_denied[0].reason,
        "token:admin:everything is not allowed"
    );
    assert_eq!(
        greedy.approvals_denied[0].permissions,
        ["token:admin:everything"]
    );
    assert_eq!(
        test(&report, "t::unlucky").grant_failures[0].reason,
        "connection refused"
    );

    let wide = test(&report, "t::wide");
    assert_eq!(wide.denials_asserted, 2);
    assert_eq!(wide.beyond_scope[0].privileges, ["token:write:a"]);
    assert_eq!(wide.beyond_scope[0].principal, "jit_w1");
    assert_eq!(wide.leases[0].status, LeaseStatus::Clean);

    assert_eq!(
        test(&report, "t::stuck").leases[0].status,
        LeaseStatus::RevokeFailed
    );
    assert_eq!(
        test(&report, "t::unproven").leases[0].status,
        LeaseStatus::Unproven
    );
    // Reaped by the next run: not revoked by its test, but not left behind either.
    let crashed = test(&report, "t::crashed");
    assert_eq!(crashed.leases[0].status, LeaseStatus::Reaped);
    assert!(crashed.leases[0].reaped);
    assert_eq!(crashed.health, Health::Notice);
    // The reap itself belongs to run-2.
    assert!(report.reaps.is_empty());

    let problems = report.problems();
    let expected = [
        "leak: token principal jit_l1 of test t::leaky still worked after revocation",
        "revoke failed: token principal jit_x1 of test t::stuck: server unreachable; never revoked or reaped",
        "unproven: token principal jit_p1 of test t::unproven was revoked but never proven dead",
        "beyond scope: token principal jit_w1 of test t::wide holds privileges beyond its scope: token:write:a",
        "grant failed: test t::unlucky, token:admin:everything (token): connection refused",
        "approval denied: test t::greedy asked for token:admin:everything (token): \
         by policy: token:admin:everything is not allowed",
    ];
    assert_eq!(problems, expected, "{problems:#?}");
    // verify's lifecycle findings are not repeated as chain problems.
    assert!(report.chain.intact);
    assert!(
        report.chain.problems.len() >= 3,
        "{:?}",
        report.chain.problems
    );

    let line = report.summary_line();
    assert!(
        line.starts_with(
            "jit-test: 9 tests, 7 leases granted; 6 PROBLEMS: leak: token principal jit_l1"
        ),
        "{line}"
    );
    assert!(line.ends_with("(and 5 more)"), "{line}");
}

#[test]
fn all_runs_and_the_reaps_they_did() {
    let (_dir, path) = temp_log();
    troubled_log(&path);
    let report = report::build(&path, None).unwrap();
    assert_eq!(report.runs, ["run-1", "run-2"]);
    assert_eq!(report.tests.len(), 10, "t::clean ran in both runs");
    assert_eq!(report.reaps.len(), 1);
    assert_eq!(report.reaps[0].principal, "jit_k1");
    assert_eq!(report.reaps[0].run, "run-2");
    assert!(report.problems()[0].contains("of test t::leaky (run run-1)"));

    let second = report::build(&path, Some("run-2")).unwrap();
    assert_eq!(second.tests.len(), 1);
    assert_eq!(second.reaps.len(), 1);
    assert_eq!(
        second.summary_line(),
        format!(
            "jit-test: 1 test, 1 lease granted, revoked and proven dead; audit chain verified ({} lines)",
            second.chain.lines
        )
    );
    assert!(
        report::build(&path, Some("no-such-run"))
            .unwrap()
            .tests
            .is_empty()
    );
}

#[test]
fn an_expiry_and_a_reap_are_noted_in_an_otherwise_clean_summary() {
    let (_dir, path) = temp_log();
    let w = Writer::new(&path, "run-1");
    w.grant(0, "t::slow", "s1", &["token:read:a"], "1s");
    w.write(1_000, EventKind::Expired, "t::slow", "s1");
    w.release(1_001, "t::slow", "s1");
    w.grant(0, "t::crashed", "k1", &["token:read:a"], "30s");
    let reaped = w
        .event(5_000, EventKind::Reaped, "", "")
        .with_principal("jit_k1");
    w.log.append(&[reaped]).unwrap();
    let report = report::build(&path, None).unwrap();
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    assert_eq!(
        report.summary_line(),
        "jit-test: 2 tests, 1 lease granted, revoked and proven dead, 1 reaped after a crash \
         (1 expired during its test); audit chain verified (10 lines)"
    );
}

#[test]
fn a_damaged_chain_is_a_problem() {
    let (_dir, path) = temp_log();
    clean_log(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("jit_b2", "jit_zz", 1)).unwrap();
    let report = report::build(&path, None).unwrap();
    assert!(!report.chain.intact);
    let problems = report.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("audit chain: line ") && p.contains("hash does not match")),
        "{problems:?}"
    );
    assert!(report.summary_line().contains("PROBLEM"));
}

#[test]
fn a_missing_log_is_an_error_naming_it() {
    let err = report::build(Path::new("/nonexistent/audit.jsonl"), None).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/audit.jsonl"),
        "{err}"
    );
}

#[test]
fn write_produces_json_markdown_and_html_with_everything_escaped() {
    let (dir, path) = temp_log();
    troubled_log(&path);
    let evil = "t::evil</script><img src=x onerror=alert(1)>|`*_";
    let w = Writer::new(&path, "run-1");
    w.grant(200, evil, "e1", &["token:read:a"], "30s");
    w.release(300, evil, "e1");
    let report = report::build(&path, Some("run-1")).unwrap();
    let out = dir.path().join("out");
    report::write(&report, &out).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["tests"].as_array().unwrap().len(), 10);
    assert_eq!(json["problems"].as_array().unwrap().len(), 6);
    assert_eq!(json["problems"][0]["kind"], "leak");
    assert_eq!(json["summary"], report.summary_line());
    assert_eq!(json["chain"]["intact"], true);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| Test | Scheme | Permissions | TTL | Held | Denials asserted | Status |")
    );
    assert!(
        md.contains("| `t::clean` | token | `token:read:a` | 30s | 50 ms | 0 | ok |"),
        "{md}"
    );
    assert!(
        md.contains("| `t::wide` | token | `token:read:a` | 30s | 40 ms | 2 | beyond scope |"),
        "{md}"
    );
    assert!(
        md.contains("- leak: token principal jit_l1 of test t::leaky"),
        "{md}"
    );
    assert!(
        md.contains("``t::evil</script><img src=x onerror=alert(1)>\\|`*_``"),
        "{md}"
    );
    assert!(!md.contains("<img src=x onerror=alert(1)>|"), "{md}");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let start = html
        .find(r#"<script type="application/json" id="jit-report">"#)
        .unwrap();
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..];
    let embedded = &body[..body.find("</script>").unwrap()];
    let value: serde_json::Value = serde_json::from_str(embedded).unwrap();
    assert_eq!(value["tests"][9]["name"], evil);
    assert!(!embedded.contains('<'));
    assert!(!html.contains("<img"));
    assert!(
        !html.contains("REPORT_JSON") && !html.contains("SUMMARY_TEXT"),
        "a slot was left unfilled"
    );
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[test]
fn hosts_shards_and_the_minimizers_verdicts_of_a_split_run() {
    let (_dir, path) = temp_log();
    let log = AuditLog::new(&path);
    let on = |host: &str, shard: &str, test: &str, kind: EventKind| {
        let mut event = Event::new("run-split", "token", kind).with_test(test);
        event.host = host.to_owned();
        event.shard = Some(shard.to_owned());
        event
    };
    let verdict = jit_test::minimize::Verdict::Findings(vec![
        jit_test::minimize::Finding {
            permission: "token:read:orders".into(),
            needed: true,
            error: Some("HTTP status 403".into()),
        },
        jit_test::minimize::Finding {
            permission: "token:write:orders".into(),
            needed: false,
            error: None,
        },
    ]);
    log.append(&[
        on(
            "host-a",
            "1/3",
            "a::one",
            EventKind::DenialAsserted {
                expression: "x".into(),
            },
        ),
        on("host-a", "1/3", "a::one", EventKind::minimized(&verdict)),
        on(
            "host-b",
            "3/3",
            "b::two",
            EventKind::DenialAsserted {
                expression: "y".into(),
            },
        ),
    ])
    .unwrap();
    let report = report::build(&path, Some("run-split")).unwrap();
    let hosts: Vec<(&str, usize, &[String])> = report
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.tests, h.shards.as_slice()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("host-a", 1, &["1/3".to_owned()][..]),
            ("host-b", 1, &["3/3".to_owned()][..])
        ]
    );
    // Shard 2 of 3 is not in this log: stale entries cannot be judged from it.
    assert_eq!(
        report.missing_shards(),
        Some((vec!["1/3".to_owned(), "3/3".to_owned()], 3))
    );
    let one = test(&report, "a::one");
    assert_eq!(one.host, "host-a");
    let minimizer = one.minimizer.as_ref().unwrap();
    assert_eq!(minimizer.unneeded, ["token:write:orders"]);
    assert_eq!(minimizer.needed, ["token:read:orders"]);
    assert!(test(&report, "b::two").minimizer.is_none());
    let junit = report.to_junit();
    assert!(junit.contains("<property name=\"unneeded\" value=\"token:write:orders\"/>"));
    assert!(junit.contains("<property name=\"host\" value=\"host-b\"/>"));
    assert!(junit.contains("<property name=\"shard\" value=\"3/3\"/>"));
    assert!(report.to_markdown().contains("## Hosts"));
}
