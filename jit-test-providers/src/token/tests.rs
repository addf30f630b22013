//! Unit tests of the authority as a provider: grant, verify, revoke, prove dead.

use super::*;

fn request(scope: &str, ttl: Duration) -> GrantRequest {
    GrantRequest {
        test: "unit::token".into(),
        run_id: "run".into(),
        lease_id: format!("u{}", jit_test::rand::hex(6)),
        permissions: jit_test::Scope::parse(scope).unwrap().permissions,
        deny: Vec::new(),
        ttl,
    }
}

async fn grant(authority: &TokenAuthority, scope: &str) -> Granted<TokenAuthority> {
    authority
        .grant(&request(scope, Duration::from_secs(30)))
        .await
        .unwrap()
}

fn now() -> u64 {
    unix_seconds(SystemTime::now())
}

/// Claims like a grant's, signed by `authority`, with the given times.
fn signed(authority: &TokenAuthority, iat: u64, exp: u64) -> (Claims, Secret) {
    let mut claims = authority.claims(
        "jit_manual".into(),
        &jit_test::Scope::parse("token:read:orders")
            .unwrap()
            .permissions,
        SystemTime::now(),
        Duration::from_secs(30),
    );
    (claims.iat, claims.exp) = (iat, exp);
    let token = authority.sign(&claims);
    (claims, token)
}

#[tokio::test]
async fn a_grant_is_a_token_the_verifier_accepts_with_exactly_the_claims_asked_for() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let req = request(
        "token:read:orders, token:write:orders",
        Duration::from_secs(30),
    );
    let before = SystemTime::now();
    let granted = authority.grant(&req).await.unwrap();
    let grant = &granted.credential;

    let claims = authority.verifier().verify(grant.token().expose()).unwrap();
    assert_eq!(&claims, grant.claims());
    assert_eq!(claims.sub, format!("jit_{}", req.lease_id));
    assert_eq!(grant.principal(), claims.sub);
    assert_eq!(granted.principal, claims.sub);
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("jit-test", "jit-test")
    );
    assert_eq!(claims.scope, "read:orders write:orders");
    assert!(grant.has_scope("read:orders") && grant.has_scope("write:orders"));
    assert!(!grant.has_scope("delete:orders"));
    assert!(claims.exp - claims.iat <= 30 && claims.exp - claims.iat >= 29);
    assert!(granted.expires_at <= before + Duration::from_secs(31));
    assert!(granted.expires_at <= SystemTime::now() + Duration::from_secs(30));
    assert_eq!(granted.expires_at, claims.expires_at());
    assert_eq!(granted.lease.jti, claims.jti);
    assert_eq!(grant.bearer(), format!("Bearer {}", grant.token().expose()));

    let other = grant_jti(&authority).await;
    assert_ne!(other, claims.jti, "every token has its own jti");
    assert!(claims.jti.len() >= 22, "128 random bits");
}

async fn grant_jti(authority: &TokenAuthority) -> String {
    grant(authority, "token:read:orders")
        .await
        .credential
        .claims
        .jti
        .clone()
}

