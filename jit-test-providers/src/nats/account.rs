//! The tests' account on the server: its JWT read back over `$SYS`, its revocation list
//! changed, re-signed with the operator's signing key and pushed to the server's full
//! resolver (`$SYS.REQ.CLAIMS.UPDATE`), which closes the connections of every user it
//! now revokes.
//!
//! A revocation entry maps a user's public key to a time: users of that key issued at
//! or before it are refused. The provider writes the user's expiry there, so the entry
//! says itself when it is no longer needed (the reaper prunes it after that plus grace).
//! Revocations of one process are pushed in batches (one update carries all that are
//! waiting); updates of all processes of this machine are serialised by a file lock, as
//! each one rewrites the whole list.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::{Client, ConnectOptions};
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use jit_test::ProviderError;

use super::jwt;
use super::keys::Keys;
use super::settings::URL_VAR;

/// Attempts of one revocation before it fails loudly.
const ATTEMPTS: u32 = 3;

/// The account, and the administrative connection (a user of the system account).
pub(crate) struct Account {
    pub(crate) keys: Keys,
    pub(crate) url: String,
    pub(crate) timeout: Duration,
    system: OnceCell<Client>,
    queue: Mutex<Queue>,
    push: tokio::sync::Mutex<()>,
}

/// Revocations waiting to be pushed, numbered in arrival order.
#[derive(Default)]
struct Queue {
    pending: BTreeMap<String, u64>,
    /// Number of the last revocation queued.
    queued: u64,
    /// Every revocation up to this number is on the server.
    pushed: u64,
}

/// What one revocation attempt found.
enum Attempt {
    /// It is on the server (pushed by this call or an earlier batch).
    Done,
    /// The push failed; try again.
    Failed(ProviderError),
}

impl Account {
    pub(crate) fn new(keys: Keys, url: String, timeout: Duration) -> Account {
        Account {
            keys,
            url,
            timeout,
            system: OnceCell::new(),
            queue: Mutex::new(Queue::default()),
            push: tokio::sync::Mutex::new(()),
        }
    }

    /// The administrative connection, made once (on the runtime that calls this first,
    /// which must outlive the provider: the broker's). Checks that the server runs in
    /// operator mode and knows the account.
    pub(crate) async fn system(&self) -> Result<&Client, ProviderError> {
        self.system
            .get_or_try_init(|| async {
                let key = self
                    .keys
                    .system_user_key
                    .seed()
                    .map_err(|e| ProviderError::failed("connect", e))?;
                let client =
                    ConnectOptions::with_jwt(self.keys.system_user_jwt.clone(), move |nonce| {
                        let signer = nkeys::KeyPair::from_seed(&key);
                        async move {
                            signer
                                .and_then(|k| k.sign(&nonce))
                                .map_err(async_nats::AuthError::new)
                        }
                    })
                    .name("jit-test-admin")
                    .connection_timeout(self.timeout)
                    .request_timeout(Some(self.timeout))
                    .connect(self.url.as_str())
                    .await
                    .map_err(|e| self.unreachable(e.to_string()))?;
                if !client.server_info().auth_required {
                    return Err(self.not_operator_mode("it does not check credentials"));
                }
                self.lookup(&client).await?;
                Ok(client)
            })
            .await
    }

    fn unreachable(&self, reason: String) -> ProviderError {
        ProviderError::Unreachable {
            system: "NATS",
            address: address(&self.url),
            setting: URL_VAR,
            reason,
        }
    }

    fn not_operator_mode(&self, why: &str) -> ProviderError {
        ProviderError::Misconfigured(format!(
            "the NATS server at {} is not the operator-mode server of the key file: {why}. \
             Run `.ci/setup-nats`, or set {URL_VAR} (or [providers.nats] url) to the server \
             that trusts the key file's operator",
            address(&self.url)
        ))
    }

    /// The account's current JWT, as the server has it.
    async fn lookup(&self, client: &Client) -> Result<String, ProviderError> {
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", self.keys.account);
        let reply = client
            .request(subject, Bytes::new())
            .await
            .map_err(|e| self.not_operator_mode(&format!("the account lookup failed ({e})")))?;
        let jwt = String::from_utf8_lossy(&reply.payload).into_owned();
        if jwt.is_empty() {
            return Err(self.not_operator_mode("it does not know the key file's account"));
        }
        Ok(jwt)
    }

