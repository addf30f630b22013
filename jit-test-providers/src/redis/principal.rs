//! ACL user names that carry their lease: `jit_e<expiry>_<lease id>`.
//!
//! Redis users have no comment field, so the reaper's facts live in the name itself: the
//! expiry (seconds since the Unix epoch, by the server's clock) and the lease id. A name
//! is written once, by the same `ACL SETUSER` that creates the user, and can never change
//! afterwards; `ACL USERS` shows it to the admin of any machine. (A registry hash beside
//! the users would live in the keyspace that tests share: a `FLUSHALL` in a fixture, or a
//! scope such as `redis:readwrite:*`, could wipe or rewrite it, and it is written by a
//! second command that a crash can separate from the first.)

use std::fmt;

/// Prefix of every user the provider creates.
pub const PREFIX: &str = "jit_";

/// A user name with its lease metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserName {
    /// Expiry, in seconds since the Unix epoch by the server's clock.
    pub(crate) expires_at: u64,
    /// The lease id (`[a-z0-9_]`).
    pub(crate) lease: String,
}

impl UserName {
    /// Reads a name the provider made; `None` for anything else.
    pub(crate) fn parse(name: &str) -> Option<UserName> {
        let rest = name.strip_prefix(PREFIX)?.strip_prefix('e')?;
        let (expiry, lease) = rest.split_once('_')?;
        let lease_ok = !lease.is_empty()
            && lease
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if expiry.is_empty() || !expiry.chars().all(|c| c.is_ascii_digit()) || !lease_ok {
            return None;
        }
        Some(UserName {
            expires_at: expiry.parse().ok()?,
            lease: lease.to_owned(),
        })
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}e{}_{}", self.expires_at, self.lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        let name = UserName {
            expires_at: 1_790_000_000,
            lease: "3f9a2c1b_4012_7".into(),
        };
        assert_eq!(name.to_string(), "jit_e1790000000_3f9a2c1b_4012_7");
        assert_eq!(UserName::parse(&name.to_string()), Some(name));
        for other in [
            "default",
            "jit_",
            "jit_e_abc",
            "jit_e12_",
            "jit_e12x_abc",
            "jit_e12_ABC",
            "jit_e99999999999999999999999_a",
            "app_e12_abc",
        ] {
            assert_eq!(UserName::parse(other), None, "{other}");
        }
    }
}
