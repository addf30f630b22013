//! The `nats` scope: permissions checked as NATS subjects, and turned into a user's
//! publish/subscribe allow lists.

use jit_test::Permission;

use super::jwt::UserPermissions;

/// The actions of the scheme, for error messages.
const ACTIONS: &str = "publish, subscribe, subscribe(queue), request, respond, respond(queue)";

/// One checked permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Publish to the subject.
    Publish(String),
    /// Subscribe to the subject, in the queue group if one is given.
    Subscribe(String, Option<String>),
    /// Publish requests to the subject and receive their replies in the own inbox.
    Request(String),
    /// Subscribe to the subject (in the queue group) and reply once to each request.
    Respond(String, Option<String>),
}

impl Grant {
    /// Checks `permission`; the error says why and what would be accepted.
    pub(crate) fn parse(permission: &Permission) -> Result<Grant, String> {
        let subject = permission.resource.clone();
        check_subject(&subject)?;
        let queue = match permission.args.as_slice() {
            [] => None,
            [queue] if matches!(permission.action.as_str(), "subscribe" | "respond") => {
                check_token(queue, "queue group")?;
                Some(queue.clone())
            }
            _ => {
                return Err(format!(
                    "only `subscribe` and `respond` take an argument, one queue group: \
                     write `nats:subscribe(workers):{subject}`"
                ));
            }
        };
        match permission.action.as_str() {
            "publish" => Ok(Grant::Publish(subject)),
            "subscribe" => Ok(Grant::Subscribe(subject, queue)),
            "request" => Ok(Grant::Request(subject)),
            "respond" => Ok(Grant::Respond(subject, queue)),
            other => Err(format!(
                "unknown action `{other}`; the actions are {ACTIONS}, e.g. `nats:publish:{subject}`"
            )),
        }
    }
}

/// A NATS subject the server would accept in a permission: dot-separated non-empty
/// tokens of letters, digits, `_`, `-` and `$`; `*` as a whole token; `>` as the whole
/// last token. `_INBOX` subjects are the credentials' own and `$SYS` the server's: both
/// are refused.
pub(crate) fn check_subject(subject: &str) -> Result<(), String> {
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        match *token {
            "" => {
                return Err(format!(
                    "`{subject}` has an empty token: NATS subjects are tokens joined by single dots, e.g. `orders.placed`"
                ));
            }
            "*" => {}
            ">" if i + 1 == tokens.len() => {}
            ">" => {
                return Err(format!(
                    "`>` must be the last token of `{subject}`, e.g. `orders.>`"
                ));
            }
            _ => check_token(token, "subject token")?,
        }
    }
    match tokens[0] {
        "_INBOX" => Err(format!(
            "`{subject}`: every credential gets its own inbox (`_INBOX.jit_<lease>.>`) for replies; \
             use `nats:request:<subject>` instead of granting inboxes"
        )),
        "$SYS" => Err(format!("`{subject}`: `$SYS` subjects belong to the server")),
        _ => Ok(()),
    }
}

fn check_token(token: &str, what: &str) -> Result<(), String> {
    if let Some(bad) = token
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-$".contains(*c)))
    {
        return Err(format!(
            "{bad:?} is not allowed in the {what} `{token}`: use letters, digits, `_`, `-`, `$`, \
             and `*` or `>` only as whole tokens"
        ));
    }
    Ok(())
}

/// The allow lists of `grants`, plus publish and subscribe on the credential's own
/// `inbox` (`_INBOX.jit_<lease>`), where its replies arrive.
pub(crate) fn permissions(grants: &[Grant], inbox: &str) -> UserPermissions {
    let own = format!("{inbox}.>");
    let mut out = UserPermissions {
        publish: vec![own.clone()],
        subscribe: vec![own],
        respond: false,
    };
    let with_queue = |subject: &str, queue: &Option<String>| match queue {
        Some(q) => format!("{subject} {q}"),
        None => subject.to_owned(),
    };
    for grant in grants {
        match grant {
            Grant::Publish(s) | Grant::Request(s) => out.publish.push(s.clone()),
            Grant::Subscribe(s, q) => out.subscribe.push(with_queue(s, q)),
            Grant::Respond(s, q) => {
                out.subscribe.push(with_queue(s, q));
                out.respond = true;
            }
        }
    }
    out.publish.dedup();
    out.subscribe.dedup();
    out
}

