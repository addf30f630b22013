//! Reading a run from the PostgreSQL audit table, whether or not this build has it.

use std::io;

use super::verify::Contents;

/// Reads and verifies run `run` from the PostgreSQL audit table at `url` (every writer
/// of the run, on every machine; see `audit::postgres`). Needs the feature
/// `postgres-audit` of jit-test; without it, says so.
pub fn read_table(url: &str, run: &str) -> io::Result<Contents> {
    #[cfg(feature = "postgres-audit")]
    {
        super::postgres::read_run(url, run)
    }
    #[cfg(not(feature = "postgres-audit"))]
    {
        let _ = (url, run);
        Err(io::Error::other(
            "reading the PostgreSQL audit table needs the feature `postgres-audit` of jit-test",
        ))
    }
}
