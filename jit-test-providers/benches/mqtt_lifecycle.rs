//! Per-test overhead of the `mqtt` provider on the real broker (`.ci/setup-mqtt`):
//! grant → revoke → prove dead through the provider, against the floor: the same
//! dynamic-security batches sent by hand over one plain rumqttc v5 connection of the
//! admin client (its event loop polled inline, no broker runtime, no dispatch task, no
//! retries), and one refused CONNECT. The two alternate, iteration by iteration.
//! Figures: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p jit-test-providers --features mqtt --bench mqtt_lifecycle
//! cargo bench -p jit-test-providers --features mqtt --bench mqtt_lifecycle -- --iterations 300
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_test::{Config, GrantRequest, Proof, Provider, Scope};
use jit_test_providers::mqtt::__bench;
use jit_test_providers::mqtt::rumqttc::v5::mqttbytes::QoS;
use jit_test_providers::mqtt::rumqttc::v5::mqttbytes::v5::Packet;
use jit_test_providers::mqtt::rumqttc::v5::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions,
};
use jit_test_providers::mqtt::{MqttProvider, MqttSettings};
use serde_json::json;

const SCOPE: &str = "mqtt:publish:jit_bench/+/telemetry, mqtt:subscribe:jit_bench/+/commands";

#[path = "support/stats.rs"]
mod stats;
use stats::{Stats, stats};

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

fn options(settings: &MqttSettings, client_id: &str, user: &str, password: &str) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, &settings.host, settings.port);
    options
        .set_credentials(user, password)
        .set_clean_start(true);
    options
}

/// The floor's admin connection: a client and its event loop, polled inline.
struct Plain {
    client: AsyncClient,
    events: EventLoop,
}

impl Plain {
    async fn connect(settings: &MqttSettings) -> Plain {
        let id = format!("jit-bench-floor-{}", std::process::id());
        let (client, mut events) = AsyncClient::new(
            options(
                settings,
                &id,
                &settings.username,
                settings.password.expose(),
            ),
            16,
        );
        client
            .subscribe(format!("{}/response", __bench::TOPIC), QoS::AtMostOnce)
            .await
            .unwrap();
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
                break Plain { client, events };
            }
        }
    }

    /// Sends one batch and waits for its answer, which must hold no error. Every admin
    /// connection receives every answer: ours carry `id` as their correlation data.
    async fn send(&mut self, mut commands: Vec<serde_json::Value>, id: &str) {
        for command in &mut commands {
            command["correlationData"] = id.into();
        }
        let payload = json!({ "commands": commands }).to_string();
        self.client
            .publish(__bench::TOPIC, QoS::AtMostOnce, false, payload)
            .await
            .unwrap();
        loop {
            if let Event::Incoming(Packet::Publish(answer)) = self.events.poll().await.unwrap() {
                let text = String::from_utf8_lossy(&answer.payload);
                if text.contains(&format!("\"correlationData\":\"{id}\"")) {
                    assert!(!text.contains("\"error\""), "{text}");
                    return;
                }
            }
        }
    }
}

/// One CONNECT with `user`'s old password, which the broker must refuse.
async fn refused_connect(settings: &MqttSettings, user: &str, password: &str) {
    let (_client, mut events) = AsyncClient::new(
        options(settings, &format!("{user}-proof"), user, password),
        4,
    );
    // The first poll connects: a CONNACK refusal is its error.
    match events.poll().await {
        Ok(_) => panic!("the broker accepted a removed client"),
        Err(ConnectionError::ConnectionRefused(_)) => {}
        Err(other) => panic!("{other}"),
    }
}

async fn provider_cycle(p: &MqttProvider, n: usize) -> [Duration; 3] {
    let started = Instant::now();
    let granted = p.grant(&request(n)).await.unwrap();
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

async fn floor_cycle(plain: &mut Plain, settings: &MqttSettings, n: usize) -> [Duration; 3] {
    let started = Instant::now();
    let (name, password, commands) = __bench::grant(&request(n));
    plain
        .send(commands, &format!("floor-{}-{n}-grant", std::process::id()))
        .await;
    let granted_at = Instant::now();
    plain
        .send(
            __bench::revoke(&name),
            &format!("floor-{}-{n}-revoke", std::process::id()),
        )
        .await;
    let revoked_at = Instant::now();
    refused_connect(settings, &name, password.expose()).await;
    [
        granted_at - started,
        revoked_at - granted_at,
        revoked_at.elapsed(),
    ]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, s: Stats, floor: Stats) {
    println!(
        "| {name} | {} | {} | {} | {} | {:.2}× |",
        ms(s.median),
        ms(s.p90),
        ms(floor.median),
        ms(floor.p90),
        s.median.as_secs_f64() / floor.median.as_secs_f64()
    );
}

fn main() {
    let mut iterations = 200;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--iterations" {
            iterations = args
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--iterations N");
        }
    }
    let provider = jit_test::provider::<MqttProvider>().unwrap();
    let settings = provider.settings().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        let mut plain = Plain::connect(&settings).await;
        // Warm-up: the admin connections, the broker checks, the first allocations.
        provider_cycle(&provider, 0).await;
        floor_cycle(&mut plain, &settings, 0).await;
        for n in 1..=iterations {
            ours.push(provider_cycle(&Arc::clone(&provider), n).await);
            floor.push(floor_cycle(&mut plain, &settings, n).await);
        }
    });
    let column = |samples: &[[Duration; 3]], i: Option<usize>| {
        stats(
            samples
                .iter()
                .map(|s| i.map_or_else(|| s.iter().sum(), |i| s[i]))
                .collect(),
        )
    };
    println!("{iterations} interleaved cycles\n");
    println!(
        "| phase | provider median | provider p90 | floor median | floor p90 | median ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, name) in ["grant", "revoke", "prove dead"].into_iter().enumerate() {
        row(name, column(&ours, Some(i)), column(&floor, Some(i)));
    }
    row("whole cycle", column(&ours, None), column(&floor, None));
}
