//! [`MqttGrant`]: what a test receives; [`MqttLease`]: what the provider keeps.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use jit_test::Secret;

use super::MqttProvider;
use super::session::{self, MqttError, MqttSession};

/// A short-lived Mosquitto client (user name and password) allowed exactly the topics of
/// the test's `mqtt` scope. `Debug` shows the user name, never the password.
///
/// ```text
/// #[jit_test(scope = "mqtt:publish:devices/d1/telemetry")]
/// async fn reports_telemetry(mqtt: MqttGrant) -> anyhow::Result<()> {
///     let mut session = mqtt.connect().await?;
///     session.publish("devices/d1/telemetry", "21.5").await?;
///     Ok(())
/// }
/// ```
pub struct MqttGrant {
    pub(crate) login: Login,
    pub(crate) expires_at: SystemTime,
    pub(crate) beyond_scope: Vec<String>,
}

impl jit_test::Credential for MqttGrant {
    type Provider = MqttProvider;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(MqttGrant);

impl MqttGrant {
    /// Opens an MQTT v5 session as the client (client id `<user>-<n>`). Call it inside the
    /// Tokio runtime that will use the session (the test's own).
    pub async fn connect(&self) -> Result<MqttSession, MqttError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}-{}",
            self.login.username,
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.connect_as(&id).await
    }

    /// Opens an MQTT v5 session with client id `client_id`.
    pub async fn connect_as(&self, client_id: &str) -> Result<MqttSession, MqttError> {
        self.login.connect(client_id).await
    }

    /// The client's user name, e.g. `jit_3f9a2c1b_4012_7`.
    pub fn username(&self) -> &str {
        &self.login.username
    }

    /// The client's password, for your own MQTT client. A [`Secret`]: it never prints.
    pub fn password(&self) -> &Secret {
        &self.login.password
    }

    /// The broker's host.
    pub fn host(&self) -> &str {
        &self.login.host
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.login.port
    }

    /// When the lease ends (the broker has no expiry of its own: jit-test's watchdog
    /// removes the client then).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// What the client may do beyond its scope, from the plugin's default ACL access
    /// (see the module documentation). Empty when it can do exactly what its scope says.
    pub fn beyond_scope(&self) -> &[String] {
        &self.beyond_scope
    }
}

impl fmt::Debug for MqttGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttGrant")
            .field("login", &self.login)
            .field("expires_at", &self.expires_at)
            .field("beyond_scope", &self.beyond_scope)
            .finish()
    }
}

/// What the provider keeps to remove a client and prove it dead.
#[derive(Clone, Debug)]
pub struct MqttLease {
    pub(crate) login: Login,
}

impl MqttLease {
    /// The client's user name (also its role's name).
    pub fn username(&self) -> &str {
        &self.login.username
    }
}

/// A client's login at a broker. `Debug` redacts the password.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) timeout: Duration,
}

impl Login {
    /// Opens an MQTT v5 session with this login.
    pub(crate) async fn connect(&self, client_id: &str) -> Result<MqttSession, MqttError> {
        let options = session::options(
            client_id,
            (&self.host, self.port),
            Some((&self.username, self.password.expose())),
            self.timeout,
        );
        MqttSession::connect(options, self.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let login = Login {
            username: "jit_abc".into(),
            password: Secret::new("s3cr3t-Pa_ss"),
            host: "127.0.0.1".into(),
            port: 11883,
            timeout: Duration::from_secs(5),
        };
        let grant = MqttGrant {
            login: login.clone(),
            expires_at: SystemTime::UNIX_EPOCH,
            beyond_scope: Vec::new(),
        };
        let lease = MqttLease { login };
        let text = format!("{grant:?} {grant:#?} {lease:?} {}", grant.password());
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("jit_abc"));
    }
}
