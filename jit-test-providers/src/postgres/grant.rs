//! Granting: one transaction creates the login role (password verifier, `VALID UNTIL`
//! on the server's clock, connection limit, lease metadata comment), gives it its
//! privileges, and checks what it can effectively do before anything commits.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use jit_test::{GrantRequest, Granted, LeaseMeta, ProviderError, Secret};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use super::credential::{PgGrant, PgLease, login_config, login_config_without_password};
use super::ident::{quote_ident, quote_literal};
use super::pool::Conn;
use super::privileges::{self, Held, Kind, Privilege, implied};
use super::retry::{ATTEMPTS, backoff, code, describe, is_transient};
use super::{GROUP_ROLE, Inner, LOCK_CLASS, PREFIX, PgProvider, effective, hba, revoke, scram};

/// How the privileges of a lease are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// Each distinct permission set has one NOLOGIN role holding its privileges, created
    /// once under an advisory lock; every login role is a member of it. Concurrent grants
    /// touch no table's ACL. What the provider does.
    Group,
    /// Every login role receives its privileges directly (`GRANT ... TO jit_...`).
    /// Concurrent grants on one table collide ("tuple concurrently updated") and are
    /// retried; each lease adds an entry to the table's ACL while it lives. Measured
    /// slower, alone and concurrently (BENCHMARKS.md); kept for the benchmark.
    Direct,
}

/// Up to this many PBKDF2 iterations the verifier is made on the calling thread.
const INLINE_ITERATIONS: u32 = 64;

/// Name prefix of the NOLOGIN roles that hold one permission set each.
pub(crate) const SET_PREFIX: &str = "jit_set_";

