//! What kind of failure a PostgreSQL error is, by its SQLSTATE.

use jit_test::ErrorClass;
use tokio_postgres::error::SqlState;

/// 42501 is a denial; 28P01 and 28000 are authentication failures.
pub(crate) fn classify_code(code: &SqlState) -> ErrorClass {
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        ErrorClass::Denied
    } else if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        ErrorClass::Unauthenticated
    } else {
        ErrorClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_classify() {
        assert_eq!(
            classify_code(&SqlState::INSUFFICIENT_PRIVILEGE),
            ErrorClass::Denied
        );
        assert_eq!(
            classify_code(&SqlState::INVALID_PASSWORD),
            ErrorClass::Unauthenticated
        );
        assert_eq!(
            classify_code(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
            ErrorClass::Unauthenticated
        );
        assert_eq!(classify_code(&SqlState::UNDEFINED_TABLE), ErrorClass::Other);
    }
}
