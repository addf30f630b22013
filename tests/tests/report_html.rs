//! The HTML run report in a real headless Chromium: it renders without a single error or
//! console message, draws a table row and a timeline row for every test and a bar for
//! every lease, and shows hostile test names as text.
//!
//! Needs Debian's `chromium` (`.ci/setup-chromium` installs it). Without it this test
//! fails, saying how to install it: it never skips.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_test::audit::{AuditLog, Event, EventKind};
use jit_test::report::{self, RunReport};

/// Longest a page load may take before the browser is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// A test name that breaks out of any markup it is pasted into unescaped.
const HOSTILE: &str = "t::hostile</script><img src=x onerror=\"document.body.dataset.pwned=1\">";

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed, and the HTML report test needs a headless browser. \
                 Install Debian's package with `apt-get install -y chromium` \
                 (or run `.ci/setup-chromium`), then run this test again"
            )
        })
}

/// An event at `ms` milliseconds after 10:00:00 (under a minute).
fn event(ms: u64, kind: EventKind, test: &str, scheme: &str, lease: &str) -> Event {
    let mut e = Event::new("html-run", scheme, kind).with_test(test);
    e.ts = format!("2025-01-01T10:00:{:02}.{:03}Z", ms / 1000, ms % 1000);
    if lease.is_empty() {
        e
    } else {
        e.with_lease(lease).with_principal(&format!("jit_{lease}"))
    }
}

fn requested(permission: String) -> EventKind {
    EventKind::Requested {
        permissions: vec![permission],
        ttl_ms: 30_000,
        reason: None,
    }
}

/// A lease from request to proof; `revoke_at: None` leaves it open.
fn lease(
    log: &AuditLog,
    test: &str,
    scheme: &str,
    id: &str,
    grant_at: u64,
    revoke_at: Option<u64>,
) {
    let permission = format!("{scheme}:select:public.orders");
    let granted = EventKind::Granted {
        permissions: vec![permission.clone()],
        expires_at: 1_735_725_630,
    };
    let approved = EventKind::Approved {
        approver: "max-ttl".into(),
    };
    let mut events = vec![
        event(grant_at, requested(permission), test, scheme, id),
        event(grant_at + 1, approved, test, scheme, id),
        event(grant_at + 3, granted, test, scheme, id),
    ];
    if let Some(at) = revoke_at {
        events.push(event(at, EventKind::Revoked, test, scheme, id));
        events.push(event(at + 4, refused(), test, scheme, id));
    }
    log.append(&events).unwrap();
}

fn refused() -> EventKind {
    EventKind::ProvenDead {
        refusal: "password authentication failed (28P01)".into(),
    }
}

/// Seven tests: clean ones over two schemes, a leak, an expiry, a refusal, a crash that
/// was reaped, denial assertions, and a hostile name.
fn write_log(path: &Path) {
    let log = AuditLog::new(path);
    lease(&log, "orders::places_order", "pg", "p1", 0, Some(420));
    lease(&log, "orders::places_order", "token", "t1", 10, Some(425));
    let expression = "db.execute(\"DELETE FROM orders\", &[]).await".to_owned();
    let asserted = EventKind::DenialAsserted { expression };
    let asserted = event(200, asserted, "orders::places_order", "pg", "p1");
    log.append(&[asserted]).unwrap();
    lease(&log, "orders::lists_orders", "pg", "p2", 150, Some(900));
    lease(&log, "orders::leaky", "token", "t2", 300, Some(700));
    log.append(&[event(
        705,
        EventKind::LeakDetected,
        "orders::leaky",
        "token",
        "t2",
    )])
    .unwrap();
    lease(&log, "orders::slow", "pg", "p3", 500, None);
    log.append(&[event(2_500, EventKind::Expired, "orders::slow", "pg", "p3")])
        .unwrap();
    log.append(&[event(2_510, EventKind::Revoked, "orders::slow", "pg", "p3")])
        .unwrap();
    log.append(&[event(2_515, refused(), "orders::slow", "pg", "p3")])
        .unwrap();
    let asked = requested("pg:drop:public.orders".into());
    let requested = event(600, asked, "orders::greedy", "pg", "p4");
    let denied = EventKind::Denied {
        approver: "policy".into(),
        reason: "pg:drop is not allowed for orders::*".into(),
    };
    let denied = event(601, denied, "orders::greedy", "pg", "p4");
    log.append(&[requested, denied]).unwrap();
    lease(&log, "orders::crashed", "pg", "p5", 800, None);
    let reaped = event(3_000, EventKind::Reaped, "", "pg", "").with_principal("jit_p5");
    log.append(&[reaped]).unwrap();
    lease(&log, HOSTILE, "token", "t3", 1_000, Some(1_300));
}

struct Page {
    dom: String,
    console: Vec<String>,
    took: Duration,
}

