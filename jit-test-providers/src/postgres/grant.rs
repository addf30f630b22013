//! Granting: one transaction creates the login role (password verifier, `VALID UNTIL`
//! on the server's clock, connection limit, lease metadata comment), gives it its
//! privileges, and checks what it can effectively do before anything commits.

use std::time::{Duration, Instant, SystemTime};

use jit_test::{GrantRequest, Granted, ProviderError, Secret};
use tokio_postgres::error::SqlState;

use super::credential::{PgGrant, PgLease, login_config};
use super::ident::{quote_ident, quote_literal};
use super::pool::Conn;
use super::privileges::{self, Held, Kind, Privilege, implied};
use super::retry::{ATTEMPTS, backoff, code, describe, is_transient};
use super::settings::Design;
use super::{GROUP_ROLE, LOCK_CLASS, PREFIX, PgProvider, effective, scram};

/// Name prefix of the NOLOGIN roles that hold one permission set each.
pub(crate) const SET_PREFIX: &str = "jit_set_";

/// Sets the role's expiry to the server's `now()` + ttl and writes the lease metadata
/// with that expiry. Fixed text: the values come from `set_config`, never pasted in.
const SET_EXPIRY: &str = "DO $jit$
DECLARE
    r text := current_setting('jit.role');
    u timestamptz := now() + make_interval(secs => current_setting('jit.ttl')::float8);
BEGIN
    EXECUTE format('ALTER ROLE %I VALID UNTIL %L', r, u);
    EXECUTE format('COMMENT ON ROLE %I IS %L', r,
        jsonb_set(current_setting('jit.meta')::jsonb, '{expires_at}',
                  to_jsonb(ceil(extract(epoch FROM u))::bigint))::text);
END
$jit$;
";

/// Creates the permission-set role if missing. Fixed text, as [`SET_EXPIRY`].
const CREATE_SET: &str = "DO $jit$
DECLARE
    r text := current_setting('jit.set');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
        EXECUTE format('COMMENT ON ROLE %I IS %L', r,
            jsonb_set(current_setting('jit.set_comment')::jsonb, '{created_at}',
                      to_jsonb(floor(extract(epoch FROM now()))::bigint))::text);
    END IF;
END
$jit$;
";

/// A NOLOGIN role holding the privileges of one distinct permission set.
#[derive(Clone, Debug)]
pub(crate) struct PermissionSet {
    pub(crate) name: String,
    pub(crate) key: i32,
    privileges: Vec<Privilege>,
}

impl PermissionSet {
    /// The set for `privileges` (granted and implied): its name is a hash of their
    /// canonical form, so every process finds the same role.
    pub(crate) fn new(privileges: &[Privilege]) -> PermissionSet {
        let mut canonical: Vec<String> = privileges.iter().map(ToString::to_string).collect();
        canonical.sort();
        canonical.dedup();
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.join(",").as_bytes());
        let hex: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        PermissionSet {
            key: lock_key(&hex),
            name: format!("{SET_PREFIX}{hex}"),
            privileges: privileges.to_vec(),
        }
    }

    fn comment(&self) -> String {
        let listed: Vec<String> = self.privileges.iter().map(ToString::to_string).collect();
        serde_json::json!({ "jit_test_permission_set": listed }).to_string()
    }

    /// Creates the role if missing and grants its privileges (idempotent), under an
    /// exclusive advisory lock on the set: no grant adds a member meanwhile, and the reaper
    /// cannot drop it.
    fn ensure_sql(&self) -> String {
        let mut sql = format!(
            "BEGIN;\nSELECT pg_advisory_xact_lock({LOCK_CLASS}, {});\n\
             SELECT set_config('jit.set', {}, true), set_config('jit.set_comment', {}, true);\n{CREATE_SET}",
            self.key,
            quote_literal(&self.name),
            quote_literal(&self.comment()),
        );
        for p in &self.privileges {
            sql.push_str(&p.grant_sql(&self.name));
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT;");
        sql
    }
}

