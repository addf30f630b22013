//! Will the server check the passwords of jit-test's roles? `VALID UNTIL` is enforced
//! only by password authentication (`scram-sha-256`, `md5`, `password`); under `trust`,
//! `peer` or `ident` an expired role still logs in. This module reads
//! `pg_hba_file_rules` and finds the rule PostgreSQL would apply to a login role (a
//! member of `jit_lease`) connecting the way the credential connects.

use std::net::IpAddr;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::retry::describe;
use super::roles::GROUP_ROLE;

/// One rule of `pg_hba.conf`, as `pg_hba_file_rules` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) line: i32,
    pub(crate) kind: String,
    pub(crate) databases: Vec<String>,
    pub(crate) users: Vec<String>,
    pub(crate) address: Option<String>,
    pub(crate) netmask: Option<String>,
    pub(crate) method: String,
}

impl Rule {
    fn render(&self) -> String {
        let address = match (&self.address, &self.netmask) {
            (Some(a), Some(m)) => format!(" {a} {m}"),
            (Some(a), None) => format!(" {a}"),
            _ => String::new(),
        };
        format!(
            "{} {} {}{address} {}",
            self.kind,
            self.databases.join(","),
            self.users.join(","),
            self.method
        )
    }
}

/// What the server's authentication setup looks like from here.
#[derive(Clone, Debug)]
pub(crate) struct Hba {
    /// The path of pg_hba.conf.
    pub(crate) file: String,
    /// Rules without errors, in file order.
    pub(crate) rules: Vec<Rule>,
    /// The address the server sees this machine connect from; `None` over a Unix socket.
    pub(crate) client: Option<IpAddr>,
    /// The roles a member of `jit_lease` is a member of (including `jit_lease`).
    pub(crate) groups: Vec<String>,
}

/// Whether a rule matches: surely, surely not, or cannot tell from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    Maybe,
}

fn and(a: Match, b: Match) -> Match {
    match (a, b) {
        (Match::No, _) | (_, Match::No) => Match::No,
        (Match::Yes, Match::Yes) => Match::Yes,
        _ => Match::Maybe,
    }
}

const PASSWORD_METHODS: [&str; 3] = ["scram-sha-256", "md5", "password"];

