//! The `mqtt` provider: each test gets a fresh Mosquitto client (user name, password and
//! role, through the dynamic-security plugin) allowed to publish and subscribe exactly
//! the topics of its scope; afterwards the client is removed, its sessions are cut, and
//! its password is proven dead with a real MQTT v5 CONNECT.
//!
//! ```text
//! use jit_test::{jit_test, assert_denied};
//! use jit_test_providers::mqtt::MqttGrant;
//!
//! #[jit_test(scope = "mqtt:publish:devices/d1/telemetry, mqtt:subscribe:devices/d1/commands")]
//! async fn device_reports(mqtt: MqttGrant) -> anyhow::Result<()> {
//!     let mut session = mqtt.connect().await?;
//!     session.publish("devices/d1/telemetry", "21.5").await?;      // PUBACK 0x10
//!     assert_denied!(session.publish("devices/d2/telemetry", "0").await); // PUBACK 0x87
//!     assert_denied!(session.subscribe("devices/#").await);        // SUBACK 0x87
//!     Ok(())
//! }
//! ```
//!
//! # Scope grammar
//!
//! | permission | ACLs of the client's role |
//! |---|---|
//! | `mqtt:publish:devices/d1/telemetry` | `publishClientSend` on that topic |
//! | `mqtt:publish:devices/+/telemetry`, `mqtt:publish:devices/#` | `publishClientSend` on every topic the filter matches |
//! | `mqtt:subscribe:devices/d1/commands` (also with `+`, `#`) | `subscribePattern`, `publishClientReceive` and `unsubscribePattern` on the filter: subscribe to it or to any narrower filter, receive, unsubscribe |
//!
//! Topics follow MQTT's rules: `+` is a whole level, `#` a whole last level; topics
//! beginning with `$` (`$SYS`, `$CONTROL`) are refused, and so are `*` and `>` (not MQTT
//! wildcards). A bare scope (no `mqtt` permission) gives a client that may log in and do
//! nothing. Topics reach the broker only as JSON strings of the control messages.
//!
//! # Lifecycle
//!
//! - **Grant**, one batch on `$CONTROL/dynamic-security/v1` from the admin client's one
//!   connection: `createRole jit_<lease>` with the ACLs above (allow, priority 1) and a
//!   deny of `#` for all four ACL types (priority 0), then `createClient jit_<lease>` with
//!   a 144-bit random password and that role. Both carry `textname` `jit-test lease` and
//!   the [`jit_test::LeaseMeta`] JSON in `textdescription`. The broker logs the command
//!   with `password=*****`.
//! - **Beyond the scope**: the deny of `#` overrides the plugin's default ACL access
//!   (`setDefaultACLAccess`) on every topic but those beginning with `$`; each default
//!   that is `allow` is reported in [`MqttGrant::beyond_scope`] and the audit log, and
//!   fails the grant with `strict = true`. A `deny` permission the scope covers fails the
//!   grant. The anonymous group's roles apply only to clients without a user name, and
//!   a broker that lets those in fails every grant (see below).
//! - **Expiry**: Mosquitto has none: jit-test's watchdog revokes the lease at its ttl, and
//!   the reaper removes what a killed process leaves.
//! - **Revoke**: `deleteClient` and `deleteRole` in one batch; the plugin disconnects the
//!   client's sessions at once (MQTT v5 DISCONNECT 0x98). "Not found" counts as revoked;
//!   other failures are retried twice (100 ms, 400 ms) and then fail loudly.
//! - **Prove dead**: an MQTT v5 CONNECT with the old password; CONNACK 0x86 or 0x87 is
//!   the proof.
//! - **Reap**: clients and roles named `jit_…` whose metadata expiry plus grace has
//!   passed, under a lock role ([`REAPER_LOCK`]).
//!
//! # Errors
//!
//! [`MqttSession::publish`] and [`MqttSession::subscribe`] wait for the broker's PUBACK
//! or SUBACK and return its refusal as an [`MqttError`]: 0x87 is a denial for
//! `assert_denied!`; CONNACK 0x86/0x87 an authentication failure for
//! `assert_unauthenticated!` (also as rumqttc's own `ConnectionError`). Use MQTT v5:
//! under v3.1.1 Mosquitto drops a denied publish silently.
//!
//! # The broker must check passwords
//!
//! Before the first grant of each process the provider connects without a user name; a
//! broker that accepts it fails every grant with the fix (`allow_anonymous false`).
//!
//! # Configuration
//!
//! The admin client (made by `mosquitto_ctrl dynsec init`) comes from
//! `JIT_TEST_MQTT_URL`, else `url` in `[providers.mqtt]`, else the file named by
//! `admin_file` (default [`DEFAULT_ADMIN_FILE`], written by `.ci/setup-mqtt`, which
//! starts the broker on 127.0.0.1:11883). Clients connect to the same host and port.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | from `admin_file` | `mqtt://user:password@host:port` of the admin client |
//! | `admin_file` | `/var/lib/jit-test/mqtt/admin.url` | a file holding that URL |
//! | `connect_timeout` | `5s` | how long to wait for the broker and the plugin's answers |
//! | `strict` | `false` | fail a grant whose client could do more than its scope (`JIT_TEST_MQTT_STRICT=1`) |
//!
//! An unreachable broker fails within `connect_timeout` with
//! [`ProviderError::Unreachable`] naming the address and `JIT_TEST_MQTT_URL`.

