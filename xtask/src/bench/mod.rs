//! `cargo xtask bench`: the end-to-end benchmarks of issue 5, in one run.
//!
//! Builds `bench_app` (tests/src/bin/bench_app.rs) in release mode and runs the guard and
//! revokectl frame-render microbenchmarks, starts what it needs on 127.0.0.1 (bench_app instances on a temporary
//! SQLite file and on fresh PostgreSQL schemas; `redis-server` when nothing answers on
//! 6379), drives them with `wrk`, stops everything it started and writes its section of
//! docs/BENCHMARKS.md (between the `xtask bench` markers).
//!
//! Needs `wrk` (`apt-get install -y wrk`), `redis-server` (`apt-get install -y
//! redis-server`) and a PostgreSQL at `--pg-url` (`scripts/` starts one for the tests).

mod data;
mod load;
mod processes;
mod report;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rocket_revoke_core::store::{PgStore, SqliteStore, Store};

use crate::util::{self, target_dir, which, workspace_root};
use data::{seed_pg, seed_registry_pg, seed_registry_sqlite, time_search};
use load::{compare_guards, writes, wrk_get, Wrk};
use processes::{ensure_redis, App, PgSchemas};
use report::{median, write_section, BigSet, Report};

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Runs per measurement; the report gives the median.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Revoked tokens (and registry rows) for the large-set measurements.
    #[arg(long, default_value_t = 1_000_000)]
    pub revoked: u64,
    /// PostgreSQL URL; the benchmark creates (and drops) its own schemas there.
    #[arg(
        long,
        env = "REVOKE_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub pg_url: String,
    /// Skip the release build and the microbenchmarks (report what is built and measured).
    #[arg(long)]
    pub no_build: bool,
    /// Print the section instead of writing it into docs/BENCHMARKS.md.
    #[arg(long)]
    pub no_write: bool,
}

/// The benchmark's own HMAC secret: a release build (profile `release`) refuses the
/// published debug secrets of `Rocket.toml`.
const BENCH_REVOKE: &str = "secret=\"bench-only-secret-0123456789abcdef-0123456789\"";

/// Rocket configuration that turns the verified-token cache off (merged into `revoke`).
const UNCACHED: &str = "verified_cache=0";

/// The report's label of the guarded route with the verified-token cache off.
const ME_UNCACHED: &str = "/me (verified_cache = 0)";

const BEGIN: &str = "<!-- xtask bench: begin -->";
const END: &str = "<!-- xtask bench: end -->";

/// Runs every measurement and writes the report.
pub fn run(args: BenchArgs) -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    which("wrk").context("wrk is missing: install it with `apt-get install -y wrk`")?;
    let started = Instant::now();
    if !args.no_build {
        util::run(
            "cargo",
            &[
                "build",
                "--release",
                "-p",
                "revoke-tests",
                "--bin",
                "bench_app",
            ],
        )?;
        util::run(
            "cargo",
            &["bench", "-p", "rocket-revoke", "--bench", "guard"],
        )?;
        util::run("cargo", &["bench", "-p", "revokectl", "--bench", "render"])?;
    }
    let binary = target_dir().join("release").join("bench_app");
    ensure!(binary.exists(), "{} is missing", binary.display());

    let mut report = Report::default();
    report.machine(&args)?;
    let _redis = ensure_redis()?;
    let rt = tokio::runtime::Runtime::new()?;
    let tmp = tempfile::tempdir()?;
    let mut pg = PgSchemas {
        url: args.pg_url.clone(),
        names: Vec::new(),
    };
    let result = measure(&args, &rt, &binary, tmp.path(), &mut pg, &mut report);
    pg.drop_all();
    result?;
    report.microbench(&target_dir())?;
    let _ = writeln!(
        report.out,
        "\nWhole run: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    let section = report.render();
    if args.no_write {
        println!("{section}");
    } else {
        write_section(&root.join("docs/BENCHMARKS.md"), &section)?;
        eprintln!("wrote docs/BENCHMARKS.md");
    }
    Ok(())
}

