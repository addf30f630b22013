//! [`MysqlGrant`]: what a test receives; [`MysqlLease`]: what the provider keeps.

use std::fmt;
use std::time::SystemTime;

use jit_test::Secret;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::MysqlProvider;

/// A short-lived MariaDB/MySQL user holding exactly the privileges of the test's `mysql`
/// scope. `Debug` shows the user, never the password.
///
/// ```text
/// #[jit_test(scope = "mysql:select:shop.orders")]
/// async fn reads_orders(db: MysqlGrant) -> anyhow::Result<()> {
///     let mut conn = db.connect().await?;
///     let n: Option<u64> = conn.query_first("SELECT COUNT(*) FROM shop.orders").await?;
///     Ok(())
/// }
/// ```
pub struct MysqlGrant {
    pub(crate) user: String,
    pub(crate) opts: Opts,
    pub(crate) expires_at: SystemTime,
    pub(crate) beyond_scope: Vec<String>,
}

impl jit_test::Credential for MysqlGrant {
    type Provider = MysqlProvider;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(MysqlGrant);

impl MysqlGrant {
    /// Logs in as the user, with the scope's database as the default database when the
    /// scope names exactly one (else none: qualify table names). The
    /// connection belongs to the current Tokio runtime: call this inside the runtime that
    /// will use it (the test's own).
    pub async fn connect(&self) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.opts.clone()).await
    }

    /// Logs in as the user with `database` as the default database.
    pub async fn connect_to(&self, database: &str) -> Result<Conn, mysql_async::Error> {
        let opts = OptsBuilder::from_opts(self.opts.clone()).db_name(Some(database));
        Conn::new(opts).await
    }

    /// The connection options, password included, for `mysql_async::Pool::new` or your
    /// own connection code. Never print them: their `Debug` shows the password.
    pub fn opts(&self) -> &Opts {
        &self.opts
    }

    /// `mysql://user:password@host:port/database?prefer_socket=false`, for libraries
    /// that take a URL (sqlx, diesel). A [`Secret`]: it never prints.
    pub fn url(&self) -> Secret {
        Secret::new(format!(
            "mysql://{}:{}@{}/{}?prefer_socket=false",
            self.user,
            self.opts.pass().unwrap_or_default(),
            super::settings::address(&self.opts),
            self.opts.db_name().unwrap_or_default()
        ))
    }

    /// The user's name, e.g. `jit_3f9a2c1b_4012_7`.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The default database of [`MysqlGrant::connect`]: the scope's, when it names
    /// exactly one.
    pub fn database(&self) -> Option<&str> {
        self.opts.db_name()
    }

    /// When the server's own event drops the user (and the broker's watchdog revokes it).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// What the user can do beyond its scope, found right after the grant: privileges of
    /// `PUBLIC` and anonymous accounts, as scope permissions such as
    /// `mysql:insert:shop.orders (PUBLIC)`. Empty when the user can do exactly what its
    /// scope says. With `strict = true` the grant fails instead.
    pub fn beyond_scope(&self) -> &[String] {
        &self.beyond_scope
    }
}

impl fmt::Debug for MysqlGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlGrant")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("address", &super::settings::address(&self.opts))
            .field("database", &self.database())
            .field("expires_at", &self.expires_at)
            .field("beyond_scope", &self.beyond_scope)
            .finish()
    }
}

/// What the provider keeps to revoke a user and prove it dead.
#[derive(Clone)]
pub struct MysqlLease {
    pub(crate) user: String,
    pub(crate) host: String,
    pub(crate) opts: Opts,
}

impl MysqlLease {
    /// The user's name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for MysqlLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlLease")
            .field("user", &self.user)
            .field("host", &self.host)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The login options of a user: the admin's address, the user's name and password, over
/// TCP, and `database` (the scope's, when it names one) as the default database.
pub(crate) fn login_opts(
    admin: &Opts,
    user: &str,
    password: &Secret,
    database: Option<&str>,
) -> Opts {
    OptsBuilder::from_opts(admin.clone())
        .db_name(database)
        .user(Some(user))
        .pass(Some(password.expose()))
        .prefer_socket(false)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> MysqlGrant {
        let admin = Opts::from_url("mysql://root@127.0.0.1:3307/test").unwrap();
        MysqlGrant {
            user: "jit_abc".into(),
            opts: login_opts(&admin, "jit_abc", &Secret::new("s3cr3tPass"), Some("shop")),
            expires_at: SystemTime::UNIX_EPOCH,
            beyond_scope: Vec::new(),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let g = grant();
        let text = format!("{g:?} {g:#?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("jit_abc"));
        let lease = MysqlLease {
            user: "jit_abc".into(),
            host: "127.0.0.1".into(),
            opts: g.opts.clone(),
        };
        assert!(!format!("{lease:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_url_is_a_secret_that_parses_back_to_the_same_login() {
        let url = grant().url();
        assert_eq!(
            url.expose(),
            "mysql://jit_abc:s3cr3tPass@127.0.0.1:3307/shop?prefer_socket=false"
        );
        assert!(!format!("{url:?} {url}").contains("s3cr3t"));
        let parsed = Opts::from_url(url.expose()).unwrap();
        assert_eq!(parsed.user(), Some("jit_abc"));
        assert_eq!(parsed.pass(), Some("s3cr3tPass"));
        assert!(!parsed.prefer_socket());
    }
}
