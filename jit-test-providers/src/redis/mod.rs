//! The `redis` provider: each test gets a fresh Redis ACL user that can touch only the
//! keys and channels its scope names, with only the commands its scope names; the
//! broker's watchdog deletes it at the ttl (Redis users never expire on their own), and
//! the old password is then proven dead with a real `AUTH`.
//!
//! ```text
//! use jit_test::{jit_test, assert_denied};
//! use jit_test_providers::redis::RedisGrant;
//!
//! #[jit_test(scope = "redis:command(get,set,expire):cache:*", ttl = "30s")]
//! async fn caches_orders(redis: RedisGrant) -> anyhow::Result<()> {
//!     let mut con = redis.connect().await?;
//!     let _: () = redis::cmd("SET").arg("cache:o1").arg("{}").query_async(&mut con).await?;
//!     assert_denied!(redis::cmd("FLUSHALL").query_async::<()>(&mut con).await); // NOPERM
//!     Ok(())
//! }
//! ```
//!
//! # Scope grammar
//!
//! Each permission becomes one ACL selector, so its commands reach only its own keys:
//!
//! | permission | ACL selector |
//! |---|---|
//! | `redis:read:cache:*` | `(%R~cache:* +@read)`: read commands, read access to the keys |
//! | `redis:write:cart:*` | `(%W~cart:* +@write)`: write commands, write-only access (`INCR` also reads: use `readwrite`) |
//! | `redis:readwrite:session:*` | `(~session:* +@read +@write)` |
//! | `redis:command(get,set,expire):cache:*` | `(~cache:* +get +set +expire)`: exactly those commands |
//! | `redis:category(stream):jobs:*` | `(~jobs:* +@stream)`: any category but `admin`, `dangerous`, `connection`, `pubsub` |
//! | `redis:publish:events.*` | `(&events.* +publish)` |
//! | `redis:subscribe:events.*` | `(&events.* +subscribe +psubscribe +unsubscribe +punsubscribe)` |
//!
//! Category forms (`read`, `write`, `readwrite`, `category(...)`) leave out every command
//! of the category that takes no key (`KEYS`, `SCAN`, `RANDOMKEY`, `DBSIZE`, `FLUSHALL`,
//! ...), read from the server's `COMMAND INFO`: a key pattern cannot confine those. Such a
//! command is granted only by name, with the resource `*`: `redis:command(flushall):*`.
//! `command(...)` names whole commands (`command(object)` allows every `OBJECT`
//! subcommand). The only glob is `*`: Redis' `?` and `[...]` are not accepted (see the
//! README), so that a pattern is always one ACL word with nothing to escape.
//!
//! Whatever the scope, a user may run `AUTH`, `HELLO`, `PING`, `CLIENT SETNAME` (and
//! `CLIENT SETINFO` where the server has it; `QUIT` and `RESET` are always allowed by
//! Redis): that is all a bare scope allows. With a database other than 0 in the URL, also
//! `SELECT` (ACLs cannot confine a user to a database).
//!
//! # Lifecycle
//!
//! - **Grant**, one pipeline: `ACL SETUSER jit_e<expiry>_<lease> reset on #<sha256>
//!   resetkeys resetchannels nocommands +auth ... (<selector>)...`, then `ACL DRYRUN` probes.
//!   The password is 192 random bits; the server only sees its SHA-256. The expiry in the
//!   name is by the server's clock: Redis has no comment field, and a name can neither be
//!   lost nor changed, unlike a registry hash in the shared keyspace (see `principal.rs`).
//! - **Deny**: each `deny` permission's commands are tried with `ACL DRYRUN` on a sample
//!   key (each `*` replaced by `x`); one allowed fails the grant before the body runs.
//! - **Beyond scope**: `ACL DRYRUN` of `FLUSHALL`, `KEYS`, `CONFIG GET`, `ACL LIST`, and a
//!   key and channel outside the scope; plus every user that is `on` with `nopass` (read
//!   once per process), above all `default`: a connection that skips `AUTH` is that user,
//!   which on a stock server has `~* &* +@all`. Findings go to
//!   [`RedisGrant::beyond_scope`] and the audit log; with `strict = true` they fail the grant.
//! - **Revoke**: `ACL DELUSER`, which closes the user's live connections (`ACL SETUSER u
//!   off` would not); retried on a lost connection; "already gone" counts as revoked.
//! - **Prove dead**: `AUTH user password` on a connection kept for that, which never
//!   logged in; `WRONGPASS` is the proof.
//! - **Reap**: users whose name's expiry plus grace has passed by the server's clock,
//!   under the key [`REAPER_LOCK`].
//!
//! # Configuration
//!
//! The admin connection comes from `JIT_TEST_REDIS_URL`, else `url` in `[providers.redis]`,
//! else [`DEFAULT_URL`]; credentials connect to the same host, port and database.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | `redis://127.0.0.1:6379` | admin connection (a user allowed `+acl +command +info +time +set +eval`) |
//! | `strict` | `false` | fail a grant with beyond-scope findings (`JIT_TEST_REDIS_STRICT=1`) |
//! | `connect_timeout` | `5s` | how long to wait for the server to connect or answer |

