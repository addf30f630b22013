//! Per-test overhead of the `mysql` provider on the real server, against the floor: the
//! provider's own statements (grant batch, effective-privilege query, revocation batch,
//! one refused login) sent over one plain mysql_async connection, without pool, broker
//! runtime or retry logic. Both ways of holding privileges are measured (direct grants
//! to each user, the provider's; a role per permission set, for comparison), each
//! against its own floor, interleaved; then 200 grant → revoke → prove dead cycles run
//! concurrently against 200 run one after another, with how busy the CPUs were.
//! Figures and discussion: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p jit-test-providers --features mysql --bench mysql_lifecycle
//! cargo bench -p jit-test-providers --features mysql --bench mysql_lifecycle -- --iterations 150 --rounds 3
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{Config, GrantRequest, Proof, Provider, Scope};
use jit_test_providers::mysql::__bench::{self, Statements};
use jit_test_providers::mysql::{Design, MysqlProvider, MysqlSettings};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

const SCOPE: &str = "mysql:select:jit_bench.items, mysql:insert:jit_bench.items";
const CONCURRENT: usize = 200;

#[path = "support/stats.rs"]
mod stats;
use stats::{Stats, stats};

fn provider(settings: &str, design: Design) -> Arc<MysqlProvider> {
    let mut config = Config::global().clone();
    config.providers = toml::from_str(&format!("[mysql]\n{settings}")).unwrap();
    let settings = MysqlSettings::from_config(&config).unwrap();
    Arc::new(MysqlProvider::with_design(settings, design))
}

