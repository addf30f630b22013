//! [`PgGrant`]: what a test receives; [`PgLease`]: what the provider keeps.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use jit_test::{Proof, Secret};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

/// A short-lived PostgreSQL login role holding exactly the privileges of the test's
/// `pg` scope. `Debug` shows the role, never the password.
///
/// ```text
/// #[jit_test(scope = "pg:select:public.orders")]
/// async fn reads_orders(pg: PgGrant) -> anyhow::Result<()> {
///     let db = pg.connect().await?;
///     db.query("SELECT * FROM orders", &[]).await?;
///     Ok(())
/// }
/// ```
pub struct PgGrant {
    pub(crate) role: String,
    pub(crate) config: tokio_postgres::Config,
    pub(crate) database: String,
    pub(crate) expires_at: SystemTime,
    pub(crate) beyond_scope: Vec<String>,
}

impl PgGrant {
    /// Logs in as the role and returns the client. The connection is driven by a task
    /// spawned on the current Tokio runtime, so call this inside the runtime that will use
    /// the client (the test's own).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        connect(&self.config).await
    }

    /// Logs in as the role to another database (one the scope grants `connect` on).
    pub async fn connect_to(&self, database: &str) -> Result<Client, tokio_postgres::Error> {
        let mut config = self.config.clone();
        config.dbname(database);
        connect(&config).await
    }

    /// The connection settings, password included; `Debug` redacts it. Use it with
    /// `deadpool-postgres`, `bb8` or your own connection code.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// `postgresql://role:password@host:port/database`, for libraries that take a URL
    /// (sqlx, diesel, libpq). A [`Secret`]: it never prints.
    pub fn connection_string(&self) -> Secret {
        let password = self
            .config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) if host.contains(':') => format!("[{host}]"),
            Some(Host::Tcp(host)) => host.clone(),
            _ => String::new(),
        };
        let mut url = format!(
            "postgresql://{}:{}@{host}:{}/{}",
            percent_encode(&self.role),
            percent_encode(&password),
            self.port(),
            percent_encode(&self.database)
        );
        if let Some(Host::Unix(path)) = self.config.get_hosts().first() {
            url.push_str("?host=");
            url.push_str(&percent_encode(&path.to_string_lossy()));
        }
        Secret::new(url)
    }

    /// The role's name, e.g. `jit_3f9a2c1b_4012_7`.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The database [`PgGrant::connect`] connects to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server's host name or address (or socket directory).
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "127.0.0.1".to_owned(),
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    /// When the server stops accepting the role's password (`VALID UNTIL`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// What the role can do beyond its scope, found with `has_*_privilege` on the objects
    /// of the scope's schemas right after the grant (privileges of `PUBLIC`, default
    /// privileges, ...), as scope permissions such as `pg:execute:function:public.f`.
    /// Empty when the role can do exactly what its scope says. With `strict = true` the
    /// grant fails instead.
    pub fn beyond_scope(&self) -> &[String] {
        &self.beyond_scope
    }
}

impl fmt::Debug for PgGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgGrant")
            .field("role", &self.role)
            .field("password", &"[redacted]")
            .field("host", &self.host())
            .field("port", &self.port())
            .field("database", &self.database)
            .field("expires_at", &self.expires_at)
            .field("beyond_scope", &self.beyond_scope)
            .finish()
    }
}

/// What the provider keeps to revoke a role and prove it dead.
#[derive(Clone)]
pub struct PgLease {
    pub(crate) role: String,
    pub(crate) config: tokio_postgres::Config,
    /// What the login attempt made while revoking (the role NOLOGIN, not yet dropped)
    /// found, for the proof to report.
    pub(crate) proof: Arc<Mutex<Option<Proof>>>,
}

impl PgLease {
    pub(crate) fn new(role: String, config: tokio_postgres::Config) -> PgLease {
        PgLease {
            role,
            config,
            proof: Arc::default(),
        }
    }
}

impl PgLease {
    /// The role's name.
    pub fn role(&self) -> &str {
        &self.role
    }
}

impl fmt::Debug for PgLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLease")
            .field("role", &self.role)
            .field("password", &"[redacted]")
            .finish()
    }
}

pub(crate) async fn connect(
    config: &tokio_postgres::Config,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The login configuration of a role: the admin's hosts, ports and database with the
/// role's name and password.
pub(crate) fn login_config(
    admin: &tokio_postgres::Config,
    role: &str,
    password: &Secret,
) -> tokio_postgres::Config {
    let mut config = login_config_without_password(admin, role);
    config.password(password.expose());
    config
}

/// The login configuration of a role without its password, to see whether the server
/// asks for one.
pub(crate) fn login_config_without_password(
    admin: &tokio_postgres::Config,
    role: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    for host in admin.get_hosts() {
        match host {
            Host::Tcp(h) => config.host(h),
            Host::Unix(p) => config.host_path(p),
        };
    }
    for port in admin.get_ports() {
        config.port(*port);
    }
    if let Some(db) = admin.get_dbname() {
        config.dbname(db);
    } else if let Some(user) = admin.get_user() {
        config.dbname(user);
    }
    if let Some(timeout) = admin.get_connect_timeout() {
        config.connect_timeout(*timeout);
    }
    config.user(role).application_name("jit-test lease");
    config
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> PgGrant {
        let admin: tokio_postgres::Config = "host=127.0.0.1 port=5433 user=postgres dbname=shop"
            .parse()
            .unwrap();
        let password = Secret::new("s3cr3t-Pa_ss");
        PgGrant {
            role: "jit_abc".into(),
            config: login_config(&admin, "jit_abc", &password),
            database: "shop".into(),
            expires_at: SystemTime::UNIX_EPOCH,
            beyond_scope: Vec::new(),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let g = grant();
        let text = format!("{g:?} {g:#?} {:?}", g.config());
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("jit_abc"));
        let lease = PgLease::new("jit_abc".into(), g.config.clone());
        assert!(!format!("{lease:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_connection_string_is_a_secret_url() {
        let g = grant();
        let url = g.connection_string();
        assert_eq!(
            url.expose(),
            "postgresql://jit_abc:s3cr3t-Pa_ss@127.0.0.1:5433/shop"
        );
        assert!(!format!("{url:?} {url}").contains("s3cr3t"));
        assert_eq!(
            (g.host().as_str(), g.port(), g.database()),
            ("127.0.0.1", 5433, "shop")
        );
        // The URL parses back to the same login.
        let parsed: tokio_postgres::Config = url.expose().parse().unwrap();
        assert_eq!(parsed.get_user(), Some("jit_abc"));
        assert_eq!(parsed.get_password(), Some(&b"s3cr3t-Pa_ss"[..]));
    }

    #[test]
    fn percent_encoding_covers_reserved_characters() {
        assert_eq!(percent_encode("a b/@:?#%"), "a%20b%2F%40%3A%3F%23%25");
    }
}
