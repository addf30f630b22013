//! Per-test overhead of the `amqp` provider on the real broker: grant → revoke → prove
//! dead through the provider, against its floor: the same requests to the management
//! API (create the user with the same kind of hash and lease tag, set its permissions,
//! list the vhost's exchanges, delete the user) sent over one kept-alive HTTP/1.1
//! connection, and one AMQP login with the old password, refused. The two run in turn,
//! the order alternating, so both see the same load. Figures: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p jit-test-providers --features amqp --bench amqp_lifecycle
//! cargo bench -p jit-test-providers --features amqp --bench amqp_lifecycle -- --iterations 300
//! ```

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use jit_test::{Config, GrantRequest, Proof, Provider, Scope, Secret};
use jit_test_providers::amqp::scope::any_regex;
use jit_test_providers::amqp::{__bench, AmqpProvider, AmqpSettings, META_TAG};
use lapin::{Connection, ConnectionProperties};
use serde_json::json;

const SCOPE: &str = "amqp:read:/jit_bench.q, amqp:write:/amq.default";

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

/// The floor: the provider's requests over one plain HTTP/1.1 connection (opened again
/// when the server closes it, as it does after a number of requests).
struct Floor {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    authorization: String,
    amqp: String,
}

impl Floor {
    async fn open(host: &str) -> SendRequest<Full<Bytes>> {
        let stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender
    }

    async fn connect(settings: &AmqpSettings) -> Floor {
        let host = settings.admin.address.to_string();
        let sender = Floor::open(&host).await;
        let basic = format!(
            "{}:{}",
            settings.admin.user,
            settings.admin.password.expose()
        );
        Floor {
            sender,
            host,
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(basic)
            ),
            amqp: settings.amqp.to_string(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<serde_json::Value>) -> u16 {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("/api{path}"))
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, &self.authorization)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .unwrap();
        if self.sender.ready().await.is_err() {
            self.sender = Floor::open(&self.host).await;
        }
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        status
    }

    async fn cycle(&mut self, n: usize) {
        let req = request(n);
        let user = req.principal_name("jit_floor_");
        let password = Secret::random(16);
        let meta = req.meta(SystemTime::now() + req.ttl);
        let tag = format!("{META_TAG}{}", serde_json::to_string(&meta).unwrap());
        let user_body = json!({
            "password_hash": __bench::password_hash(&password),
            "hashing_algorithm": __bench::HASHING_ALGORITHM,
            "tags": [tag],
        });
        assert_eq!(
            self.send(Method::PUT, &format!("/users/{user}"), Some(user_body))
                .await,
            201
        );
        let permissions = json!({
            "configure": any_regex([]),
            "write": any_regex(["amq.default"]),
            "read": any_regex(["jit_bench.q"]),
        });
        let path = format!("/permissions/%2F/{user}");
        assert_eq!(self.send(Method::PUT, &path, Some(permissions)).await, 201);
        let path = "/exchanges/%2F?columns=name,type";
        assert_eq!(self.send(Method::GET, path, None).await, 200);
        assert_eq!(
            self.send(Method::DELETE, &format!("/users/{user}"), None)
                .await,
            204
        );
        let uri = format!("amqp://{user}:{}@{}/%2F", password.expose(), self.amqp);
        let login = Connection::connect(&uri, ConnectionProperties::default()).await;
        assert!(login.is_err(), "the deleted user logged in");
    }
}

/// Grant, revoke and prove dead through the provider; the three durations.
async fn provider_cycle(p: &AmqpProvider, n: usize) -> [Duration; 3] {
    let started = Instant::now();
    let granted = p.grant(&request(n)).await.unwrap();
    let granted_at = Instant::now();
    p.revoke(&granted.lease).await.unwrap();
    let revoked_at = Instant::now();
    let proof = p.prove_dead(&granted.lease).await.unwrap();
    assert!(matches!(proof, Proof::Refused(_)));
    [
        granted_at - started,
        revoked_at - granted_at,
        revoked_at.elapsed(),
    ]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn line(name: &str, s: Stats) {
    println!(
        "{name:<34} median {:>10}   p90 {:>10}",
        ms(s.median),
        ms(s.p90)
    );
}

fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .map_or(150, |n| n.parse().expect("--iterations N"));
    let settings = AmqpSettings::from_config(Config::global()).unwrap();
    let provider = AmqpProvider::new(settings.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut floor = Floor::connect(&settings).await;
        for n in 0..10 {
            floor.cycle(n).await;
            provider_cycle(&provider, n).await;
        }
        let (mut floors, mut fulls) = (Vec::new(), Vec::new());
        let mut steps: [Vec<Duration>; 3] = Default::default();
        for n in 0..iterations {
            let timed_floor = async {
                let t = Instant::now();
                floor.cycle(n).await;
                t.elapsed()
            };
            let (f, parts) = if n % 2 == 0 {
                let f = timed_floor.await;
                (f, provider_cycle(&provider, n).await)
            } else {
                let parts = provider_cycle(&provider, n).await;
                (timed_floor.await, parts)
            };
            floors.push(f);
            fulls.push(parts.iter().sum::<Duration>());
            for (all, part) in steps.iter_mut().zip(parts) {
                all.push(part);
            }
        }
        println!("amqp lifecycle, {iterations} interleaved iterations, scope {SCOPE:?}");
        let (floor, full) = (stats(floors), stats(fulls));
        line("floor: same requests + 1 login", floor);
        let [grant, revoke, proof] = steps;
        line("provider: grant", stats(grant));
        line("provider: revoke", stats(revoke));
        line("provider: prove dead", stats(proof));
        line("provider: grant+revoke+prove dead", full);
        println!(
            "ratio to the floor: median {:.2}x, p90 {:.2}x (goal: at most 1.5x)",
            full.median.as_secs_f64() / floor.median.as_secs_f64(),
            full.p90.as_secs_f64() / floor.p90.as_secs_f64()
        );
    });
}