fn request(n: usize) -> GrantRequest {
    GrantRequest {
        test: "bench::cycle".into(),
        run_id: Config::global().run_id.clone(),
        lease_id: format!("b{}_{}_{n}", jit_test::rand::hex(3), std::process::id()),
        permissions: Scope::parse(SCOPE).unwrap().permissions,
        deny: Vec::new(),
        ttl: Duration::from_secs(60),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn provider_cycle(p: &MysqlProvider, n: usize) {
    let granted = p.grant(&request(n)).await.unwrap();
    p.revoke(&granted.lease).await.unwrap();
    let proof = p.prove_dead(&granted.lease).await.unwrap();
    assert!(matches!(proof, Proof::Refused(_)));
}

/// The same statements over one plain connection, and one login that must be refused.
async fn floor_cycle(admin: &mut Conn, admin_opts: &Opts, design: Design, n: usize) {
    let Statements {
        grant,
        check,
        revoke,
        user,
        password,
        ..
    } = __bench::statements(&request(n), design);
    admin.query_drop(grant).await.unwrap();
    let _: Vec<(String, String, String, String, String, String)> =
        admin.query(check).await.unwrap();
    admin.query_drop(revoke).await.unwrap();
    let login = OptsBuilder::from_opts(admin_opts.clone())
        .user(Some(user))
        .pass(Some(password.expose()))
        .prefer_socket(false);
    assert!(Conn::new(login).await.is_err());
}

async fn cycles(p: &Arc<MysqlProvider>, concurrent: bool) -> Duration {
    let started = Instant::now();
    if !concurrent {
        for n in 0..CONCURRENT {
            provider_cycle(p, n).await;
        }
        return started.elapsed();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CONCURRENT {
        let p = Arc::clone(p);
        tasks.spawn(async move { provider_cycle(&p, n).await });
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

/// How long 200 cycles took and how busy the machine's CPUs were meanwhile.
async fn busy(p: &Arc<MysqlProvider>, concurrent: bool) -> (Duration, f64) {
    let (busy0, total0) = cpu_ticks();
    let elapsed = cycles(p, concurrent).await;
    let (busy1, total1) = cpu_ticks();
    (
        elapsed,
        (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64,
    )
}

async fn run(iterations: usize, rounds: usize) {
    let warmup = (iterations / 10).max(5);
    let direct = provider("", Design::Direct);
    let role = provider("", Design::Role);
    let admin_opts = direct.settings().admin.clone();
    let mut floor = Conn::new(admin_opts.clone()).await.unwrap();
    floor
        .query_drop(
            "CREATE DATABASE IF NOT EXISTS jit_bench; \
             CREATE TABLE IF NOT EXISTS jit_bench.items (id int)",
        )
        .await
        .unwrap();
    let set = __bench::statements(&request(0), Design::Role).ensure_set;
    floor.query_drop(set).await.unwrap();

    println!(
        "mysql lifecycle: {iterations} interleaved iterations after {warmup} warm-up runs; \
         grant → revoke → prove dead, medians (p90)\n"
    );
    const NAMES: [&str; 4] = [
        "mysql provider (direct grants)",
        "floor: the same statements, one plain connection",
        "mysql provider, a role per permission set",
        "floor of the role design",
    ];
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for i in 0..warmup + iterations {
        for k in 0..NAMES.len() {
            let variant = (i + k) % NAMES.len();
            let started = Instant::now();
            match variant {
                0 => provider_cycle(&direct, i).await,
                1 => floor_cycle(&mut floor, &admin_opts, Design::Direct, i).await,
                2 => provider_cycle(&role, i).await,
                _ => floor_cycle(&mut floor, &admin_opts, Design::Role, i).await,
            }
            if i >= warmup {
                samples[variant].push(started.elapsed());
            }
        }
    }
    let s = samples.map(stats);
    let ratio = |st: Stats, floor: Stats| st.median.as_secs_f64() / floor.median.as_secs_f64();
    println!("| one test's credential | median | p90 | vs its floor |");
    println!("|---|---|---|---|");
    for (i, floor) in [(0, 1), (1, 1), (2, 3), (3, 3)] {
        println!(
            "| {:<48} | {:>9} | {:>9} | {:.2}× |",
            NAMES[i],
            ms(s[i].median),
            ms(s[i].p90),
            ratio(s[i], s[floor])
        );
    }

    println!(
        "\n| {CONCURRENT} grant → revoke → prove dead cycles, median of {rounds} interleaved \
         rounds; CPU = busy share of all the machine's cores | sequential | concurrent | speed-up |"
    );
    println!("|---|---|---|---|");
    let configs = [
        ("direct grants, pool_size 4 (default)", "", Design::Direct),
        (
            "direct grants, pool_size 8",
            "pool_size = 8",
            Design::Direct,
        ),
        ("role per set, pool_size 4", "", Design::Role),
        ("role per set, pool_size 8", "pool_size = 8", Design::Role),
    ];
    let providers: Vec<_> = configs.iter().map(|(_, s, d)| provider(s, *d)).collect();
    for p in &providers {
        provider_cycle(p, usize::MAX - 1).await; // warm the pool and the permission set
    }
    // Rounds interleave the configurations, in rotating order, so that each sees the
    // same background load.
    let mut runs: Vec<[Vec<(Duration, f64)>; 2]> =
        configs.iter().map(|_| Default::default()).collect();
    for round in 0..rounds {
        for k in 0..configs.len() {
            let c = (round + k) % configs.len();
            for concurrent in [round % 2 == 1, round % 2 == 0] {
                let run = busy(&providers[c], concurrent).await;
                runs[c][usize::from(concurrent)].push(run);
            }
        }
    }
    let pick = |mut runs: Vec<(Duration, f64)>| {
        runs.sort_by_key(|r| r.0);
        runs[runs.len() / 2]
    };
    for ((name, _, _), [seq, conc]) in configs.iter().zip(runs) {
        let ((seq, seq_cpu), (conc, conc_cpu)) = (pick(seq), pick(conc));
        println!(
            "| {name:<37} | {:>5.0} /s ({:.2} s, CPU {:>3.0} %) | {:>5.0} /s ({:.2} s, CPU {:>3.0} %) | {:.2}× |",
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
        let mut value = || args.next().and_then(|n| n.parse().ok());
        match arg.as_str() {
            "--iterations" => iterations = value().expect("--iterations N"),
            "--rounds" => rounds = value().expect("--rounds N"),
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
