//! The `mysql` provider: each test gets a fresh MariaDB/MySQL user holding exactly the
//! privileges of its scope, which the **server** drops at the ttl (a one-shot event),
//! even when every process of the run was killed; afterwards the user is revoked and
//! proven dead.
//!
//! ```text
//! use jit_test::{jit_test, assert_denied};
//! use jit_test_providers::mysql::MysqlGrant;
//! use mysql_async::prelude::Queryable;
//!
//! #[jit_test(scope = "mysql:select:shop.orders, mysql:insert:shop.orders", ttl = "30s")]
//! async fn customer_places_order(db: MysqlGrant) -> anyhow::Result<()> {
//!     let mut conn = db.connect().await?;
//!     conn.query_drop("INSERT INTO shop.orders (sku) VALUES ('a1')").await?;
//!     assert_denied!(conn.query_drop("DELETE FROM shop.orders").await);   // ERROR 1142
//!     Ok(())
//! }
//! ```
//!
//! # Scope grammar
//!
//! | permission | MariaDB privilege |
//! |---|---|
//! | `mysql:select:shop.orders` (also `insert`, `update`, `delete`) | that privilege on the table (or view) |
//! | `mysql:update(status):shop.orders` (also `select`, `insert`) | the privilege on those columns only |
//! | `mysql:select:shop.*` (also `insert`, `update`, `delete`) | on every table of database `shop` (`GRANT ... ON shop.*`) |
//! | `mysql:execute:procedure:shop.place_order` (`function:` for functions) | `EXECUTE` on the routine |
//!
//! Names hold ASCII letters, digits, `_` and `$` (at most 64 characters, not all
//! digits); database and table names are case-sensitive, column names are not. Every
//! name is quoted with backticks when it reaches SQL; in a database-level grant, `_` and
//! `%` are escaped, so `my_db.*` covers `my_db` only. Server-wide (`*.*`) grants are
//! rejected. A missing table or routine fails the grant with the server's message.
//!
//! # Lifecycle
//!
//! - **Grant**, one batch: `CREATE EVENT jit_test.jit_<lease> ON SCHEDULE AT
//!   CURRENT_TIMESTAMP + INTERVAL <ttl> SECOND ... DO BEGIN DROP USER ...; KILL
//!   CONNECTION USER ...; END` first, then `CREATE USER 'jit_<lease>'@'<host>' IDENTIFIED
//!   BY PASSWORD '<hash>' WITH MAX_USER_CONNECTIONS n`, `GRANT jit_set_<hash> TO ...` and
//!   `SET DEFAULT ROLE`. The password is 128 random bits; the server only ever sees its
//!   native hash. The event's comment holds the expiry and the owning process for the
//!   reaper.
//! - **Privileges** are held by one role per distinct permission set (`jit_set_<hash>`,
//!   made once per process with `CREATE ROLE IF NOT EXISTS` and its `GRANT`s); it cannot
//!   log in and stays on the server for the next run. Granting to every user directly was
//!   measured to scale worse under 200 concurrent tests (see `BENCHMARKS.md`).
//! - **Check**: what the user, `PUBLIC` and anonymous accounts hold
//!   (`information_schema.*_PRIVILEGES`, `mysql.procs_priv`): a `deny` permission held
//!   fails the grant before the body runs; anything beyond the scope is reported in
//!   [`MysqlGrant::beyond_scope`] and the audit log, and fails the grant with
//!   `strict = true`.
//! - **Revoke**, one batch: `ALTER USER ... ACCOUNT LOCK`, `KILL CONNECTION USER`, `DROP
//!   USER`, `DROP EVENT`. Live sessions are cut (a session keeps database-level
//!   privileges cached, so dropping the user alone would not stop it). Retried with
//!   backoff; a user already gone counts as revoked.
//! - **Prove dead**: log in with the old password; error 1045 is the proof (1698 when
//!   the server imitates another account's plugin for an unknown user; 4151 while locked).
//! - **Expiry**: the event drops the user at the ttl by the server's clock, with no
//!   jit-test process alive. It needs `event_scheduler = ON` (`.ci/setup-mysql` sets it
//!   and makes it survive a restart); when it is off and cannot be turned on, the
//!   provider says so on stderr once and relies on the broker's watchdog and the reaper.
//! - **Reap**: events of leases whose expiry plus grace has passed by the server's clock,
//!   with their user if the event did not run, under the named lock [`REAPER_LOCK`].
//!
//! # Configuration
//!
//! The admin connection (a user that may create users and events, grant, and kill
//! connections) comes from `JIT_TEST_MYSQL_URL`, else `url` in `[providers.mysql]`, else
//! [`DEFAULT_URL`]. Credentials connect to the same host and port, with the scope's
//! database as their default database when the scope names exactly one.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | `mysql://root@127.0.0.1:3306/test` | admin connection |
//! | `strict` | `false` | fail a grant whose user can do more than its scope (`JIT_TEST_MYSQL_STRICT=1`) |
//! | `connection_limit` | `10` | `MAX_USER_CONNECTIONS` of each user |
//! | `pool_size` | `4` | admin connections kept open at most |
//! | `connect_timeout` | `5s` | how long to wait for the server |
//! | `account_host` | `127.0.0.1` for a loopback server, else `%` | host part of each account |
//!
//! An unreachable server fails within `connect_timeout` with
//! [`ProviderError::Unreachable`] naming the address and `JIT_TEST_MYSQL_URL`.

