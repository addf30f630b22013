//! Handing work to the broker's runtime, where the admin connections are driven: one
//! hand-over between threads each way instead of one per round trip, and never cancelled
//! half-way (a caller that goes away leaves no transaction open on a pooled connection).

use std::future::Future;
use std::time::Duration;

use jit_test::ProviderError;

/// The longest a caller waits for one operation: the admin sessions' `statement_timeout`
/// (60 s) plus a margin. A server that stops answering mid-operation fails it then, not
/// never; the work itself is not cancelled.
pub(crate) const LIMIT: Duration = Duration::from_secs(70);

/// Runs `work` to completion on the broker's runtime and returns its result. A result
/// nobody waits for any more goes to `abandoned` (on that runtime), e.g. to take a grant
/// back.
pub(crate) async fn on_broker<T: Send + 'static>(
    operation: &'static str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
    abandoned: impl FnOnce(T) + Send + 'static,
) -> Result<T, ProviderError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    jit_test::broker_runtime().spawn(async move {
        if let Err(Ok(result)) = tx.send(work.await) {
            abandoned(result);
        }
    });
    match tokio::time::timeout(LIMIT, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ProviderError::failed(
            operation,
            "the provider's task panicked",
        )),
        Err(_) => Err(ProviderError::failed(
            operation,
            format!(
                "PostgreSQL did not answer within {}",
                humantime::format_duration(LIMIT)
            ),
        )),
    }
}

/// [`on_broker`] for work whose result may simply be dropped when nobody waits.
pub(crate) async fn on_broker_only<T: Send + 'static>(
    operation: &'static str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
) -> Result<T, ProviderError> {
    on_broker(operation, work, drop).await
}
