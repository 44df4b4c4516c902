//! Criterion benchmarks of `RevocationSet::check` at 1,000,000 revoked UUID `jti`s.
//!
//! Honesty rules followed here:
//! * keys are random v4 UUIDs; lookups walk pools of 2^18 pre-generated keys (9.4 MB of key
//!   text, far beyond L1/L2) so neither the keys nor the table lines they hit stay cached;
//! * miss keys are fresh random UUIDs, verified absent before measuring;
//! * the multi-threaded figure runs two reader threads while a third thread really inserts
//!   10,000 new revocations per second (paced by the clock, rate printed at the end), which also
//!   makes the table grow and swap during the run.
//!
//! Run: `cargo bench -p rocket-revoke-core --bench set`
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rocket_revoke_core::{RevocationSet, Scope, TokenRef};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const REVOKED: usize = 1_000_000;
const POOL: usize = 1 << 18;
const EXP: i64 = 4_000_000_000;

fn random_uuid(rng: &mut impl Rng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

/// `n` hyphenated UUIDs concatenated into one string (36 bytes each).
struct KeyPool(String);

impl KeyPool {
    fn new(ids: impl Iterator<Item = uuid::Uuid>) -> Self {
        let mut s = String::with_capacity(POOL * 36);
        for id in ids {
            s.push_str(
                id.hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer()),
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
    set: Arc<RevocationSet>,
    hits: KeyPool,
    misses: KeyPool,
    /// Half hits, half misses, shuffled.
    mixed: KeyPool,
    /// POOL random user names, 11 bytes each, back to back (like `KeyPool`, so that reading
    /// the probe key costs a sequential access, as for a just-decoded token).
    subs: String,
    fids: KeyPool,
}

const SUB_LEN: usize = 11;

impl Fixture {
    fn sub(&self, i: usize) -> &str {
        let i = i & (POOL - 1);
        &self.subs[i * SUB_LEN..(i + 1) * SUB_LEN]
    }
}

fn fixture() -> Fixture {
    let mut rng = StdRng::seed_from_u64(0x5EED);
    let set = RevocationSet::new();
    let mut revoked = Vec::with_capacity(REVOKED);
    let mut buf = uuid::Uuid::encode_buffer();
    for _ in 0..REVOKED {
        let id = random_uuid(&mut rng);
        set.revoke_jti(id.hyphenated().encode_lower(&mut buf), EXP);
        revoked.push(id);
    }
    let hit_ids: Vec<uuid::Uuid> = (0..POOL)
        .map(|_| revoked[rng.gen_range(0..REVOKED)])
        .collect();
    let miss_ids: Vec<uuid::Uuid> = (0..POOL).map(|_| random_uuid(&mut rng)).collect();
    let mixed_ids: Vec<uuid::Uuid> = (0..POOL)
        .map(|i| {
            if rng.gen_bool(0.5) {
                hit_ids[i]
            } else {
                miss_ids[(i * 7 + 3) % POOL]
            }
        })
        .collect();
    let hits = KeyPool::new(hit_ids.into_iter());
    let misses = KeyPool::new(miss_ids.into_iter());
    let mixed = KeyPool::new(mixed_ids.into_iter());
    for i in 0..POOL {
        assert!(set.contains_jti(hits.get(i)));
        assert!(!set.contains_jti(misses.get(i)), "miss key {i} is revoked");
    }
    // Full-token fixture: 100,000 users, 10,000 of them with an old subject cut-off, and
    // 10,000 revoked families; the probed tokens are issued after every cut-off and carry
    // unrevoked families, so every scope is looked up and every check misses.
    let users: Vec<String> = (0..100_000).map(|i| format!("user-{i:06}")).collect();
    for u in users.iter().step_by(10) {
        set.revoke_subject(u, 1_000, Some(EXP));
    }
    for _ in 0..10_000 {
        set.revoke_family(
            random_uuid(&mut rng).hyphenated().encode_lower(&mut buf),
            Some(EXP),
        );
    }
    let fids = KeyPool::new((0..POOL).map(|_| random_uuid(&mut rng)));
    let mut subs = String::with_capacity(POOL * SUB_LEN);
    for _ in 0..POOL {
        subs.push_str(&users[rng.gen_range(0..users.len())]);
    }
    let counts = set.len();
    let per = set.uuid_table_bytes() as f64 / counts.jtis as f64;
    eprintln!(
        "fixture: {counts:?}, uuid table {per:.1} B/jti, heap {} B",
        set.heap_bytes()
    );
    Fixture {
        set: Arc::new(set),
        hits,
        misses,
        mixed,
        subs,
        fids,
    }
}

fn jti_token(j: &str) -> TokenRef<'_> {
    TokenRef {
        jti: Some(j),
        ..TokenRef::default()
    }
}

fn single_thread(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("check_1M_uuid");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));

    let mut i = 0_usize;
    g.bench_function("miss", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            f.set.check(black_box(&jti_token(f.misses.get(i))))
        })
    });
    let mut i = 0_usize;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            f.set.check(black_box(&jti_token(f.hits.get(i))))
        })
    });
    let mut i = 0_usize;
    g.bench_function("mixed_50_50", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            f.set.check(black_box(&jti_token(f.mixed.get(i))))
        })
    });
    let mut i = 0_usize;
    g.bench_function("miss_full_token", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let tok = TokenRef {
                jti: Some(f.misses.get(i)),
                sub: Some(f.sub(i)),
                fid: Some(f.fids.get(i)),
                iat: Some(2_000),
                // As real tokens carry one; no scoped entry exists, so no extra lookup.
                iss: Some("https://issuer.example"),
            };
            f.set.check(black_box(&tok))
        })
    });
    g.finish();
}

