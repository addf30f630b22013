//! Where orders live: the [`OrderStore`] seam, its in-memory implementation and, with the
//! `postgres` feature, `PgStore` (module `pg`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
pub use pg::{PgStore, migrate};

/// An order, as stored and as the API shows it: `{"id": 1, "sku": "a1"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Assigned by the store, unique within it.
    pub id: u64,
    /// The stock-keeping unit ordered.
    pub sku: String,
}

/// Why a store operation failed (a database error, say, a refused privilege included).
/// The service answers 500.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// Storage for orders. The service is generic over it, so a database-backed store can
/// replace [`MemoryStore`] without touching the handlers.
///
/// Implementations may write `async fn` for each method, as long as the future is `Send`.
pub trait OrderStore: Send + Sync + 'static {
    /// All orders, oldest first.
    fn list(&self) -> impl Future<Output = Result<Vec<Order>, StoreError>> + Send;
    /// Stores a new order for `sku` and returns it with its id.
    fn insert(&self, sku: &str) -> impl Future<Output = Result<Order, StoreError>> + Send;
    /// Deletes order `id`; `false` when there was no such order.
    fn delete(&self, id: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Orders in memory, gone with the process: one fresh store per test server.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Orders>);

#[derive(Debug, Default)]
struct Orders {
    last_id: u64,
    by_id: BTreeMap<u64, Order>,
}

impl MemoryStore {
    fn orders(&self) -> std::sync::MutexGuard<'_, Orders> {
        // Every update is a single map operation, so a panic elsewhere cannot leave the
        // orders half-changed.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl OrderStore for MemoryStore {
    async fn list(&self) -> Result<Vec<Order>, StoreError> {
        Ok(self.orders().by_id.values().cloned().collect())
    }

    async fn insert(&self, sku: &str) -> Result<Order, StoreError> {
        let mut orders = self.orders();
        orders.last_id += 1;
        let order = Order {
            id: orders.last_id,
            sku: sku.to_owned(),
        };
        orders.by_id.insert(order.id, order.clone());
        Ok(order)
    }

    async fn delete(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.orders().by_id.remove(&id).is_some())
    }
}
