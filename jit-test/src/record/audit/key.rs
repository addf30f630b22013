//! How lines are authenticated: keyed with HMAC-SHA-256 when a key is configured, or
//! signed with an Ed25519 key pair made for the process when none is.
//!
//! - **Keyed** (`JIT_TEST_AUDIT_KEY`, or `JIT_TEST_AUDIT_KEY_FILE` naming a file outside
//!   `target/`): each line's `hash` is the HMAC-SHA-256 of its text under the key, and
//!   the line names the key by an id (a hash of it), never the key itself. Only a holder
//!   of the key can write or check such a line.
//! - **Signed** (no key configured): each line's `hash` is a plain SHA-256 and names the
//!   writer's Ed25519 public key by a fingerprint; every append ends with a `sealed` line
//!   holding the public key and a signature of the chain's head. The private half lives
//!   in the writer's memory only.
//! - **Plain** ([`AuditLog::new`](super::AuditLog::new)): SHA-256 only; for tools and
//!   tests that write logs of their own.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::hex::to_hex as hex;

/// The environment variable holding the HMAC key.
pub const KEY_VAR: &str = "JIT_TEST_AUDIT_KEY";
/// The environment variable naming a file that holds the HMAC key.
pub const KEY_FILE_VAR: &str = "JIT_TEST_AUDIT_KEY_FILE";
/// The fewest bytes a key may have.
const MIN_KEY_BYTES: usize = 32;
/// What a seal signs, before the head's hex.
const SEAL_CONTEXT: &[u8] = b"jit-test audit head v1 ";

/// A secret key for HMAC-SHA-256 lines. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct HmacKey {
    key: ring::hmac::Key,
    id: String,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKey({})", self.id)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl HmacKey {
    /// A key from `secret`, at least 32 bytes (e.g. `openssl rand -hex 32`).
    pub fn new(secret: &[u8]) -> io::Result<HmacKey> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(invalid(format!(
                "an audit key needs at least {MIN_KEY_BYTES} bytes, this one has {}",
                secret.len()
            )));
        }
        let mut id_input = b"jit-test audit key id ".to_vec();
        id_input.extend_from_slice(secret);
        Ok(HmacKey {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            id: format!("hmac:{}", &sha256_hex(&id_input)[..16]),
        })
    }

    /// The key configured by `JIT_TEST_AUDIT_KEY` or `JIT_TEST_AUDIT_KEY_FILE` (which
    /// must not lie inside `target`), if any. Errors name the variable.
    pub fn from_env(target: &Path) -> io::Result<Option<HmacKey>> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        HmacKey::from_settings(var(KEY_VAR), var(KEY_FILE_VAR), target)
    }

    /// The key given by the values of the two variables.
    fn from_settings(
        secret: Option<OsString>,
        file: Option<OsString>,
        target: &Path,
    ) -> io::Result<Option<HmacKey>> {
        if let Some(secret) = secret {
            let secret = secret.into_encoded_bytes();
            return HmacKey::new(secret.trim_ascii())
                .map(Some)
                .map_err(|e| invalid(format!("{KEY_VAR}: {e}")));
        }
        let Some(file) = file else {
            return Ok(None);
        };
        let file = PathBuf::from(file);
        let named = |e: io::Error| invalid(format!("{KEY_FILE_VAR} = {}: {e}", file.display()));
        let canonical = file.canonicalize().map_err(named)?;
        if let Ok(target) = target.canonicalize()
            && canonical.starts_with(&target)
        {
            return Err(named(invalid(format!(
                "the key file lies inside {}, next to the log it protects; keep it elsewhere",
                target.display()
            ))));
        }
        let secret = std::fs::read(&canonical).map_err(named)?;
        HmacKey::new(secret.trim_ascii()).map(Some).map_err(named)
    }

    /// The id lines name the key by: `hmac:` and 16 hex digits of a hash of the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hex HMAC-SHA-256 of `data`.
    pub(super) fn mac(&self, data: &[u8]) -> String {
        hex(ring::hmac::sign(&self.key, data).as_ref())
    }
}

/// An Ed25519 key pair made for one writer; the private half never leaves memory.
pub(super) struct Signer {
    pair: Ed25519KeyPair,
    id: String,
    public_hex: String,
}

