//! The PostgreSQL audit sink against the file sink and against a floor of plain INSERTs.
//!
//! 1. Throughput and per-test cost: 200 tests, each making a lifecycle's three appends
//!    (request and verdict, grant, revocation and proof: 5 events), signed as the broker
//!    writes them, in six scenarios: a process per test (a writer and a connection
//!    each, as under nextest) 50 and 2 at a time, and one process whose tests share its
//!    writer (as `cargo test`) 50 and 2 at a time, over TCP on 127.0.0.1; and both at 2
//!    at a time over the server's Unix socket. Each through the file sink (one shared
//!    file, locked appends), the PostgreSQL sink, and the floor: the same rows as plain
//!    INSERTs (a connection per test, or per thread when shared), with no chain, hash,
//!    signature or hand-over to a thread.
//! 2. `read_run` (what `jit-test verify --run` does) over runs of 10,000 and 100,000
//!    events written by 10 writers, against `audit::read` of a file holding the same.
//!
//! `cargo bench -p tests --bench audit_sink` (needs PostgreSQL on 127.0.0.1:5432 as
//! superuser `postgres`; makes a scratch database and role and removes them).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jit_test::audit::postgres::{self, PgSink};
use jit_test::audit::{AuditLog, Event, EventKind, Sink};
use tests::audit_table::AuditTable;

const TESTS: usize = 200;
const EVENTS_PER_TEST: usize = 5;

/// A lifecycle's appends, as the broker makes them.
fn lifecycle(run: &str, test: &str) -> [Vec<Event>; 3] {
    let event = |kind| {
        Event::new(run, "pg", kind)
            .with_test(test)
            .with_lease("l")
            .with_principal("jit_bench")
    };
    [
        vec![
            event(EventKind::Requested {
                permissions: vec!["pg:select:public.orders".into()],
                ttl_ms: 30_000,
                reason: None,
            }),
            event(EventKind::Approved {
                approver: "max-ttl".into(),
            }),
        ],
        vec![event(EventKind::Granted {
            permissions: vec!["pg:select:public.orders".into()],
            expires_at: 0,
        })],
        vec![
            event(EventKind::Revoked),
            event(EventKind::ProvenDead {
                refusal: "SQLSTATE 28P01".into(),
            }),
        ],
    ]
}

/// Runs `test(i)` for `TESTS` tests, `concurrency` at a time; returns the wall time and
/// each test's time.
fn run_tests(concurrency: usize, test: &(dyn Fn(usize) + Sync)) -> (Duration, Vec<Duration>) {
    let next = AtomicUsize::new(0);
    let times = Mutex::new(Vec::with_capacity(TESTS));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= TESTS {
                        break;
                    }
                    let one = Instant::now();
                    test(i);
                    times.lock().unwrap().push(one.elapsed());
                }
            });
        }
    });
    (started.elapsed(), times.into_inner().unwrap())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn p90(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() * 9 / 10]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How the tests are spread over processes.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    /// A writer (sink, connection) per test, as nextest's process per test; else one
    /// writer shared by every test, as one `cargo test` process.
    writer_per_test: bool,
    concurrency: usize,
    /// Over the server's Unix socket instead of TCP on 127.0.0.1.
    socket: bool,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "a process per test (nextest), 50 at a time",
        writer_per_test: true,
        concurrency: 50,
        socket: false,
    },
    Scenario {
        name: "a process per test (nextest), 2 at a time (its default here: 2 cores)",
        writer_per_test: true,
        concurrency: 2,
        socket: false,
    },
    Scenario {
        name: "one process (cargo test), 50 tests at a time",
        writer_per_test: false,
        concurrency: 50,
        socket: false,
    },
    Scenario {
        name: "one process (cargo test), 2 tests at a time (its default here)",
        writer_per_test: false,
        concurrency: 2,
        socket: false,
    },
    Scenario {
        name: "a process per test, 2 at a time, over the Unix socket",
        writer_per_test: true,
        concurrency: 2,
        socket: true,
    },
    Scenario {
        name: "one process, 2 tests at a time, over the Unix socket",
        writer_per_test: false,
        concurrency: 2,
        socket: true,
    },
];

/// Connects as the table's writer.
async fn writer_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The floor: the same rows as plain INSERTs, one statement per append, from `client`.
async fn plain_inserts(client: &tokio_postgres::Client, run: &str, writer: &str) {
    let mut seq = 0i64;
    for append in lifecycle(run, "bench::floor") {
        let mut sql =
            String::from("INSERT INTO jit_audit.events (run, writer, seq, hash, line) VALUES ");
        for (n, event) in append.iter().enumerate() {
            seq += 1;
            let line = serde_json::to_string(event).unwrap().replace('\'', "''");
            if n > 0 {
                sql.push(',');
            }
            sql += &format!("('{run}', '{writer}', {seq}, '', '{line}')");
        }
        client.batch_execute(&sql).await.unwrap();
    }
}