mod credential;
mod effective;
mod errors;
mod expiry;
mod grant;
pub mod ident;
mod privileges;
mod reaper;
mod revoke;
mod settings;

use std::collections::HashSet;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError,
};
use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Pool, PoolConstraints, PoolOpts};
use tokio::sync::OnceCell;

use crate::handoff::{on_broker, on_broker_only};

pub use credential::{MysqlGrant, MysqlLease};
pub use expiry::EVENT_SCHEMA;
pub use grant::{Design, PREFIX, SET_PREFIX};
pub use reaper::REAPER_LOCK;
pub use settings::{DEFAULT_URL, MysqlSettings, URL_VAR};

use credential::login_opts;
use grant::Plan;

/// How long a grant may wait for a pooled admin connection while others work.
const POOL_WAIT: Duration = Duration::from_secs(60);

/// Login attempts of proofs in flight at most, per process.
const LOGIN_ATTEMPTS: usize = 16;

/// The MariaDB/MySQL provider (scheme `mysql`). See the [module documentation](self).
pub struct MysqlProvider {
    inner: Arc<Inner>,
}

/// The provider's state, shared with the tasks it runs on the broker's runtime.
pub(crate) struct Inner {
    pub(crate) settings: MysqlSettings,
    pool: Pool,
    init: OnceCell<bool>,
    design: Design,
    /// Permission sets whose role this process made ([`Design::Role`]).
    sets: tokio::sync::Mutex<HashSet<String>>,
    /// Bounds the login attempts of proofs.
    logins: tokio::sync::Semaphore,
}

impl MysqlProvider {
    /// A provider with these settings. Connects lazily. Makes its error classification
    /// known to `assert_denied!` and `assert_unauthenticated!`.
    pub fn new(settings: MysqlSettings) -> MysqlProvider {
        MysqlProvider::with_design(settings, Design::Role)
    }

