//! `cargo xtask package`: what publishing needs, checked without publishing.
//!
//! 1. MSRV: every publishable crate states `rust-version`, and no dependency in the lock file
//!    requires a newer Rust than that (the machine has one toolchain, so the check reads what
//!    each dependency declares; clippy's `incompatible_msrv` lint, on by default, covers our
//!    own use of newer standard-library items).
//! 2. Names: every published name is free on crates.io, or ours ([`OWNED`]).
//! 3. `cargo package` of the library crates and revokectl: metadata, license file, README;
//!    each package is built from its tarball.
//! 4. `cargo install --path crates/revokectl` into a temporary root, and the installed
//!    binary migrates and reports on a fresh SQLite database.
//!
//! The builds of 3 and 4 use the workspace's target dir, so they reuse the dependencies
//! the tests (and `cargo build -p revokectl`) already built: see [`shared_target`].

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::util::{self, run_with, target_dir};

/// The crates that are published.
const PUBLISHED: [&str; 3] = ["rocket-revoke-core", "rocket-revoke", "revokectl"];

/// Published names on crates.io that are ours: taken, but by us. Empty until the first
/// publish; a taken name not listed here fails [`names`].
const OWNED: &[&str] = &[];

/// The sparse index `names` asks.
const INDEX: &str = "https://index.crates.io";

/// Runs the four checks, timing each.
pub fn main() -> Result<()> {
    step("msrv", msrv)?;
    step("names", names)?;
    step("cargo package", || {
        let mut args = vec![
            "package",
            "--locked",
            "--allow-dirty",
            // The verification build of each tarball uses the workspace's profile for
            // dependencies (the root manifest's `[profile]` is not in a package), so the
            // dependencies built for the tests are reused rather than rebuilt unoptimised.
            "--config",
            r#"profile.dev.package."*".opt-level=2"#,
            "--config",
            r#"profile.dev.package."*".debug="line-tables-only""#,
        ];
        for name in PUBLISHED {
            args.extend(["-p", name]);
        }
        run_with(shared_target(util::cargo().args(&args)))
    })?;
    step("cargo install", install)?;
    eprintln!("package: ok");
    Ok(())
}

/// Runs one check and logs its wall time.
fn step(what: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    let start = Instant::now();
    let result = f();
    eprintln!(
        "package: {what} {} in {:.0} s",
        if result.is_ok() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    result
}

/// `cmd` with `CARGO_TARGET_DIR` set to the workspace's target dir. Without it, `cargo
/// package` verifies each tarball in its own target dir under `target/package/` (every
/// dependency built from scratch, three times), and `cargo install` from anything but a
/// workspace path builds in a temporary dir.
fn shared_target(cmd: &mut Command) -> &mut Command {
    cmd.env("CARGO_TARGET_DIR", target_dir())
}

/// The sparse-index path of a crate name: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`.
fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

/// What the index says about one name.
enum Lookup {
    Free,
    Taken,
    /// No answer (network, curl missing, an unexpected status): the reason.
    Unknown(String),
}

/// Asks the sparse index for `name` (404: free, 200: taken). curl, because the index is
/// HTTPS and xtask has no TLS client: one lookup per name does not justify compiling
/// rustls into xtask; curl is on every CI image and developer machine.
fn lookup(name: &str) -> Lookup {
    let url = format!("{INDEX}/{}", index_path(name));
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--max-time", "20", "--retry", "2", &url])
        .output();
    match out {
        Err(e) => Lookup::Unknown(format!("cannot run curl: {e}")),
        Ok(out) => match String::from_utf8_lossy(&out.stdout).trim() {
            "404" => Lookup::Free,
            "200" => Lookup::Taken,
            code => Lookup::Unknown(format!(
                "{url}: HTTP status {code:?} {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        },
    }
}

/// Every published name is free on crates.io or in [`OWNED`]. crates.io treats `-` and
/// `_` as the same (`foo-bar` is taken when `foo_bar` is), and the index files each crate
/// under its own spelling, so both spellings are asked. Without an answer: an error under
/// CI (`CI` set), a warning otherwise.
fn names() -> Result<()> {
    let mut taken = Vec::new();
    let mut unknown = Vec::new();
    for name in PUBLISHED {
        let mut spellings = vec![name.to_owned()];
        if name.contains('-') {
            spellings.push(name.replace('-', "_"));
        }
        for spelling in spellings {
            match lookup(&spelling) {
                Lookup::Free => {}
                Lookup::Taken if OWNED.contains(&name) => {
                    eprintln!("names: {spelling} is on crates.io, ours (OWNED)");
                }
                Lookup::Taken => taken.push(format!("{name} (as {spelling})")),
                Lookup::Unknown(why) => unknown.push(format!("{spelling}: {why}")),
            }
        }
    }
    ensure!(
        taken.is_empty(),
        "published names taken on crates.io by someone else (rename, or add them to OWNED \
         in xtask/src/package.rs if they are ours): {}",
        taken.join(", ")
    );
    if !unknown.is_empty() {
        let msg = format!(
            "could not check names on crates.io ({INDEX}):\n  {}",
            unknown.join("\n  ")
        );
        if std::env::var_os("CI").is_some() {
            bail!("{msg}");
        }
        eprintln!("WARNING: {msg}");
        return Ok(());
    }
    eprintln!(
        "names: {} free on crates.io (or ours)",
        PUBLISHED.join(", ")
    );
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
    let out = util::cargo()
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
    // a second optimised build of everything; the build is the one `cargo build -p
    // revokectl` (the e2e run) already made.
    run_with(shared_target(util::cargo().args([
        "install",
        "--locked",
        "--debug",
        "--path",
        "crates/revokectl",
        "--root",
        root_str,
    ])))?;
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

#[cfg(test)]
mod tests {
    use super::index_path;

    #[test]
    fn sparse_index_paths() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Rocket-Revoke"), "ro/ck/rocket-revoke");
        assert_eq!(index_path("revokectl"), "re/vo/revokectl");
    }
}