/// Each test of `scenario` through the file, the PostgreSQL sink and the floor; prints a
/// table, and checks that the sink's rows hold together.
fn throughput(table: &AuditTable, scenario: Scenario) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let target = dir.path().join("target");
    let url = if scenario.socket {
        table.writer_socket_url()
    } else {
        table.writer_url()
    };
    let tag = jit_test::rand::hex(4);
    let (file_run, pg_run, floor_run) = (
        format!("bench-file-{tag}"),
        format!("bench-pg-{tag}"),
        format!("bench-floor-{tag}"),
    );
    let shared_log = AuditLog::signed(&path).unwrap();
    let shared_sink = PgSink::from_env(&url, &pg_run, &target).unwrap();
    let file = |_| {
        let own;
        let log = if scenario.writer_per_test {
            own = AuditLog::signed(&path).unwrap();
            &own
        } else {
            &shared_log
        };
        for append in lifecycle(&file_run, "bench::file") {
            log.append(&append).unwrap();
        }
    };
    let pg = |_| {
        let own;
        let sink = if scenario.writer_per_test {
            own = PgSink::from_env(&url, &pg_run, &target).unwrap();
            &own
        } else {
            &shared_sink
        };
        for append in lifecycle(&pg_run, "bench::pg") {
            sink.append(&append).unwrap();
        }
    };
    // The floor's shared case: a connection per thread, made before the clock starts
    // (driven by the runtime's own threads meanwhile).
    let floor_rt = tokio::runtime::Runtime::new().unwrap();
    let clients: Vec<tokio_postgres::Client> = if scenario.writer_per_test {
        Vec::new()
    } else {
        (0..scenario.concurrency)
            .map(|_| floor_rt.block_on(writer_client(&url)))
            .collect()
    };
    let floor = |i: usize| {
        let writer = format!("floor-{i}");
        if scenario.writer_per_test {
            floor_rt.block_on(async {
                let client = writer_client(&url).await;
                plain_inserts(&client, &floor_run, &writer).await;
            });
        } else {
            let client = &clients[i % clients.len()];
            floor_rt.block_on(plain_inserts(client, &floor_run, &writer));
        }
    };
    println!(
        "\n{}: {TESTS} tests, 3 appends ({EVENTS_PER_TEST} events) each\n",
        scenario.name
    );
    println!("| sink | events/s | per test median ms | per test p90 ms |");
    println!("|---|---:|---:|---:|");
    let mut medians = Vec::new();
    let sinks: [(&str, &(dyn Fn(usize) + Sync)); 3] = [
        ("file (signed, locked appends)", &file),
        ("PostgreSQL sink (signed, per-writer chain)", &pg),
        ("floor: plain INSERTs of the same rows", &floor),
    ];
    for (name, test) in sinks {
        let (wall, mut times) = run_tests(scenario.concurrency, test);
        let rate = (TESTS * EVENTS_PER_TEST) as f64 / wall.as_secs_f64();
        let m = median(&mut times);
        medians.push(m);
        println!(
            "| {name} | {rate:.0} | {:.2} | {:.2} |",
            ms(m),
            ms(p90(&mut times))
        );
    }
    println!(
        "\nper test at the median: PostgreSQL sink {:+.2} ms against the file, {:+.2} ms against the floor",
        ms(medians[1]) - ms(medians[0]),
        ms(medians[1]) - ms(medians[2])
    );
    let contents = postgres::read_run(&url, &pg_run).unwrap();
    assert!(contents.verification.chain_intact());
    let events = contents
        .events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Sealed { .. }))
        .count();
    assert_eq!(events, TESTS * EVENTS_PER_TEST);
}

/// Writes `events` events of run `run` through 10 signed writers, in appends of 50 rows,
/// into the table and into `file`.
fn fill(table: &AuditTable, run: &str, events: usize, file: &std::path::Path) {
    let target = file.with_file_name("target");
    let per_writer = events / 10;
    std::thread::scope(|scope| {
        for w in 0..10 {
            let url = table.writer_url();
            let target = target.clone();
            scope.spawn(move || {
                let sink = PgSink::from_env(&url, run, &target).unwrap();
                let log = AuditLog::signed(file).unwrap();
                // 49 events and the writer's seal: 50 rows an append.
                let mut written = 0;
                while written < per_writer {
                    let n = 49.min(per_writer - written);
                    let batch: Vec<Event> = (0..n)
                        .map(|i| {
                            Event::new(run, "pg", EventKind::Reaped)
                                .with_principal(&format!("jit_{w}_{}", written + i))
                        })
                        .collect();
                    sink.append(&batch).unwrap();
                    log.append(&batch).unwrap();
                    written += n;
                }
            });
        }
    });
}

fn verify_times(table: &AuditTable) {
    println!(
        "\n| events | rows | `read_run` (verify --run) median s | file `audit::read` median s |"
    );
    println!("|---:|---:|---:|---:|");
    for events in [10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.jsonl");
        let run = format!("bench-verify-{events}-{}", jit_test::rand::hex(4));
        fill(table, &run, events, &file);
        let mut table_times = Vec::new();
        let mut file_times = Vec::new();
        let mut rows = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let contents = postgres::read_run(&table.writer_url(), &run).unwrap();
            table_times.push(started.elapsed());
            assert!(
                contents.verification.is_ok(),
                "{:?}",
                contents.verification.problems.first()
            );
            rows = contents.verification.lines;
            let started = Instant::now();
            let read = jit_test::audit::read(&file).unwrap();
            file_times.push(started.elapsed());
            assert!(read.verification.is_ok());
        }
        println!(
            "| {events} | {rows} | {:.3} | {:.3} |",
            median(&mut table_times).as_secs_f64(),
            median(&mut file_times).as_secs_f64()
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run checks it builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let table = AuditTable::create();
    for scenario in SCENARIOS {
        throughput(&table, scenario);
    }
    verify_times(&table);
}
