//! What the guard benchmark and the allocation test share: the token, the set, the two
//! verifiers and the guard's work between header and claims.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rocket_revoke::Authenticated;
use rocket_revoke_core::{Claims, NoExtra, RevocationSet, TokenKind, Verifier, VerifierConfig};

/// The HS256 secret of [`token`] and both [`verifiers`].
pub const SECRET: &[u8] = b"bench-secret-0123456789abcdef-0123456789";

/// A token like the ones `Issuer` mints: jti, sub, iat, exp, fid, kind.
pub fn token() -> String {
    let now = rocket_revoke_core::now_secs();
    let claims = Claims::<NoExtra> {
        jti: Some(uuid::Uuid::new_v4().to_string()),
        sub: Some("alice".into()),
        iat: Some(now),
        exp: Some(now + 3600),
        fid: Some(uuid::Uuid::new_v4().to_string()),
        kind: Some(TokenKind::Access),
        ..Claims::default()
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET).expect("key"),
    )
    .expect("encode")
}

/// A set holding `n` revoked random jtis, grown as in production.
pub fn revoked_set(n: usize) -> RevocationSet {
    let set = RevocationSet::new();
    for _ in 0..n {
        set.revoke_jti(&uuid::Uuid::new_v4().to_string(), 4_000_000_000);
    }
    set
}

/// The default verifier for [`SECRET`] (verified-token cache on), and the same with the
/// cache off.
pub fn verifiers() -> (Verifier, Verifier) {
    let uncached = Verifier::new(&VerifierConfig {
        secret: Some(String::from_utf8(SECRET.to_vec()).expect("utf-8")),
        verified_cache: 0,
        ..VerifierConfig::default()
    })
    .expect("verifier");
    (Verifier::hs256(SECRET), uncached)
}

/// What `Authenticated` does between Rocket handing it the `Authorization` header value and
/// returning claims: Bearer parse, verify, refuse refresh tokens, check the set.
pub fn guard_work(
    verifier: &Verifier,
    set: &RevocationSet,
    header: &str,
) -> Option<Claims<NoExtra>> {
    let token = Authenticated::bearer_token(header).ok()?;
    let claims = verifier.verify::<NoExtra>(token).ok()?;
    if claims.kind == Some(TokenKind::Refresh) {
        return None;
    }
    if set.check(&claims.token_ref()).is_some() {
        return None;
    }
    Some(claims)
}
