//! Scope → ACL: each `redis` permission becomes one ACL selector, `(keys commands)`,
//! so that its commands reach only its keys or channels, whatever else the scope grants.
//!
//! | permission | selector |
//! |---|---|
//! | `redis:read:cache:*` | `(%R~cache:* +@read -<keyless @read commands>)` |
//! | `redis:write:cart:*` | `(%W~cart:* +@write -<keyless @write commands>)` |
//! | `redis:readwrite:session:*` | `(~session:* +@read +@write -<keyless ...>)` |
//! | `redis:command(get,set,expire):cache:*` | `(~cache:* +get +set +expire)` |
//! | `redis:category(stream):jobs:*` | `(~jobs:* +@stream -<keyless @stream commands>)` |
//! | `redis:publish:events.*` | `(&events.* +publish)` |
//! | `redis:subscribe:events.*` | `(&events.* +subscribe +psubscribe +unsubscribe +punsubscribe)` |

use jit_test::Permission;

use super::commands::CommandTable;

/// Actions a `redis` permission may name.
const ACTIONS: [&str; 7] = [
    "read",
    "write",
    "readwrite",
    "command",
    "category",
    "publish",
    "subscribe",
];

/// Categories that grant no key access at all, or the server itself; `command(...)` with
/// the resource `*` names such commands one by one instead.
const REFUSED_CATEGORIES: [&str; 4] = ["admin", "dangerous", "connection", "pubsub"];

/// How a key pattern may be used (Redis 7 key permissions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// `%R~`: the key may be read.
    Read,
    /// `%W~`: the key may be written.
    Write,
    /// `~`: both.
    ReadWrite,
}

/// Which commands a rule allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Commands {
    /// Every command of these ACL categories that takes a key.
    Categories(Vec<String>),
    /// Exactly these commands (lower case).
    Named(Vec<String>),
}

/// What one permission grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Commands on keys matching `pattern`.
    Keys {
        access: Access,
        commands: Commands,
        pattern: String,
    },
    /// `PUBLISH` to channels matching `pattern`.
    Publish { pattern: String },
    /// `SUBSCRIBE`/`PSUBSCRIBE` to channels matching `pattern`.
    Subscribe { pattern: String },
}

impl Rule {
    /// Translates one permission, or says why it is not one and what to write instead.
    pub(crate) fn parse(permission: &Permission) -> Result<Rule, String> {
        let pattern = acl_pattern(&permission.resource)?;
        let no_args = |rule: Rule| {
            if permission.args.is_empty() {
                Ok(rule)
            } else {
                Err(format!(
                    "`{}` takes no arguments: write `redis:{}:{}`",
                    permission.action, permission.action, permission.resource
                ))
            }
        };
        let keys = |access, commands| Rule::Keys {
            access,
            commands,
            pattern: pattern.clone(),
        };
        let categories =
            |names: &[&str]| Commands::Categories(names.iter().map(|c| c.to_string()).collect());
        match permission.action.as_str() {
            "read" => no_args(keys(Access::Read, categories(&["read"]))),
            "write" => no_args(keys(Access::Write, categories(&["write"]))),
            "readwrite" => no_args(keys(Access::ReadWrite, categories(&["read", "write"]))),
            "publish" => no_args(Rule::Publish { pattern }),
            "subscribe" => no_args(Rule::Subscribe { pattern }),
            "command" => Ok(keys(Access::ReadWrite, Commands::Named(names(permission)?))),
            "category" => {
                let names = names(permission)?;
                if let Some(refused) = names
                    .iter()
                    .find(|n| REFUSED_CATEGORIES.contains(&n.as_str()))
                {
                    return Err(format!(
                        "category `{refused}` is not granted by category: its commands reach the \
                         whole server or every channel; name the commands you need with \
                         `redis:command(...):*`, or use `redis:publish:...`/`redis:subscribe:...`"
                    ));
                }
                Ok(keys(Access::ReadWrite, Commands::Categories(names)))
            }
            other => {
                let nearest = ACTIONS
                    .iter()
                    .min_by_key(|a| distance(a, other))
                    .expect("non-empty");
                Err(format!(
                    "unknown action `{other}`; the actions are {}. Did you mean `redis:{nearest}:{}`?",
                    ACTIONS.join(", "),
                    permission.resource
                ))
            }
        }
    }

