//! What a suite costs the user: whole-process wall time of a test binary built the way a
//! new user builds it — a fresh crate outside this workspace, debug profile, no profile
//! overrides — for the same 40 tests written in different ways:
//!
//! - PostgreSQL (insert a row, read it back, assert a DELETE is refused):
//!   `#[jit_test]` with a `PgGrant`, `#[sqlx::test]` (a database per test), and
//!   `#[tokio::test]` on one superuser connection with no isolation (the floor; it
//!   refuses the DELETE through `SET LOCAL ROLE` to a role without that privilege);
//! - token: `#[jit_test]` with a `TokenGrant` against `#[tokio::test]` with the same
//!   assertion.
//!
//! The binaries are built first, then run in turn, round after round, so every variant
//! sees the same load; medians and p90 of whole-process wall time. The cost of one
//! `CREATE DATABASE` + `DROP DATABASE` on this server is measured beside them, since it
//! dominates `#[sqlx::test]`.
//!
//! The exit cost of a growing history is measured beside them: 5 token tests of that
//! binary against an empty audit log and against one of 100,000 lines (64 earlier runs),
//! with the checkpoints the runs before left, and without them (every exit then reads
//! the whole log, as before checkpoints existed).
//!
//! `cargo bench -p tests --bench user_suite -- [--rounds N]`
//! (needs the PostgreSQL of `.ci/setup-postgres`, and crates.io for sqlx the first time)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TESTS: usize = 40;
const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The table and role every PostgreSQL variant uses, created once by the admin.
const FIXTURE: &str = "SELECT pg_advisory_xact_lock(4242, 9);
     CREATE SCHEMA IF NOT EXISTS suite_bench;
     CREATE TABLE IF NOT EXISTS suite_bench.items (id serial PRIMARY KEY, sku text NOT NULL);
     DO $$ BEGIN CREATE ROLE suite_bench_limited NOLOGIN;
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
     GRANT USAGE ON SCHEMA suite_bench TO suite_bench_limited;
     GRANT SELECT, INSERT ON suite_bench.items TO suite_bench_limited;
     GRANT USAGE ON SEQUENCE suite_bench.items_id_seq TO suite_bench_limited;";

