//! Password hashes in RabbitMQ's `rabbit_password_hashing_sha256` format, computed here so
//! that the password itself never reaches the broker's API (nor its logs).

use base64::Engine as _;
use jit_test::Secret;
use ring::digest::{SHA256, digest};

/// The `hashing_algorithm` to send with [`hash`]'s output.
pub(crate) const ALGORITHM: &str = "rabbit_password_hashing_sha256";

/// `base64(salt ‖ SHA-256(salt ‖ password))` with a fresh 4-byte random salt.
pub(crate) fn hash(password: &Secret) -> String {
    let salt = jit_test::rand::bytes(4);
    hash_with_salt(&salt, password.expose())
}

fn hash_with_salt(salt: &[u8], password: &str) -> String {
    let mut input = salt.to_vec();
    input.extend_from_slice(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(digest(&SHA256, &input).as_ref());
    base64::engine::general_purpose::STANDARD.encode(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hash_the_broker_made() {
        // RabbitMQ 3.10's `rabbitmqctl add_user u pw123` stored this.
        let stored = "KvYH8OU7yLKM1pxaQBw9RgQfqPXHgsKyUtzDiF5tU7UMSZrn";
        let raw = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .unwrap();
        assert_eq!(hash_with_salt(&raw[..4], "pw123"), stored);
    }

    #[test]
    fn salts_differ() {
        let p = Secret::new("x");
        assert_ne!(hash(&p), hash(&p));
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(hash(&p))
                .unwrap()
                .len(),
            36
        );
    }
}
