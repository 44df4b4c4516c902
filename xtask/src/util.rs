//! Helpers every subcommand uses: where the workspace and its target dir are, running a
//! command, and a minimal HTTP client for the services the subcommands start locally.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

/// The workspace root: the current directory when it is one (has `Rocket.toml` and
/// `xtask/`), else the parent of this crate.
pub fn workspace_root() -> PathBuf {
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

/// The target dir cargo builds into: `CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `cargo`, without the variables cargo sets for the processes it runs (a test, `cargo
/// run`): a build started from such a process must see the environment a build from the
/// shell sees. ring's build script reruns when `CARGO_MANIFEST_DIR` changes, so a test that
/// built with it set rebuilt ring and everything above it (sqlx, rocket: about two minutes
/// here), and the next build from the shell rebuilt them back.
pub fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
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

/// The workspace's test build, `cargo test --workspace --all-features --no-run`: the one
/// full build CI makes (`cargo nextest run` runs this same build), so after the tests it is a
/// no-op. Binaries built by it (`revokectl`, `revoke-demo`, `xtask`: packages with
/// integration tests) share its dependencies; `cargo build -p <bin>` would resolve features
/// for that package alone and build sqlx, tokio and rocket a second time.
pub fn test_build() -> Result<()> {
    run_with(
        cargo()
            .args(["test", "-q", "--workspace", "--all-features", "--no-run"])
            .current_dir(workspace_root()),
    )
}

/// A binary of the test build ([`test_build`]), built first.
pub fn test_binary(name: &str) -> Result<PathBuf> {
    test_build()?;
    let bin = target_dir().join("debug").join(name);
    ensure!(
        bin.exists(),
        "{} is missing after the test build",
        bin.display()
    );
    Ok(bin)
}

/// Runs a command, logging it first; fails unless it succeeds.
pub fn run(cmd: &str, args: &[&str]) -> Result<()> {
    run_with(Command::new(cmd).args(args))
}

/// Runs a prepared command (extra environment, working directory), logging it first;
/// fails unless it succeeds.
pub fn run_with(cmd: &mut Command) -> Result<()> {
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let env: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    if env.is_empty() {
        eprintln!("$ {line}");
    } else {
        eprintln!("$ {} {line}", env.join(" "));
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", cmd.get_program().to_string_lossy()))?;
    ensure!(status.success(), "{line} failed: {status}");
    Ok(())
}

/// A command's stdout (or, when that is empty, its stderr), trimmed; `"<cmd>: not found"`
/// when it cannot run. For version strings and the like in reports.
pub fn capture(cmd: &str, args: &[&str]) -> String {
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

/// Fails unless `cmd` is an executable file on `PATH`.
pub fn which(cmd: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    ensure!(found, "{cmd} not found on PATH");
    Ok(())
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A minimal HTTP/1.1 request to `127.0.0.1:port` (`Connection: close`), with an optional
/// bearer token and JSON body; returns the status and body. `timeout` bounds the connect
/// and each read.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
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
