//! The grant: one pipeline creates the user and asks `ACL DRYRUN` what it may do.
//!
//! ```text
//! ACL SETUSER jit_e<expiry>_<lease> reset on #<sha256 of the password> resetkeys
//!     resetchannels nocommands +auth +hello +ping +client|setname <selector per permission>
//! ACL DRYRUN <user> <argv>     ; each `deny` probe: must be refused
//! ACL DRYRUN <user> <argv>     ; each beyond-scope probe: reported if allowed
//! ```
//!
//! The server only ever sees the password's SHA-256, so neither `SLOWLOG` nor `MONITOR`
//! can show it.

use std::time::SystemTime;

use ::redis::{Cmd, Pipeline, Value, cmd};
use jit_test::{GrantRequest, Granted, Permission, ProviderError, Secret};
use ring::digest;

use super::credential::{RedisGrant, RedisLease, login_info};
use super::facts::Facts;
use super::principal::UserName;
use super::rules::Rule;
use super::{Inner, RedisProvider};

/// A key and a channel no scope names (unless its pattern is as wide as `*`).
const OUTSIDE: &str = "jit-outside-scope";

/// What the root selector allows whatever the scope: logging in and staying connected.
pub const CONNECTION_COMMANDS: [&str; 4] = ["auth", "hello", "ping", "client|setname"];

/// Something to ask `ACL DRYRUN`: the argv, and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) argv: Vec<String>,
    pub(crate) meaning: String,
}

/// Everything one grant sends, prepared before anything reaches the server.
pub(crate) struct Plan {
    pub(crate) user: String,
    pub(crate) password: Secret,
    pub(crate) setuser: Cmd,
    /// Must all be refused.
    pub(crate) deny: Vec<Probe>,
    /// Reported when allowed.
    pub(crate) beyond: Vec<Probe>,
}

impl Plan {
    /// Translates the request on a server with `facts`; the database `db` is the one the
    /// credential connects to.
    pub(crate) fn new(
        request: &GrantRequest,
        facts: &Facts,
        db: i64,
    ) -> Result<Plan, ProviderError> {
        let rules = parse_all(&request.permissions)?;
        let expires_at = facts.server_now() + request.ttl.as_secs_f64().ceil() as i64;
        let user = UserName {
            expires_at: expires_at.max(0) as u64,
            lease: request.lease_id.clone(),
        }
        .to_string();
        let password = Secret::random(24);
        let mut setuser = cmd("ACL");
        setuser
            .arg("SETUSER")
            .arg(&user)
            .arg(&["reset", "on"][..])
            .arg(format!("#{}", sha256_hex(password.expose())))
            .arg(&["resetkeys", "resetchannels", "nocommands"][..]);
        for command in root_commands(facts, db) {
            setuser.arg(format!("+{command}"));
        }
        for (rule, permission) in rules.iter().zip(&request.permissions) {
            let selector = rule
                .selector(&facts.table)
                .map_err(|reason| invalid(permission, reason))?;
            setuser.arg(selector);
        }
        let deny = deny_probes(&request.deny, facts)?;
        Ok(Plan {
            user,
            password,
            setuser,
            deny,
            beyond: beyond_probes(&rules),
        })
    }

    /// The pipeline: `ACL SETUSER`, then one `ACL DRYRUN` per probe.
    pub(crate) fn pipeline(&self) -> Pipeline {
        let mut pipeline = ::redis::pipe();
        pipeline.ignore_errors().add_command(self.setuser.clone());
        for probe in self.deny.iter().chain(&self.beyond) {
            pipeline
                .cmd("ACL")
                .arg("DRYRUN")
                .arg(&self.user)
                .arg(&probe.argv);
        }
        pipeline
    }

