//! Shared by the end-to-end tests: the demo binary, and databases to run it on
//! (`revoke-testkit`'s `TestDb`, re-exported as `Db`).
#![allow(dead_code)]

use std::path::PathBuf;

use revoke_tests::target_binary;

pub use revoke_testkit::TestDb as Db;

/// The `revoke-demo` binary, rebuilt by cargo first if its sources changed.
///
/// Debug: the workspace's test build (`cargo test --workspace --all-features --no-run`),
/// which `cargo nextest run` and `scripts/test.sh` have just made, so the call is a no-op
/// and the binary shares the tests' dependencies (`cargo build -p revoke-demo` resolves
/// features for the demo alone and would build sqlx, tokio and rocket again, inside the
/// first test that asks). `REVOKE_DEMO_PROFILE=release` (used by `cargo xtask soak`) picks
/// the release build of the demo alone.
pub fn demo_binary() -> PathBuf {
    // Always ask cargo (a no-op when fresh): a stale binary would test old code.
    let release = std::env::var("REVOKE_DEMO_PROFILE").as_deref() == Ok("release");
    let args: &[&str] = if release {
        &["build", "-q", "--release", "-p", "revoke-demo"]
    } else {
        &["test", "-q", "--workspace", "--all-features", "--no-run"]
    };
    let status = revoke_tests::cargo()
        .args(args)
        .current_dir(revoke_tests::workspace_root())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo {} failed", args.join(" "));
    let binary = target_binary(if release { "release" } else { "debug" }, "revoke-demo");
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}
