//! The processes a benchmark run starts: bench_app instances, `redis-server` (when none
//! answers on 6379) and the PostgreSQL schemas they use; each is stopped or dropped at the
//! end.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::BENCH_REVOKE;
use crate::util::{free_port, http, run, which};

/// How long a request to a bench_app may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running bench_app; killed on drop.
pub(super) struct App {
    pub(super) child: Child,
    pub(super) port: u16,
}

impl App {
    /// Starts bench_app on `url` and waits until `/health` answers 200 (at most 120 s).
    pub(super) fn start(binary: &Path, url: &str) -> Result<App> {
        App::start_with(binary, url, &[])
    }

    /// [`App::start`] with more `revoke` keys (`key=value` in TOML, merged into
    /// [`BENCH_REVOKE`]).
    pub(super) fn start_with(binary: &Path, url: &str, revoke: &[&str]) -> Result<App> {
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
            if let Ok((200, _)) = http(port, "GET", "/health", None, None, HTTP_TIMEOUT) {
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

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(super) fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = http(self.port, "GET", path, None, None, HTTP_TIMEOUT)?;
        ensure!(status == 200, "GET {path}: {status}");
        Ok(serde_json::from_str(&body)?)
    }

    /// An access token for `user`.
    pub(super) fn login(&self, user: &str) -> Result<String> {
        let body = format!(r#"{{"username":"{user}","password":"password"}}"#);
        let (status, body) = http(
            self.port,
            "POST",
            "/auth/login",
            None,
            Some(&body),
            HTTP_TIMEOUT,
        )?;
        ensure!(status == 200, "login: {status}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(v["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// CPU time of the process so far (utime + stime), clock ticks.
    pub(super) fn cpu_ticks(&self) -> Result<u64> {
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
    pub(super) fn rss_kib(&self) -> Result<u64> {
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
pub(super) struct Redis(Option<Child>);

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(super) fn ensure_redis() -> Result<Redis> {
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
pub(super) struct PgSchemas {
    pub(super) url: String,
    pub(super) names: Vec<String>,
}

impl PgSchemas {
    /// A fresh schema; returns a URL whose search_path is it.
    pub(super) fn create(&mut self, name: &str) -> Result<String> {
        let schema = format!("{name}_{}", std::process::id());
        run(
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

    pub(super) fn drop_all(&mut self) {
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