/// Inserts 10,000 fresh revocations per second until `stop`, paced against the clock.
fn spawn_writer(
    set: Arc<RevocationSet>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> thread::JoinHandle<f64> {
    thread::spawn(move || {
        const RATE: u64 = 10_000;
        let mut rng = StdRng::seed_from_u64(0x7717);
        let mut buf = uuid::Uuid::encode_buffer();
        let start = Instant::now();
        let mut n = 0_u64;
        while !stop.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * RATE as f64) as u64;
            while n < due {
                let id = random_uuid(&mut rng);
                set.revoke_jti(id.hyphenated().encode_lower(&mut buf), EXP);
                n += 1;
            }
            done.store(n, Ordering::Relaxed);
            thread::sleep(Duration::from_micros(500));
        }
        n as f64 / start.elapsed().as_secs_f64()
    })
}

fn two_readers_with_writer(c: &mut Criterion, f: &Fixture) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let before = f.set.len().jtis;
    let writer = spawn_writer(Arc::clone(&f.set), Arc::clone(&stop), Arc::clone(&done));

    let mut g = c.benchmark_group("check_1M_uuid_2_readers_writer_10k_per_s");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));
    g.sample_size(30);
    g.throughput(Throughput::Elements(1));
    for (name, pool) in [("mixed_50_50", &f.mixed), ("miss", &f.misses)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(2) as usize;
                let start = Instant::now();
                thread::scope(|s| {
                    for r in 0..2_usize {
                        s.spawn(move || {
                            let mut revoked = 0_usize;
                            let base = r * (POOL / 2);
                            for i in 0..per_thread {
                                if f.set.check(&jti_token(pool.get(base + i))) == Some(Scope::Jti) {
                                    revoked += 1;
                                }
                            }
                            black_box(revoked)
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let rate = writer.join().unwrap_or(0.0);
    eprintln!(
        "writer: {} revocations inserted at {rate:.0}/s during the 2-reader runs; jtis {} -> {}",
        done.load(Ordering::Relaxed),
        before,
        f.set.len().jtis
    );
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    single_thread(c, &f);
    two_readers_with_writer(c, &f);
}

criterion_group!(set_benches, benches);
criterion_main!(set_benches);
