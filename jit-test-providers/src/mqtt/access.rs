//! The `mqtt` scope grammar and its translation into dynamic-security ACLs.
//!
//! | permission | ACLs of the lease's role (allow, priority 1) |
//! |---|---|
//! | `mqtt:publish:<filter>` | `publishClientSend <filter>` |
//! | `mqtt:subscribe:<filter>` | `subscribePattern <filter>`, `publishClientReceive <filter>`, `unsubscribePattern <filter>` |
//!
//! Every role also denies `#` for each ACL type (priority 0), so the plugin's default ACL
//! access never adds to the scope.

use jit_test::Permission;
use serde_json::Value;

use super::topic;

/// ACL types a role denies on `#` below its allows.
const FALLBACK_DENY: [&str; 4] = [
    "publishClientSend",
    "publishClientReceive",
    "subscribePattern",
    "unsubscribePattern",
];

/// What a permission lets a client do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send PUBLISH packets on matching topics.
    Publish,
    /// Subscribe to matching filters, receive their messages, unsubscribe.
    Subscribe,
}

/// One permission of the scope, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) action: Action,
    pub(crate) filter: String,
}

impl Access {
    /// Checks a permission of scheme `mqtt`; the error says why and shows a valid form.
    pub(crate) fn parse(permission: &Permission) -> Result<Access, String> {
        let action = match permission.action.as_str() {
            "publish" => Action::Publish,
            "subscribe" => Action::Subscribe,
            other => {
                return Err(format!(
                    "unknown action `{other}`: the actions are `publish` and `subscribe`, \
                     e.g. `mqtt:publish:devices/+/telemetry`"
                ));
            }
        };
        if !permission.args.is_empty() {
            return Err(format!(
                "`{}` takes no arguments, e.g. `mqtt:{}:devices/+/telemetry`",
                permission.action, permission.action
            ));
        }
        topic::check(&permission.resource)?;
        Ok(Access {
            action,
            filter: permission.resource.clone(),
        })
    }

    /// The dynamic-security ACL types this access is made of.
    fn acl_types(&self) -> &'static [&'static str] {
        match self.action {
            Action::Publish => &["publishClientSend"],
            Action::Subscribe => &[
                "subscribePattern",
                "publishClientReceive",
                "unsubscribePattern",
            ],
        }
    }

    /// Whether a client holding this access may do everything `other` names.
    pub(crate) fn covers(&self, other: &Access) -> bool {
        self.action == other.action && topic::covers(&self.filter, &other.filter)
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = match self.action {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        };
        write!(f, "mqtt:{action}:{}", self.filter)
    }
}

/// The ACLs of a lease's role: the scope's allows above a deny of `#` for every type.
pub(crate) fn role_acls(accesses: &[Access]) -> Vec<Value> {
    let allows = accesses.iter().flat_map(|access| {
        access
            .acl_types()
            .iter()
            .map(|acltype| topic::acl(acltype, &access.filter, true, 1))
    });
    let denies = FALLBACK_DENY
        .iter()
        .map(|acltype| topic::acl(acltype, "#", false, 0));
    allows.chain(denies).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(text: &str) -> Result<Access, String> {
        Access::parse(&text.parse().unwrap())
    }

    #[test]
    fn actions_and_their_errors() {
        assert_eq!(
            access("mqtt:publish:devices/+/telemetry").unwrap().action,
            Action::Publish
        );
        assert_eq!(
            access("mqtt:subscribe:devices/#").unwrap().action,
            Action::Subscribe
        );
        let e = access("mqtt:write:devices/a").unwrap_err();
        assert!(e.contains("`publish` and `subscribe`"), "{e}");
        let e = access("mqtt:publish(qos):devices/a").unwrap_err();
        assert!(e.contains("no arguments"), "{e}");
        let e = access("mqtt:subscribe:devices/#/x").unwrap_err();
        assert!(e.contains("`#` must be"), "{e}");
    }

    #[test]
    fn a_role_holds_the_scope_above_a_deny_of_everything() {
        let acls = role_acls(&[
            access("mqtt:publish:devices/d1/telemetry").unwrap(),
            access("mqtt:subscribe:devices/d1/commands").unwrap(),
        ]);
        let summary: Vec<(String, String, bool)> = acls
            .iter()
            .map(|a| {
                (
                    a["acltype"].as_str().unwrap().to_owned(),
                    a["topic"].as_str().unwrap().to_owned(),
                    a["allow"].as_bool().unwrap(),
                )
            })
            .collect();
        let row = |t: &str, topic: &str, allow| (t.to_owned(), topic.to_owned(), allow);
        assert_eq!(
            summary,
            vec![
                row("publishClientSend", "devices/d1/telemetry", true),
                row("subscribePattern", "devices/d1/commands", true),
                row("publishClientReceive", "devices/d1/commands", true),
                row("unsubscribePattern", "devices/d1/commands", true),
                row("publishClientSend", "#", false),
                row("publishClientReceive", "#", false),
                row("subscribePattern", "#", false),
                row("unsubscribePattern", "#", false),
            ]
        );
    }

    #[test]
    fn covering_needs_the_same_action() {
        let publish = access("mqtt:publish:devices/#").unwrap();
        assert!(publish.covers(&access("mqtt:publish:devices/d2/telemetry").unwrap()));
        assert!(!publish.covers(&access("mqtt:subscribe:devices/d2/telemetry").unwrap()));
    }
}
