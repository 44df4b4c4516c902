//! Test databases for the Rocket-level tests: a temporary SQLite file, or a private schema
//! on the test PostgreSQL (`REVOKE_TEST_PG_URL`), and the figment that points an app at one.
//! Under `CI` a missing PostgreSQL server fails the test instead of skipping it.
#![forbid(unsafe_code)]
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use rocket::figment::Figment;

/// Default URL of the test PostgreSQL server.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One isolated database. Every app built on it opens its own pool, like another process.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        base: String,
        schema: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("revoke.db").display()
        );
        TestDb::Sqlite { _dir: dir, url }
    }

    /// A fresh schema on the test server. Without a server: panics under CI, otherwise
    /// returns `None` so a developer without PostgreSQL can still run the rest.
    pub async fn postgres() -> Option<Self> {
        let base = std::env::var("REVOKE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
        let admin = match sqlx::PgPool::connect(&base).await {
            Ok(p) => p,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL at {base} is required under CI: {e}");
                }
                eprintln!("skipping PostgreSQL test: {base}: {e}");
                return None;
            }
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        Some(TestDb::Postgres { base, schema })
    }

    /// The URL `rocket_db_pools` connects to: the schema is selected with a `search_path`
    /// connection option, so every pooled connection (and the LISTEN one) uses it.
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { url, .. } => url.clone(),
            TestDb::Postgres { base, schema } => {
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}options=-csearch_path%3D{schema}")
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// Rocket's defaults (not the demo's Rocket.toml), this database as `revoke`, quiet logs.
    pub fn figment(&self) -> Figment {
        Figment::from(rocket::Config::debug_default())
            .merge(("log_level", "off"))
            .merge(("databases.revoke.url", self.url()))
            .merge(("databases.revoke.max_connections", 4))
    }

    pub async fn cleanup(self) {
        if let TestDb::Postgres { base, schema } = &self {
            if let Ok(p) = sqlx::PgPool::connect(base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&p)
                    .await;
                p.close().await;
            }
        }
    }
}

/// Runs one async test body against SQLite and PostgreSQL, as `sqlite::NAME` /
/// `postgres::NAME`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[rocket::async_test]
                async fn $name() {
                    let db = $crate::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[rocket::async_test]
                async fn $name() {
                    let Some(db) = $crate::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

/// Waits up to `limit` for `f` to hold, polling every 10 ms.
pub async fn eventually<F, Fut>(limit: std::time::Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if f().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        rocket::tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
