//! Revocations scoped by issuer: subject "42" at one identity provider is not subject "42" at
//! another. Every body runs on SQLite and PostgreSQL, through the database and back (a second
//! engine loads what the first wrote, a third follows it through the event log).
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use rocket_revoke_core::store::{EventQuery, Rotation, Store, TokenRecord};
use rocket_revoke_core::{
    Engine, EngineConfig, Revocation, RevokeRequest, Scope, TokenKind, TokenRef,
};
use std::sync::Arc;

both_backends!(
    a_scoped_subject_revocation_covers_only_its_issuer,
    unscoped_revocations_cover_every_issuer_as_before,
    scoped_and_unscoped_revocations_of_one_key_are_restored_apart,
    an_issuers_global_cut_off_spares_the_other_issuers,
    rotation_sees_revocations_scoped_to_the_tokens_issuer,
);

const A: &str = "https://a.example";
const B: &str = "https://b.example";

fn fast() -> EngineConfig {
    EngineConfig {
        poll_interval_ms: 20,
        ..EngineConfig::default()
    }
}

fn tok<'a>(iss: Option<&'a str>, sub: &'a str, jti: &'a str, iat: i64) -> TokenRef<'a> {
    TokenRef {
        jti: Some(jti),
        sub: Some(sub),
        fid: Some("fam-1"),
        iat: Some(iat),
        iss,
    }
}

/// Engines that see what `writer` wrote: one loaded from the database afterwards, one that
/// was running before and followed the event log.
async fn readers(db: &TestDb, follower: &Engine) -> Vec<Engine> {
    follower.sync_now().await.unwrap();
    let loaded = Engine::new(db.store().await, fast()).await.unwrap();
    vec![loaded, follower.clone()]
}

