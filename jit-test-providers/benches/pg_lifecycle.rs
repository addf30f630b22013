//! Per-test overhead of the `pg` provider on the real server, against
//!
//! - the floor: the provider's own statements sent over one plain tokio-postgres
//!   connection (same SQL, no pool, no broker runtime, no retry logic);
//! - a minimal hand-written lifecycle (CREATE ROLE with a clear-text password, GRANT,
//!   DROP OWNED, DROP ROLE, one login attempt), without the effective-privilege check,
//!   lease metadata or permission sets, for scale;
//! - a database per test, as `#[sqlx::test]` does it (CREATE DATABASE, connect, DROP
//!   DATABASE), without any migrations;
//!
//! and the throughput of 200 grant+revoke cycles run concurrently against 200 run one
//! after another, with how busy the CPUs were.
//! Figures and discussion: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p jit-test-providers --features postgres --bench pg_lifecycle
//! cargo bench -p jit-test-providers --features postgres --bench pg_lifecycle -- --iterations 150 --rounds 3
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{Config, GrantRequest, Proof, Provider, Scope};
use jit_test_providers::postgres::__bench;
use jit_test_providers::postgres::{PgProvider, PgSettings};
use tokio_postgres::{Client, NoTls};

const SCOPE: &str = "pg:select:jit_bench.items, pg:insert:jit_bench.items";
const CONCURRENT: usize = 200;

/// A provider with these `[providers.pg]` settings.
fn provider(settings: &str) -> Arc<PgProvider> {
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[pg]\n{settings}")).unwrap();
    Arc::new(PgProvider::new(PgSettings::from_config(&config).unwrap()))
}

