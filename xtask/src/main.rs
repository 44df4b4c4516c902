//! `cargo xtask`: project automation.
#![forbid(unsafe_code)]

mod bench;
mod e2e;
mod package;
mod seed;
mod util;

use clap::{Parser, Subcommand};
use util::run;

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
    /// End-to-end benchmarks (issue 5): release build, wrk against bench_app on SQLite,
    /// PostgreSQL and Redis; writes docs/BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Fills a database with realistic tokens (families, refresh rotations, labels, some
    /// revoked, some expired).
    Seed(seed::SeedArgs),
    /// End-to-end: drives the real revokectl binary in tmux on a seeded SQLite database,
    /// then checks with `revokectl list --json` (and a revoke-demo instance, if built).
    E2e(e2e::E2eArgs),
    /// Packaging checks: the stated MSRV against every dependency, `cargo package` of the
    /// published crates, and `cargo install --path crates/revokectl` into a temporary root.
    Package,
    /// Mixed traffic (logins, refreshes and reuse, revocations of every scope, protected
    /// calls) across two demo instances on PostgreSQL for N minutes; fails on any revoked
    /// token accepted after the propagation window, any 5xx, or growing memory.
    Soak {
        /// How long to run.
        #[arg(long, default_value_t = 5)]
        minutes: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Ci => run("bash", &[".ci/run"]),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Seed(args) => seed::main(args),
        Cmd::E2e(args) => e2e::main(args),
        Cmd::Package => package::main(),
        Cmd::Soak { minutes } => soak(minutes),
    }
}

/// Runs the soak traffic mix (`revoke_tests::soak`) for `minutes`, release build.
fn soak(minutes: u64) -> anyhow::Result<()> {
    run("cargo", &["build", "--release", "-p", "revoke-demo"])?;
    let secs = (minutes * 60).to_string();
    util::run_with(
        util::cargo()
            .args([
                "test",
                "--release",
                "-p",
                "revoke-tests",
                "--test",
                "soak",
                "--",
                "--nocapture",
            ])
            .env("REVOKE_SOAK_SECS", &secs)
            .env("REVOKE_DEMO_PROFILE", "release"),
    )
}
