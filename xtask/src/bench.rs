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

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rocket_revoke_core::store::{ListQuery, PgStore, SqliteStore, Store};

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
        sh(
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
        sh(
            "cargo",
            &["bench", "-p", "rocket-revoke", "--bench", "guard"],
        )?;
        sh("cargo", &["bench", "-p", "revokectl", "--bench", "render"])?;
    }
    let binary = target_dir(&root).join("release").join("bench_app");
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
    report.microbench(&target_dir(&root))?;
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

// ---------------------------------------------------------------------------------------
// Processes.

/// A running bench_app; killed on drop.
struct App {
    child: Child,
    port: u16,
}

impl App {
    /// Starts bench_app on `url` and waits until `/health` answers 200 (at most 120 s).
    fn start(binary: &Path, url: &str) -> Result<App> {
        App::start_with(binary, url, &[])
    }

    /// [`App::start`] with more `revoke` keys (`key=value` in TOML, merged into
    /// [`BENCH_REVOKE`]).
    fn start_with(binary: &Path, url: &str, revoke: &[&str]) -> Result<App> {
        let port = free_port()?;
        let revoke: Vec<&str> = std::iter::once(BENCH_REVOKE)
            .chain(revoke.iter().copied())
            .collect();
        let child = Command::new(binary)
            .env("ROCKET_REVOKE", format!("{{{}}}", revoke.join(",")))
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_DATABASES", format!("{{revoke={{url=\"{url}\"}}}}"))
            .env("ROCKET_LOG_LEVEL", "off")
            .env("ROCKET_CLI_COLORS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut app = App { child, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/health", None, None) {
                return Ok(app);
            }
            if let Some(status) = app.child.try_wait()? {
                bail!("bench_app exited during start-up: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "bench_app did not start in 120 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = http(self.port, "GET", path, None, None)?;
        ensure!(status == 200, "GET {path}: {status}");
        Ok(serde_json::from_str(&body)?)
    }

    /// An access token for `user`.
    fn login(&self, user: &str) -> Result<String> {
        let body = format!(r#"{{"username":"{user}","password":"password"}}"#);
        let (status, body) = http(self.port, "POST", "/auth/login", None, Some(&body))?;
        ensure!(status == 200, "login: {status}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(v["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// CPU time of the process so far (utime + stime), clock ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the `(comm)`, which may contain spaces.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after `) state`.
        let utime: u64 = f.get(11).context("no utime")?.parse()?;
        let stime: u64 = f.get(12).context("no stime")?.parse()?;
        Ok(utime + stime)
    }

    /// Resident set size, KiB.
    fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` started by us (None when one already answers on 6379).
struct Redis(Option<Child>);

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ensure_redis() -> Result<Redis> {
    if TcpStream::connect("127.0.0.1:6379").is_ok() {
        return Ok(Redis(None));
    }
    which("redis-server")
        .context("redis-server is missing: install it with `apt-get install -y redis-server`")?;
    eprintln!("starting redis-server on 127.0.0.1:6379");
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()?;
    let redis = Redis(Some(child));
    for _ in 0..100 {
        if TcpStream::connect("127.0.0.1:6379").is_ok() {
            return Ok(redis);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("redis-server did not start")
}

/// Schemas created in PostgreSQL, dropped at the end.
struct PgSchemas {
    url: String,
    names: Vec<String>,
}

impl PgSchemas {
    /// A fresh schema; returns a URL whose search_path is it.
    fn create(&mut self, name: &str) -> Result<String> {
        let schema = format!("{name}_{}", std::process::id());
        sh(
            "psql",
            &[
                &self.url,
                "-qc",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
            ],
        )?;
        self.names.push(schema.clone());
        let sep = if self.url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}options=-csearch_path%3D{schema}", self.url))
    }

    fn drop_all(&mut self) {
        for schema in self.names.drain(..) {
            let _ = Command::new("psql")
                .args([
                    &self.url,
                    "-qc",
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                ])
                .status();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Load.

/// One wrk run.
#[derive(Debug, Clone, Copy, Default)]
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the app process (all threads, user + system) per request, µs: far less
    /// sensitive than req/s to other load on a shared machine.
    cpu_us: f64,
}

impl Wrk {
    /// Per-field medians.
    fn median(runs: &[Wrk]) -> Wrk {
        Wrk {
            rps: median(runs.iter().map(|r| r.rps).collect()),
            p50_ms: median(runs.iter().map(|r| r.p50_ms).collect()),
            p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
            cpu_us: median(runs.iter().map(|r| r.cpu_us).collect()),
        }
    }
}

fn wrk_get(app: &App, path: &str, token: &str, secs: u64, args: &BenchArgs) -> Result<Wrk> {
    let auth = format!("Authorization: Bearer {token}");
    let url = app.url(path);
    let cpu0 = app.cpu_ticks()?;
    let out = wrk(&[
        &format!("-t{}", args.threads),
        &format!("-c{}", args.connections),
        &format!("-d{secs}s"),
        "--latency",
        "-H",
        &auth,
        &url,
    ])?;
    let cpu = app.cpu_ticks()? - cpu0;
    let mut w = parse_wrk(&out).with_context(|| format!("wrk {path}:\n{out}"))?;
    let requests: f64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no request count")?;
    w.cpu_us = cpu as f64 * 1e6 / clock_ticks() / requests;
    Ok(w)
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux).
fn clock_ticks() -> f64 {
    capture("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0)
}

fn wrk(args: &[&str]) -> Result<String> {
    let out = Command::new("wrk").args(args).output()?;
    ensure!(out.status.success(), "wrk failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn parse_wrk(out: &str) -> Result<Wrk> {
    if let Some(line) = out.lines().find(|l| l.contains("Non-2xx")) {
        bail!("errors during the run: {}", line.trim());
    }
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .context("no Requests/sec")?
        .trim()
        .parse()?;
    let pct = |p: &str| -> Result<f64> {
        let line = out
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .with_context(|| format!("no {p} latency"))?;
        parse_duration_ms(line.split_whitespace().nth(1).unwrap_or(""))
    };
    Ok(Wrk {
        rps,
        p50_ms: pct("50%")?,
        p99_ms: pct("99%")?,
        cpu_us: f64::NAN,
    })
}

/// wrk's `123.45us`, `1.23ms`, `1.02s`.
fn parse_duration_ms(s: &str) -> Result<f64> {
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("unknown duration {s:?}")
    };
    Ok(num.parse::<f64>()? * scale)
}

/// The routes of one instance, interleaved run by run (so drift in machine load hits them
/// alike); medians per route.
fn compare_routes(
    args: &BenchArgs,
    token: &str,
    routes: &[(&str, &App, &str)],
) -> Result<Vec<(String, Wrk, Vec<f64>)>> {
    for (_, app, path) in routes {
        wrk_get(app, path, token, 1, args)?; // warm-up
    }
    // Interleaved, so that a slow spell of the machine hits every route alike.
    let mut runs: Vec<Vec<Wrk>> = vec![Vec::new(); routes.len()];
    for _ in 0..args.repeats {
        for (i, (_, app, path)) in routes.iter().enumerate() {
            runs[i].push(wrk_get(app, path, token, args.duration, args)?);
        }
    }
    Ok(routes
        .iter()
        .zip(runs)
        .map(|((label, _, _), r)| {
            let rps = r.iter().map(|w| w.rps).collect();
            ((*label).to_owned(), Wrk::median(&r), rps)
        })
        .collect())
}

/// The unguarded, guarded and per-request-lookup routes of `app`, and the guarded route of
/// `uncached` (the same app with the verified-token cache off), side by side.
fn compare_guards(
    args: &BenchArgs,
    token: &str,
    app: &App,
    uncached: &App,
) -> Result<Vec<(String, Wrk, Vec<f64>)>> {
    compare_routes(
        args,
        token,
        &[
            ("/open", app, "/open"),
            ("/me", app, "/me"),
            (ME_UNCACHED, uncached, "/me"),
            ("/me/sql", app, "/me/sql"),
            ("/me/redis", app, "/me/redis"),
        ],
    )
}

/// Result of a write run.
struct Writes {
    per_sec: f64,
    probe: serde_json::Value,
    secs: u64,
}

/// `POST /bench/revoke` on every app in `writers` (one wrk each, concurrently) for a fixed
/// time while `bench_app probe` times propagation from `probe.0` to `probe.1`.
fn writes(
    args: &BenchArgs,
    binary: &Path,
    writers: &[&App],
    probe: (&App, &App),
    jitter_ms: u64,
    samples: usize,
) -> Result<Writes> {
    let script = std::env::temp_dir().join(format!("bench-revoke-{}.lua", std::process::id()));
    std::fs::write(&script, "wrk.method = \"POST\"\n")?;
    let secs = (args.duration * 3).max(10);
    let conns = (args.connections / writers.len() as u32).max(4);
    let children: Vec<Child> = writers
        .iter()
        .map(|app| {
            Command::new("wrk")
                .args([
                    "-t1".to_owned(),
                    format!("-c{conns}"),
                    format!("-d{secs}s"),
                    "-s".to_owned(),
                    script.display().to_string(),
                    app.url("/bench/revoke"),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(anyhow::Error::from)
        })
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_millis(500));
    let probe_out = Command::new(binary)
        .args([
            "probe",
            "--a",
            &probe.0.url(""),
            "--b",
            &probe.1.url(""),
            "--samples",
            &samples.to_string(),
            "--jitter-ms",
            &jitter_ms.to_string(),
        ])
        .output()?;
    let mut per_sec = 0.0;
    for child in children {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        per_sec += text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .and_then(|r| r.trim().parse::<f64>().ok())
            .with_context(|| format!("write wrk:\n{text}"))?;
        if let Some(line) = text.lines().find(|l| l.contains("Non-2xx")) {
            bail!("failed writes: {}", line.trim());
        }
    }
    let _ = std::fs::remove_file(&script);
    ensure!(
        probe_out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&probe_out.stderr)
    );
    let probe = serde_json::from_slice(&probe_out.stdout).context("probe output")?;
    Ok(Writes {
        per_sec,
        probe,
        secs,
    })
}

// ---------------------------------------------------------------------------------------
// Data.

async fn seed_pg(pool: &sqlx::PgPool, n: u64) -> Result<()> {
    let t0 = Instant::now();
    sqlx::query(
        "INSERT INTO revoke_revocations (scope, key, expires_at, revoked_at)
         SELECT 'jti', gen_random_uuid()::text, extract(epoch from now())::bigint + 86400,
                extract(epoch from now())::bigint
         FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(n)?)
    .execute(pool)
    .await?;
    eprintln!(
        "seeded {n} revocations in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed_registry_pg(pool: &sqlx::PgPool, n: u64) -> Result<()> {
    let t0 = Instant::now();
    sqlx::query(
        "INSERT INTO revoke_tokens (jti, sub, fid, kind, iat, exp, label)
         SELECT gen_random_uuid()::text, 'user' || (i % 50000), gen_random_uuid()::text,
                CASE WHEN i % 2 = 0 THEN 'access' ELSE 'refresh' END,
                extract(epoch from now())::bigint - i, extract(epoch from now())::bigint - i + 86400,
                'device ' || (i % 97)
         FROM generate_series(1, $1) AS i",
    )
    .bind(i64::try_from(n)?)
    .execute(pool)
    .await?;
    // What autovacuum does soon after a bulk load (statistics, visibility map, hint bits),
    // done now so that the searches measure the table's steady state and not the vacuum.
    sqlx::query("VACUUM (ANALYZE) revoke_tokens")
        .execute(pool)
        .await?;
    eprintln!(
        "seeded {n} registry rows (PostgreSQL) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed_registry_sqlite(pool: &sqlx::SqlitePool, n: u64) -> Result<()> {
    let t0 = Instant::now();
    sqlx::query(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1)
         INSERT INTO revoke_tokens (jti, sub, fid, kind, iat, exp, label)
         SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
                || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
                'user' || (i % 50000), lower(hex(randomblob(16))),
                CASE WHEN i % 2 = 0 THEN 'access' ELSE 'refresh' END,
                unixepoch() - i, unixepoch() - i + 86400, 'device ' || (i % 97)
         FROM c",
    )
    .bind(i64::try_from(n)?)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    eprintln!(
        "seeded {n} registry rows (SQLite) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// First page (100 rows, as revokectl) of searches, 5 runs each after one warm-up; returns
/// `(what, median ms)`.
async fn time_search(store: &dyn Store) -> Result<Vec<(String, f64)>> {
    let now = rocket_revoke_core::now_secs();
    let queries: Vec<(&str, ListQuery)> = vec![
        (
            "no filter (newest first)",
            ListQuery {
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "text \"user4242\" (subject prefix)",
            ListQuery {
                text: Some("user4242".into()),
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "text \"device 7\" (label prefix)",
            ListQuery {
                text: Some("device 7".into()),
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "text \"ab\" (jti prefix)",
            ListQuery {
                text: Some("ab".into()),
                limit: 100,
                ..ListQuery::default()
            },
        ),
    ];
    let mut out = Vec::new();
    for (what, q) in queries {
        store.list(&q, now).await?;
        let mut times = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            let rows = store.list(&q, now).await?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            ensure!(!rows.is_empty(), "search {what} found nothing");
        }
        out.push((what.to_owned(), median(times)));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Report.

struct BigSet {
    revoked: u64,
    startup_s: f64,
    empty_startup_s: f64,
    rss_empty_kib: u64,
    rss_big_kib: u64,
    empty: Wrk,
    big: Wrk,
}

#[derive(Default)]
struct Report {
    out: String,
}

impl Report {
    fn machine(&mut self, args: &BenchArgs) -> Result<()> {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_default();
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let o = &mut self.out;
        let _ = writeln!(o, "Generated by `cargo xtask bench` (xtask/src/bench.rs); do not edit by hand: the next run replaces this section.\n");
        let _ = writeln!(
            o,
            "- **When:** {} (UTC)",
            capture("date", &["-u", "+%Y-%m-%d %H:%M"])
        );
        let _ = writeln!(
            o,
            "- **Machine:** {nproc} vCPUs, `{cpu}`; load average at start: {}",
            load()
        );
        let _ = writeln!(
            o,
            "- **Versions:** {}; {}; {}; PostgreSQL {}; git {}",
            capture("rustc", &["-V"]),
            capture("wrk", &["-v"])
                .lines()
                .next()
                .unwrap_or("wrk ?")
                .split(" [")
                .next()
                .unwrap_or(""),
            capture("redis-server", &["--version"])
                .split(" sha=")
                .next()
                .unwrap_or(""),
            capture("psql", &[&args.pg_url, "-Atc", "SHOW server_version"]),
            capture("git", &["rev-parse", "--short", "HEAD"]),
        );
        let _ = writeln!(
            o,
            "- **Command:** `cargo xtask bench` (wrk `-t{} -c{}`, {} s per run, median of {} runs; everything on 127.0.0.1, so wrk, the app, and the database share the {nproc} vCPUs)",
            args.threads, args.connections, args.duration, args.repeats
        );
        let _ = writeln!(o, "- **Token:** HS256, claims jti (UUID), sub, iat, exp, fid, kind, as minted by `Issuer`.");
        Ok(())
    }

    fn routes(&mut self, backend: &str, rows: &[(String, Wrk, Vec<f64>)]) {
        let o = &mut self.out;
        let find = |p: &str| rows.iter().find(|r| r.0 == p).map(|r| r.1);
        let open = find("/open").unwrap_or_default();
        let ours = find("/me").unwrap_or_default();
        let _ = writeln!(
            o,
            "\n### Guard vs unguarded vs per-request lookups — {backend} (load {})\n",
            load()
        );
        let _ = writeln!(
            o,
            "| route | guard | req/s (median) | runs | p50 | p99 | app CPU / request | req/s vs `/open` | ours is ×faster |"
        );
        let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (path, w, runs) in rows {
            let what = match path.as_str() {
                "/open" => "none",
                "/me" => "rocket-revoke `Authenticated`",
                ME_UNCACHED => "rocket-revoke `Authenticated`, verified-token cache off",
                "/me/sql" => "verify + SQL `SELECT 1 … WHERE key=$1`",
                "/me/redis" => "verify + Redis `GET`",
                _ => "",
            };
            let runs: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
            let _ = writeln!(
                o,
                "| `{path}` | {what} | {:.0} | {} | {:.2} ms | {:.2} ms | {:.1} µs | {:.1} % | {} |",
                w.rps,
                runs.join(", "),
                w.p50_ms,
                w.p99_ms,
                w.cpu_us,
                100.0 * w.rps / open.rps,
                if path.starts_with("/me/") {
                    format!("{:.2}×", ours.rps / w.rps)
                } else {
                    "".into()
                },
            );
        }
        let _ = writeln!(
            o,
            "\nGuarded / unguarded req/s: **{:.1} %** (target ≥ 90 %). By app CPU per request (what a CPU-bound server's throughput follows): {:.1} %; the guard costs {:.1} µs of CPU per request.",
            100.0 * ours.rps / open.rps,
            100.0 * open.cpu_us / ours.cpu_us,
            ours.cpu_us - open.cpu_us
        );
        if let Some(cold) = find(ME_UNCACHED) {
            let _ = writeln!(
                o,
                "With the verified-token cache off (every request verifies the signature): {:.1} % by req/s, {:.1} % by app CPU; the guard then costs {:.1} µs of CPU per request.",
                100.0 * cold.rps / open.rps,
                100.0 * open.cpu_us / cold.cpu_us,
                cold.cpu_us - open.cpu_us
            );
        }
    }

    fn big_set(&mut self, b: BigSet) {
        let o = &mut self.out;
        let per_token =
            (b.rss_big_kib.saturating_sub(b.rss_empty_kib)) as f64 * 1024.0 / b.revoked as f64;
        let drop_pct = 100.0 * (1.0 - b.big.rps / b.empty.rps);
        let cpu_rise = 100.0 * (b.big.cpu_us / b.empty.cpu_us - 1.0);
        let _ = writeln!(
            o,
            "\n### {} revoked tokens (PostgreSQL; load {})\n",
            b.revoked,
            load()
        );
        let _ = writeln!(o, "| measurement | value | target |");
        let _ = writeln!(o, "| --- | --- | --- |");
        let _ = writeln!(o, "| start-up to ready (spawn → `/health` 200), median | {:.2} s (empty set: {:.2} s) | – |", b.startup_s, b.empty_startup_s);
        let _ = writeln!(
            o,
            "| RSS after warm-up: 1M set / empty set | {:.1} MiB / {:.1} MiB | – |",
            b.rss_big_kib as f64 / 1024.0,
            b.rss_empty_kib as f64 / 1024.0
        );
        let _ = writeln!(o, "| RSS per revoked token | {per_token:.1} B | – |");
        let _ = writeln!(
            o,
            "| `GET /me` req/s: 1M set / empty set (median) | {:.0} / {:.0} | – |",
            b.big.rps, b.empty.rps
        );
        let _ = writeln!(
            o,
            "| app CPU per request: 1M set / empty set | {:.1} µs / {:.1} µs | – |",
            b.big.cpu_us, b.empty.cpu_us
        );
        let _ = writeln!(
            o,
            "| p50 / p99: 1M set | {:.2} ms / {:.2} ms | – |",
            b.big.p50_ms, b.big.p99_ms
        );
        let _ = writeln!(
            o,
            "| p50 / p99: empty set | {:.2} ms / {:.2} ms | – |",
            b.empty.p50_ms, b.empty.p99_ms
        );
        let _ = writeln!(
            o,
            "| throughput drop with 1M revoked (req/s) | {drop_pct:.1} % | ≤ 5 % |"
        );
        let _ = writeln!(
            o,
            "| app CPU per request, 1M vs empty | {cpu_rise:+.1} % | – |"
        );
    }

    fn search(&mut self, n: u64, pg: &[(String, f64)], sqlite: &[(String, f64)]) {
        let o = &mut self.out;
        let _ = writeln!(
            o,
            "\n### Registry search over {n} rows: first page (`Store::list`, 100 rows; load {})\n",
            load()
        );
        let _ = writeln!(o, "The query behind `revokectl search TEXT` and the TUI's first page, timed directly on the store (median of 5 after a warm-up; excludes process start and the engine's set load).\n");
        let _ = writeln!(o, "| search | PostgreSQL | SQLite | target |");
        let _ = writeln!(o, "| --- | --- | --- | --- |");
        for ((what, p), (_, s)) in pg.iter().zip(sqlite) {
            let _ = writeln!(o, "| {what} | {p:.1} ms | {s:.1} ms | ≤ 50 ms |");
        }
    }

    fn writes(&mut self, what: &str, w: &Writes, counts: Option<&[u64]>) {
        let o = &mut self.out;
        let p = &w.probe;
        let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(o, "\n### Revocation writes — {what} (load {})\n", load());
        let _ = writeln!(o, "| measurement | value | target |");
        let _ = writeln!(o, "| --- | --- | --- |");
        let _ = writeln!(
            o,
            "| committed revocations/s (`POST /bench/revoke`, group commit, {} s) | {:.0} | {} |",
            w.secs,
            w.per_sec,
            if what.starts_with("PostgreSQL") {
                "≥ 5,000/s"
            } else {
                "–"
            }
        );
        let _ = writeln!(
            o,
            "| propagation A → B during the writes: p50 / p90 / p99 / max ({} samples, {} timeouts) | {:.1} / {:.1} / {:.1} / {:.1} ms | – |",
            p["samples"], p["timeouts"], f("p50_ms"), f("p90_ms"), f("p99_ms"), f("max_ms")
        );
        if let Some(counts) = counts {
            let c: Vec<String> = counts.iter().map(u64::to_string).collect();
            let _ = writeln!(
                o,
                "| jtis in each instance's set afterwards | {} | equal |",
                c.join(" / ")
            );
        }
    }

    fn microbench(&mut self, target: &Path) -> Result<()> {
        let dir = target.join("criterion").join("guard_hs256");
        let read = |name: &str| -> Option<f64> {
            let text =
                std::fs::read_to_string(dir.join(name).join("new").join("estimates.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v["median"]["point_estimate"].as_f64()
        };
        let o = &mut self.out;
        let _ = writeln!(o, "\n### Guard microbenchmark (`cargo bench -p rocket-revoke --bench guard`, criterion median)\n");
        let decode = read("decode_alone");
        let _ = writeln!(o, "| benchmark | time | vs decode alone |");
        let _ = writeln!(o, "| --- | --- | --- |");
        for name in [
            "decode_alone",
            "guard",
            "guard_empty_set",
            "verify_only",
            "guard_uncached",
            "verify_uncached",
        ] {
            if let Some(t) = read(name) {
                let ratio = decode.map_or(String::new(), |d| format!("{:.2}×", t / d));
                let _ = writeln!(o, "| `{name}` | {:.2} µs | {ratio} |", t / 1e3);
            }
        }
        let _ = writeln!(o, "\nTarget: `guard` ≤ 1.1× `decode_alone`. The same token is checked each time, so `guard`, `guard_empty_set` and `verify_only` find its signature in the verified-token cache (a client's later requests); `guard_uncached` and `verify_uncached` run with the cache off (a token's first request).");
        render_bench(o, target);
        Ok(())
    }

    fn render(&self) -> String {
        format!(
            "## End-to-end benchmarks (issue 5)\n\n{BEGIN}\n{}{END}\n",
            self.out
        )
    }
}

/// The revokectl frame-render benchmark (criterion medians), next to the guard's.
fn render_bench(o: &mut String, target: &Path) {
    let dir = target.join("criterion").join("revokectl_render");
    let read = |name: &str| -> Option<f64> {
        let text =
            std::fs::read_to_string(dir.join(name).join("new").join("estimates.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    };
    let rows: Vec<(&str, &str, f64)> = [
        (
            "main_screen",
            "main screen: 50 token rows, counts, sync status, a search being typed",
        ),
        ("revoke_dialog", "the same with the revoke dialog open"),
        (
            "first_frame",
            "main screen into a fresh terminal (every cell drawn, as after a resize)",
        ),
    ]
    .into_iter()
    .filter_map(|(name, what)| read(name).map(|t| (name, what, t)))
    .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n### revokectl frame render (`cargo bench -p revokectl --bench render`, criterion median)\n"
    );
    let _ = writeln!(
        o,
        "One `Terminal::draw` of the TUI (layout, widgets, diff against the previous frame) into ratatui's `TestBackend`, 200×50 cells.\n"
    );
    let _ = writeln!(o, "| benchmark | frame | time |");
    let _ = writeln!(o, "| --- | --- | --- |");
    for (name, what, t) in rows {
        let _ = writeln!(o, "| `{name}` | {what} | {:.0} µs |", t / 1e3);
    }
}

/// Replaces the section between the markers, or appends it.
fn write_section(path: &Path, section: &str) -> Result<()> {
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let heading = "## End-to-end benchmarks (issue 5)\n\n";
    let new = match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let start = doc[..b].rfind(heading).unwrap_or(b);
            format!("{}{}{}", &doc[..start], section, &doc[e + END.len() + 1..])
        }
        _ => format!("{}\n{section}", doc.trim_end()),
    };
    std::fs::write(path, new)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Small helpers.

/// A minimal HTTP/1.1 request (`Connection: close`); returns the status and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&str>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = bearer {
        let _ = write!(req, "Authorization: Bearer {t}\r\n");
    }
    let body = json.unwrap_or("");
    if json.is_some() {
        let _ = write!(req, "Content-Type: application/json\r\n");
    }
    let _ = write!(req, "Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad HTTP response")?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn capture(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if s.is_empty() {
                s = String::from_utf8_lossy(&o.stderr).trim().to_owned();
            }
            s
        })
        .unwrap_or_else(|_| format!("{cmd}: not found"))
}

fn which(cmd: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    ensure!(found, "{cmd} not found on PATH");
    Ok(())
}

fn sh(cmd: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {cmd} {}", args.join(" "));
    let status = Command::new(cmd).args(args).status()?;
    ensure!(status.success(), "{cmd} failed: {status}");
    Ok(())
}

/// The workspace root: the current directory when it is one (has `Rocket.toml` and
/// `xtask/`), else the parent of this crate.
fn workspace_root() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        if cwd.join("Rocket.toml").is_file() && cwd.join("xtask").is_dir() {
            return cwd;
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
