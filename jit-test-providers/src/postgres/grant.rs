//! Granting: one transaction creates the login role (password verifier, `VALID UNTIL`
//! on the server's clock, connection limit, lease metadata comment), makes it a member of
//! its permission set, and checks what it can effectively do before anything commits.
//! [`grant`] prepares the plan, tries the transaction until it commits or fails for good
//! (each try an [`Outcome`]), and finishes with the credential.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use jit_test::{GrantRequest, Granted, Provider, ProviderError};

use super::credential::{PgGrant, PgLease, login_config, login_config_without_password};
use super::permission_set::ensure_set;
use super::plan::{Findings, GrantPlan, list};
use super::retry::{ATTEMPTS, backoff, is_transient};
use super::state::Inner;
use super::{hba, revoke, scram};

/// Up to this many PBKDF2 iterations the verifier is made on the calling thread.
const INLINE_ITERATIONS: u32 = 64;

/// What one try of the grant transaction came to.
enum Outcome {
    /// Committed: the role exists, with these findings.
    Committed(Findings),
    /// Rolled back, worth another try (after making the permission set again, if
    /// `refresh`); `error` is what to report when no try is left.
    Retry {
        error: ProviderError,
        refresh: Refresh,
    },
    /// Rolled back for good: nothing was granted.
    Failed(ProviderError),
}

/// Whether the permission set must be made again before the next try.
#[derive(PartialEq, Eq)]
enum Refresh {
    /// No: a transient collision.
    No,
    /// It was gone (reaped meanwhile).
    Gone,
    /// It lacked a privilege (a table dropped and created again).
    Stale,
}

/// Runs the grant: prepares the plan, tries the transaction, finishes with the credential.
pub(crate) async fn grant<P: Provider<Credential = PgGrant, Lease = PgLease>>(
    provider: &Inner,
    request: &GrantRequest,
) -> Result<Granted<P>, ProviderError> {
    let plan = prepare(provider, request).await?;
    // Optimistic: the permission set usually exists with its privileges. If it is
    // missing, or lacks a privilege, it is (re)made and the grant tried again.
    let mut refresh_since: Option<Instant> = None;
    let mut refreshes = 0;
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        if let Some(failed_at) = refresh_since.take() {
            ensure_set(provider, &plan.set, failed_at).await?;
        }
        let (started, started_at) = (SystemTime::now(), Instant::now());
        match try_once(provider, &plan, refreshes < 2).await? {
            Outcome::Committed(findings) => return finish(provider, plan, started, findings).await,
            Outcome::Failed(error) => return Err(error),
            Outcome::Retry { error, refresh } => {
                last = Some(error);
                if refresh != Refresh::No {
                    refresh_since = Some(started_at);
                }
                if refresh == Refresh::Stale {
                    refreshes += 1;
                } else {
                    backoff(attempt).await;
                }
            }
        }
    }
    Err(last.expect("every try that is not the last either retries or returns"))
}

/// The plan, its password verifier, and the check that the server will ask the role for
/// its password.
async fn prepare(provider: &Inner, request: &GrantRequest) -> Result<GrantPlan, ProviderError> {
    let settings = &provider.settings;
    let mut plan = GrantPlan::new(request, &settings.database(), settings.connection_limit)?;
    // The server stores only the SCRAM verifier: the password never reaches it (nor its
    // logs) in clear. PBKDF2 of thousands of iterations is CPU work: off the runtime's
    // threads, while the rest goes on; a few iterations cost less than the hand-over.
    let password = plan.password.clone();
    let iterations = settings.scram_iterations;
    let verifier = if iterations <= INLINE_ITERATIONS {
        Ok(scram::verifier(password.expose(), iterations))
    } else {
        Err(tokio::task::spawn_blocking(move || {
            scram::verifier(password.expose(), iterations)
        }))
    };
    let init = provider.init().await?;
    for db in plan.login_databases() {
        let checked = init
            .hba
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|h| h.check(db));
        if let Err(message) = checked {
            if !settings.allow_trust {
                return Err(ProviderError::Misconfigured(message));
            }
            provider.warn_trust_once(&message);
        }
    }
    plan.verifier = match verifier {
        Ok(verifier) => verifier,
        Err(task) => task.await.map_err(|e| ProviderError::failed("grant", e))?,
    };
    Ok(plan)
}