/// Creates the permission-set role if missing. Fixed text: the values come from
/// `set_config`, never pasted in.
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
    pub(crate) password: Secret,
    pub(crate) verifier: String,
    meta: LeaseMeta,
    ttl: Duration,
    connection_limit: u32,
    /// Granted and implied privileges.
    pub(crate) required: Vec<Privilege>,
    denied: Vec<Privilege>,
    /// Schemas whose objects count for the effective-privilege report.
    report_schemas: Vec<String>,
    /// Schemas and databases the effective-privilege query looks at.
    pub(crate) schemas: Vec<String>,
    pub(crate) databases: Vec<String>,
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

    /// The transaction's first batch: BEGIN, the set's shared lock, and the expiry
    /// `now() + ttl` computed on the server's clock (as UTC text and epoch seconds).
    ///
    /// `synchronous_commit = off` for the grant only: should the server crash right after
    /// the commit, the role may be lost with it, which fails the test and leaks nothing.
    /// Revocations stay synchronous.
    pub(crate) fn begin_sql(&self) -> String {
        let mut sql = String::from("BEGIN; SET LOCAL synchronous_commit = off;\n");
        if let Some(set) = &self.set {
            // Shared: grants of one set run in parallel; the set cannot be changed or
            // dropped until this transaction ends.
            sql.push_str(&format!(
                "SELECT pg_advisory_xact_lock_shared({LOCK_CLASS}, {});\n",
                set.key
            ));
        }
        let until = format!(
            "now() + make_interval(secs => {:.6})",
            self.ttl.as_secs_f64()
        );
        sql.push_str(&format!(
            "SELECT to_char(({until}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             AS jit_until, ceil(extract(epoch FROM {until}))::bigint::text AS jit_epoch;"
        ));
        sql
    }

    /// The second batch: the role, valid until `until` (the server's own value), its
    /// lease metadata with expiry `epoch`, and (design `direct`) its privileges.
    pub(crate) fn create_sql(&self, until: &str, epoch: u64) -> String {
        let role = quote_ident(&self.role);
        let mut groups = quote_ident(GROUP_ROLE);
        if let Some(set) = &self.set {
            groups.push_str(&format!(", {}", quote_ident(&set.name)));
        }
        let mut meta = self.meta.clone();
        meta.expires_at = epoch;
        let meta = serde_json::to_string(&meta).expect("plain data serialises");
        let mut sql = format!(
            "CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS INHERIT CONNECTION LIMIT {} PASSWORD {} VALID UNTIL {} IN ROLE {groups};\n\
             COMMENT ON ROLE {role} IS {};\n",
            self.connection_limit,
            quote_literal(&self.verifier),
            quote_literal(until),
            quote_literal(&meta),
        );
        if self.set.is_none() {
            for p in &self.required {
                sql.push_str(&p.grant_sql(&self.role));
                sql.push_str(";\n");
            }
        }
        sql
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
    provider: &Inner,
    request: &GrantRequest,
) -> Result<Granted<PgProvider>, ProviderError> {
    let settings = &provider.settings;
    let database = settings.database();
    let mut plan = Plan::new(
        request,
        &database,
        provider.design,
        settings.connection_limit,
    )?;
    // The server stores only the SCRAM verifier: the password never reaches it (nor its
    // logs) in clear. PBKDF2 of thousands of iterations is CPU work: off the runtime's
    // threads, while the rest goes on; a few iterations cost less than the hand-over.
    let password = plan.password.clone();
    let iterations = settings.scram_iterations;
    let verifier = if iterations <= INLINE_ITERATIONS {
        Ok(scram::verifier(password.expose(), iterations))
    } else {
        Err(tokio::task::spawn_blocking(move || {
            scram::verifier(password.expose(), iterations)
        }))
    };
    let init = provider.init().await?;
    for db in plan.login_databases() {
        let checked = init
            .hba
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|h| h.check(db));
        if let Err(message) = checked {
            if !settings.allow_trust {
                return Err(ProviderError::Misconfigured(message));
            }
            provider.warn_trust_once(&message);
        }
    }
    plan.verifier = match verifier {
        Ok(verifier) => verifier,
        Err(task) => task.await.map_err(|e| ProviderError::failed("grant", e))?,
    };
    // Optimistic: the permission set usually exists with its privileges. If it is
    // missing, or lacks a privilege, it is (re)made and the grant tried again.
    let mut ensure: Option<Instant> = None;
    let mut refreshes = 0;
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
        let outcome = match conn.effective().await {
            Ok(statement) => plan.run(conn.client(), &statement).await,
            Err(e) => Err(e),
        };
        let findings = match outcome {
            Ok(findings) => findings,
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
        if !findings.missing.is_empty() {
            rollback(&mut conn).await;
            if plan.set.is_some() && refreshes < 2 {
                // The set's privileges went away (a table dropped and created again):
                // grant them again, once or twice.
                refreshes += 1;
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
        if !settings.allow_trust && !provider.auth_checked.load(Ordering::Relaxed) {
            check_authentication(provider, &plan.role).await?;
        }
        let config = login_config(provider.pool.config(), &plan.role, &plan.password);
        return Ok(Granted {
            principal: plan.role.clone(),
            expires_at: started + plan.ttl,
            credential: PgGrant {
                role: plan.role.clone(),
                config: config.clone(),
                database,
                expires_at: started + plan.ttl,
                beyond_scope: findings.beyond.clone(),
            },
            lease: PgLease {
                role: plan.role.clone(),
                config,
            },
            beyond_scope: findings.beyond,
        });
    }
}

/// Once per process, with the first role granted: does the server, as it runs now, ask
/// the role for its password? If not, the role is revoked and the grant fails.
async fn check_authentication(provider: &Inner, role: &str) -> Result<(), ProviderError> {
    let config = login_config_without_password(provider.pool.config(), role);
    match hba::password_required(&config).await {
        Some(Ok(())) => {
            provider.auth_checked.store(true, Ordering::Relaxed);
            Ok(())
        }
        Some(Err(what)) => {
            let _ =
                revoke::revoke(&provider.pool, role, provider.settings.keep_owned_objects).await;
            let file = provider
                .init()
                .await
                .ok()
                .and_then(|i| i.hba.as_ref().ok().map(|h| h.file.clone()))
                .unwrap_or_else(|| "pg_hba.conf".to_owned());
            Err(ProviderError::Misconfigured(format!(
                "PostgreSQL would not check the passwords of jit-test's roles, so their expiry \
                 (VALID UNTIL) would not be enforced: role {role} {what}. {file} may have been \
                 changed without reloading the configuration: run SELECT pg_reload_conf() (or \
                 .ci/setup-postgres as root). To run without this guarantee, set \
                 `allow_trust = true` under [providers.pg] or JIT_TEST_PG_ALLOW_TRUST=1"
            )))
        }
        None => Ok(()), // inconclusive: the next grant tries again
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
    provider: &Inner,
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
    fn the_batches_quote_everything_and_never_hold_the_password() {
        let mut plan = Plan::new(
            &request("pg:select:public.orders"),
            "test",
            Design::Group,
            10,
        )
        .unwrap();
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
        let sql = plan.create_sql("2030-01-01T00:00:00.000000Z", 1_893_456_000);
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
        assert!(sql.contains(r#""expires_at":1893456000}'"#), "{sql}");
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
        assert!(!direct.begin_sql().contains("advisory"));
        let sql = direct.create_sql("x", 0);
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
