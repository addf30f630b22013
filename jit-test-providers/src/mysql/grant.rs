//! Granting: one batch creates the expiry event, the user (native password hash,
//! `MAX_USER_CONNECTIONS`) and its privileges; then what the user can effectively do is
//! checked before the test may use it.

use std::time::{Duration, SystemTime};

use jit_test::{GrantRequest, Permission, ProviderError, Secret, unix_seconds};

use super::expiry::{EventMeta, create_event_sql};
use super::ident::{quote_account, quote_ident, quote_literal};
use super::privileges::{Object, Privilege};

/// Prefix of every user's name.
pub const PREFIX: &str = "jit_";

/// Prefix of the roles that hold one permission set each ([`Design::Role`]).
pub const SET_PREFIX: &str = "jit_set_";

/// How the privileges of a lease are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// Each distinct permission set has one role holding its privileges
    /// (`jit_set_<hash>`, made once per process with `CREATE ROLE IF NOT EXISTS`); every
    /// user is granted it as its default role. What the provider does: measured to scale
    /// better under 200 concurrent tests (75 against 63 lifecycles/s, interleaved;
    /// BENCHMARKS.md), as the grant tables do not grow with each user.
    Role,
    /// Every user receives its privileges directly (`GRANT ... TO 'jit_…'@'host'`), in
    /// the batch that creates it. Kept for the benchmark's comparison.
    Direct,
}

/// Everything one grant needs, worked out before the first statement.
pub(crate) struct Plan {
    pub(crate) user: String,
    pub(crate) host: String,
    pub(crate) password: Secret,
    pub(crate) privileges: Vec<Privilege>,
    pub(crate) deny: Vec<Privilege>,
    pub(crate) expires_at: SystemTime,
    ttl: Duration,
    connection_limit: u32,
}

impl Plan {
    /// Checks the request and draws the password (128 random bits).
    pub(crate) fn new(
        request: &GrantRequest,
        host: &str,
        connection_limit: u32,
    ) -> Result<Plan, ProviderError> {
        Ok(Plan {
            user: request.principal_name(PREFIX),
            host: host.to_owned(),
            password: Secret::new(jit_test::rand::hex(16)),
            privileges: parse_all(&request.permissions)?,
            deny: parse_all(&request.deny)?,
            expires_at: SystemTime::now() + request.ttl,
            ttl: request.ttl,
            connection_limit,
        })
    }

    /// The database of every privilege, when they share one.
    pub(crate) fn database(&self) -> Option<&str> {
        let first = self.privileges.first()?.object.database();
        self.privileges
            .iter()
            .all(|p| p.object.database() == first)
            .then_some(first)
    }

    /// The account, quoted: `'jit_…'@'127.0.0.1'`.
    pub(crate) fn account(&self) -> String {
        quote_account(&self.user, &self.host)
    }

    /// The expiry event, then the user with the password's hash (the server never sees
    /// the password itself), then its privileges as `design` holds them. `set` names the
    /// permission set's role for [`Design::Role`].
    pub(crate) fn batch(&self, design: Design, set: &str) -> String {
        let meta = EventMeta {
            expires_at: unix_seconds(self.expires_at),
            pid: std::process::id(),
        };
        let account = self.account();
        let mut sql = format!(
            "{};\nCREATE USER {account} IDENTIFIED BY PASSWORD {} WITH MAX_USER_CONNECTIONS {};\n",
            create_event_sql(&self.user, &self.host, self.ttl, meta),
            quote_literal(&native_hash(&self.password)),
            self.connection_limit,
        );
        match design {
            Design::Direct => sql.push_str(&grants_sql(&self.privileges, &account)),
            Design::Role => {
                let role = quote_ident(set);
                sql.push_str(&format!(
                    "GRANT {role} TO {account};\nSET DEFAULT ROLE {role} FOR {account};\n"
                ));
            }
        }
        sql
    }
}

