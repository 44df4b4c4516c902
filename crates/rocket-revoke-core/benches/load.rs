//! Initial load of 1,000,000 revocations into a fresh engine, from SQLite and PostgreSQL.
//!
//! `cargo bench -p rocket-revoke-core --bench load`. Seeds once (a SQLite file in the system temp
//! directory, a `bench_load_1m` schema on `REVOKE_TEST_PG_URL`) and reuses the data.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use rocket_revoke_core::store::{PgStore, SqliteStore, Store};
use rocket_revoke_core::{Engine, EngineConfig};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const N: i64 = 1_000_000;

/// A UUID-shaped random jti, built in SQL so seeding needs no round trips.
const SQLITE_SEED: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
    INSERT INTO revoke_revocations (scope, key, cutoff, expires_at, reason, actor, revoked_at) \
    SELECT 'jti', lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' \
      || substr(h, 18, 3) || '-' || substr(h, 21, 12)), NULL, $2, 'bench', 'bench', $3 \
    FROM (SELECT hex(randomblob(16)) AS h FROM n)";

const PG_SEED: &str = "INSERT INTO revoke_revocations (scope, key, cutoff, expires_at, reason, actor, revoked_at) \
    SELECT 'jti', gen_random_uuid()::text, NULL, $2, 'bench', 'bench', $3 FROM generate_series(1, $1)";

async fn seeded_sqlite() -> Arc<dyn Store> {
    let path = std::env::temp_dir().join("revoke-bench-load-1m.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    seed(&store, SQLITE_SEED, |s| s.pool().clone()).await;
    Arc::new(store)
}

async fn seeded_pg() -> Option<Arc<dyn Store>> {
    let url = std::env::var("REVOKE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = sqlx::PgPool::connect(&url).await.ok()?;
    sqlx::query("CREATE SCHEMA IF NOT EXISTS bench_load_1m")
        .execute(&admin)
        .await
        .unwrap();
    let opts = sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", "bench_load_1m")]);
    let store = PgStore::connect_with(opts).await.unwrap();
    store.migrate().await.unwrap();
    seed(&store, PG_SEED, |s| s.pool().clone()).await;
    Some(Arc::new(store))
}

async fn seed<S, DB>(store: &S, sql: &str, pool: impl Fn(&S) -> sqlx::Pool<DB>)
where
    S: Store,
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::database::HasArguments<'q>>::Arguments: sqlx::IntoArguments<'q, DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
{
    let have = store.stats(0).await.unwrap().revocations;
    if have >= N {
        return;
    }
    let far = rocket_revoke_core::now_secs() + 10 * 365 * 24 * 3600;
    eprintln!("seeding {N} revocations (once)...");
    sqlx::query(sql)
        .bind(N - have)
        .bind(far)
        .bind(rocket_revoke_core::now_secs())
        .execute(&pool(store))
        .await
        .unwrap();
}

fn load(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("initial_load_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let sqlite = rt.block_on(seeded_sqlite());
    g.bench_function("sqlite", |b| {
        b.iter(|| {
            let e = rt
                .block_on(Engine::new(sqlite.clone(), EngineConfig::default()))
                .unwrap();
            assert_eq!(e.set().len().jtis as i64, N);
        })
    });
    if let Some(pg) = rt.block_on(seeded_pg()) {
        g.bench_function("postgres", |b| {
            b.iter(|| {
                let e = rt
                    .block_on(Engine::new(pg.clone(), EngineConfig::default()))
                    .unwrap();
                assert_eq!(e.set().len().jtis as i64, N);
            })
        });
    } else {
        eprintln!("PostgreSQL unreachable: skipping the PostgreSQL load benchmark");
    }
    g.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
