//! Test databases: a temporary SQLite file, or a private schema on the test PostgreSQL.
#![allow(dead_code, missing_docs)]

use rocket_revoke_core::store::{PgStore, SqliteStore, Store};
use std::str::FromStr;
use std::sync::Arc;

/// Default URL of the test PostgreSQL server.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One isolated database; `store()` opens a new pool on it each time, like another process.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("revoke.db").display());
        let db = TestDb::Sqlite { _dir: dir, url };
        db.store().await.migrate().await.expect("migrate");
        db
    }

    /// A fresh schema on the test server. Without a server: panics under CI, otherwise
    /// returns `None` so a developer without PostgreSQL can still run the rest.
    pub async fn postgres() -> Option<Self> {
        let url = std::env::var("REVOKE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
        let admin = match sqlx::PgPool::connect(&url).await {
            Ok(p) => p,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL at {url} is required under CI: {e}");
                }
                eprintln!("skipping PostgreSQL test: {url}: {e}");
                return None;
            }
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        let db = TestDb::Postgres { url, schema };
        db.store().await.migrate().await.expect("migrate");
        Some(db)
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        match self {
            TestDb::Sqlite { url, .. } => {
                Arc::new(SqliteStore::connect(url).await.expect("sqlite"))
            }
            TestDb::Postgres { url, schema } => {
                // Test data need not survive a power cut: skip the commit fsync.
                let opts = sqlx::postgres::PgConnectOptions::from_str(url)
                    .expect("pg url")
                    .options([
                        ("search_path", schema.as_str()),
                        ("synchronous_commit", "off"),
                    ]);
                // Small pools: many tests run at once against one server.
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(opts)
                    .await
                    .expect("postgres");
                Arc::new(PgStore::new(pool))
            }
        }
    }

    pub async fn cleanup(self) {
        if let TestDb::Postgres { url, schema } = &self {
            if let Ok(p) = sqlx::PgPool::connect(url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&p)
                    .await;
            }
        }
    }
}

/// Runs one async test body against SQLite and PostgreSQL, as `sqlite_NAME` / `postgres_NAME`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::common::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}
