//! [`NatsGrant`]: what a test receives; [`NatsLease`]: what the provider keeps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::{AuthError, ConnectOptions};
use jit_test::Secret;
use nkeys::KeyPair;

use super::NatsProvider;
use super::connection::{NatsConnection, NatsError, ServerErrors};

/// A user JWT and its nkey seed, allowed to publish and subscribe exactly the subjects of
/// the test's `nats` scope (and its own inbox), expiring at the ttl on the server's
/// clock. `Debug` shows the user's public key, never the seed.
///
/// ```text
/// #[jit_test(scope = "nats:publish:orders.placed")]
/// async fn places(nats: NatsGrant) -> anyhow::Result<()> {
///     let conn = nats.connect().await?;
///     conn.publish("orders.placed", "a1").await?;
///     assert_denied!(conn.publish("billing.refund", "a1").await);
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct NatsGrant {
    pub(crate) user: Arc<User>,
    pub(crate) expires_at: SystemTime,
}

impl jit_test::Credential for NatsGrant {
    type Provider = NatsProvider;
}

// The lifecycle's code for this credential is compiled here, once, not in each crate of
// tests.
jit_test::precompile!(NatsGrant);

impl std::fmt::Debug for NatsGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsGrant")
            .field("user", &self.user.public_key)
            .field("name", &self.user.name)
            .field("url", &self.user.url)
            .finish_non_exhaustive()
    }
}

/// One short-lived NATS user. No `Debug`: it holds the seed.
pub(crate) struct User {
    pub(crate) public_key: String,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) jwt: Secret,
    pub(crate) seed: Secret,
    pub(crate) inbox: String,
    pub(crate) expires_at: u64,
    pub(crate) connect_timeout: Duration,
}

impl User {
    /// Options that log in as this user, with its own inbox prefix; the nonce is signed
    /// with the seed, which never leaves this process.
    pub(crate) fn options(&self) -> ConnectOptions {
        let jwt = self.jwt.expose().to_owned();
        let seed = self.seed.clone();
        ConnectOptions::with_jwt(jwt, move |nonce| {
            let seed = seed.clone();
            async move {
                let key = KeyPair::from_seed(seed.expose()).map_err(AuthError::new)?;
                key.sign(&nonce).map_err(AuthError::new)
            }
        })
        .custom_inbox_prefix(&self.inbox)
        .name(&self.name)
        .connection_timeout(self.connect_timeout)
    }
}

impl NatsGrant {
    /// Connects as the user. The connection runs on the current Tokio runtime; once the
    /// server has closed it, it tries to reconnect once only, so a revoked or expired
    /// credential shows as closed, not as a client retrying forever.
    pub async fn connect(&self) -> Result<NatsConnection, NatsError> {
        let errors = Arc::new(ServerErrors::default());
        let sink = Arc::clone(&errors);
        let client = self
            .user
            .options()
            .max_reconnects(Some(1))
            .event_callback(move |event| {
                let sink = Arc::clone(&sink);
                async move { sink.record(event) }
            })
            .connect(self.user.url.as_str())
            .await
            .map_err(connect_error)?;
        Ok(NatsConnection {
            client,
            errors,
            inbox: self.user.inbox.clone(),
        })
    }

    /// `async_nats` options that log in as the user (JWT, nonce signed with the seed,
    /// its own inbox prefix), for code that makes its own client.
    pub fn connect_options(&self) -> ConnectOptions {
        self.user.options()
    }

    /// The server's URL, e.g. `nats://127.0.0.1:14222`.
    pub fn url(&self) -> &str {
        &self.user.url
    }

    /// The user's public key (`U...`): its name on the server.
    pub fn public_key(&self) -> &str {
        &self.user.public_key
    }

    /// The user JWT's name, `jit_<lease>`.
    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// The inbox prefix of the user's replies, `_INBOX.jit_<lease>`.
    pub fn inbox(&self) -> &str {
        &self.user.inbox
    }

    /// When the server stops accepting the user (its JWT's `exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The user JWT and seed in the `.creds` format of NATS tools. A [`Secret`].
    pub fn creds(&self) -> Secret {
        Secret::new(format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            self.user.jwt.expose(),
            self.user.seed.expose()
        ))
    }
}

/// A connection error; an authorization violation becomes [`NatsError::Unauthenticated`].
pub(crate) fn connect_error(e: async_nats::ConnectError) -> NatsError {
    if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation {
        NatsError::Unauthenticated("Authorization Violation".into())
    } else {
        NatsError::Client {
            operation: "connect",
            source: Box::new(e),
        }
    }
}

/// What the provider keeps to revoke the user and prove it dead.
#[derive(Clone)]
pub struct NatsLease {
    pub(crate) user: Arc<User>,
}

impl std::fmt::Debug for NatsLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLease")
            .field("user", &self.user.public_key)
            .finish_non_exhaustive()
    }
}