/// The advisory-lock key of a permission set, from the hex digits of its name.
pub(crate) fn lock_key(hex: &str) -> i32 {
    let n = u32::from_str_radix(hex.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    // 0 and 1 are the reaper's and the group role's keys.
    ((n & 0x7fff_ffff) as i32).max(2)
}

/// Everything one grant needs, worked out before the first statement.
pub(crate) struct Plan {
    pub(crate) role: String,
    password: Secret,
    verifier: String,
    meta: String,
    ttl: Duration,
    connection_limit: u32,
    /// Granted and implied privileges.
    pub(crate) required: Vec<Privilege>,
    denied: Vec<Privilege>,
    /// Schemas whose objects count for the effective-privilege report.
    report_schemas: Vec<String>,
    /// Schemas and databases the effective-privilege query looks at.
    schemas: Vec<String>,
    databases: Vec<String>,
    pub(crate) set: Option<PermissionSet>,
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

impl Plan {
    pub(crate) fn new(
        request: &GrantRequest,
        database: &str,
        design: Design,
        connection_limit: u32,
    ) -> Result<Plan, ProviderError> {
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
        let meta = serde_json::to_string(&request.meta(SystemTime::now() + request.ttl))
            .map_err(|e| ProviderError::failed("grant", e))?;
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
        Ok(Plan {
            set: (design == Design::Group).then(|| PermissionSet::new(&required)),
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

    /// The grant's first batch: everything but the COMMIT, ending with the
    /// effective-privilege query.
    pub(crate) fn sql(&self) -> String {
        let role = quote_ident(&self.role);
        let mut sql = String::from("BEGIN;\n");
        let mut groups = quote_ident(GROUP_ROLE);
        if let Some(set) = &self.set {
            // Shared: grants of one set run in parallel; the set cannot be changed or
            // dropped until this transaction ends.
            sql.push_str(&format!(
                "SELECT pg_advisory_xact_lock_shared({LOCK_CLASS}, {});\n",
                set.key
            ));
            groups.push_str(&format!(", {}", quote_ident(&set.name)));
        }
        sql.push_str(&format!(
            "SELECT set_config('jit.role', {}, true), set_config('jit.meta', {}, true), \
             set_config('jit.ttl', {}, true);\n",
            quote_literal(&self.role),
            quote_literal(&self.meta),
            quote_literal(&format!("{:.6}", self.ttl.as_secs_f64())),
        ));
        // Born expired; SET_EXPIRY gives it its lifetime in the same transaction.
        sql.push_str(&format!(
            "CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS INHERIT CONNECTION LIMIT {} PASSWORD {} VALID UNTIL '-infinity' \
             IN ROLE {groups};\n",
            self.connection_limit,
            quote_literal(&self.verifier),
        ));
        sql.push_str(SET_EXPIRY);
        if self.set.is_none() {
            for p in &self.required {
                sql.push_str(&p.grant_sql(&self.role));
                sql.push_str(";\n");
            }
        }
        sql.push_str(&effective::query(
            &self.role,
            &self.schemas,
            &self.databases,
        ));
        sql.push_str(";\n");
        sql
    }
}

/// What the effective-privilege query found.
pub(crate) struct Findings {
    pub(crate) missing: Vec<String>,
    pub(crate) violated: Vec<String>,
    pub(crate) beyond: Vec<String>,
}

impl Plan {
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

/// Ends a failed transaction; a connection that cannot is not reused.
pub(crate) async fn rollback(conn: &mut Conn<'_>) {
    if conn.client().batch_execute("ROLLBACK").await.is_err() {
        conn.discard();
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

/// Runs the grant: ensures the permission set, creates the role, checks, commits.
pub(crate) async fn grant(
    provider: &PgProvider,
    request: &GrantRequest,
) -> Result<Granted<PgProvider>, ProviderError> {
    let settings = &provider.settings;
    let database = settings.database();
    let mut plan = Plan::new(
        request,
        &database,
        settings.design,
        settings.connection_limit,
    )?;
    // The server stores only the SCRAM verifier: the password never reaches it (nor its
    // logs) in clear. PBKDF2 is CPU work: off the runtime's threads.
    let password = plan.password.clone();
    plan.verifier = tokio::task::spawn_blocking(move || scram::verifier(password.expose()))
        .await
        .map_err(|e| ProviderError::failed("grant", e))?;
    let init = provider.init().await?;
    for db in plan.login_databases() {
        if let Err(message) = init.hba.check(db) {
            if !settings.allow_trust {
                return Err(ProviderError::Misconfigured(message));
            }
            provider.warn_trust_once(&message);
        }
    }
    let sql = plan.sql();
    // Optimistic: the permission set usually exists with its privileges. If it is
    // missing, or lacks a privilege, it is (re)made and the grant tried again.
    let mut ensure: Option<Instant> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(set) = &plan.set
            && let Some(failed_at) = ensure.take()
        {
            ensure_set(provider, set, &plan, failed_at).await?;
        }
        let started = SystemTime::now();
        let started_at = Instant::now();
        let mut conn = provider.pool.get().await?;
        let messages = match conn.client().simple_query(&sql).await {
            Ok(messages) => messages,
            Err(e) => {
                rollback(&mut conn).await;
                let set_gone = plan.set.as_ref().is_some_and(|set| {
                    code(&e) == Some(&SqlState::UNDEFINED_OBJECT)
                        && e.as_db_error()
                            .is_some_and(|db| db.message().contains(&set.name))
                });
                ensure = set_gone.then_some(started_at);
                if (set_gone || is_transient(&e)) && attempt < ATTEMPTS {
                    drop(conn);
                    backoff(attempt).await;
                    continue;
                }
                return Err(grant_failed(&plan, &e));
            }
        };
        let findings = plan.judge(&effective::rows(&messages));
        if !findings.missing.is_empty() {
            rollback(&mut conn).await;
            if plan.set.is_some() && attempt < ATTEMPTS {
                // The set is new, or its privileges went away (a table dropped and
                // created again): grant them again.
                ensure = Some(started_at);
                continue;
            }
            return Err(ProviderError::failed(
                "grant",
                format!(
                    "after granting, role {} still lacks {}; nothing was granted. Are these \
                     objects of the kind the scope says?",
                    plan.role,
                    list(&findings.missing)
                ),
            ));
        }
        if !findings.violated.is_empty() {
            rollback(&mut conn).await;
            return Err(ProviderError::failed(
                "deny check",
                format!(
                    "role {} would hold denied permission {}; nothing was granted. The privilege \
                     comes from PUBLIC, a group role or ownership: revoke it there, or remove it \
                     from `deny`",
                    plan.role,
                    list(&findings.violated)
                ),
            ));
        }
        if settings.strict && !findings.beyond.is_empty() {
            rollback(&mut conn).await;
            return Err(ProviderError::failed(
                "strict privilege check",
                format!(
                    "role {} can do more than its scope: {}. These come from PUBLIC, default \
                     privileges or a group role; revoke them (e.g. REVOKE ... FROM PUBLIC), add \
                     them to the scope, or set strict = false under [providers.pg]",
                    plan.role,
                    list(&findings.beyond)
                ),
            ));
        }
        match conn.client().batch_execute("COMMIT").await {
            Ok(()) => {}
            Err(e) => {
                conn.discard();
                if is_transient(&e) && attempt < ATTEMPTS {
                    drop(conn);
                    backoff(attempt).await;
                    continue;
                }
                return Err(grant_failed(&plan, &e));
            }
        }
        drop(conn);
        let config = login_config(provider.pool.config(), &plan.role, &plan.password);
        return Ok(Granted {
            principal: plan.role.clone(),
            expires_at: started + plan.ttl,
            credential: PgGrant {
                role: plan.role.clone(),
                config: config.clone(),
                database,
                expires_at: started + plan.ttl,
                beyond_scope: findings.beyond,
            },
            lease: PgLease {
                role: plan.role.clone(),
                config,
            },
        });
    }
}

fn grant_failed(plan: &Plan, e: &tokio_postgres::Error) -> ProviderError {
    let scope: Vec<String> = plan.required.iter().map(ToString::to_string).collect();
    ProviderError::failed(
        "grant",
        format!(
            "{}; nothing was granted (privileges: {})",
            describe(e),
            list(&scope)
        ),
    )
}

/// Creates or refreshes a permission set, retrying collisions with concurrent grants on
/// the same objects. One task of the process does it at a time; a set refreshed since
/// `failed_at` (by another task that met the same failure) is not refreshed again.
async fn ensure_set(
    provider: &PgProvider,
    set: &PermissionSet,
    plan: &Plan,
    failed_at: Instant,
) -> Result<(), ProviderError> {
    let mut ensured = provider.ensured.lock().await;
    if ensured.get(&set.name).is_some_and(|at| *at > failed_at) {
        return Ok(());
    }
    let sql = set.ensure_sql();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut conn = provider.pool.get().await?;
        match conn.client().simple_query(&sql).await {
            Ok(_) => {
                ensured.insert(set.name.clone(), Instant::now());
                return Ok(());
            }
            Err(e) => {
                rollback(&mut conn).await;
                drop(conn);
                if is_transient(&e) && attempt < ATTEMPTS {
                    backoff(attempt).await;
                    continue;
                }
                return Err(grant_failed(plan, &e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_batch_quotes_everything_and_never_holds_the_password() {
        let mut plan = Plan::new(
            &request("pg:select:public.orders"),
            "test",
            Design::Group,
            10,
        )
        .unwrap();
        plan.verifier = scram::verifier(plan.password.expose());
        let sql = plan.sql();
        assert!(
            sql.contains(r#"CREATE ROLE "jit_abc_1_2" WITH LOGIN"#),
            "{sql}"
        );
        assert!(sql.contains("PASSWORD E'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(!sql.contains(plan.password.expose()));
        assert!(sql.contains("IN ROLE \"jit_lease\", \"jit_set_"), "{sql}");
        assert!(sql.contains("VALID UNTIL '-infinity'"));
        assert!(
            !sql.contains("GRANT "),
            "the group design grants nothing to the role"
        );
        let direct = Plan::new(
            &request("pg:select:public.orders"),
            "test",
            Design::Direct,
            10,
        )
        .unwrap();
        let sql = direct.sql();
        assert!(sql.contains(r#"GRANT SELECT ON TABLE "public"."orders" TO "jit_abc_1_2""#));
        assert!(sql.contains(r#"GRANT USAGE ON SCHEMA "public" TO "jit_abc_1_2""#));
        assert!(sql.contains(r#"GRANT CONNECT ON DATABASE "test" TO "jit_abc_1_2""#));
    }

    #[test]
    fn one_permission_set_per_distinct_set_whatever_the_order() {
        let a = Plan::new(
            &request("pg:select:public.a, pg:insert:public.b"),
            "test",
            Design::Group,
            10,
        )
        .unwrap();
        let b = Plan::new(
            &request("pg:insert:public.b, pg:select:public.a"),
            "test",
            Design::Group,
            10,
        )
        .unwrap();
        let c = Plan::new(&request("pg:select:public.a"), "test", Design::Group, 10).unwrap();
        let d = Plan::new(&request("pg:select:public.a"), "shop", Design::Group, 10).unwrap();
        let name = |p: &Plan| p.set.as_ref().unwrap().name.clone();
        assert_eq!(name(&a), name(&b));
        assert_ne!(name(&a), name(&c));
        assert_ne!(name(&c), name(&d));
        assert!(name(&a).len() <= 63 && name(&a).starts_with(SET_PREFIX));
    }

    #[test]
    fn lock_keys_avoid_the_reserved_ones() {
        assert_eq!(lock_key("00000000"), 2);
        assert_eq!(lock_key("00000001"), 2);
        assert_eq!(lock_key("0000002a"), 42);
        assert_eq!(lock_key("ffffffff"), i32::MAX);
    }
}
