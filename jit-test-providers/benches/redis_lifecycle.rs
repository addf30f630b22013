//! Per-test overhead of the `redis` provider on the real server, against its floor: the
//! provider's own commands (the grant pipeline of `ACL SETUSER` and `ACL DRYRUN` probes,
//! `ACL DELUSER`, one `AUTH`) sent directly over one plain connection, interleaved with
//! the provider in the same run. Also the throughput of 200 grant → revoke → prove dead
//! cycles run concurrently against 200 run one after another. Figures: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p jit-test-providers --features redis --bench redis_lifecycle
//! cargo bench -p jit-test-providers --features redis --bench redis_lifecycle -- --iterations 500 --rounds 3
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{Config, GrantRequest, Proof, Provider, Scope};
use jit_test_providers::redis::{__bench, RedisProvider};
use redis::aio::MultiplexedConnection;
use redis::{Value, cmd};

#[path = "support/stats.rs"]
mod stats;
use stats::{Stats, stats};

const SCOPE: &str = "redis:read:bench:cache:*, redis:command(get,set,del):bench:kv:*";
const CONCURRENT: usize = 200;

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
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn provider_cycle(p: &RedisProvider, n: usize) {
    let granted = p.grant(&request(n)).await.unwrap();
    p.revoke(&granted.lease).await.unwrap();
    let proof = p.prove_dead(&granted.lease).await.unwrap();
    assert!(matches!(proof, Proof::Refused(_)));
}

/// The same commands over one plain connection, prepared before the clock starts.
async fn floor_cycle(p: &RedisProvider, con: &mut MultiplexedConnection, n: usize) -> Duration {
    let (pipeline, user, password) = __bench::grant_pipeline(p, &request(n)).await.unwrap();
    let started = Instant::now();
    let replies: Vec<Value> = pipeline.query_async(con).await.unwrap();
    assert_eq!(replies[0], Value::Okay);
    __bench::revoke_command(&user)
        .query_async::<i64>(con)
        .await
        .unwrap();
    let auth = cmd("AUTH")
        .arg(&user)
        .arg(password.expose())
        .query_async::<()>(con)
        .await;
    assert_eq!(auth.unwrap_err().code(), Some("WRONGPASS"));
    started.elapsed()
}

async fn many(p: &Arc<RedisProvider>, concurrent: bool) -> Duration {
    let started = Instant::now();
    if concurrent {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..CONCURRENT {
            let p = Arc::clone(p);
            tasks.spawn(async move { provider_cycle(&p, n).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    } else {
        for n in 0..CONCURRENT {
            provider_cycle(p, n).await;
        }
    }
    started.elapsed()
}

async fn run(iterations: usize, rounds: usize) {
    let warmup = (iterations / 10).max(5);
    let provider = jit_test::provider::<RedisProvider>().unwrap();
    let mut con = redis::Client::open(provider.settings().admin.clone())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    println!(
        "redis lifecycle: {iterations} interleaved iterations after {warmup} warm-up runs; \
         scope `{SCOPE}`\n"
    );
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for i in 0..warmup + iterations {
        let (a, b) = if i % 2 == 0 {
            let started = Instant::now();
            provider_cycle(&provider, i).await;
            (started.elapsed(), floor_cycle(&provider, &mut con, i).await)
        } else {
            let b = floor_cycle(&provider, &mut con, i).await;
            let started = Instant::now();
            provider_cycle(&provider, i).await;
            (started.elapsed(), b)
        };
        if i >= warmup {
            ours.push(a);
            floor.push(b);
        }
    }
    let (ours, floor): (Stats, Stats) = (stats(ours), stats(floor));
    println!("| grant → revoke → prove dead | median | p90 | vs the floor |");
    println!("|---|---|---|---|");
    let ratio = |s: Stats| s.median.as_secs_f64() / floor.median.as_secs_f64();
    println!(
        "| redis provider | {} | {} | {:.2}× |",
        ms(ours.median),
        ms(ours.p90),
        ratio(ours)
    );
    println!(
        "| floor: the same commands over one plain connection | {} | {} | 1.00× |",
        ms(floor.median),
        ms(floor.p90)
    );

    let (mut seq, mut conc) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            seq.push(many(&provider, false).await);
            conc.push(many(&provider, true).await);
        } else {
            conc.push(many(&provider, true).await);
            seq.push(many(&provider, false).await);
        }
    }
    let (seq, conc) = (stats(seq).median, stats(conc).median);
    println!(
        "\n{CONCURRENT} full cycles, median of {rounds} rounds: sequential {:.0} /s ({:.2} s), \
         concurrent {:.0} /s ({:.2} s), {:.2}×",
        CONCURRENT as f64 / seq.as_secs_f64(),
        seq.as_secs_f64(),
        CONCURRENT as f64 / conc.as_secs_f64(),
        conc.as_secs_f64(),
        seq.as_secs_f64() / conc.as_secs_f64()
    );
}

fn main() {
    let mut iterations = 300;
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
