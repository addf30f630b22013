//! The server's command table (`COMMAND INFO`), read once per process: which commands
//! exist, their ACL categories, their arity, and which take no key.
//!
//! A command that takes no key (`KEYS`, `SCAN`, `FLUSHALL`, `DBSIZE`, ...) cannot be
//! confined by a key pattern: granted, it reaches the whole keyspace. Category grants
//! (`read`, `write`, `category(...)`) therefore leave such commands out, and a
//! `command(...)` grant names them only with the resource `*`.

use std::collections::BTreeMap;

use ::redis::Value;

/// One command (or subcommand, named `container|sub`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `COMMAND INFO`'s arity: `n` means exactly `n` words, `-n` at least `n`.
    pub(crate) arity: i64,
    /// ACL categories, without the `@`.
    pub(crate) categories: Vec<String>,
    /// Whether it takes no key at all (a container: none of its subcommands takes one).
    pub(crate) keyless: bool,
    /// Subcommand names (`object|encoding`, ...), empty for a plain command.
    pub(crate) subcommands: Vec<String>,
}

/// The server's commands by lower-case name; subcommands as `container|sub`.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommandTable {
    entries: BTreeMap<String, Entry>,
}

impl CommandTable {
    /// Reads the reply of `COMMAND INFO` (without arguments).
    pub(crate) fn from_reply(reply: &Value) -> CommandTable {
        let mut table = CommandTable::default();
        for command in array(reply) {
            table.add(command);
        }
        table
    }

    /// Adds one command and its subcommands; returns whether it takes a key.
    fn add(&mut self, info: &Value) -> bool {
        let fields = array(info);
        let Some(name) = fields.first().and_then(text) else {
            return false;
        };
        let flags: Vec<String> = fields
            .get(2)
            .map(array)
            .unwrap_or(&[])
            .iter()
            .filter_map(text)
            .collect();
        let first_key = fields.get(3).and_then(int).unwrap_or(0);
        let categories = fields
            .get(6)
            .map(array)
            .unwrap_or(&[])
            .iter()
            .filter_map(text)
            .map(|c| c.trim_start_matches('@').to_owned())
            .collect();
        let subcommands: Vec<&Value> = fields.get(9).map(array).unwrap_or(&[]).iter().collect();
        let mut sub_names = Vec::new();
        let mut any_sub_key = false;
        for sub in subcommands {
            any_sub_key |= self.add(sub);
            if let Some(sub_name) = array(sub).first().and_then(text) {
                sub_names.push(sub_name.to_lowercase());
            }
        }
        let takes_key = first_key > 0 || flags.iter().any(|f| f == "movablekeys") || any_sub_key;
        self.entries.insert(
            name.to_lowercase(),
            Entry {
                arity: fields.get(1).and_then(int).unwrap_or(-1),
                categories,
                keyless: !takes_key,
                subcommands: sub_names,
            },
        );
        takes_key
    }

    /// The command or subcommand called `name` (lower case, `container|sub`).
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Whether the server knows `name`.
    pub(crate) fn knows(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Every command or subcommand of any of `categories` that takes no key, sorted
    /// (containers are left out: their subcommands are listed).
    pub(crate) fn keyless_in(&self, categories: &[String]) -> Vec<&str> {
        self.in_categories(categories, true)
    }

    /// Every command or subcommand of any of `categories` that takes a key, sorted.
    pub(crate) fn keyed_in(&self, categories: &[String]) -> Vec<&str> {
        self.in_categories(categories, false)
    }

    fn in_categories(&self, categories: &[String], keyless: bool) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(_, e)| e.subcommands.is_empty() && e.keyless == keyless)
            .filter(|(_, e)| e.categories.iter().any(|c| categories.contains(c)))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The names closest to `name`, for "did you mean" messages.
    pub(crate) fn nearest(&self, name: &str) -> Option<&str> {
        self.entries
            .keys()
            .filter(|k| !k.contains('|'))
            .min_by_key(|k| super::rules::distance(k, name))
            .map(String::as_str)
    }
}

fn array(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn command(name: &str, arity: i64, first_key: i64, cats: &[&str], subs: Vec<Value>) -> Value {
        Value::Array(vec![
            bulk(name),
            Value::Int(arity),
            Value::Array(vec![Value::SimpleString("readonly".into())]),
            Value::Int(first_key),
            Value::Int(first_key),
            Value::Int(1),
            Value::Array(
                cats.iter()
                    .map(|c| Value::SimpleString(format!("@{c}")))
                    .collect(),
            ),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Array(subs),
        ])
    }

    #[test]
    fn keyless_commands_and_containers_are_told_apart() {
        let reply = Value::Array(vec![
            command("get", 2, 1, &["read", "string"], vec![]),
            command("keys", 2, 0, &["read", "keyspace"], vec![]),
            command(
                "object",
                -2,
                0,
                &["slow"],
                vec![
                    command("object|encoding", 3, 2, &["read", "keyspace"], vec![]),
                    command("object|help", 2, 0, &["keyspace"], vec![]),
                ],
            ),
        ]);
        let table = CommandTable::from_reply(&reply);
        assert!(!table.get("get").unwrap().keyless);
        assert!(table.get("keys").unwrap().keyless);
        assert!(
            !table.get("object").unwrap().keyless,
            "a subcommand takes a key"
        );
        assert!(table.get("object|help").unwrap().keyless);
        let read = ["read".to_owned()];
        assert_eq!(table.keyless_in(&read), ["keys"]);
        assert_eq!(table.keyed_in(&read), ["get", "object|encoding"]);
        assert_eq!(table.nearest("gte"), Some("get"));
    }
}