    /// The ACL selector of this rule on a server with `table`, or why it cannot be granted
    /// there (an unknown command or category, a keyless command under a key pattern).
    pub(crate) fn selector(&self, table: &CommandTable) -> Result<String, String> {
        match self {
            Rule::Publish { pattern } => Ok(format!("(&{pattern} +publish)")),
            Rule::Subscribe { pattern } => Ok(format!(
                "(&{pattern} +subscribe +psubscribe +unsubscribe +punsubscribe)"
            )),
            Rule::Keys {
                access,
                commands,
                pattern,
            } => {
                let prefix = match access {
                    Access::Read => "%R~",
                    Access::Write => "%W~",
                    Access::ReadWrite => "~",
                };
                let mut words = vec![format!("{prefix}{pattern}")];
                match commands {
                    Commands::Categories(categories) => {
                        words.extend(categories.iter().map(|c| format!("+@{c}")));
                        words.extend(table.keyless_in(categories).iter().map(|c| format!("-{c}")));
                    }
                    Commands::Named(names) => {
                        for name in names {
                            check_named(table, name, pattern)?;
                            words.push(format!("+{name}"));
                        }
                    }
                }
                Ok(format!("({})", words.join(" ")))
            }
        }
    }

    /// Commands (argv) that exercise exactly this rule, on a sample key or channel
    /// matching its pattern: for `deny`, each must be refused.
    pub(crate) fn probes(&self, table: &CommandTable) -> Vec<Vec<String>> {
        match self {
            Rule::Publish { pattern } => vec![vec!["publish".into(), sample(pattern), "x".into()]],
            Rule::Subscribe { pattern } => vec![vec!["subscribe".into(), sample(pattern)]],
            Rule::Keys {
                commands, pattern, ..
            } => {
                let key = sample(pattern);
                let names: Vec<String> = match commands {
                    Commands::Categories(c) => {
                        table.keyed_in(c).iter().map(|s| s.to_string()).collect()
                    }
                    Commands::Named(n) => n.clone(),
                };
                names.iter().map(|name| argv(table, name, &key)).collect()
            }
        }
    }

    /// Whether this rule names `command` explicitly.
    pub(crate) fn names(&self, command: &str) -> bool {
        matches!(self, Rule::Keys { commands: Commands::Named(n), .. } if n.iter().any(|c| c == command))
    }

    /// Whether this rule's key pattern (for keys) or channel pattern (for channels)
    /// matches `name`.
    pub(crate) fn matches(&self, name: &str, channel: bool) -> bool {
        match self {
            Rule::Keys { pattern, .. } => !channel && glob_match(pattern, name),
            Rule::Publish { pattern } | Rule::Subscribe { pattern } => {
                channel && glob_match(pattern, name)
            }
        }
    }
}

/// The lower-case command or category names of `command(...)`/`category(...)`.
fn names(permission: &Permission) -> Result<Vec<String>, String> {
    if permission.args.is_empty() {
        return Err(format!(
            "`{0}` needs its names: write `redis:{0}(get,set):{1}`",
            permission.action, permission.resource
        ));
    }
    permission
        .args
        .iter()
        .map(|a| {
            if a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(a.to_ascii_lowercase())
            } else {
                Err(format!("`{a}` is not a Redis command or category name"))
            }
        })
        .collect()
}

/// A command of `command(...)` must exist, and one that takes no key may only be
/// granted with the resource `*` (no pattern can confine it).
fn check_named(table: &CommandTable, name: &str, pattern: &str) -> Result<(), String> {
    let Some(entry) = table.get(name) else {
        let hint = table
            .nearest(name)
            .map(|n| format!(" Did you mean `{n}`?"))
            .unwrap_or_default();
        return Err(format!("the server has no command `{name}`.{hint}"));
    };
    if entry.keyless && pattern != "*" {
        return Err(format!(
            "`{name}` takes no key, so the pattern `{pattern}` cannot confine it: it would reach \
             the whole server. Grant it on its own with `redis:command({name}):*`"
        ));
    }
    Ok(())
}

