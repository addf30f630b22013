//! The `pg` provider: each test gets a fresh PostgreSQL login role holding exactly the
//! privileges of its scope, with a server-enforced expiry; afterwards the role is
//! revoked and proven dead.
//!
//! ```text
//! use jit_test::{jit_test, assert_denied};
//! use jit_test_providers::postgres::PgGrant;
//!
//! #[jit_test(scope = "pg:select:public.orders, pg:insert:public.orders", ttl = "30s")]
//! async fn customer_places_order(pg: PgGrant) -> anyhow::Result<()> {
//!     let db = pg.connect().await?;
//!     db.execute("INSERT INTO orders (sku) VALUES ('a1')", &[]).await?;
//!     assert_denied!(db.execute("DELETE FROM orders", &[]).await);   // SQLSTATE 42501
//!     Ok(())
//! }
//! ```
//!
//! # Scope grammar
//!
//! | permission | PostgreSQL privilege |
//! |---|---|
//! | `pg:select:public.orders` (also `insert`, `update`, `delete`, `truncate`, `references`, `trigger`) | that privilege on the table (or view) |
//! | `pg:select(id,sku):public.orders` (also `insert`, `update`, `references`) | the privilege on those columns only |
//! | `pg:select:app.*` | the privilege on every table of schema `app` (only where written) |
//! | `pg:usage:sequence:public.orders_id_seq` (also `select`, `update`; `app.*`) | on the sequence |
//! | `pg:execute:function:public.place_order` (`procedure:` for procedures; `app.*`) | `EXECUTE` |
//! | `pg:usage:schema:app`, `pg:create:schema:app` | on the schema |
//! | `pg:connect:database:shop` (also `create`, `temporary`) | on the database; log in there with [`PgGrant::connect_to`] |
//!
//! Implied, and nothing else: `USAGE` on the schema of every granted table, sequence,
//! function or procedure, and `CONNECT` on the database the credential connects to. A
//! table with a `serial` column needs `pg:usage:sequence:...` for `INSERT`; `create` on a
//! schema does not imply `usage`.
//!
//! Names follow PostgreSQL's rules for unquoted identifiers (a letter or `_`, then
//! letters, digits, `_`, `$`; at most 63 bytes) and, like unquoted identifiers, are folded
//! to lower case. Tables must be written with their schema. Every name is quoted when it
//! reaches SQL. Unknown tables, columns or functions fail the grant with PostgreSQL's own
//! message before the test body runs.
//!
//! # Lifecycle
//!
//! - **Grant**, in one transaction: `CREATE ROLE jit_<lease> LOGIN ... CONNECTION LIMIT n
//!   PASSWORD '<SCRAM verifier>' VALID UNTIL '<now() + ttl>' IN ROLE jit_lease,
//!   jit_set_<hash>`, the expiry computed by the server from its own clock, and a
//!   `COMMENT` holding the [`jit_test::LeaseMeta`] JSON. The password is 128 random bits;
//!   the server (and its logs) only ever see its SCRAM-SHA-256 verifier.
//! - **Privileges** are held by one NOLOGIN role per distinct permission set
//!   (`jit_set_<hash>`), created once under an advisory lock and granted again should an
//!   object be re-created; each login role is a member of it. Concurrent grants on one
//!   table therefore never collide ("tuple concurrently updated"), and table ACLs do not
//!   grow with each test. Granting to every login role directly was measured slower, alone
//!   and concurrently (see `BENCHMARKS.md`).
//! - **Check**, in the same transaction: what the role can *effectively* do on the
//!   objects of the scope's schemas (`has_*_privilege`): a missing privilege is granted
//!   again; a `deny` permission it holds fails the grant; privileges beyond the scope
//!   (from `PUBLIC`, default privileges, group roles) are reported in
//!   [`PgGrant::beyond_scope`] and the audit log (a `beyond_scope` event), and fail the grant
//!   with `strict = true`. Database-level privileges other than the scope's are not
//!   reported (`PUBLIC` has `CONNECT` and `TEMPORARY` on every database by default).
//! - **Revoke**: `ALTER ROLE ... NOLOGIN`, committed on its own, and the proof (below);
//!   then, in one transaction: `pg_terminate_backend` on the role's sessions, `DROP
//!   OWNED` (objects the role created go with it; where other objects depend on them, or
//!   with `keep_owned_objects = true`, they are handed to the admin with `REASSIGN
//!   OWNED`), `DROP ROLE`; after the commit, any session that logged in meanwhile is
//!   ended too. Other databases are visited only where the role owns objects or holds
//!   privileges there (`pg_shdepend` names them), never the rest: the cost of a
//!   revocation does not grow with the number of databases on the server. Should that transaction fail, the
//!   role is made `NOLOGIN` and its sessions ended at once, then the drop is retried
//!   (collisions with bounded backoff, objects in other databases dropped there); a role
//!   that does not exist counts as revoked.
//! - **Prove dead**, on the way: before the drop, the role is made `NOLOGIN` and the old
//!   password tried while the role still exists. The server checks it against the role's
//!   own verifier, then refuses the login: SQLSTATE 28000 ("not permitted to log in", or
//!   28P01 once the password expired) is the proof, and `DROP ROLE` commits after it. A
//!   role that cannot log in and is then dropped stays unable to (nothing can make a
//!   verifier for the password without knowing it), so the refusal proves what a login
//!   after the drop would. That later login would cost more than the whole grant: for a
//!   role that does not exist, PostgreSQL answers with a made-up SCRAM challenge of 4096
//!   iterations, which the client has to compute. When the role was already gone, or the
//!   early attempt could not reach the server, [`Provider::prove_dead`] logs in after the
//!   drop instead.
//! - **Reap**: roles of crashed runs whose metadata expiry plus grace has passed (by the
//!   server's clock), and permission sets no role uses, under an advisory lock
//!   ([`REAPER_LOCK`]).
//!
//! # Speed
//!
//! Each grant and each login costs one PBKDF2 run of `scram_iterations` in the client
//! (a login in tokio-postgres' `sha2`, which a debug build leaves unoptimised: ~50 ms at
//! 4096 iterations), and each grant one more in the server, which checks every new
//! password against the empty string. The passwords are 128 random bits from the
//! operating system's generator and live for one test, so PBKDF2's stretching buys them
//! nothing: the default is 1 iteration, and no login of a lease, the proof's included,
//! depends on how the user's build optimises hashing. Some client libraries (older JDBC
//! drivers, for one) refuse fewer than 4096 iterations: set `scram_iterations = 4096` for
//! them, and, in a debug build, optimise the client's hashing in your workspace's
//! `Cargo.toml`:
//!
//! ```toml
//! [profile.dev.package.sha2]
//! opt-level = 3
//! [profile.dev.package.hmac]
//! opt-level = 3
//! ```
//!
//! # The server must check passwords
//!
//! `VALID UNTIL` is enforced only by password authentication. Before the first grant the
//! provider reads `pg_hba_file_rules` and finds the rule a member of `jit_lease`
//! connecting from here would match; unless it is `scram-sha-256`, `md5` or `password`,
//! every grant fails with the `pg_hba.conf` line to add, e.g.
//!
//! ```text
//! host    all   +jit_lease   127.0.0.1/32   scram-sha-256
//! ```
//!
//! above the `trust` rules (`.ci/setup-postgres` does it). As `pg_hba_file_rules` shows
//! the file, not what the server has loaded, the first role granted in each process is
//! also tried without a password: unless the server asks for one, the role is revoked and
//! the grant fails, asking for a reload. `allow_trust = true` or
//! `JIT_TEST_PG_ALLOW_TRUST=1` runs anyway, without that guarantee.
//!
//! # Configuration
//!
//! The admin connection (a superuser, or a role with `CREATEROLE` that may read
//! `pg_hba_file_rules`) comes from `JIT_TEST_PG_URL`, else `DATABASE_URL`, else `url` in
//! `[providers.pg]`, else `host=127.0.0.1 port=5432 user=postgres dbname=test` (the local
//! server of the development machines). Credentials connect to the same host, port and
//! database. `[providers.pg]` in `jit-test.toml`:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | see above | admin connection, URL or `key=value` form |
//! | `strict` | `false` | fail a grant whose role can do more than its scope (`JIT_TEST_PG_STRICT=1`) |
//! | `allow_trust` | `false` | run where the server would not check passwords (`JIT_TEST_PG_ALLOW_TRUST=1`) |
//! | `connection_limit` | `10` | `CONNECTION LIMIT` of each role |
//! | `pool_size` | `4` | admin connections kept open at most |
//! | `connect_timeout` | `5s` | how long to wait for the server |
//! | `keep_owned_objects` | `false` | on revoke, hand objects the role created to the admin instead of dropping them |
//! | `scram_iterations` | `1` | PBKDF2 iterations of the roles' SCRAM-SHA-256 verifiers (see *Speed*) |
//!
//! Admin connections are made lazily, once per process, on
//! `jit_test::broker_runtime()`; an unreachable server fails within
//! `connect_timeout` with [`ProviderError::Unreachable`] naming the address and
//! `JIT_TEST_PG_URL`.