    /// Adds `user` (expiring at `expires_at`) to the revocation list, in a batch with
    /// whatever else is waiting; retries a failed push, then fails loudly.
    pub(crate) async fn revoke(&self, user: &str, expires_at: u64) -> Result<(), ProviderError> {
        let ticket = {
            let mut queue = self.queue.lock().expect("not poisoned");
            let at = queue.pending.entry(user.to_owned()).or_insert(0);
            *at = (*at).max(expires_at);
            queue.queued += 1;
            queue.queued
        };
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            match self.push_pending(ticket).await {
                Attempt::Done => return Ok(()),
                Attempt::Failed(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        Err(last.expect("at least one attempt"))
    }

    async fn push_pending(&self, ticket: u64) -> Attempt {
        let _turn = self.push.lock().await;
        let (batch, upto) = {
            let mut queue = self.queue.lock().expect("not poisoned");
            if queue.pushed >= ticket {
                return Attempt::Done;
            }
            (std::mem::take(&mut queue.pending), queue.queued)
        };
        let result = self
            .update(|list| {
                let mut changed = false;
                for (user, at) in &batch {
                    if list.get(user).and_then(Value::as_u64) < Some(*at) {
                        list.insert(user.clone(), (*at).into());
                        changed = true;
                    }
                }
                (changed, ())
            })
            .await;
        let mut queue = self.queue.lock().expect("not poisoned");
        match result {
            Ok(()) => {
                queue.pushed = queue.pushed.max(upto);
                Attempt::Done
            }
            Err(e) => {
                for (user, at) in batch {
                    queue.pending.entry(user).or_insert(at);
                }
                Attempt::Failed(e)
            }
        }
    }

    /// Removes the entries of users that expired more than `grace` ago; returns their
    /// public keys.
    pub(crate) async fn prune(&self, grace: Duration) -> Result<Vec<String>, ProviderError> {
        let now = jwt::now();
        self.update(|list| {
            let gone: Vec<String> = list
                .iter()
                .filter(|(user, at)| {
                    user.starts_with('U')
                        && at
                            .as_u64()
                            .is_some_and(|at| at.saturating_add(grace.as_secs()) < now)
                })
                .map(|(user, _)| user.clone())
                .collect();
            for user in &gone {
                list.remove(user);
            }
            (!gone.is_empty(), gone)
        })
        .await
    }

    /// The account's revocation list as the server has it: user public key → time.
    pub(crate) async fn revocations(&self) -> Result<Map<String, Value>, ProviderError> {
        let client = self.system().await?;
        let (_, list) = self.read(client).await?;
        Ok(list)
    }

    /// The account's claims as the server has them, without their revocation list, and
    /// that list.
    async fn read(&self, client: &Client) -> Result<(Value, Map<String, Value>), ProviderError> {
        let failed = |e: &str| ProviderError::failed("account lookup", e);
        let current = self.lookup(client).await?;
        let mut claims = jwt::verified_claims(&current).map_err(|e| failed(&e))?;
        if claims["sub"] != self.keys.account.as_str() {
            return Err(failed("the server answered with another account"));
        }
        let nats = claims["nats"]
            .as_object_mut()
            .ok_or_else(|| failed("the account JWT has no `nats` claims"))?;
        let list = match nats.remove("revocations") {
            Some(Value::Object(list)) => list,
            _ => Map::new(),
        };
        Ok((claims, list))
    }

    /// Reads the account's JWT, lets `change` edit its revocation list, and pushes the
    /// re-signed JWT if `change` says it changed anything; under the machine-wide lock.
    async fn update<T>(
        &self,
        change: impl FnOnce(&mut Map<String, Value>) -> (bool, T),
    ) -> Result<T, ProviderError> {
        let _lock = self.lock_file().await?;
        let client = self.system().await?;
        let (mut claims, mut list) = self.read(client).await?;
        let (changed, result) = change(&mut list);
        if !changed {
            return Ok(result);
        }
        if !list.is_empty() {
            claims["nats"]["revocations"] = Value::Object(list);
        }
        let signed = jwt::sign(claims, &self.keys.operator_signing_key)
            .map_err(|e| ProviderError::failed("account update", e))?;
        self.push(client, signed).await?;
        Ok(result)
    }

    /// Sends the account JWT to the resolver and checks its answer.
    async fn push(&self, client: &Client, account_jwt: String) -> Result<(), ProviderError> {
        let reply = client
            .request("$SYS.REQ.CLAIMS.UPDATE", Bytes::from(account_jwt))
            .await
            .map_err(|e| ProviderError::failed("account update", e))?;
        let answer: Value = serde_json::from_slice(&reply.payload).map_err(|e| {
            ProviderError::failed("account update", format!("unreadable answer: {e}"))
        })?;
        match answer["data"]["code"].as_u64() {
            Some(200) => Ok(()),
            _ => Err(ProviderError::failed(
                "account update",
                answer["error"]["description"]
                    .as_str()
                    .unwrap_or("the server refused it")
                    .to_owned(),
            )),
        }
    }

    /// Takes the machine-wide lock of this account's updates.
    async fn lock_file(&self) -> Result<std::fs::File, ProviderError> {
        let path = lock_path(&self.keys.account);
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .and_then(|file| file.lock().map(|()| file));
            file.map_err(|e| {
                ProviderError::failed(
                    "account update",
                    format!("cannot lock {}: {e}", path.display()),
                )
            })
        })
        .await
        .map_err(|e| ProviderError::failed("account update", e))?
    }
}

/// The lock file of `account`'s updates, in the system's temporary directory.
pub(crate) fn lock_path(account: &str) -> PathBuf {
    std::env::temp_dir().join(format!("jit-test-nats-{account}.lock"))
}

/// `host:port` of a NATS URL, without credentials.
pub(crate) fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.rsplit_once('@')
        .map_or(rest, |(_, host)| host)
        .trim_end_matches('/')
        .to_owned()
}
