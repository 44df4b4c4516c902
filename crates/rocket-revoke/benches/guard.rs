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
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rocket_revoke_core::{Claims, NoExtra, RevocationSet};

mod support;
use support::{guard_work, revoked_set, token, verifiers, SECRET};

fn bench(c: &mut Criterion) {
    let token = token();
    let header = format!("Bearer {token}");
    let (verifier, uncached) = verifiers();
    let key = DecodingKey::from_secret(SECRET).expect("key");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 30;
    let full = revoked_set(1_000_000);
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
