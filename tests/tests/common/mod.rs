//! Shared by the end-to-end tests: the demo binary, and databases to run it on.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use revoke_tests::target_binary;

/// Default URL of the test PostgreSQL server.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The debug `revoke-demo` binary, built first when it is missing.
pub fn demo_binary() -> PathBuf {
    // Always ask cargo (a no-op when fresh): a stale binary would test old code.
    // `REVOKE_DEMO_PROFILE=release` (used by `cargo xtask soak`) picks the release build.
    let release = std::env::var("REVOKE_DEMO_PROFILE").as_deref() == Ok("release");
    let mut args = vec!["build", "-q", "-p", "revoke-demo"];
    if release {
        args.push("--release");
    }
    let status = Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(revoke_tests::workspace_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p revoke-demo failed");
    let binary = target_binary(if release { "release" } else { "debug" }, "revoke-demo");
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}

/// A database for demo processes: a temporary SQLite file or a private PostgreSQL schema.
pub enum Db {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        base: String,
        schema: String,
    },
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("revoke.db").display()
        );
        Db::Sqlite { _dir: dir, url }
    }

    /// A fresh schema; `None` without a server, except under `CI` where that panics.
    pub async fn postgres() -> Option<Db> {
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
        Some(Db::Postgres { base, schema })
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite { url, .. } => url.clone(),
            Db::Postgres { base, schema } => {
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}options=-csearch_path%3D{schema}")
            }
        }
    }

    pub async fn cleanup(self) {
        if let Db::Postgres { base, schema } = &self {
            if let Ok(p) = sqlx::PgPool::connect(base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&p)
                    .await;
                p.close().await;
            }
        }
    }
}
