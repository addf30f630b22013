//! Randomness from the system CSPRNG (ring).

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random number generator failed");
    buf
}

/// `n` random bytes as unpadded URL-safe base64.
pub fn token(n: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes(n))
}

/// `n` random bytes as lowercase hex.
pub fn hex(n: usize) -> String {
    crate::hex::to_hex(&bytes(n))
}
