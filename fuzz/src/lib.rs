//! Shared set-up of the fuzz targets: verifiers for every key type the crate supports, a
//! revocation set with one entry of each scope, and a way to sign arbitrary bytes so the
//! claim checks behind the signature get fuzzed too.

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use rocket_revoke_core::{Claims, NoExtra, Revocation, RevocationSet, Scope, Verifier, VerifierConfig};

/// The HMAC secret of the fuzzed verifier; tokens built by [`sign_hs256`] use it.
pub const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";
/// A fixed "now" so runs are reproducible.
pub const NOW: i64 = 1_800_000_000;
/// The revoked jti, subject (cut-off `NOW`) and family.
pub const REVOKED_JTI: &str = "revoked-jti";
/// See [`REVOKED_JTI`].
pub const REVOKED_SUB: &str = "revoked-sub";
/// See [`REVOKED_JTI`].
pub const REVOKED_FID: &str = "revoked-fid";
/// A revoked UUID jti (UUIDs live in their own table, keyed by value: any letter case).
pub const REVOKED_UUID: &str = "6f1c2a9e-8d4b-4e7a-9c3f-2b1d0e5a7c64";

fn key(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/rocket-revoke-core/tests/keys")
        .join(name)
}

/// Verifiers: HS256 only; RS256 with a PEM key; and every family at once (HS*, RS*, PS*,
/// ES256, EdDSA, a JWKS file with kids), with issuer and audience checks.
pub fn verifiers() -> &'static [Verifier] {
    static V: OnceLock<Vec<Verifier>> = OnceLock::new();
    V.get_or_init(|| {
        let hs = VerifierConfig {
            secret: Some(SECRET.into()),
            ..VerifierConfig::default()
        };
        let rs = VerifierConfig {
            algorithms: vec![Algorithm::RS256],
            public_key_pem: vec![key("rsa_public.pem")],
            ..VerifierConfig::default()
        };
        let all = VerifierConfig {
            algorithms: vec![
                Algorithm::HS256,
                Algorithm::HS512,
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::EdDSA,
            ],
            secret: Some(SECRET.into()),
            public_key_pem: vec![
                key("rsa_public.pem"),
                key("ec_public.pem"),
                key("ed25519_public.pem"),
            ],
            jwks_file: Some(key("jwks.json")),
            issuer: vec!["https://issuer.fuzz".into()],
            audience: vec!["api".into()],
            leeway: 5,
            required_claims: vec!["exp".into(), "jti".into(), "sub".into()],
        };
        [hs, rs, all]
            .iter()
            .map(|c| Verifier::new(c).expect("fuzz verifier config"))
            .collect()
    })
}

/// A set with one revocation of each scope and a global cut-off far in the past.
pub fn set() -> &'static RevocationSet {
    static S: OnceLock<RevocationSet> = OnceLock::new();
    S.get_or_init(|| {
        let set = RevocationSet::new();
        let rev = |scope, key: &str, cutoff| Revocation {
            scope,
            key: key.into(),
            issuer: None,
            cutoff,
            expires_at: Some(NOW + 3600),
            reason: None,
            actor: None,
            revoked_at: NOW,
        };
        set.apply(&rev(Scope::Jti, REVOKED_JTI, None));
        set.apply(&rev(Scope::Jti, REVOKED_UUID, None));
        set.apply(&rev(Scope::Subject, REVOKED_SUB, Some(NOW)));
        set.apply(&rev(Scope::Family, REVOKED_FID, None));
        set.apply(&rev(Scope::Global, "", Some(1_000)));
        set
    })
}

/// `base64url(header).base64url(payload).signature` with a valid HS256 signature over
/// whatever bytes the header and payload are.
pub fn sign_hs256(header: &[u8], payload: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("sign");
    format!("{message}.{signature}")
}

/// Verifies `token` with every verifier and checks the invariants of an accepted token;
/// an accepted token is then checked against the set, whose answer must agree with a
/// simple model.
pub fn verify_everywhere(token: &str) {
    for verifier in verifiers() {
        let Ok(claims) = verifier.verify_at::<NoExtra>(token, NOW) else {
            continue;
        };
        assert_accepted_claims(&claims);
        let found = set().check(&claims.token_ref());
        assert_eq!(found, model(&claims), "set disagrees with the model");
    }
}

fn assert_accepted_claims(claims: &Claims<NoExtra>) {
    // Required by every fuzzed verifier: exp (not expired, leeway <= 30 s) and a
    // non-empty string jti.
    let exp = claims.exp.expect("an accepted token has exp");
    assert!(exp.saturating_add(30) > NOW, "expired token accepted");
    assert!(
        claims.jti.as_deref().is_some_and(|j| !j.is_empty()),
        "accepted token without a jti"
    );
    if let Some(nbf) = claims.nbf {
        assert!(nbf <= NOW + 30, "token before nbf accepted");
    }
    if let Some(iat) = claims.iat {
        assert!(iat <= NOW + 30, "token from the future accepted");
    }
}

/// What the set must answer, from first principles (in the set's checking order: global,
/// subject, family, jti).
fn model(claims: &Claims<NoExtra>) -> Option<Scope> {
    let issued_before = |cutoff: i64| claims.iat.is_none_or(|iat| iat <= cutoff);
    let global = issued_before(1_000);
    let sub = claims.sub.as_deref() == Some(REVOKED_SUB) && issued_before(NOW);
    let fid = claims.fid.as_deref() == Some(REVOKED_FID);
    let jti = claims
        .jti
        .as_deref()
        .is_some_and(|j| j == REVOKED_JTI || j.eq_ignore_ascii_case(REVOKED_UUID));
    [
        (global, Scope::Global),
        (sub, Scope::Subject),
        (fid, Scope::Family),
        (jti, Scope::Jti),
    ]
    .into_iter()
    .find_map(|(hit, scope)| hit.then_some(scope))
}
