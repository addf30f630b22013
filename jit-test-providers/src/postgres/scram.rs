//! SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677), made here so that the server — and its
//! logs, and `pg_stat_activity` — only ever see the verifier, never the password.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};

/// The default of `scram_iterations`: one PBKDF2 iteration, the fewest SCRAM allows.
///
/// Iterations slow down guessing a password from a stolen verifier, which protects
/// passwords people choose. A lease's password is 128 bits from the operating system's
/// CSPRNG, used for one test: no number of iterations changes the 2^128 guesses it takes,
/// while each iteration costs every login (in the client, often an unoptimised debug
/// build) and every grant (PostgreSQL checks each new verifier against the empty
/// password). RFC 7677's 4096 ("SHOULD be at least") is for guessable passwords; set
/// `scram_iterations = 4096` for a client library that refuses fewer.
pub const DEFAULT_ITERATIONS: u32 = 1;

/// The three keys of a verifier.
struct Keys {
    stored: [u8; 32],
    server: [u8; 32],
}

fn keys(password: &[u8], salt: &[u8], iterations: u32) -> Keys {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations).expect("at least one iteration"),
        salt,
        password,
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let mut stored = [0u8; 32];
    stored.copy_from_slice(digest::digest(&digest::SHA256, client_key.as_ref()).as_ref());
    let mut server = [0u8; 32];
    server.copy_from_slice(hmac::sign(&key, b"Server Key").as_ref());
    Keys { stored, server }
}

/// The verifier PostgreSQL stores for `password`, in its `rolpassword` format:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. The password must be
/// printable ASCII (SASLprep leaves it unchanged); jit-test's are base64url.
pub(crate) fn verifier(password: &str, iterations: u32) -> String {
    assert!(
        password.bytes().all(|b| b.is_ascii_graphic()),
        "SASLprep is the identity only for printable ASCII"
    );
    let salt = jit_test::rand::bytes(16);
    let k = keys(password.as_bytes(), &salt, iterations);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(&salt),
        STANDARD.encode(k.stored),
        STANDARD.encode(k.server)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange of RFC 7677, section 3: user `user`, password `pencil`.
    #[test]
    fn keys_match_the_rfc_7677_example() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let k = keys(b"pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        // ServerSignature = HMAC(ServerKey, AuthMessage)
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &k.server),
            auth_message.as_bytes(),
        );
        assert_eq!(
            STANDARD.encode(server_signature.as_ref()),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); StoredKey = H(ClientKey)
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &k.stored),
            auth_message.as_bytes(),
        );
        let proof = STANDARD
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            digest::digest(&digest::SHA256, &client_key).as_ref(),
            k.stored
        );
    }

    #[test]
    fn verifiers_have_postgres_format_and_fresh_salts() {
        let a = verifier("abc_DEF-123", 4096);
        let b = verifier("abc_DEF-123", 4096);
        assert!(verifier("abc", 1).starts_with("SCRAM-SHA-256$1:"));
        assert_ne!(a, b);
        let (head, keys) = a.split_once('$').unwrap();
        assert_eq!(head, "SCRAM-SHA-256");
        let (params, keys) = keys.split_once('$').unwrap();
        let (iterations, salt) = params.split_once(':').unwrap();
        assert_eq!(iterations, "4096");
        assert_eq!(STANDARD.decode(salt).unwrap().len(), 16);
        let (stored, server) = keys.split_once(':').unwrap();
        assert_eq!(STANDARD.decode(stored).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(server).unwrap().len(), 32);
        assert!(!a.contains("abc_DEF"));
    }
}
