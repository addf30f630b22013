//! Compile-time cost of `#[jit_test]`: a generated crate with 200 `#[jit_test]` tests
//! against the same crate with 200 `#[tokio::test]` tests, and against 199
//! `#[tokio::test]` tests beside one `#[jit_test]` test, which links the runtime and its
//! dependencies as any crate using jit-test does: the difference to that one is what the
//! tests themselves cost. Dependencies are built first; then the test targets are rebuilt
//! five times, the crates taking turns, and the median is taken: once as cargo does by
//! default, with incremental compilation (the test file is touched, so rustc reuses most
//! of its earlier work, and expansion and linking dominate), and once with
//! `CARGO_INCREMENTAL=0`, where each test's generated code is compiled again.
//!
//! `cargo bench -p tests --bench compile_time`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TESTS: usize = 200;
const ROUNDS: usize = 5;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Writes a crate named `name` whose test file holds `TESTS` tests made by `test`.
fn generate(dir: &Path, name: &str, deps: &str, test: impl Fn(usize) -> String) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n[dev-dependencies]\n{deps}\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    let body: String = (0..TESTS).map(&test).collect();
    std::fs::write(dir.join("tests/generated.rs"), body).unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

fn cargo_build_tests(dir: &Path, target: &Path, incremental: bool) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--tests", "--quiet", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_INCREMENTAL", if incremental { "1" } else { "0" })
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {} failed", dir.display());
    start.elapsed()
}

/// Median times to rebuild each crate's test target after touching it, the crates taking
/// turns in every round so that they all see the same background load.
fn rebuild_times(dirs: &[&Path], target: &Path, incremental: bool) -> Vec<Duration> {
    for dir in dirs {
        cargo_build_tests(dir, target, incremental);
    }
    let mut times = vec![Vec::new(); dirs.len()];
    for _ in 0..ROUNDS {
        for (dir, times) in dirs.iter().zip(&mut times) {
            let file = dir.join("tests/generated.rs");
            let text = std::fs::read_to_string(&file).unwrap();
            std::fs::write(&file, text).unwrap();
            times.push(cargo_build_tests(dir, target, incremental));
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[ROUNDS / 2]
        })
        .collect()
}

fn main() {
    let root = workspace_root();
    let work = root.join("target").join("compile-bench");
    let target = work.join("target");
    let path = |krate: &str| root.join(krate).display().to_string();

    let jit_deps = format!(
        "jit-test = {{ path = {:?} }}\njit-test-providers = {{ path = {:?} }}",
        path("jit-test"),
        path("jit-test-providers")
    );
    let tokio_dep = "tokio = { version = \"1\", features = [\"rt\", \"macros\"] }";
    let jit_test = |i: usize| {
        format!(
            "#[jit_test::jit_test(scope = \"token:read:orders\")]\n\
             async fn test_{i}(token: jit_test_providers::token::TokenGrant) {{\n    \
             assert!(token.has_scope(\"read:orders\"), \"{i}\");\n}}\n\n"
        )
    };
    let tokio_test = |i: usize| {
        format!(
            "#[tokio::test]\n\
             async fn test_{i}() {{\n    \
             let scope = std::hint::black_box(\"read:orders\");\n    \
             assert!(scope.starts_with(\"read:\"), \"{i}\");\n}}\n\n"
        )
    };
    let jit = work.join("with-jit-test");
    generate(&jit, "with_jit_test", &jit_deps, jit_test);
    let tokio = work.join("with-tokio-test");
    generate(&tokio, "with_tokio_test", tokio_dep, tokio_test);
    let linked = work.join("with-tokio-test-and-runtime");
    generate(
        &linked,
        "with_tokio_test_and_runtime",
        &format!("{jit_deps}\n{tokio_dep}"),
        |i| if i == 0 { jit_test(i) } else { tokio_test(i) },
    );

    println!(
        "compile time of a test crate with {TESTS} tests (dependencies built; median of {ROUNDS} rebuilds):\n"
    );
    println!(
        "| attribute | rebuild s | vs #[tokio::test] | rebuild s, CARGO_INCREMENTAL=0 | vs #[tokio::test] |\n\
         |---|---:|---:|---:|---:|"
    );
    let crates = [
        ("#[tokio::test]", &tokio),
        (
            "#[tokio::test], one of them #[jit_test] (the runtime linked)",
            &linked,
        ),
        ("#[jit_test]", &jit),
    ];
    let dirs: Vec<&Path> = crates.iter().map(|(_, dir)| dir.as_path()).collect();
    let [inc, full] = [true, false].map(|incremental| rebuild_times(&dirs, &target, incremental));
    let times: Vec<[Duration; 2]> = inc.into_iter().zip(full).map(|(a, b)| [a, b]).collect();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    for ((name, _), [inc, full]) in crates.iter().zip(&times) {
        println!(
            "| {name} | {:.2} | {:.2}x | {:.2} | {:.2}x |",
            inc.as_secs_f64(),
            ratio(*inc, times[0][0]),
            full.as_secs_f64(),
            ratio(*full, times[0][1])
        );
    }
    let [inc, full] = [0, 1].map(|k| ratio(times[2][k], times[0][k]));
    let met = |r: f64| if r <= 1.3 { "met" } else { "NOT met" };
    println!(
        "\nratio: {inc:.2}x incremental, {full:.2}x with CARGO_INCREMENTAL=0 (goal: at most \
         1.3x) -> {}, {}; against the crate that links the runtime too: {:.2}x and {:.2}x",
        met(inc),
        met(full),
        ratio(times[2][0], times[1][0]),
        ratio(times[2][1], times[1][1])
    );
}
