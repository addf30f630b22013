//! The `amqp` provider: each test gets a fresh RabbitMQ user whose permissions cover
//! exactly the queues and exchanges of its scope; afterwards the user is deleted (its
//! connections closed) and its password proven dead.
//!
//! ```text
//! use jit_test::{jit_test, assert_denied};
//! use jit_test_providers::amqp::AmqpGrant;
//!
//! #[jit_test(scope = "amqp:read:/orders.q")]
//! async fn worker_consumes(amqp: AmqpGrant) -> anyhow::Result<()> {
//!     let channel = amqp.connect().await?.create_channel().await?;
//!     channel.basic_get("orders.q".into(), Default::default()).await?;
//!     let other = amqp.connect().await?.create_channel().await?;
//!     assert_denied!(other.basic_get("billing.q".into(), Default::default()).await);
//!     Ok(())
//! }
//! ```
//!
//! # Scope grammar
//!
//! | permission | RabbitMQ permission of the user |
//! |---|---|
//! | `amqp:read:/orders.q` | read on `orders.q` in vhost `/`: consume, `basic.get`, purge; bind *from* an exchange of that name |
//! | `amqp:write:/orders.x` | write on `orders.x`: publish to the exchange; bind a queue of that name |
//! | `amqp:write:/amq.default` | publish through the default exchange (to a queue by its name) |
//! | `amqp:configure:/orders.*` | configure on every name starting `orders.`: declare, delete |
//! | `amqp:read:shop/orders.q` | the same in vhost `shop` |
//! | `amqp:topic_write:/orders.topic:orders.eu.*` | topic permission: publishes to topic exchange `orders.topic` only with routing keys `orders.eu.*` |
//! | `amqp:topic_read:/orders.topic:orders.eu.*` | topic permission: binds from `orders.topic` only with those keys |
//!
//! The resource is `vhost/name`, a leading `/` meaning the default vhost. Names and
//! vhosts are letters, digits, `_`, `.`, `-`; `*` in a name or routing key is a glob
//! (any characters). Each action's names become one anchored, escaped regex per vhost
//! (`^(?:orders\.q|orders\.x)$`, or `^$` for none) built by one tested function, so
//! `orders.q` never matches `ordersXq` nor `orders.q.evil`. The default exchange is not
//! implied: publishing to a queue by name needs `amqp:write:/amq.default` (RabbitMQ checks
//! write on `amq.default`). A topic permission narrows what `write`/`read` on the
//! exchange allow; alone it allows nothing.
//!
//! A scope may be empty: the user then has no permissions anywhere and cannot even open
//! a vhost (530 NOT_ALLOWED). Vhosts are not created: they must exist.
//!
//! # Lifecycle
//!
//! - **Grant**, over the management API: `PUT /api/users/jit_<lease>` with a
//!   `rabbit_password_hashing_sha256` hash computed here (the password, 128 random bits,
//!   never reaches the broker), no management tag, and a `jit-lease:{json}` tag holding
//!   the [`jit_test::LeaseMeta`] (tags survive as given; unknown fields of the user's JSON
//!   are dropped); then `PUT /api/permissions/{vhost}/{user}` for each vhost of the scope
//!   and `PUT /api/topic-permissions/...` for each topic permission. A new user has no
//!   permissions RabbitMQ adds by default (`default_permissions` apply to the default
//!   user only).
//! - **Expiry**: RabbitMQ has none for internal users; the broker's watchdog deletes the
//!   user at its ttl, and the reaper catches what a crash leaves.
//! - **Beyond scope**: RabbitMQ lets a user publish with any routing key to a topic
//!   exchange for which it has no topic permission; every existing topic exchange the
//!   user may write or read without one (`GET /api/exchanges/{vhost}`) is reported (in
//!   [`AmqpGrant::beyond_scope`] and the audit log). Nothing else is: a new user reaches
//!   no vhost but those of its scope. `deny`
//!   is checked before anything is created, against the computed permissions (globs that
//!   overlap count as held).
//! - **Revoke**: `DELETE /api/users/{user}`, retried with backoff on 5xx or no answer,
//!   404 counting as done. RabbitMQ closes the user's connections (320
//!   CONNECTION_FORCED).
//! - **Prove dead**: an AMQP login with the old password; 403 ACCESS_REFUSED at login is
//!   the proof.
//! - **Reap**: users with the prefix and a lease tag whose expiry plus grace has passed by
//!   the broker's clock, under the exclusive queue [`REAPER_LOCK`].
//!
//! The first grant of each process also tries the new user with a wrong password: a
//! broker that lets it in (an auth backend that checks nothing) fails the grant, as every
//! proof of death would be meaningless.
//!
//! # Errors
//!
//! [`AmqpGrant::connect`] fails with a [`ConnectError`]: 403 there is an authentication
//! failure (`assert_unauthenticated!`), 530 NOT_ALLOWED a denial of the vhost. On an open
//! connection, 403 ACCESS_REFUSED (the channel is closed) is a denial (`assert_denied!`).
//! 320 CONNECTION_FORCED, the end of a revoked user's connection, is neither.
//!
//! # Configuration
//!
//! | env | `[providers.amqp]` key | default | meaning |
//! |---|---|---|---|
//! | `JIT_TEST_AMQP_URL` | `url` | `amqp://127.0.0.1:5672` | where credentials log in (plain AMQP; TLS is not built in) |
//! | `JIT_TEST_AMQP_ADMIN_URL` | `admin_url` | `http://guest:guest@127.0.0.1:15672` | the management API and an `administrator` (also used over AMQP for the reaper lock) |
//! | | `connect_timeout` | `5s` | how long to wait for a connection, a request or a login |
//!
//! An unreachable or silent broker fails within `connect_timeout` with
//! [`ProviderError::Unreachable`] naming the address and the variable to set.

