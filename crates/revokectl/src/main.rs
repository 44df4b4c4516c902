//! `revokectl`: the rocket-revoke admin tool. With no subcommand it opens a desktop-style
//! terminal dashboard; subcommands serve scripts (`--json`).
//!
//! Exit codes: 0 done, 1 the operation failed, 2 usage or configuration (bad URL, missing
//! file, unreachable server).
#![forbid(unsafe_code)]

mod cli;
mod tui;
mod worker;

// The TUI's model and rendering, the configuration and the engine's construction live in the
// library target (src/lib.rs), so that benchmarks and tests can reach them.
use revokectl::{action, app, config, timefmt, ui};

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    // Messages can quote keys from the database.
    eprintln!(
        "revokectl: {}",
        revokectl::text::escape_controls(&msg.to_string())
    );
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, format!("cannot start the runtime: {e}")),
    };
    let url = match config::resolve_url(cli.database_url.as_deref(), cli.config.as_deref()) {
        Ok(u) => u,
        Err(e) => return fail(2, e),
    };
    if let Some(Command::Migrate) = cli.command {
        return rt.block_on(async {
            let store = match config::open(&url, true).await {
                Ok(s) => s,
                Err(e) => return fail(2, e),
            };
            match store.migrate().await {
                Ok(()) => {
                    if cli.json {
                        println!("{}", serde_json::json!({"migrated": true, "database": config::describe(&url)}));
                    } else {
                        println!("migrated {}", config::describe(&url));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(1, format!("migration failed: {e}")),
            }
        });
    }
    if cli.command.is_none() && !tui::is_terminal() {
        return fail(
            2,
            "the dashboard needs a terminal; use a subcommand for scripts (see --help)",
        );
    }
    // The bounds to fall back on when no app has recorded any in the database.
    let fallback = match config::engine_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    // Connect before touching the terminal: a bad URL leaves it as it was. The engine reads
    // the lifetime bounds and retention the apps recorded; it records none and prunes only
    // when asked (`prune`).
    let engine = match rt.block_on(async {
        let store = config::open(&url, false).await?;
        revokectl::open_engine(store, fallback)
            .await
            .map_err(|e| config::not_ready(&url, &e))
    }) {
        Ok(e) => e,
        Err(e) => return fail(2, e),
    };
    match cli.command {
        Some(cmd) => match rt.block_on(cli::run(&engine, cmd, cli.json)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(if f.usage { 2 } else { 1 }, f.message),
        },
        None => match tui::run(&rt, engine, config::describe(&url), cli::default_actor()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, format!("terminal error: {e}")),
        },
    }
}
