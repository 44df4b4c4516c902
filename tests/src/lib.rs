//! Workspace-level helpers: start real `revoke-demo` processes and talk to them over HTTP.
//! Used by the end-to-end tests in `tests/tests/` and by the propagation benchmark
//! (`cargo run --release -p revoke-tests --bin propagation`).
#![forbid(unsafe_code)]

pub mod soak;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `cargo`, without the variables cargo sets for the processes it runs (a test, `cargo
/// run`): a build started from such a process must see the environment a build from the
/// shell sees. ring's build script reruns when `CARGO_MANIFEST_DIR` changes, so a test that
/// built with it set rebuilt ring and everything above it (sqlx, rocket: about two minutes
/// here), and the next build from the shell rebuilt them back.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_"]
            .iter()
            .any(|p| name.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_TARGET_TMPDIR",
                "CARGO_PRIMARY_PACKAGE",
                "OUT_DIR",
            ]
            .contains(&&*name);
        if set_by_cargo {
            cmd.env_remove(&*name);
        }
    }
    cmd
}

/// A `revoke-demo` process on its own port; killed when dropped.
pub struct Demo {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:8123`.
    pub base: String,
}

impl Demo {
    /// Starts `binary` from `root` (where `Rocket.toml` lives) on `port` with the database
    /// `url` and waits until `/health` answers.
    pub async fn start(binary: &Path, root: &Path, port: u16, url: &str) -> Result<Self> {
        let child = Command::new(binary)
            .current_dir(root)
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_DATABASES", format!("{{revoke={{url=\"{url}\"}}}}"))
            .env("ROCKET_LOG_LEVEL", "off")
            .env("ROCKET_CLI_COLORS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let demo = Demo {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/health", demo.base)).send().await {
                if r.status().is_success() {
                    return Ok(demo);
                }
            }
            if Instant::now() > deadline {
                bail!("demo on port {port} did not become healthy within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The workspace root (where `Rocket.toml` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of a binary built into the same target directory as this one (`profile` is
/// `debug` or `release`).
pub fn target_binary(profile: &str, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join(profile).join(name)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Logs `user` in and returns `(access_token, refresh_token)`.
pub async fn login(client: &reqwest::Client, base: &str, user: &str) -> Result<(String, String)> {
    let r = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"username": user, "password": "password"}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login failed: {}", r.status());
    }
    let v: serde_json::Value = r.json().await?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .with_context(|| format!("login response without {k}"))
    };
    Ok((field("access_token")?, field("refresh_token")?))
}

/// Status of `GET /me` with `token`.
pub async fn me_status(client: &reqwest::Client, base: &str, token: &str) -> Result<u16> {
    let r = client
        .get(format!("{base}/me"))
        .bearer_auth(token)
        .send()
        .await?;
    Ok(r.status().as_u16())
}

/// `q`-quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn cargo_runs_without_the_variables_cargo_set_for_this_test() {
        assert!(
            std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
            "cargo sets it for tests"
        );
        let cmd = super::cargo();
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        assert!(
            removed.iter().any(|k| *k == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
        assert!(
            removed.iter().any(|k| *k == "CARGO_PKG_NAME"),
            "{removed:?}"
        );
        assert!(
            !removed.iter().any(|k| *k == "PATH" || *k == "CARGO_HOME"),
            "{removed:?}"
        );
    }
}