mod api;
mod classify;
mod credential;
mod grant;
mod login;
mod password;
mod reaper;
mod revoke;
pub mod scope;
mod settings;

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError,
};
use tokio::sync::OnceCell;

use crate::handoff::{on_broker, on_broker_only};

pub use classify::{ACCESS_REFUSED, NOT_ALLOWED};
pub use credential::{AmqpGrant, AmqpLease};
pub use grant::META_TAG;
pub use login::ConnectError;
pub use reaper::REAPER_LOCK;
pub use settings::{
    ADMIN_URL_VAR, Address, Admin, AmqpSettings, DEFAULT_ADMIN_URL, DEFAULT_URL, URL_VAR,
};

use api::Api;
use login::Login;

/// Prefix of every user's name.
pub const PREFIX: &str = "jit_";

/// The RabbitMQ provider (scheme `amqp`). See the [module documentation](self).
pub struct AmqpProvider {
    inner: Arc<Inner>,
}

/// The provider's state, shared with the tasks it runs on the broker's runtime.
pub(crate) struct Inner {
    pub(crate) settings: AmqpSettings,
    pub(crate) api: Api,
    /// Set once a wrong password was seen refused.
    passwords_checked: OnceCell<()>,
    /// Bounds the logins of proofs in flight, which a busy broker would reset.
    logins: tokio::sync::Semaphore,
}

/// Logins of proofs in flight at most, per process.
const LOGIN_ATTEMPTS: usize = 8;

impl Inner {
    /// The administrator's AMQP login (the management API's user and password).
    pub(crate) fn admin_login(&self) -> Login {
        let settings = &self.settings;
        Login {
            address: settings.amqp.clone(),
            user: settings.admin.user.clone(),
            password: settings.admin.password.clone(),
            timeout: settings.connect_timeout,
        }
    }

