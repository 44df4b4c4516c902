//! A short run of the soak traffic mix (`revoke_tests::soak`): two real demo instances on
//! one PostgreSQL schema, about 20 seconds of mixed traffic. Zero revoked tokens accepted
//! after the propagation window, zero 5xx.

mod common;

// The mix lives in `tests/src/soak.rs` (so `cargo xtask soak` can run it for minutes); it
// is compiled here as well, so this test does not depend on how the library exports it.
// `soak` reaches the library's helpers through `super::`.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/soak.rs"]
mod soak;
use revoke_tests::{free_port, target_binary, workspace_root};

use std::time::Duration;

use common::{demo_binary, Db};
use soak::{run, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_on_postgres() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let secs = std::env::var("REVOKE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut config = SoakConfig::new(db.url(), Duration::from_secs(secs));
    config.binary = demo_binary();
    config.workers = 6;
    let report = run(&config).await.expect("soak run");
    eprintln!("{report}");
    assert!(report.passed(), "{report}");
    let total: u64 = report.requests.values().sum();
    assert!(total > 100, "too little traffic: {report}");
    for kind in [
        "login",
        "me",
        "refresh",
        "revoke_jti",
        "revoke_family",
        "revoke_subject",
    ] {
        assert!(
            report.requests.get(kind).is_some_and(|n| *n > 0),
            "no {kind} requests: {report}"
        );
    }
    assert!(
        report.revoked_refused > 0,
        "no revoked token was tried: {report}"
    );
    assert!(report.timeline.len() >= 2, "{report}");
    assert!(
        report
            .timeline
            .iter()
            .all(|s| s.rss_kib.iter().all(|kib| *kib > 0)),
        "{report}"
    );
    // Long runs (`cargo xtask soak`) outlive the refresh lifetime: revocations expire and
    // are pruned, so memory must level off.
    assert_ne!(
        report.memory_flat(),
        Some(false),
        "memory kept growing: {report}"
    );
    db.cleanup().await;
}
