//! The `nats` provider: each test gets a fresh NATS user — a user JWT signed here with
//! the tests' account key, and its nkey seed — allowed to publish and subscribe exactly
//! the subjects of its scope, expired by the server at the ttl and revoked live.
//!
//! The server runs in operator mode with a full resolver (`.ci/setup-nats` starts one on
//! 127.0.0.1:14222 and writes the [key file](keys::KeyFile)). Granting is one Ed25519
//! signature, without a round trip. Revoking adds the user to the account's revocation
//! list and pushes the re-signed account JWT over `$SYS`: the server closes the user's
//! connections at once. See the README's "NATS provider" section for the scope table.

mod account;
mod connection;
mod credential;
mod grant;
pub mod jwt;
pub mod keys;
mod leases;
mod settings;
pub mod setup;
mod subjects;

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError,
};

pub use connection::{NatsConnection, NatsError};
pub use credential::{NatsGrant, NatsLease};
pub use settings::{DEFAULT_KEY_FILE, KEYS_VAR, NatsSettings, URL_VAR};

use account::Account;
use connection::is_authentication_failure;

/// Prefix of every user's name (`jit_<lease>`) and inbox (`_INBOX.jit_<lease>`).
pub const PREFIX: &str = "jit_";

/// The NATS provider (scheme `nats`). See the [module documentation](self).
pub struct NatsProvider {
    account: Arc<Account>,
}

impl NatsProvider {
    /// A provider with these settings: reads the key file; connects lazily. Makes its
    /// error classification known to `assert_denied!` and `assert_unauthenticated!`.
    pub fn new(settings: NatsSettings) -> Result<NatsProvider, ProviderError> {
        jit_test::register::<NatsProvider>();
        let file = keys::KeyFile::read(&settings.key_file).map_err(|e| {
            ProviderError::Misconfigured(format!(
                "{e}. Run `.ci/setup-nats`, or set {KEYS_VAR} (or [providers.nats] keys) to the \
                 key file `jit-test-nats-setup` wrote"
            ))
        })?;
        let keys = file.keys().map_err(|e| {
            ProviderError::Misconfigured(format!("{}: {e}", settings.key_file.display()))
        })?;
        let url = settings.url.clone().unwrap_or(file.url);
        Ok(NatsProvider {
            account: Arc::new(Account::new(keys, url, settings.connect_timeout)),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.account.url
    }

    /// The public key of the tests' account (`A...`).
    pub fn account(&self) -> &str {
        &self.account.keys.account
    }

    /// The account's revocation list as the server has it: each revoked user's public key
    /// and the time (its expiry) up to which its JWTs are refused.
    pub async fn revocations(&self) -> Result<BTreeMap<String, u64>, ProviderError> {
        let list = self
            .on_broker("account lookup", async |account| {
                account.revocations().await
            })
            .await?;
        Ok(list
            .into_iter()
            .filter_map(|(user, at)| Some((user, at.as_u64()?)))
            .collect())
    }

    /// Runs `work` with the account on the broker's runtime, where the administrative
    /// connection lives.
    async fn on_broker<T, F>(
        &self,
        operation: &'static str,
        work: impl FnOnce(Arc<Account>) -> F + Send + 'static,
    ) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ProviderError>> + Send + 'static,
    {
        crate::handoff::on_broker_only(operation, work(Arc::clone(&self.account))).await
    }
}

impl Provider for NatsProvider {
    const SCHEME: &'static str = "nats";
    type Credential = NatsGrant;
    type Lease = NatsLease;

    fn from_config(config: &Config) -> Result<Self, ProviderError> {
        NatsProvider::new(NatsSettings::from_config(config)?)
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        subjects::Grant::parse(permission).map(drop)
    }

    async fn grant(&self, request: &GrantRequest) -> Result<Granted<Self>, ProviderError> {
        let grants = grant::plan(request)?;
        // Once per process: the server is reachable, in operator mode, knows the account.
        self.on_broker("grant", async |account| account.system().await.map(drop))
            .await?;
        grant::sign_user(self, request, &grants)
    }

    async fn revoke(&self, lease: &NatsLease) -> Result<(), ProviderError> {
        let user = Arc::clone(&lease.user);
        self.on_broker("revoke", async move |account| {
            account.revoke(&user.public_key, user.expires_at).await?;
            leases::forget(&leases::dir(&account.keys.account), &user.public_key);
            Ok(())
        })
        .await
    }

    async fn prove_dead(&self, lease: &NatsLease) -> Result<Proof, ProviderError> {
        match lease.user.options().connect(lease.user.url.as_str()).await {
            Ok(_client) => Ok(Proof::Accepted),
            Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation => {
                Ok(Proof::Refused("-ERR 'Authorization Violation'".into()))
            }
            Err(e) => Err(ProviderError::Unreachable {
                system: "NATS",
                address: account::address(&lease.user.url),
                setting: URL_VAR,
                reason: e.to_string(),
            }),
        }
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        if let Some(e) = error.downcast_ref::<NatsError>() {
            return match e {
                NatsError::Denied { .. } => Some(ErrorClass::Denied),
                NatsError::Unauthenticated(_) => Some(ErrorClass::Unauthenticated),
                NatsError::Client { .. } => None,
            };
        }
        if let Some(e) = error.downcast_ref::<async_nats::ConnectError>() {
            let refused = e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation;
            return refused.then_some(ErrorClass::Unauthenticated);
        }
        match error.downcast_ref::<async_nats::ServerError>()? {
            async_nats::ServerError::AuthorizationViolation => Some(ErrorClass::Unauthenticated),
            async_nats::ServerError::Other(m) => Some(classify_message(m)),
            async_nats::ServerError::SlowConsumer(_) => Some(ErrorClass::Other),
        }
    }

    async fn reap(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        self.on_broker("reap", async move |account| {
            let mut users = account.prune(grace).await?;
            for user in leases::reap(&leases::dir(&account.keys.account), grace) {
                if !users.contains(&user) {
                    users.push(user);
                }
            }
            Ok(users)
        })
        .await
    }
}

/// A server `-ERR` message: `Permissions Violation ...` is a denial; `Authorization
/// Violation` and `User Authentication Expired`/`Revoked` are authentication failures.
fn classify_message(message: &str) -> ErrorClass {
    if message.contains("Permissions Violation") {
        ErrorClass::Denied
    } else if is_authentication_failure(message) {
        ErrorClass::Unauthenticated
    } else {
        ErrorClass::Other
    }
}
