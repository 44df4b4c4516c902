//! `cargo xtask`: project automation.

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Ci => run("bash", &[".ci/run"]),
    }
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("$ {cmd} {}", args.join(" "));
    let status = std::process::Command::new(cmd).args(args).status()?;
    anyhow::ensure!(status.success(), "{cmd} failed: {status}");
    Ok(())
}