#[test]
fn expired_tokens_are_refused_unless_within_the_leeway() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let verifier = authority.verifier();
    let t = now();
    let (_, past) = signed(&authority, t - 20, t - 5);
    assert_eq!(verifier.verify(past.expose()), Err(TokenError::Expired));
    assert_eq!(
        verifier
            .with_leeway(Duration::from_secs(3))
            .verify(past.expose()),
        Err(TokenError::Expired)
    );
    assert!(
        verifier
            .with_leeway(Duration::from_secs(60))
            .verify(past.expose())
            .is_ok()
    );
    assert_eq!(
        verifier.with_leeway(Duration::from_secs(60)).leeway(),
        Duration::from_secs(60)
    );
    assert_eq!(
        verifier.leeway(),
        Duration::ZERO,
        "with_leeway leaves the original alone"
    );

    // `exp` is the first instant the token is refused (RFC 7519 §4.1.4).
    let (_, edge) = signed(&authority, t - 20, t + 10);
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    assert!(verifier.verify_at(edge.expose(), at(t + 9)).is_ok());
    assert_eq!(
        verifier.verify_at(edge.expose(), at(t + 10)),
        Err(TokenError::Expired)
    );
    let lenient = verifier.with_leeway(Duration::from_secs(2));
    assert!(lenient.verify_at(edge.expose(), at(t + 11)).is_ok());
    assert_eq!(
        lenient.verify_at(edge.expose(), at(t + 12)),
        Err(TokenError::Expired)
    );

    // The configured leeway is the verifier's default.
    let skewed = TokenAuthority::new(TokenSettings {
        leeway: Duration::from_secs(60),
        ..TokenSettings::default()
    });
    let (_, past) = signed(&skewed, t - 20, t - 5);
    assert!(skewed.verifier().verify(past.expose()).is_ok());
}

#[test]
fn other_issuers_and_audiences_are_refused() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let verifier = authority.verifier();
    let (mut claims, _) = signed(&authority, now(), now() + 30);
    claims.iss = "https://elsewhere".into();
    assert_eq!(
        verifier.verify(authority.sign(&claims).expose()),
        Err(TokenError::WrongIssuer)
    );
    claims.iss = "jit-test".into();
    claims.aud = "billing-api".into();
    assert_eq!(
        verifier.verify(authority.sign(&claims).expose()),
        Err(TokenError::WrongAudience)
    );
    claims.aud = "jit-test".into();
    assert!(verifier.verify(authority.sign(&claims).expose()).is_ok());

    let orders = TokenAuthority::new(TokenSettings {
        issuer: "idp".into(),
        audience: "orders-api".into(),
        ..TokenSettings::default()
    });
    let token = orders.sign(&orders.claims(
        "jit_x".into(),
        &[],
        SystemTime::now(),
        Duration::from_secs(5),
    ));
    let claims = orders.verifier().verify(token.expose()).unwrap();
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("idp", "orders-api")
    );
}

#[test]
fn tampered_tokens_are_refused() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let authority = TokenAuthority::new(TokenSettings::default());
    let (mut claims, token) = signed(&authority, now(), now() + 30);
    let parts: Vec<&str> = token.expose().split('.').collect();
    claims.scope = "read:orders admin:orders".into();
    let payload = b64.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        authority.verifier().verify(&forged),
        Err(TokenError::BadSignature)
    );

    let mut signature = b64.decode(parts[2]).unwrap();
    signature[0] ^= 0x80;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64.encode(signature));
    assert_eq!(
        authority.verifier().verify(&forged),
        Err(TokenError::BadSignature)
    );
    assert!(
        authority.verifier().verify(token.expose()).is_ok(),
        "the original still verifies"
    );
}

#[tokio::test]
async fn revocation_is_idempotent_and_refuses_the_token_everywhere() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let early_verifier = authority.verifier();
    let granted = grant(&authority, "token:read:orders").await;
    let keep = grant(&authority, "token:read:orders").await;
    let token = granted.credential.token().expose();

    assert_eq!(
        authority.prove_dead(&granted.lease).await.unwrap(),
        Proof::Accepted
    );
    authority.revoke(&granted.lease).await.unwrap();
    authority.revoke(&granted.lease).await.unwrap();
    assert_eq!(
        early_verifier.verify(token),
        Err(TokenError::Revoked),
        "verifiers made earlier see it"
    );
    assert_eq!(authority.verifier().verify(token), Err(TokenError::Revoked));
    assert_eq!(
        authority
            .verifier()
            .with_leeway(Duration::from_secs(3600))
            .verify(token),
        Err(TokenError::Revoked)
    );
    assert_eq!(
        authority.prove_dead(&granted.lease).await.unwrap(),
        Proof::Refused("revoked".into())
    );
    assert!(
        early_verifier
            .verify(keep.credential.token().expose())
            .is_ok(),
        "only that token"
    );

    // Another authority's revocation list is its own.
    let other = TokenAuthority::new(TokenSettings::default());
    other.revoke(&keep.lease).await.unwrap();
    assert!(
        authority
            .verifier()
            .verify(keep.credential.token().expose())
            .is_ok()
    );
}