/// One try of the transaction on a pooled connection: create, check, commit.
async fn try_once(
    provider: &Inner,
    plan: &GrantPlan,
    may_refresh: bool,
) -> Result<Outcome, ProviderError> {
    let mut conn = provider.pool.get().await?;
    let ran = match conn.effective().await {
        Ok(statement) => plan.run(conn.client(), &statement).await,
        Err(e) => Err(e),
    };
    let findings = match ran {
        Ok(findings) => findings,
        Err(e) => {
            conn.rollback().await;
            let error = plan.failed(&e);
            return Ok(if plan.set_gone(&e) {
                Outcome::Retry {
                    error,
                    refresh: Refresh::Gone,
                }
            } else if is_transient(&e) {
                Outcome::Retry {
                    error,
                    refresh: Refresh::No,
                }
            } else {
                Outcome::Failed(error)
            });
        }
    };
    if let Some(outcome) = refusal(plan, &findings, provider.settings.strict, may_refresh) {
        conn.rollback().await;
        return Ok(outcome);
    }
    match conn.client().batch_execute("COMMIT").await {
        Ok(()) => Ok(Outcome::Committed(findings)),
        Err(e) => {
            conn.discard();
            let error = plan.failed(&e);
            Ok(if is_transient(&e) {
                Outcome::Retry {
                    error,
                    refresh: Refresh::No,
                }
            } else {
                Outcome::Failed(error)
            })
        }
    }
}

/// What the effective privileges say against committing, if anything.
fn refusal(
    plan: &GrantPlan,
    findings: &Findings,
    strict: bool,
    may_refresh: bool,
) -> Option<Outcome> {
    if !findings.missing.is_empty() {
        let error = ProviderError::failed(
            "grant",
            format!(
                "after granting, role {} still lacks {}; nothing was granted. Are these \
                 objects of the kind the scope says?",
                plan.role,
                list(&findings.missing)
            ),
        );
        // The set's privileges went away (a table dropped and created again): grant
        // them again, once or twice.
        return Some(if may_refresh {
            Outcome::Retry {
                error,
                refresh: Refresh::Stale,
            }
        } else {
            Outcome::Failed(error)
        });
    }
    if !findings.violated.is_empty() {
        return Some(Outcome::Failed(ProviderError::failed(
            "deny check",
            format!(
                "role {} would hold denied permission {}; nothing was granted. The privilege \
                 comes from PUBLIC, a group role or ownership: revoke it there, or remove it \
                 from `deny`",
                plan.role,
                list(&findings.violated)
            ),
        )));
    }
    if strict && !findings.beyond.is_empty() {
        return Some(Outcome::Failed(ProviderError::failed(
            "strict privilege check",
            format!(
                "role {} can do more than its scope: {}. These come from PUBLIC, default \
                 privileges or a group role; revoke them (e.g. REVOKE ... FROM PUBLIC), add \
                 them to the scope, or set strict = false under [providers.pg]",
                plan.role,
                list(&findings.beyond)
            ),
        )));
    }
    None
}

/// After the commit: checks once per process that the server asks for passwords, and
/// hands out the credential.
async fn finish<P: Provider<Credential = PgGrant, Lease = PgLease>>(
    provider: &Inner,
    plan: GrantPlan,
    started: SystemTime,
    findings: Findings,
) -> Result<Granted<P>, ProviderError> {
    if !provider.settings.allow_trust && !provider.auth_checked.load(Ordering::Relaxed) {
        check_authentication(provider, &plan.role).await?;
    }
    let config = login_config(provider.pool.config(), &plan.role, &plan.password);
    let expires_at = started + plan.ttl;
    Ok(Granted {
        principal: plan.role.clone(),
        expires_at,
        credential: PgGrant {
            role: plan.role.clone(),
            config: config.clone(),
            database: provider.settings.database(),
            expires_at,
            beyond_scope: findings.beyond.clone(),
        },
        lease: PgLease::new(plan.role, config),
        beyond_scope: findings.beyond,
    })
}

/// Once per process, with the first role granted: does the server, as it runs now, ask
/// the role for its password? If not, the role is revoked and the grant fails.
async fn check_authentication(provider: &Inner, role: &str) -> Result<(), ProviderError> {
    let config = login_config_without_password(provider.pool.config(), role);
    match hba::password_required(&config).await {
        Some(Ok(())) => {
            provider.auth_checked.store(true, Ordering::Relaxed);
            Ok(())
        }
        Some(Err(what)) => {
            let _ =
                revoke::revoke(&provider.pool, role, provider.settings.keep_owned_objects).await;
            let file = provider
                .init()
                .await
                .ok()
                .and_then(|i| i.hba.as_ref().ok().map(|h| h.file.clone()))
                .unwrap_or_else(|| "pg_hba.conf".to_owned());
            Err(ProviderError::Misconfigured(format!(
                "PostgreSQL would not check the passwords of jit-test's roles, so their expiry \
                 (VALID UNTIL) would not be enforced: role {role} {what}. {file} may have been \
                 changed without reloading the configuration: run SELECT pg_reload_conf() (or \
                 .ci/setup-postgres as root). To run without this guarantee, set \
                 `allow_trust = true` under [providers.pg] or JIT_TEST_PG_ALLOW_TRUST=1"
            )))
        }
        None => Ok(()), // inconclusive: the next grant tries again
    }
}
