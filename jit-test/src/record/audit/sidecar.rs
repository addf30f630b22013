//! Files kept beside the log: its run index, its checkpoints, a torn tail set aside, a
//! log being pruned.

use std::path::{Path, PathBuf};

/// The path of the file named like `path`'s with `suffix` appended, in the same folder.
pub(super) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}
