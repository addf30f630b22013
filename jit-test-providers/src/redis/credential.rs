//! [`RedisGrant`]: what a test receives; [`RedisLease`]: what the provider keeps.

use std::fmt;
use std::time::SystemTime;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, RedisResult};
use jit_test::Secret;

use super::RedisProvider;

/// A short-lived Redis ACL user holding exactly the keys, channels and commands of the
/// test's `redis` scope. `Debug` shows the user, never the password.
///
/// ```text
/// #[jit_test(scope = "redis:command(get,set):cache:*")]
/// async fn caches(redis: RedisGrant) -> anyhow::Result<()> {
///     let mut con = redis.connect().await?;
///     let _: () = redis::cmd("SET").arg("cache:a").arg("1").query_async(&mut con).await?;
///     Ok(())
/// }
/// ```
pub struct RedisGrant {
    pub(crate) user: String,
    pub(crate) password: Secret,
    pub(crate) info: ConnectionInfo,
    pub(crate) expires_at: SystemTime,
    pub(crate) beyond_scope: Vec<String>,
}

impl jit_test::Credential for RedisGrant {
    type Provider = RedisProvider;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(RedisGrant);

impl RedisGrant {
    /// Logs in as the user (`AUTH user password`) and returns a multiplexed connection,
    /// driven by a task on the current Tokio runtime: call it inside the runtime that will
    /// use it (the test's own).
    pub async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        self.client()?.get_multiplexed_async_connection().await
    }

    /// A `redis::Client` that logs in as the user, for connection managers and pools.
    pub fn client(&self) -> RedisResult<Client> {
        Client::open(self.info.clone())
    }

    /// The connection settings, password included; `Debug` redacts it.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// `redis://user:password@host:port/db`, for libraries that take a URL. A [`Secret`]:
    /// it never prints.
    pub fn url(&self) -> Secret {
        let host = match self.info.addr() {
            ConnectionAddr::Tcp(host, port) if host.contains(':') => format!("[{host}]:{port}"),
            ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => other.to_string(),
        };
        // User names are `[a-z0-9_]` and passwords URL-safe base64: nothing to escape.
        Secret::new(format!(
            "redis://{}:{}@{host}/{}",
            self.user,
            self.password.expose(),
            self.info.redis_settings().db()
        ))
    }

    /// The ACL user's name, e.g. `jit_e1790000000_3f9a2c1b_4012_7`.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// When the broker's watchdog deletes the user (Redis has no expiry for users).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// What the user, or a connection that skips `AUTH`, can do beyond the scope, as seen
    /// right after the grant (see the module documentation). Empty when nothing is.
    pub fn beyond_scope(&self) -> &[String] {
        &self.beyond_scope
    }
}

impl fmt::Debug for RedisGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisGrant")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("address", &super::settings::address(&self.info))
            .field("expires_at", &self.expires_at)
            .field("beyond_scope", &self.beyond_scope)
            .finish()
    }
}

/// What the provider keeps to delete a user and prove it dead.
#[derive(Clone)]
pub struct RedisLease {
    pub(crate) user: String,
    pub(crate) password: Secret,
}

impl RedisLease {
    /// The user's name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLease")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The admin's address and database with `user`'s login, or no login at all.
pub(crate) fn login_info(admin: &ConnectionInfo, login: Option<(&str, &Secret)>) -> ConnectionInfo {
    let mut redis = RedisConnectionInfo::default()
        .set_db(admin.redis_settings().db())
        .set_skip_set_lib_name();
    if let Some((user, password)) = login {
        redis = redis.set_username(user).set_password(password.expose());
    }
    admin.clone().set_redis_settings(redis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::redis::IntoConnectionInfo;

    fn grant() -> RedisGrant {
        let admin = "redis://127.0.0.1:6390/0".into_connection_info().unwrap();
        let password = Secret::new("s3cr3t-Pa_ss");
        RedisGrant {
            user: "jit_e1_abc".into(),
            info: login_info(&admin, Some(("jit_e1_abc", &password))),
            password,
            expires_at: SystemTime::UNIX_EPOCH,
            beyond_scope: Vec::new(),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let g = grant();
        let text = format!("{g:?} {g:#?} {:?}", g.connection_info());
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("jit_e1_abc"), "{text}");
        let lease = RedisLease {
            user: g.user.clone(),
            password: g.password.clone(),
        };
        assert!(!format!("{lease:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_url_is_a_secret_that_parses_back_to_the_same_login() {
        let url = grant().url();
        assert!(!format!("{url:?} {url}").contains("s3cr3t"));
        let info = url.expose().into_connection_info().unwrap();
        assert_eq!(info.redis_settings().username(), Some("jit_e1_abc"));
        assert_eq!(info.redis_settings().password(), Some("s3cr3t-Pa_ss"));
        assert_eq!(super::super::settings::address(&info), "127.0.0.1:6390");
    }
}
