//! The scripting CLI, run as the built binary against SQLite (a temp file) and PostgreSQL
//! (a private schema at `REVOKE_TEST_PG_URL`; under `CI` a missing server fails).

use revoke_core::store::{PgStore, SqliteStore, Store, TokenRecord};
use revoke_core::{now_secs, TokenKind};
use serde_json::Value;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_revokectl");

fn run(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("REVOKECTL_DATABASE_URL")
        .env("USER", "ci-operator")
        .output()
        .expect("run revokectl")
}

fn ok_json(url: &str, args: &[&str]) -> Value {
    let out = run(url, args);
    assert!(
        out.status.success(),
        "revokectl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn records(now: i64) -> Vec<TokenRecord> {
    let t = |jti: &str, sub: &str, fid: Option<&str>, kind, iat: i64, exp: i64| TokenRecord {
        jti: jti.into(),
        sub: sub.into(),
        fid: fid.map(str::to_owned),
        kind,
        iat,
        exp,
        label: Some(format!("{sub}'s laptop")),
    };
    vec![
        t(
            "a-1",
            "alice",
            Some("fa"),
            TokenKind::Access,
            now - 100,
            now + 800,
        ),
        t(
            "a-2",
            "alice",
            Some("fa"),
            TokenKind::Refresh,
            now - 100,
            now + 86_400,
        ),
        t(
            "b-1",
            "bob",
            Some("fb"),
            TokenKind::Access,
            now - 200,
            now + 700,
        ),
        t(
            "b-2",
            "bob",
            Some("fb"),
            TokenKind::Refresh,
            now - 200,
            now + 86_400,
        ),
        t(
            "c-1",
            "carol",
            Some("fc"),
            TokenKind::Access,
            now - 7_200,
            now - 3_600,
        ),
        t(
            "d-1",
            "dave",
            None,
            TokenKind::External,
            now - 50,
            now + 3_600,
        ),
    ]
}

fn find<'a>(rows: &'a Value, jti: &str) -> &'a Value {
    rows.as_array()
        .and_then(|a| a.iter().find(|r| r["jti"] == jti))
        .unwrap_or_else(|| panic!("{jti} not in {rows}"))
}

