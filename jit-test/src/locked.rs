//! Read-modify-write of a small file shared by many test processes, under an exclusive
//! lock (the baseline's pending entries, the minimizer's findings).

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// Opens (creating it and its directory) the file at `path`, locks it, and hands its text
/// to `change`; writes what `change` returns in its place, if anything. Returns whether
/// the file was written.
pub(crate) fn rewrite(
    path: &Path,
    change: impl FnOnce(&str) -> io::Result<Option<String>>,
) -> io::Result<bool> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let written = match change(&text)? {
        Some(new) => {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(new.as_bytes())?;
            true
        }
        None => false,
    };
    file.unlock()?;
    Ok(written)
}
