//! SQLite durability: every transaction that writes revocations (batches, restores,
//! rotations, all through the store's one write runner) commits with `synchronous=FULL`, so
//! an acknowledged revocation survives an OS crash or power loss, not only a process crash.
//! In WAL mode `NORMAL` syncs the WAL only at checkpoints and can lose the last commits.

use rocket_revoke_core::store::{SqliteStore, Store};
use rocket_revoke_core::{Revocation, Scope};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Instant;

/// `PRAGMA synchronous` answers 2 for FULL (1 is NORMAL).
const FULL: i64 = 2;
const NORMAL: i64 = 1;

async fn synchronous(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .expect("PRAGMA synchronous")
}

fn revocation(key: &str) -> Revocation {
    Revocation {
        scope: Scope::Subject,
        key: key.to_owned(),
        issuer: None,
        cutoff: Some(1_000),
        expires_at: None,
        reason: Some("durability test".into()),
        actor: None,
        revoked_at: 1_000,
    }
}

fn file_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display())
}

#[tokio::test]
async fn connect_opens_every_connection_with_synchronous_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::connect(&file_url(&dir))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store.revoke(&[revocation("alice")]).await.expect("revoke");
    // Hold several connections at once so each one is a different connection of the pool.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = store.pool().acquire().await.expect("acquire");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .expect("PRAGMA synchronous");
        assert_eq!(sync, FULL, "a connection of SqliteStore::connect");
        held.push(conn);
    }
}

/// A pool made elsewhere (rocket_db_pools, an app's own options) may run NORMAL: the write
/// runner raises the connection to FULL before it commits revocations.
#[tokio::test]
async fn revocation_writes_run_with_synchronous_full_on_a_pool_opened_normal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SqliteConnectOptions::from_str(&file_url(&dir))
        .expect("url")
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    // One connection, so the PRAGMA reads see the connection the writes ran on.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .expect("pool");
    let store = SqliteStore::new(pool.clone()).await.expect("store");
    store.migrate().await.expect("migrate");
    assert_eq!(synchronous(&pool).await, NORMAL, "the pool as opened");

    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&pool)
        .await
        .expect("reset");
    store.revoke(&[revocation("alice")]).await.expect("revoke");
    assert_eq!(synchronous(&pool).await, FULL, "after a revocation batch");

    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&pool)
        .await
        .expect("reset");
    let restored = store
        .restore(Scope::Subject, None, "alice", None, None)
        .await
        .expect("restore");
    assert!(restored.is_some());
    assert_eq!(synchronous(&pool).await, FULL, "after a restore");
}

/// The cost of FULL, one committed revocation at a time (no group commit): run it with
/// `cargo test --release -p rocket-revoke-core --test durability -- --ignored --nocapture`, before
/// and after a change to the write path (docs/BENCHMARKS.md has the figures).
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn sequential_revocation_commits_per_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::connect(&file_url(&dir))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let mut conn = store.pool().acquire().await.expect("acquire");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .expect("PRAGMA synchronous");
    drop(conn);
    for (label, batch) in [("1 row", 1_usize), ("64 rows", 64)] {
        let commits = if batch == 1 { 2_000 } else { 200 };
        let started = Instant::now();
        for i in 0..commits {
            let revs: Vec<_> = (0..batch)
                .map(|j| revocation(&format!("{label}-{i}-{j}")))
                .collect();
            store.revoke(&revs).await.expect("revoke");
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "synchronous={sync} batch {label}: {commits} commits in {secs:.2} s = {:.0} commits/s, {:.0} revocations/s",
            commits as f64 / secs,
            (commits * batch) as f64 / secs
        );
    }
}
