//! `cargo xtask seed --tokens N`: realistic registry rows, written with multi-row inserts
//! in large transactions; revocations go through the store so events exist for them.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rocket_revoke_core::store::{PgStore, SqliteStore, Store};
use rocket_revoke_core::{now_secs, Revocation, Scope};
use std::time::Instant;

/// Arguments of `seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// How many registry rows to write.
    #[arg(long, default_value_t = 10_000)]
    pub tokens: u64,
    /// Target database (created and migrated if needed).
    #[arg(
        long,
        env = "REVOKECTL_DATABASE_URL",
        default_value = "sqlite://target/seed.db"
    )]
    pub database_url: String,
    /// Seed of the random generator (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Delete existing tokens, revocations and events first.
    #[arg(long)]
    pub fresh: bool,
}

const DEVICES: &[&str] = &[
    "Firefox on Linux",
    "Chrome on Windows",
    "Safari on iPhone",
    "Safari on macOS",
    "Edge on Windows",
    "okhttp (Android app)",
    "iOS app 4.2",
    "curl/8.5",
    "CLI 1.3",
];
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const REASONS: &[&str] = &[
    "stolen laptop",
    "suspicious login from new country",
    "password reset",
    "user logged out everywhere",
    "account closed",
    "leaked in CI logs",
];
const ACTORS: &[&str] = &["ops:alice", "support:bob", "security-bot", "system"];

/// One registry row.
#[derive(Debug, Clone)]
pub struct Row {
    jti: String,
    sub: String,
    fid: Option<String>,
    kind: &'static str,
    iat: i64,
    exp: i64,
    label: Option<String>,
    last_seen: Option<i64>,
    spent_at: Option<i64>,
    replaced_by: Option<String>,
}

fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .to_string()
}

