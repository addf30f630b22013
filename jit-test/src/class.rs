//! [`ErrorClass`]: what kind of failure an error is, the vocabulary providers classify
//! their systems' errors in, and [`HttpStatus`], the built-in class of HTTP statuses.

use std::error::Error;
use std::fmt;

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

    /// 403 is a denial, 401 an authentication failure, anything else neither.
    pub(crate) fn class(self) -> ErrorClass {
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