    /// Reads the pipeline's replies: the failed `deny` probes (allowed although denied)
    /// and the beyond-scope findings.
    pub(crate) fn outcome(&self, replies: &[Value]) -> Result<Outcome, ProviderError> {
        let Some((first, dryruns)) = replies.split_first() else {
            return Err(ProviderError::failed("ACL SETUSER", "no reply"));
        };
        if let Value::ServerError(e) = first {
            return Err(ProviderError::failed("ACL SETUSER", server_error(e)));
        }
        let allowed = |probe: &Probe, reply: &Value| -> Result<bool, ProviderError> {
            match reply {
                Value::Okay => Ok(true),
                Value::ServerError(e) => Err(ProviderError::failed(
                    "ACL DRYRUN",
                    format!("{} ({})", server_error(e), probe.argv.join(" ")),
                )),
                _ => Ok(false),
            }
        };
        let mut outcome = Outcome::default();
        let probes = self
            .deny
            .iter()
            .map(|p| (p, true))
            .chain(self.beyond.iter().map(|p| (p, false)));
        for ((probe, is_deny), reply) in probes.zip(dryruns) {
            match (allowed(probe, reply)?, is_deny) {
                (true, true) => outcome.denied_but_allowed.push(probe.meaning.clone()),
                (true, false) => outcome.beyond_scope.push(probe.meaning.clone()),
                (false, _) => {}
            }
        }
        Ok(outcome)
    }
}

/// What the probes found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) denied_but_allowed: Vec<String>,
    pub(crate) beyond_scope: Vec<String>,
}

/// Grants: sends the plan, checks `deny` and, with `strict`, the beyond-scope findings;
/// any failure after the user exists deletes it again.
pub(crate) async fn grant(
    inner: &Inner,
    request: &GrantRequest,
) -> Result<Granted<RedisProvider>, ProviderError> {
    let facts = inner.facts().await?;
    let db = inner.settings.admin.redis_settings().db();
    let plan = Plan::new(request, facts, db)?;
    let replies: Result<Vec<Value>, ProviderError> = inner.admin.pipeline(&plan.pipeline()).await;
    let checked = replies
        .and_then(|replies| plan.outcome(&replies))
        .and_then(|outcome| accept(inner, facts, outcome));
    let beyond_scope = match checked {
        Ok(beyond_scope) => beyond_scope,
        Err(e) => {
            // The user may exist; a failed delete is left to the reaper (its name expires).
            let _ = super::revoke::delete(&inner.admin, &plan.user).await;
            return Err(e);
        }
    };
    let expires_at = SystemTime::now() + request.ttl;
    let lease = RedisLease {
        user: plan.user.clone(),
        password: plan.password.clone(),
    };
    Ok(Granted {
        principal: plan.user.clone(),
        expires_at,
        credential: RedisGrant {
            info: login_info(&inner.settings.admin, Some((&plan.user, &plan.password))),
            user: plan.user,
            password: plan.password,
            expires_at,
            beyond_scope: beyond_scope.clone(),
        },
        lease,
        beyond_scope,
    })
}

/// Fails on a `deny` the user would hold, and on beyond-scope findings with `strict`.
fn accept(inner: &Inner, facts: &Facts, outcome: Outcome) -> Result<Vec<String>, ProviderError> {
    if !outcome.denied_but_allowed.is_empty() {
        return Err(ProviderError::failed(
            "deny",
            format!(
                "the user would be allowed what the test denies: {}",
                outcome.denied_but_allowed.join("; ")
            ),
        ));
    }
    let mut beyond = outcome.beyond_scope;
    beyond.extend(facts.open_users.iter().cloned());
    if inner.settings.strict && !beyond.is_empty() {
        return Err(ProviderError::Misconfigured(format!(
            "strict: beyond the scope, {}. Give every such user a password (`ACL SETUSER \
             default resetpass >...` or `off`) and put the admin's login in JIT_TEST_REDIS_URL, \
             or unset `strict`",
            beyond.join("; ")
        )));
    }
    Ok(beyond)
}

/// Connection commands every user gets: the clients' handshake, and `SELECT` when the
/// credential connects to another database than 0 (ACLs cannot confine databases).
pub(crate) fn root_commands(facts: &Facts, db: i64) -> Vec<&'static str> {
    let mut commands = CONNECTION_COMMANDS.to_vec();
    // Redis 7.2 and later know `CLIENT SETINFO`, which clients send after connecting.
    if facts.table.knows("client|setinfo") {
        commands.push("client|setinfo");
    }
    if db != 0 {
        commands.push("select");
    }
    commands
}

