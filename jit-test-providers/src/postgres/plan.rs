//! The grant plan: everything one grant needs, worked out before the first statement,
//! its two batches of SQL, and the judgement of what the role can effectively do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jit_test::{GrantRequest, LeaseMeta, ProviderError, Secret};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use super::effective;
use super::ident::{quote_ident, quote_literal};
use super::permission_set::PermissionSet;
use super::privileges::{self, Held, Kind, Privilege, implied};
use super::retry::{code, describe};
use super::roles::{GROUP_ROLE, LOCK_CLASS, PREFIX};

/// Everything one grant needs, worked out before the first statement.
pub(crate) struct GrantPlan {
    pub(crate) role: String,
    pub(crate) password: Secret,
    pub(crate) verifier: String,
    meta: LeaseMeta,
    pub(crate) ttl: Duration,
    connection_limit: u32,
    /// Granted and implied privileges.
    pub(crate) required: Vec<Privilege>,
    denied: Vec<Privilege>,
    /// Schemas whose objects count for the effective-privilege report.
    report_schemas: Vec<String>,
    /// Schemas and databases the effective-privilege query looks at.
    pub(crate) schemas: Vec<String>,
    pub(crate) databases: Vec<String>,
    /// The permission set whose role holds the privileges.
    pub(crate) set: PermissionSet,
}

/// Parses every permission (all were validated by the broker; this repeats it for
/// direct callers).
fn parse_all(permissions: &[jit_test::Permission]) -> Result<Vec<Privilege>, ProviderError> {
    let mut parsed: Vec<Privilege> = Vec::new();
    for permission in permissions {
        let p =
            Privilege::parse(permission).map_err(|reason| ProviderError::InvalidPermission {
                permission: permission.to_string(),
                reason,
            })?;
        if !parsed.contains(&p) {
            parsed.push(p);
        }
    }
    Ok(parsed)
}

impl GrantPlan {
    pub(crate) fn new(
        request: &GrantRequest,
        database: &str,
        connection_limit: u32,
    ) -> Result<GrantPlan, ProviderError> {
        let granted = parse_all(&request.permissions)?;
        let denied = parse_all(&request.deny)?;
        let mut required = granted.clone();
        for p in implied(&granted, database) {
            if !required.contains(&p) {
                required.push(p);
            }
        }
        let role = request.principal_name(PREFIX);
        if role.len() > super::ident::MAX_IDENT_BYTES
            || !role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ProviderError::failed(
                "grant",
                format!(
                    "the lease id {:?} does not make a valid role name",
                    request.lease_id
                ),
            ));
        }
        let password = Secret::random(16);
        let meta = request.meta(SystemTime::now() + request.ttl);
        let report_schemas = privileges::schemas(&granted);
        let mut schemas = report_schemas.clone();
        for s in privileges::schemas(&denied) {
            if !schemas.contains(&s) {
                schemas.push(s);
            }
        }
        let mut databases = vec![database.to_owned()];
        for d in privileges::databases(&granted)
            .into_iter()
            .chain(privileges::databases(&denied))
        {
            if !databases.contains(&d) {
                databases.push(d);
            }
        }
        Ok(GrantPlan {
            set: PermissionSet::new(&required),
            role,
            password,
            verifier: String::new(),
            meta,
            ttl: request.ttl,
            connection_limit,
            required,
            denied,
            report_schemas,
            schemas,
            databases,
        })
    }

    /// The databases the role may log in to.
    pub(crate) fn login_databases(&self) -> Vec<&str> {
        self.required
            .iter()
            .filter(|p| p.kind == Kind::Database && p.privilege == "CONNECT")
            .filter_map(|p| p.name.as_deref())
            .collect()
    }

    /// The transaction's first batch: BEGIN, the set's shared lock, and the expiry
    /// `now() + ttl` computed on the server's clock (as UTC text and epoch milliseconds).
    ///
    /// `synchronous_commit = off` for the grant only: should the server crash right after
    /// the commit, the role may be lost with it, which fails the test and leaks nothing.
    /// Revocations stay synchronous.
    pub(crate) fn begin_sql(&self) -> String {
        // Shared: grants of one set run in parallel; the set cannot be changed or dropped
        // until this transaction ends.
        let mut sql = format!(
            "BEGIN; SET LOCAL synchronous_commit = off;\n\
             SELECT pg_advisory_xact_lock_shared({LOCK_CLASS}, {});\n",
            self.set.key
        );
        let until = format!(
            "now() + make_interval(secs => {:.6})",
            self.ttl.as_secs_f64()
        );
        sql.push_str(&format!(
            "SELECT to_char(({until}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             AS jit_until, ceil(extract(epoch FROM {until}) * 1000)::bigint::text AS jit_epoch_ms;"
        ));
        sql
    }

    /// The second batch: the role, valid until `until` (the server's own value), member
    /// of its permission set, with its lease metadata with expiry `epoch_ms`
    /// (milliseconds since the Unix epoch).
    pub(crate) fn create_sql(&self, until: &str, epoch_ms: u64) -> String {
        let role = quote_ident(&self.role);
        let groups = format!(
            "{}, {}",
            quote_ident(GROUP_ROLE),
            quote_ident(&self.set.name)
        );
        let mut meta = self.meta.clone();
        meta.set_expiry(UNIX_EPOCH + Duration::from_millis(epoch_ms));
        let meta = serde_json::to_string(&meta).expect("plain data serialises");
        format!(
            "CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS INHERIT CONNECTION LIMIT {} PASSWORD {} VALID UNTIL {} IN ROLE {groups};\n\
             COMMENT ON ROLE {role} IS {};\n",
            self.connection_limit,
            quote_literal(&self.verifier),
            quote_literal(until),
            quote_literal(&meta),
        )
    }

    /// Runs the transaction on `client` up to its COMMIT, which it leaves to the caller
    /// with what the effective-privilege query found. Three round trips: the expiry, the
    /// role with the query pipelined behind it, and the caller's COMMIT or ROLLBACK.
    pub(crate) async fn run(
        &self,
        client: &Client,
        effective: &Statement,
    ) -> Result<Findings, tokio_postgres::Error> {
        let begun = client.simple_query(&self.begin_sql()).await?;
        let (until, epoch) = begun
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row)
                    if row.columns().first().map(|c| c.name()) == Some("jit_until") =>
                {
                    Some((
                        row.try_get(0).ok().flatten().unwrap_or_default().to_owned(),
                        row.try_get(1)
                            .ok()
                            .flatten()
                            .and_then(|e| e.parse().ok())
                            .unwrap_or(0),
                    ))
                }
                _ => None,
            })
            .unwrap_or_default();
        let create = self.create_sql(&until, epoch);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&self.role, &self.schemas, &self.databases];
        let (created, rows) = tokio::join!(
            client.simple_query(&create),
            client.query(effective, &params)
        );
        created?;
        Ok(self.judge(&effective::rows(&rows?)))
    }
}

