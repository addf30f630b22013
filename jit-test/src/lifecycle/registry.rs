//! What a process shares between its tests: the runtime that hosts all provider work,
//! and one registry entry per provider type, holding everything the process keeps for
//! it: its scheme, its error classifier, its instance, and whether its reaper has run.

use std::any::{Any, TypeId};
use std::error::Error;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::class::ErrorClass;
use crate::config::Config;
use crate::provider::{Provider, ProviderError};

/// A provider's error classifier.
pub(crate) type Classifier = fn(&(dyn Error + 'static)) -> Option<ErrorClass>;

/// Schemes of the providers this project ships (some behind features not compiled in):
/// their `[providers.<scheme>]` tables are never unknown.
const SHIPPED_SCHEMES: [&str; 7] = ["token", "pg", "mysql", "redis", "amqp", "nats", "mqtt"];

/// Everything the process keeps for one provider type.
struct Entry {
    id: TypeId,
    scheme: &'static str,
    classify: Classifier,
    instance: Option<Arc<dyn Any + Send + Sync>>,
    reaped: bool,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn registry() -> MutexGuard<'static, Vec<Entry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entry of `P`, created on first use.
fn entry<P: Provider>(entries: &mut Vec<Entry>) -> &mut Entry {
    let id = TypeId::of::<P>();
    let index = match entries.iter().position(|e| e.id == id) {
        Some(index) => index,
        None => {
            entries.push(Entry {
                id,
                scheme: P::SCHEME,
                classify: P::classify,
                instance: None,
                reaped: false,
            });
            entries.len() - 1
        }
    };
    &mut entries[index]
}

/// The runtime that hosts all provider work of this process.
pub fn broker_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jit-test-broker")
            .enable_all()
            .build()
            .expect("cannot start the jit-test broker runtime")
    })
}

/// Makes provider `P` known: `P::classify` to [`classify`](crate::classify()), its
/// scheme to the check of `[providers.<scheme>]` tables. [`provider`] and the broker do
/// this; call it yourself to classify errors of a provider you have not granted from.
pub fn register<P: Provider>() {
    entry::<P>(&mut registry());
}

/// The process-wide instance of provider `P`, built from [`Config::global`] on first use.
/// Fails on a `[providers.<scheme>]` table that no known provider serves.
pub fn provider<P: Provider>() -> Result<Arc<P>, ProviderError> {
    let known: Vec<&str> = {
        let mut entries = registry();
        if let Some(existing) = &entry::<P>(&mut entries).instance {
            return Ok(downcast(existing));
        }
        let registered = entries.iter().map(|e| e.scheme);
        SHIPPED_SCHEMES.iter().copied().chain(registered).collect()
    };
    // Built without the lock: a provider may register itself while it is built.
    let config = Config::global();
    config
        .check_provider_tables(&known)
        .map_err(|e| ProviderError::Misconfigured(e.to_string()))?;
    let created: Arc<dyn Any + Send + Sync> = Arc::new(P::from_config(config)?);
    let mut entries = registry();
    Ok(downcast(
        entry::<P>(&mut entries).instance.get_or_insert(created),
    ))
}

fn downcast<P: Provider>(instance: &Arc<dyn Any + Send + Sync>) -> Arc<P> {
    Arc::clone(instance)
        .downcast::<P>()
        .expect("entries are keyed by type")
}

/// The registered classifiers with their schemes, in registration order.
pub(crate) fn classifiers() -> Vec<(&'static str, Classifier)> {
    registry().iter().map(|e| (e.scheme, e.classify)).collect()
}

/// True the first time it is called for `P` in this process: the broker reaps each
/// provider's leftovers once.
pub(crate) fn first_reap<P: Provider>() -> bool {
    let mut entries = registry();
    let entry = entry::<P>(&mut entries);
    !std::mem::replace(&mut entry.reaped, true)
}
