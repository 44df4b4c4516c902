//! `cargo xtask`: project automation.
#![forbid(unsafe_code)]

mod e2e;
mod seed;

use clap::{Parser, Subcommand};

/// Project automation for rocket-revoke.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs what CI runs: fmt, clippy and the tests.
    Ci,
    /// Fills a database with realistic tokens (families, refresh rotations, labels, some
    /// revoked, some expired).
    Seed(seed::SeedArgs),
    /// End-to-end: drives the real revokectl binary in tmux on a seeded SQLite database,
    /// then checks with `revokectl list --json` (and a revoke-demo instance, if built).
    E2e(e2e::E2eArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Ci => run("bash", &[".ci/run"]),
        Cmd::Seed(args) => seed::main(args),
        Cmd::E2e(args) => e2e::main(args),
    }
}

/// Runs a command, logging it first; fails unless it succeeds.
pub fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("$ {cmd} {}", args.join(" "));
    let status = std::process::Command::new(cmd).args(args).status()?;
    anyhow::ensure!(status.success(), "{cmd} failed: {status}");
    Ok(())
}
