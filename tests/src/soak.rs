//! The soak traffic mix: two `revoke-demo` instances on one database (PostgreSQL, so
//! revocations propagate by LISTEN/NOTIFY), and workers that log in, call `/me`, refresh,
//! reuse spent refresh tokens, and revoke by jti, family and subject, on random instances.
//!
//! It checks, for every protected call, that a token whose revocation was acknowledged
//! longer than the propagation window ago is refused, and that nothing answers a 5xx. It
//! reports the resident memory of both instances at the start and at the end.
//!
//! Used by the short `soak` test in `tests/tests/soak.rs` and meant for
//! `cargo xtask soak --minutes N`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::free_port;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The `revoke-demo` binary.
    pub binary: PathBuf,
    /// Where `Rocket.toml` is (the workspace root).
    pub root: PathBuf,
    /// The database both instances use (a PostgreSQL URL for the real soak).
    pub database_url: String,
    /// How long the traffic runs.
    pub duration: Duration,
    /// How long a revocation may take to reach the other instance; a revoked token accepted
    /// later than this after the revocation was acknowledged is a violation.
    pub propagation_window: Duration,
    /// Concurrent workers.
    pub workers: usize,
    /// Access-token lifetime, in seconds (short, so tokens expire and get pruned).
    pub access_ttl: u64,
    /// Refresh-token lifetime, in seconds, and the instances' `max_token_ttl_secs`: how long
    /// family and subject revocations stay in the set.
    pub refresh_ttl: u64,
}

impl SoakConfig {
    /// Defaults for `database_url` and `duration`: 8 workers, a 2 s window, 30 s access
    /// and 60 s refresh tokens, the debug binary.
    pub fn new(database_url: impl Into<String>, duration: Duration) -> Self {
        SoakConfig {
            binary: super::target_binary("debug", "revoke-demo"),
            root: super::workspace_root(),
            database_url: database_url.into(),
            duration,
            propagation_window: Duration::from_secs(2),
            workers: 8,
            access_ttl: 30,
            refresh_ttl: 60,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Requests per kind (`login`, `me`, `refresh`, `reuse`, `revoke_jti`, ...).
    pub requests: HashMap<&'static str, u64>,
    /// Responses with a 5xx status, and transport errors.
    pub server_errors: u64,
    /// Revoked tokens accepted after the propagation window (must be zero).
    pub revoked_accepted: u64,
    /// Revoked tokens accepted within the window (allowed; shows propagation at work).
    pub accepted_within_window: u64,
    /// Revoked tokens refused.
    pub revoked_refused: u64,
    /// Resident memory and revocation-set size over the run, about every tenth of it, from
    /// the start of the traffic to its end.
    pub timeline: Vec<Sample>,
    /// The refresh-token lifetime of the run (past it, revocations expire and are pruned).
    pub refresh_ttl: Duration,
    /// A few examples of violations, for the message.
    pub violations: Vec<String>,
}

/// One point of [`SoakReport::timeline`].
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Time since the traffic started.
    pub at: Duration,
    /// VmRSS of each instance, in KiB.
    pub rss_kib: Vec<u64>,
    /// Entries in the first instance's revocation set (jti, subject and family).
    pub set_len: u64,
}

impl SoakReport {
    /// Whether the run met the guarantees: no revoked token accepted after the window, no
    /// 5xx.
    pub fn passed(&self) -> bool {
        self.revoked_accepted == 0 && self.server_errors == 0
    }

    /// Whether resident memory stayed flat once revocations began to expire: every instance
    /// ends within 15% (or 2 MiB) of its resident memory at the middle of the run. `None`
    /// when the run is shorter than four refresh lifetimes, too short for the middle to be
    /// past the warm-up.
    pub fn memory_flat(&self) -> Option<bool> {
        let end = self.timeline.last()?;
        if end.at < self.refresh_ttl * 4 {
            return None;
        }
        let mid = self.timeline.iter().find(|s| s.at >= end.at / 2)?;
        Some(
            mid.rss_kib
                .iter()
                .zip(&end.rss_kib)
                .all(|(&m, &e)| e <= (m as f64 * 1.15) as u64 || e <= m + 2048),
        )
    }

