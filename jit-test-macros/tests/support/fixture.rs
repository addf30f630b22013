//! A FIXTURE for testing the `#[jit_test]` macro, not a real provider: two in-process
//! providers, schemes `mem` and `kv`, whose "system" is a set of live principal names.
//! Granting adds a name, revoking removes it, and a credential is dead once its name is
//! gone. Actions `read` and `write` are valid.
#![allow(dead_code)]

use std::collections::HashSet;
use std::error::Error;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use jit_test::{
    Config, Credential, ErrorClass, GrantRequest, Granted, Permission, Proof, Provider,
    ProviderError,
};

/// The principals currently live, across both fixture providers.
static LIVE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<HashSet<String>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `principal` is still live.
pub fn is_live(principal: &str) -> bool {
    live().as_ref().is_some_and(|set| set.contains(principal))
}

/// What a fixture credential tells the test about its grant.
#[derive(Debug)]
pub struct Grant {
    /// The principal's name.
    pub principal: String,
    /// The test the grant was made for, as the macro named it.
    pub test: String,
    /// The permissions granted, as written.
    pub permissions: Vec<String>,
    /// The permissions denied, as written.
    pub deny: Vec<String>,
    /// The lifetime asked for.
    pub ttl: Duration,
}

impl Grant {
    /// Whether this credential still works.
    pub fn is_live(&self) -> bool {
        is_live(&self.principal)
    }
}

macro_rules! fixture_provider {
    ($provider:ident, $credential:ident, $scheme:literal) => {
        #[doc = concat!("Fixture provider of scheme `", $scheme, "`.")]
        pub struct $provider;

        #[doc = concat!("Fixture credential of scheme `", $scheme, "`.")]
        #[derive(Debug)]
        pub struct $credential(pub Grant);

        impl std::ops::Deref for $credential {
            type Target = Grant;
            fn deref(&self) -> &Grant {
                &self.0
            }
        }

        impl Credential for $credential {
            type Provider = $provider;
        }

        impl Provider for $provider {
            const SCHEME: &'static str = $scheme;
            type Credential = $credential;
            type Lease = String;

            fn from_config(_: &Config) -> Result<Self, ProviderError> {
                Ok($provider)
            }

            fn validate(permission: &Permission) -> Result<(), String> {
                match permission.action.as_str() {
                    "read" | "write" => Ok(()),
                    other => Err(format!("unknown action `{other}`: use `read` or `write`")),
                }
            }

            async fn grant(&self, request: &GrantRequest) -> Result<Granted<Self>, ProviderError> {
                let principal = request.principal_name(concat!($scheme, "_"));
                live()
                    .get_or_insert_with(HashSet::new)
                    .insert(principal.clone());
                let text = |ps: &[Permission]| ps.iter().map(ToString::to_string).collect();
                Ok(Granted {
                    principal: principal.clone(),
                    expires_at: SystemTime::now() + request.ttl,
                    credential: $credential(Grant {
                        principal: principal.clone(),
                        test: request.test.clone(),
                        permissions: text(&request.permissions),
                        deny: text(&request.deny),
                        ttl: request.ttl,
                    }),
                    lease: principal,
                    beyond_scope: Vec::new(),
                })
            }

            async fn revoke(&self, principal: &String) -> Result<(), ProviderError> {
                if let Some(set) = live().as_mut() {
                    set.remove(principal);
                }
                Ok(())
            }

            async fn prove_dead(&self, principal: &String) -> Result<Proof, ProviderError> {
                Ok(if is_live(principal) {
                    Proof::Accepted
                } else {
                    Proof::Refused(format!("{principal} is not live"))
                })
            }

            fn classify(_: &(dyn Error + 'static)) -> Option<ErrorClass> {
                None
            }

            async fn reap(&self, _: Duration) -> Result<Vec<String>, ProviderError> {
                Ok(Vec::new())
            }
        }
    };
}

fixture_provider!(MemProvider, MemGrant, "mem");
fixture_provider!(KvProvider, KvGrant, "kv");