/// Loads `html` in headless Chromium and returns the DOM after its scripts ran, and the
/// console messages the browser logged.
fn load(html: &Path, scratch: &Path) -> Page {
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let stdout_path = scratch.join("dom.html");
    let stderr_path = scratch.join("chromium.log");
    let started = Instant::now();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .process_group(0)
        .spawn()
        .expect("cannot start chromium");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            // The browser and its helpers share the process group we gave it.
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.wait();
            panic!(
                "chromium did not finish loading {} within {BROWSER_TIMEOUT:?}; its log:\n{}",
                html.display(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    let dom = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(
        status.success() && !dom.is_empty(),
        "chromium failed ({status}) on {}; its log:\n{log}",
        html.display()
    );
    let console = log
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Page { dom, console, took }
}

fn render(report: &RunReport, dir: &Path) -> Page {
    let out = dir.join("report");
    report::write(report, &out).unwrap();
    let page = load(&out.join("report.html"), dir);
    eprintln!(
        "chromium rendered {} in {:?}",
        out.join("report.html").display(),
        page.took
    );
    assert!(
        page.console.is_empty(),
        "the page wrote to the console:\n{}",
        page.console.join("\n")
    );
    assert!(
        !page.dom.contains("data-errors=\""),
        "the page recorded errors:\n{}",
        page.dom
    );
    assert!(
        page.dom.contains(r#"data-rendered="true""#),
        "the page did not finish rendering:\n{}",
        page.dom
    );
    page
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let report = report::build(&log, None).unwrap();
    assert_eq!(report.tests.len(), 7);
    let page = render(&report, dir.path());
    let dom = &page.dom;

    assert_eq!(
        count(dom, r#"class="test-row "#),
        report.tests.len(),
        "{dom}"
    );
    assert_eq!(count(dom, r#"class="tl-row "#), report.tests.len(), "{dom}");
    for name in [
        "orders::places_order",
        "orders::lists_orders",
        "orders::leaky",
        "orders::greedy",
    ] {
        assert!(
            dom.contains(&format!(r#"data-test="{name}""#)),
            "no row for {name}:\n{dom}"
        );
    }
    let granted = report.leases().filter(|l| l.granted_at.is_some()).count();
    assert_eq!(granted, 7);
    assert_eq!(count(dom, r#"class="lease-bar "#), granted, "{dom}");
    assert_eq!(count(dom, r#"class="lease-bar status-leaked"#), 1);
    assert_eq!(count(dom, r#"class="lease-bar status-expired"#), 1);
    assert_eq!(count(dom, r#"class="lease-bar status-reaped"#), 1);
    assert_eq!(count(dom, r#"class="tl-marker denial""#), 1);
    assert_eq!(count(dom, r#"class="tl-marker expiry""#), 1);

    let problems = report.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        count(dom, r#"<li class="problem""#),
        problems.len(),
        "{dom}"
    );
    assert!(dom.contains(r#"data-status="problems""#));
    assert!(dom.contains("by policy: pg:drop is not allowed for orders::*"));

    // The hostile name is shown as text, never parsed as markup.
    assert!(dom.contains("t::hostile&lt;/script&gt;&lt;img"), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("data-pwned"), "{dom}");
}

#[test]
fn an_empty_log_renders_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    File::create(&log).unwrap();
    let report = report::build(&log, None).unwrap();
    let page = render(&report, dir.path());
    assert!(page.dom.contains("No tests in this log."), "{}", page.dom);
    assert!(
        page.dom.contains("No lease was granted in this run."),
        "{}",
        page.dom
    );
    assert!(page.dom.contains(r#"data-status="ok""#), "{}", page.dom);
}

#[test]
fn a_run_on_two_hosts_shows_each_tests_host_and_groups_the_timeline_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::new(&path);
    // Host b's test starts first; the timeline still lists host a's first.
    for (test, id, at) in [
        ("b::first", "b1", 0),
        ("a::second", "a1", 100),
        ("b::third", "b2", 200),
    ] {
        lease(&log, test, "pg", id, at, Some(at + 50));
    }
    // The same events as the hosts would have written them: each names its host and shard.
    let events: Vec<Event> = jit_test::audit::read(&path)
        .unwrap()
        .events
        .into_iter()
        .map(|mut e| {
            e.host = if e.test.starts_with("a::") {
                "host-a"
            } else {
                "host-b"
            }
            .to_owned();
            e.shard = Some(
                if e.test.starts_with("a::") {
                    "1/2"
                } else {
                    "2/2"
                }
                .to_owned(),
            );
            e
        })
        .collect();
    let hosted = dir.path().join("hosted.jsonl");
    AuditLog::new(&hosted).append(&events).unwrap();
    let report = report::build(&hosted, None).unwrap();
    assert_eq!(report.hosts.len(), 2);
    let page = render(&report, dir.path());
    let dom = &page.dom;
    let timeline_row = |name: &str| {
        dom.find(&format!(r#"class="tl-row health-ok" data-test="{name}""#))
            .unwrap_or_else(|| panic!("no timeline row for {name}:\n{dom}"))
    };
    assert!(
        timeline_row("a::second") < timeline_row("b::first"),
        "{dom}"
    );
    assert!(timeline_row("b::first") < timeline_row("b::third"), "{dom}");
    assert!(dom.contains("host host-a, shard 1/2"), "{dom}");
    assert!(dom.contains("host-b: b::first"), "{dom}");
}
