//! ECDSA signatures are malleable: `(r, s)` and `(r, n - s)` both verify. A revoked token
//! whose signature was turned so is a different string with the same claims; it must stay
//! refused, also when the verified-token cache has seen the original.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rocket_revoke_core::store::{SqliteStore, Store};
use rocket_revoke_core::{
    Engine, EngineConfig, NoExtra, RevokeRequest, Scope, Verifier, VerifierConfig,
};

/// The order of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// `n - s` for a 32-byte big-endian `s < n`.
fn negate(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0_u8; 32];
    let mut borrow = 0_i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    assert_eq!(borrow, 0, "s < n");
    out
}

fn key(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

#[tokio::test]
async fn a_malleated_ecdsa_signature_on_a_revoked_token_is_still_refused() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default())
        .await
        .unwrap();
    let verifier = Verifier::new(&VerifierConfig {
        algorithms: vec![Algorithm::ES256],
        public_key_pem: vec![key("ec_public.pem")],
        ..VerifierConfig::default()
    })
    .unwrap();
    let signing = EncodingKey::from_ec_pem(&std::fs::read(key("ec_private.pem")).unwrap()).unwrap();
    let now = engine.now_secs();
    let claims = serde_json::json!({ "jti": "ec-1", "sub": "alice", "iat": now, "exp": now + 600 });
    let token = encode(&Header::new(Algorithm::ES256), &claims, &signing).unwrap();

    // Turn s into n - s.
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert_eq!(raw.len(), 64);
    let s_neg = negate(&raw[32..]);
    raw[32..].copy_from_slice(&s_neg);
    let twin = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&raw));
    assert_ne!(twin, token);

    // Both verify (ECDSA accepts either s), with the same claims; the original is cached.
    let a = verifier.verify_at::<NoExtra>(&token, now).unwrap();
    let b = verifier.verify_at::<NoExtra>(&twin, now);
    engine
        .revoke(RevokeRequest::jti("ec-1").expires_at(now + 600))
        .await
        .unwrap();
    assert_eq!(engine.check(&a.token_ref()), Some(Scope::Jti));
    match b {
        Ok(b) => {
            assert_eq!(b.jti, a.jti, "same claims, so the same revocation");
            assert_eq!(engine.check(&b.token_ref()), Some(Scope::Jti));
        }
        // A backend that enforces low-s refuses the twin outright, which is as good.
        Err(e) => assert_eq!(e, rocket_revoke_core::VerifyError::InvalidSignature),
    }
    // Again, now that both strings may sit in the per-thread cache: still revoked.
    for t in [&token, &twin] {
        if let Ok(c) = verifier.verify_at::<NoExtra>(t, now) {
            assert_eq!(engine.check(&c.token_ref()), Some(Scope::Jti), "{t}");
        }
    }
}
