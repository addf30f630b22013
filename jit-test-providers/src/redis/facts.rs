//! What the provider learns about the server once per process: that it is Redis 7 or
//! later (selectors, `ACL DRYRUN`), that the admin may manage users, its command table,
//! its clock, and which users let anyone in without a password.

use std::time::{SystemTime, UNIX_EPOCH};

use ::redis::{Value, cmd};
use jit_test::ProviderError;

use super::admin::Admin;
use super::commands::CommandTable;
use super::principal::PREFIX;
use super::settings::URL_VAR;

/// The server facts a grant needs.
pub(crate) struct Facts {
    /// The server's commands.
    pub(crate) table: CommandTable,
    /// The server's clock minus ours, in seconds.
    pub(crate) clock_offset: i64,
    /// Users any connection can become without a password (`on` and `nopass`), with what
    /// that gives, as beyond-scope findings.
    pub(crate) open_users: Vec<String>,
}

impl Facts {
    /// Reads the facts from the server.
    pub(crate) async fn read(admin: &Admin) -> Result<Facts, ProviderError> {
        let info: String = admin.query(cmd("INFO").arg("server")).await?;
        check_version(&info, admin.address())?;
        let users: Vec<String> =
            admin
                .query(cmd("ACL").arg("LIST"))
                .await
                .map_err(|e| match e {
                    ProviderError::Failed { message, .. } => ProviderError::Misconfigured(format!(
                        "the admin user of Redis at {} cannot manage ACL users ({message}): \
                     connect as a user allowed `+acl +command +info +time` (set {URL_VAR})",
                        admin.address()
                    )),
                    other => other,
                })?;
        let table: Value = admin.query(cmd("COMMAND").arg("INFO")).await?;
        let (seconds, _micros): (i64, i64) = admin.query(&cmd("TIME")).await?;
        Ok(Facts {
            table: CommandTable::from_reply(&table),
            clock_offset: seconds - local_seconds(),
            open_users: open_users(&users),
        })
    }

    /// Now by the server's clock, in seconds since the Unix epoch.
    pub(crate) fn server_now(&self) -> i64 {
        local_seconds() + self.clock_offset
    }
}

fn local_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Selectors, `ACL DRYRUN` and `%R~`/`%W~` came with Redis 7.0.
fn check_version(info: &str, address: &str) -> Result<(), ProviderError> {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("unknown");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major >= 7 {
        Ok(())
    } else {
        Err(ProviderError::Misconfigured(format!(
            "Redis at {address} is version {version}; the redis provider needs Redis 7 or later \
             (ACL selectors and ACL DRYRUN). Set {URL_VAR} to a Redis 7 server"
        )))
    }
}

/// `ACL LIST` lines of users that are `on` with `nopass`, other than the provider's, as
/// findings: whoever holds a lease can become them.
fn open_users(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let name = *words.get(1)?;
            let open = words.contains(&"on") && words.contains(&"nopass");
            if !open || name.starts_with(PREFIX) {
                return None;
            }
            let rules: Vec<&str> = words[2..]
                .iter()
                .copied()
                .filter(|w| {
                    !matches!(
                        *w,
                        "on" | "nopass" | "sanitize-payload" | "skip-sanitize-payload"
                    )
                })
                .collect();
            let how = if name == "default" {
                "a connection that does not AUTH is user `default`, which is on with nopass"
            } else {
                "`AUTH` with any password logs in as this user, which is on with nopass"
            };
            Some(format!("redis:user({name}) {}: {how}", rules.join(" ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_7_are_refused_with_the_setting() {
        assert!(check_version("# Server\r\nredis_version:7.0.15\r\n", "a:1").is_ok());
        let e = check_version("redis_version:6.2.1\r\n", "a:1").unwrap_err();
        assert!(
            e.to_string().contains("6.2.1") && e.to_string().contains(URL_VAR),
            "{e}"
        );
    }

    #[test]
    fn users_without_a_password_are_findings() {
        let lines = [
            "user default on nopass sanitize-payload ~* &* +@all".to_owned(),
            "user app on #abc ~app:* +@read".to_owned(),
            "user guest on nopass ~public:* +get".to_owned(),
            "user old off nopass ~* +@all".to_owned(),
            "user jit_e1_a on nopass +ping".to_owned(),
        ];
        let found = open_users(&lines);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .starts_with("redis:user(default) ~* &* +@all: a connection that does not AUTH")
        );
        assert!(found[1].starts_with("redis:user(guest) ~public:* +get: `AUTH` with any password"));
    }
}
