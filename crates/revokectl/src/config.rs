//! Where the database is: `--database-url`, or the `revoke` database of Rocket.toml (with
//! `ROCKET_DATABASES` / `ROCKET_CONFIG` / `ROCKET_PROFILE` honoured as Rocket does), and
//! opening it through rocket-revoke-core; and the lifetime bounds of the same file's `[revoke]`
//! table, the fallback when no app has recorded any in the database.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use rocket_revoke_core::store::{PgStore, SqliteStore, Store};
use rocket_revoke_core::EngineConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A start-up problem: reported as one line on stderr with exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// Rocket's figment as revokectl reads it: the TOML file (`config`, else `$ROCKET_CONFIG`,
/// else `./Rocket.toml`; an explicit `config` must exist), `ROCKET_*` variables over it,
/// `ROCKET_PROFILE` (default `default`) selected. Returns it with the file and profile.
fn figment(config: Option<&Path>) -> Result<(Figment, PathBuf, String), ConfigError> {
    let path: PathBuf = match config {
        Some(p) => {
            if !p.is_file() {
                return Err(err(format!("config file {} not found", p.display())));
            }
            p.to_owned()
        }
        None => std::env::var_os("ROCKET_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("Rocket.toml")),
    };
    let profile = std::env::var("ROCKET_PROFILE").unwrap_or_else(|_| "default".into());
    let figment = Figment::from(Toml::file(&path).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(profile.as_str());
    Ok((figment, path, profile))
}

/// The database URL: the flag (or `REVOKECTL_DATABASE_URL`) if given, else
/// `REVOKE_DATABASE_URL`, else `databases.revoke.url` from Rocket's figment.
pub fn resolve_url(flag: Option<&str>, config: Option<&Path>) -> Result<String, ConfigError> {
    if let Some(url) = flag {
        return Ok(url.to_owned());
    }
    // Keeps the URL (and its password) out of argv, where every local user can read it.
    if let Some(url) = std::env::var("REVOKE_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Ok(url);
    }
    let (figment, path, profile) = figment(config)?;
    match figment.extract_inner::<String>("databases.revoke.url") {
        Ok(url) => Ok(url),
        Err(e) if e.missing() => Err(err(format!(
            "no database URL: pass --database-url or set [{profile}.databases.revoke].url in {}",
            path.display()
        ))),
        Err(e) => Err(err(format!("bad configuration in {}: {e}", path.display()))),
    }
}

/// The `[revoke]` keys revokectl reads, with the [`EngineConfig`] field each sets.
const BOUND_KEYS: [&str; 4] = [
    "max_token_ttl_secs",
    "leeway",
    "clock_skew_secs",
    "retention_secs",
];

/// The engine settings revokectl falls back on when no app has recorded lifetime bounds in
/// the database: `max_token_ttl_secs`, `leeway`, `clock_skew_secs` and `retention_secs` of
/// the `[revoke]` table of the same figment as the database URL (`ROCKET_REVOKE` honoured),
/// each missing one at its default. A missing default `Rocket.toml` gives the defaults; a
/// value of the wrong type or out of range is an error naming the key and the file.
///
/// [`EngineConfig::publish_bounds`] and [`EngineConfig::prune_database`] are off: revokectl
/// reads the bounds the apps recorded and never records its own.
pub fn engine_config(config: Option<&Path>) -> Result<EngineConfig, ConfigError> {
    let (figment, path, profile) = figment(config)?;
    let mut out = EngineConfig {
        publish_bounds: false,
        prune_database: false,
        ..EngineConfig::default()
    };
    for key in BOUND_KEYS {
        let value = match figment.extract_inner::<i64>(&format!("revoke.{key}")) {
            Ok(v) => v,
            Err(e) if e.missing() => continue,
            Err(e) => {
                return Err(err(format!(
                    "bad configuration in {}: [{profile}.revoke] {key}: {e}",
                    path.display()
                )))
            }
        };
        let field = match key {
            "max_token_ttl_secs" => &mut out.max_token_ttl_secs,
            "leeway" => &mut out.leeway_secs,
            "clock_skew_secs" => &mut out.clock_skew_secs,
            _ => &mut out.retention_secs,
        };
        *field = value;
    }
    out.bounds().validate().map_err(|e| {
        err(format!(
            "bad configuration in {}: [{profile}.revoke] {e}",
            path.display()
        ))
    })?;
    Ok(out)
}

/// What a URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (`None` for an in-memory database).
    Sqlite(Option<PathBuf>),
    /// A PostgreSQL server.
    Postgres,
}

/// Classifies a URL without connecting.
pub fn target(url: &str) -> Result<Target, ConfigError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" || params.contains("mode=memory") {
            return Ok(Target::Sqlite(None));
        }
        return Ok(Target::Sqlite(Some(PathBuf::from(path))));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres);
    }
    Err(err(format!(
        "unsupported database URL {:?}: expected sqlite://PATH or postgres://HOST/DB",
        redact(url)
    )))
}

/// The URL with any password replaced by `***`, safe to show.
pub fn redact(url: &str) -> String {
    // The userinfo password masked (also when there is no userinfo at all), and the query
    // left out: `?password=` is as secret as a userinfo, and the rest is noise here.
    let masked = rocket_revoke_core::redact_url(url);
    match masked.split_once('?') {
        Some((head, _)) => head.to_owned(),
        None => masked,
    }
}