#[tokio::test]
async fn hs256_signs_verifies_and_publishes_no_key() {
    let hs = TokenAuthority::new(TokenSettings {
        algorithm: Algorithm::HS256,
        ..TokenSettings::default()
    });
    assert_eq!(hs.jwks(), r#"{"keys":[]}"#);
    let granted = grant(&hs, "token:read:orders").await;
    let token = granted.credential.token().expose();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");
    assert!(hs.verifier().verify(token).unwrap().allows("read:orders"));

    let (mut claims, _) = signed(&hs, now(), now() + 30);
    claims.scope = "admin:all".into();
    let forged = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&claims).unwrap()
        ),
        token.rsplit('.').next().unwrap()
    );
    assert_eq!(hs.verifier().verify(&forged), Err(TokenError::BadSignature));

    hs.revoke(&granted.lease).await.unwrap();
    assert_eq!(
        hs.prove_dead(&granted.lease).await.unwrap(),
        Proof::Refused("revoked".into())
    );

    // No algorithm confusion either way, and no other HS256 authority's key works.
    let ed = TokenAuthority::new(TokenSettings::default());
    let ed_token = grant(&ed, "token:read:orders").await.credential;
    let hs_token = grant(&hs, "token:read:orders").await.credential;
    assert_eq!(
        hs.verifier().verify(ed_token.token().expose()),
        Err(TokenError::WrongAlgorithm)
    );
    assert_eq!(
        ed.verifier().verify(hs_token.token().expose()),
        Err(TokenError::WrongAlgorithm)
    );
    let hs2 = TokenAuthority::new(hs.settings().clone());
    assert_eq!(
        hs2.verifier().verify(hs_token.token().expose()),
        Err(TokenError::UnknownKey)
    );
}

#[tokio::test]
async fn another_authoritys_tokens_are_refused() {
    let a = TokenAuthority::new(TokenSettings::default());
    let b = TokenAuthority::new(TokenSettings::default());
    let token = grant(&b, "token:read:orders").await.credential;
    assert_eq!(
        a.verifier().verify(token.token().expose()),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn the_jwks_publishes_the_ed25519_public_key() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let jwks: serde_json::Value = serde_json::from_str(&authority.jwks()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &"OKP".into(),
            &"Ed25519".into(),
            &"EdDSA".into(),
            &"sig".into()
        )
    );
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key["x"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(x.len(), 32);
    assert_eq!(
        key.as_object().unwrap().len(),
        6,
        "no private part (`d`) or anything else: {key}"
    );
    let other = TokenAuthority::new(TokenSettings::default());
    assert_ne!(authority.jwks(), other.jwks(), "a key per authority");
}

#[tokio::test]
async fn nothing_prints_the_token() {
    for algorithm in [Algorithm::EdDSA, Algorithm::HS256] {
        let authority = TokenAuthority::new(TokenSettings {
            algorithm,
            ..TokenSettings::default()
        });
        let granted = grant(&authority, "token:read:orders").await;
        let token = granted.credential.token().expose().to_owned();
        let signature = token.rsplit('.').next().unwrap().to_owned();
        let printed = format!(
            "{:?} {:#?} {:?} {} {:?} {:?} {:?}",
            granted.credential,
            granted.credential,
            granted.credential.token(),
            granted.credential.token(),
            granted.lease,
            authority,
            authority.verifier(),
        );
        assert!(!printed.contains(&token), "{printed}");
        assert!(!printed.contains(&signature), "{printed}");
        assert!(
            printed.contains(granted.credential.principal()),
            "Debug still says whose it is: {printed}"
        );
        assert!(printed.contains("redacted"), "{printed}");
        for error in [
            TokenError::Malformed,
            TokenError::Revoked,
            TokenError::Expired,
        ] {
            assert!(!format!("{error} {error:?}").contains(&signature));
        }
    }
}

#[tokio::test]
async fn grants_refuse_what_a_jwt_cannot_honour() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let err = authority
        .grant(&request("token:read:orders", Duration::from_millis(500)))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("ttl") && err.contains("1s"), "{err}");

    let mut req = request(
        "token:read:orders, token:write:orders",
        Duration::from_secs(5),
    );
    req.deny = jit_test::Scope::parse("token:write:orders")
        .unwrap()
        .permissions;
    let err = authority.grant(&req).await.err().unwrap().to_string();
    assert!(
        err.contains("token:write:orders") && err.contains("denied"),
        "{err}"
    );

    let mut req = request("token:read:orders", Duration::from_secs(5));
    req.permissions[0].args = vec!["id".into()];
    assert!(matches!(
        authority.grant(&req).await,
        Err(ProviderError::InvalidPermission { .. })
    ));
}

