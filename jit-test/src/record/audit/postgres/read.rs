//! Reading a run back from the table: every writer's chain, and the leases across them.

use std::io;

use super::super::key::HmacKey;
use super::super::problem::{Finding, Problem};
use super::super::verify::{Contents, read_chains};
use super::connection::{block_on, connect, describe, redact};
use super::schema;

/// The key a line names, if any (the rest of the line is read by the chain's check).
#[derive(serde::Deserialize)]
struct Keyed {
    key: Option<String>,
}

/// Reads every row of run `run` from the audit table at `url` and verifies it: each
/// writer's chain has no gap and holds together (HMAC lines under the key configured in
/// the environment, as for the file; every row names the key of the writer's first
/// row), and every lease granted by any writer of the run
/// was revoked (or reaped) and proven dead. The events come back in time order; a
/// problem's `line` counts rows ordered by writer and sequence number.
pub fn read_run(url: &str, run: &str) -> io::Result<Contents> {
    let key = HmacKey::from_env(&crate::config::target_dir())?;
    let shown = redact(url);
    let rows = block_on(async {
        let client = connect(url).await?;
        schema::check(&client, &shown).await?;
        client
            .query(
                "SELECT writer, seq, line FROM jit_audit.events WHERE run = $1 \
                 ORDER BY writer, seq",
                &[&run],
            )
            .await
            .map_err(|e| {
                io::Error::other(format!(
                    "reading run {run} from the audit table at {shown}: {}",
                    describe(&e)
                ))
            })
    })?;
    let mut problems = Vec::new();
    let mut chains: Vec<Vec<&[u8]>> = Vec::new();
    // The writer, its last row, and the key its first row names.
    let mut current: Option<(&str, i64, Option<String>)> = None;
    for (number, row) in rows.iter().enumerate() {
        let (writer, seq, line): (&str, i64, &str) = (row.get(0), row.get(1), row.get(2));
        let key = serde_json::from_str::<Keyed>(line).ok().and_then(|k| k.key);
        let (expected, writer_key) = match current.take() {
            Some((w, last, writer_key)) if w == writer => (last + 1, writer_key),
            _ => {
                chains.push(Vec::new());
                (1, key.clone())
            }
        };
        let mut problem = |finding| {
            problems.push(Problem {
                line: number + 1,
                finding,
            })
        };
        if seq != expected {
            problem(Finding::Gap {
                writer: writer.to_owned(),
                expected: u64::try_from(expected).unwrap_or_default(),
                found: u64::try_from(seq).unwrap_or_default(),
            });
        }
        if key != writer_key {
            problem(Finding::ForeignRow {
                writer: writer.to_owned(),
                key: key.unwrap_or_else(|| "none".to_owned()),
            });
        }
        current = Some((writer, seq, writer_key));
        chains
            .last_mut()
            .expect("pushed above")
            .push(line.as_bytes());
    }
    let mut contents = read_chains(chains, key.as_ref(), problems);
    contents.events.sort_by(|a, b| a.ts.cmp(&b.ts));
    Ok(contents)
}