mod admin;
mod commands;
mod credential;
mod facts;
mod grant;
mod principal;
mod reaper;
mod revoke;
mod rules;
mod settings;

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{ErrorKind, RedisError};
use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError,
};
use tokio::sync::OnceCell;

use crate::handoff::{on_broker, on_broker_only};

pub use credential::{RedisGrant, RedisLease};
pub use grant::CONNECTION_COMMANDS;
pub use principal::PREFIX;
pub use reaper::REAPER_LOCK;
pub use settings::{DEFAULT_URL, RedisSettings, URL_VAR};

use admin::Admin;
use facts::Facts;

/// The Redis provider (scheme `redis`). See the [module documentation](self).
pub struct RedisProvider {
    inner: Arc<Inner>,
}

/// The provider's state, shared with the tasks it runs on the broker's runtime.
pub(crate) struct Inner {
    pub(crate) settings: RedisSettings,
    pub(crate) admin: Admin,
    facts: OnceCell<Facts>,
}

impl Inner {
    /// The server facts, read on first use.
    pub(crate) async fn facts(&self) -> Result<&Facts, ProviderError> {
        self.facts
            .get_or_try_init(|| Facts::read(&self.admin))
            .await
    }
}

impl RedisProvider {
    /// A provider with these settings. Connects lazily. Makes its error classification
    /// known to `assert_denied!` and `assert_unauthenticated!`.
    pub fn new(settings: RedisSettings) -> Result<RedisProvider, ProviderError> {
        jit_test::register::<RedisProvider>();
        Ok(RedisProvider {
            inner: Arc::new(Inner {
                admin: Admin::new(&settings)?,
                settings,
                facts: OnceCell::new(),
            }),
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &RedisSettings {
        &self.inner.settings
    }
}

impl Provider for RedisProvider {
    const SCHEME: &'static str = "redis";
    type Credential = RedisGrant;
    type Lease = RedisLease;

    fn from_config(config: &Config) -> Result<Self, ProviderError> {
        RedisProvider::new(RedisSettings::from_config(config)?)
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        rules::Rule::parse(permission).map(drop)
    }

    async fn grant(&self, request: &GrantRequest) -> Result<Granted<Self>, ProviderError> {
        let (inner, request) = (Arc::clone(&self.inner), request.clone());
        let abandoned = Arc::clone(&inner);
        on_broker(
            "grant",
            async move { grant::grant(&inner, &request).await },
            // Nobody waits for it any more: take it back at once.
            move |granted| {
                let inner = abandoned;
                tokio::spawn(async move {
                    let _ = revoke::delete(&inner.admin, &granted.lease.user).await;
                });
            },
        )
        .await
    }

    async fn revoke(&self, lease: &RedisLease) -> Result<(), ProviderError> {
        let (inner, user) = (Arc::clone(&self.inner), lease.user.clone());
        on_broker_only("revoke", async move {
            revoke::delete(&inner.admin, &user).await
        })
        .await
    }

    async fn prove_dead(&self, lease: &RedisLease) -> Result<Proof, ProviderError> {
        let (inner, lease) = (Arc::clone(&self.inner), lease.clone());
        on_broker_only("proof", async move {
            revoke::prove_dead(&inner.admin, &lease).await
        })
        .await
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        error.downcast_ref::<RedisError>().map(classify_error)
    }

    async fn reap(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("reap", async move { reaper::reap(&inner, grace).await }).await
    }
}

/// `NOPERM` is a denial; `WRONGPASS`, `NOAUTH` and a refused login are authentication
/// failures; anything else (a dropped connection included) is neither.
fn classify_error(error: &RedisError) -> ErrorClass {
    if error.kind() == ErrorKind::AuthenticationFailed {
        return ErrorClass::Unauthenticated;
    }
    match error.code() {
        Some("NOPERM") => ErrorClass::Denied,
        Some("WRONGPASS" | "NOAUTH") => ErrorClass::Unauthenticated,
        _ => ErrorClass::Other,
    }
}

/// The provider's grant pipeline, for the benchmark (`benches/redis_lifecycle.rs`) to
/// send over a plain connection as its floor. Not a public API.
#[doc(hidden)]
pub mod __bench {
    use ::redis::{Pipeline, cmd};
    use jit_test::{GrantRequest, ProviderError, Secret};

    use super::RedisProvider;
    use super::grant::Plan;

    /// The grant pipeline of `request` and the user's name and password.
    pub async fn grant_pipeline(
        provider: &RedisProvider,
        request: &GrantRequest,
    ) -> Result<(Pipeline, String, Secret), ProviderError> {
        let facts = provider.inner.facts().await?;
        let db = provider.inner.settings.admin.redis_settings().db();
        let plan = Plan::new(request, facts, db)?;
        Ok((plan.pipeline(), plan.user, plan.password))
    }

    /// The revocation command.
    pub fn revoke_command(user: &str) -> ::redis::Cmd {
        cmd("ACL").arg("DELUSER").arg(user).clone()
    }
}
