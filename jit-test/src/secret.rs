//! [`Secret`]: a string that never prints and is wiped when dropped.

use std::fmt;

/// A secret value (password, token, key). `Debug` and `Display` print `[redacted]`;
/// the bytes are overwritten when it is dropped. Read it only with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// A fresh random secret: `bytes` bytes from the system CSPRNG, URL-safe base64 encoded.
    pub fn random(bytes: usize) -> Secret {
        Secret(crate::random::token(bytes))
    }

    /// The secret itself. Keep it out of logs and messages.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8, and the String is not used afterwards.
        let bytes = unsafe { self.0.as_mut_vec() };
        for b in bytes.iter_mut() {
            // Volatile so the wipe is not optimised away as a dead store.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?} {s} {:#?}", s).contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn random_secrets_are_long_and_distinct() {
        let (a, b) = (Secret::random(16), Secret::random(16));
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 22);
    }
}