fn parse_all(permissions: &[Permission]) -> Result<Vec<Privilege>, ProviderError> {
    let mut privileges = permissions
        .iter()
        .map(|p| {
            Privilege::parse(p).map_err(|reason| ProviderError::InvalidPermission {
                permission: p.to_string(),
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    privileges.sort();
    privileges.dedup();
    Ok(privileges)
}

/// One `GRANT` per object, listing its privileges: `GRANT SELECT, UPDATE (`status`) ON
/// `shop`.`orders` TO grantee;`.
pub(crate) fn grants_sql(privileges: &[Privilege], grantee: &str) -> String {
    let mut sql = String::new();
    let mut objects: Vec<&Object> = privileges.iter().map(|p| &p.object).collect();
    objects.sort();
    objects.dedup();
    for object in objects {
        let listed: Vec<String> = privileges
            .iter()
            .filter(|p| &p.object == object)
            .map(Privilege::privilege_sql)
            .collect();
        sql.push_str(&format!(
            "GRANT {} ON {} TO {grantee};\n",
            listed.join(", "),
            object.sql()
        ));
    }
    sql
}

/// The role of a permission set: `jit_set_` and 24 hex digits of the SHA-256 of its
/// canonical form, so every process finds the same role.
pub(crate) fn set_name(privileges: &[Privilege]) -> String {
    let canonical: Vec<String> = privileges.iter().map(ToString::to_string).collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.join(",").as_bytes());
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{SET_PREFIX}{hex}")
}

/// Creates a permission set's role if missing and grants it its privileges (idempotent).
pub(crate) fn ensure_set_sql(set: &str, privileges: &[Privilege]) -> String {
    format!(
        "CREATE ROLE IF NOT EXISTS {};\n{}",
        quote_ident(set),
        grants_sql(privileges, &quote_ident(set))
    )
}

/// The `mysql_native_password` hash: `*` and the upper-case hex of SHA1(SHA1(password)).
pub(crate) fn native_hash(password: &Secret) -> String {
    let sha1 = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes);
    let twice = sha1(sha1(password.expose().as_bytes()).as_ref());
    let hex: String = twice.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("*{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(scope: &str) -> GrantRequest {
        GrantRequest {
            test: "t".into(),
            run_id: "r".into(),
            lease_id: "abc_1".into(),
            permissions: jit_test::Scope::parse(scope).unwrap().permissions,
            deny: Vec::new(),
            ttl: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_native_hash_is_the_servers() {
        // SELECT PASSWORD('pw123456') on MariaDB 10.11.
        assert_eq!(
            native_hash(&Secret::new("pw123456")),
            "*D51DA1B949C1D36CBD3983BFD763307CC126CA3C"
        );
    }

    #[test]
    fn one_batch_creates_the_event_first_then_the_user_then_one_grant_per_object() {
        let plan = Plan::new(
            &request(
                "mysql:select:shop.orders, mysql:update(status):shop.orders, mysql:select:shop.*",
            ),
            "127.0.0.1",
            10,
        )
        .unwrap();
        assert_eq!(plan.user, "jit_abc_1");
        let sql = plan.batch(Design::Direct, "");
        let event = sql.find("CREATE EVENT").unwrap();
        let user = sql
            .find("CREATE USER 'jit_abc_1'@'127.0.0.1' IDENTIFIED BY PASSWORD '*")
            .unwrap();
        assert!(event < user);
        assert!(sql.contains("WITH MAX_USER_CONNECTIONS 10;"));
        assert!(
            sql.contains(
                "GRANT SELECT, UPDATE (`status`) ON `shop`.`orders` TO 'jit_abc_1'@'127.0.0.1';"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("GRANT SELECT ON `shop`.* TO 'jit_abc_1'@'127.0.0.1';"),
            "{sql}"
        );
        assert!(
            !sql.contains(plan.password.expose()),
            "the password never reaches the server"
        );

        let set = set_name(&plan.privileges);
        assert!(set.starts_with(SET_PREFIX) && set.len() == SET_PREFIX.len() + 24);
        let role = plan.batch(Design::Role, &set);
        assert!(role.contains(&format!(
            "SET DEFAULT ROLE `{set}` FOR 'jit_abc_1'@'127.0.0.1';"
        )));
        assert!(ensure_set_sql(&set, &plan.privileges).contains(&format!("TO `{set}`;")));
    }

    #[test]
    fn invalid_permissions_are_named() {
        let e = Plan::new(&request("mysql:drop:shop.orders"), "h", 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("mysql:drop:shop.orders"), "{e}");
    }
}
