//! `cargo xtask package`: what publishing needs, checked without publishing.
//!
//! 1. MSRV: every publishable crate states `rust-version`, and no dependency in the lock file
//!    requires a newer Rust than that (the machine has one toolchain, so the check reads what
//!    each dependency declares; clippy's `incompatible_msrv` lint, on by default, covers our
//!    own use of newer standard-library items).
//! 2. `cargo package` of the library crates and revokectl: metadata, license file, README;
//!    each package is built from its tarball.
//! 3. `cargo install --path crates/revokectl` into a temporary root, and the installed
//!    binary migrates and reports on a fresh SQLite database.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

/// The crates that are published.
const PUBLISHED: [&str; 3] = ["rocket-revoke-core", "rocket-revoke", "revokectl"];

/// Runs the three checks.
pub fn main() -> Result<()> {
    msrv()?;
    crate::run(
        "cargo",
        &[
            "package",
            "--locked",
            "--allow-dirty",
            "-p",
            "rocket-revoke-core",
            "-p",
            "rocket-revoke",
            "-p",
            "revokectl",
        ],
    )?;
    install()?;
    eprintln!("package: ok");
    Ok(())
}

/// `1.88` or `1.88.0` as (major, minor).
fn version(v: &str) -> Result<(u64, u64)> {
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or_default().parse()?;
    let minor = parts.next().unwrap_or("0").parse()?;
    Ok((major, minor))
}

fn msrv() -> Result<()> {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"].as_array().context("packages")?;
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .context("workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut ours = None;
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default();
        if PUBLISHED.contains(&name) {
            let Some(rv) = p["rust_version"].as_str() else {
                bail!("{name} states no rust-version");
            };
            let rv = version(rv)?;
            ensure!(ours.is_none_or(|o| o == rv), "{name}: rust-version differs");
            ours = Some(rv);
        }
    }
    let ours = ours.context("no published crate found")?;
    // Only what the published crates can pull in matters, but every dependency of the
    // workspace is held to the same bar: simpler, and stricter.
    let mut newer = Vec::new();
    let mut checked = 0;
    for p in packages {
        let id = p["id"].as_str().unwrap_or_default();
        if members.contains(&id) {
            continue;
        }
        checked += 1;
        if let Some(rv) = p["rust_version"].as_str() {
            if version(rv)? > ours {
                newer.push(format!(
                    "{} {} needs Rust {rv}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    ensure!(
        newer.is_empty(),
        "dependencies newer than the stated MSRV {}.{}:\n  {}",
        ours.0,
        ours.1,
        newer.join("\n  ")
    );
    eprintln!(
        "msrv: {checked} dependencies checked against rust-version {}.{}",
        ours.0, ours.1
    );
    Ok(())
}

fn install() -> Result<()> {
    let root = tempfile::tempdir()?;
    let root_str = root.path().to_str().context("temp path")?;
    // `--debug` with the workspace's target dir: the point is that the install works, not
    // a second optimised build of everything.
    crate::run(
        "cargo",
        &[
            "install",
            "--locked",
            "--debug",
            "--path",
            "crates/revokectl",
            "--root",
            root_str,
        ],
    )?;
    let bin = root.path().join("bin").join("revokectl");
    ensure!(bin.exists(), "{} was not installed", bin.display());
    let db = root.path().join("fresh.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let out = run_bin(&bin, &["--version"])?;
    ensure!(out.starts_with("revokectl "), "--version printed {out:?}");
    run_bin(&bin, &["--database-url", &url, "migrate"])?;
    let stats = run_bin(&bin, &["--database-url", &url, "--json", "stats"])?;
    let stats: Value = serde_json::from_str(&stats).context("stats --json")?;
    ensure!(
        stats["tokens"] == 0,
        "unexpected stats on a fresh database: {stats}"
    );
    eprintln!("install: {} works", bin.display());
    Ok(())
}

fn run_bin(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output()?;
    ensure!(
        out.status.success(),
        "revokectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
