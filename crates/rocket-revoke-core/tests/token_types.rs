//! Token confusion (RFC 8725 §3.11, RFC 9068): tokens that say they are another kind of JWT
//! than an access token are refused, `required_typ` narrows the accepted `typ`, and the RFC
//! 9068 profile requires its header and claims.
#![allow(clippy::unwrap_used, missing_docs)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use rocket_revoke_core::{
    Issuer, IssuerConfig, KeyError, NoExtra, TokenProfile, Verifier, VerifierConfig, VerifyError,
};
use serde_json::{json, Value};

const SECRET: &str = "test-secret-0123456789abcdef-0123456789abcdef";

fn now() -> i64 {
    rocket_revoke_core::now_secs()
}

fn claims() -> Value {
    json!({ "jti": "j1", "sub": "alice", "iat": now(), "exp": now() + 600 })
}

/// Claims RFC 9068 §2.2 requires, for issuer `iss` and audience `api`.
fn rfc9068_claims() -> Value {
    json!({
        "jti": "j2", "sub": "alice", "iat": now(), "exp": now() + 600,
        "iss": "https://idp.test", "aud": "api", "client_id": "web",
    })
}

/// An HS256 token with this header (`alg` added) and payload, signed without our code.
fn token(header: Value, payload: &Value) -> String {
    let mut header = header;
    header["alg"] = json!("HS256");
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(&header), b64(payload));
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

fn config() -> VerifierConfig {
    VerifierConfig {
        secret: Some(SECRET.to_owned()),
        ..VerifierConfig::default()
    }
}

fn verify(v: &Verifier, token: &str) -> Result<(), VerifyError> {
    v.verify::<NoExtra>(token).map(drop)
}

#[test]
fn other_kinds_of_jwt_are_refused_by_default() {
    let v = Verifier::new(&config()).unwrap();
    for typ in [
        json!(null),
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt"),
        json!("application/at+jwt"),
        json!("Application/AT+JWT"),
    ] {
        let t = token(json!({ "typ": typ }), &claims());
        assert_eq!(verify(&v, &t), Ok(()), "typ {typ}");
    }
    assert_eq!(verify(&v, &token(json!({}), &claims())), Ok(()), "no typ");
    for typ in [
        "logout+jwt",
        "application/logout+jwt",
        "secevent+jwt",
        "dpop+jwt",
        "id_token+jwt",
        "token-introspection+jwt",
        "JOSE",
        "",
    ] {
        let t = token(json!({ "typ": typ }), &claims());
        assert_eq!(verify(&v, &t), Err(VerifyError::WrongType), "typ {typ:?}");
    }
    let t = token(json!({ "typ": 7 }), &claims());
    assert_eq!(verify(&v, &t), Err(VerifyError::Malformed), "a numeric typ");
}

#[test]
fn logout_tokens_security_events_and_keycloak_id_tokens_are_refused_by_their_claims() {
    let v = Verifier::new(&config()).unwrap();
    let with = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        token(json!({ "typ": "JWT" }), &c)
    };
    // An OpenID back-channel logout token, typed JWT as many providers send it.
    let logout = with(
        "events",
        json!({ "http://schemas.openid.net/event/backchannel-logout": {} }),
    );
    assert_eq!(verify(&v, &logout), Err(VerifyError::WrongType));
    // A security event token (RFC 8417) with any events at all.
    assert_eq!(
        verify(&v, &with("events", json!([]))),
        Err(VerifyError::WrongType)
    );
    for typ in ["ID", "Refresh", "Offline", "Logout", "id"] {
        assert_eq!(
            verify(&v, &with("typ", json!(typ))),
            Err(VerifyError::WrongType),
            "typ claim {typ}"
        );
    }
    // Keycloak's access tokens say "Bearer"; `events: null` is no event.
    assert_eq!(verify(&v, &with("typ", json!("Bearer"))), Ok(()));
    assert_eq!(verify(&v, &with("events", json!(null))), Ok(()));
    // Refused the second time as well (a refused token never enters the verified cache).
    assert_eq!(verify(&v, &logout), Err(VerifyError::WrongType));
}

