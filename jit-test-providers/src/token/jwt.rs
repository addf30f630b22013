//! Compact JWS (RFC 7515) signing and checking, on ring: EdDSA over Ed25519 (RFC 8037) and
//! HS256. Only the structure and the signature are checked here; the claims are checked
//! by the [`Verifier`](super::Verifier).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::claims::Claims;
use super::error::TokenError;
use super::settings::Algorithm;

/// Longer tokens are refused before any parsing. Ours are a few hundred bytes.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A signing key, its id, and the encoded header of every token it signs.
pub(crate) struct Key {
    kid: String,
    material: Material,
    /// `base64url({"alg":…,"typ":"JWT","kid":…})`.
    header: String,
}

enum Material {
    Ed25519(Ed25519KeyPair),
    Hs256(hmac::Key),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The header fields a token is checked against; others are ignored, except `crit`.
#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11): we understand none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256 of the canonical
/// JWK `{"crv":"Ed25519","kty":"OKP","x":…}`). Used as the key id.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    BASE64URL.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

impl Key {
    /// A fresh key from the system CSPRNG. Panics only if the system's random number
    /// generator fails, when no secret can be made at all.
    pub(crate) fn generate(algorithm: Algorithm) -> Key {
        const RNG_FAILED: &str =
            "the system random number generator failed: cannot make a signing key";
        let rng = SystemRandom::new();
        let (kid, material) = match algorithm {
            Algorithm::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect(RNG_FAILED);
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                    .expect("ring reads the PKCS#8 document it just made");
                let kid = thumbprint(&BASE64URL.encode(pair.public_key().as_ref()));
                (kid, Material::Ed25519(pair))
            }
            Algorithm::HS256 => {
                // A thumbprint of a symmetric key would be a hash of the secret: use a random id.
                let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect(RNG_FAILED);
                (jit_test::rand::token(12), Material::Hs256(key))
            }
        };
        let header = serde_json::to_vec(&Header {
            alg: algorithm.name(),
            typ: "JWT",
            kid: &kid,
        })
        .expect("a header of strings serialises");
        Key {
            header: BASE64URL.encode(header),
            kid,
            material,
        }
    }

