//! Scope translation: `amqp` permissions into RabbitMQ's per-vhost permission regexes.
//!
//! RabbitMQ grants a user three regular expressions per vhost (configure, write, read)
//! matched against resource names, and per vhost and exchange two more (topic write and
//! read) matched against routing keys. Every regex reaching the server is built by
//! [`name_regex`], which anchors it and escapes every character but the `*` glob, so
//! `orders.q` never also matches `ordersXq` or `orders.q.evil`.

use std::collections::BTreeMap;

use jit_test::Permission;

/// The vhost of a resource that starts with `/`.
pub const DEFAULT_VHOST: &str = "/";

/// The regex that matches no resource name.
pub const NOTHING: &str = "^$";

const FORMS: &str = "write `amqp:read:/orders.q`, `amqp:write:/orders.x`, \
    `amqp:configure:/orders.*`, `amqp:read:shop/orders.q` (vhost `shop`) or \
    `amqp:topic_write:/orders.topic:orders.eu.*`";

/// What a permission allows on a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Declare and delete queues and exchanges (`configure`).
    Configure,
    /// Publish to exchanges, bind queues to them as destination (`write`).
    Write,
    /// Consume from queues, bind from exchanges as source (`read`).
    Read,
    /// Publish to a topic exchange with these routing keys (`topic_write`).
    TopicWrite,
    /// Bind from a topic exchange with these routing keys (`topic_read`).
    TopicRead,
}

impl Action {
    fn parse(action: &str) -> Option<Action> {
        Some(match action {
            "configure" => Action::Configure,
            "write" => Action::Write,
            "read" => Action::Read,
            "topic_write" => Action::TopicWrite,
            "topic_read" => Action::TopicRead,
            _ => return None,
        })
    }

    fn is_topic(self) -> bool {
        matches!(self, Action::TopicWrite | Action::TopicRead)
    }
}

/// One validated permission: an action on a name (glob) in a vhost; for topic
/// permissions, `name` is the exchange and `key` the routing-key glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What is allowed.
    pub action: Action,
    /// The vhost.
    pub vhost: String,
    /// The queue or exchange name, `*` a glob.
    pub name: String,
    /// The routing-key glob of a topic permission.
    pub key: Option<String>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-*".contains(c)
}

fn check_name(what: &str, text: &str, glob: bool) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    match text
        .chars()
        .find(|&c| !is_name_char(c) || (!glob && c == '*'))
    {
        Some(c) => Err(format!(
            "character {c:?} is not allowed in the {what} (letters, digits, `_`, `.`, `-`{})",
            if glob { ", `*` as a glob" } else { "" }
        )),
        None => Ok(()),
    }
}

impl Rule {
    /// Parses and checks one permission of the `amqp` scheme.
    pub fn parse(permission: &Permission) -> Result<Rule, String> {
        let action = Action::parse(&permission.action).ok_or_else(|| {
            format!(
                "unknown action `{}`: the actions are configure, write, read, topic_write, \
                 topic_read; {FORMS}",
                permission.action
            )
        })?;
        if !permission.args.is_empty() {
            return Err(format!(
                "`{}` takes no arguments; {FORMS}",
                permission.action
            ));
        }
        let resource = permission.resource.as_str();
        let (vhost, rest) = match resource.strip_prefix('/') {
            Some(rest) => (DEFAULT_VHOST, rest),
            None => resource.split_once('/').ok_or_else(|| {
                format!(
                    "`{resource}` names no vhost: start it with `/` for the default vhost; {FORMS}"
                )
            })?,
        };
        if vhost != DEFAULT_VHOST {
            check_name("vhost", vhost, false)?;
        }
        let (name, key) = match (action.is_topic(), rest.split_once(':')) {
            (true, Some((exchange, key))) => (exchange, Some(key)),
            (true, None) => {
                return Err(format!(
                    "a topic permission names an exchange and a routing-key glob: \
                     `amqp:{}:/orders.topic:orders.eu.*`",
                    permission.action
                ));
            }
            (false, _) => (rest, None),
        };
        check_name("name", name, !action.is_topic())?;
        if let Some(key) = key {
            check_name("routing key", key, true)?;
        }
        Ok(Rule {
            action,
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            key: key.map(str::to_owned),
        })
    }
}