fn parse_all(permissions: &[Permission]) -> Result<Vec<Rule>, ProviderError> {
    permissions
        .iter()
        .map(|p| Rule::parse(p).map_err(|reason| invalid(p, reason)))
        .collect()
}

fn invalid(permission: &Permission, reason: String) -> ProviderError {
    ProviderError::InvalidPermission {
        permission: permission.to_string(),
        reason,
    }
}

/// One probe per command a `deny` permission covers.
fn deny_probes(deny: &[Permission], facts: &Facts) -> Result<Vec<Probe>, ProviderError> {
    let mut probes = Vec::new();
    for (rule, permission) in parse_all(deny)?.iter().zip(deny) {
        probes.extend(rule.probes(&facts.table).into_iter().map(|argv| Probe {
            meaning: format!("{permission} ({})", argv.join(" ")),
            argv,
        }));
    }
    Ok(probes)
}

/// Server-wide commands, and a key and channel outside the scope, unless the scope grants
/// them: what a user with exactly its scope must be refused.
fn beyond_probes(rules: &[Rule]) -> Vec<Probe> {
    let probe = |argv: &[&str], meaning: &str| Probe {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        meaning: meaning.to_owned(),
    };
    let mut probes = Vec::new();
    for (argv, name) in [
        (&["flushall"][..], "flushall"),
        (&["keys", "x"][..], "keys"),
        (&["config", "get", "x"][..], "config"),
        (&["acl", "list"][..], "acl"),
    ] {
        if !rules.iter().any(|r| r.names(name)) {
            probes.push(probe(argv, &format!("redis:command({name}):*")));
        }
    }
    if !rules.iter().any(|r| r.matches(OUTSIDE, false)) {
        probes.push(probe(&["get", OUTSIDE], &format!("redis:read:{OUTSIDE}")));
        probes.push(probe(
            &["set", OUTSIDE, "x"],
            &format!("redis:write:{OUTSIDE}"),
        ));
    }
    if !rules.iter().any(|r| r.matches(OUTSIDE, true)) {
        probes.push(probe(
            &["publish", OUTSIDE, "x"],
            &format!("redis:publish:{OUTSIDE}"),
        ));
        probes.push(probe(
            &["subscribe", OUTSIDE],
            &format!("redis:subscribe:{OUTSIDE}"),
        ));
    }
    probes
}

fn server_error(error: &::redis::ServerError) -> String {
    format!("{} {}", error.code(), error.details().unwrap_or_default())
}

fn sha256_hex(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_the_servers_password_hash() {
        // `ACL SETUSER u >pw12345` shows this hash in `ACL GETUSER u`.
        assert_eq!(
            sha256_hex("pw12345"),
            "4121a448e269b7b5c99269e9c81b1dcb1876c24ff3cfb74081273951a0e04973"
        );
    }

    #[test]
    fn beyond_probes_skip_what_the_scope_grants() {
        let meanings = |scope: &[&str]| -> Vec<String> {
            let rules: Vec<Rule> = scope
                .iter()
                .map(|p| Rule::parse(&p.parse().unwrap()).unwrap())
                .collect();
            beyond_probes(&rules)
                .into_iter()
                .map(|p| p.meaning)
                .collect()
        };
        // `*` covers the outside key and channel too.
        let wide = meanings(&["redis:command(flushall):*", "redis:publish:*"]);
        assert_eq!(
            wide,
            [
                "redis:command(keys):*",
                "redis:command(config):*",
                "redis:command(acl):*"
            ]
        );
        let narrow = meanings(&["redis:read:cache:*"]);
        assert_eq!(narrow.len(), 8, "{narrow:?}");
        assert!(
            narrow.contains(&format!("redis:read:{OUTSIDE}")),
            "{narrow:?}"
        );
    }
}
