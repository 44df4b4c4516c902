//! `cargo xtask e2e`: the real `revokectl` binary in tmux on a seeded SQLite database.
//!
//! Searches and revokes with the keyboard, checks the result with `revokectl list --json`,
//! watches a CLI restore arrive live, and, when the `revoke-demo` binary builds and
//! answers `/health`, checks that a demo instance rejects a token revoked from the TUI.

/// Checks that passed so far; printed as the closing line.
static PASSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Logs a passed check and counts it.
macro_rules! pass {
    ($($arg:tt)*) => {{
        PASSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!($($arg)*);
    }};
}

use anyhow::{bail, ensure, Context};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, free_port, target_dir, workspace_root};

/// Arguments of `e2e`.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    /// Tokens to seed.
    #[arg(long, default_value_t = 20_000)]
    pub tokens: u64,
    /// Keep the tmux session and database when done (for a look).
    #[arg(long)]
    pub keep: bool,
    /// Skip the revoke-demo part even if the binary exists.
    #[arg(long)]
    pub no_demo: bool,
}

struct Tmux {
    session: String,
    keep: bool,
}

impl Tmux {
    fn start(cmd: &str) -> anyhow::Result<Self> {
        let session = format!("revokectl-e2e-{}", std::process::id());
        util::run(
            "tmux",
            &[
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "160",
                "-y",
                "48",
                cmd,
            ],
        )?;
        Ok(Self {
            session,
            keep: false,
        })
    }

    fn keys(&self, keys: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let ok = Command::new("tmux").args(&args).status()?.success();
        ensure!(ok, "tmux send-keys {keys:?} failed");
        Ok(())
    }

    fn text(&self, text: &str) -> anyhow::Result<()> {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()?
            .success();
        ensure!(ok, "tmux send-keys -l failed");
        Ok(())
    }