impl Hba {
    /// Reads the rules through the admin connection. Needs a superuser (or EXECUTE on
    /// `pg_hba_file_rules()`).
    pub(crate) async fn read(client: &Client) -> Result<Hba, String> {
        let rows = client
            .query(
                "SELECT line_number, type, database, user_name, address, netmask, auth_method \
                 FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number",
                &[],
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot read pg_hba_file_rules to check that PostgreSQL checks the passwords \
                     of jit-test's roles: {}. Connect as a superuser, or GRANT EXECUTE ON FUNCTION \
                     pg_hba_file_rules() to the admin role",
                    describe(&e)
                )
            })?;
        let rules = rows
            .iter()
            .map(|row| Rule {
                line: row.get(0),
                kind: row.get::<_, Option<String>>(1).unwrap_or_default(),
                databases: row.get::<_, Option<Vec<String>>>(2).unwrap_or_default(),
                users: row.get::<_, Option<Vec<String>>>(3).unwrap_or_default(),
                address: row.get(4),
                netmask: row.get(5),
                method: row.get::<_, Option<String>>(6).unwrap_or_default(),
            })
            .collect();
        let info = client
            .query_one(
                "SELECT host(inet_client_addr()), current_setting('hba_file'), \
                 ARRAY(SELECT g.rolname::text FROM pg_roles g \
                       WHERE pg_has_role($1::text::name, g.oid, 'MEMBER'))",
                &[&GROUP_ROLE],
            )
            .await
            .map_err(|e| format!("cannot read the server's settings: {}", describe(&e)))?;
        let client_addr: Option<String> = info.get(0);
        Ok(Hba {
            file: info.get(1),
            rules,
            client: client_addr.and_then(|a| a.parse().ok()),
            groups: info.get(2),
        })
    }

    fn database_matches(&self, rule: &Rule, database: &str) -> Match {
        let any = rule.databases.iter().any(|d| match d.as_str() {
            "all" => true,
            "sameuser" | "replication" => false,
            "samerole" | "samegroup" => self.groups.iter().any(|g| g == database),
            name => name == database,
        });
        if any { Match::Yes } else { Match::No }
    }

    fn user_matches(&self, rule: &Rule) -> Match {
        let mut result = Match::No;
        for user in &rule.users {
            let m = if user == "all" {
                Match::Yes
            } else if let Some(group) = user.strip_prefix('+') {
                if self.groups.iter().any(|g| g == group) {
                    Match::Yes
                } else {
                    Match::No
                }
            } else if user.starts_with('/') {
                Match::Maybe // a regular expression (PostgreSQL 16+)
            } else {
                Match::No // a role name: ours are fresh and random
            };
            result = match (result, m) {
                (Match::Yes, _) | (_, Match::Yes) => Match::Yes,
                (Match::Maybe, _) | (_, Match::Maybe) => Match::Maybe,
                _ => Match::No,
            };
        }
        result
    }

    fn address_matches(&self, rule: &Rule) -> Match {
        let connection = match (rule.kind.as_str(), self.client) {
            ("local", None) => return Match::Yes,
            ("local", Some(_)) | (_, None) => return Match::No,
            ("host" | "hostnossl" | "hostnogssenc", Some(client)) => client,
            _ => return Match::No, // hostssl, hostgssenc: the credential uses neither
        };
        let Some(address) = rule.address.as_deref() else {
            return Match::Maybe;
        };
        match address {
            "all" => Match::Yes,
            "samehost" | "samenet" if connection.is_loopback() => Match::Yes,
            "samehost" | "samenet" => Match::Maybe,
            "localhost" if connection.is_loopback() => Match::Yes,
            _ => match address.parse::<IpAddr>() {
                Err(_) => Match::Maybe, // a host name
                Ok(network) => {
                    let mask = rule
                        .netmask
                        .as_deref()
                        .and_then(|m| m.parse::<IpAddr>().ok());
                    if in_network(connection, network, mask) {
                        Match::Yes
                    } else {
                        Match::No
                    }
                }
            },
        }
    }

    /// Checks that a member of `jit_lease` connecting to `database` from here would have
    /// to give its password. The error explains what to add to pg_hba.conf.
    pub(crate) fn check(&self, database: &str) -> Result<(), String> {
        // Sound even where a rule's match cannot be decided: every rule that may be the
        // first to match must ask for a password.
        let mut offending: Option<&Rule> = None;
        let mut decided = false;
        for rule in &self.rules {
            let m = and(
                and(
                    self.address_matches(rule),
                    self.database_matches(rule, database),
                ),
                self.user_matches(rule),
            );
            if m == Match::No {
                continue;
            }
            if !PASSWORD_METHODS.contains(&rule.method.as_str()) && offending.is_none() {
                offending = Some(rule);
            }
            if m == Match::Yes {
                decided = true;
                break;
            }
        }
        let line = self.suggested_line();
        let advice = format!(
            "Add this line to {file} above the other rules:\n    {line}\nthen reload the \
             configuration (SELECT pg_reload_conf()), or run `.ci/setup-postgres` as root. To run \
             without this guarantee, set `allow_trust = true` under [providers.pg] in \
             jit-test.toml or JIT_TEST_PG_ALLOW_TRUST=1",
            file = self.file
        );
        let from = match self.client {
            Some(ip) => format!("from {ip}"),
            None => "over the Unix socket".to_owned(),
        };
        match offending {
            Some(rule) => Err(format!(
                "PostgreSQL would not check the passwords of jit-test's roles, so their expiry \
                 (VALID UNTIL) would not be enforced: a connection {from} to database \
                 {database:?} by a member of {GROUP_ROLE} matches line {} of {} (`{}`), which \
                 uses `{}`. {advice}",
                rule.line,
                self.file,
                rule.render(),
                rule.method
            )),
            None if !decided => Err(format!(
                "no rule of {} lets a member of {GROUP_ROLE} connect {from} to database \
                 {database:?}, so jit-test's roles could not log in. {advice}",
                self.file
            )),
            None => Ok(()),
        }
    }

    /// The pg_hba.conf line that makes the server check jit-test roles' passwords.
    pub(crate) fn suggested_line(&self) -> String {
        match self.client {
            None => format!("local   all   +{GROUP_ROLE}   scram-sha-256"),
            Some(ip @ IpAddr::V4(_)) => {
                format!("host    all   +{GROUP_ROLE}   {ip}/32   scram-sha-256")
            }
            Some(ip @ IpAddr::V6(_)) => {
                format!("host    all   +{GROUP_ROLE}   {ip}/128   scram-sha-256")
            }
        }
    }
}

