//! The scripting CLI, run as the built binary against SQLite (a temp file) and PostgreSQL
//! (a private schema at `REVOKE_TEST_PG_URL`; under `CI` a missing server fails).

use rocket_revoke_core::store::{EventQuery, PgStore, SqliteStore, Store, TokenRecord};
use rocket_revoke_core::{now_secs, Bounds, Event, TokenKind};
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
    let cutoff = rocket_revoke_core_time(now_secs() - 150);
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

fn rocket_revoke_core_time(secs: i64) -> String {
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

/// A migrated database for one test, dropped with it: a SQLite file in `dir`, or a private
/// PostgreSQL schema (with `dir` for the test's other files).
struct Db {
    dir: tempfile::TempDir,
    url: String,
    /// The server's URL and the schema to drop.
    pg: Option<(String, String)>,
}

impl Db {
    fn migrate(self) -> Self {
        let out = run(&self.url, &["migrate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg {
            rt().block_on(async {
                if let Ok(store) = PgStore::connect(base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                        .execute(store.pool())
                        .await;
                    store.close().await;
                }
            });
        }
    }
}

fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Db { dir, url, pg: None }.migrate()
}

fn pg_db() -> Option<Db> {
    let base = pg_base()?;
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
    let db = Db {
        dir: tempfile::tempdir().expect("tempdir"),
        url,
        pg: Some((base, schema)),
    };
    Some(db.migrate())
}

/// Runs `f` on a fresh connection to `url`, opened as revokectl opens it.
fn with_store<T>(url: &str, f: impl AsyncFnOnce(&dyn Store) -> T) -> T {
    rt().block_on(async {
        let store = revokectl::config::open(url, false).await.expect("connect");
        let out = f(&*store).await;
        store.close().await;
        out
    })
}

fn all_events(url: &str) -> Vec<Event> {
    with_store(url, async |s| {
        s.events(&EventQuery {
            limit: 1000,
            ..EventQuery::default()
        })
        .await
        .expect("events")
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn revoke_before_a_future_time_is_a_usage_error_and_writes_nothing(db: &Db) {
    let url = db.url.clone();
    let tomorrow = now_secs() + 86_400;
    for when in [rocket_revoke_core_time(tomorrow), tomorrow.to_string()] {
        let out = run(&url, &["revoke", "--before", &when, "--reason", "oops"]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{when}: {err}");
        assert!(err.starts_with("revokectl: "), "{err}");
        assert!(err.contains("in the future"), "{err}");
        assert!(
            err.contains(&rocket_revoke_core_time(tomorrow)),
            "names the cut-off: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
    // A millisecond timestamp in the future is read as such, then refused too.
    let ms = (tomorrow * 1000).to_string();
    let out = run(&url, &["revoke", "--before", &ms]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("as milliseconds"), "{}", stderr(&out));
    assert!(all_events(&url).is_empty(), "nothing was written");
    let rows = with_store(&url, async |s| {
        s.snapshot(now_secs()).await.expect("snapshot")
    });
    assert!(rows.revocations.is_empty(), "{:?}", rows.revocations);
}

fn a_millisecond_cutoff_is_recognised_and_reported(db: &Db) {
    let url = db.url.clone();
    let cutoff = now_secs() - 3_600;
    let ms = (cutoff * 1000 + 123).to_string();
    let out = run(
        &url,
        &["revoke", "--before", &ms, "--reason", "key leak", "--json"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let expected = format!(
        "revokectl: read {ms} as milliseconds: {}",
        rocket_revoke_core_time(cutoff)
    );
    assert!(err.contains(&expected), "wanted {expected:?} in {err:?}");
    let ev: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(ev["scope"], "global");
    assert_eq!(ev["cutoff"], rocket_revoke_core_time(cutoff));
    let events = all_events(&url);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].cutoff, Some(cutoff), "rounded down to the second");

    // Seconds are not remarked upon.
    let out = run(&url, &["events", "--since", &cutoff.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("milliseconds"), "{}", stderr(&out));
    // The same parser serves --since.
    let out = run(&url, &["events", "--since", "1735689600000", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("read 1735689600000 as milliseconds: 2025-01-01T00:00:00Z"),
        "{}",
        stderr(&out)
    );
}

fn re_revoking_keeps_the_first_reason_and_show_prints_the_history(db: &Db) {
    let url = db.url.clone();
    with_store(&url, async |s| {
        s.register(&records(now_secs())).await.expect("register")
    });
    ok_json(
        &url,
        &[
            "revoke",
            "--subject",
            "alice",
            "--reason",
            "laptop stolen",
            "--actor",
            "first-op",
            "--json",
        ],
    );
    // A later cut-off is a stronger revocation: it is recorded as a second event.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let second = ok_json(
        &url,
        &[
            "revoke",
            "--subject",
            "alice",
            "--reason",
            "phone stolen too",
            "--actor",
            "second-op",
            "--json",
        ],
    );
    assert!(second["id"].is_i64(), "a second event: {second}");
    // An equal revocation (a jti that is already revoked) changes nothing.
    ok_json(&url, &["revoke", "a-1", "--reason", "by jti", "--json"]);
    let again = ok_json(&url, &["revoke", "a-1", "--reason", "again", "--json"]);
    assert_eq!(again["changed"], false, "{again}");

    let t = ok_json(&url, &["show", "a-2", "--json"]);
    assert_eq!(t["status"], "revoked");
    assert_eq!(t["revoked_by"], "subject");
    assert_eq!(t["reason"], "laptop stolen", "the first reason stays");
    assert_eq!(t["actor"], "first-op", "the first actor stays");
    let history = t["history"].as_array().expect("history");
    let reasons: Vec<&str> = history
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["phone stolen too", "laptop stolen"],
        "{history:?}"
    );
    assert!(history
        .iter()
        .all(|e| e["kind"] == "revoke" && e["scope"] == "subject" && e["key"] == "alice"));

    // a-1's history also has its own jti revocation (once: the repeat wrote nothing),
    // newest first.
    let t = ok_json(&url, &["show", "a-1", "--json"]);
    let history = t["history"].as_array().expect("history");
    let seen: Vec<(&str, &str)> = history
        .iter()
        .map(|e| {
            (
                e["scope"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("jti", "by jti"),
            ("subject", "phone stolen too"),
            ("subject", "laptop stolen")
        ]
    );
    let ids: Vec<i64> = history.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // Text output prints both subject revocations' reasons and actors.
    let out = run(&url, &["show", "a-2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("history"), "{text}");
    for s in ["laptop stolen", "phone stolen too", "first-op", "second-op"] {
        assert!(text.contains(s), "{s} missing in {text}");
    }
    // Bob's token has no history of alice's revocations.
    let t = ok_json(&url, &["show", "b-1", "--json"]);
    assert_eq!(t["history"], Value::Array(vec![]));

    // A jti outside the registry: its own events, even once restored.
    ok_json(
        &url,
        &["revoke", "outsider", "--reason", "partner leak", "--json"],
    );
    ok_json(
        &url,
        &["restore", "outsider", "--reason", "false alarm", "--json"],
    );
    let t = ok_json(&url, &["show", "outsider", "--json"]);
    assert_eq!(t["registered"], false);
    assert_eq!(t["status"], "not_revoked");
    let kinds: Vec<&str> = t["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["restore", "revoke"]);
    let out = run(&url, &["show", "outsider"]);
    assert!(stdout(&out).contains("partner leak"), "{}", stdout(&out));
    assert_eq!(code(&run(&url, &["show", "never-heard-of"])), 1);
}

fn events_filters_by_key_scope_actor_since_and_limit(db: &Db) {
    let url = db.url.clone();
    let before = now_secs();
    let r = |args: &[&str]| ok_json(&url, args);
    r(&[
        "revoke", "k-1", "--actor", "alice-op", "--reason", "one", "--json",
    ]);
    r(&[
        "restore", "k-1", "--actor", "bob-op", "--reason", "two", "--json",
    ]);
    let newest = r(&[
        "revoke", "k-1", "--actor", "alice-op", "--reason", "three", "--json",
    ]);
    r(&["revoke", "k-2", "--actor", "alice-op", "--json"]);
    // A subject of the same name: `--key` alone matches it too, `--scope` tells them apart.
    r(&[
        "revoke",
        "--subject",
        "k-1",
        "--actor",
        "carol-op",
        "--json",
    ]);

    let rows = r(&[
        "events", "--key", "k-1", "--actor", "alice-op", "--limit", "1", "--json",
    ]);
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], newest["id"], "the newest");
    assert_eq!(rows[0]["reason"], "three");
    assert_eq!(rows[0]["actor"], "alice-op");
    assert_eq!(rows[0]["key"], "k-1");

    let count = |args: &[&str]| {
        let mut a = vec!["events", "--json"];
        a.extend_from_slice(args);
        r(&a).as_array().map(Vec::len).unwrap_or_default()
    };
    assert_eq!(count(&["--key", "k-1", "--actor", "alice-op"]), 2);
    assert_eq!(count(&["--key", "k-1"]), 4);
    assert_eq!(count(&["--key", "k-1", "--scope", "jti"]), 3);
    assert_eq!(count(&["--key", "k-1", "--scope", "subject"]), 1);
    assert_eq!(count(&["--actor", "bob-op"]), 1);
    assert_eq!(count(&["--scope", "family"]), 0);
    assert_eq!(count(&[]), 5);
    assert_eq!(count(&["--limit", "2"]), 2);
    assert_eq!(
        count(&["--since", &rocket_revoke_core_time(before - 60)]),
        5
    );
    assert_eq!(count(&["--since", &(now_secs() + 3_600).to_string()]), 0);

    // Text: one line per event under a header, with kind, scope, key, actor and reason.
    let out = run(&url, &["events", "--actor", "bob-op"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("ID"), "{text}");
    for s in ["restore", "jti", "k-1", "bob-op", "two", "Z "] {
        assert!(lines[1].contains(s), "{s} missing in {text}");
    }
    // Bad filters are usage errors.
    assert_eq!(code(&run(&url, &["events", "--scope", "planet"])), 2);
    assert_eq!(code(&run(&url, &["events", "--since", "tuesday"])), 2);
}

/// The bounds an app would record: 90-day tokens, and leeway, skew and retention unlike the
/// defaults.
fn ninety_days() -> Bounds {
    Bounds {
        max_token_ttl_secs: 90 * 86_400,
        leeway_secs: 45,
        clock_skew_secs: 120,
        retention_secs: 3_600,
    }
}

fn a_subject_revocation_is_sized_by_the_bounds_recorded_in_the_database(db: &Db) {
    let url = db.url.clone();
    let recorded = ninety_days();
    with_store(&url, async |s| {
        s.publish_settings(&recorded).await.expect("publish")
    });
    // A Rocket.toml with other bounds: only a fallback, the recorded ones win.
    let toml = db.dir.path().join("Rocket.toml");
    std::fs::write(
        &toml,
        "[default.revoke]\nmax_token_ttl_secs = 86400\nleeway = 1\nclock_skew_secs = 1\n",
    )
    .expect("write");
    let config = toml.display().to_string();
    let out = run(
        &url,
        &["--config", &config, "revoke", "--subject", "bob", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let ev: Value = serde_json::from_slice(&out.stdout).expect("json");

    let events = all_events(&url);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    let cutoff = e.cutoff.expect("a subject revocation has a cut-off");
    let until = cutoff + 90 * 86_400 + 45 + 120;
    assert_eq!(
        e.expires_at,
        Some(until),
        "cutoff + 90 days + leeway + skew"
    );
    assert_eq!(ev["expires_at"], rocket_revoke_core_time(until));
    let default = rocket_revoke_core::Bounds::default().issued_until(cutoff);
    assert_ne!(Some(default), e.expires_at, "not the defaults");
    // The revocation row says the same, and revokectl recorded nothing of its own.
    let (rows, settings) = with_store(&url, async |s| {
        (
            s.snapshot(now_secs()).await.expect("snapshot"),
            s.settings().await.expect("settings"),
        )
    });
    assert_eq!(rows.revocations.len(), 1);
    assert_eq!(rows.revocations[0].expires_at, Some(until));
    assert_eq!(settings, Some(recorded));
}

fn rocket_toml_bounds_are_the_fallback_when_none_are_recorded(db: &Db) {
    let url = db.url.clone();
    let toml = db.dir.path().join("Rocket.toml");
    std::fs::write(
        &toml,
        "[default.revoke]\nsecret = \"the app's, not read\"\nmax_token_ttl_secs = 86400\nleeway = 10\nclock_skew_secs = 5\n",
    )
    .expect("write");
    let config = toml.display().to_string();
    let out = run(
        &url,
        &["--config", &config, "revoke", "--subject", "bob", "--json"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: no app has recorded"), "{err}");
    assert!(err.contains("max_token_ttl_secs = 86400"), "{err}");
    let e = &all_events(&url)[0];
    let cutoff = e.cutoff.expect("cutoff");
    assert_eq!(e.expires_at, Some(cutoff + 86_400 + 10 + 5));
    let settings = with_store(&url, async |s| s.settings().await.expect("settings"));
    assert_eq!(settings, None, "revokectl records no bounds");

    // A bad value is a configuration error naming the key.
    std::fs::write(&toml, "[default.revoke]\nleeway = 7200\n").expect("write");
    let out = run(&url, &["--config", &config, "list"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("leeway"), "{}", stderr(&out));
}

fn prune_uses_the_retention_recorded_in_the_database(db: &Db) {
    let url = db.url.clone();
    let now = now_secs();
    let token = |jti: &str, exp: i64| TokenRecord {
        jti: jti.into(),
        sub: "erin".into(),
        fid: None,
        kind: TokenKind::Access,
        iat: exp - 900,
        exp,
        label: None,
    };
    with_store(&url, async |s| {
        s.register(&[
            token("expired-2h-ago", now - 7_200),
            token("expired-10m-ago", now - 600),
            token("live", now + 600),
        ])
        .await
        .expect("register");
        // Retention one hour (the default is 7 days, which would keep both expired rows).
        s.publish_settings(&ninety_days()).await.expect("publish");
    });
    let report = ok_json(&url, &["prune", "--json"]);
    assert_eq!(report["retention_secs"], 3_600, "{report}");
    assert_eq!(report["bounds_recorded"], true, "{report}");
    assert_eq!(
        report["tokens"], 1,
        "only the row past the retention: {report}"
    );
    let rows = ok_json(&url, &["list", "--json"]);
    let jtis: Vec<&str> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["jti"].as_str())
        .collect();
    assert_eq!(jtis.len(), 2, "{jtis:?}");
    assert!(!jtis.contains(&"expired-2h-ago"), "{jtis:?}");

    // Text output says which retention it used.
    let out = run(&url, &["prune"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("retention 1h"), "{text}");
    assert!(text.contains("recorded in the database"), "{text}");
}

/// Each test above, on SQLite and on PostgreSQL.
/// Database strings never reach the terminal raw: a subject, reason or actor holding
/// escape sequences is printed escaped by every text output (JSON escapes them itself).
fn text_output_escapes_control_characters(db: &Db) {
    let url = db.url.clone();
    let evil = "mallory\u{1b}[2J\u{7}";
    let out = run(
        &url,
        &[
            "revoke",
            "--subject",
            evil,
            "--reason",
            "\u{1b}]0;owned\u{7}",
            "--actor",
            "op\r",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [
        vec!["events"],
        vec!["events", "--key", evil],
        vec!["list"],
        vec!["stats"],
    ] {
        let out = run(&url, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?} printed a raw control character: {text:?}"
        );
    }
    let text = stdout(&run(&url, &["events"]));
    assert!(text.contains("mallory\\u{1b}[2J\\u{7}"), "{text}");
    // JSON keeps the exact string (escaped by JSON itself).
    let rows = ok_json(&url, &["events", "--json"]);
    assert_eq!(rows[0]["key"], evil);
}

/// `REVOKE_DATABASE_URL` keeps the URL (and its password) out of argv.
fn the_database_url_can_come_from_revoke_database_url(db: &Db) {
    let out = Command::new(BIN)
        .args(["stats", "--json"])
        .env_remove("REVOKECTL_DATABASE_URL")
        .env("REVOKE_DATABASE_URL", &db.url)
        .current_dir(db.dir.path())
        .output()
        .expect("run revokectl");
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(stats["tokens"].is_i64(), "{stats}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::sqlite_db());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = super::pg_db() {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    text_output_escapes_control_characters,
    the_database_url_can_come_from_revoke_database_url,
    revoke_before_a_future_time_is_a_usage_error_and_writes_nothing,
    a_millisecond_cutoff_is_recognised_and_reported,
    re_revoking_keeps_the_first_reason_and_show_prints_the_history,
    events_filters_by_key_scope_actor_since_and_limit,
    a_subject_revocation_is_sized_by_the_bounds_recorded_in_the_database,
    rocket_toml_bounds_are_the_fallback_when_none_are_recorded,
    prune_uses_the_retention_recorded_in_the_database,
);