/// The id of the signer with `public_key`: `ed25519:` and 16 hex digits of its hash.
pub(super) fn signer_id(public_key: &[u8]) -> String {
    format!("ed25519:{}", &sha256_hex(public_key)[..16])
}

impl Signer {
    /// A fresh key pair from the system's CSPRNG.
    pub fn generate() -> io::Result<Signer> {
        let rng = SystemRandom::new();
        let failed = || io::Error::other("cannot make an Ed25519 key pair for the audit log");
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed())?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| failed())?;
        let public = pair.public_key().as_ref();
        Ok(Signer {
            id: signer_id(public),
            public_hex: hex(public),
            pair,
        })
    }

    /// The id lines name the signer by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> &str {
        &self.public_hex
    }

    /// The hex signature of the chain's head `head`.
    pub fn sign_head(&self, head: &str) -> String {
        let mut message = SEAL_CONTEXT.to_vec();
        message.extend_from_slice(head.as_bytes());
        hex(self.pair.sign(&message).as_ref())
    }
}

/// Whether `signature` (hex) is `public_key`'s (hex) signature of the head `head`.
pub(super) fn head_signed(public_key: &[u8], signature: &[u8], head: &str) -> bool {
    let mut message = SEAL_CONTEXT.to_vec();
    message.extend_from_slice(head.as_bytes());
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&message, signature)
        .is_ok()
}

/// How a writer authenticates its lines.
pub(super) enum Authentication {
    /// SHA-256 only.
    Plain,
    /// HMAC-SHA-256 under a configured key.
    Keyed(HmacKey),
    /// SHA-256, each append sealed with this writer's signature.
    Signed(Signer),
}

impl Authentication {
    /// Keyed when `JIT_TEST_AUDIT_KEY` or `JIT_TEST_AUDIT_KEY_FILE` (outside `target`)
    /// gives a key, signed by a key pair made now otherwise: what the broker writes.
    #[cfg(feature = "postgres-audit")]
    pub fn from_env(target: &Path) -> io::Result<Authentication> {
        match HmacKey::from_env(target)? {
            Some(key) => Ok(Authentication::Keyed(key)),
            None => Ok(Authentication::Signed(Signer::generate()?)),
        }
    }

    /// The id written in each line (`key`), if any.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Authentication::Plain => None,
            Authentication::Keyed(key) => Some(key.id()),
            Authentication::Signed(signer) => Some(signer.id()),
        }
    }
}

/// Parses `text` as hex, or `None`.
pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_comes_from_the_variable_or_a_file_outside_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir_all(&target).unwrap();
        let secret = "k".repeat(40);
        let none = HmacKey::from_settings(None, None, &target).unwrap();
        assert!(none.is_none());
        let given = HmacKey::from_settings(Some(secret.clone().into()), None, &target);
        let from_file = dir.path().join("audit.key");
        std::fs::write(&from_file, format!("{secret}\n")).unwrap();
        let read = HmacKey::from_settings(None, Some(from_file.into()), &target);
        assert_eq!(given.unwrap().unwrap().id(), read.unwrap().unwrap().id());

        let short = HmacKey::from_settings(Some("short".into()), None, &target).unwrap_err();
        assert!(short.to_string().starts_with(KEY_VAR), "{short}");
        let inside = target.join("audit.key");
        std::fs::write(&inside, &secret).unwrap();
        let err = HmacKey::from_settings(None, Some(inside.into()), &target).unwrap_err();
        let err = err.to_string();
        assert!(
            err.starts_with(KEY_FILE_VAR) && err.contains("inside"),
            "{err}"
        );
        let missing = HmacKey::from_settings(None, Some("/no/such/key".into()), &target);
        assert!(missing.unwrap_err().to_string().contains("/no/such/key"));
    }

    #[test]
    fn a_seal_signs_one_head_only() {
        let signer = Signer::generate().unwrap();
        let public = unhex(signer.public_hex()).unwrap();
        let signature = unhex(&signer.sign_head("abc")).unwrap();
        assert!(head_signed(&public, &signature, "abc"));
        assert!(!head_signed(&public, &signature, "abd"));
        assert_eq!(signer_id(&public), signer.id());
        assert_eq!(unhex("0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("0af"), None);
        assert_eq!(unhex("zz"), None);
    }
}