/// Logs in as a fresh role without a password and sees what the server does: asking for
/// one (`Some(Ok)`) is what jit-test needs; letting the role in or refusing it any other
/// way (`Some(Err)`, with what happened) means its password, and so its expiry, is not
/// checked. `None` when the attempt says neither (the server is busy or unreachable).
///
/// This checks the configuration the server has *loaded*, which `pg_hba_file_rules` (the
/// file on disk) does not show.
pub(crate) async fn password_required(
    config: &tokio_postgres::Config,
) -> Option<Result<(), String>> {
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(std::time::Duration::from_secs(5));
    let attempt = tokio::time::timeout(timeout, config.connect(tokio_postgres::NoTls)).await;
    match attempt.ok()? {
        Ok(_) => Some(Err("logged in without any password".to_owned())),
        // tokio-postgres refuses to go on once the server asked for a password.
        Err(e) if e.as_db_error().is_none() && asked_for_password(&e) => Some(Ok(())),
        Err(e) => match e.as_db_error() {
            Some(db)
                if *db.code() == SqlState::TOO_MANY_CONNECTIONS
                    || *db.code() == SqlState::CANNOT_CONNECT_NOW =>
            {
                None
            }
            Some(_) => Some(Err(format!(
                "was refused without being asked for a password: {}",
                describe(&e)
            ))),
            None => None,
        },
    }
}

/// Whether a client error is tokio-postgres' "password missing": the server asked for
/// a password the configuration does not have.
fn asked_for_password(error: &tokio_postgres::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.to_string().contains("password missing") {
            return true;
        }
        current = e.source();
    }
    false
}