mod access;
mod broker_check;
mod classify;
mod control;
mod credential;
mod grant;
mod reaper;
mod revoke;
mod session;
mod settings;
mod topic;

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jit_test::{
    Config, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider, ProviderError,
};
use tokio::sync::OnceCell;

use crate::handoff::{on_broker, on_broker_only};

/// The MQTT client the provider uses, for tests that drive their own.
pub use rumqttc;

pub use classify::{ADMINISTRATIVE_ACTION, BAD_LOGIN, NOT_AUTHORIZED};
pub use credential::{MqttGrant, MqttLease};
pub use reaper::{LOCK_TTL, REAPER_LOCK};
pub use session::{Message, MqttError, MqttSession};
pub use settings::{DEFAULT_ADMIN_FILE, MqttSettings, URL_VAR};

use broker_check::BrokerFacts;
use control::Control;

/// Proof logins in flight at most, per process: a burst of connections beyond the
/// broker's listen backlog waits for SYN retransmits.
const LOGIN_ATTEMPTS: usize = 8;

/// Prefix of every client's and role's name.
pub const PREFIX: &str = "jit_";

/// The Mosquitto dynamic-security provider (scheme `mqtt`). See the
/// [module documentation](self).
pub struct MqttProvider {
    inner: Arc<Inner>,
}

/// The provider's state, shared with the tasks it runs on the broker's runtime.
pub(crate) struct Inner {
    pub(crate) settings: MqttSettings,
    pub(crate) control: Control,
    facts: OnceCell<BrokerFacts>,
    /// Bounds the proofs' logins.
    logins: tokio::sync::Semaphore,
}

impl Inner {
    /// What the provider checks about the broker, once.
    pub(crate) async fn facts(&self) -> Result<&BrokerFacts, ProviderError> {
        self.facts
            .get_or_try_init(|| broker_check::inspect(&self.control, &self.settings))
            .await
    }
}

impl MqttProvider {
    /// A provider with these settings. Connects lazily. Makes its error classification
    /// known to `assert_denied!` and `assert_unauthenticated!`.
    pub fn new(settings: MqttSettings) -> MqttProvider {
        jit_test::register::<MqttProvider>();
        MqttProvider {
            inner: Arc::new(Inner {
                control: Control::new(settings.clone()),
                settings,
                facts: OnceCell::new(),
                logins: tokio::sync::Semaphore::new(LOGIN_ATTEMPTS),
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &MqttSettings {
        &self.inner.settings
    }

    /// Sends dynamic-security commands as the admin client over the provider's
    /// connection and returns the plugin's `responses` (for test fixtures and tools).
    pub async fn control(
        &self,
        commands: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only("control", async move {
            let replies = inner.control.send("control", commands).await?;
            Ok(replies
                .into_iter()
                .map(|r| serde_json::json!({ "command": r.command, "error": r.error, "data": r.data }))
                .collect())
        })
        .await
    }
}

impl Provider for MqttProvider {
    const SCHEME: &'static str = "mqtt";
    type Credential = MqttGrant;
    type Lease = MqttLease;

    fn from_config(config: &Config) -> Result<Self, ProviderError> {
        Ok(MqttProvider::new(MqttSettings::from_config(config)?))
    }

    fn validate(permission: &Permission) -> Result<(), String> {
        access::Access::parse(permission).map(drop)
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
                    let _ = revoke::revoke(&inner.control, &granted.principal).await;
                });
            },
        )
        .await
    }

    async fn revoke(&self, lease: &MqttLease) -> Result<(), ProviderError> {
        let inner = Arc::clone(&self.inner);
        let name = lease.login.username.clone();
        on_broker_only("revoke", async move {
            revoke::revoke(&inner.control, &name).await
        })
        .await
    }

    async fn prove_dead(&self, lease: &MqttLease) -> Result<Proof, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let login = lease.login.clone();
        on_broker_only("proof", async move {
            let _permit = inner.logins.acquire().await.expect("never closed");
            revoke::prove_dead(&login).await
        })
        .await
    }

    fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
        classify::classify(error)
    }

    async fn reap(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        on_broker_only(
            "reap",
            async move { reaper::reap(&inner.control, grace).await },
        )
        .await
    }
}

/// The provider's own control messages, for the benchmark (`benches/mqtt_lifecycle.rs`)
/// to send over a plain connection as its floor. Not a public API.
#[doc(hidden)]
pub mod __bench {
    use jit_test::{GrantRequest, Secret};

    pub use super::control::TOPIC;

    /// The grant batch of `request`: the client's name, its password, the commands.
    pub fn grant(request: &GrantRequest) -> (String, Secret, Vec<serde_json::Value>) {
        let plan = super::grant::Plan::new(request).expect("plan");
        (plan.name, plan.password, plan.commands)
    }

    /// The revoke batch of client `name`.
    pub fn revoke(name: &str) -> Vec<serde_json::Value> {
        super::revoke::commands(name)
    }
}
