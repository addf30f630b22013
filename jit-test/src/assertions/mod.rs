//! Assertions on how an operation failed: [`assert_denied!`](crate::assert_denied) and
//! [`assert_unauthenticated!`](crate::assert_unauthenticated). A passed assertion is
//! reported through the hook (`lifecycle::hook`) the runner installs on the thread of a
//! test body, which records it in the audit log.

mod classify;

use std::error::Error;

pub use classify::{classify, classify_with_origin};

use crate::class::ErrorClass;
use crate::lifecycle::hook::{self, Asserted};

/// The check behind the assertion macros: `result` must be an error of class `expected`.
/// Returns the error for further inspection.
#[track_caller]
pub fn expect_class<T, E>(
    result: Result<T, E>,
    expected: ErrorClass,
    expression: &str,
) -> Box<dyn Error + Send + Sync>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    let error: Box<dyn Error + Send + Sync> = match result {
        Ok(_) => panic!("`{expression}` succeeded, but {expected} was expected"),
        Err(e) => e.into(),
    };
    let (got, scheme) = classify_with_origin(error.as_ref());
    if got != expected {
        panic!("`{expression}` failed with {got}, but {expected} was expected: {error}");
    }
    hook::notify(&Asserted {
        scheme,
        expression,
        class: expected,
    });
    error
}

/// Asserts that an operation failed because the principal lacks the permission.
///
/// The argument is any `Result` whose error converts into `Box<dyn Error + Send + Sync>`
/// (so `anyhow::Error`, `tokio_postgres::Error`, [`HttpStatus`](crate::HttpStatus), ...). Panics if it is
/// `Ok`, or an error that is not a denial (an authentication or connection failure is
/// not a denial). Evaluates to the error.
///
/// ```
/// use jit_test::{assert_denied, HttpStatus};
/// let error = assert_denied!(HttpStatus::check(403));
/// assert_eq!(error.to_string(), "HTTP status 403");
/// ```
#[macro_export]
macro_rules! assert_denied {
    ($result:expr $(,)?) => {
        $crate::__private::expect_class($result, $crate::ErrorClass::Denied, stringify!($result))
    };
}

/// Asserts that an operation failed because the credential was not accepted (expired,
/// revoked or wrong). Evaluates to the error.
///
/// ```
/// use jit_test::{assert_unauthenticated, HttpStatus};
/// assert_unauthenticated!(HttpStatus::check(401));
/// ```
#[macro_export]
macro_rules! assert_unauthenticated {
    ($result:expr $(,)?) => {
        $crate::__private::expect_class(
            $result,
            $crate::ErrorClass::Unauthenticated,
            stringify!($result),
        )
    };
}

#[cfg(test)]
mod tests {
    use crate::HttpStatus;

    #[test]
    #[should_panic(expected = "succeeded, but a permission denial was expected")]
    fn ok_is_not_a_denial() {
        crate::assert_denied!(HttpStatus::check(200));
    }

    #[test]
    #[should_panic(expected = "failed with an authentication failure, but a permission denial")]
    fn auth_failure_is_not_a_denial() {
        crate::assert_denied!(HttpStatus::check(401));
    }
}
