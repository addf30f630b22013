//! [`AmqpGrant`]: what a test receives; [`AmqpLease`]: what the provider keeps.

use std::fmt;
use std::time::SystemTime;

use jit_test::Secret;
use lapin::Connection;

use super::AmqpProvider;
use super::login::{ConnectError, Login};

/// A short-lived RabbitMQ user holding exactly the permissions of the test's `amqp` scope.
/// `Debug` shows the user, never the password.
///
/// ```text
/// #[jit_test(scope = "amqp:read:/orders.q")]
/// async fn consumes(amqp: AmqpGrant) -> anyhow::Result<()> {
///     let channel = amqp.connect().await?.create_channel().await?;
///     channel.basic_get("orders.q".into(), Default::default()).await?;
///     Ok(())
/// }
/// ```
pub struct AmqpGrant {
    pub(crate) login: Login,
    pub(crate) vhost: String,
    pub(crate) expires_at: SystemTime,
    pub(crate) beyond_scope: Vec<String>,
}

impl jit_test::Credential for AmqpGrant {
    type Provider = AmqpProvider;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(AmqpGrant);

impl AmqpGrant {
    /// Logs in to the scope's vhost (`/` when the scope names it, else the first by name).
    /// The connection is driven on the current Tokio runtime: call this inside the runtime
    /// that uses it (the test's own). A refused login is a [`ConnectError`] that
    /// `assert_unauthenticated!` recognises.
    pub async fn connect(&self) -> Result<Connection, ConnectError> {
        self.login.connect(&self.vhost).await
    }

    /// Logs in to another vhost (one the scope names, or `assert_denied!` sees 530
    /// NOT_ALLOWED).
    pub async fn connect_to(&self, vhost: &str) -> Result<Connection, ConnectError> {
        self.login.connect(vhost).await
    }

    /// `amqp://user:password@host:port/vhost` of the default vhost, for other clients. A
    /// [`Secret`]: it never prints.
    pub fn uri(&self) -> Secret {
        self.login.uri(&self.vhost)
    }

    /// The user's name, e.g. `jit_3f9a2c1b_4012_7`.
    pub fn user(&self) -> &str {
        &self.login.user
    }

    /// The password. A [`Secret`]: it never prints.
    pub fn password(&self) -> &Secret {
        &self.login.password
    }

    /// The vhost [`AmqpGrant::connect`] logs in to.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The broker's AMQP host.
    pub fn host(&self) -> &str {
        &self.login.address.host
    }

    /// The broker's AMQP port.
    pub fn port(&self) -> u16 {
        self.login.address.port
    }

    /// When the lease's watchdog deletes the user (RabbitMQ has no expiry of its own).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// What the user can do beyond the scope: routing keys unrestricted on topic
    /// exchanges it may write or read without a `topic_write`/`topic_read` permission.
    pub fn beyond_scope(&self) -> &[String] {
        &self.beyond_scope
    }
}

impl fmt::Debug for AmqpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpGrant")
            .field("user", &self.login.user)
            .field("password", &"[redacted]")
            .field("address", &self.login.address.to_string())
            .field("vhost", &self.vhost)
            .field("expires_at", &self.expires_at)
            .field("beyond_scope", &self.beyond_scope)
            .finish()
    }
}

/// What the provider keeps to delete a user and prove it dead.
#[derive(Clone)]
pub struct AmqpLease {
    pub(crate) login: Login,
    pub(crate) vhost: String,
}

impl AmqpLease {
    /// The user's name.
    pub fn user(&self) -> &str {
        &self.login.user
    }
}

impl fmt::Debug for AmqpLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpLease")
            .field("user", &self.login.user)
            .field("password", &"[redacted]")
            .field("vhost", &self.vhost)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::settings::Address;
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let login = Login {
            address: Address {
                host: "127.0.0.1".into(),
                port: 5672,
            },
            user: "jit_abc".into(),
            password: Secret::new("s3cr3t-Pa_ss"),
            timeout: Duration::from_secs(1),
        };
        let grant = AmqpGrant {
            login: login.clone(),
            vhost: "/".into(),
            expires_at: SystemTime::UNIX_EPOCH,
            beyond_scope: Vec::new(),
        };
        let lease = AmqpLease {
            login,
            vhost: "/".into(),
        };
        let text = format!(
            "{grant:?} {grant:#?} {lease:?} {} {:?}",
            grant.uri(),
            grant.uri()
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("jit_abc"));
        assert_eq!(
            grant.uri().expose(),
            "amqp://jit_abc:s3cr3t-Pa_ss@127.0.0.1:5672/%2F"
        );
    }
}