/// Generates rows in batches and hands them to `sink`; returns the revocations to make.
fn generate(
    n: u64,
    seed: u64,
    now: i64,
    mut sink: impl FnMut(Vec<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Revocation>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let subjects = (n / 40).max(NAMES.len() as u64);
    let mut revs = Vec::new();
    let mut made = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let month = 30 * 86_400;
    while made < n {
        let s = rng.gen_range(0..subjects);
        let sub = match NAMES.get(s as usize) {
            Some(name) => (*name).to_owned(),
            None => format!("user-{s:06}"),
        };
        let device = DEVICES[rng.gen_range(0..DEVICES.len())];
        if rng.gen_bool(0.02) {
            // A token from another issuer, first seen by a guard.
            let iat = now - rng.gen_range(0..month);
            let jti = uuid(&mut rng);
            if rng.gen_bool(0.05) {
                revs.push(jti_rev(&mut rng, &jti, iat + 3600, now));
            }
            batch.push(Row {
                jti,
                sub,
                fid: None,
                kind: "external",
                iat,
                exp: iat + 3600,
                label: Some("issued by idp.example".into()),
                last_seen: Some(iat + rng.gen_range(0..3600)),
                spent_at: None,
                replaced_by: None,
            });
            made += 1;
        } else {
            let fid = uuid(&mut rng);
            let rotations = rng.gen_range(0..5u32);
            let mut t = now - rng.gen_range(0..month);
            let mut prev_refresh: Option<usize> = None;
            for _ in 0..=rotations {
                if made >= n || t > now {
                    break;
                }
                let access = uuid(&mut rng);
                let refresh = uuid(&mut rng);
                let seen = t + rng.gen_range(0..900);
                if let Some(i) = prev_refresh {
                    if let Some(r) = batch.get_mut(i) {
                        r.spent_at = Some(t);
                        r.replaced_by = Some(refresh.clone());
                    }
                }
                if rng.gen_bool(0.005) {
                    revs.push(jti_rev(&mut rng, &access, t + 900, now));
                }
                batch.push(Row {
                    jti: access,
                    sub: sub.clone(),
                    fid: Some(fid.clone()),
                    kind: "access",
                    iat: t,
                    exp: t + 900,
                    label: Some(device.to_owned()),
                    last_seen: (seen <= now && rng.gen_bool(0.8)).then_some(seen),
                    spent_at: None,
                    replaced_by: None,
                });
                made += 1;
                if made >= n {
                    break;
                }
                batch.push(Row {
                    jti: refresh,
                    sub: sub.clone(),
                    fid: Some(fid.clone()),
                    kind: "refresh",
                    iat: t,
                    exp: t + month,
                    label: Some(device.to_owned()),
                    last_seen: None,
                    spent_at: None,
                    replaced_by: None,
                });
                prev_refresh = Some(batch.len() - 1);
                made += 1;
                t += rng.gen_range(900..86_400);
            }
            if rng.gen_bool(0.01) {
                revs.push(Revocation {
                    scope: Scope::Family,
                    key: fid,
                    issuer: None,
                    cutoff: None,
                    expires_at: Some(now + month),
                    reason: Some(REASONS[rng.gen_range(0..REASONS.len())].into()),
                    actor: Some(ACTORS[rng.gen_range(0..ACTORS.len())].into()),
                    revoked_at: now - rng.gen_range(0..86_400),
                });
            }
        }
        if batch.len() >= BATCH {
            sink(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    // A few users logged out everywhere, and a jti from elsewhere that was never seen.
    for s in (0..subjects).step_by(997).skip(1).take(25) {
        revs.push(Revocation {
            scope: Scope::Subject,
            key: format!("user-{s:06}"),
            issuer: None,
            cutoff: Some(now - rng.gen_range(0..86_400)),
            expires_at: Some(now + month),
            reason: Some("user logged out everywhere".into()),
            actor: Some("support:bob".into()),
            revoked_at: now - rng.gen_range(0..86_400),
        });
    }
    revs.push(jti_rev(
        &mut rng,
        "unregistered-token-from-partner",
        now + 3600,
        now,
    ));
    Ok(revs)
}

fn jti_rev(rng: &mut StdRng, jti: &str, exp: i64, now: i64) -> Revocation {
    Revocation {
        scope: Scope::Jti,
        key: jti.to_owned(),
        issuer: None,
        cutoff: None,
        expires_at: Some(exp.max(now + 60)),
        reason: Some(REASONS[rng.gen_range(0..REASONS.len())].into()),
        actor: Some(ACTORS[rng.gen_range(0..ACTORS.len())].into()),
        revoked_at: now - rng.gen_range(0..86_400),
    }
}

/// Rows per generated batch (and per transaction).
const BATCH: usize = 50_000;
/// Rows per INSERT statement (10 parameters each; SQLite allows 32,766, PostgreSQL 65,535).
const ROWS_PER_STATEMENT: usize = 3_000;

const INSERT: &str = "INSERT INTO revoke_tokens \
    (jti, sub, fid, kind, iat, exp, label, last_seen, spent_at, replaced_by) ";

macro_rules! insert_batch {
    ($db:ty, $conn:expr, $rows:expr) => {{
        let mut tx = sqlx::Connection::begin($conn).await?;
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<$db>::new(INSERT);
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.jti.clone())
                    .push_bind(r.sub.clone())
                    .push_bind(r.fid.clone())
                    .push_bind(r.kind)
                    .push_bind(r.iat)
                    .push_bind(r.exp)
                    .push_bind(r.label.clone())
                    .push_bind(r.last_seen)
                    .push_bind(r.spent_at)
                    .push_bind(r.replaced_by.clone());
            });
            qb.push(" ON CONFLICT (jti) DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }};
}

/// What a seed run did.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    /// Registry rows written.
    pub tokens: u64,
    /// Revocations made.
    pub revocations: usize,
    /// Wall time.
    pub secs: f64,
}

/// Seeds `url` with `n` tokens; shows a progress bar when `progress`.
pub async fn seed(
    url: &str,
    n: u64,
    seed: u64,
    fresh: bool,
    progress: bool,
) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let now = now_secs();
    let bar = if progress {
        ProgressBar::new(n)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40.cyan/blue} {human_pos}/{human_len} tokens ({per_sec}, eta {eta})",
        )?
        .progress_chars("█▓░"),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    // Generation runs on its own thread, overlapping with the inserts.
    let gen = tokio::task::spawn_blocking(move || {
        generate(n, seed, now, |b| {
            tx.blocking_send(b)
                .map_err(|_| anyhow::anyhow!("writer stopped"))
        })
    });
    let store: Box<dyn Store> = if url.starts_with("sqlite:") {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| p.split('?').next().unwrap_or(p))
        {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        let store = SqliteStore::connect(url).await.context("open database")?;
        store.migrate().await?;
        if fresh {
            wipe_sqlite(&store).await?;
        }
        let mut conn = store.pool().acquire().await?;
        // Bulk load: a crash mid-seed only loses seed data.
        sqlx::query("PRAGMA synchronous = OFF")
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA cache_size = -262144")
            .execute(&mut *conn)
            .await?;
        // Secondary indexes are rebuilt once at the end (a sort) instead of row by row; the
        // statements come from the migrations, so a seed interrupted here is repaired by
        // the next one.
        let indexes = token_indexes()?;
        for (name, _) in &indexes {
            sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
                .execute(&mut *conn)
                .await?;
        }
        while let Some(mut rows) = rx.recv().await {
            let len = rows.len() as u64;
            rows.sort_unstable_by(|a, b| a.jti.cmp(&b.jti));
            insert_batch!(sqlx::Sqlite, &mut *conn, rows);
            bar.inc(len);
        }
        bar.set_message("indexes");
        for (_, create) in &indexes {
            sqlx::query(create).execute(&mut *conn).await?;
        }
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        drop(conn);
        Box::new(store)
    } else {
        let store = PgStore::connect(url).await.context("connect to database")?;
        store.migrate().await?;
        if fresh {
            for t in ["revoke_tokens", "revoke_revocations", "revoke_events"] {
                sqlx::query(&format!("DELETE FROM {t}"))
                    .execute(store.pool())
                    .await?;
            }
        }
        let mut conn = store.pool().acquire().await?;
        while let Some(rows) = rx.recv().await {
            let len = rows.len() as u64;
            insert_batch!(sqlx::Postgres, &mut *conn, rows);
            bar.inc(len);
        }
        drop(conn);
        Box::new(store)
    };
    let revs = gen.await??;
    bar.set_message("revocations");
    for chunk in revs.chunks(1_000) {
        store.revoke(chunk).await?;
    }
    bar.finish_and_clear();
    store.close().await;
    Ok(Seeded {
        tokens: n,
        revocations: revs.len(),
        secs: started.elapsed().as_secs_f64(),
    })
}

/// `(name, CREATE INDEX statement)` of every secondary index on `revoke_tokens` in the
/// SQLite migrations.
fn token_indexes() -> anyhow::Result<Vec<(String, String)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let sql = std::fs::read_to_string(&f)?;
        for stmt in sql.split(';') {
            let text: String = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ");
            let words: Vec<&str> = text.split_whitespace().collect();
            let is_index = words.len() > 6
                && words[0].eq_ignore_ascii_case("create")
                && words[1].eq_ignore_ascii_case("index");
            if !is_index {
                continue;
            }
            let Some(on) = words.iter().position(|w| w.eq_ignore_ascii_case("on")) else {
                continue;
            };
            if words
                .get(on + 1)
                .is_some_and(|t| t.starts_with("revoke_tokens"))
            {
                out.push((words[on - 1].to_owned(), words.join(" ")));
            }
        }
    }
    Ok(out)
}

async fn wipe_sqlite(store: &SqliteStore) -> anyhow::Result<()> {
    for t in ["revoke_tokens", "revoke_revocations", "revoke_events"] {
        sqlx::query(&format!("DELETE FROM {t}"))
            .execute(store.pool())
            .await?;
    }
    Ok(())
}

/// `cargo xtask seed`.
pub fn main(args: SeedArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let s = rt.block_on(seed(
        &args.database_url,
        args.tokens,
        args.seed,
        args.fresh,
        true,
    ))?;
    eprintln!(
        "seeded {} tokens and {} revocations in {:.1} s ({:.0} tokens/s) into {}",
        s.tokens,
        s.revocations,
        s.secs,
        s.tokens as f64 / s.secs.max(1e-9),
        redact(&args.database_url)
    );
    Ok(())
}

/// The URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
