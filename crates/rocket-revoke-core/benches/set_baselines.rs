//! Why the set has its own table and UUID parser, as numbers: the set's lookups at
//! 1,000,000 revoked UUID `jti`s against library sets holding the same keys, and its
//! parser against the `uuid` crate's.
//!
//! * `baseline_1M_uuid`: `RevocationSet::check` of a jti-only token, and the same keys in
//!   `hashbrown::HashSet<u128>` (foldhash; no synchronisation at all, so a floor for a
//!   lookup, not a design we could ship: writers would need a lock every reader takes, or a
//!   copy per insert) and in `papaya::HashSet<u128>` (a lock-free concurrent set, one guard
//!   per check as a request would take it). The libraries parse the `jti` with the set's
//!   parser, so the difference is the table.
//! * `parse_uuid`: the set's SWAR parser (`src/set/swar_uuid.rs`, compiled here as it is)
//!   against `uuid::Uuid::try_parse_ascii` with the checks that make it accept only what
//!   ours does (36 bytes, no upper case).
//!
//! A file of its own, not groups in `benches/set.rs`: in one binary, the extra code moved
//! that bench's `miss_full_token` by a third through code placement alone (the set's
//! `check` is inlined into the bench), which would have hidden real changes.
//! docs/BENCHMARKS.md has the figures.
//!
//! Run: `cargo bench -p rocket-revoke-core --bench set_baselines`
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rocket_revoke_core::{RevocationSet, TokenRef};
use std::time::Duration;

/// The set's own UUID parser, this very file (it has no `crate::` paths for that reason).
#[path = "../src/set/swar_uuid.rs"]
#[allow(dead_code, unused_imports, clippy::all)]
mod swar_uuid;

const REVOKED: usize = 1_000_000;
const POOL: usize = 1 << 18;

/// A copy of `benches/set.rs`'s pool rather than a shared module: changing that file's
/// code changes what it measures (see the crate doc above).
///
/// `POOL` hyphenated lower-case UUIDs back to back (36 bytes each), walked in order so the
/// probe keys themselves cost a sequential read (as for a just-decoded token) while the
/// table lines they hit stay cold.
struct KeyPool(String);

impl KeyPool {
    fn new(ids: impl Iterator<Item = u128>) -> Self {
        let mut s = String::with_capacity(POOL * 36);
        let mut buf = uuid::Uuid::encode_buffer();
        for id in ids {
            s.push_str(
                uuid::Uuid::from_u128(id)
                    .hyphenated()
                    .encode_lower(&mut buf),
            );
        }
        KeyPool(s)
    }

    #[inline]
    fn get(&self, i: usize) -> &str {
        let i = i & (POOL - 1);
        &self.0[i * 36..i * 36 + 36]
    }
}

struct Fixture {
    set: RevocationSet,
    hits: KeyPool,
    misses: KeyPool,
    revoked: Vec<u128>,
}

fn fixture() -> Fixture {
    let mut rng = StdRng::seed_from_u64(0xBA5E);
    let random = |rng: &mut StdRng| uuid::Builder::from_random_bytes(rng.gen()).into_uuid();
    let set = RevocationSet::new();
    let mut buf = uuid::Uuid::encode_buffer();
    let revoked: Vec<u128> = (0..REVOKED)
        .map(|_| {
            let id = random(&mut rng);
            set.revoke_jti(id.hyphenated().encode_lower(&mut buf), 4_000_000_000);
            id.as_u128()
        })
        .collect();
    let hits = KeyPool::new((0..POOL).map(|_| revoked[rng.gen_range(0..REVOKED)]));
    let misses = KeyPool::new((0..POOL).map(|_| random(&mut rng).as_u128()));
    for i in 0..POOL {
        assert!(set.contains_jti(hits.get(i)));
        assert!(!set.contains_jti(misses.get(i)), "miss key {i} is revoked");
    }
    Fixture {
        set,
        hits,
        misses,
        revoked,
    }
}

fn jti_token(j: &str) -> TokenRef<'_> {
    TokenRef {
        jti: Some(j),
        ..TokenRef::default()
    }
}