/// The whole CLI against one migrated, seeded database.
fn scenario(url: &str) {
    // list --json: every field, statuses computed.
    let rows = ok_json(url, &["list", "--json"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(6));
    let a1 = find(&rows, "a-1");
    for key in [
        "jti",
        "sub",
        "fid",
        "kind",
        "status",
        "issued_at",
        "expires_at",
        "last_seen",
        "revoked_at",
        "reason",
        "actor",
    ] {
        assert!(a1.get(key).is_some(), "missing {key} in {a1}");
    }
    assert_eq!(a1["status"], "active");
    assert_eq!(a1["kind"], "access");
    assert_eq!(find(&rows, "c-1")["status"], "expired");
    assert!(a1["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')));

    // Filters.
    let rows = ok_json(url, &["list", "--json", "--subject", "bob"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    let rows = ok_json(url, &["list", "--json", "--search", "ali", "--limit", "1"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    let rows = ok_json(url, &["search", "b-", "--json"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    let rows = ok_json(url, &["list", "--json", "--status", "expired"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(1));

    // Revoke one token, with reason and actor.
    let ev = ok_json(
        url,
        &["revoke", "a-1", "--reason", "stolen laptop", "--json"],
    );
    assert_eq!(ev["scope"], "jti");
    let t = ok_json(url, &["show", "a-1", "--json"]);
    assert_eq!(t["status"], "revoked");
    assert_eq!(t["reason"], "stolen laptop");
    assert_eq!(t["actor"], "ci-operator", "actor defaults to $USER");
    assert!(t["revoked_at"].is_string());
    assert_eq!(
        find(&ok_json(url, &["list", "--json"]), "a-2")["status"],
        "active"
    );

    // Family and subject.
    ok_json(
        url,
        &[
            "revoke", "--family", "fb", "--reason", "reuse", "--actor", "sec", "--json",
        ],
    );
    let rows = ok_json(url, &["list", "--json", "--status", "revoked"]);
    assert_eq!(find(&rows, "b-2")["actor"], "sec");
    assert_eq!(find(&rows, "b-2")["revoked_by"], "family");
    ok_json(url, &["revoke", "--subject", "alice", "--json"]);
    assert_eq!(
        find(&ok_json(url, &["list", "--json"]), "a-2")["status"],
        "revoked"
    );

    // A jti the registry never saw.
    ok_json(
        url,
        &[
            "revoke",
            "from-another-issuer",
            "--reason",
            "partner",
            "--json",
        ],
    );
    let t = ok_json(url, &["show", "from-another-issuer", "--json"]);
    assert_eq!(t["status"], "revoked");
    assert_eq!(t["registered"], false);

    // Restore; restoring nothing is a failed operation.
    ok_json(url, &["restore", "--family", "fb", "--json"]);
    assert_eq!(
        find(&ok_json(url, &["list", "--json"]), "b-2")["status"],
        "active"
    );
    let out = run(url, &["restore", "--family", "fb"]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));

    // Global cut-off by RFC 3339 time, then lifted.
    let cutoff = revoke_core_time(now_secs() - 150);
    ok_json(
        url,
        &[
            "revoke", "--before", &cutoff, "--reason", "key leak", "--json",
        ],
    );
    let rows = ok_json(url, &["list", "--json"]);
    assert_eq!(
        find(&rows, "b-1")["status"],
        "revoked",
        "issued before the cut-off"
    );
    assert_eq!(
        find(&rows, "d-1")["status"],
        "active",
        "issued after the cut-off"
    );
    ok_json(url, &["restore", "--global", "--json"]);

    // Stats, prune, show of an unknown jti.
    let s = ok_json(url, &["stats", "--json"]);
    assert_eq!(s["tokens"], 6);
    assert_eq!(s["expired"], 1);
    assert!(s["revoked"].as_i64().is_some_and(|n| n >= 2));
    ok_json(url, &["prune", "--json"]);
    assert_eq!(code(&run(url, &["show", "nope"])), 1);

    // Usage errors are exit code 2.
    assert_eq!(code(&run(url, &["revoke", "--before", "yesterday"])), 2);
    assert_eq!(code(&run(url, &["revoke"])), 2);
    assert_eq!(code(&run(url, &["list", "--status", "sleepy"])), 2);
    // The dashboard without a terminal is a usage error, not a garbled screen.
    assert_eq!(code(&run(url, &[])), 2);

    // Text output works too.
    let out = run(url, &["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));
}

fn revoke_core_time(secs: i64) -> String {
    // Formats as RFC 3339 the long way, so the test does not share code with the binary.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn cli_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = run(&url, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt().block_on(async {
        let store = SqliteStore::connect(&url).await.expect("connect");
        store
            .register(&records(now_secs()))
            .await
            .expect("register");
        store.close().await;
    });
    scenario(&url);
}

fn pg_base() -> Option<String> {
    let url = std::env::var("REVOKE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reachable = rt().block_on(async { PgStore::connect(&url).await.map(|s| s.pool().clone()) });
    match reachable {
        Ok(_) => Some(url),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL at {url} is required under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping PostgreSQL CLI test: {e}");
            None
        }
    }
}

#[test]
fn cli_on_postgres() {
    let Some(base) = pg_base() else {
        return;
    };
    let schema = format!("revokectl_cli_{}", uuid::Uuid::new_v4().simple());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    rt().block_on(async {
        let store = PgStore::connect(&base).await.expect("connect");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(store.pool())
            .await
            .expect("create schema");
        store.close().await;
    });
    let out = run(&url, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt().block_on(async {
        let store = PgStore::connect(&url).await.expect("connect");
        store
            .register(&records(now_secs()))
            .await
            .expect("register");
        store.close().await;
    });
    let result = std::panic::catch_unwind(|| scenario(&url));
    rt().block_on(async {
        if let Ok(store) = PgStore::connect(&base).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(store.pool())
                .await;
            store.close().await;
        }
    });
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn bad_configuration_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("mysql://localhost/db".into(), vec!["list"]),
        ("not a url".into(), vec!["stats"]),
        (missing.clone(), vec!["list"]),
        (
            "postgres://postgres:hunter2@127.0.0.1:1/none".into(),
            vec!["list"],
        ),
    ];
    for (url, args) in cases {
        let out = run(&url, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("revokectl: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("hunter2"), "the password leaked: {err}");
        assert!(out.stdout.is_empty());
    }
    assert!(
        !dir.path().join("missing.db").exists(),
        "a missing database file must not be created"
    );
    // The TUI path too: a bad URL fails before the terminal is touched.
    let out = run(&missing, &[]);
    assert_eq!(code(&out), 2);

    // No URL and no config file.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["list"])
        .env_remove("REVOKECTL_DATABASE_URL")
        .env_remove("ROCKET_DATABASES")
        .env_remove("ROCKET_CONFIG")
        .output()
        .expect("run");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database-url"));
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/Rocket.toml", "list"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 2);
}

#[test]
fn url_comes_from_rocket_toml_and_rocket_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("conf.db");
    std::fs::write(
        dir.path().join("Rocket.toml"),
        format!(
            "[default.databases.revoke]\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    )
    .expect("write");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["migrate"])
        .env_remove("REVOKECTL_DATABASE_URL")
        .env_remove("ROCKET_DATABASES")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    // ROCKET_DATABASES overrides the file, as it does for Rocket.
    let other = dir.path().join("env.db");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["migrate", "--json"])
        .env_remove("REVOKECTL_DATABASE_URL")
        .env(
            "ROCKET_DATABASES",
            format!("{{revoke={{url=\"sqlite://{}\"}}}}", other.display()),
        )
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.exists());
}