fn request(n: usize, ttl: Duration) -> GrantRequest {
    GrantRequest {
        test: "bench::cycle".into(),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("b{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: Scope::parse(SCOPE).unwrap().permissions,
        deny: Vec::new(),
        ttl,
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn login_config(
    admin: &tokio_postgres::Config,
    role: &str,
    password: &str,
) -> tokio_postgres::Config {
    let mut config = admin.clone();
    config.user(role).password(password);
    config
}

#[path = "support/stats.rs"]
mod stats;
use stats::{Stats, stats};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn provider_cycle(p: &PgProvider, n: usize) -> [Duration; 3] {
    let started = Instant::now();
    let granted = p.grant(&request(n, Duration::from_secs(60))).await.unwrap();
    let granted_at = Instant::now();
    p.revoke(&granted.lease).await.unwrap();
    let revoked_at = Instant::now();
    assert!(matches!(
        p.prove_dead(&granted.lease).await.unwrap(),
        Proof::Refused(_)
    ));
    [
        granted_at - started,
        revoked_at - granted_at,
        revoked_at.elapsed(),
    ]
}

async fn floor_cycle(
    admin: &Client,
    effective: &tokio_postgres::Statement,
    admin_config: &tokio_postgres::Config,
    n: usize,
    iterations: u32,
) {
    let req = request(n, Duration::from_secs(60));
    let (role, password) = __bench::grant(admin, effective, &req, "test", iterations).await;
    // As the provider revokes: NOLOGIN, the proof's login attempt, the drop.
    admin
        .batch_execute(&__bench::bar_login_sql(&role))
        .await
        .unwrap();
    assert_login_refused(admin_config, &role, &password).await;
    admin
        .simple_query(&__bench::revoke_sql(&role))
        .await
        .unwrap();
}

/// The removed role's password must no longer log in.
async fn assert_login_refused(
    admin_config: &tokio_postgres::Config,
    role: &str,
    password: &jit_test::Secret,
) {
    assert!(
        connect(&login_config(admin_config, role, password.expose()))
            .await
            .is_err()
    );
}

async fn minimal_cycle(admin: &Client, admin_config: &tokio_postgres::Config, n: usize) {
    let role = format!("jit_min_{}_{n}", std::process::id());
    let password = jit_test::Secret::random(16);
    admin
        .batch_execute(&format!(
            "BEGIN; CREATE ROLE {role} LOGIN PASSWORD '{}' VALID UNTIL 'infinity' IN ROLE jit_lease; \
             GRANT USAGE ON SCHEMA jit_bench TO {role}; \
             GRANT SELECT, INSERT ON jit_bench.items TO {role}; COMMIT;",
            password.expose()
        ))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await
        .unwrap();
    assert_login_refused(admin_config, &role, &password).await;
}

async fn database_cycle(admin: &Client, admin_config: &tokio_postgres::Config, n: usize) {
    let name = format!("jit_bench_db_{}_{n}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut config = admin_config.clone();
    config.dbname(&name);
    let client = connect(&config).await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

async fn sequential(p: &Arc<PgProvider>) -> Duration {
    let started = Instant::now();
    for n in 0..CONCURRENT {
        let granted = p.grant(&request(n, Duration::from_secs(60))).await.unwrap();
        p.revoke(&granted.lease).await.unwrap();
    }
    started.elapsed()
}

async fn concurrent(p: &Arc<PgProvider>) -> Duration {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CONCURRENT {
        let p = Arc::clone(p);
        tasks.spawn(async move {
            let granted = p.grant(&request(n, Duration::from_secs(60))).await.unwrap();
            p.revoke(&granted.lease).await.unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed()
}

/// The machine's busy and total CPU time so far, in clock ticks (`/proc/stat`).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// How busy the machine's CPUs were while `f` ran (1.0 = every core all the time).
async fn busy<F: std::future::Future<Output = Duration>>(f: F) -> (Duration, f64) {
    let (busy0, total0) = cpu_ticks();
    let elapsed = f.await;
    let (busy1, total1) = cpu_ticks();
    let share = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
    (elapsed, share)
}

async fn run(iterations: usize, rounds: usize) {
    let warmup = (iterations / 10).max(5);
    let group = provider("");
    let admin = group.admin_client().await.unwrap();
    admin
        .batch_execute(
            "SELECT pg_advisory_xact_lock(4242, 5);
             CREATE SCHEMA IF NOT EXISTS jit_bench;
             CREATE TABLE IF NOT EXISTS jit_bench.items (id int);",
        )
        .await
        .unwrap();
    let admin_config = group.settings().admin.clone();
    // The floor runs on a connection of this runtime, as a test would.
    let floor_client = connect(&admin_config).await.unwrap();
    let effective = __bench::prepare(&floor_client).await;
    let db_every = 5;

    println!(
        "pg lifecycle: {iterations} interleaved iterations after {warmup} warm-up runs \
         (a database per test every {db_every}th); medians (p90)\n"
    );
    // Interleaved, in rotating order, so that every variant sees the same background load.
    const NAMES: [&str; 6] = [
        "pg provider (permission-set roles)",
        "floor: the same SQL over one plain connection",
        "minimal hand-written SQL, no checks",
        "database per test",
        "pg provider, scram_iterations = 4096",
        "floor, scram_iterations = 4096",
    ];
    let slow = provider("scram_iterations = 4096");
    let mut samples: [Vec<Duration>; 6] = Default::default();
    let mut steps: [Vec<Duration>; 3] = Default::default();
    for i in 0..warmup + iterations {
        for k in 0..NAMES.len() {
            let variant = (i + k) % NAMES.len();
            if variant == 3 && i % db_every != 0 {
                continue;
            }
            let started = Instant::now();
            match variant {
                0 => {
                    let step = provider_cycle(&group, i).await;
                    if i >= warmup {
                        for (all, one) in steps.iter_mut().zip(step) {
                            all.push(one);
                        }
                    }
                }
                1 => floor_cycle(&floor_client, &effective, &admin_config, i, 1).await,
                2 => minimal_cycle(&floor_client, &admin_config, i).await,
                3 => database_cycle(&floor_client, &admin_config, i).await,
                4 => drop(provider_cycle(&slow, i).await),
                _ => floor_cycle(&floor_client, &effective, &admin_config, i, 4096).await,
            }
            if i >= warmup {
                samples[variant].push(started.elapsed());
            }
        }
    }
    let db_runs = samples[3].len();
    let s = samples.map(stats);
    let row = |name: &str, st: Stats, note: String| {
        println!(
            "| {name:<45} | {:>9} | {:>9} | {note} |",
            ms(st.median),
            ms(st.p90)
        );
    };
    let ratio = |st: Stats, floor: Stats| st.median.as_secs_f64() / floor.median.as_secs_f64();
    println!(
        "| one test's credential: grant → revoke → prove dead | median | p90 | vs its floor |"
    );
    println!("|---|---|---|---|");
    row(NAMES[0], s[0], format!("{:.2}×", ratio(s[0], s[1])));
    row(NAMES[1], s[1], "1.00×".into());
    row(NAMES[2], s[2], format!("{:.2}×", ratio(s[2], s[1])));
    row(
        &format!("{} ({db_runs} runs)", NAMES[3]),
        s[3],
        format!(
            "{:.2}×: the provider is {:.1}× faster",
            ratio(s[3], s[1]),
            s[3].median.as_secs_f64() / s[0].median.as_secs_f64()
        ),
    );
    row(NAMES[4], s[4], format!("{:.2}×", ratio(s[4], s[5])));
    row(NAMES[5], s[5], "1.00×".into());
    let [grant, revoke, prove] = steps.map(|st| ms(stats(st).median));
    println!(
        "\nprovider (permission-set roles) steps, medians: grant {grant}, revoke {revoke}, prove dead {prove}"
    );

    println!(
        "\n| {CONCURRENT} grant+revoke cycles, median of {rounds} rounds; CPU = busy share of \
         all the machine's cores | sequential | concurrent | speed-up |"
    );
    println!("|---|---|---|---|");
    for (name, settings) in [
        ("pool_size 4 (default)", ""),
        ("pool_size 8", "pool_size = 8"),
        ("scram_iterations = 4096", "scram_iterations = 4096"),
    ] {
        let p = provider(settings);
        provider_cycle(&p, usize::MAX - 1).await; // warm the pool and the permission set
        let (mut seq, mut conc) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 0 {
                seq.push(busy(sequential(&p)).await);
                conc.push(busy(concurrent(&p)).await);
            } else {
                conc.push(busy(concurrent(&p)).await);
                seq.push(busy(sequential(&p)).await);
            }
        }
        let pick = |mut runs: Vec<(Duration, f64)>| {
            runs.sort_by_key(|r| r.0);
            runs[runs.len() / 2]
        };
        let ((seq, seq_cpu), (conc, conc_cpu)) = (pick(seq), pick(conc));
        println!(
            "| {name:<29} | {:>5.0} /s ({:.2} s, CPU {:>3.0} %) | {:>5.0} /s ({:.2} s, CPU {:>3.0} %) | {:.2}× |",
            CONCURRENT as f64 / seq.as_secs_f64(),
            seq.as_secs_f64(),
            seq_cpu * 100.0,
            CONCURRENT as f64 / conc.as_secs_f64(),
            conc.as_secs_f64(),
            conc_cpu * 100.0,
            seq.as_secs_f64() / conc.as_secs_f64()
        );
    }
}

fn main() {
    let mut iterations = 100;
    let mut rounds = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--iterations N")
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            _ => {} // cargo bench passes --bench
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(iterations, rounds));
}
