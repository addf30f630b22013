//! Lines written before the format had a version (no `v`): every kind shared one free-text
//! `detail`. They are read into today's [`Event`] here, once, at the edge; nothing past
//! this module reads prose.

use serde::Deserialize;

use super::event::{Event, EventKind};

/// What a line without a version held.
#[derive(Deserialize)]
pub(super) struct Unversioned {
    ts: String,
    run: String,
    pid: u32,
    event: Kind,
    #[serde(default)]
    test: String,
    scheme: String,
    #[serde(default)]
    lease: Option<String>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Requested,
    Approved,
    Denied,
    Granted,
    GrantFailed,
    Expired,
    Revoked,
    RevokeFailed,
    ProvenDead,
    LeakDetected,
    Reaped,
    DenialAsserted,
    BeyondScope,
}

/// `ttl 30s` or `ttl 30s; reason: ...`: the ttl in milliseconds and the reason.
fn requested(detail: &str) -> (u64, Option<String>) {
    let (head, reason) = match detail.split_once("; reason: ") {
        Some((head, reason)) => (head, Some(reason.to_owned())),
        None => (detail, None),
    };
    let ttl = head
        .strip_prefix("ttl ")
        .and_then(|t| humantime::parse_duration(t.trim()).ok())
        .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    (ttl, reason)
}

/// `by <approver>` or `by <approver>: <reason>`.
fn decision(detail: &str) -> (String, String) {
    let detail = detail.strip_prefix("by ").unwrap_or(detail);
    match detail.split_once(": ") {
        Some((approver, reason)) => (approver.to_owned(), reason.to_owned()),
        None => (detail.to_owned(), String::new()),
    }
}

impl From<Unversioned> for Event {
    fn from(old: Unversioned) -> Event {
        let detail = old.detail.unwrap_or_default();
        let kind = match old.event {
            Kind::Requested => {
                let (ttl_ms, reason) = requested(&detail);
                EventKind::Requested {
                    permissions: old.permissions,
                    ttl_ms,
                    reason,
                }
            }
            Kind::Approved => EventKind::Approved {
                approver: decision(&detail).0,
            },
            Kind::Denied => {
                let (approver, reason) = decision(&detail);
                EventKind::Denied { approver, reason }
            }
            Kind::Granted => EventKind::Granted {
                permissions: old.permissions,
                expires_at: old.expires_at.unwrap_or_default(),
            },
            Kind::GrantFailed => EventKind::GrantFailed { error: detail },
            Kind::Expired => EventKind::Expired,
            Kind::Revoked => EventKind::Revoked,
            Kind::RevokeFailed => EventKind::RevokeFailed { error: detail },
            Kind::ProvenDead => EventKind::ProvenDead { refusal: detail },
            Kind::LeakDetected => EventKind::LeakDetected,
            Kind::Reaped => EventKind::Reaped,
            Kind::DenialAsserted => EventKind::DenialAsserted { expression: detail },
            Kind::BeyondScope if old.permissions.is_empty() => EventKind::BeyondScope {
                privileges: detail.split(", ").map(str::to_owned).collect(),
            },
            Kind::BeyondScope => EventKind::BeyondScope {
                privileges: old.permissions,
            },
        };
        Event {
            ts: old.ts,
            run: old.run,
            pid: old.pid,
            host: String::new(),
            shard: None,
            test: old.test,
            scheme: old.scheme,
            lease: old.lease,
            principal: old.principal,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_details_give_ttl_and_reason() {
        assert_eq!(requested("ttl 30s"), (30_000, None));
        assert_eq!(
            requested("ttl 1m 30s; reason: reads orders; nothing else"),
            (90_000, Some("reads orders; nothing else".into()))
        );
        assert_eq!(requested("something else"), (0, None));
    }

    #[test]
    fn decisions_give_approver_and_reason() {
        assert_eq!(decision("by max-ttl"), ("max-ttl".into(), String::new()));
        assert_eq!(
            decision("by policy: pg:drop is not allowed: ever"),
            ("policy".into(), "pg:drop is not allowed: ever".into())
        );
    }
}