    /// A provider holding privileges as `design` says (for the benchmark's comparison).
    pub fn with_design(settings: MysqlSettings, design: Design) -> MysqlProvider {
        jit_test::register::<MysqlProvider>();
        let pool_opts = PoolOpts::new()
            .with_constraints(PoolConstraints::new(0, settings.pool_size).expect("0 <= size"))
            .with_reset_connection(false);
        let opts = mysql_async::OptsBuilder::from_opts(settings.admin.clone()).pool_opts(pool_opts);
        MysqlProvider {
            inner: Arc::new(Inner {
                pool: Pool::new(opts),
                settings,
                init: OnceCell::new(),
                design,
                sets: tokio::sync::Mutex::new(HashSet::new()),
                logins: tokio::sync::Semaphore::new(LOGIN_ATTEMPTS),
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &MysqlSettings {
        &self.inner.settings
    }

    /// Whether the server's event scheduler runs, so that users expire on the server
    /// (checked, and turned on where possible, before the first grant).
    pub async fn server_expiry(&self) -> Result<bool, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("setup", async move { inner.init().await }).await
    }
}

impl Inner {
    fn unreachable(&self, reason: String) -> ProviderError {
        ProviderError::Unreachable {
            system: "MariaDB",
            address: self.settings.address(),
            setting: URL_VAR,
            reason,
        }
    }

    /// A fresh admin connection outside the pool, within `connect_timeout`.
    pub(crate) async fn connect(&self) -> Result<Conn, ProviderError> {
        let timeout = self.settings.connect_timeout;
        match tokio::time::timeout(timeout, Conn::new(self.settings.admin.clone())).await {
            Err(_) => Err(self.unreachable(format!("no answer within {timeout:?}"))),
            Ok(Err(mysql_async::Error::Server(e))) => Err(ProviderError::Misconfigured(format!(
                "the admin login to {} was refused ({e}); set {URL_VAR} to an admin URL",
                self.settings.address()
            ))),
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    /// A pooled admin connection, after the server was seen to answer.
    pub(crate) async fn conn(&self) -> Result<Conn, ProviderError> {
        self.init().await?;
        match tokio::time::timeout(POOL_WAIT, self.pool.get_conn()).await {
            Err(_) => Err(self.unreachable(format!("no admin connection within {POOL_WAIT:?}"))),
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    /// Checks the server answers and checks credentials, turns the event scheduler on
    /// where it is off, and creates the events' database; once. Returns whether the
    /// scheduler runs.
    async fn init(&self) -> Result<bool, ProviderError> {
        self.init
            .get_or_try_init(|| async {
                let mut conn = self.connect().await?;
                let failed =
                    |e: mysql_async::Error| ProviderError::failed("setup", errors::describe(&e));
                conn.query_drop(format!(
                    "CREATE DATABASE IF NOT EXISTS {}",
                    ident::quote_ident(EVENT_SCHEMA)
                ))
                .await
                .map_err(failed)?;
                let (state, unchecked): (String, String) = conn
                    .query_first("SELECT @@event_scheduler, @@skip_grant_tables")
                    .await
                    .map_err(failed)?
                    .unwrap_or_default();
                if unchecked == "ON" {
                    return Err(ProviderError::Misconfigured(format!(
                        "MariaDB at {} runs with --skip-grant-tables: it checks no password and \
                         no privilege, so no credential would mean anything. Restart it without \
                         that option.",
                        self.settings.address()
                    )));
                }
                if state == "ON" {
                    return Ok(true);
                }
                let turned_on = conn.query_drop("SET GLOBAL event_scheduler = ON").await;
                if let Err(e) = &turned_on {
                    eprintln!(
                        "jit-test: WARNING: the event scheduler of MariaDB at {} is {} and cannot \
                         be turned on ({}): users will not expire on the server. A killed test \
                         leaves its user until the reaper runs. Set event_scheduler = ON in the \
                         server's configuration (.ci/setup-mysql does).",
                        self.settings.address(),
                        state,
                        errors::describe(e)
                    );
                }
                Ok(turned_on.is_ok())
            })
            .await
            .copied()
    }
}

impl Provider for MysqlProvider {
    const SCHEME: &'static str = "mysql";
    type Credential = MysqlGrant;
    type Lease = MysqlLease;

    fn from_config(config: &Config) -> Result<Self, ProviderError> {
        Ok(MysqlProvider::new(MysqlSettings::from_config(config)?))
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        privileges::Privilege::parse(permission).map(drop)
    }

    async fn grant(&self, request: &GrantRequest) -> Result<Granted<Self>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let plan = Plan::new(
            request,
            &inner.settings.account_host,
            inner.settings.connection_limit,
        )?;
        let abandoned = Arc::clone(&inner);
        on_broker(
            "grant",
            async move { grant(&inner, plan).await },
            // Nobody waits for it any more: take it back at once.
            move |granted| {
                let inner = abandoned;
                tokio::spawn(async move {
                    let _ = revoke::revoke(&inner, &granted.lease.user, &granted.lease.host).await;
                });
            },
        )
        .await
    }

    async fn revoke(&self, lease: &MysqlLease) -> Result<(), ProviderError> {
        let inner = Arc::clone(&self.inner);
        let (user, host) = (lease.user.clone(), lease.host.clone());
        on_broker_only("revoke", async move {
            revoke::revoke(&inner, &user, &host).await
        })
        .await
    }

    async fn prove_dead(&self, lease: &MysqlLease) -> Result<Proof, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let lease = lease.clone();
        on_broker_only("proof", async move {
            let _permit = inner.logins.acquire().await.expect("never closed");
            let timeout = inner.settings.connect_timeout + Duration::from_secs(1);
            revoke::prove_dead(&lease, timeout).await
        })
        .await
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        if let Some(e) = error.downcast_ref::<mysql_async::Error>() {
            return Some(match e {
                mysql_async::Error::Server(server) => errors::classify_code(server.code),
                _ => ErrorClass::Other,
            });
        }
        let server = error.downcast_ref::<mysql_async::ServerError>()?;
        Some(errors::classify_code(server.code))
    }

    async fn reap(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("reap", async move { reaper::reap(&inner, grace).await }).await
    }
}

/// Runs the grant of `plan` and checks what the user can effectively do; whatever fails
/// takes the user back before the error is returned.
async fn grant(inner: &Inner, plan: Plan) -> Result<Granted<MysqlProvider>, ProviderError> {
    let mut conn = inner.conn().await?;
    let set = grant::set_name(&plan.privileges);
    if inner.design == Design::Role {
        ensure_set(inner, &mut conn, &set, &plan).await?;
    }
    let created = conn.query_drop(plan.batch(inner.design, &set)).await;
    let checked = match created {
        Ok(()) => check(inner, &mut conn, &plan, &set).await,
        Err(e) => Err(grant_error(inner, &e)),
    };
    drop(conn);
    let beyond_scope = match checked {
        Ok(beyond_scope) => beyond_scope,
        Err(e) => {
            revoke::revoke(inner, &plan.user, &plan.host).await?;
            return Err(e);
        }
    };
    let opts = login_opts(
        &inner.settings.admin,
        &plan.user,
        &plan.password,
        plan.database(),
    );
    Ok(Granted {
        principal: plan.user.clone(),
        expires_at: plan.expires_at,
        credential: MysqlGrant {
            user: plan.user.clone(),
            opts: opts.clone(),
            expires_at: plan.expires_at,
            beyond_scope: beyond_scope.clone(),
        },
        lease: MysqlLease {
            user: plan.user,
            host: plan.host,
            opts,
        },
        beyond_scope,
    })
}

/// Makes the permission set's role once per process.
async fn ensure_set(
    inner: &Inner,
    conn: &mut Conn,
    set: &str,
    plan: &Plan,
) -> Result<(), ProviderError> {
    let mut sets = inner.sets.lock().await;
    if !sets.contains(set) {
        conn.query_drop(grant::ensure_set_sql(set, &plan.privileges))
            .await
            .map_err(|e| grant_error(inner, &e))?;
        sets.insert(set.to_owned());
    }
    Ok(())
}

fn grant_error(inner: &Inner, error: &mysql_async::Error) -> ProviderError {
    match error {
        mysql_async::Error::Server(e) if e.code == errors::OPTION_PREVENTS_STATEMENT => {
            ProviderError::Misconfigured(format!(
                "MariaDB at {} cannot create users ({e}): it runs with --skip-grant-tables or \
                 --read-only, so no credential would be checked. Restart it without them.",
                inner.settings.address()
            ))
        }
        e => ProviderError::failed("grant", errors::describe(e)),
    }
}

/// Reads what the user can do: fails on a `deny` permission it holds (or, with
/// `strict`, on anything beyond its scope); returns what is beyond its scope.
async fn check(
    inner: &Inner,
    conn: &mut Conn,
    plan: &Plan,
    set: &str,
) -> Result<Vec<String>, ProviderError> {
    let (grantees, holder) = grantees(inner.design, plan, set);
    let rows = conn
        .query(effective::query(&grantees))
        .await
        .map_err(|e| ProviderError::failed("grant", errors::describe(&e)))?;
    let held = effective::from_rows(rows);
    if let Some((denied, by)) = effective::denied(&held, &plan.deny) {
        return Err(ProviderError::failed(
            "grant",
            format!(
                "{} holds the denied permission {denied} through {by}",
                plan.user
            ),
        ));
    }
    let beyond = effective::beyond(&held, &plan.privileges, &holder);
    if inner.settings.strict && !beyond.is_empty() {
        return Err(ProviderError::failed(
            "grant",
            format!(
                "{} can do more than its scope (strict = true): {}",
                plan.user,
                beyond.join("; ")
            ),
        ));
    }
    Ok(beyond)
}

/// Whose privileges the user has (itself, its permission set's role, `PUBLIC`), and
/// which of them holds the scope.
fn grantees(design: Design, plan: &Plan, set: &str) -> ([String; 3], String) {
    let me = effective::grantee(&plan.user, &plan.host);
    let holder = match design {
        Design::Direct => me.clone(),
        Design::Role => effective::grantee(set, ""),
    };
    (
        [me, holder.clone(), effective::grantee("PUBLIC", "")],
        holder,
    )
}

/// The provider's own statements, for the benchmark (`benches/mysql_lifecycle.rs`) to
/// send over a plain connection as its floor. Not a public API.
#[doc(hidden)]
pub mod __bench {
    use jit_test::{GrantRequest, Secret};

    use super::{Design, Plan};

    /// The statements of one lease, as the provider sends them.
    pub struct Statements {
        /// Creates the permission set's role if missing ([`Design::Role`]; once).
        pub ensure_set: String,
        /// The grant batch.
        pub grant: String,
        /// The effective-privilege query.
        pub check: String,
        /// The revocation batch.
        pub revoke: String,
        /// The user's name.
        pub user: String,
        /// The user's password.
        pub password: Secret,
    }

    /// The statements of `request` under `design`.
    pub fn statements(request: &GrantRequest, design: Design) -> Statements {
        let plan = Plan::new(request, "127.0.0.1", 10).expect("plan");
        let set = super::grant::set_name(&plan.privileges);
        let (grantees, _) = super::grantees(design, &plan, &set);
        Statements {
            ensure_set: super::grant::ensure_set_sql(&set, &plan.privileges),
            grant: plan.batch(design, &set),
            check: super::effective::query(&grantees),
            revoke: super::revoke::revoke_sql(&plan.user, &plan.host),
            user: plan.user.clone(),
            password: plan.password,
        }
    }
}
