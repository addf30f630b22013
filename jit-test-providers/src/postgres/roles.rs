//! The names and locks every process agrees on: the login roles' prefix, their group,
//! and the advisory-lock keys.

/// Prefix of every login role's name.
pub const PREFIX: &str = "jit_";

/// The NOLOGIN group every login role is a member of; `pg_hba.conf` names it as
/// `+jit_lease`.
pub const GROUP_ROLE: &str = "jit_lease";

/// First key of every advisory lock the provider takes (`"jitt"`).
pub(crate) const LOCK_CLASS: i32 = 0x6a69_7474;

/// The advisory lock (`pg_advisory_lock(a, b)`) a reaper holds while it works. A session
/// holding it keeps every reaper away (they skip rather than wait).
pub const REAPER_LOCK: (i32, i32) = (LOCK_CLASS, 0);
