//! [`PgSink`]: a writer's chain, appended by a thread of its own.

use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use super::super::event::Event;
use super::super::key::Authentication;
use super::super::line::{self, GENESIS};
use super::super::sink::Sink;
use super::connection::{ATTEMPT_TIMEOUT, ATTEMPTS, connect, describe, invalid, redact, settings};
use super::schema;

/// The pauses before the second and third tries, in milliseconds.
const PAUSES_MS: [u64; ATTEMPTS as usize - 1] = [400, 1_600];

/// How long a caller waits for its append: the connection made ahead of it, every try,
/// the pauses between them, and a second for the hand-over (23 s).
const WAIT: Duration = Duration::from_millis(
    ATTEMPT_TIMEOUT.as_millis() as u64 * (ATTEMPTS as u64 + 1)
        + PAUSES_MS[0]
        + PAUSES_MS[1]
        + 1_000,
);

const INSERT: &str = "INSERT INTO jit_audit.events (run, writer, seq, hash, line) \
                      SELECT $1, $2, s, h, l FROM unnest($3::int8[], $4::text[], $5::text[]) AS t(s, h, l)";

/// The most appends written in one INSERT.
const MAX_BATCH: usize = 64;

/// The same outcome, for each of the appends written together.
fn clone_result(result: &io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

/// One append asked of the writer's thread, and where its result goes.
struct Job {
    events: Vec<Event>,
    done: mpsc::SyncSender<io::Result<()>>,
}

/// An audit sink writing one hash chain per process into the PostgreSQL table at a URL
/// (see [the module](super)). Appends go through a thread of its own: calling
/// [`Sink::append`] from inside a Tokio runtime is fine.
pub struct PgSink {
    location: String,
    run: String,
    writer: String,
    jobs: mpsc::Sender<Job>,
}

impl PgSink {
    /// The sink the broker writes for run `run` at `url`: keyed when `JIT_TEST_AUDIT_KEY`
    /// or `JIT_TEST_AUDIT_KEY_FILE` (outside `target`) gives a key, signed otherwise.
    /// Starts connecting at once, on the sink's own thread.
    pub fn from_env(url: &str, run: &str, target: &Path) -> io::Result<PgSink> {
        PgSink::with(url, run, Authentication::from_env(target)?)
    }

    /// A sink whose lines are plain SHA-256, for tools and tests.
    pub fn plain(url: &str, run: &str) -> io::Result<PgSink> {
        PgSink::with(url, run, Authentication::Plain)
    }

    fn with(url: &str, run: &str, auth: Authentication) -> io::Result<PgSink> {
        settings(url)?;
        let writer = format!(
            "{}/{}/{}",
            crate::config::hostname(),
            std::process::id(),
            crate::random::hex(4)
        );
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut chain = Chain {
            url: url.to_owned(),
            run: run.to_owned(),
            writer: writer.clone(),
            auth,
            connection: None,
            seq: 0,
            head: GENESIS.to_owned(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("jit-test-audit".to_owned())
            .spawn(move || {
                // Connected while the test sets up, grants and reaps, before its first
                // append; a failure here is left for the appends' tries to report.
                runtime.block_on(chain.connect_ahead());
                // Appends that queued up meanwhile go in one INSERT (each with its own
                // seal), so threads of one process do not wait a round trip each.
                while let Ok(first) = queue.recv() {
                    let mut jobs = vec![first];
                    jobs.extend(queue.try_iter().take(MAX_BATCH - 1));
                    let batch: Vec<&[Event]> = jobs.iter().map(|j| j.events.as_slice()).collect();
                    let result = runtime.block_on(chain.append(&batch));
                    for job in jobs {
                        let _ = job.done.send(clone_result(&result));
                    }
                }
            })?;
        Ok(PgSink {
            location: redact(url),
            run: run.to_owned(),
            writer,
            jobs,
        })
    }

    /// This process's writer id: `<host>/<pid>/<random>`.
    pub fn writer(&self) -> &str {
        &self.writer
    }
}

impl Sink for PgSink {
    fn append(&self, events: &[Event]) -> io::Result<()> {
        if let Some(other) = events.iter().find(|e| e.run != self.run) {
            return Err(invalid(format!(
                "an event of run {} given to the audit sink of run {}",
                other.run, self.run
            )));
        }
        let (done, result) = mpsc::sync_channel(1);
        let job = Job {
            events: events.to_vec(),
            done,
        };
        self.jobs
            .send(job)
            .map_err(|_| io::Error::other("the audit writer's thread has ended"))?;
        result.recv_timeout(WAIT).map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer from the audit table at {} within {WAIT:?}",
                    self.location
                ),
            )
        })?
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// A connection with its prepared insert.
struct Connection {
    client: Client,
    insert: Statement,
}

/// One row about to be inserted.
struct Row {
    seq: i64,
    hash: String,
    line: String,
}

/// What one try did.
enum Tried {
    Landed,
    /// Worth trying again (the connection is dropped first).
    Transient(String),
    /// Rows under this writer's id are already there: the chain must go on from them.
    Behind(String),
    /// Trying again cannot help.
    Failed(String),
}

/// The writer's chain: where it stands, and its connection.
struct Chain {
    url: String,
    run: String,
    writer: String,
    auth: Authentication,
    connection: Option<Connection>,
    /// The last row written and its hash.
    seq: i64,
    head: String,
}

impl Chain {
    /// Writes `appends` (each events of its own append, sealed on its own) in one
    /// INSERT: all of them or none.
    async fn append(&mut self, appends: &[&[Event]]) -> io::Result<()> {
        let mut rows = self.encode(appends)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut error = String::new();
        for attempt in 0..ATTEMPTS {
            if let Some(pause) = attempt.checked_sub(1).map(|i| PAUSES_MS[i as usize]) {
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let tried = tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(&rows, attempt > 0))
                .await
                .unwrap_or_else(|_| {
                    Tried::Transient(format!("no answer within {ATTEMPT_TIMEOUT:?}"))
                });
            match tried {
                Tried::Landed => {
                    let last = rows.last().expect("rows to insert");
                    self.seq = last.seq;
                    self.head.clone_from(&last.hash);
                    return Ok(());
                }
                Tried::Behind(e) => {
                    // An earlier append landed after its caller gave up on it: the rows
                    // under this writer's id are its own, so go on from the stored head.
                    error = e;
                    if let Some(Ok((seq, head))) = self.stored_head().await {
                        (self.seq, self.head) = (seq, head);
                        rows = self.encode(appends)?;
                    }
                }
                Tried::Transient(e) => {
                    self.connection = None;
                    error = e;
                }
                Tried::Failed(e) => {
                    error = e;
                    break;
                }
            }
        }
        Err(io::Error::other(format!(
            "cannot append to the audit table at {}: {error}; check the server, or set \
             audit_log (JIT_TEST_AUDIT_LOG)",
            redact(&self.url)
        )))
    }

    /// Connects before any append is asked for, within [`ATTEMPT_TIMEOUT`].
    async fn connect_ahead(&mut self) {
        if let Ok(Ok(connection)) = tokio::time::timeout(ATTEMPT_TIMEOUT, self.connect()).await {
            self.connection = Some(connection);
        }
    }

    /// The last row this writer stored and its hash, if the connection can say.
    async fn stored_head(&self) -> Option<Result<(i64, String), tokio_postgres::Error>> {
        let connection = self.connection.as_ref()?;
        let row = connection
            .client
            .query_one(
                "SELECT seq, hash FROM jit_audit.events WHERE run = $1 AND writer = $2 \
                 ORDER BY seq DESC LIMIT 1",
                &[&self.run, &self.writer],
            )
            .await;
        Some(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The rows of `appends`, chained from the head.
    fn encode(&self, appends: &[&[Event]]) -> io::Result<Vec<Row>> {
        let mut out = Vec::with_capacity(appends.len() * 4 * 320);
        let mut head = self.head.clone();
        for events in appends {
            head = line::encode_append(&head, events, &self.auth, &mut out)?;
        }
        let lines = out.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        lines
            .zip(self.seq + 1..)
            .map(|(text, seq)| {
                let hash = line::tail_hash(text).unwrap_or_default().to_owned();
                let line = String::from_utf8(text.to_vec()).map_err(io::Error::other)?;
                Ok(Row { seq, hash, line })
            })
            .collect()
    }

    /// Inserts `rows`; when `retry`, first looks whether an earlier try landed them.
    async fn attempt(&mut self, rows: &[Row], retry: bool) -> Tried {
        if self.connection.is_none() {
            match self.connect().await {
                Ok(connection) => self.connection = Some(connection),
                Err(tried) => return tried,
            }
        }
        let connection = self.connection.as_ref().expect("connected above");
        let last = rows.last().expect("rows to insert");
        if retry {
            let stored = connection
                .client
                .query_opt(
                    "SELECT hash FROM jit_audit.events WHERE run = $1 AND writer = $2 AND seq = $3",
                    &[&self.run, &self.writer, &last.seq],
                )
                .await;
            match stored {
                Ok(Some(row)) if row.get::<_, &str>(0) == last.hash => return Tried::Landed,
                Ok(_) => {}
                Err(e) => return classify(&e),
            }
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let hashes: Vec<&str> = rows.iter().map(|r| r.hash.as_str()).collect();
        let lines: Vec<&str> = rows.iter().map(|r| r.line.as_str()).collect();
        match connection
            .client
            .execute(
                &connection.insert,
                &[&self.run, &self.writer, &seqs, &hashes, &lines],
            )
            .await
        {
            Ok(_) => Tried::Landed,
            Err(e) => classify(&e),
        }
    }

    async fn connect(&self) -> Result<Connection, Tried> {
        let client = connect(&self.url)
            .await
            .map_err(|e| Tried::Transient(e.to_string()))?;
        schema::check(&client, &redact(&self.url))
            .await
            .map_err(|e| Tried::Failed(e.to_string()))?;
        let insert = client.prepare(INSERT).await.map_err(|e| classify(&e))?;
        Ok(Connection { client, insert })
    }
}

/// Whether an error is worth another try: a lost connection or a server under strain
/// is; a refusal (no privilege, a row already there) is not.
fn classify(e: &tokio_postgres::Error) -> Tried {
    let Some(db) = e.as_db_error() else {
        return Tried::Transient(describe(e));
    };
    let code = db.code();
    let transient = ["08", "40", "53", "57"]
        .iter()
        .any(|class| code.code().starts_with(class));
    if code == &SqlState::UNIQUE_VIOLATION {
        Tried::Behind(describe(e))
    } else if transient {
        Tried::Transient(describe(e))
    } else {
        Tried::Failed(describe(e))
    }
}