/// What the effective-privilege query found.
pub(crate) struct Findings {
    pub(crate) missing: Vec<String>,
    pub(crate) violated: Vec<String>,
    pub(crate) beyond: Vec<String>,
}

impl GrantPlan {
    pub(crate) fn judge(&self, held: &[Held]) -> Findings {
        let in_report = |h: &&Held| match h.kind {
            Kind::Database => false,
            Kind::Schema => self.report_schemas.contains(&h.name),
            _ => self.report_schemas.contains(&h.schema),
        };
        let reported: Vec<Held> = held.iter().filter(in_report).cloned().collect();
        Findings {
            missing: privileges::missing(&self.required, held),
            violated: privileges::violated(&self.denied, held),
            beyond: privileges::beyond(&self.required, &reported),
        }
    }
}

impl GrantPlan {
    /// Whether `error` says the permission set's role is gone (reaped meanwhile).
    pub(crate) fn set_gone(&self, error: &tokio_postgres::Error) -> bool {
        code(error) == Some(&SqlState::UNDEFINED_OBJECT)
            && error
                .as_db_error()
                .is_some_and(|db| db.message().contains(&self.set.name))
    }

    /// A server error of this grant, with what it was for; nothing was granted.
    pub(crate) fn failed(&self, e: &tokio_postgres::Error) -> ProviderError {
        let scope: Vec<String> = self.required.iter().map(ToString::to_string).collect();
        ProviderError::failed(
            "grant",
            format!(
                "{}; nothing was granted (privileges: {})",
                describe(e),
                list(&scope)
            ),
        )
    }
}

/// Lists up to ten items, then how many more.
pub(crate) fn list(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        text.push_str(&format!(" and {} more", items.len() - 10));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::scram;

    fn request(scope: &str) -> GrantRequest {
        GrantRequest {
            test: "t::a".into(),
            run_id: "run".into(),
            lease_id: "abc_1_2".into(),
            permissions: jit_test::Scope::parse(scope).unwrap().permissions,
            deny: Vec::new(),
            ttl: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_batches_quote_everything_and_never_hold_the_password() {
        let mut plan = GrantPlan::new(&request("pg:select:public.orders"), "test", 10).unwrap();
        plan.verifier = scram::verifier(plan.password.expose(), 4096);
        let begin = plan.begin_sql();
        assert!(
            begin.starts_with("BEGIN; SET LOCAL synchronous_commit = off;"),
            "{begin}"
        );
        assert!(begin.contains("pg_advisory_xact_lock_shared("), "{begin}");
        assert!(
            begin.contains("now() + make_interval(secs => 30.000000)"),
            "{begin}"
        );
        let sql = plan.create_sql("2030-01-01T00:00:00.000000Z", 1_893_456_000_000);
        assert!(
            sql.contains(r#"CREATE ROLE "jit_abc_1_2" WITH LOGIN"#),
            "{sql}"
        );
        assert!(sql.contains("PASSWORD E'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(!sql.contains(plan.password.expose()));
        assert!(
            sql.contains("VALID UNTIL E'2030-01-01T00:00:00.000000Z'"),
            "{sql}"
        );
        assert!(sql.contains("IN ROLE \"jit_lease\", \"jit_set_"), "{sql}");
        assert!(
            sql.contains(r#"COMMENT ON ROLE "jit_abc_1_2" IS E'{"lease":"abc_1_2""#),
            "{sql}"
        );
        assert!(
            sql.contains(r#""expires_at":1893456000,"expires_at_ms":1893456000000}'"#),
            "{sql}"
        );
        assert!(
            !sql.contains("GRANT "),
            "the group design grants nothing to the role"
        );
    }

    #[test]
    fn one_permission_set_per_distinct_set_whatever_the_order() {
        let a = GrantPlan::new(
            &request("pg:select:public.a, pg:insert:public.b"),
            "test",
            10,
        )
        .unwrap();
        let b = GrantPlan::new(
            &request("pg:insert:public.b, pg:select:public.a"),
            "test",
            10,
        )
        .unwrap();
        let c = GrantPlan::new(&request("pg:select:public.a"), "test", 10).unwrap();
        let d = GrantPlan::new(&request("pg:select:public.a"), "shop", 10).unwrap();
        let name = |p: &GrantPlan| p.set.name.clone();
        assert_eq!(name(&a), name(&b));
        assert_ne!(name(&a), name(&c));
        assert_ne!(name(&c), name(&d));
        assert!(
            name(&a).len() <= 63 && name(&a).starts_with(super::super::permission_set::SET_PREFIX)
        );
    }
}
