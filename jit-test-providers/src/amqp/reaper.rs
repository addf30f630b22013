//! The reaper: deletes users that crashed runs left behind, once the expiry in their
//! lease tag plus a grace period has passed by the broker's clock (the API's `Date`).
//!
//! One process reaps at a time, across machines: the reaper holds the exclusive queue
//! [`REAPER_LOCK`] on an AMQP connection of the administrator while it works, and skips
//! when another connection holds it (405 RESOURCE_LOCKED). The broker drops the queue with
//! the connection, so a crashed reaper holds nothing. Only users with the prefix and a
//! lease tag saying they are reapable are touched.

use std::time::{Duration, SystemTime};

use hyper::Method;
use jit_test::{LeaseMeta, ProviderError};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use super::api::reason;
use super::classify::reply;
use super::grant::parse_meta;
use super::{Inner, PREFIX, revoke};

/// The exclusive queue (in vhost `/`) a reaper holds while it works.
pub const REAPER_LOCK: &str = "jit-test.reaper";

/// RESOURCE_LOCKED: another connection holds the exclusive queue.
const RESOURCE_LOCKED: u16 = 405;

/// A user as `GET /api/users` lists it.
#[derive(serde::Deserialize)]
struct User {
    name: String,
    #[serde(default)]
    tags: Tags,
}

/// Tags: a list since RabbitMQ 3.9, a comma-separated string before.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Tags {
    List(Vec<String>),
    Text(String),
}

impl Default for Tags {
    fn default() -> Tags {
        Tags::List(Vec::new())
    }
}

impl Tags {
    fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Tags::List(list) => Box::new(list.iter().map(String::as_str)),
            Tags::Text(text) => Box::new(text.split(',')),
        }
    }
}

/// Takes the reaper lock; `None` when another process holds it.
async fn lock(inner: &Inner) -> Result<Option<lapin::Connection>, ProviderError> {
    let connection = inner
        .admin_login()
        .connect("/")
        .await
        .map_err(|e| ProviderError::failed("reaper lock", e))?;
    let failed = |e: lapin::Error| ProviderError::failed("reaper lock", e);
    let channel = connection.create_channel().await.map_err(failed)?;
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(REAPER_LOCK.into(), options, FieldTable::default())
        .await
    {
        Ok(_) => Ok(Some(connection)),
        Err(e) if reply(&e).is_some_and(|(code, _)| code == RESOURCE_LOCKED) => Ok(None),
        Err(e) => Err(failed(e)),
    }
}

pub(crate) async fn reap(inner: &Inner, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let Some(held) = lock(inner).await? else {
        return Ok(Vec::new()); // another process is reaping
    };
    let result = reap_locked(inner, grace).await;
    let _ = held.close(200, "jit-test reaper done".into()).await;
    result
}

/// The users with the prefix and a lease tag, and the broker's clock.
pub(crate) async fn lease_users(
    inner: &Inner,
) -> Result<(Vec<(String, LeaseMeta)>, SystemTime), ProviderError> {
    let response = inner.api.send(Method::GET, "/users", None).await?;
    if !response.status.is_success() {
        return Err(ProviderError::failed("list users", reason(&response)));
    }
    let users: Vec<User> = serde_json::from_slice(&response.body)
        .map_err(|e| ProviderError::failed("list users", format!("unexpected answer: {e}")))?;
    let ours = users
        .into_iter()
        .filter(|u| u.name.starts_with(PREFIX))
        .filter_map(|u| Some((parse_meta(u.tags.iter())?, u.name)))
        .map(|(meta, name)| (name, meta))
        .collect();
    Ok((ours, response.date.unwrap_or_else(SystemTime::now)))
}

async fn reap_locked(inner: &Inner, grace: Duration) -> Result<Vec<String>, ProviderError> {
    let (users, now) = lease_users(inner).await?;
    let mut reaped = Vec::new();
    for (name, meta) in users {
        if !meta.is_reapable(now, grace) {
            continue;
        }
        // One that resists is left for the next reap; the others go now.
        match revoke::delete_user(&inner.api, &name).await {
            Ok(()) => reaped.push(name),
            Err(e) => eprintln!("jit-test: warning: the amqp reaper could not remove {name}: {e}"),
        }
    }
    Ok(reaped)
}
