//! Load: wrk runs against the guarded routes, and revocation writes with propagation
//! probed while they run.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use super::processes::App;
use super::report::median;
use super::{BenchArgs, ME_UNCACHED};
use crate::util::capture;

/// One wrk run.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Wrk {
    pub(super) rps: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    /// CPU time of the app process (all threads, user + system) per request, µs: far less
    /// sensitive than req/s to other load on a shared machine.
    pub(super) cpu_us: f64,
}

impl Wrk {
    /// Per-field medians.
    pub(super) fn median(runs: &[Wrk]) -> Wrk {
        Wrk {
            rps: median(runs.iter().map(|r| r.rps).collect()),
            p50_ms: median(runs.iter().map(|r| r.p50_ms).collect()),
            p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
            cpu_us: median(runs.iter().map(|r| r.cpu_us).collect()),
        }
    }
}

pub(super) fn wrk_get(
    app: &App,
    path: &str,
    token: &str,
    secs: u64,
    args: &BenchArgs,
) -> Result<Wrk> {
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
pub(super) fn clock_ticks() -> f64 {
    capture("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0)
}

pub(super) fn wrk(args: &[&str]) -> Result<String> {
    let out = Command::new("wrk").args(args).output()?;
    ensure!(out.status.success(), "wrk failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn parse_wrk(out: &str) -> Result<Wrk> {
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
pub(super) fn parse_duration_ms(s: &str) -> Result<f64> {
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
pub(super) fn compare_routes(
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
pub(super) fn compare_guards(
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
pub(super) struct Writes {
    pub(super) per_sec: f64,
    pub(super) probe: serde_json::Value,
    pub(super) secs: u64,
}

/// `POST /bench/revoke` on every app in `writers` (one wrk each, concurrently) for a fixed
/// time while `bench_app probe` times propagation from `probe.0` to `probe.1`.
pub(super) fn writes(
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