/// Whether a subject pattern matches every subject `other` matches (both may hold `*`
/// and `>`).
pub(crate) fn covers(pattern: &str, other: &str) -> bool {
    let (mut p, mut o) = (pattern.split('.'), other.split('.'));
    loop {
        match (p.next(), o.next()) {
            (Some(">"), Some(_)) => return true,
            (None, None) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Whether `grants` allow what the `deny` permission names (same action kind, a subject
/// the grant covers).
pub(crate) fn allows(grants: &[Grant], deny: &Grant) -> bool {
    let publishes = |g: &Grant| match g {
        Grant::Publish(s) | Grant::Request(s) => Some(s.clone()),
        _ => None,
    };
    let subscribes = |g: &Grant| match g {
        Grant::Subscribe(s, _) | Grant::Respond(s, _) => Some(s.clone()),
        _ => None,
    };
    let side = if publishes(deny).is_some() {
        publishes
    } else {
        subscribes
    };
    let denied = side(deny).expect("the side of the denied grant");
    grants
        .iter()
        .filter_map(side)
        .any(|granted| covers(&granted, &denied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Grant, String> {
        Grant::parse(&text.parse().unwrap())
    }

    #[test]
    fn accepts_the_grammar() {
        assert_eq!(
            parse("nats:publish:orders.placed"),
            Ok(Grant::Publish("orders.placed".into()))
        );
        assert_eq!(
            parse("nats:subscribe:orders.>"),
            Ok(Grant::Subscribe("orders.>".into(), None))
        );
        assert_eq!(
            parse("nats:subscribe(workers):orders.*"),
            Ok(Grant::Subscribe("orders.*".into(), Some("workers".into())))
        );
        assert_eq!(
            parse("nats:request:billing.charge"),
            Ok(Grant::Request("billing.charge".into()))
        );
        assert_eq!(
            parse("nats:respond:billing.*"),
            Ok(Grant::Respond("billing.*".into(), None))
        );
    }

    #[test]
    fn rejects_what_nats_would_and_says_why() {
        for (bad, why) in [
            ("nats:publish:orders..placed", "empty token"),
            ("nats:publish:orders.>.x", "last token"),
            ("nats:publish:orders.pl*", "'*'"),
            ("nats:publish:orders:placed", "':'"),
            ("nats:subscribe:_INBOX.>", "own inbox"),
            ("nats:subscribe:$SYS.>", "server"),
            ("nats:fly:orders", "publish, subscribe"),
            ("nats:publish(q):orders", "only `subscribe`"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn permissions_add_the_own_inbox_and_queue_groups() {
        let grants = [
            parse("nats:request:billing.charge").unwrap(),
            parse("nats:respond(workers):billing.*").unwrap(),
        ];
        let p = permissions(&grants, "_INBOX.jit_a");
        assert_eq!(p.publish, ["_INBOX.jit_a.>", "billing.charge"]);
        assert_eq!(p.subscribe, ["_INBOX.jit_a.>", "billing.* workers"]);
        assert!(p.respond);
    }

    #[test]
    fn coverage_follows_nats_wildcards() {
        assert!(covers("orders.>", "orders.placed"));
        assert!(covers("orders.>", "orders.*"));
        assert!(covers("orders.*", "orders.placed"));
        assert!(!covers("orders.*", "orders.>"));
        assert!(!covers("orders.*", "orders.a.b"));
        assert!(!covers("orders.placed", "orders.*"));
        assert!(!covers("orders", "orders.placed"));
        let grants = [parse("nats:publish:billing.*").unwrap()];
        assert!(allows(
            &grants,
            &parse("nats:publish:billing.refund").unwrap()
        ));
        assert!(!allows(
            &grants,
            &parse("nats:subscribe:billing.refund").unwrap()
        ));
    }
}
