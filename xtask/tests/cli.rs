//! The `xtask` command line: every subcommand is reachable, and a wrong one is refused the
//! way clap refuses it (exit status 2, the reason on stderr). As an integration test it also
//! makes the workspace's test build produce `target/debug/xtask`, which `scripts/xtask.sh`
//! runs without building xtask's dependencies a second time.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn help_names_every_subcommand() {
    let out = Command::new(BIN).arg("--help").output().expect("run xtask");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["ci", "bench", "seed", "e2e", "package", "soak"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing from:\n{help}"
        );
    }
}

#[test]
fn an_unknown_subcommand_is_refused_with_status_2() {
    let out = Command::new(BIN).arg("deploy").output().expect("run xtask");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unrecognized subcommand 'deploy'"), "{err}");
}
