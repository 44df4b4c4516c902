//! Crash safety: SIGKILL a real `revoke-demo` process in the middle of a burst of
//! revocations, restart it on the same database, and check that every revocation it
//! acknowledged (2xx) before dying is enforced. SQLite and PostgreSQL.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{demo_binary, Db};
use revoke_tests::{free_port, login, me_status, workspace_root, Demo};

/// Tokens in the burst.
const TOKENS: usize = 150;

async fn kill_mid_burst(db: &Db) {
    let binary = demo_binary();
    let root = workspace_root();
    let url = db.url();
    let mut demo = Demo::start(&binary, &root, free_port().expect("port"), &url)
        .await
        .expect("start demo");
    let http = reqwest::Client::new();

    let mut tokens = Vec::with_capacity(TOKENS);
    for i in 0..TOKENS {
        let user = ["alice", "bob", "carol"][i % 3];
        tokens.push(login(&http, &demo.base, user).await.expect("login").0);
    }
    for t in tokens.iter().take(3) {
        assert_eq!(me_status(&http, &demo.base, t).await.expect("me"), 200);
    }

    // The burst: every token revokes itself, all at once.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut burst = tokio::task::JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let (http, base, token, acked) = (
            http.clone(),
            demo.base.clone(),
            token.clone(),
            acked.clone(),
        );
        burst.spawn(async move {
            let r = http
                .delete(format!("{base}/auth/token"))
                .bearer_auth(&token)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let ok = matches!(&r, Ok(r) if r.status().is_success());
            if ok {
                acked.fetch_add(1, Ordering::SeqCst);
            }
            (i, ok)
        });
    }
    // Kill once a part of the burst is acknowledged, while the rest is in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < TOKENS / 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    demo.kill();
    let at_kill = acked.load(Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    while let Some(r) = burst.join_next().await {
        let (i, ok) = r.expect("task");
        if ok {
            acknowledged.push(i);
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "no revocation was acknowledged before the kill"
    );
    eprintln!(
        "{} of {TOKENS} revocations acknowledged ({at_kill} when SIGKILL was sent)",
        acknowledged.len()
    );

    // Restart on the same database: every acknowledged revocation holds.
    let demo = Demo::start(&binary, &root, free_port().expect("port"), &url)
        .await
        .expect("restart demo");
    let mut unacked_revoked = 0;
    for (i, token) in tokens.iter().enumerate() {
        let status = me_status(&http, &demo.base, token).await.expect("me");
        if acknowledged.contains(&i) {
            assert_eq!(
                status, 401,
                "acknowledged revocation #{i} lost in the crash"
            );
        } else {
            // Not acknowledged: may or may not have committed, never a server error.
            assert!(status == 200 || status == 401, "token #{i}: {status}");
            unacked_revoked += usize::from(status == 401);
        }
    }
    eprintln!(
        "{unacked_revoked} of {} unacknowledged revocations had committed",
        TOKENS - acknowledged.len()
    );
    // And the restarted instance works.
    let (fresh, _) = login(&http, &demo.base, "alice").await.expect("login");
    assert_eq!(me_status(&http, &demo.base, &fresh).await.expect("me"), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_revocations_survive_sigkill() {
    let db = Db::sqlite().await;
    kill_mid_burst(&db).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_acknowledged_revocations_survive_sigkill() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    kill_mid_burst(&db).await;
    db.cleanup().await;
}