/// A variant: a crate name, its dev-dependencies and the text of test number `i`.
struct Variant {
    name: &'static str,
    deps: String,
    prelude: &'static str,
    test: fn(usize) -> String,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn jit_pg(i: usize) -> String {
    format!(
        "#[jit_test(scope = \"pg:select:suite_bench.items, pg:insert:suite_bench.items, \
         pg:usage:sequence:suite_bench.items_id_seq\")]\n\
         async fn test_{i}(pg: PgGrant) -> anyhow::Result<()> {{\n    \
         let db = pg.connect().await?;\n    \
         let sku = format!(\"{{}}-{i}\", pg.role());\n    \
         db.execute(\"INSERT INTO suite_bench.items (sku) VALUES ($1)\", &[&sku]).await?;\n    \
         let row = db.query_one(\"SELECT sku FROM suite_bench.items WHERE sku = $1\", &[&sku]).await?;\n    \
         assert_eq!(row.get::<_, String>(0), sku);\n    \
         assert_denied!(db.execute(\"DELETE FROM suite_bench.items WHERE sku = $1\", &[&sku]).await);\n    \
         Ok(())\n}}\n\n"
    )
}

fn sqlx_pg(i: usize) -> String {
    format!(
        "#[sqlx::test]\n\
         async fn test_{i}(pool: PgPool) -> anyhow::Result<()> {{\n    \
         let mut db = pool.acquire().await?;\n    \
         sqlx::raw_sql(SCHEMA).execute(&mut *db).await?;\n    \
         let sku = \"sku-{i}\";\n    \
         sqlx::query(\"INSERT INTO suite_bench.items (sku) VALUES ($1)\").bind(sku).execute(&mut *db).await?;\n    \
         let got: String = sqlx::query_scalar(\"SELECT sku FROM suite_bench.items WHERE sku = $1\").bind(sku).fetch_one(&mut *db).await?;\n    \
         assert_eq!(got, sku);\n    \
         let err = sqlx::query(\"DELETE FROM suite_bench.items WHERE sku = $1\").bind(sku).execute(&mut *db).await.unwrap_err();\n    \
         assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some(\"42501\"));\n    \
         Ok(())\n}}\n\n"
    )
}

fn plain_pg(i: usize) -> String {
    format!(
        "#[tokio::test]\n\
         async fn test_{i}() -> anyhow::Result<()> {{\n    \
         let mut db = connect().await?;\n    \
         let tx = db.transaction().await?;\n    \
         tx.batch_execute(\"SET LOCAL ROLE suite_bench_limited\").await?;\n    \
         let sku = \"sku-{i}\";\n    \
         tx.execute(\"INSERT INTO suite_bench.items (sku) VALUES ($1)\", &[&sku]).await?;\n    \
         let row = tx.query_one(\"SELECT sku FROM suite_bench.items WHERE sku = $1\", &[&sku]).await?;\n    \
         assert_eq!(row.get::<_, String>(0), sku);\n    \
         let err = tx.execute(\"DELETE FROM suite_bench.items WHERE sku = $1\", &[&sku]).await.unwrap_err();\n    \
         assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));\n    \
         Ok(())\n}}\n\n"
    )
}

fn jit_token(i: usize) -> String {
    format!(
        "#[jit_test(scope = \"token:read:orders\")]\n\
         async fn test_{i}(token: TokenGrant) {{\n    \
         assert!(token.has_scope(\"read:orders\"), \"{i}\");\n}}\n\n"
    )
}

fn plain_token(i: usize) -> String {
    format!(
        "#[tokio::test]\n\
         async fn test_{i}() {{\n    \
         let scope = std::hint::black_box(\"read:orders\");\n    \
         assert!(scope.starts_with(\"read:\"), \"{i}\");\n}}\n\n"
    )
}

fn variants() -> Vec<Variant> {
    let root = workspace_root();
    let path = |krate: &str| format!("{:?}", root.join(krate).display().to_string());
    let tokio = "tokio = { version = \"1\", features = [\"rt\", \"macros\"] }";
    let tokio_postgres = "tokio-postgres = { version = \"0.7\", default-features = false, \
                          features = [\"runtime\"] }";
    let anyhow = "anyhow = \"1\"";
    let jit = |features: &str| {
        format!(
            "jit-test = {{ path = {} }}\n\
             jit-test-providers = {{ path = {}, features = [{features}] }}",
            path("jit-test"),
            path("jit-test-providers")
        )
    };
    vec![
        Variant {
            name: "jit_pg",
            deps: format!("{}\n{tokio_postgres}\n{anyhow}", jit("\"postgres\"")),
            prelude: "use jit_test::{assert_denied, jit_test};\n\
                      use jit_test_providers::postgres::PgGrant;\n\n",
            test: jit_pg,
        },
        Variant {
            name: "sqlx_pg",
            deps: format!(
                "sqlx = {{ version = \"0.9\", default-features = false, features = \
                 [\"runtime-tokio\", \"postgres\", \"macros\", \"migrate\"] }}\n{tokio}\n{anyhow}"
            ),
            prelude: "use sqlx::PgPool;\n\n\
                      const SCHEMA: &str = \"CREATE SCHEMA suite_bench; \
                      CREATE TABLE suite_bench.items (id serial PRIMARY KEY, sku text NOT NULL); \
                      GRANT USAGE ON SCHEMA suite_bench TO suite_bench_limited; \
                      GRANT SELECT, INSERT ON suite_bench.items TO suite_bench_limited; \
                      GRANT USAGE ON SEQUENCE suite_bench.items_id_seq TO suite_bench_limited; \
                      SET ROLE suite_bench_limited\";\n\n",
            test: sqlx_pg,
        },
        Variant {
            name: "plain_pg",
            deps: format!("{tokio}\n{tokio_postgres}\n{anyhow}"),
            prelude: "async fn connect() -> Result<tokio_postgres::Client, tokio_postgres::Error> {\n    \
                      let (client, connection) = tokio_postgres::connect(\
                      \"host=127.0.0.1 user=postgres dbname=test\", tokio_postgres::NoTls).await?;\n    \
                      tokio::spawn(connection);\n    Ok(client)\n}\n\n",
            test: plain_pg,
        },
        Variant {
            name: "jit_token",
            deps: jit("\"token\""),
            prelude: "use jit_test::jit_test;\nuse jit_test_providers::token::TokenGrant;\n\n",
            test: jit_token,
        },
        Variant {
            name: "plain_token",
            deps: tokio.to_owned(),
            prelude: "",
            test: plain_token,
        },
    ]
}

/// Writes the variant's crate under `work` and builds its test binary; returns its path.
fn build(work: &Path, target: &Path, variant: &Variant) -> PathBuf {
    let dir = work.join(variant.name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n[dev-dependencies]\n{}\n",
        variant.name, variant.deps
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    let body: String = std::iter::once(variant.prelude.to_owned())
        .chain((0..TESTS).map(variant.test))
        .collect();
    std::fs::write(dir.join("tests/suite.rs"), body).unwrap();
    let output = Command::new(env!("CARGO"))
        .args(["test", "--no-run", "--quiet", "--message-format=json"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["target"]["name"] == "suite")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the test binary")
}

/// Runs `binary` once with a fresh audit log; its whole-process wall time.
fn run(binary: &Path, work: &Path) -> Duration {
    let jit_dir = work.join("jit-test");
    let _ = std::fs::remove_dir_all(&jit_dir);
    run_on(binary, work, &jit_dir.join("audit.jsonl"), &[])
}

/// Runs the tests of `binary` that `filters` name exactly (all for none), in a run of
/// their own, with the audit log at `log`; its whole-process wall time.
fn run_on(binary: &Path, work: &Path, log: &Path, filters: &[String]) -> Duration {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_id = format!(
        "suite-bench-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut command = Command::new(binary);
    command.args(["--quiet", "--test-threads", "2"]);
    if !filters.is_empty() {
        command.arg("--exact").args(filters);
    }
    let start = Instant::now();
    let output = command
        .current_dir(work)
        .env("DATABASE_URL", URL)
        .env("JIT_TEST_PG_URL", URL)
        .env("JIT_TEST_AUDIT_LOG", log)
        .env("JIT_TEST_RUN_ID", run_id)
        .output()
        .expect("the test binary runs");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "{} failed:\n{}{}",
        binary.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn psql(sql: &str) {
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", URL, "-c", sql])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql failed on: {sql}");
}

/// One `CREATE DATABASE` + `DROP DATABASE` on the server, timed.
fn create_drop_database() -> Duration {
    let start = Instant::now();
    psql("CREATE DATABASE suite_bench_probe");
    psql("DROP DATABASE suite_bench_probe");
    start.elapsed()
}

/// Lines in the history of the history benchmark: about 64 runs of this workspace's suite.
const HISTORY_LINES: usize = 100_000;
/// Tests of the token binary run against the history.
const HISTORY_TESTS: usize = 5;

/// Writes an audit log of [`HISTORY_LINES`] lines in `dir` as 64 runs of signed test
/// processes write it, then runs the 5 tests of `binary` against it once, as the first
/// run after an upgrade does (it reads the whole history and leaves checkpoints).
fn make_history(dir: &Path, binary: &Path, work: &Path, filters: &[String]) {
    use jit_test::audit::{AuditLog, Event, EventKind};
    let _ = std::fs::remove_dir_all(dir);
    let log_path = dir.join("audit.jsonl");
    // A lifecycle is 5 lines: granted + seal, revoked + proven dead + seal.
    let lifecycles = HISTORY_LINES / 5;
    for run in 0..64 {
        let log = AuditLog::signed(&log_path).unwrap();
        let run_id = format!("history-{run}");
        for i in (run * lifecycles / 64)..((run + 1) * lifecycles / 64) {
            let event = |kind| {
                Event::new(&run_id, "token", kind)
                    .with_test(&format!("suite::test_{}", i % 40))
                    .with_lease(&format!("lease-{i}"))
                    .with_principal(&format!("jit_{i}"))
            };
            let granted = EventKind::Granted {
                permissions: vec!["token:read:suite".into()],
                expires_at: 1_800_000_000,
            };
            let proof = EventKind::ProvenDead {
                refusal: "unknown token".into(),
            };
            log.append(&[event(granted)]).unwrap();
            log.append(&[event(EventKind::Revoked), event(proof)])
                .unwrap();
        }
    }
    run_on(binary, work, &log_path, filters);
}

/// Copies the files of `from` into `to`, replacing what `to` had.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

fn percentile(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    let index = ((times.len() - 1) as f64 * p).round() as usize;
    times[index].as_secs_f64()
}

fn main() {
    let rounds = std::env::args()
        .skip_while(|arg| arg != "--rounds")
        .nth(1)
        .map_or(7, |n| n.parse().expect("--rounds takes a number"));
    let work = workspace_root().join("target").join("suite-bench");
    let target = work.join("target");
    psql(FIXTURE);
    let variants = variants();
    let binaries: Vec<PathBuf> = variants
        .iter()
        .map(|v| {
            eprintln!("building {} ...", v.name);
            build(&work, &target, v)
        })
        .collect();
    let token = &binaries[3];
    let five: Vec<String> = (0..HISTORY_TESTS).map(|i| format!("test_{i}")).collect();
    eprintln!("writing a history of {HISTORY_LINES} lines ...");
    let history = work.join("history");
    make_history(&history, token, &work, &five);
    let (empty_log, history_log) = (work.join("jit-empty"), work.join("jit-history"));
    // Empty log, the history with its checkpoints, the history without them.
    let mut exits = [Vec::new(), Vec::new(), Vec::new()];
    let mut times = vec![Vec::new(); variants.len()];
    let mut databases = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (binary, times) in binaries.iter().zip(&mut times) {
            times.push(run(binary, &work));
        }
        databases.push(create_drop_database());
        let _ = std::fs::remove_dir_all(&empty_log);
        let log = empty_log.join("audit.jsonl");
        exits[0].push(run_on(token, &work, &log, &five));
        copy_dir(&history, &history_log);
        let log = history_log.join("audit.jsonl");
        exits[1].push(run_on(token, &work, &log, &five));
        copy_dir(&history, &history_log);
        std::fs::remove_file(history_log.join("audit.jsonl.checkpoints")).unwrap();
        exits[2].push(run_on(token, &work, &log, &five));
    }
    let mut medians = Vec::new();
    println!("{TESTS} tests per binary, {rounds} rounds, whole-process wall time:\n");
    println!("| variant | median s | p90 s |\n|---|---:|---:|");
    for (variant, times) in variants.iter().zip(&mut times) {
        let median = percentile(times, 0.5);
        println!(
            "| {} | {median:.3} | {:.3} |",
            variant.name,
            percentile(times, 0.9)
        );
        medians.push(median);
    }
    println!(
        "| CREATE + DROP DATABASE (one) | {:.3} | {:.3} |",
        percentile(&mut databases, 0.5),
        percentile(&mut databases, 0.9)
    );
    let [jit_pg, sqlx_pg, plain_pg, jit_token, plain_token] = medians[..] else {
        unreachable!("five variants")
    };
    println!(
        "\n{HISTORY_TESTS} token tests, whole-process wall time, by audit log:\n\n\
         | audit log | median s | p90 s |\n|---|---:|---:|"
    );
    let names = [
        "empty",
        "100,000 lines, with checkpoints",
        "100,000 lines, no checkpoint (reads it all)",
    ];
    let mut exit_medians = Vec::new();
    for (name, times) in names.iter().zip(&mut exits) {
        let median = percentile(times, 0.5);
        println!("| {name} | {median:.3} | {:.3} |", percentile(times, 0.9));
        exit_medians.push(median);
    }
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "\nhistory / empty: {:.2}x (goal: at most 1.5x) -> {}",
        exit_medians[1] / exit_medians[0],
        verdict(exit_medians[1] <= 1.5 * exit_medians[0])
    );
    println!(
        "\njit_pg / plain_pg: {:.2}x (goal: at most 3x) -> {}",
        jit_pg / plain_pg,
        verdict(jit_pg <= 3.0 * plain_pg)
    );
    println!(
        "sqlx_pg / jit_pg: {:.2}x (goal: at least 3x) -> {}",
        sqlx_pg / jit_pg,
        verdict(sqlx_pg >= 3.0 * jit_pg)
    );
    println!(
        "jit_token / plain_token: {:.2}x (goal: at most 1.2x) -> {}",
        jit_token / plain_token,
        verdict(jit_token <= 1.2 * plain_token)
    );
}