/// A short label for the status bar: `sqlite revoke.db`, `postgres 127.0.0.1:5432/test`.
pub fn describe(url: &str) -> String {
    match target(url) {
        Ok(Target::Sqlite(Some(p))) => format!("sqlite {}", p.display()),
        Ok(Target::Sqlite(None)) => "sqlite (memory)".into(),
        Ok(Target::Postgres) => {
            let r = redact(url);
            let rest = r.split_once("://").map(|(_, r)| r).unwrap_or(&r);
            let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            format!("postgres {}", host.split('?').next().unwrap_or(host))
        }
        Err(_) => "unknown".into(),
    }
}

/// Opens the store. Without `create`, a SQLite file must already exist.
pub async fn open(url: &str, create: bool) -> Result<Arc<dyn Store>, ConfigError> {
    match target(url)? {
        Target::Sqlite(path) => {
            if let Some(p) = &path {
                if !create && !p.is_file() {
                    return Err(err(format!(
                        "database file {} does not exist (run `revokectl migrate` to create it)",
                        p.display()
                    )));
                }
            }
            let store = SqliteStore::connect(url)
                .await
                .map_err(|e| err(format!("cannot open {}: {e}", redact(url))))?;
            Ok(Arc::new(store))
        }
        Target::Postgres => {
            let store = PgStore::connect(url)
                .await
                .map_err(|e| err(format!("cannot connect to {}: {e}", redact(url))))?;
            Ok(Arc::new(store))
        }
    }
}

/// Turns an error from the first query into a start-up error with a hint.
pub fn not_ready(url: &str, e: &rocket_revoke_core::Error) -> ConfigError {
    let msg = e.to_string();
    let hint = if msg.contains("no such table") || msg.contains("does not exist") {
        " (is the schema migrated? run `revokectl migrate`)"
    } else {
        ""
    };
    err(format!("cannot read {}: {msg}{hint}", redact(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified() {
        assert_eq!(
            target("sqlite://revoke.db").ok(),
            Some(Target::Sqlite(Some("revoke.db".into())))
        );
        assert_eq!(
            target("sqlite:/tmp/x.db?mode=rwc").ok(),
            Some(Target::Sqlite(Some("/tmp/x.db".into())))
        );
        assert_eq!(target("sqlite::memory:").ok(), Some(Target::Sqlite(None)));
        assert_eq!(target("postgresql://h/db").ok(), Some(Target::Postgres));
        assert!(target("mysql://h/db").is_err());
        assert!(target("revoke.db").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://h:5432/db?password=hunter2"),
            "postgres://h:5432/db",
            "no userinfo: the query still goes"
        );
        assert_eq!(redact("sqlite://a.db?mode=rwc"), "sqlite://a.db");
        assert_eq!(
            describe("postgres://u:secret@h:5432/db"),
            "postgres h:5432/db"
        );
        assert_eq!(describe("sqlite://a/b.db"), "sqlite a/b.db");
    }

    #[test]
    fn url_comes_from_rocket_toml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Rocket.toml");
        std::fs::write(
            &path,
            "[default.databases.revoke]\nurl = \"sqlite://from-config.db\"\n",
        )
        .expect("write");
        assert_eq!(
            resolve_url(None, Some(&path)).ok().as_deref(),
            Some("sqlite://from-config.db")
        );
        assert_eq!(
            resolve_url(Some("sqlite://flag.db"), Some(&path))
                .ok()
                .as_deref(),
            Some("sqlite://flag.db")
        );
        assert!(resolve_url(None, Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn fallback_bounds_come_from_the_revoke_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Rocket.toml");
        std::fs::write(
            &path,
            "[default.revoke]\nsecret = \"not read here\"\nmax_token_ttl_secs = 86400\nleeway = 10\nclock_skew_secs = 5\nretention_secs = 3600\n",
        )
        .expect("write");
        let c = engine_config(Some(&path)).expect("config");
        assert_eq!(
            (
                c.max_token_ttl_secs,
                c.leeway_secs,
                c.clock_skew_secs,
                c.retention_secs
            ),
            (86_400, 10, 5, 3_600)
        );
        assert!(!c.publish_bounds && !c.prune_database);

        // Missing keys keep their defaults.
        std::fs::write(&path, "[default.revoke]\nleeway = 5\n").expect("write");
        let c = engine_config(Some(&path)).expect("config");
        let d = EngineConfig::default();
        assert_eq!(c.leeway_secs, 5);
        assert_eq!(c.max_token_ttl_secs, d.max_token_ttl_secs);
        assert_eq!(c.retention_secs, d.retention_secs);

        // Wrong type and out of range name the key.
        std::fs::write(&path, "[default.revoke]\nleeway = \"long\"\n").expect("write");
        let e = engine_config(Some(&path))
            .expect_err("wrong type")
            .to_string();
        assert!(e.contains("leeway"), "{e}");
        std::fs::write(&path, "[default.revoke]\nleeway = 7200\n").expect("write");
        let e = engine_config(Some(&path))
            .expect_err("out of range")
            .to_string();
        assert!(e.contains("`leeway`") && e.contains("Rocket.toml"), "{e}");

        // An explicit file must exist.
        assert!(engine_config(Some(&dir.path().join("missing.toml"))).is_err());
    }
}
