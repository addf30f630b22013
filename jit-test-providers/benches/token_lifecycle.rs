//! Per-test overhead of the token provider's full lifecycle (request, approve, grant,
//! watchdog, revoke, prove dead, audit) against the floor: signing and verifying one
//! token-sized message with ring, measured in the same run, in turn with the lifecycle.
//!
//! `cargo bench -p jit-test-providers --bench token_lifecycle`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::approval::Policy;
use jit_test::approval::{AccessRequest, Approver, Chain, MaxTtl};
use jit_test::approval::{Baseline, Mode};
use jit_test::audit::{AuditLog, Event, EventKind};
use jit_test::{Broker, Config, GrantRequest, LeaseRequest, Provider, Scope};
use jit_test_providers::token::{TokenAuthority, TokenSettings};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

const ITERATIONS: usize = 4000;
const WARMUP: usize = 300;

#[path = "support/stats.rs"]
mod stats;
use stats::{Stats, stats};

fn timed(step: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    step();
    start.elapsed()
}

/// Runs `step` `WARMUP + ITERATIONS` times and returns the median and 90th percentile.
fn measure(mut step: impl FnMut()) -> Stats {
    for _ in 0..WARMUP {
        step();
    }
    stats((0..ITERATIONS).map(|_| timed(&mut step)).collect())
}

/// Like [`measure`], for two steps run in turn, so that both see the same background load.
fn measure_pair(mut a: impl FnMut(), mut b: impl FnMut()) -> (Stats, Stats) {
    for _ in 0..WARMUP {
        a();
        b();
    }
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..ITERATIONS {
        first.push(timed(&mut a));
        second.push(timed(&mut b));
    }
    (stats(first), stats(second))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let dir = std::env::temp_dir().join(format!("jit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let authority = Arc::new(TokenAuthority::new(TokenSettings::default()));
    let scope = Scope::parse("token:read:orders, token:write:orders").unwrap();
    let ttl = Duration::from_secs(30);

    // The floor: one Ed25519 signature and its verification over a token-sized message.
    let rng = ring::rand::SystemRandom::new();
    let key =
        Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
    let public = UnparsedPublicKey::new(&ED25519, key.public_key().as_ref().to_vec());
    let message = vec![b'x'; 330];
    let sign_and_verify = || {
        let signature = key.sign(black_box(&message));
        public.verify(&message, signature.as_ref()).unwrap();
    };

    // The steps, one by one.
    let baseline_path = dir.join("jit-baseline.toml");
    let test = "bench::lifecycle";
    let permissions = scope.permissions.clone();
    let request = AccessRequest {
        test,
        run_id: "bench",
        scheme: "token",
        permissions: &permissions,
        ttl,
        reason: None,
        trial: false,
    };
    Baseline::new(&baseline_path, Mode::Bless).review(&request);
    let chain = Chain(vec![
        Arc::new(Baseline::new(&baseline_path, Mode::Enforce)),
        Arc::new(Policy::default()),
        Arc::new(MaxTtl(Duration::from_secs(600))),
    ]);
    let approve = measure(|| {
        black_box(chain.decide(&request));
    });
    let mut n = 0u64;
    let grant_request = |n: u64| GrantRequest {
        test: test.into(),
        run_id: "bench".into(),
        lease_id: format!("bench_{n}"),
        permissions: permissions.clone(),
        deny: Vec::new(),
        ttl,
    };
    let grant = measure(|| {
        n += 1;
        black_box(rt.block_on(authority.grant(&grant_request(n))).unwrap());
    });
    let granted = rt.block_on(authority.grant(&grant_request(0))).unwrap();
    let revoke = measure(|| rt.block_on(authority.revoke(&granted.lease)).unwrap());
    let prove = measure(|| {
        black_box(rt.block_on(authority.prove_dead(&granted.lease)).unwrap());
    });
    let log = AuditLog::new(dir.join("steps.jsonl"));
    let audit = measure(|| {
        let event = |kind| Event::new("bench", "token", kind);
        let permissions = vec!["token:read:orders".to_owned()];
        let opened = [
            EventKind::Requested {
                permissions: permissions.clone(),
                ttl_ms: 30_000,
                reason: None,
            },
            EventKind::Approved {
                approver: "max-ttl".into(),
            },
            EventKind::Granted {
                permissions,
                expires_at: 1_800_000_000,
            },
        ];
        log.append(&opened.map(event)).unwrap();
        let refusal = "revoked".to_owned();
        let closed = [EventKind::Revoked, EventKind::ProvenDead { refusal }];
        log.append(&closed.map(event)).unwrap();
    });

    // Everything together, through the broker.
    let mut config = Config::load().unwrap();
    config.audit_log = dir.join("lifecycle.jsonl");
    let broker = Broker::new(config).with_approvers(vec![
        Arc::new(Baseline::new(&baseline_path, Mode::Enforce)),
        Arc::new(Policy::default()),
        Arc::new(MaxTtl(Duration::from_secs(600))),
    ]);
    // The floor and the whole lifecycle, measured in turn.
    let (floor, lifecycle) = measure_pair(sign_and_verify, || {
        rt.block_on(async {
            let ask = LeaseRequest::new(test, permissions.clone(), ttl);
            let lease = broker.acquire(&authority, ask).await.unwrap();
            black_box(lease.release().await.unwrap());
        })
    });
    let verified = jit_test::audit::verify(dir.join("lifecycle.jsonl")).unwrap();
    assert!(verified.is_ok(), "{:?}", verified.problems);

    let overhead = lifecycle.median.saturating_sub(floor.median);
    println!("token lifecycle, {ITERATIONS} iterations after {WARMUP} warm-up, per test:\n");
    println!("| step | median µs | p90 µs |");
    println!("|---|---:|---:|");
    for (name, s) in [
        ("floor: ring Ed25519 sign + verify", &floor),
        ("approve (baseline, policy, max-ttl)", &approve),
        ("grant (claims, jti, sign)", &grant),
        ("revoke (jti on the revocation list)", &revoke),
        ("prove dead (verify, refused)", &prove),
        ("audit (5 events, 2 locked appends)", &audit),
        ("full lifecycle through the broker", &lifecycle),
    ] {
        println!("| {name} | {:.1} | {:.1} |", us(s.median), us(s.p90));
    }
    println!(
        "\noverhead beyond the floor: {:.1} µs median (goal: at most 100 µs) -> {}",
        us(overhead),
        if overhead <= Duration::from_micros(100) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "audit log of the lifecycle runs verified: {} lines",
        verified.lines
    );
    std::fs::remove_dir_all(&dir).ok();
}
