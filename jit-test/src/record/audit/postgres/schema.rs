//! The table and its migrations: numbered, each applied once, in one transaction under
//! an advisory lock, so that running them again (or on many machines at once) is safe.

use std::io;

use super::connection::{block_on, connect, describe, invalid};

/// The schema version this crate writes and reads.
pub const VERSION: i32 = 1;

/// The migrations: version, what it does, its SQL.
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "the events table: one hash chain per writer and run",
    "CREATE TABLE jit_audit.events (
         run text NOT NULL,
         writer text NOT NULL,
         seq bigint NOT NULL CHECK (seq > 0),
         hash text NOT NULL,
         line text NOT NULL,
         stored_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (run, writer, seq)
     );
     REVOKE ALL ON jit_audit.events FROM PUBLIC;",
)];

/// The advisory lock held while migrating: (class, key), unlike the providers' locks.
const LOCK: (i32, i32) = (0x6a69_7461, 1);

/// Brings the audit table at `url` to [`VERSION`] (as its owner: the role `url` logs in
/// as) and, when `writer` names a role, grants it `INSERT` and `SELECT` on it and
/// nothing else. Returns the versions applied now (none when it was up to date).
pub fn migrate(url: &str, writer: Option<&str>) -> io::Result<Vec<i32>> {
    if let Some(role) = writer
        && !is_identifier(role)
    {
        return Err(invalid(format!(
            "--writer {role:?}: a role name is letters, digits and _ (not starting with a digit)"
        )));
    }
    block_on(async {
        let mut client = connect(url).await?;
        let failed = |e: tokio_postgres::Error| {
            io::Error::other(format!(
                "migrating the audit table at {url}: {}",
                describe(&e)
            ))
        };
        let tx = client.transaction().await.map_err(failed)?;
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK.0, &LOCK.1])
            .await
            .map_err(failed)?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS jit_audit;
             CREATE TABLE IF NOT EXISTS jit_audit.migrations (
                 version int PRIMARY KEY,
                 description text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );
             REVOKE ALL ON jit_audit.migrations FROM PUBLIC;",
        )
        .await
        .map_err(failed)?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM jit_audit.migrations", &[])
            .await
            .map_err(failed)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut now = Vec::new();
        for (version, description, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(sql).await.map_err(failed)?;
            tx.execute(
                "INSERT INTO jit_audit.migrations (version, description) VALUES ($1, $2)",
                &[version, description],
            )
            .await
            .map_err(failed)?;
            now.push(*version);
        }
        if let Some(role) = writer {
            tx.batch_execute(&format!(
                "GRANT USAGE ON SCHEMA jit_audit TO \"{role}\";
                 GRANT SELECT, INSERT ON jit_audit.events TO \"{role}\";
                 GRANT SELECT ON jit_audit.migrations TO \"{role}\";"
            ))
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        Ok(now)
    })
}

/// Whether `name` can be quoted as an identifier without escaping.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() < 64
}

/// Fails unless the table at the other end of `client` is at [`VERSION`] or later,
/// saying which command makes it so.
pub(super) async fn check(client: &tokio_postgres::Client, url: &str) -> io::Result<()> {
    let version: Option<i32> = match client
        .query_one("SELECT max(version) FROM jit_audit.migrations", &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(e) if e.as_db_error().is_some() => None,
        Err(e) => return Err(io::Error::other(describe(&e))),
    };
    if version.is_some_and(|v| v >= VERSION) {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "the audit table at {url} is not set up (schema version {}, this jit-test needs {VERSION}): \
         run `jit-test migrate {url} --writer <role>` as the table's owner",
        version.map_or("none".to_owned(), |v| v.to_string())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_role_names_are_granted() {
        assert!(is_identifier("audit_writer"));
        assert!(is_identifier("_w1"));
        assert!(!is_identifier("1w"));
        assert!(!is_identifier("w\"; DROP TABLE x; --"));
        assert!(!is_identifier(""));
        let err = migrate("host=127.0.0.1", Some("a b")).unwrap_err();
        assert!(err.to_string().contains("--writer"), "{err}");
    }
}