#[test]
fn required_typ_accepts_only_that_type() {
    let v = Verifier::new(&VerifierConfig {
        required_typ: Some("application/AT+JWT".into()),
        ..config()
    })
    .unwrap();
    let good = token(json!({ "typ": "at+jwt" }), &claims());
    assert_eq!(verify(&v, &good), Ok(()));
    assert_eq!(verify(&v, &good), Ok(()), "again, from the verified cache");
    for header in [json!({ "typ": "JWT" }), json!({}), json!({ "typ": null })] {
        let t = token(header.clone(), &claims());
        assert_eq!(verify(&v, &t), Err(VerifyError::WrongType), "{header}");
    }
    // A verifier that accepted (and cached) a `JWT` token does not vouch for it to one
    // with a stricter rule.
    let lenient = Verifier::new(&config()).unwrap();
    let plain = token(json!({ "typ": "JWT" }), &claims());
    assert_eq!(verify(&lenient, &plain), Ok(()));
    assert_eq!(verify(&v, &plain), Err(VerifyError::WrongType));
}

#[test]
fn the_rfc9068_profile_requires_its_type_and_claims() {
    let profile = VerifierConfig {
        profile: TokenProfile::Rfc9068,
        issuer: vec!["https://idp.test".into()],
        audience: vec!["api".into()],
        ..config()
    };
    let v = Verifier::new(&profile).unwrap();
    let at = json!({ "typ": "at+jwt" });
    assert_eq!(verify(&v, &token(at.clone(), &rfc9068_claims())), Ok(()));
    assert_eq!(
        verify(&v, &token(json!({ "typ": "JWT" }), &rfc9068_claims())),
        Err(VerifyError::WrongType)
    );
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let mut c = rfc9068_claims();
        c.as_object_mut().unwrap().remove(claim);
        let got = verify(&v, &token(at.clone(), &c));
        assert!(
            matches!(&got, Err(VerifyError::MissingClaim(name)) if name == claim),
            "without {claim}: {got:?}"
        );
    }
    // What the profile cannot check without: the resource's own issuer and audience.
    for (issuer, audience) in [(vec![], vec!["api".into()]), (vec!["i".into()], vec![])] {
        let err = Verifier::new(&VerifierConfig {
            issuer,
            audience,
            ..profile.clone()
        })
        .err()
        .unwrap();
        assert!(
            matches!(&err, KeyError::InvalidConfig { reason: m, .. } if m.starts_with("profile")),
            "{err}"
        );
    }
    let err = Verifier::new(&VerifierConfig {
        required_typ: Some("JWT".into()),
        ..profile
    })
    .err()
    .unwrap();
    assert!(
        matches!(&err, KeyError::InvalidConfig { reason: m, .. } if m.starts_with("profile")),
        "{err}"
    );
}

#[test]
fn a_blank_required_typ_is_a_configuration_error() {
    let err = Verifier::new(&VerifierConfig {
        required_typ: Some("  ".into()),
        ..config()
    })
    .err()
    .unwrap();
    assert!(
        matches!(&err, KeyError::InvalidConfig { reason: m, .. } if m.starts_with("required_typ")),
        "{err}"
    );
}

#[tokio::test]
async fn minted_tokens_carry_the_required_typ() {
    use rocket_revoke_core::store::{SqliteStore, Store};
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let engine = rocket_revoke_core::Engine::new(std::sync::Arc::new(store), Default::default())
        .await
        .unwrap();
    let verifier = Verifier::new(&VerifierConfig {
        required_typ: Some("at+jwt".into()),
        ..config()
    })
    .unwrap();
    let issuer = Issuer::new(
        IssuerConfig {
            secret: Some(SECRET.into()),
            typ: Some("at+jwt".into()),
            ..IssuerConfig::default()
        },
        engine,
    )
    .unwrap();
    let pair = issuer.issue("alice", None).await.unwrap();
    let header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(verify(&verifier, &pair.access_token), Ok(()));
    // The refresh token passes the same verifier, so it can be rotated.
    issuer
        .refresh(&verifier, &pair.refresh_token)
        .await
        .unwrap();
}