fn in_network(client: IpAddr, network: IpAddr, mask: Option<IpAddr>) -> bool {
    match (client, network, mask) {
        (IpAddr::V4(c), IpAddr::V4(n), Some(IpAddr::V4(m))) => {
            u32::from(c) & u32::from(m) == u32::from(n) & u32::from(m)
        }
        (IpAddr::V6(c), IpAddr::V6(n), Some(IpAddr::V6(m))) => {
            u128::from(c) & u128::from(m) == u128::from(n) & u128::from(m)
        }
        (c, n, None) => c == n,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        line: i32,
        kind: &str,
        users: &str,
        address: Option<(&str, &str)>,
        method: &str,
    ) -> Rule {
        Rule {
            line,
            kind: kind.into(),
            databases: vec!["all".into()],
            users: users.split(',').map(Into::into).collect(),
            address: address.map(|a| a.0.into()),
            netmask: address.map(|a| a.1.into()),
            method: method.into(),
        }
    }

    fn hba(rules: Vec<Rule>, client: Option<&str>) -> Hba {
        Hba {
            file: "/etc/postgresql/15/main/pg_hba.conf".into(),
            rules,
            client: client.map(|c| c.parse().unwrap()),
            groups: vec![GROUP_ROLE.into()],
        }
    }

    const LOOPBACK: Option<(&str, &str)> = Some(("127.0.0.1", "255.255.255.255"));

    #[test]
    fn trust_before_any_password_rule_is_refused_with_the_line_to_add() {
        let h = hba(
            vec![
                rule(1, "local", "all", None, "trust"),
                rule(2, "host", "all", LOOPBACK, "trust"),
            ],
            Some("127.0.0.1"),
        );
        let e = h.check("test").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(
            e.contains("host all all 127.0.0.1 255.255.255.255 trust"),
            "{e}"
        );
        assert!(
            e.contains("host    all   +jit_lease   127.0.0.1/32   scram-sha-256"),
            "{e}"
        );
        assert!(e.contains("allow_trust"), "{e}");
    }

    #[test]
    fn the_jit_lease_rule_first_is_accepted() {
        let h = hba(
            vec![
                rule(1, "local", "+jit_lease", None, "scram-sha-256"),
                rule(2, "host", "+jit_lease", LOOPBACK, "scram-sha-256"),
                rule(3, "host", "all", LOOPBACK, "trust"),
            ],
            Some("127.0.0.1"),
        );
        assert_eq!(h.check("test"), Ok(()));
        // Over the socket the `local` rule applies.
        let mut socket = h.clone();
        socket.client = None;
        assert_eq!(socket.check("test"), Ok(()));
    }

    #[test]
    fn rules_for_other_addresses_users_and_ssl_are_skipped() {
        let h = hba(
            vec![
                rule(1, "host", "all", Some(("10.0.0.0", "255.0.0.0")), "trust"),
                rule(2, "host", "alice", LOOPBACK, "trust"),
                rule(3, "hostssl", "all", LOOPBACK, "trust"),
                rule(4, "host", "+admins", LOOPBACK, "trust"),
                rule(5, "host", "all", Some(("127.0.0.0", "255.0.0.0")), "md5"),
                rule(6, "host", "all", LOOPBACK, "trust"),
            ],
            Some("127.0.0.1"),
        );
        assert_eq!(h.check("test"), Ok(()));
    }

    #[test]
    fn an_undecidable_trust_rule_before_the_password_rule_is_refused() {
        let h = hba(
            vec![
                rule(1, "host", "all", Some(("db-host.example", "")), "trust"),
                rule(2, "host", "all", LOOPBACK, "scram-sha-256"),
            ],
            Some("127.0.0.1"),
        );
        let mut h = h;
        h.rules[0].netmask = None;
        assert!(h.check("test").unwrap_err().contains("line 1"));
    }

    #[test]
    fn peer_and_reject_and_no_rule_are_refused() {
        let peer = hba(vec![rule(1, "local", "all", None, "peer")], None);
        assert!(peer.check("test").unwrap_err().contains("`peer`"));
        assert!(
            peer.check("test")
                .unwrap_err()
                .contains("local   all   +jit_lease")
        );
        let reject = hba(
            vec![rule(1, "host", "all", LOOPBACK, "reject")],
            Some("127.0.0.1"),
        );
        assert!(reject.check("test").unwrap_err().contains("`reject`"));
        let none = hba(vec![rule(1, "host", "all", LOOPBACK, "trust")], Some("::1"));
        let e = none.check("test").unwrap_err();
        assert!(e.contains("no rule"), "{e}");
        assert!(e.contains("::1/128"), "{e}");
    }

    #[test]
    fn databases_are_matched_by_name() {
        let mut only_shop = rule(1, "host", "all", LOOPBACK, "trust");
        only_shop.databases = vec!["shop".into()];
        let h = hba(
            vec![only_shop, rule(2, "host", "all", LOOPBACK, "scram-sha-256")],
            Some("127.0.0.1"),
        );
        assert_eq!(h.check("test"), Ok(()));
        assert!(h.check("shop").is_err());
    }
}
