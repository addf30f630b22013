//! [`classify`]: telling a permission denial from an authentication failure from
//! anything else, with the classifiers of the registered providers and the built-in rules.

use std::error::Error;

use crate::class::{ErrorClass, HttpStatus};
use crate::lifecycle::classifiers;

/// Classifies an error by walking its `source()` chain and asking every registered
/// provider, then the built-in rules ([`HttpStatus`], `std::io::ErrorKind::PermissionDenied`).
pub fn classify(error: &(dyn Error + 'static)) -> ErrorClass {
    classify_with_origin(error).0
}

/// [`classify`], with the scheme of the provider that recognised the error (`http` for
/// [`HttpStatus`], `io` for I/O errors, empty when nothing did).
pub fn classify_with_origin(error: &(dyn Error + 'static)) -> (ErrorClass, &'static str) {
    let classifiers = classifiers();
    let mut current = Some(error);
    while let Some(e) = current {
        let registered = classifiers
            .iter()
            .find_map(|(scheme, classify)| classify(e).map(|class| (class, *scheme)));
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

#[cfg(test)]
mod tests {
    use std::fmt;

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
}
