//! A third party verifies our tokens: jsonwebtoken reads the authority's JWKS, checks the
//! signature, header and registered claims, and returns the claims we issued.
//!
//! jsonwebtoken 11 has no crypto backend without `rsa` (`rust_crypto`) or C (`aws_lc_rs`),
//! so it is built with neither and given a `CryptoProvider` whose only algorithm, EdDSA,
//! is checked by ed25519-compact: an Ed25519 implementation independent of ring's. All JOSE
//! handling (JWK parsing, base64url, header, `exp`/`iss`/`aud`/`sub` validation) is
//! jsonwebtoken's own.

use std::sync::Arc;
use std::time::Duration;

use jit_test::{GrantRequest, Granted, Provider, Scope};
use jit_test_providers::token::{Claims, TokenAuthority, TokenSettings};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};

struct Ed25519Compact(ed25519_compact::PublicKey);

impl signature::Verifier<Vec<u8>> for Ed25519Compact {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let sig =
            ed25519_compact::Signature::from_slice(sig).map_err(|_| signature::Error::new())?;
        self.0
            .verify(message, &sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Ed25519Compact {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::EdDSA {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let key = ed25519_compact::PublicKey::from_slice(key.try_get_as_bytes()?)
        .map_err(|_| ErrorKind::InvalidEddsaKey)?;
    Ok(Box::new(Ed25519Compact(key)))
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn sha256(data: &[u8], hash: ThumbprintHash) -> JwtResult<Vec<u8>> {
    match hash {
        ThumbprintHash::SHA256 => Ok(ring::digest::digest(&ring::digest::SHA256, data)
            .as_ref()
            .to_vec()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

static ED25519_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        compute_digest: sha256,
        ..KeyUtils::new_unimplemented()
    },
};

fn install() {
    // Several tests of this binary install it; the first wins, and it is the same one.
    let _ = ED25519_ONLY.install_default();
}

async fn grant(authority: &TokenAuthority, scope: &str) -> Granted<TokenAuthority> {
    let request = GrantRequest {
        test: "interop".into(),
        run_id: "interop".into(),
        lease_id: format!("i{}", jit_test::rand::hex(6)),
        permissions: Scope::parse(scope).unwrap().permissions,
        deny: Vec::new(),
        ttl: Duration::from_secs(60),
    };
    authority.grant(&request).await.unwrap()
}

fn validation(settings: &TokenSettings) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[&settings.issuer]);
    v.set_audience(&[&settings.audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 0;
    v
}

#[tokio::test]
async fn jsonwebtoken_verifies_our_tokens_with_our_jwks() {
    install();
    let authority = Arc::new(TokenAuthority::new(TokenSettings {
        issuer: "https://issuer.test".into(),
        audience: "orders-api".into(),
        ..TokenSettings::default()
    }));
    let granted = grant(&authority, "token:read:orders, token:write:orders").await;
    let token = granted.credential.token().expose();

    let jwks: JwkSet = serde_json::from_str(&authority.jwks()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("tokens name their key");
    let jwk = jwks.find(&kid).expect("the JWKS holds the token's key");
    assert_eq!(
        jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
        kid,
        "kid is the RFC 7638 thumbprint"
    );

    let key = DecodingKey::from_jwk(jwk).unwrap();
    let data =
        jsonwebtoken::decode::<Claims>(token, &key, &validation(authority.settings())).unwrap();
    assert_eq!(&data.claims, granted.credential.claims());
    assert_eq!(data.claims.sub, granted.principal);
    assert_eq!(data.claims.scope, "read:orders write:orders");
    assert_eq!(data.claims.iss, "https://issuer.test");
    assert_eq!(data.claims.aud, "orders-api");
    let generic =
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation(authority.settings()))
            .unwrap()
            .claims;
    let mut names: Vec<&str> = generic
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(names, ["aud", "exp", "iat", "iss", "jti", "scope", "sub"]);
}

#[tokio::test]
async fn jsonwebtoken_refuses_what_it_should() {
    install();
    let authority = TokenAuthority::new(TokenSettings::default());
    let granted = grant(&authority, "token:read:orders").await;
    let token = granted.credential.token().expose();
    let jwks: JwkSet = serde_json::from_str(&authority.jwks()).unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let kind = |token: &str, validation: &Validation| {
        jsonwebtoken::decode::<Claims>(token, &key, validation)
            .unwrap_err()
            .into_kind()
    };

    // A flipped signature bit: the provider above really checks signatures.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .unwrap();
    bytes[10] ^= 0x04;
    let forged = format!(
        "{signed}.{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    );
    assert!(matches!(
        kind(&forged, &validation(authority.settings())),
        ErrorKind::InvalidSignature
    ));

    // Another authority's key does not verify this token.
    let stranger = TokenAuthority::new(TokenSettings::default());
    let jwks: JwkSet = serde_json::from_str(&stranger.jwks()).unwrap();
    let other_key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let err = jsonwebtoken::decode::<Claims>(token, &other_key, &validation(authority.settings()));
    assert!(matches!(
        err.unwrap_err().into_kind(),
        ErrorKind::InvalidSignature
    ));

    // Its claim checks see our iss and aud.
    let mut wrong_aud = validation(authority.settings());
    wrong_aud.set_audience(&["billing-api"]);
    assert!(matches!(
        kind(token, &wrong_aud),
        ErrorKind::InvalidAudience
    ));
    let mut wrong_iss = validation(authority.settings());
    wrong_iss.set_issuer(&["someone-else"]);
    assert!(matches!(kind(token, &wrong_iss), ErrorKind::InvalidIssuer));

    // And our exp: a token granted for 1 s is expired for it 2 s later.
    let request = GrantRequest {
        test: "interop".into(),
        run_id: "interop".into(),
        lease_id: format!("i{}", jit_test::rand::hex(6)),
        permissions: Scope::parse("token:read:orders").unwrap().permissions,
        deny: Vec::new(),
        ttl: Duration::from_secs(1),
    };
    let short = authority.grant(&request).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(matches!(
        kind(
            short.credential.token().expose(),
            &validation(authority.settings())
        ),
        ErrorKind::ExpiredSignature
    ));
}