    fn count(&mut self, kind: &'static str) {
        *self.requests.entry(kind).or_default() += 1;
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.requests.iter().collect();
        kinds.sort();
        let total: u64 = self.requests.values().sum();
        writeln!(f, "requests: {total}")?;
        for (k, n) in kinds {
            writeln!(f, "  {k:<16} {n}")?;
        }
        writeln!(f, "5xx / transport errors: {}", self.server_errors)?;
        writeln!(
            f,
            "revoked tokens: {} refused, {} accepted within the window, {} accepted after it",
            self.revoked_refused, self.accepted_within_window, self.revoked_accepted
        )?;
        for s in &self.timeline {
            writeln!(
                f,
                "  t={:>5}s  RSS (KiB) {:?}  revocation set {}",
                s.at.as_secs(),
                s.rss_kib,
                s.set_len
            )?;
        }
        match self.memory_flat() {
            Some(flat) => writeln!(f, "memory flat in the second half: {flat}")?,
            None => writeln!(f, "memory flatness: run shorter than 4 refresh lifetimes")?,
        }
        for v in &self.violations {
            writeln!(f, "violation: {v}")?;
        }
        Ok(())
    }
}

/// One demo process; killed when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    async fn start(config: &SoakConfig) -> Result<Instance> {
        let port = free_port()?;
        let child = Command::new(&config.binary)
            .current_dir(&config.root)
            .env("ROCKET_PORT", port.to_string())
            .env(
                "ROCKET_DATABASES",
                format!("{{revoke={{url=\"{}\"}}}}", config.database_url),
            )
            .env(
                "ROCKET_REVOKE",
                // Revocations live as long as the longest token can (`max_token_ttl_secs`),
                // so tying it to the refresh lifetime lets them expire within the run.
                format!(
                    "{{access_ttl={a},refresh_ttl={r},max_token_ttl_secs={r},prune_interval_secs=5}}",
                    a = config.access_ttl,
                    r = config.refresh_ttl
                ),
            )
            .env("ROCKET_LOG_LEVEL", "off")
            .env("ROCKET_CLI_COLORS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", config.binary.display()))?;
        let instance = Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/health", instance.base)).send().await {
                if r.status().is_success() {
                    return Ok(instance);
                }
            }
            if Instant::now() > deadline {
                bail!("demo at {} did not become healthy", instance.base);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token the workers know about.
#[derive(Debug, Clone)]
struct Known {
    access: String,
    sub: String,
    fid: String,
    iat: i64,
    exp: i64,
    /// When its revocation was acknowledged (`Some`: must be refused after the window).
    revoked_at: Option<Instant>,
}

/// Every access token issued, and the refresh tokens of live sessions.
#[derive(Default)]
struct World {
    tokens: Vec<Known>,
    /// (refresh token, fid, sub) of sessions that can still rotate.
    refresh: Vec<(String, String, String)>,
    /// Spent refresh tokens (presenting one again revokes its family).
    spent: Vec<(String, String)>,
}

impl World {
    fn revoke(&mut self, at: Instant, pred: impl Fn(&Known) -> bool) {
        for t in self.tokens.iter_mut().filter(|t| pred(t)) {
            t.revoked_at.get_or_insert(at);
        }
    }
}

/// A small xorshift generator (no dependency; reproducibility is not needed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The claims of a compact JWS (no verification: the test only reads what it minted).
fn claims(token: &str) -> Value {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let payload = token.split('.').nth(1).unwrap_or_default();
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in payload.bytes() {
        let Some(v) = B64.iter().position(|&x| x == c) else {
            return Value::Null;
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

struct Shared {
    world: Mutex<World>,
    report: Mutex<SoakReport>,
    window: Duration,
}

impl Shared {
    fn count(&self, kind: &'static str, status: Option<reqwest::StatusCode>) {
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        r.count(kind);
        if status.is_none_or(|s| s.is_server_error()) {
            r.server_errors += 1;
            if r.violations.len() < 10 {
                r.violations.push(format!("{kind}: {status:?}"));
            }
        }
    }

    fn add_pair(&self, pair: &Value) {
        let (Some(access), Some(refresh)) = (
            pair["access_token"].as_str(),
            pair["refresh_token"].as_str(),
        ) else {
            return;
        };
        let c = claims(access);
        let known = Known {
            access: access.to_owned(),
            sub: c["sub"].as_str().unwrap_or_default().to_owned(),
            fid: c["fid"].as_str().unwrap_or_default().to_owned(),
            iat: c["iat"].as_i64().unwrap_or_default(),
            exp: c["exp"].as_i64().unwrap_or_default(),
            revoked_at: None,
        };
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        w.refresh
            .push((refresh.to_owned(), known.fid.clone(), known.sub.clone()));
        w.tokens.push(known);
        // Keep the working set bounded: forget tokens well past their expiry.
        let now = now_secs();
        if w.tokens.len() > 5_000 {
            w.tokens.retain(|t| t.exp > now - 5);
        }
        if w.refresh.len() > 2_000 {
            w.refresh.drain(..1_000);
        }
        if w.spent.len() > 2_000 {
            w.spent.drain(..1_000);
        }
    }
}

async fn worker(seed: u64, bases: Arc<Vec<String>>, shared: Arc<Shared>, deadline: Instant) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut rng = Rng(seed | 1);
    let users = ["alice", "bob", "carol", "dave", "erin"];
    while Instant::now() < deadline {
        let base = &bases[rng.below(bases.len())];
        let roll = rng.below(100);
        // Pick a known token: now and then a revoked one, to check enforcement.
        let pick = {
            let w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
            if w.tokens.is_empty() {
                None
            } else {
                let want_revoked = rng.below(3) == 0;
                let mut found = None;
                for _ in 0..8 {
                    let t = &w.tokens[rng.below(w.tokens.len())];
                    if t.revoked_at.is_some() == want_revoked {
                        found = Some(t.clone());
                        break;
                    }
                }
                found.or_else(|| w.tokens.last().cloned())
            }
        };
        match (roll, pick) {
            (0..=14, _) | (_, None) => {
                // Log in as one of the demo users (three exist; others are refused).
                let user = users[rng.below(3)];
                let r = http
                    .post(format!("{base}/auth/login"))
                    .json(&serde_json::json!({"username": user, "password": "password"}))
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("login", status);
                if let Ok(r) = r {
                    if let Ok(pair) = r.json::<Value>().await {
                        shared.add_pair(&pair);
                    }
                }
            }
            (15..=64, Some(t)) => {
                let sent = Instant::now();
                let r = http
                    .get(format!("{base}/me"))
                    .bearer_auth(&t.access)
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("me", status);
                // Re-read: it may have been revoked since it was picked.
                let revoked_at = {
                    let w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    w.tokens
                        .iter()
                        .find(|k| k.access == t.access)
                        .and_then(|k| k.revoked_at)
                };
                if let (Some(status), Some(at)) = (status, revoked_at) {
                    let mut rep = shared.report.lock().unwrap_or_else(|p| p.into_inner());
                    if status.is_success() {
                        if sent > at + shared.window {
                            rep.revoked_accepted += 1;
                            if rep.violations.len() < 10 {
                                rep.violations.push(format!(
                                    "revoked token accepted {:?} after its revocation (sub {}, on {base})",
                                    sent - at,
                                    t.sub
                                ));
                            }
                        } else {
                            rep.accepted_within_window += 1;
                        }
                    } else {
                        rep.revoked_refused += 1;
                    }
                }
            }
            (65..=74, _) => {
                // Rotate a session's refresh token.
                let session = {
                    let mut w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    if w.refresh.is_empty() {
                        None
                    } else {
                        let i = rng.below(w.refresh.len());
                        Some(w.refresh.swap_remove(i))
                    }
                };
                let Some((refresh, fid, _sub)) = session else {
                    continue;
                };
                let r = http
                    .post(format!("{base}/auth/refresh"))
                    .json(&serde_json::json!({ "refresh_token": refresh }))
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("refresh", status);
                if let Ok(r) = r {
                    if r.status().is_success() {
                        if let Ok(pair) = r.json::<Value>().await {
                            shared.add_pair(&pair);
                        }
                    }
                }
                shared
                    .world
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .spent
                    .push((refresh, fid));
            }
            (75..=78, _) => {
                // Present a spent refresh token again: the family is revoked.
                let spent = {
                    let w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    (!w.spent.is_empty()).then(|| w.spent[rng.below(w.spent.len())].clone())
                };
                let Some((refresh, fid)) = spent else {
                    continue;
                };
                let r = http
                    .post(format!("{base}/auth/refresh"))
                    .json(&serde_json::json!({ "refresh_token": refresh }))
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("reuse", status);
                if status == Some(reqwest::StatusCode::UNAUTHORIZED) {
                    let at = Instant::now();
                    let mut w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    w.revoke(at, |k| k.fid == fid);
                    w.refresh.retain(|(_, f, _)| *f != fid);
                }
            }
            (79..=88, Some(t)) => {
                let r = http
                    .delete(format!("{base}/auth/token"))
                    .bearer_auth(&t.access)
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("revoke_jti", status);
                if status.is_some_and(|s| s.is_success()) {
                    let at = Instant::now();
                    let mut w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    w.revoke(at, |k| k.access == t.access);
                }
            }
            (89..=94, Some(t)) => {
                let r = http
                    .delete(format!("{base}/auth/token?family=true"))
                    .bearer_auth(&t.access)
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("revoke_family", status);
                if status.is_some_and(|s| s.is_success()) {
                    let at = Instant::now();
                    let mut w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    w.revoke(at, |k| k.fid == t.fid);
                    w.refresh.retain(|(_, f, _)| *f != t.fid);
                }
            }
            (_, Some(t)) => {
                // Log out everywhere. The cut-off is the server's clock (seconds) at the
                // revocation: tokens issued at or before the second the request was sent
                // are certainly covered.
                let sent_sec = now_secs();
                let r = http
                    .delete(format!("{base}/auth/sessions"))
                    .bearer_auth(&t.access)
                    .send()
                    .await;
                let status = r.as_ref().ok().map(|r| r.status());
                shared.count("revoke_subject", status);
                if status.is_some_and(|s| s.is_success()) {
                    let at = Instant::now();
                    let mut w = shared.world.lock().unwrap_or_else(|p| p.into_inner());
                    w.revoke(at, |k| k.sub == t.sub && k.iat < sent_sec);
                }
            }
        }
    }
}

/// Runs the mix for `config.duration` on two instances and reports. Fails only when the
/// instances cannot be started; check [`SoakReport::passed`].
pub async fn run(config: &SoakConfig) -> Result<SoakReport> {
    let instances = [
        Instance::start(config).await?,
        Instance::start(config).await?,
    ];
    let bases = Arc::new(instances.iter().map(|i| i.base.clone()).collect::<Vec<_>>());
    let shared = Arc::new(Shared {
        world: Mutex::new(World::default()),
        report: Mutex::new(SoakReport::default()),
        window: config.propagation_window,
    });
    let started = Instant::now();
    let deadline = started + config.duration;
    let sampler = tokio::spawn(sample(
        instances.iter().map(|i| i.child.id()).collect(),
        bases[0].clone(),
        started,
        config.duration,
    ));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..config.workers.max(1) {
        workers.spawn(worker(
            seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            bases.clone(),
            shared.clone(),
            deadline,
        ));
    }
    while let Some(r) = workers.join_next().await {
        r.context("soak worker panicked")?;
    }
    let mut report = shared
        .report
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    report.timeline = sampler.await.context("soak sampler panicked")?;
    report.refresh_ttl = Duration::from_secs(config.refresh_ttl);
    Ok(report)
}

/// Samples resident memory and the revocation set's size about ten times over `duration`.
async fn sample(pids: Vec<u32>, base: String, started: Instant, duration: Duration) -> Vec<Sample> {
    let http = reqwest::Client::new();
    let every = (duration / 10).max(Duration::from_secs(1));
    let mut out = Vec::new();
    loop {
        let at = started.elapsed();
        // The demo's introspection client (Rocket.toml) reads the details.
        let details = http
            .get(format!("{base}/health/details"))
            .basic_auth("demo-gateway", Some("demo-gateway-secret"))
            .send();
        let set_len = match details.await {
            Ok(r) => r.json::<Value>().await.map_or(0, |h| {
                ["jtis", "subjects", "families"]
                    .iter()
                    .filter_map(|k| h["revocations"][k].as_u64())
                    .sum()
            }),
            Err(_) => 0,
        };
        out.push(Sample {
            at,
            rss_kib: pids.iter().map(|&p| rss_kib(p)).collect(),
            set_len,
        });
        if at >= duration {
            return out;
        }
        tokio::time::sleep(every.min(duration.saturating_sub(at))).await;
    }
}

/// VmRSS from `/proc/<pid>/status`, in KiB (0 where `/proc` is not available).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
