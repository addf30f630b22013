//! Handing provider work to the broker's runtime, where the admin connections are driven:
//! one hand-over between threads each way instead of one per round trip, and the work
//! always runs to completion, so a caller that goes away (a test's runtime shutting down)
//! never cuts a grant or a revocation short half-way.

use std::future::Future;

use jit_test::ProviderError;

/// Runs `work` to completion on the broker's runtime and returns its result. A result
/// nobody waits for any more goes to `abandoned` (called on that runtime), e.g. to take a
/// grant back. The work is handed over at once (not when the result is first polled), so
/// the future returned is small however large `work` is.
pub(crate) fn on_broker<T: Send + 'static>(
    operation: &'static str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
    abandoned: impl FnOnce(T) + Send + 'static,
) -> impl Future<Output = Result<T, ProviderError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    jit_test::broker_runtime().spawn(async move {
        if let Err(Ok(result)) = tx.send(work.await) {
            abandoned(result);
        }
    });
    async move {
        rx.await
            .map_err(|_| ProviderError::failed(operation, "the provider's task panicked"))?
    }
}

/// [`on_broker`] for work whose result may simply be dropped when nobody waits.
pub(crate) fn on_broker_only<T: Send + 'static>(
    operation: &'static str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
) -> impl Future<Output = Result<T, ProviderError>> {
    on_broker(operation, work, drop)
}