fn measure(
    args: &BenchArgs,
    rt: &tokio::runtime::Runtime,
    binary: &Path,
    tmp: &Path,
    pg: &mut PgSchemas,
    report: &mut Report,
) -> Result<()> {
    // 1. Routes side by side, SQLite then PostgreSQL.
    let sqlite_url = format!("sqlite://{}?mode=rwc", tmp.join("bench.db").display());
    {
        let app = App::start(binary, &sqlite_url)?;
        // The same app with the verified-token cache off, on the same database: what the
        // guard costs when every request brings a token this thread has not seen.
        let uncached = App::start_with(binary, &sqlite_url, &[UNCACHED])?;
        let token = app.login("alice")?;
        let rows = compare_guards(args, &token, &app, &uncached)?;
        report.routes("SQLite (WAL file)", &rows);
    }
    let pg_empty = pg.create("bench_empty")?;
    let app_empty = App::start(binary, &pg_empty)?;
    let token = app_empty.login("alice")?;
    {
        let uncached = App::start_with(binary, &pg_empty, &[UNCACHED])?;
        let rows = compare_guards(args, &token, &app_empty, &uncached)?;
        report.routes("PostgreSQL 15 (loopback)", &rows);
    }

    // 2. 1,000,000 revoked tokens (PostgreSQL): start-up, memory, throughput.
    let pg_big = pg.create("bench_1m")?;
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&pg_big).await?;
        let store = PgStore::new(pool.clone());
        store.migrate().await?;
        seed_pg(&pool, args.revoked).await?;
        pool.close().await;
        anyhow::Ok(())
    })?;
    let mut startups = Vec::new();
    for _ in 0..args.repeats.min(3) {
        let t0 = Instant::now();
        let app = App::start(binary, &pg_big)?;
        startups.push(t0.elapsed().as_secs_f64());
        drop(app);
    }
    let t0 = Instant::now();
    let app_big = App::start(binary, &pg_big)?;
    startups.push(t0.elapsed().as_secs_f64());
    let empty_startup = {
        let t0 = Instant::now();
        let a = App::start(binary, &pg_empty)?;
        let s = t0.elapsed().as_secs_f64();
        drop(a);
        s
    };
    let health = app_big.get_json("/health")?;
    let loaded = health["revocations"]["jtis"].as_u64().unwrap_or(0);
    ensure!(
        loaded >= args.revoked,
        "the 1M instance loaded {loaded} jtis, expected {}",
        args.revoked
    );
    // RSS of two fresh instances, measured the same way (after a short warm-up).
    let fresh_empty = App::start(binary, &pg_empty)?;
    let big_token = app_big.login("bob")?;
    wrk_get(&fresh_empty, "/me", &token, 2, args)?;
    wrk_get(&app_big, "/me", &big_token, 2, args)?;
    let rss_empty = fresh_empty.rss_kib()?;
    let rss_big = app_big.rss_kib()?;
    drop(fresh_empty);
    let mut me_empty = Vec::new();
    let mut me_big = Vec::new();
    for _ in 0..args.repeats {
        me_empty.push(wrk_get(&app_empty, "/me", &token, args.duration, args)?);
        me_big.push(wrk_get(&app_big, "/me", &big_token, args.duration, args)?);
    }
    report.big_set(BigSet {
        revoked: loaded,
        startup_s: median(startups),
        empty_startup_s: empty_startup,
        rss_empty_kib: rss_empty,
        rss_big_kib: rss_big,
        empty: Wrk::median(&me_empty),
        big: Wrk::median(&me_big),
    });
    drop(app_big);

    // 3. Registry search over 1M rows (the query behind revokectl's first page).
    let (pg_search, sqlite_search) = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&pg_big).await?;
        seed_registry_pg(&pool, args.revoked).await?;
        let store = PgStore::new(pool.clone());
        let pg_times = time_search(&store).await?;
        store.close().await;
        let path = tmp.join("registry.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sqlx::SqlitePool::connect(&url).await?;
        let store = SqliteStore::new(pool.clone()).await?;
        store.migrate().await?;
        seed_registry_sqlite(&pool, args.revoked).await?;
        let sqlite_times = time_search(&store).await?;
        store.close().await;
        anyhow::Ok((pg_times, sqlite_times))
    })?;
    report.search(args.revoked, &pg_search, &sqlite_search);

    // 4. Write throughput with propagation measured during the writes.
    let app_b = App::start(binary, &pg_empty)?;
    let app_c = App::start(binary, &pg_empty)?;
    let pg_writes = writes(
        args,
        binary,
        &[&app_empty, &app_b, &app_c],
        (&app_empty, &app_b),
        20,
        60,
    )?;
    // Let every instance's sync catch up with the last writes before counting.
    std::thread::sleep(Duration::from_secs(2));
    let counts: Vec<u64> = [&app_empty, &app_b, &app_c]
        .iter()
        .map(|a| {
            a.get_json("/health")
                .map(|h| h["revocations"]["jtis"].as_u64().unwrap_or(0))
        })
        .collect::<Result<_>>()?;
    report.writes("PostgreSQL, 3 instances", &pg_writes, Some(&counts));
    drop((app_b, app_c, app_empty));

    let sqlite_w = format!("sqlite://{}?mode=rwc", tmp.join("writes.db").display());
    let a = App::start(binary, &sqlite_w)?;
    let b = App::start(binary, &sqlite_w)?;
    let sqlite_writes = writes(args, binary, &[&a], (&a, &b), 250, 40)?;
    report.writes("SQLite, 2 instances (writes on one)", &sqlite_writes, None);
    Ok(())
}
