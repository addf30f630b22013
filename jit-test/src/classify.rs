//! Telling a permission denial from an authentication failure from anything else, for
//! [`assert_denied!`](crate::assert_denied) and [`assert_unauthenticated!`](crate::assert_unauthenticated).

use std::any::TypeId;
use std::error::Error;
use std::fmt;
use std::sync::RwLock;

use crate::provider::Provider;

/// What kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The principal is known but lacks the permission (SQLSTATE 42501, Redis `NOPERM`,
    /// HTTP 403, ...).
    Denied,
    /// The credential is not accepted at all: wrong, expired or revoked (SQLSTATE 28P01,
    /// Redis `WRONGPASS`, HTTP 401, ...).
    Unauthenticated,
    /// Anything else: a connection error, a bug, a missing table.
    Other,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Denied => "a permission denial",
            ErrorClass::Unauthenticated => "an authentication failure",
            ErrorClass::Other => "an error that is neither a denial nor an authentication failure",
        })
    }
}

type Classifier = fn(&(dyn Error + 'static)) -> Option<ErrorClass>;

/// Registered classifiers: provider type, its scheme, its `classify`.
static CLASSIFIERS: RwLock<Vec<(TypeId, &'static str, Classifier)>> = RwLock::new(Vec::new());

/// Makes `P::classify` known to [`classify`]. The broker does this for every provider it
/// uses; call it yourself to classify errors of a provider you have not granted from.
pub fn register<P: Provider>() {
    let id = TypeId::of::<P>();
    if CLASSIFIERS.read().unwrap().iter().any(|(t, _, _)| *t == id) {
        return;
    }
    let mut all = CLASSIFIERS.write().unwrap();
    if !all.iter().any(|(t, _, _)| *t == id) {
        all.push((id, P::SCHEME, P::classify));
    }
}

/// Classifies an error by walking its `source()` chain and asking every registered
/// provider, then the built-in rules ([`HttpStatus`], `std::io::ErrorKind::PermissionDenied`).
pub fn classify(error: &(dyn Error + 'static)) -> ErrorClass {
    classify_with_origin(error).0
}

/// [`classify`], with the scheme of the provider that recognised the error (`http` for
/// [`HttpStatus`], `io` for I/O errors, empty when nothing did).
pub fn classify_with_origin(error: &(dyn Error + 'static)) -> (ErrorClass, &'static str) {
    let classifiers = CLASSIFIERS.read().unwrap();
    let mut current = Some(error);
    while let Some(e) = current {
        let registered = classifiers
            .iter()
            .find_map(|(_, scheme, classify)| classify(e).map(|class| (class, *scheme)));
        if let Some(found) = registered {
            return found;
        }
        if let Some(status) = e.downcast_ref::<HttpStatus>() {
            return (status.class(), "http");
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return (ErrorClass::Denied, "io");
        }
        current = e.source();
    }
    (ErrorClass::Other, "")
}

/// An HTTP response status as an error, for services under test: 403 is a denial, 401 an
/// authentication failure. Turn a response into one with [`HttpStatus::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpStatus(pub u16);

impl HttpStatus {
    /// `Ok(code)` for a 2xx status, `Err(HttpStatus(code))` otherwise.
    pub fn check(code: u16) -> Result<u16, HttpStatus> {
        if (200..300).contains(&code) {
            Ok(code)
        } else {
            Err(HttpStatus(code))
        }
    }

    fn class(self) -> ErrorClass {
        match self.0 {
            403 => ErrorClass::Denied,
            401 => ErrorClass::Unauthenticated,
            _ => ErrorClass::Other,
        }
    }
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP status {}", self.0)
    }
}

impl Error for HttpStatus {}

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
    crate::runner::record_assertion(scheme, &format!("{expression}: {expected}"));
    error
}

/// Asserts that an operation failed because the principal lacks the permission.
///
/// The argument is any `Result` whose error converts into `Box<dyn Error + Send + Sync>`
/// (so `anyhow::Error`, `tokio_postgres::Error`, [`HttpStatus`], ...). Panics if it is
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
    use super::*;

    #[derive(Debug)]
    struct Wrapper(HttpStatus);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("request failed")
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn walks_the_source_chain() {
        assert_eq!(classify(&Wrapper(HttpStatus(403))), ErrorClass::Denied);
        assert_eq!(
            classify(&Wrapper(HttpStatus(401))),
            ErrorClass::Unauthenticated
        );
        assert_eq!(classify(&Wrapper(HttpStatus(500))), ErrorClass::Other);
    }

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
