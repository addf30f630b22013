//! What the provider knows of an outage. Once a connection attempt found the server
//! unreachable or silent, every attempt of the process in the [`HOLD`] that follows fails
//! at once with the same error, instead of waiting out its own timeout behind the others:
//! twenty tests against a server that accepts connections and never answers fail in
//! about one connect timeout, not twenty.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jit_test::ProviderError;

/// How long a connection failure stands for the whole process before the server is tried
/// again.
pub(crate) const HOLD: Duration = Duration::from_secs(30);

/// The last connection failure that said the server is out of reach, and when.
#[derive(Default)]
pub(crate) struct Outage(Mutex<Option<Down>>);

struct Down {
    at: Instant,
    system: &'static str,
    address: String,
    setting: &'static str,
    reason: String,
}

impl Outage {
    /// The error of an outage seen less than [`HOLD`] ago, if any.
    pub(crate) fn check(&self) -> Result<(), ProviderError> {
        let down = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match down.as_ref() {
            Some(down) if down.at.elapsed() < HOLD => Err(ProviderError::Unreachable {
                system: down.system,
                address: down.address.clone(),
                setting: down.setting,
                reason: down.reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Notes how an attempt went: an unreachable server starts an outage, a success ends it.
    pub(crate) fn record<T>(&self, result: &Result<T, ProviderError>) {
        let mut down = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => *down = None,
            Err(ProviderError::Unreachable {
                system,
                address,
                setting,
                reason,
            }) => {
                *down = Some(Down {
                    at: Instant::now(),
                    system,
                    address: address.clone(),
                    setting,
                    reason: reason.clone(),
                })
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_server_fails_later_attempts_with_the_same_error_until_a_success() {
        let outage = Outage::default();
        assert!(outage.check().is_ok());
        let error = ProviderError::Unreachable {
            system: "PostgreSQL",
            address: "127.0.0.1:9".into(),
            setting: "JIT_TEST_PG_URL",
            reason: "no answer within 2s".into(),
        };
        let message = error.to_string();
        outage.record::<()>(&Err(error));
        assert_eq!(outage.check().unwrap_err().to_string(), message);
        outage.record::<()>(&Err(ProviderError::failed("grant", "other")));
        assert!(outage.check().is_err());
        outage.record(&Ok(()));
        assert!(outage.check().is_ok());
    }
}
