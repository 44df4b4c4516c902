//! Data: seeding the large revocation set and token registry, and timing revokectl's
//! search query over it.

use std::time::Instant;

use anyhow::{ensure, Result};
use rocket_revoke_core::store::{ListQuery, Store};

use super::report::median;

pub(super) async fn seed_pg(pool: &sqlx::PgPool, n: u64) -> Result<()> {
    let t0 = Instant::now();
    sqlx::query(
        "INSERT INTO revoke_revocations (scope, key, expires_at, revoked_at)
         SELECT 'jti', gen_random_uuid()::text, extract(epoch from now())::bigint + 86400,
                extract(epoch from now())::bigint
         FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(n)?)
    .execute(pool)
    .await?;
    eprintln!(
        "seeded {n} revocations in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(super) async fn seed_registry_pg(pool: &sqlx::PgPool, n: u64) -> Result<()> {
    let t0 = Instant::now();
    sqlx::query(
        "INSERT INTO revoke_tokens (jti, sub, fid, kind, iat, exp, label)
         SELECT gen_random_uuid()::text, 'user' || (i % 50000), gen_random_uuid()::text,
                CASE WHEN i % 2 = 0 THEN 'access' ELSE 'refresh' END,
                extract(epoch from now())::bigint - i, extract(epoch from now())::bigint - i + 86400,
                'device ' || (i % 97)
         FROM generate_series(1, $1) AS i",
    )
    .bind(i64::try_from(n)?)
    .execute(pool)
    .await?;
    // What autovacuum does soon after a bulk load (statistics, visibility map, hint bits),
    // done now so that the searches measure the table's steady state and not the vacuum.
    sqlx::query("VACUUM (ANALYZE) revoke_tokens")
        .execute(pool)
        .await?;
    eprintln!(
        "seeded {n} registry rows (PostgreSQL) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(super) async fn seed_registry_sqlite(pool: &sqlx::SqlitePool, n: u64) -> Result<()> {
    let t0 = Instant::now();
    sqlx::query(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1)
         INSERT INTO revoke_tokens (jti, sub, fid, kind, iat, exp, label)
         SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
                || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
                'user' || (i % 50000), lower(hex(randomblob(16))),
                CASE WHEN i % 2 = 0 THEN 'access' ELSE 'refresh' END,
                unixepoch() - i, unixepoch() - i + 86400, 'device ' || (i % 97)
         FROM c",
    )
    .bind(i64::try_from(n)?)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    eprintln!(
        "seeded {n} registry rows (SQLite) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// First page (100 rows, as revokectl) of searches, 5 runs each after one warm-up; returns
/// `(what, median ms)`.
pub(super) async fn time_search(store: &dyn Store) -> Result<Vec<(String, f64)>> {
    let now = rocket_revoke_core::now_secs();
    let queries: Vec<(&str, ListQuery)> = vec![
        (
            "no filter (newest first)",
            ListQuery {
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "text \"user4242\" (subject prefix)",
            ListQuery {
                text: Some("user4242".into()),
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "text \"device 7\" (label prefix)",
            ListQuery {
                text: Some("device 7".into()),
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "text \"ab\" (jti prefix)",
            ListQuery {
                text: Some("ab".into()),
                limit: 100,
                ..ListQuery::default()
            },
        ),
    ];
    let mut out = Vec::new();
    for (what, q) in queries {
        store.list(&q, now).await?;
        let mut times = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            let rows = store.list(&q, now).await?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            ensure!(!rows.is_empty(), "search {what} found nothing");
        }
        out.push((what.to_owned(), median(times)));
    }
    Ok(out)
}
