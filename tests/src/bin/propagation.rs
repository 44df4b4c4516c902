//! Propagation benchmark: two demo instances on one database; the time from the response to
//! a revoking request on instance A until instance B rejects the token.
//!
//! ```sh
//! cargo build --release -p revoke-demo
//! cargo run --release -p revoke-tests --bin propagation -- --backend postgres --samples 1000
//! cargo run --release -p revoke-tests --bin propagation -- --backend sqlite --samples 1000
//! ```
#![forbid(unsafe_code)]

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use revoke_tests::{free_port, login, me_status, quantile, target_binary, workspace_root, Demo};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Measures revocation propagation between two demo instances.
#[derive(Parser)]
struct Args {
    /// Which database the two instances share.
    #[arg(long, value_enum, default_value = "postgres")]
    backend: Backend,
    /// How many revocations to time.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// PostgreSQL URL (the benchmark uses its own schema there).
    #[arg(
        long,
        env = "REVOKE_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// Give up on one sample after this many milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let binary = target_binary("release", "revoke-demo");
    if !binary.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p revoke-demo` first",
            binary.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("revoke-propagation-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = match args.backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("demo.db").display()),
        Backend::Postgres => {
            let schema = format!("bench_prop_{}", std::process::id());
            let status = std::process::Command::new("psql")
                .arg(&args.pg_url)
                .args([
                    "-qc",
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
                ])
                .status()?;
            if !status.success() {
                bail!("could not create schema {schema}");
            }
            let sep = if args.pg_url.contains('?') { '&' } else { '?' };
            format!("{}{sep}options=-csearch_path%3D{schema}", args.pg_url)
        }
    };
    let root = workspace_root();
    let a = Demo::start(&binary, &root, free_port()?, &url).await?;
    let b = Demo::start(&binary, &root, free_port()?, &url).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;

    let mut samples = Vec::with_capacity(args.samples);
    let mut timeouts = 0usize;
    for i in 0..args.samples {
        let (access, _) = login(&client, &a.base, ["alice", "bob", "carol"][i % 3]).await?;
        if me_status(&client, &b.base, &access).await? != 200 {
            bail!("instance B rejected a fresh token");
        }
        let r = client
            .delete(format!("{}/auth/token", a.base))
            .bearer_auth(&access)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("revocation on A failed: {}", r.status());
        }
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(args.timeout_ms);
        loop {
            if me_status(&client, &b.base, &access).await? == 401 {
                samples.push(t0.elapsed());
                break;
            }
            if Instant::now() > deadline {
                timeouts += 1;
                break;
            }
        }
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "backend={:?} samples={} timeouts={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        args.backend,
        samples.len(),
        timeouts,
        ms(quantile(&samples, 0.5)),
        ms(quantile(&samples, 0.9)),
        ms(quantile(&samples, 0.99)),
        ms(samples.last().copied().unwrap_or_default()),
    );
    if timeouts > 0 {
        bail!(
            "{timeouts} revocations did not reach instance B within {} ms",
            args.timeout_ms
        );
    }
    Ok(())
}
