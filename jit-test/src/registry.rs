//! What a process shares between its tests: the runtime that hosts all provider work,
//! and one instance of each provider.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Config;
use crate::provider::{Provider, ProviderError};

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

/// The process-wide instance of provider `P`, built from [`Config::global`] on first use.
pub fn provider<P: Provider>() -> Result<Arc<P>, ProviderError> {
    static PROVIDERS: Mutex<Option<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>> = Mutex::new(None);
    let mut providers = PROVIDERS.lock().unwrap_or_else(|e| e.into_inner());
    let map = providers.get_or_insert_with(HashMap::new);
    if let Some(existing) = map.get(&TypeId::of::<P>()) {
        return Ok(Arc::clone(existing).downcast::<P>().expect("keyed by type"));
    }
    let created = Arc::new(P::from_config(Config::global())?);
    map.insert(TypeId::of::<P>(), created.clone());
    Ok(created)
}