mod class;
mod credential;
mod effective;
mod grant;
mod handoff;
mod hba;
pub mod ident;
mod outage;
mod permission_set;
mod plan;
mod pool;
mod privileges;
mod reaper;
mod retry;
mod revoke;
mod roles;
mod scram;
mod settings;
mod state;

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError,
};
use tokio_postgres::error::DbError;

pub use credential::{PgGrant, PgLease};
pub use roles::{GROUP_ROLE, PREFIX, REAPER_LOCK};
pub use settings::{DEFAULT_URL, PgSettings, URL_VAR};

use class::classify_code;
use handoff::{on_broker, on_broker_only};
use state::Inner;

/// The PostgreSQL provider (scheme `pg`). See the [module documentation](self).
pub struct PgProvider {
    inner: Arc<Inner>,
}

impl PgProvider {
    /// A provider with these settings. Connects lazily. Makes its error classification
    /// known to `assert_denied!` and `assert_unauthenticated!`.
    pub fn new(settings: PgSettings) -> PgProvider {
        jit_test::register::<PgProvider>();
        PgProvider {
            inner: Arc::new(Inner::new(settings)),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &PgSettings {
        &self.inner.settings
    }

    /// An admin connection outside the pool, driven on the broker's runtime (for test
    /// fixtures and tools). Its Debug output shows no password.
    pub async fn admin_client(&self) -> Result<tokio_postgres::Client, ProviderError> {
        self.inner.pool.connect(None).await
    }
}

impl jit_test::Credential for PgGrant {
    type Provider = PgProvider;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(PgGrant);

impl Provider for PgProvider {
    const SCHEME: &'static str = "pg";
    type Credential = PgGrant;
    type Lease = PgLease;

    fn from_config(config: &Config) -> Result<Self, ProviderError> {
        Ok(PgProvider::new(PgSettings::from_config(config)?))
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        privileges::Privilege::parse(permission).map(drop)
    }

    async fn grant(&self, request: &GrantRequest) -> Result<Granted<Self>, ProviderError> {
        let (inner, back) = (Arc::clone(&self.inner), Arc::clone(&self.inner));
        let request = request.clone();
        let work = async move { grant::grant::<PgProvider>(&inner, &request).await };
        // Nobody waits for the grant any more: take it back at once.
        let take_back = |granted: Granted<PgProvider>| {
            tokio::spawn(async move {
                let keep = back.settings.keep_owned_objects;
                let _ = revoke::revoke(&back.pool, &granted.lease.role, keep).await;
            });
        };
        on_broker("grant", work, take_back).await
    }

    async fn revoke(&self, lease: &PgLease) -> Result<(), ProviderError> {
        let inner = Arc::clone(&self.inner);
        let lease = lease.clone();
        on_broker_only("revoke", async move {
            let keep = inner.settings.keep_owned_objects;
            revoke::revoke_proving(&inner.pool, &inner.logins, &lease, keep).await
        })
        .await
    }

    async fn prove_dead(&self, lease: &PgLease) -> Result<Proof, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let lease = lease.clone();
        on_broker_only("proof", async move {
            revoke::prove_dead(&lease, &inner.logins).await
        })
        .await
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        let db = match error.downcast_ref::<tokio_postgres::Error>() {
            Some(e) => e.as_db_error()?,
            None => error.downcast_ref::<DbError>()?,
        };
        Some(classify_code(db.code()))
    }

    async fn reap(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("reap", async move { reaper::reap(&inner, grace).await }).await
    }
}

/// The provider's own statements, for the benchmark (`benches/pg_lifecycle.rs`) to send
/// over a plain connection as its floor. Not a public API.
#[doc(hidden)]
pub mod __bench {
    use jit_test::{GrantRequest, Secret};
    use tokio_postgres::{Client, Statement};

    use super::PgProvider;

    /// Prepares the effective-privilege query on `client`.
    pub async fn prepare(client: &Client) -> Statement {
        client
            .prepare(super::effective::QUERY)
            .await
            .expect("prepare")
    }

    /// Runs the provider's grant transaction on `client`, computing the SCRAM verifier
    /// (`iterations`) on the calling thread, and commits. Returns the role and its password.
    pub async fn grant(
        client: &Client,
        effective: &Statement,
        request: &GrantRequest,
        database: &str,
        iterations: u32,
    ) -> (String, Secret) {
        let mut plan = super::plan::GrantPlan::new(request, database, 10).expect("plan");
        plan.verifier = super::scram::verifier(plan.password.expose(), iterations);
        plan.run(client, effective).await.expect("grant");
        client.batch_execute("COMMIT").await.expect("commit");
        (plan.role.clone(), plan.password.clone())
    }

    /// Whether `provider` saw the server ask a fresh role for its password (after its
    /// first grant).
    pub fn auth_checked(provider: &PgProvider) -> bool {
        provider
            .inner
            .auth_checked
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The revocation batch.
    pub fn revoke_sql(role: &str) -> String {
        super::revoke::revoke_sql(role, false)
    }

    /// The statement that makes the role NOLOGIN before the proof's login attempt.
    pub fn bar_login_sql(role: &str) -> String {
        super::revoke::bar_login_sql(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_accepts_the_grammar_and_explains_rejections() {
        let ok = |s: &str| PgProvider::validate(&s.parse().unwrap());
        assert_eq!(ok("pg:select(id,sku):public.orders"), Ok(()));
        assert_eq!(ok("pg:usage:sequence:public.orders_id_seq"), Ok(()));
        assert!(ok("pg:fly:public.orders").unwrap_err().contains("select"));
    }
}
