//! Policy, baseline and the least-privilege finder, end to end: each case runs the
//! `fixture` binary as a test process of its own, in a scratch workspace with its own
//! `jit-test.toml`, baseline, audit log and target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jit_test::approval::Entries;
use jit_test::minimize::Verdict;

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jit-test.toml"), config).unwrap();
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the fixture test `name` with `scope`; `env` adds variables (`CI`, ...).
    fn run(&self, name: &str, scope: &str, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fixture"));
        command
            .args([name, scope])
            .env("JIT_TEST_CONFIG", self.path("jit-test.toml"))
            .env("JIT_TEST_AUDIT_LOG", self.path("audit.jsonl"))
            .env("CARGO_TARGET_DIR", self.path("target"))
            .env("JIT_TEST_SUMMARY", "0")
            .env_remove("CI")
            .env_remove("JIT_TEST_BLESS")
            .env_remove("JIT_TEST_MINIMIZE");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    fn baseline(&self, name: &str) -> Entries {
        Entries::read(&self.path(name)).unwrap()
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.path("audit.jsonl")).unwrap_or_default()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const READ: &str = "token:read:orders";
const READ_WRITE: &str = "token:read:orders, token:write:orders";

fn blessed(path: &Path, test: &str, permissions: &[&str]) {
    let list: Vec<String> = permissions.iter().map(|p| format!("{p:?}")).collect();
    let text = format!("[tests]\n{test:?} = [{}]\n", list.join(", "));
    std::fs::write(path, text).unwrap();
}

#[test]
fn in_ci_a_permission_outside_the_baseline_fails_before_anything_is_granted() {
    let ws = Workspace::new("");
    blessed(&ws.path("jit-baseline.toml"), "fixture::reads", &[READ]);

    let within = ws.run("fixture::reads", READ, &[("CI", "true")]);
    assert!(within.status.success(), "{}", stderr(&within));

    let beyond = ws.run("fixture::reads", READ_WRITE, &[("CI", "true")]);
    let message = stderr(&beyond);
    assert!(
        !beyond.status.success(),
        "a request beyond the baseline passed"
    );
    assert!(message.contains("denied by baseline"), "{message}");
    assert!(message.contains("+ token:write:orders"), "{message}");
    assert!(!message.contains("+ token:read:orders"), "{message}");
    assert!(message.contains("JIT_TEST_BLESS=1 cargo test"), "{message}");
    let audit = ws.audit();
    assert_eq!(audit.matches("\"event\":\"granted\"").count(), 1, "{audit}");
    assert_eq!(audit.matches("\"event\":\"denied\"").count(), 1, "{audit}");
}

#[test]
fn locally_new_permissions_are_recorded_as_pending_by_many_processes_at_once() {
    let ws = Workspace::new("");
    blessed(&ws.path("jit-baseline.toml"), "fixture::reads", &[READ]);
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_fixture"));
            command
                .args([format!("fixture::writer_{i}").as_str(), READ_WRITE])
                .env("JIT_TEST_CONFIG", ws.path("jit-test.toml"))
                .env("JIT_TEST_AUDIT_LOG", ws.path("audit.jsonl"))
                .env("JIT_TEST_SUMMARY", "0")
                .env_remove("CI")
                .env_remove("JIT_TEST_BLESS")
                .stderr(std::process::Stdio::null());
            command.spawn().unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let pending = ws.baseline("jit-baseline.pending.toml");
    assert_eq!(pending.tests.len(), 8, "{pending:?}");
    assert!(
        pending
            .tests
            .values()
            .all(|p| p == &["token:read:orders", "token:write:orders"])
    );
    // The committed baseline is untouched until accepted.
    assert_eq!(ws.baseline("jit-baseline.toml").tests.len(), 1);
}

#[test]
fn blessing_accepts_and_shrinks_the_baseline() {
    let ws = Workspace::new("");
    blessed(&ws.path("jit-baseline.toml"), "fixture::reads", &[READ]);
    let bless = ws.run("fixture::reads", READ_WRITE, &[("JIT_TEST_BLESS", "1")]);
    assert!(bless.status.success(), "{}", stderr(&bless));
    assert_eq!(
        ws.baseline("jit-baseline.toml").tests["fixture::reads"],
        ["token:read:orders", "token:write:orders"]
    );
    let ci = ws.run("fixture::reads", READ_WRITE, &[("CI", "true")]);
    assert!(ci.status.success(), "{}", stderr(&ci));
    let shrink = ws.run("fixture::reads", READ, &[("JIT_TEST_BLESS", "1")]);
    assert!(shrink.status.success(), "{}", stderr(&shrink));
    assert_eq!(
        ws.baseline("jit-baseline.toml").tests["fixture::reads"],
        ["token:read:orders"]
    );
}

#[test]
fn a_policy_rule_denies_naming_its_file_and_line() {
    let ws = Workspace::new(
        "ttl = \"20s\"\n\n[[policy.rules]]\ntests = \"fixture::*\"\nforbid = [\"token:write:*\"]\n",
    );
    let denied = ws.run("fixture::writes", READ_WRITE, &[]);
    let message = stderr(&denied);
    assert!(!denied.status.success());
    let rule = format!("{}:3", ws.path("jit-test.toml").display());
    assert!(
        message.contains("token:write:orders is forbidden"),
        "{message}"
    );
    assert!(message.contains(&rule), "{message}");
    assert!(!ws.audit().contains("\"event\":\"granted\""));

    let allowed = ws.run("fixture::reads", READ, &[]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}

#[test]
fn a_bad_policy_file_fails_with_the_key_named() {
    let ws = Workspace::new("[policy]\nmax_tll = \"1m\"\n");
    let output = ws.run("fixture::reads", READ, &[]);
    let message = stderr(&output);
    assert!(!output.status.success());
    assert!(
        message.contains("max_tll") && message.contains("jit-test.toml"),
        "{message}"
    );
}

#[test]
fn the_minimizer_flags_the_extra_permission_and_keeps_the_needed_one() {
    let ws = Workspace::new("");
    let output = ws.run(
        "fixture::over_scoped",
        READ_WRITE,
        &[("JIT_TEST_MINIMIZE", "1")],
    );
    let table = stderr(&output);
    assert!(output.status.success(), "{table}");
    assert!(table.contains("UNNEEDED  token:write:orders"), "{table}");
    assert!(table.contains("needed    token:read:orders"), "{table}");
    let text = std::fs::read_to_string(ws.path("target/jit-test/minimize.json")).unwrap();
    let verdicts: std::collections::BTreeMap<String, Verdict> =
        serde_json::from_str(&text).unwrap();
    assert_eq!(
        verdicts["fixture::over_scoped"].unneeded(),
        ["token:write:orders"]
    );
    // 1 run + 1 control + 2 trials, each granted, revoked and proven dead.
    assert_eq!(ws.audit().matches("\"event\":\"proven_dead\"").count(), 4);
}
