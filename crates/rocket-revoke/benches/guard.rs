//! The guard's own work per request, against `jsonwebtoken::decode` alone on the same HS256
//! token (issue 5: target ≤ 1.1× decode alone).
//!
//! - `decode_alone`: `jsonwebtoken::decode::<Claims>` with an HS256 `Validation` (`exp`
//!   checked, leeway 30 s, `exp` required): signature, header and claims, nothing else.
//! - `guard`: what `Authenticated` does between Rocket handing it the `Authorization`
//!   header value and returning claims: parse `Bearer <token>`, `Verifier::verify` (our
//!   allow-list, header rules, signature, claim checks), refuse refresh tokens, and
//!   `RevocationSet::check` on a set holding 1,000,000 revoked jtis (a miss, as for a
//!   valid token).
//! - `guard_empty_set`: the same with an empty set.
//! - `verify_only`: `Verifier::verify` alone.
//!
//! The same token is checked over and over, so `guard`, `guard_empty_set` and `verify_only`
//! answer its signature from the verified-token cache, as a server does for a client's
//! second and later requests. `guard_uncached` and `verify_uncached` are `guard` and
//! `verify_only` with that cache off (`verified_cache = 0`): a token's first request.
//!
//! Run: `cargo bench -p rocket-revoke --bench guard`
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use revoke_core::{Claims, NoExtra, RevocationSet, TokenKind, Verifier, VerifierConfig};
use rocket_revoke::Authenticated;

const SECRET: &[u8] = b"bench-secret-0123456789abcdef-0123456789";

/// A token like the ones `Issuer` mints: jti, sub, iat, exp, fid, kind.
fn token() -> String {
    let now = revoke_core::now_secs();
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

fn full_set() -> RevocationSet {
    let set = RevocationSet::new();
    for _ in 0..1_000_000 {
        set.revoke_jti(&uuid::Uuid::new_v4().to_string(), 4_000_000_000);
    }
    set
}

fn guard_work(verifier: &Verifier, set: &RevocationSet, header: &str) -> Option<Claims<NoExtra>> {
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

fn bench(c: &mut Criterion) {
    let token = token();
    let header = format!("Bearer {token}");
    let verifier = Verifier::hs256(SECRET);
    let uncached = Verifier::new(&VerifierConfig {
        secret: Some(String::from_utf8(SECRET.to_vec()).expect("utf-8")),
        verified_cache: 0,
        ..VerifierConfig::default()
    })
    .expect("verifier");
    let key = DecodingKey::from_secret(SECRET).expect("key");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 30;
    let full = full_set();
    let empty = RevocationSet::new();
    assert!(guard_work(&verifier, &full, &header).is_some());
    assert!(guard_work(&uncached, &full, &header).is_some());
    assert!(jsonwebtoken::decode::<Claims<NoExtra>>(&token, &key, &validation).is_ok());

    let mut g = c.benchmark_group("guard_hs256");
    g.bench_function("decode_alone", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims<NoExtra>>(black_box(token.as_str()), &key, &validation)
                .ok()
        })
    });
    g.bench_function("guard", |b| {
        b.iter(|| guard_work(&verifier, &full, black_box(header.as_str())))
    });
    g.bench_function("guard_empty_set", |b| {
        b.iter(|| guard_work(&verifier, &empty, black_box(header.as_str())))
    });
    g.bench_function("verify_only", |b| {
        b.iter(|| verifier.verify::<NoExtra>(black_box(token.as_str())).ok())
    });
    g.bench_function("guard_uncached", |b| {
        b.iter(|| guard_work(&uncached, &full, black_box(header.as_str())))
    });
    g.bench_function("verify_uncached", |b| {
        b.iter(|| uncached.verify::<NoExtra>(black_box(token.as_str())).ok())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
