//! Server-side expiry: a one-shot event per user, created before the user, which drops
//! the user and kills its connections at the ttl by the server's clock, whether or not
//! any jit-test process is still alive.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ident::{quote_account, quote_ident, quote_literal};

/// The database that holds every lease's event (created by the provider if missing).
pub const EVENT_SCHEMA: &str = "jit_test";

/// What the event's `COMMENT` (64 characters at most) carries for the reaper: when the
/// lease expires, by the Unix clock, and which process holds it. The event's name is the
/// user's, so the lease id is there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventMeta {
    /// Expiry in seconds since the Unix epoch.
    pub(crate) expires_at: u64,
    /// The process that holds the lease.
    pub(crate) pid: u32,
}

/// `CREATE EVENT`: at `CURRENT_TIMESTAMP + ttl` (whole seconds, rounded down), drop the
/// user and kill its connections. The event is preserved once it ran, so the reaper can
/// tell the lease is over and record it; revocation drops it.
pub(crate) fn create_event_sql(user: &str, host: &str, ttl: Duration, meta: EventMeta) -> String {
    let comment = serde_json::to_string(&meta).expect("plain data");
    format!(
        "CREATE EVENT {schema}.{event} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL {secs} SECOND \
         ON COMPLETION PRESERVE COMMENT {comment} \
         DO BEGIN DROP USER IF EXISTS {account}; KILL CONNECTION USER {user}; END",
        schema = quote_ident(EVENT_SCHEMA),
        event = quote_ident(user),
        secs = ttl.as_secs().max(1),
        comment = quote_literal(&comment),
        account = quote_account(user, host),
        user = quote_literal(user),
    )
}

/// `DROP EVENT IF EXISTS` for the user's event.
pub(crate) fn drop_event_sql(user: &str) -> String {
    format!(
        "DROP EVENT IF EXISTS {}.{}",
        quote_ident(EVENT_SCHEMA),
        quote_ident(user)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_drops_the_user_then_kills_its_connections_and_fits_its_comment() {
        let meta = EventMeta {
            expires_at: u64::from(u32::MAX) * 4,
            pid: u32::MAX,
        };
        let sql = create_event_sql("jit_a", "127.0.0.1", Duration::from_millis(2500), meta);
        assert!(sql.starts_with("CREATE EVENT `jit_test`.`jit_a` ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 2 SECOND"), "{sql}");
        let drop = sql
            .find("DROP USER IF EXISTS 'jit_a'@'127.0.0.1';")
            .unwrap();
        let kill = sql.find("KILL CONNECTION USER 'jit_a';").unwrap();
        assert!(drop < kill);
        // MariaDB keeps 64 characters of an event's comment.
        assert!(serde_json::to_string(&meta).unwrap().len() <= 64);
        assert_eq!(
            drop_event_sql("jit_a"),
            "DROP EVENT IF EXISTS `jit_test`.`jit_a`"
        );
    }
}