/// The argv of `name` (a command or `container|sub`) with every argument `key`, as long as
/// its arity asks.
fn argv(table: &CommandTable, name: &str, key: &str) -> Vec<String> {
    let mut words: Vec<String> = name.split('|').map(str::to_owned).collect();
    let arity = table
        .get(name)
        .map_or(2, |e| e.arity.unsigned_abs() as usize);
    while words.len() < arity.max(2) {
        words.push(key.to_owned());
    }
    words
}

/// A scope resource as an ACL key or channel pattern. The scope grammar already keeps
/// out whitespace, quotes, `\` and control characters; this also refuses the characters
/// that delimit selectors and Redis glob classes, so that the pattern is one ACL word
/// whose only glob is `*`.
pub(crate) fn acl_pattern(resource: &str) -> Result<String, String> {
    match resource.chars().find(|c| !is_pattern_char(*c)) {
        None if !resource.is_empty() => Ok(resource.to_owned()),
        None => Err("the key or channel pattern is empty".to_owned()),
        Some(c) => Err(format!(
            "character {c:?} is not allowed in a Redis key or channel pattern; the only glob is `*`"
        )),
    }
}

fn is_pattern_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.*:/@$+=>#-".contains(c)
}

/// A name matching `pattern`: each `*` becomes `x`.
pub(crate) fn sample(pattern: &str) -> String {
    pattern.replace('*', "x")
}

/// Whether `name` matches `pattern`, where `*` is any run of characters.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob_match(tail, &rest[i..]))
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Result<Rule, String> {
        Rule::parse(&text.parse().unwrap())
    }

    #[test]
    fn actions_translate_to_rules() {
        assert_eq!(
            rule("redis:read:cache:*"),
            Ok(Rule::Keys {
                access: Access::Read,
                commands: Commands::Categories(vec!["read".into()]),
                pattern: "cache:*".into()
            })
        );
        assert_eq!(
            rule("redis:command(GET,set):cache:*").unwrap(),
            Rule::Keys {
                access: Access::ReadWrite,
                commands: Commands::Named(vec!["get".into(), "set".into()]),
                pattern: "cache:*".into()
            }
        );
        assert_eq!(
            rule("redis:publish:events.*"),
            Ok(Rule::Publish {
                pattern: "events.*".into()
            })
        );
    }

    #[test]
    fn rejections_name_the_nearest_valid_form() {
        let e = rule("redis:reed:cache:*").unwrap_err();
        assert!(e.contains("`redis:read:cache:*`"), "{e}");
        let e = rule("redis:read(get):cache:*").unwrap_err();
        assert!(e.contains("`redis:read:cache:*`"), "{e}");
        let e = rule("redis:command:cache:*").unwrap_err();
        assert!(e.contains("redis:command(get,set):cache:*"), "{e}");
        let e = rule("redis:category(admin):*").unwrap_err();
        assert!(e.contains("admin"), "{e}");
        let e = rule("redis:command(get$):*").unwrap_err();
        assert!(e.contains("get$"), "{e}");
    }

    #[test]
    fn patterns_are_single_acl_words_with_star_as_the_only_glob() {
        assert_eq!(acl_pattern("cache:*"), Ok("cache:*".into()));
        for bad in [
            "a b", "a(b", "a)", "a?", "a[bc]", "a\\b", "a\"", "a\n", "", "é",
        ] {
            assert!(acl_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs_match_like_redis_star() {
        assert!(glob_match("cache:*", "cache:a:b"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("cache:*", "cach:a"));
        assert!(!glob_match("a*c", "abd"));
        assert_eq!(sample("cache:*:x*"), "cache:x:xx");
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("read", "reed"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("publish", "publish"), 0);
    }
}