    /// The algorithm this key signs with.
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Ed25519(_) => Algorithm::EdDSA,
            Material::Hs256(_) => Algorithm::HS256,
        }
    }

    /// The key id, the `kid` of every token this key signs.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (RFC 8037), or `None` for a symmetric key, which must stay
    /// secret.
    pub(crate) fn public_jwk(&self) -> Option<serde_json::Value> {
        match &self.material {
            Material::Ed25519(pair) => Some(serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": BASE64URL.encode(pair.public_key().as_ref()),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            })),
            Material::Hs256(_) => None,
        }
    }

    /// Signs `claims` into a compact JWS.
    pub(crate) fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims of strings and integers serialise");
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header);
        token.push('.');
        BASE64URL.encode_string(payload, &mut token);
        let signature = match &self.material {
            Material::Ed25519(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
            Material::Hs256(key) => hmac::sign(key, token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        BASE64URL.encode_string(signature, &mut token);
        token
    }

    /// Checks the structure, header and signature of `token` and returns its claims
    /// (not yet checked).
    pub(crate) fn open(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        if payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        let decode = |part: &str| BASE64URL.decode(part).map_err(|_| TokenError::Malformed);
        let received: ReceivedHeader =
            serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
        if received.crit.is_some()
            || received
                .typ
                .is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT"))
        {
            return Err(TokenError::Malformed);
        }
        if received.alg != self.algorithm().name() {
            return Err(TokenError::WrongAlgorithm);
        }
        if received.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let signature = decode(signature)?;
        let valid = match &self.material {
            Material::Ed25519(pair) => UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
                .verify(signed.as_bytes(), &signature)
                .is_ok(),
            Material::Hs256(key) => hmac::verify(key, signed.as_bytes(), &signature).is_ok(),
        };
        if !valid {
            return Err(TokenError::BadSignature);
        }
        serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("algorithm", &self.algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: "jit-test".into(),
            aud: "jit-test".into(),
            sub: "jit_t".into(),
            jti: "j1".into(),
            iat: 1_700_000_000,
            exp: 1_700_000_030,
            scope: "read:orders".into(),
        }
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    fn json(part: &str) -> serde_json::Value {
        serde_json::from_slice(&BASE64URL.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn tokens_have_the_jose_header_and_round_trip() {
        for alg in [Algorithm::EdDSA, Algorithm::HS256] {
            let key = Key::generate(alg);
            let token = key.sign(&claims());
            let p = parts(&token);
            assert_eq!(p.len(), 3);
            assert_eq!(
                json(&p[0]),
                serde_json::json!({"alg": alg.name(), "typ": "JWT", "kid": key.kid()})
            );
            assert_eq!(json(&p[1])["scope"], "read:orders");
            let signature = BASE64URL.decode(&p[2]).unwrap();
            assert_eq!(
                signature.len(),
                if alg == Algorithm::EdDSA { 64 } else { 32 }
            );
            assert_eq!(key.open(&token), Ok(claims()));
        }
    }

    #[test]
    fn ed25519_key_ids_are_rfc7638_thumbprints() {
        // RFC 8037 appendix A.3: the thumbprint of the example key.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        let key = Key::generate(Algorithm::EdDSA);
        let jwk = key.public_jwk().unwrap();
        assert_eq!(key.kid(), thumbprint(jwk["x"].as_str().unwrap()));
        assert!(Key::generate(Algorithm::HS256).public_jwk().is_none());
    }

    #[test]
    fn every_altered_part_is_refused() {
        for alg in [Algorithm::EdDSA, Algorithm::HS256] {
            let key = Key::generate(alg);
            let p = parts(&key.sign(&claims()));

            let mut widened = claims();
            widened.scope = "read:orders write:orders".into();
            let forged_payload = BASE64URL.encode(serde_json::to_vec(&widened).unwrap());
            let token = format!("{}.{forged_payload}.{}", p[0], p[2]);
            assert_eq!(key.open(&token), Err(TokenError::BadSignature), "{alg}");

            let mut signature = BASE64URL.decode(&p[2]).unwrap();
            signature[7] ^= 0x01;
            let token = format!("{}.{}.{}", p[0], p[1], BASE64URL.encode(&signature));
            assert_eq!(key.open(&token), Err(TokenError::BadSignature), "{alg}");

            let token = format!("{}.{}.", p[0], p[1]);
            assert_eq!(
                key.open(&token),
                Err(TokenError::BadSignature),
                "{alg}: no signature"
            );
        }
    }

    #[test]
    fn foreign_algorithms_and_keys_are_refused() {
        let key = Key::generate(Algorithm::EdDSA);
        let p = parts(&key.sign(&claims()));
        let header = |h: serde_json::Value| BASE64URL.encode(serde_json::to_vec(&h).unwrap());
        let with = |h: serde_json::Value| format!("{}.{}.{}", header(h), p[1], p[2]);

        let none = with(serde_json::json!({"alg": "none", "typ": "JWT", "kid": key.kid()}));
        assert_eq!(key.open(&none), Err(TokenError::WrongAlgorithm));
        let hs = with(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": key.kid()}));
        assert_eq!(key.open(&hs), Err(TokenError::WrongAlgorithm));
        let other = with(serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "other"}));
        assert_eq!(key.open(&other), Err(TokenError::UnknownKey));
        let no_kid = with(serde_json::json!({"alg": "EdDSA", "typ": "JWT"}));
        assert_eq!(key.open(&no_kid), Err(TokenError::UnknownKey));
        let crit = with(serde_json::json!({"alg": "EdDSA", "kid": key.kid(), "crit": ["exp"]}));
        assert_eq!(key.open(&crit), Err(TokenError::Malformed));
        let typ = with(serde_json::json!({"alg": "EdDSA", "kid": key.kid(), "typ": "at+jwt"}));
        assert_eq!(key.open(&typ), Err(TokenError::Malformed));

        // Another key's token, even relabelled with this key's id, does not verify.
        let stranger = Key::generate(Algorithm::EdDSA);
        let token = stranger.sign(&claims());
        assert_eq!(key.open(&token), Err(TokenError::UnknownKey));
        let q = parts(&token);
        let relabelled = format!("{}.{}.{}", p[0], q[1], q[2]);
        assert_eq!(key.open(&relabelled), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        let key = Key::generate(Algorithm::EdDSA);
        let token = key.sign(&claims());
        let p = parts(&token);
        for bad in [
            String::new(),
            "abc".into(),
            "a.b".into(),
            format!("{token}.extra"),
            format!("Bearer {token}"),
            format!("{}.{}.{}=", p[0], p[1], p[2]),
            format!("{}.{}.+{}", p[0], p[1], &p[2][1..]),
            format!("{}.{}.{}", BASE64URL.encode("not json"), p[1], p[2]),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(key.open(&bad), Err(TokenError::Malformed), "{bad:.40}");
        }
        // A validly signed payload that is not our claims.
        let signed = format!("{}.{}", p[0], BASE64URL.encode(r#"{"sub":"x"}"#));
        let Material::Ed25519(pair) = &key.material else {
            unreachable!()
        };
        let sig = BASE64URL.encode(pair.sign(signed.as_bytes()).as_ref());
        assert_eq!(
            key.open(&format!("{signed}.{sig}")),
            Err(TokenError::Malformed)
        );
    }
}
