//! The provider's state, shared with the tasks it runs on the broker's runtime: settings,
//! the admin pool, what it learnt about the server once.

use std::collections::HashMap;
use std::sync::Once;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use jit_test::ProviderError;
use tokio::sync::OnceCell;

use super::hba::Hba;
use super::pool::Pool;
use super::retry::describe;
use super::roles::LOCK_CLASS;
use super::settings::{PgSettings, URL_VAR};

/// Login attempts of proofs in flight at most, per process.
const LOGIN_ATTEMPTS: usize = 8;

/// What the provider learns about the server once.
pub(crate) struct Init {
    /// How the server authenticates, or why that could not be read.
    pub(crate) hba: Result<Hba, String>,
}

/// The provider's state, shared with the tasks it runs on the broker's runtime.
pub(crate) struct Inner {
    pub(crate) settings: PgSettings,
    pub(crate) pool: Pool,
    init: OnceCell<Init>,
    trust_warning: Once,
    /// Bounds the login attempts of proofs, which each start a server process.
    pub(crate) logins: tokio::sync::Semaphore,
    /// When each permission set was last made or refreshed by this process.
    pub(crate) ensured: tokio::sync::Mutex<HashMap<String, Instant>>,
    /// Whether the server was seen asking a fresh role for its password.
    pub(crate) auth_checked: AtomicBool,
}

impl Inner {
    /// The state of a provider with these settings; connects lazily.
    pub(crate) fn new(settings: PgSettings) -> Inner {
        Inner {
            pool: Pool::new(&settings),
            settings,
            init: OnceCell::new(),
            trust_warning: Once::new(),
            logins: tokio::sync::Semaphore::new(LOGIN_ATTEMPTS),
            ensured: tokio::sync::Mutex::new(HashMap::new()),
            auth_checked: AtomicBool::new(false),
        }
    }

    /// Creates `jit_lease` if missing and reads how the server authenticates; once.
    pub(crate) async fn init(&self) -> Result<&Init, ProviderError> {
        self.init
            .get_or_try_init(|| async {
                let conn = self.pool.get().await?;
                let client = conn.client();
                let me = client
                    .query_one(
                        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
                        &[],
                    )
                    .await
                    .map_err(|e| ProviderError::failed("setup", describe(&e)))?;
                if !me.get::<_, bool>(0) {
                    return Err(ProviderError::Misconfigured(format!(
                        "the admin role of {} ({}) can create no roles: connect as a superuser \
                         or a role with CREATEROLE (set {URL_VAR})",
                        self.settings.address(),
                        self.settings.source
                    )));
                }
                client
                    .batch_execute(&format!(
                        "BEGIN;
                         SELECT pg_advisory_xact_lock({LOCK_CLASS}, 1);
                         DO $jit$
                         BEGIN
                             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jit_lease') THEN
                                 CREATE ROLE jit_lease NOLOGIN;
                                 COMMENT ON ROLE jit_lease IS
                                     'jit-test: group of all short-lived login roles (pg_hba.conf: +jit_lease)';
                             END IF;
                         END
                         $jit$;
                         COMMIT;"
                    ))
                    .await
                    .map_err(|e| ProviderError::failed("setup", describe(&e)))?;
                // Unreadable rules fail every grant, unless allow_trust runs anyway.
                let hba = Hba::read(client).await;
                if let Err(message) = &hba
                    && !self.settings.allow_trust
                {
                    return Err(ProviderError::Misconfigured(message.clone()));
                }
                Ok(Init { hba })
            })
            .await
    }

    pub(crate) fn warn_trust_once(&self, message: &str) {
        self.trust_warning.call_once(|| {
            eprintln!("jit-test: warning: allow_trust is set, continuing although: {message}");
        });
    }
}