    fn capture(&self) -> anyhow::Result<String> {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Waits until the screen satisfies `pred`; returns it.
    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            let screen = self.capture()?;
            if pred(&screen) {
                pass!("  ok: {what} ({} ms)", start.elapsed().as_millis());
                return Ok(screen);
            }
            if start.elapsed() > timeout {
                bail!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if !self.keep {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.session])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn revokectl(bin: &Path, url: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(bin)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "revokectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request to the demo on 127.0.0.1:`port`, at most 5 s; status 0 (and no body) when
/// it cannot be made, so callers poll on the status alone.
fn request(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    util::http(port, method, path, bearer, json, Duration::from_secs(5))
        .unwrap_or_else(|_| (0, String::new()))
}

/// Builds and starts revoke-demo on the database; `None` when it is not there (yet).
fn start_demo(url: &str, dir: &Path) -> anyhow::Result<Option<(Demo, u16)>> {
    if !workspace_root()
        .join("crates/revoke-demo/src/main.rs")
        .exists()
    {
        return Ok(None);
    }
    let Ok(bin) = util::test_binary("revoke-demo") else {
        eprintln!("  skip: revoke-demo does not build");
        return Ok(None);
    };
    let port = free_port()?;
    let child = Command::new(&bin)
        .current_dir(workspace_root())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_DATABASES", format!("{{revoke={{url=\"{url}\"}}}}"))
        .env("ROCKET_LOG_LEVEL", "critical")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("demo.log"))?)
        .spawn()?;
    let demo = Demo(child);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let (200, _) = request(port, "GET", "/health", None, None) {
            return Ok(Some((demo, port)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("  skip: revoke-demo did not answer /health (see demo.log)");
    Ok(None)
}

/// `cargo xtask e2e`.
pub fn main(args: E2eArgs) -> anyhow::Result<()> {
    let bin = util::test_binary("revokectl")?;
    let dir = tempfile::Builder::new().prefix("revokectl-e2e").tempdir()?;
    let db = dir.path().join("e2e.db");
    let url = format!("sqlite://{}", db.display());
    eprintln!("seeding {} tokens into {url}", args.tokens);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let seeded = rt.block_on(crate::seed::seed(&url, args.tokens, 7, true, false))?;
    pass!("  ok: seeded in {:.1} s", seeded.secs);

    // A token to find: an active one.
    let active = revokectl(
        &bin,
        &url,
        &["list", "--json", "--status", "active", "--limit", "1"],
    )?;
    let target = active
        .get(0)
        .context("no active token in the seeded database")?;
    let jti = target["jti"].as_str().context("jti")?.to_owned();
    let prefix = &jti[..13];
    eprintln!("target token {jti}");

    let mut tmux = Tmux::start(&format!("{} --database-url {url}", bin.display()))?;
    tmux.keep = args.keep;
    let long = Duration::from_secs(20);
    tmux.wait("the dashboard", long, |s| {
        s.contains("Tokens ·") && s.contains("page in")
    })?;

    // Search by jti prefix, keep the filter.
    tmux.keys(&["/"])?;
    tmux.text(prefix)?;
    tmux.wait("the search result", long, |s| {
        s.contains(&jti) && s.contains("· 1 loaded")
    })?;
    tmux.keys(&["Enter"])?;

    // Revoke with the keyboard: r, a reason, Enter.
    tmux.keys(&["r"])?;
    tmux.wait("the revoke dialog", long, |s| {
        s.contains("Revoke token") && s.contains("Reason")
    })?;
    tmux.text("e2e: laptop stolen")?;
    tmux.keys(&["Enter"])?;
    let screen = tmux.wait("the revocation on screen", long, |s| {
        s.contains("revoked jti") && s.lines().any(|l| l.contains(&jti) && l.contains("revoked"))
    })?;
    std::fs::write(target_dir().join("e2e-screen.txt"), &screen)?;

    // The CLI sees it.
    let rows = revokectl(&bin, &url, &["list", "--json", "--search", prefix])?;
    let row = rows
        .as_array()
        .and_then(|a| a.iter().find(|r| r["jti"] == jti.as_str()))
        .context("token missing from list --json")?;
    ensure!(row["status"] == "revoked", "status is {}", row["status"]);
    ensure!(
        row["reason"] == "e2e: laptop stolen",
        "reason is {}",
        row["reason"]
    );
    ensure!(row["actor"].is_string(), "no actor");
    pass!("  ok: list --json says revoked, with reason and actor");

    // Live: a restore by another process shows up without a key press.
    let started = Instant::now();
    revokectl(
        &bin,
        &url,
        &["restore", &jti, "--reason", "e2e: found it", "--json"],
    )?;
    tmux.wait(
        "the restore from another process",
        Duration::from_millis(1500),
        |s| s.lines().any(|l| l.contains(&jti) && l.contains("active")),
    )?;
    pass!("  ok: live update in {} ms", started.elapsed().as_millis());

    // The event log shows both.
    tmux.keys(&["F6"])?;
    tmux.wait("the audit trail", long, |s| {
        s.contains("Event log") && s.contains("e2e: laptop stolen") && s.contains("e2e: found it")
    })?;
    tmux.keys(&["F6"])?;

    if args.no_demo {
        eprintln!("  skip: demo part (--no-demo)");
    } else {
        match start_demo(&url, dir.path())? {
            None => eprintln!("  skip: demo part (revoke-demo not available)"),
            Some((_demo, port)) => demo_part(&tmux, port)?,
        }
    }

    tmux.keys(&["q"])?;
    let start = Instant::now();
    while tmux.alive() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(!tmux.alive() || args.keep, "revokectl did not quit on q");
    // A failed check returns an error before this line, so every check counted passed.
    println!(
        "e2e: {} passed, 0 failed",
        PASSED.load(std::sync::atomic::Ordering::Relaxed)
    );
    if args.keep {
        eprintln!(
            "kept {} and tmux session {}",
            dir.keep().display(),
            tmux.session
        );
    }
    Ok(())
}

fn demo_part(tmux: &Tmux, port: u16) -> anyhow::Result<()> {
    let (code, body) = request(
        port,
        "POST",
        "/auth/login",
        None,
        Some(r#"{"username":"alice","password":"password"}"#),
    );
    ensure!(code == 200, "login failed: {code} {body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let token = v["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    let (code, body) = request(port, "GET", "/me", Some(&token), None);
    ensure!(code == 200, "/me before revocation: {code} {body}");
    let me: serde_json::Value = serde_json::from_str(&body)?;
    let jti = me["jti"].as_str().context("jti in /me")?.to_owned();
    pass!("  ok: demo issued {jti} to alice");

    // Find it in the TUI and revoke it with the keyboard.
    // Esc clears the search; wait for it, or the terminal reads Esc + '/' as Alt+/.
    tmux.keys(&["Escape"])?;
    tmux.wait("the search cleared", Duration::from_secs(5), |s| {
        s.contains("search subject, jti, label")
    })?;
    tmux.keys(&["/"])?;
    tmux.text(&jti[..13])?;
    tmux.wait("the demo token", Duration::from_secs(10), |s| {
        s.contains(&jti) && s.contains("· 1 loaded")
    })?;
    tmux.keys(&["Enter", "r"])?;
    tmux.wait("the revoke dialog", Duration::from_secs(5), |s| {
        s.contains("Revoke token")
    })?;
    tmux.text("e2e: demo")?;
    tmux.keys(&["Enter"])?;
    let start = Instant::now();
    loop {
        let (code, _) = request(port, "GET", "/me", Some(&token), None);
        if code == 401 {
            pass!(
                "  ok: the demo rejects it ({} ms)",
                start.elapsed().as_millis()
            );
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(5) {
            bail!("the demo still accepts the revoked token: {code}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