/// The anchored, escaped regex of one name glob: `orders.*` → `^orders\..*$`.
pub fn name_regex(glob: &str) -> String {
    format!("^{}$", alternative(glob))
}

/// A glob as an unanchored regex: every character escaped but `*`, which becomes `.*`.
fn alternative(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out
}

/// The anchored regex matching any of `globs`, or [`NOTHING`].
pub fn any_regex<'a>(globs: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = globs.into_iter().map(alternative).collect();
    match parts.len() {
        0 => NOTHING.to_owned(),
        1 => format!("^{}$", parts[0]),
        _ => format!("^(?:{})$", parts.join("|")),
    }
}

/// What one vhost grants: the three regexes of `PUT /api/permissions/{vhost}/{user}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VhostGrant {
    /// Name globs that may be configured.
    pub configure: Vec<String>,
    /// Name globs that may be written.
    pub write: Vec<String>,
    /// Name globs that may be read.
    pub read: Vec<String>,
    /// Per exchange, the routing-key globs of topic writes and reads.
    pub topics: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

/// The whole scope, by vhost (sorted, so the first is deterministic).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// What each vhost grants.
    pub vhosts: BTreeMap<String, VhostGrant>,
}

impl Plan {
    /// Translates validated permissions.
    pub fn new(permissions: &[Permission]) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for permission in permissions {
            let rule = Rule::parse(permission)?;
            let vhost = plan.vhosts.entry(rule.vhost).or_default();
            let name = rule.name;
            match (rule.action, rule.key) {
                (Action::Configure, _) => vhost.configure.push(name),
                (Action::Write, _) => vhost.write.push(name),
                (Action::Read, _) => vhost.read.push(name),
                (Action::TopicWrite, Some(key)) => {
                    vhost.topics.entry(name).or_default().0.push(key)
                }
                (Action::TopicRead, Some(key)) => vhost.topics.entry(name).or_default().1.push(key),
                (_, None) => unreachable!("Rule::parse gives topic rules a key"),
            }
        }
        Ok(plan)
    }

    /// The vhost a credential connects to by default: `/` when the scope names it, else
    /// the first in name order.
    pub fn default_vhost(&self) -> String {
        if self.vhosts.contains_key(DEFAULT_VHOST) || self.vhosts.is_empty() {
            DEFAULT_VHOST.to_owned()
        } else {
            self.vhosts.keys().next().cloned().unwrap_or_default()
        }
    }

    /// Whether the plan allows some of what `rule` names (globs overlap).
    pub fn holds(&self, rule: &Rule) -> bool {
        let Some(vhost) = self.vhosts.get(&rule.vhost) else {
            return false;
        };
        let any = |globs: &[String], other: &str| globs.iter().any(|g| overlap(g, other));
        match (rule.action, &rule.key) {
            (Action::Configure, _) => any(&vhost.configure, &rule.name),
            (Action::Write, _) => any(&vhost.write, &rule.name),
            (Action::Read, _) => any(&vhost.read, &rule.name),
            (topic, key) => {
                // Without a topic permission for the exchange, every routing key passes.
                let base = if topic == Action::TopicWrite {
                    &vhost.write
                } else {
                    &vhost.read
                };
                let key = key.as_deref().unwrap_or("*");
                any(base, &rule.name)
                    && match vhost.topics.get(&rule.name) {
                        None => true,
                        Some((w, r)) => any(if topic == Action::TopicWrite { w } else { r }, key),
                    }
            }
        }
    }

    /// The vhosts where some name may be written or read, so that routing keys matter.
    pub fn vhosts_with_routing(&self) -> impl Iterator<Item = &str> {
        self.vhosts
            .iter()
            .filter(|(_, g)| !g.write.is_empty() || !g.read.is_empty())
            .map(|(name, _)| name.as_str())
    }

    /// What the user can do beyond the scope, as RabbitMQ sees it: on a topic exchange it
    /// may write or read without a topic permission for that exchange, any routing key
    /// passes. `topic_exchanges` lists the topic exchanges of each vhost.
    pub fn beyond_scope(&self, topic_exchanges: &BTreeMap<String, Vec<String>>) -> Vec<String> {
        let mut found = Vec::new();
        for (vhost, grant) in &self.vhosts {
            let prefix = if vhost == DEFAULT_VHOST {
                String::from("/")
            } else {
                format!("{vhost}/")
            };
            let exchanges = topic_exchanges
                .get(vhost)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (action, globs) in [("topic_write", &grant.write), ("topic_read", &grant.read)] {
                let open = exchanges.iter().filter(|x| {
                    !grant.topics.contains_key(*x) && globs.iter().any(|g| overlap(g, x))
                });
                for exchange in open {
                    found.push(format!(
                        "amqp:{action}:{prefix}{exchange}:* (no topic permission: any routing \
                         key on this topic exchange)"
                    ));
                }
            }
        }
        found
    }
}

