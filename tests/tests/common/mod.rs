//! Shared by the end-to-end tests: the demo binary, and databases to run it on
//! (`revoke-testkit`'s `TestDb`, re-exported as `Db`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use revoke_tests::target_binary;

pub use revoke_testkit::TestDb as Db;

/// The `revoke-demo` binary, rebuilt by cargo first if its sources changed.
pub fn demo_binary() -> PathBuf {
    // Always ask cargo (a no-op when fresh): a stale binary would test old code.
    // `REVOKE_DEMO_PROFILE=release` (used by `cargo xtask soak`) picks the release build.
    let release = std::env::var("REVOKE_DEMO_PROFILE").as_deref() == Ok("release");
    let mut args = vec!["build", "-q", "-p", "revoke-demo"];
    if release {
        args.push("--release");
    }
    let status = Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(revoke_tests::workspace_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p revoke-demo failed");
    let binary = target_binary(if release { "release" } else { "debug" }, "revoke-demo");
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}