#[test]
fn validate_accepts_plain_actions_and_scope_safe_resources_only() {
    let check = |p: &str| TokenAuthority::validate(&p.parse::<Permission>().unwrap());
    for ok in [
        "token:read:orders",
        "token:write-all:orders/*",
        "token:r2_d2:a:b.c@d$e",
    ] {
        assert_eq!(check(ok), Ok(()), "{ok}");
    }
    let err = check("token:read(id):orders").unwrap_err();
    assert!(
        err.contains("no arguments") && err.contains("token:read:orders"),
        "{err}"
    );
    let err = check("pg:read:orders").unwrap_err();
    assert!(err.contains("`pg`"), "{err}");

    // Permissions built by hand skip the scope grammar; validate still holds.
    let hand = |action: &str, resource: &str| Permission {
        scheme: "token".into(),
        action: action.into(),
        args: Vec::new(),
        resource: resource.into(),
    };
    for (action, resource) in [
        ("Read", "orders"),
        ("1read", "orders"),
        ("", "orders"),
        ("re ad", "orders"),
    ] {
        let err = TokenAuthority::validate(&hand(action, resource)).unwrap_err();
        assert!(err.contains("action"), "{action:?}: {err}");
    }
    for resource in ["", "orders all", "a\"b", "a\\b", "caf\u{e9}", "a\nb"] {
        let err = TokenAuthority::validate(&hand("read", resource)).unwrap_err();
        assert!(err.contains("resource"), "{resource:?}: {err}");
    }
}

#[test]
fn token_errors_are_authentication_failures_and_nothing_else_is() {
    use jit_test::HttpStatus;
    assert_eq!(
        TokenAuthority::classify(&TokenError::Revoked),
        Some(ErrorClass::Unauthenticated)
    );
    assert_eq!(
        TokenAuthority::classify(&TokenError::Expired),
        Some(ErrorClass::Unauthenticated)
    );
    assert_eq!(TokenAuthority::classify(&HttpStatus(403)), None);
    assert_eq!(TokenAuthority::classify(&std::fmt::Error), None);

    jit_test::register::<TokenAuthority>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(TokenError::BadSignature);
    assert_eq!(
        jit_test::classify(boxed.as_ref()),
        ErrorClass::Unauthenticated
    );
    let denied: Box<dyn Error + Send + Sync> = Box::new(HttpStatus(403));
    assert_eq!(jit_test::classify(denied.as_ref()), ErrorClass::Denied);
}

#[tokio::test]
async fn reap_has_nothing_to_remove() {
    let authority = TokenAuthority::new(TokenSettings::default());
    let live = grant(&authority, "token:read:orders").await;
    assert_eq!(
        authority.reap(Duration::ZERO).await.unwrap(),
        Vec::<String>::new()
    );
    assert!(
        authority
            .verifier()
            .verify(live.credential.token().expose())
            .is_ok()
    );
}
