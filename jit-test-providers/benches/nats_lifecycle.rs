//! Per-test overhead of the `nats` provider on the operator-mode server, against the
//! floor: the same work done directly over one plain administrative connection of the
//! benchmark's runtime — sign one user JWT, read the account JWT, add the revocation,
//! re-sign and push it, try one login with the revoked user — with no broker runtime
//! hop, no batching, no lock file, no retry logic. Interleaved, medians and p90.
//! Figures: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p jit-test-providers --features nats --bench nats_lifecycle -- --iterations 200
//! ```

use std::time::{Duration, Instant};

use async_nats::{Client, ConnectErrorKind, ConnectOptions};
use jit_test::{Config, GrantRequest, Proof, Provider, Scope};
use jit_test_providers::nats::keys::{KeyFile, Keys};
use jit_test_providers::nats::{DEFAULT_KEY_FILE, KEYS_VAR, NatsProvider, jwt};
use nkeys::KeyPair;
use serde_json::Value;

#[path = "support/stats.rs"]
mod stats;
use stats::{Stats, stats};

const SCOPE: &str = "nats:publish:bench.orders, nats:subscribe:bench.orders";

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

async fn provider_cycle(p: &NatsProvider, n: usize) {
    let granted = p.grant(&request(n)).await.unwrap();
    p.revoke(&granted.lease).await.unwrap();
    assert!(matches!(
        p.prove_dead(&granted.lease).await.unwrap(),
        Proof::Refused(_)
    ));
}

/// Connects as the user of `jwt`, signing the nonce with `key`.
async fn login(url: &str, jwt: String, key: &KeyPair) -> Result<Client, async_nats::ConnectError> {
    let seed = key.seed().unwrap();
    ConnectOptions::with_jwt(jwt, move |nonce| {
        let key = KeyPair::from_seed(&seed).unwrap();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .connect(url)
    .await
}

async fn floor_cycle(system: &Client, keys: &Keys, url: &str) {
    let user = KeyPair::new_user();
    let exp = jwt::now() + 60;
    let permissions = jwt::UserPermissions {
        publish: vec!["bench.orders".into()],
        subscribe: vec!["bench.orders".into()],
        respond: false,
    };
    let claims = jwt::user(
        &user.public_key(),
        "jit_floor",
        &keys.account,
        exp,
        &permissions,
        vec![],
    );
    let user_jwt = jwt::sign(claims, &keys.account_key).unwrap();

    let lookup = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", keys.account);
    let current = system.request(lookup, "".into()).await.unwrap();
    let mut account = jwt::verified_claims(std::str::from_utf8(&current.payload).unwrap()).unwrap();
    let revocations = &mut account["nats"]["revocations"];
    if !revocations.is_object() {
        *revocations = Value::Object(Default::default());
    }
    revocations[user.public_key()] = exp.into();
    let signed = jwt::sign(account, &keys.operator_signing_key).unwrap();
    let answer = system
        .request("$SYS.REQ.CLAIMS.UPDATE", signed.into())
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(answer["data"]["code"], 200, "{answer}");

    let refused = login(url, user_jwt, &user)
        .await
        .expect_err("the revoked user is refused");
    assert_eq!(refused.kind(), ConnectErrorKind::AuthorizationViolation);
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn line(name: &str, s: Stats, floor: Stats) {
    println!(
        "{name:<10} median {:>10}  p90 {:>10}  ratio to floor {:.2}x (p90 {:.2}x)",
        ms(s.median),
        ms(s.p90),
        s.median.as_secs_f64() / floor.median.as_secs_f64(),
        s.p90.as_secs_f64() / floor.p90.as_secs_f64(),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iterations = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(100usize);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let path = std::env::var(KEYS_VAR).unwrap_or_else(|_| DEFAULT_KEY_FILE.into());
        let file = KeyFile::read(path.as_ref()).unwrap();
        let keys = file.keys().unwrap();
        let url = std::env::var("JIT_TEST_NATS_URL").unwrap_or(file.url.clone());
        let system = login(&url, keys.system_user_jwt.clone(), &keys.system_user_key).await.unwrap();
        let provider = jit_test::provider::<NatsProvider>().unwrap();

        let warmup = (iterations / 10).max(5);
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for i in 0..warmup + iterations {
            // Rotating order: each variant goes first in turn.
            let mut times = [Duration::ZERO; 2];
            for k in 0..2 {
                let which = (i + k) % 2;
                let started = Instant::now();
                if which == 0 {
                    provider_cycle(&provider, i).await;
                } else {
                    floor_cycle(&system, &keys, &url).await;
                }
                times[which] = started.elapsed();
            }
            if i >= warmup {
                ours.push(times[0]);
                floor.push(times[1]);
            }
        }
        println!("nats lifecycle (grant → revoke → prove dead): {iterations} interleaved iterations after {warmup} warm-up runs");
        let floor = stats(floor);
        line("floor", floor, floor);
        line("provider", stats(ours), floor);
        let pruned = provider.reap(Duration::ZERO).await.unwrap_or_default();
        println!("(revocation entries of expired users pruned afterwards: {})", pruned.len());
    });
}