    /// Once per process: the broker must refuse `login`'s user with a wrong password.
    pub(crate) async fn check_passwords_once(
        &self,
        login: &Login,
        vhost: &str,
    ) -> Result<(), ProviderError> {
        self.passwords_checked
            .get_or_try_init(|| async {
                let mut wrong = login.clone();
                wrong.password = jit_test::Secret::random(16);
                match wrong.connect(vhost).await {
                    Err(e) if e.reply_code() == Some(ACCESS_REFUSED) => Ok(()),
                    Err(e) if e.is_unreachable() => Err(ProviderError::Unreachable {
                        system: "RabbitMQ",
                        address: login.address.to_string(),
                        setting: URL_VAR,
                        reason: e.to_string(),
                    }),
                    outcome => Err(ProviderError::Misconfigured(format!(
                        "the broker at {} does not check passwords: user {} with a wrong \
                         password got {}. Remove the auth backend that lets anyone in \
                         (`auth_backends` in rabbitmq.conf) or point {URL_VAR} at a broker \
                         that checks them",
                        login.address,
                        login.user,
                        match outcome {
                            Ok(_) => "in".to_owned(),
                            Err(e) => e.to_string(),
                        }
                    ))),
                }
            })
            .await
            .map(drop)
    }
}

impl AmqpProvider {
    /// A provider with these settings. Connects lazily. Makes its error classification
    /// known to `assert_denied!` and `assert_unauthenticated!`.
    pub fn new(settings: AmqpSettings) -> AmqpProvider {
        jit_test::register::<AmqpProvider>();
        AmqpProvider {
            inner: Arc::new(Inner {
                api: Api::new(&settings),
                settings,
                passwords_checked: OnceCell::new(),
                logins: tokio::sync::Semaphore::new(LOGIN_ATTEMPTS),
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &AmqpSettings {
        &self.inner.settings
    }

    /// An AMQP connection as the administrator, on the current runtime (for fixtures:
    /// declaring the queues and exchanges a test's scope names).
    pub async fn admin_connection(&self) -> Result<lapin::Connection, ConnectError> {
        self.inner.admin_login().connect("/").await
    }

    /// The users of leases on the broker (name and lease metadata), live or not: what the
    /// reaper looks at, for tests and tools.
    pub async fn lease_users(&self) -> Result<Vec<(String, jit_test::LeaseMeta)>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("list users", async move {
            reaper::lease_users(&inner).await.map(|(users, _)| users)
        })
        .await
    }
}

/// What the benchmark (`benches/amqp_lifecycle.rs`) needs to send the provider's own
/// requests over a plain connection as its floor. Not a public API.
#[doc(hidden)]
pub mod __bench {
    /// The `password_hash` the provider sends for `password`.
    pub fn password_hash(password: &jit_test::Secret) -> String {
        super::password::hash(password)
    }

    /// The `hashing_algorithm` sent with it.
    pub const HASHING_ALGORITHM: &str = super::password::ALGORITHM;
}

impl Provider for AmqpProvider {
    const SCHEME: &'static str = "amqp";
    type Credential = AmqpGrant;
    type Lease = AmqpLease;

    fn from_config(config: &Config) -> Result<Self, ProviderError> {
        Ok(AmqpProvider::new(AmqpSettings::from_config(config)?))
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        scope::Rule::parse(permission).map(drop)
    }

    async fn grant(&self, request: &GrantRequest) -> Result<Granted<Self>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let request = request.clone();
        let abandoned = Arc::clone(&inner);
        on_broker(
            "grant",
            async move { grant::grant(&inner, &request).await },
            // Nobody waits for it any more: take it back at once.
            move |granted| {
                let inner = abandoned;
                tokio::spawn(async move {
                    let _ = revoke::delete_user(&inner.api, &granted.principal).await;
                });
            },
        )
        .await
    }

    async fn revoke(&self, lease: &AmqpLease) -> Result<(), ProviderError> {
        let inner = Arc::clone(&self.inner);
        let user = lease.login.user.clone();
        on_broker_only("revoke", async move {
            revoke::delete_user(&inner.api, &user).await
        })
        .await
    }

    async fn prove_dead(&self, lease: &AmqpLease) -> Result<Proof, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let lease = lease.clone();
        on_broker_only("proof", async move {
            let _permit = inner.logins.acquire().await.expect("never closed");
            revoke::prove_dead(&lease).await
        })
        .await
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        classify::classify(error)
    }

    async fn reap(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("reap", async move { reaper::reap(&inner, grace).await }).await
    }
}
