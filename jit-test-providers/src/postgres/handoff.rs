//! [`crate::handoff`] with a bound: PostgreSQL work handed to the broker's runtime is never
//! cancelled half-way (a caller that goes away leaves no transaction open on a pooled
//! connection), and a caller waits for it at most [`LIMIT`].

use std::future::Future;
use std::time::Duration;

use jit_test::ProviderError;

/// The longest a caller waits for one operation: the admin sessions' `statement_timeout`
/// (60 s) plus a margin. A server that stops answering mid-operation fails it then, not
/// never; the work itself is not cancelled.
pub(crate) const LIMIT: Duration = Duration::from_secs(70);

/// [`crate::handoff::on_broker`], waiting at most [`LIMIT`].
pub(crate) async fn on_broker<T: Send + 'static>(
    operation: &'static str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
    abandoned: impl FnOnce(T) + Send + 'static,
) -> Result<T, ProviderError> {
    bounded(
        operation,
        crate::handoff::on_broker(operation, work, abandoned),
    )
    .await
}

/// [`crate::handoff::on_broker_only`], waiting at most [`LIMIT`].
pub(crate) async fn on_broker_only<T: Send + 'static>(
    operation: &'static str,
    work: impl Future<Output = Result<T, ProviderError>> + Send + 'static,
) -> Result<T, ProviderError> {
    bounded(operation, crate::handoff::on_broker_only(operation, work)).await
}

/// The result of `handed`, or a failure of `operation` once [`LIMIT`] has passed.
async fn bounded<T>(
    operation: &'static str,
    handed: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(LIMIT, handed).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::failed(
            operation,
            format!(
                "PostgreSQL did not answer within {}",
                humantime::format_duration(LIMIT)
            ),
        )),
    }
}