/// `uuid::Uuid::try_parse_ascii`, held to what the set's parser accepts: only the 36-byte
/// hyphenated lower-case form (the crate also takes upper case, and other lengths are its
/// other forms).
#[inline]
fn parse_with_uuid_crate(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || b.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    uuid::Uuid::try_parse_ascii(b).ok().map(|u| u.as_u128())
}

/// The set's lookups against two library sets holding the same 1M keys.
fn baselines(c: &mut Criterion, f: &Fixture) {
    let mut hb: hashbrown::HashSet<u128> = hashbrown::HashSet::with_capacity(f.revoked.len());
    hb.extend(f.revoked.iter().copied());
    let pap: papaya::HashSet<u128> = papaya::HashSet::with_capacity(f.revoked.len());
    {
        let pinned = pap.pin();
        for &k in &f.revoked {
            pinned.insert(k);
        }
    }
    // hashbrown's table: buckets (a power of two, at most 7/8 full) of 16 key bytes and one
    // control byte, plus 16 trailing control bytes.
    let buckets = (hb.capacity() * 8 / 7).next_power_of_two();
    eprintln!(
        "baseline: hashbrown {} buckets, {:.1} B/key (ours: {:.1} B/jti)",
        buckets,
        (buckets * 17 + 16) as f64 / hb.len() as f64,
        f.set.uuid_table_bytes() as f64 / f.set.len().jtis as f64,
    );
    for i in 0..POOL {
        let k = swar_uuid::parse_uuid(f.hits.get(i)).expect("hit keys are UUIDs");
        assert!(hb.contains(&k) && pap.pin().contains(&k));
        let k = swar_uuid::parse_uuid(f.misses.get(i)).expect("miss keys are UUIDs");
        assert!(!hb.contains(&k) && !pap.pin().contains(&k));
    }

    let mut g = c.benchmark_group("baseline_1M_uuid");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    for (name, pool) in [("miss", &f.misses), ("hit", &f.hits)] {
        let mut i = 0_usize;
        g.bench_function(format!("ours_{name}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                f.set.check(black_box(&jti_token(pool.get(i))))
            })
        });
        let mut i = 0_usize;
        g.bench_function(format!("hashbrown_{name}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                swar_uuid::parse_uuid(black_box(pool.get(i))).is_some_and(|k| hb.contains(&k))
            })
        });
        let mut i = 0_usize;
        g.bench_function(format!("papaya_{name}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                swar_uuid::parse_uuid(black_box(pool.get(i)))
                    .is_some_and(|k| pap.pin().contains(&k))
            })
        });
    }
    g.finish();
}

/// The set's UUID parser against the `uuid` crate's, on the same valid keys and on
/// near-misses (upper case, which both must refuse).
fn parsers(c: &mut Criterion, f: &Fixture) {
    let upper: Vec<String> = (0..1024).map(|i| f.hits.get(i).to_uppercase()).collect();
    for i in 0..POOL {
        let s = f.hits.get(i);
        assert_eq!(swar_uuid::parse_uuid(s), parse_with_uuid_crate(s));
    }
    for s in &upper {
        assert_eq!(swar_uuid::parse_uuid(s), None);
        assert_eq!(parse_with_uuid_crate(s), None);
    }

    let mut g = c.benchmark_group("parse_uuid");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let mut i = 0_usize;
    g.bench_function("swar_valid", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            swar_uuid::parse_uuid(black_box(f.hits.get(i)))
        })
    });
    let mut i = 0_usize;
    g.bench_function("uuid_crate_valid", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            parse_with_uuid_crate(black_box(f.hits.get(i)))
        })
    });
    let mut i = 0_usize;
    g.bench_function("swar_upper_case", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            swar_uuid::parse_uuid(black_box(&upper[i & 1023]))
        })
    });
    let mut i = 0_usize;
    g.bench_function("uuid_crate_upper_case", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            parse_with_uuid_crate(black_box(&upper[i & 1023]))
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    baselines(c, &f);
    parsers(c, &f);
}

criterion_group!(set_baselines, benches);
criterion_main!(set_baselines);