async fn a_scoped_subject_revocation_covers_only_its_issuer(db: &TestDb) {
    let writer = Engine::new(db.store().await, fast()).await.unwrap();
    let follower = Engine::new(db.store().await, fast()).await.unwrap();
    let now = writer.now_secs();
    let event = writer
        .revoke(RevokeRequest::subject("42").issuer(A))
        .await
        .unwrap()
        .expect("written");
    assert_eq!(event.issuer.as_deref(), Some(A));
    for e in std::iter::once(writer.clone()).chain(readers(db, &follower).await) {
        assert_eq!(
            e.check(&tok(Some(A), "42", "j1", now)),
            Some(Scope::Subject)
        );
        assert_eq!(
            e.check(&tok(Some(B), "42", "j2", now)),
            None,
            "B's 42 is someone else"
        );
        assert_eq!(
            e.check(&tok(None, "42", "j3", now)),
            None,
            "no iss: not A's token"
        );
        assert_eq!(e.check(&tok(Some(A), "43", "j4", now)), None);
        // A later token of A's 42 is not covered by the cut-off.
        assert_eq!(e.check(&tok(Some(A), "42", "j5", now + 5)), None);
    }
    // The audit trail says whose subject it was.
    let events = writer
        .store()
        .events(&EventQuery {
            key: Some("42".into()),
            issuer: Some(A.into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].issuer.as_deref(), Some(A));
}

async fn unscoped_revocations_cover_every_issuer_as_before(db: &TestDb) {
    let writer = Engine::new(db.store().await, fast()).await.unwrap();
    let follower = Engine::new(db.store().await, fast()).await.unwrap();
    let now = writer.now_secs();
    let event = writer
        .revoke(RevokeRequest::subject("42"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.issuer, None);
    writer.revoke(RevokeRequest::jti("j9")).await.unwrap();
    // An empty issuer is no scope (the database's spelling of none).
    writer
        .revoke(RevokeRequest::family("fam-1").issuer(""))
        .await
        .unwrap();
    for e in std::iter::once(writer.clone()).chain(readers(db, &follower).await) {
        for iss in [Some(A), Some(B), None] {
            assert_eq!(e.check(&tok(iss, "42", "j1", now)), Some(Scope::Subject));
            assert_eq!(e.check(&tok(iss, "7", "j9", now)), Some(Scope::Family));
            let jti_only = TokenRef {
                jti: Some("j9"),
                iss,
                ..TokenRef::default()
            };
            assert_eq!(e.check(&jti_only), Some(Scope::Jti));
        }
    }
    let rows = writer.store().snapshot(now).await.unwrap().revocations;
    assert!(rows.iter().all(|r| r.issuer.is_none()), "{rows:?}");
}

async fn scoped_and_unscoped_revocations_of_one_key_are_restored_apart(db: &TestDb) {
    let writer = Engine::new(db.store().await, fast()).await.unwrap();
    let follower = Engine::new(db.store().await, fast()).await.unwrap();
    let now = writer.now_secs();
    for req in [
        RevokeRequest::jti("shared-jti").issuer(A),
        RevokeRequest::jti("shared-jti").issuer(B),
        RevokeRequest::jti("shared-jti"),
    ] {
        assert!(writer.revoke(req).await.unwrap().is_some(), "three rows");
    }
    // Again: each is already in force, nothing is written.
    assert!(writer
        .revoke(RevokeRequest::jti("shared-jti").issuer(A))
        .await
        .unwrap()
        .is_none());
    let lifted = writer
        .restore(Scope::Jti, "shared-jti", Some("mistake"), None)
        .await
        .unwrap()
        .expect("the unscoped row");
    assert_eq!(lifted.issuer, None);
    let t = |iss| TokenRef {
        jti: Some("shared-jti"),
        iat: Some(now),
        iss,
        ..TokenRef::default()
    };
    for e in std::iter::once(writer.clone()).chain(readers(db, &follower).await) {
        assert_eq!(e.check(&t(Some(A))), Some(Scope::Jti));
        assert_eq!(e.check(&t(Some(B))), Some(Scope::Jti));
        assert_eq!(e.check(&t(None)), None);
    }
    let lifted = writer
        .restore_scoped(Scope::Jti, Some(A), "shared-jti", None, None)
        .await
        .unwrap()
        .expect("A's row");
    assert_eq!(lifted.issuer.as_deref(), Some(A));
    assert!(writer
        .restore_scoped(Scope::Jti, Some(A), "shared-jti", None, None)
        .await
        .unwrap()
        .is_none());
    for e in std::iter::once(writer.clone()).chain(readers(db, &follower).await) {
        assert_eq!(e.check(&t(Some(A))), None);
        assert_eq!(e.check(&t(Some(B))), Some(Scope::Jti), "B's stays");
    }
}

async fn an_issuers_global_cut_off_spares_the_other_issuers(db: &TestDb) {
    let writer = Engine::new(db.store().await, fast()).await.unwrap();
    let follower = Engine::new(db.store().await, fast()).await.unwrap();
    let now = writer.now_secs();
    writer
        .revoke(RevokeRequest::global_before(now).issuer(B))
        .await
        .unwrap()
        .unwrap();
    for e in std::iter::once(writer.clone()).chain(readers(db, &follower).await) {
        assert_eq!(e.check(&tok(Some(B), "1", "j1", now)), Some(Scope::Global));
        assert_eq!(
            e.check(&tok(Some(B), "1", "j1", now + 1)),
            None,
            "later token"
        );
        assert_eq!(e.check(&tok(Some(A), "1", "j1", now)), None);
        assert_eq!(e.set().global_cutoff(), None, "not the set-wide switch");
    }
    let lifted = writer
        .restore_scoped(Scope::Global, Some(B), "", None, None)
        .await
        .unwrap();
    assert!(lifted.is_some());
    for e in readers(db, &follower).await {
        assert_eq!(e.check(&tok(Some(B), "1", "j1", now)), None);
    }
}

async fn rotation_sees_revocations_scoped_to_the_tokens_issuer(db: &TestDb) {
    let store: Arc<dyn Store> = db.store().await;
    let engine = Engine::new(Arc::clone(&store), fast()).await.unwrap();
    let now = engine.now_secs();
    let refresh = |jti: &str| TokenRecord {
        jti: jti.into(),
        sub: "42".into(),
        fid: Some(format!("fam-{jti}")),
        kind: TokenKind::Refresh,
        iat: now - 10,
        exp: now + 3600,
        label: None,
    };
    store
        .register(&[refresh("r-a"), refresh("r-b")])
        .await
        .unwrap();
    engine
        .revoke(RevokeRequest::subject("42").issuer(A))
        .await
        .unwrap();
    let on_reuse = |fid: &str| Revocation {
        scope: Scope::Family,
        key: fid.into(),
        issuer: None,
        cutoff: None,
        expires_at: Some(now + 7200),
        reason: None,
        actor: None,
        revoked_at: now,
    };
    // Inside the rotation's transaction: A's revocation covers A's refresh token...
    let got = store
        .rotate("r-a", Some(A), now, &[], &on_reuse("fam-r-a"))
        .await
        .unwrap();
    assert!(matches!(got, Rotation::Revoked(Scope::Subject)), "{got:?}");
    // ...and not B's 42.
    let got = store
        .rotate("r-b", Some(B), now, &[], &on_reuse("fam-r-b"))
        .await
        .unwrap();
    assert!(matches!(got, Rotation::Rotated), "{got:?}");
}

/// The first three migrations, as a database of the previous release has them.
fn previous_release_migrations(backend: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in &files[..3] {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    dir
}

/// Rows written by the previous schema, then the migration: every row is carried over as an
/// unscoped revocation and still revokes, its history is still found by key, and a scoped
/// row of the same key can be added beside it.
async fn check_carried_over(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    let engine = Engine::new(Arc::clone(&store), fast()).await.unwrap();
    let now = engine.now_secs();
    assert_eq!(
        engine.check(&tok(Some(A), "legacy-sub", "x", now - 100)),
        Some(Scope::Subject)
    );
    let jti = TokenRef {
        jti: Some("legacy-jti"),
        iss: Some(B),
        ..TokenRef::default()
    };
    assert_eq!(engine.check(&jti), Some(Scope::Jti));
    let history = store
        .events(&EventQuery {
            key: Some("legacy-jti".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].issuer, None);
    assert!(engine
        .revoke(RevokeRequest::jti("legacy-jti").issuer(A))
        .await
        .unwrap()
        .is_some());
    let rows = store.snapshot(now).await.unwrap().revocations;
    assert_eq!(rows.len(), 3, "{rows:?}");
}

const LEGACY_ROWS: &str = "INSERT INTO revoke_revocations \
     (scope, key, cutoff, expires_at, reason, actor, revoked_at) VALUES \
     ('subject', 'legacy-sub', 4000000000, 4100000000, 'old', 'ops', 1), \
     ('jti', 'legacy-jti', NULL, 4100000000, NULL, NULL, 1)";
const LEGACY_EVENT: &str = "INSERT INTO revoke_events \
     (at_ms, kind, scope, key, cutoff, expires_at, reason, actor) VALUES \
     (1000, 'revoke', 'jti', 'legacy-jti', NULL, 4100000000, NULL, NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_of_the_previous_schema_are_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let old = previous_release_migrations("sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(LEGACY_ROWS).execute(&pool).await.unwrap();
    sqlx::query(LEGACY_EVENT).execute(&pool).await.unwrap();
    pool.close().await;
    let store = rocket_revoke_core::store::SqliteStore::connect(&url)
        .await
        .unwrap();
    check_carried_over(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_of_the_previous_schema_are_carried_over() {
    use std::str::FromStr;
    let url = std::env::var("REVOKE_TEST_PG_URL").unwrap_or_else(|_| common::DEFAULT_PG_URL.into());
    let Ok(admin) = sqlx::PgPool::connect(&url).await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL is required under CI"
        );
        return;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let opts = sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .unwrap();
    let old = previous_release_migrations("postgres");
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(LEGACY_ROWS).execute(&pool).await.unwrap();
    sqlx::query(LEGACY_EVENT).execute(&pool).await.unwrap();
    check_carried_over(Arc::new(rocket_revoke_core::store::PgStore::new(pool))).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