/// Whether two `*` globs match at least one common name.
pub fn overlap(a: &str, b: &str) -> bool {
    fn go(a: &[u8], b: &[u8]) -> bool {
        match (a.first(), b.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&a[1..], b) || (!b.is_empty() && go(a, &b[1..])),
            (_, Some(b'*')) => go(a, &b[1..]) || (!a.is_empty() && go(&a[1..], b)),
            (Some(x), Some(y)) => x == y && go(&a[1..], &b[1..]),
            _ => false,
        }
    }
    go(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Result<Rule, String> {
        Rule::parse(&text.parse().unwrap())
    }

    fn plan(scope: &str) -> Plan {
        Plan::new(&jit_test::Scope::parse(scope).unwrap().permissions).unwrap()
    }

    /// What RabbitMQ's regex would match, for the regexes `name_regex` makes: a tiny
    /// matcher of `^`, `$`, `\x`, `.*`, `(?:a|b)` and literals, enough to show the
    /// anchoring and escaping.
    fn matches(regex: &str, name: &str) -> bool {
        let body = regex
            .strip_prefix('^')
            .and_then(|r| r.strip_suffix('$'))
            .unwrap();
        let alternatives: Vec<&str> = match body.strip_prefix("(?:") {
            Some(inner) => inner.strip_suffix(')').unwrap().split('|').collect(),
            None => vec![body],
        };
        alternatives.iter().any(|alt| {
            let mut glob = String::new();
            let mut chars = alt.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => glob.push(chars.next().unwrap()),
                    '.' => {
                        assert_eq!(chars.next(), Some('*'), "a bare `.` in {regex}");
                        glob.push('*');
                    }
                    c => glob.push(c),
                }
            }
            overlap(&glob, name)
        })
    }

    #[test]
    fn regexes_are_anchored_and_escaped() {
        assert_eq!(name_regex("orders.q"), r"^orders\.q$");
        assert_eq!(name_regex("orders.*"), r"^orders\..*$");
        assert_eq!(name_regex("a-b_c"), r"^a\-b_c$");
        assert!(matches(&name_regex("orders.q"), "orders.q"));
        assert!(!matches(&name_regex("orders.q"), "ordersXq"));
        assert!(!matches(&name_regex("orders.q"), "orders.q.evil"));
        assert!(!matches(&name_regex("orders.q"), "evil.orders.q"));
        assert!(matches(&name_regex("orders.*"), "orders.eu"));
        assert!(!matches(&name_regex("orders.*"), "ordersXeu"));
        assert_eq!(any_regex([]), NOTHING);
        let both = any_regex(["a.q", "b.*"]);
        assert_eq!(both, r"^(?:a\.q|b\..*)$");
        assert!(matches(&both, "a.q") && matches(&both, "b.x") && !matches(&both, "a.qq"));
    }

    #[test]
    fn every_non_glob_character_is_escaped_or_alphanumeric() {
        for c in (0u8..128)
            .map(char::from)
            .filter(|&c| is_name_char(c) && c != '*')
        {
            let regex = name_regex(&c.to_string());
            let inner = &regex[1..regex.len() - 1];
            assert!(
                inner.len() == 1 && (c.is_ascii_alphanumeric() || c == '_')
                    || inner == format!("\\{c}"),
                "{c:?} → {regex}"
            );
        }
    }

    #[test]
    fn resources_name_their_vhost() {
        let r = rule("amqp:read:/orders.q").unwrap();
        assert_eq!(
            (r.action, r.vhost.as_str(), r.name.as_str()),
            (Action::Read, "/", "orders.q")
        );
        let r = rule("amqp:configure:shop/orders.*").unwrap();
        assert_eq!((r.vhost.as_str(), r.name.as_str()), ("shop", "orders.*"));
        let r = rule("amqp:topic_write:/orders.topic:orders.eu.*").unwrap();
        assert_eq!(r.key.as_deref(), Some("orders.eu.*"));
        assert_eq!(r.name, "orders.topic");
    }

    #[test]
    fn rejections_say_why_and_show_a_valid_form() {
        let cases = [
            ("amqp:consume:/orders.q", "unknown action"),
            ("amqp:read:orders.q", "names no vhost"),
            ("amqp:read:/a/b", "not allowed in the name"),
            ("amqp:read:/a:b", "not allowed in the name"),
            ("amqp:read:/", "the name is empty"),
            ("amqp:read:sh*p/q", "not allowed in the vhost"),
            ("amqp:topic_write:/orders.topic", "routing-key glob"),
            ("amqp:topic_write:/orders.*:a", "not allowed in the name"),
            ("amqp:read(x):/q", "takes no arguments"),
        ];
        for (text, reason) in cases {
            let e = rule(text).unwrap_err();
            assert!(e.contains(reason), "{text}: {e}");
        }
        assert!(
            rule("amqp:consume:/q")
                .unwrap_err()
                .contains("amqp:read:/orders.q")
        );
    }

    #[test]
    fn a_plan_groups_by_vhost() {
        let p = plan(
            "amqp:read:/orders.q, amqp:write:/amq.default, amqp:write:/orders.x, \
             amqp:configure:shop/tmp.*, amqp:topic_write:/orders.x:eu.*",
        );
        let root = &p.vhosts["/"];
        assert_eq!(root.read, ["orders.q"]);
        assert_eq!(root.write, ["amq.default", "orders.x"]);
        assert!(root.configure.is_empty());
        assert_eq!(root.topics["orders.x"], (vec!["eu.*".to_owned()], vec![]));
        assert_eq!(p.vhosts["shop"].configure, ["tmp.*"]);
        assert_eq!(p.default_vhost(), "/");
        assert_eq!(plan("amqp:read:shop/q").default_vhost(), "shop");
    }

    #[test]
    fn holds_sees_overlapping_globs() {
        let p =
            plan("amqp:configure:/orders.*, amqp:write:/orders.x, amqp:topic_write:/orders.x:eu.*");
        assert!(p.holds(&rule("amqp:configure:/orders.q").unwrap()));
        assert!(p.holds(&rule("amqp:configure:/*.q").unwrap()));
        assert!(!p.holds(&rule("amqp:configure:/billing.q").unwrap()));
        assert!(!p.holds(&rule("amqp:configure:shop/orders.q").unwrap()));
        assert!(!p.holds(&rule("amqp:read:/orders.x").unwrap()));
        assert!(p.holds(&rule("amqp:topic_write:/orders.x:eu.fr").unwrap()));
        assert!(!p.holds(&rule("amqp:topic_write:/orders.x:us.ny").unwrap()));
        // No topic permission on orders.x for reads, but no read on it either.
        assert!(!p.holds(&rule("amqp:topic_read:/orders.x:us.ny").unwrap()));
    }

    #[test]
    fn unrestricted_routing_keys_on_topic_exchanges_are_beyond_scope() {
        let p = plan(
            "amqp:write:/orders.*, amqp:topic_write:/orders.x:eu.*, amqp:write:shop/a, \
             amqp:read:shop/q",
        );
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let topics = BTreeMap::from([
            ("/".to_owned(), names(&["orders.x", "orders.y", "b"])),
            ("shop".to_owned(), names(&["a"])),
        ]);
        assert_eq!(
            p.beyond_scope(&topics),
            [
                "amqp:topic_write:/orders.y:* (no topic permission: any routing key on this topic exchange)",
                "amqp:topic_write:shop/a:* (no topic permission: any routing key on this topic exchange)",
            ]
        );
        assert_eq!(p.vhosts_with_routing().collect::<Vec<_>>(), ["/", "shop"]);
        assert!(plan("amqp:configure:/x").beyond_scope(&topics).is_empty());
    }

    #[test]
    fn globs_overlap() {
        assert!(overlap("a.*", "*.b"));
        assert!(overlap("a", "a"));
        assert!(!overlap("a", "b"));
        assert!(!overlap("a.*", "b.*"));
        assert!(overlap("*", ""));
        assert!(!overlap("ab", "a"));
    }
}
