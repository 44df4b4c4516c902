//! A revocation's life: repeats that change nothing, first who/why/when, history while in
//! force, batched and scheduled prunes, the supervised sync task, recorded lifetime bounds,
//! exact keys. Every test body runs on SQLite and PostgreSQL unless named for one.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use rocket_revoke_core::store::{
    EventQuery, PgStore, PruneReport, SqliteStore, Store, TokenRecord, TokenStatus, CHANNEL,
    PRUNE_BATCH,
};
use rocket_revoke_core::{
    Engine, EngineConfig, Error, EventKind, ManualClock, RevokeRequest, Scope, SharedClock,
    TokenKind, TokenRef,
};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

both_backends!(
    a_revocation_that_changes_nothing_writes_and_announces_nothing,
    re_revoking_keeps_the_first_who_why_and_when,
    history_is_kept_while_the_revocation_is_in_force,
    prune_works_in_small_batches,
    the_scheduled_prune_runs_on_one_instance_at_a_time,
    a_panicking_sync_task_is_restarted_and_reports_it,
    raising_the_recorded_lifetime_extends_standing_revocations,
    uuid_jtis_match_exactly_in_the_set_and_the_database,
    blank_keys_and_future_cut_offs_are_refused_and_change_nothing,
);

const DAY: i64 = 24 * 3600;

fn fast() -> EngineConfig {
    EngineConfig {
        poll_interval_ms: 20,
        ..EngineConfig::default()
    }
}

/// A new pool on `db` whose store reads `clock`. On PostgreSQL its connections carry the
/// application name `app` when given, so their backend pids can be looked up.
async fn clocked(db: &TestDb, clock: SharedClock, app: Option<&str>) -> Arc<dyn Store> {
    match db {
        TestDb::Sqlite { url, .. } => Arc::new(
            SqliteStore::connect(url)
                .await
                .expect("sqlite")
                .with_clock(clock),
        ),
        TestDb::Postgres { url, schema } => {
            let mut opts = sqlx::postgres::PgConnectOptions::from_str(url)
                .expect("pg url")
                .options([
                    ("search_path", schema.as_str()),
                    ("synchronous_commit", "off"),
                ]);
            if let Some(app) = app {
                opts = opts.application_name(app);
            }
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await
                .expect("postgres");
            Arc::new(PgStore::new(pool).with_clock(clock))
        }
    }
}

async fn engine_on(db: &TestDb, clock: &ManualClock, config: EngineConfig) -> Engine {
    Engine::new(clocked(db, clock.shared(), None).await, config)
        .await
        .expect("engine")
}

fn token(jti: &str, sub: &str, fid: Option<&str>, iat: i64, exp: i64) -> TokenRecord {
    TokenRecord {
        jti: jti.into(),
        sub: sub.into(),
        fid: fid.map(Into::into),
        kind: TokenKind::Access,
        iat,
        exp,
        label: None,
    }
}

fn jti_ref(jti: &str) -> TokenRef<'_> {
    TokenRef {
        jti: Some(jti),
        ..TokenRef::default()
    }
}

fn sub_ref(sub: &str, iat: i64) -> TokenRef<'_> {
    TokenRef {
        jti: Some("some-other-token"),
        sub: Some(sub),
        fid: None,
        iat: Some(iat),
        iss: None,
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Each stored revocation's end of its time in force, by (scope, key).
async fn expiries(store: &Arc<dyn Store>, now: i64) -> HashMap<(Scope, String), Option<i64>> {
    store
        .snapshot(now)
        .await
        .unwrap()
        .revocations
        .into_iter()
        .map(|r| ((r.scope, r.key), r.expires_at))
        .collect()
}

/// NOTIFYs on [`CHANNEL`] sent by one pool's connections (the channel is shared by every
/// schema, and other tests write on the same server at the same time).
struct Announcements {
    listener: sqlx::postgres::PgListener,
    admin: sqlx::PgConnection,
    app: String,
}

impl Announcements {
    async fn new(url: &str, app: &str) -> Self {
        use sqlx::Connection;
        let mut listener = sqlx::postgres::PgListener::connect(url).await.unwrap();
        listener.listen(CHANNEL).await.unwrap();
        Self {
            listener,
            admin: sqlx::PgConnection::connect(url).await.unwrap(),
            app: app.to_owned(),
        }
    }

    /// Payloads of the pool's notifications arriving within `window`, stopping early after
    /// `enough` of them.
    async fn collect(&mut self, window: Duration, enough: usize) -> Vec<String> {
        // The writes are done: every connection that made one exists now.
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(&self.app)
                .fetch_all(&mut self.admin)
                .await
                .unwrap();
        assert!(!pids.is_empty(), "the store's connections are not visible");
        let deadline = tokio::time::Instant::now() + window;
        let mut got = Vec::new();
        while got.len() < enough {
            let Ok(n) = tokio::time::timeout_at(deadline, self.listener.recv()).await else {
                break;
            };
            let n = n.unwrap();
            if i32::try_from(n.process_id()).is_ok_and(|pid| pids.contains(&pid)) {
                got.push(n.payload().to_owned());
            }
        }
        got
    }

    /// Exactly one notification, announcing `id`.
    async fn expect_one(&mut self, id: i64) {
        let first = self.collect(Duration::from_secs(5), 1).await;
        assert_eq!(first, [id.to_string()], "one NOTIFY announcing event {id}");
        let more = self.collect(Duration::from_millis(300), 1).await;
        assert!(more.is_empty(), "a second NOTIFY: {more:?}");
    }

    async fn expect_none(&mut self) {
        let got = self.collect(Duration::from_millis(300), 1).await;
        assert!(got.is_empty(), "nothing was written, yet NOTIFY: {got:?}");
    }
}

async fn a_revocation_that_changes_nothing_writes_and_announces_nothing(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let app = format!("lifetime-{}", uuid::Uuid::new_v4().simple());
    let store = clocked(db, clock.shared(), Some(&app)).await;
    let e = Engine::new(store.clone(), fast()).await.unwrap();
    let mut notes = match db {
        TestDb::Postgres { url, .. } => Some(Announcements::new(url, &app).await),
        TestDb::Sqlite { .. } => None,
    };
    let t0 = e.now_secs();
    store
        .register(&[token("held", "alice", None, t0 - 10, t0 + 600)])
        .await
        .unwrap();

    let first = e
        .revoke(RevokeRequest::jti("held").reason("first"))
        .await
        .unwrap()
        .expect("the first revocation is written");
    assert_eq!(first.expires_at, Some(e.bounds().jti_until(t0 + 600)));
    if let Some(n) = notes.as_mut() {
        n.expect_one(first.id).await;
    }
    let stats = store.stats(t0).await.unwrap();
    assert_eq!((stats.events, stats.revocations), (1, 1));

    for i in 0..50 {
        // Time passes, but a registered token's revocation ends at its exp + grace: the
        // same revocation every time, whatever the form of the request.
        if i % 10 == 9 {
            clock.advance_secs(1);
        }
        let req = match i % 4 {
            0 => RevokeRequest::jti("held"),
            1 => RevokeRequest::jti("held").reason("again").actor("someone"),
            2 => RevokeRequest::jti("held").expires_at(t0 + 600),
            _ => RevokeRequest::jti("held").expires_at(t0 + 600 - i),
        };
        let got = e.revoke(req).await.unwrap();
        assert!(got.is_none(), "repeat {i} wrote {got:?}");
    }
    assert_eq!(store.stats(t0).await.unwrap(), stats, "nothing written");
    assert_eq!(e.status().cursor, first.id);
    assert_eq!(e.check(&jti_ref("held")), Some(Scope::Jti));
    if let Some(n) = notes.as_mut() {
        n.expect_none().await;
    }

    // Subject cut-offs: an earlier or equal one is already covered, a later one is not.
    let now = e.now_secs();
    let cut = e
        .revoke(RevokeRequest::subject("alice").cutoff(now - 100))
        .await
        .unwrap()
        .expect("a new subject revocation");
    if let Some(n) = notes.as_mut() {
        n.expect_one(cut.id).await;
    }
    let stats = store.stats(now).await.unwrap();
    for earlier in [now - 100, now - 101, now - 5000] {
        let got = e
            .revoke(RevokeRequest::subject("alice").cutoff(earlier))
            .await
            .unwrap();
        assert!(got.is_none(), "cut-off {earlier} wrote {got:?}");
    }
    assert_eq!(store.stats(now).await.unwrap(), stats, "nothing written");
    if let Some(n) = notes.as_mut() {
        n.expect_none().await;
    }
    assert_eq!(e.check(&sub_ref("alice", now - 100)), Some(Scope::Subject));
    assert_eq!(e.check(&sub_ref("alice", now - 99)), None);

    let later = e
        .revoke(RevokeRequest::subject("alice").cutoff(now - 50))
        .await
        .unwrap()
        .expect("a later cut-off is stronger and is written");
    assert_eq!(later.cutoff, Some(now - 50));
    assert_eq!(later.expires_at, Some(e.bounds().issued_until(now - 50)));
    assert_eq!(store.stats(now).await.unwrap().events, stats.events + 1);
    if let Some(n) = notes.as_mut() {
        n.expect_one(later.id).await;
    }
    assert_eq!(e.check(&sub_ref("alice", now - 99)), Some(Scope::Subject));
}

async fn re_revoking_keeps_the_first_who_why_and_when(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let e = engine_on(db, &clock, fast()).await;
    let store = e.store().clone();
    let t0 = e.now_secs();
    store
        .register(&[
            token("laptop-1", "dana", Some("f-1"), t0 - 30, t0 + 600),
            token("phone-1", "erin", Some("f-2"), t0 - 30, t0 + 600),
        ])
        .await
        .unwrap();

    let first = e
        .revoke(
            RevokeRequest::subject("dana")
                .reason("stolen laptop")
                .actor("ops"),
        )
        .await
        .unwrap()
        .expect("first revocation");
    clock.advance_secs(5);
    let t1 = e.now_secs();
    let second = e
        .revoke(
            RevokeRequest::subject("dana")
                .reason("logged out")
                .actor("dana"),
        )
        .await
        .unwrap()
        .expect("a later cut-off is written");
    assert_eq!((first.cutoff, second.cutoff), (Some(t0), Some(t1)));

    let info = store.token("laptop-1", t1).await.unwrap().unwrap();
    assert_eq!(info.status, TokenStatus::Revoked);
    let rev = info.revocation.unwrap();
    assert_eq!(
        (
            rev.scope,
            rev.reason.as_deref(),
            rev.actor.as_deref(),
            rev.revoked_at
        ),
        (Scope::Subject, Some("stolen laptop"), Some("ops"), t0),
        "the row keeps the first revocation's who, why and when"
    );
    // The row itself moved forward to the later cut-off.
    let snap = store.snapshot(t1).await.unwrap();
    let row = snap
        .revocations
        .iter()
        .find(|r| r.scope == Scope::Subject && r.key == "dana")
        .unwrap();
    assert_eq!(
        (row.cutoff, row.expires_at, row.revoked_at),
        (Some(t1), Some(e.bounds().issued_until(t1)), t0)
    );

    let trail = store
        .events(&EventQuery {
            key: Some("dana".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = trail
        .iter()
        .map(|ev| {
            (
                ev.id,
                ev.kind,
                ev.cutoff,
                ev.reason.as_deref(),
                ev.actor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                second.id,
                EventKind::Revoke,
                Some(t1),
                Some("logged out"),
                Some("dana")
            ),
            (
                first.id,
                EventKind::Revoke,
                Some(t0),
                Some("stolen laptop"),
                Some("ops")
            ),
        ],
        "both revocations, newest first"
    );
    assert_eq!(trail[0].at_ms - trail[1].at_ms, 5_000);

    // The same for a jti whose end moves later: the row keeps the first reason.
    let j1 = e
        .revoke(
            RevokeRequest::jti("phone-1")
                .expires_at(t1 + 100)
                .reason("lost phone")
                .actor("erin"),
        )
        .await
        .unwrap()
        .expect("first jti revocation");
    clock.advance_secs(5);
    let j2 = e
        .revoke(
            RevokeRequest::jti("phone-1")
                .expires_at(t1 + 900)
                .reason("found it, still revoke")
                .actor("ops"),
        )
        .await
        .unwrap()
        .expect("a later end is written");
    assert!(j2.expires_at > j1.expires_at);
    let rev = store
        .token("phone-1", e.now_secs())
        .await
        .unwrap()
        .unwrap()
        .revocation
        .unwrap();
    assert_eq!(
        (
            rev.scope,
            rev.reason.as_deref(),
            rev.actor.as_deref(),
            rev.revoked_at
        ),
        (Scope::Jti, Some("lost phone"), Some("erin"), t1)
    );
    let trail = store
        .events(&EventQuery {
            key: Some("phone-1".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = trail.iter().map(|ev| ev.id).collect();
    assert_eq!(ids, [j2.id, j1.id]);
}

async fn history_is_kept_while_the_revocation_is_in_force(db: &TestDb) {
    const RETENTION: i64 = 60;
    let clock = ManualClock::starting_now();
    let e = engine_on(db, &clock, fast()).await;
    let store = e.store().clone();
    let t0 = e.now_secs();
    let kept = e
        .revoke(RevokeRequest::jti("kept").expires_at(t0 + 3600).reason("r"))
        .await
        .unwrap()
        .unwrap();
    let until = kept.expires_at.unwrap();
    assert_eq!(until, e.bounds().jti_until(t0 + 3600));
    // A control: a lifted revocation's events are pruned by age.
    e.revoke(RevokeRequest::jti("lifted"))
        .await
        .unwrap()
        .unwrap();
    e.restore(Scope::Jti, "lifted", None, None)
        .await
        .unwrap()
        .unwrap();

    clock.advance_secs(1000);
    // Newer than every other event (the newest event is always kept).
    e.revoke(RevokeRequest::jti("marker"))
        .await
        .unwrap()
        .unwrap();
    let report = store.prune(e.now_secs(), RETENTION).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            revocations: 0,
            tokens: 0,
            events: 2
        },
        "only the lifted revocation's history goes"
    );
    let history = |key: &str| EventQuery {
        key: Some(key.into()),
        ..EventQuery::default()
    };
    let left = store.events(&history("kept")).await.unwrap();
    assert_eq!(left.len(), 1, "history of a revocation in force is kept");
    assert_eq!(left[0].id, kept.id);
    assert!(store.events(&history("lifted")).await.unwrap().is_empty());

    // At the last second of its time in force it is still kept.
    clock.set_ms(until * 1000);
    let report = store.prune(e.now_secs(), RETENTION).await.unwrap();
    assert_eq!(report, PruneReport::default());
    assert_eq!(store.events(&history("kept")).await.unwrap().len(), 1);

    // Past it: the revocation goes, and with it its history.
    clock.set_ms((until + 1) * 1000);
    let now = e.now_secs();
    let report = store.prune(now, RETENTION).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            revocations: 1,
            tokens: 0,
            events: 1
        }
    );
    assert!(store.events(&history("kept")).await.unwrap().is_empty());
    let rows = expiries(&store, now).await;
    assert!(!rows.contains_key(&(Scope::Jti, "kept".to_owned())));
    assert!(rows.contains_key(&(Scope::Jti, "marker".to_owned())));
    assert_eq!(store.events(&history("marker")).await.unwrap().len(), 1);
    let stats = store.stats(now).await.unwrap();
    assert_eq!((stats.revocations, stats.events), (1, 1));
}

async fn prune_works_in_small_batches(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let e = engine_on(db, &clock, fast()).await;
    let store = e.store().clone();
    let t0 = e.now_secs();
    let batch = PRUNE_BATCH as usize;
    let expired_tokens = 2 * batch + 500;
    let mut tokens: Vec<_> = (0..expired_tokens)
        .map(|i| token(&format!("old-{i:05}"), "u", None, t0 - 200, t0 - 100))
        .collect();
    for i in 0..3 {
        tokens.push(token(&format!("live-{i}"), "u", None, t0 - 10, t0 + 600));
    }
    store.register(&tokens).await.unwrap();

    // Revocations whose time in force has already ended, with an event each.
    let expired_revocations = 2 * batch + 100;
    let written = e
        .revoke_many(
            (0..expired_revocations)
                .map(|i| RevokeRequest::jti(format!("gone-{i:05}")).expires_at(t0 - 1000))
                .collect(),
        )
        .await
        .unwrap();
    assert!(written.iter().all(Option::is_some));
    let stats = store.stats(t0).await.unwrap();
    assert_eq!(
        (stats.tokens, stats.revocations, stats.events),
        (
            expired_tokens as i64 + 3,
            expired_revocations as i64,
            expired_revocations as i64
        )
    );

    clock.advance_secs(10);
    let now = e.now_secs();
    let report = store.prune(now, 0).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            revocations: expired_revocations as u64,
            tokens: expired_tokens as u64,
            // The newest event stays, so ids never go backwards.
            events: expired_revocations as u64 - 1,
        },
        "every batch of {PRUNE_BATCH} was followed by the next"
    );
    assert_eq!(store.prune(now, 0).await.unwrap(), PruneReport::default());
    let stats = store.stats(now).await.unwrap();
    assert_eq!((stats.tokens, stats.revocations, stats.events), (3, 0, 1));
    assert_eq!(
        stats.last_event_id,
        written.last().unwrap().as_ref().unwrap().id
    );
    assert!(store.token("old-00000", now).await.unwrap().is_none());
    assert!(store.token("live-0", now).await.unwrap().is_some());
}

async fn the_scheduled_prune_runs_on_one_instance_at_a_time(db: &TestDb) {
    let config = EngineConfig {
        prune_interval_secs: 1,
        prune_database: true,
        retention_secs: 0,
        ..fast()
    };
    // An engine that prunes on its own.
    let pruner = Engine::new(db.store().await, config.clone()).await.unwrap();
    assert_eq!(pruner.bounds().retention_secs, 0);
    let now = pruner.now_secs();
    let store = pruner.store().clone();
    let mut tokens: Vec<_> = (0..5)
        .map(|i| token(&format!("old-{i}"), "u", None, now - 200, now - 10))
        .collect();
    tokens.push(token("live", "u", None, now - 10, now + 600));
    store.register(&tokens).await.unwrap();
    pruner
        .revoke(RevokeRequest::jti("ended").expires_at(now - 1000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pruner.pruned(), PruneReport::default());
    pruner.start_sync();
    wait_until("the scheduled prune removed the expired rows", || {
        pruner.pruned().tokens >= 5
    })
    .await;
    pruner.stop_sync().await;
    let pruned = pruner.pruned();
    assert_eq!((pruned.tokens, pruned.revocations), (5, 1), "{pruned:?}");
    let stats = store.stats(pruner.now_secs()).await.unwrap();
    assert_eq!((stats.tokens, stats.revocations), (1, 0));
    assert!(store.token("live", now).await.unwrap().is_some());

    // Two instances on one database: one claim per interval between them.
    let a = Engine::new(db.store().await, config.clone()).await.unwrap();
    let b = Engine::new(db.store().await, config).await.unwrap();
    let interval = 60_000;
    // Later than any claim the pruner made.
    let at = rocket_revoke_core::now_ms() + 3_600_000;
    let claims = |t: i64| {
        let (a, b) = (a.store().clone(), b.store().clone());
        async move {
            let (x, y) = tokio::join!(a.claim_prune(t, interval), b.claim_prune(t, interval));
            [x.unwrap(), y.unwrap()]
        }
    };
    let first = claims(at).await;
    assert_eq!(
        first.iter().filter(|&&won| won).count(),
        1,
        "claims at one time: {first:?}"
    );
    assert_eq!(claims(at).await, [false, false]);
    assert_eq!(claims(at + interval / 2).await, [false, false]);
    let next = claims(at + interval).await;
    assert_eq!(
        next.iter().filter(|&&won| won).count(),
        1,
        "claims an interval later: {next:?}"
    );
    assert_eq!(claims(at + interval + 1).await, [false, false]);
}

async fn a_panicking_sync_task_is_restarted_and_reports_it(db: &TestDb) {
    let a = Engine::new(db.store().await, fast()).await.unwrap();
    let b = Engine::new(db.store().await, fast()).await.unwrap();
    // The observer panics on the sync task while armed: every restarted task reads the same
    // event again and panics again, so the status stays "panicked" until it is disarmed.
    let armed = Arc::new(AtomicBool::new(true));
    let panics = Arc::new(AtomicU64::new(0));
    let (arm, count) = (armed.clone(), panics.clone());
    assert!(b.observe_lag(move |_lag| {
        if arm.load(Ordering::SeqCst) {
            count.fetch_add(1, Ordering::SeqCst);
            panic!("lag observer fails while armed (test)");
        }
    }));
    b.start_sync();
    assert_eq!(b.status().restarts, 0);
    a.revoke(RevokeRequest::jti("first"))
        .await
        .unwrap()
        .unwrap();

    wait_until("the status reports a restart after a panic", || {
        let s = b.status();
        s.restarts >= 1
            && s.last_error_ms.is_some()
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("panicked"))
    })
    .await;
    assert!(panics.load(Ordering::SeqCst) >= 1);
    armed.store(false, Ordering::SeqCst);

    // The next restarted task reads again and reports success.
    wait_until("a successful read after the restart", || {
        b.status().last_error.is_none()
    })
    .await;
    let status = b.status();
    assert_eq!(
        status.restarts,
        panics.load(Ordering::SeqCst),
        "one restart per panic: {status:?}"
    );
    wait_until("B applied the first revocation", || {
        b.check(&jti_ref("first")) == Some(Scope::Jti)
    })
    .await;
    let later = a
        .revoke(RevokeRequest::jti("later"))
        .await
        .unwrap()
        .unwrap();
    wait_until("B applied a revocation made after the restart", || {
        b.check(&jti_ref("later")) == Some(Scope::Jti)
    })
    .await;
    let status = b.status();
    assert!(status.cursor >= later.id, "{status:?}");
    assert_eq!(status.restarts, panics.load(Ordering::SeqCst), "{status:?}");
    assert!(status.last_error.is_none(), "{status:?}");
    assert!(b.staleness_ms().is_some_and(|ms| ms < 5_000));
    b.stop_sync().await;
}

async fn raising_the_recorded_lifetime_extends_standing_revocations(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let a = engine_on(
        db,
        &clock,
        EngineConfig {
            max_token_ttl_secs: 30 * DAY,
            ..fast()
        },
    )
    .await;
    let store = a.store().clone();
    let grace = a.bounds().grace_secs();
    let now = a.now_secs();
    let sam = a
        .revoke(RevokeRequest::subject("sam").cutoff(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sam.expires_at, Some(now + 30 * DAY + grace));
    let fam = a
        .revoke(RevokeRequest::family("fam-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fam.expires_at, Some(now + 30 * DAY + grace));
    let one = a
        .revoke(RevokeRequest::jti("j-1").expires_at(now + 600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.expires_at, Some(now + 600 + grace));
    let before = expiries(&store, now).await;

    // An app with a longer lifetime launches on the same database.
    let b = engine_on(
        db,
        &clock,
        EngineConfig {
            max_token_ttl_secs: 90 * DAY,
            ..fast()
        },
    )
    .await;
    assert_eq!(b.bounds().max_token_ttl_secs, 90 * DAY);
    let recorded = store.settings().await.unwrap().unwrap();
    assert_eq!(recorded.max_token_ttl_secs, 90 * DAY);
    assert_eq!(recorded.grace_secs(), grace, "the grace did not change");
    let after = expiries(&store, now).await;
    let moved = |scope: Scope, key: &str| {
        let k = (scope, key.to_owned());
        after[&k].unwrap() - before[&k].unwrap()
    };
    assert_eq!(moved(Scope::Subject, "sam"), 60 * DAY);
    assert_eq!(moved(Scope::Family, "fam-1"), 60 * DAY);
    assert_eq!(moved(Scope::Jti, "j-1"), 0, "a jti ends with its token");

    // B's set has the extended expiry: past A's old end, sam's old tokens are still out.
    b.prune_memory_only(now + 30 * DAY + grace + 1);
    assert_eq!(b.check(&sub_ref("sam", now - 1)), Some(Scope::Subject));

    // A hears of it and sizes its next revocations by it.
    let refreshed = a.refresh_bounds().await.unwrap();
    assert_eq!(refreshed.max_token_ttl_secs, 90 * DAY);
    assert_eq!(a.bounds().max_token_ttl_secs, 90 * DAY);
    let tia = a
        .revoke(RevokeRequest::subject("tia").cutoff(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tia.expires_at, Some(now + 90 * DAY + grace));
    // The extended row and a new one sized by the raised bound agree: nothing to write.
    let again = a
        .revoke(RevokeRequest::subject("sam").cutoff(now))
        .await
        .unwrap();
    assert!(again.is_none(), "{again:?}");

    // An app with a shorter lifetime leaves the recorded bounds and the rows alone.
    let standing = expiries(&store, now).await;
    let c = engine_on(
        db,
        &clock,
        EngineConfig {
            max_token_ttl_secs: 7 * DAY,
            ..fast()
        },
    )
    .await;
    assert_eq!(c.bounds().max_token_ttl_secs, 90 * DAY);
    assert_eq!(store.settings().await.unwrap().unwrap(), recorded);
    assert_eq!(expiries(&store, now).await, standing);
    let uma = c
        .revoke(RevokeRequest::subject("uma").cutoff(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(uma.expires_at, Some(now + 90 * DAY + grace));
}

async fn uuid_jtis_match_exactly_in_the_set_and_the_database(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let e = engine_on(db, &clock, fast()).await;
    let follower = engine_on(db, &clock, fast()).await;
    follower.start_sync();
    let store = e.store().clone();
    let now = e.now_secs();
    let lower = uuid::Uuid::new_v4().to_string();
    let upper = lower.to_uppercase();
    assert_ne!(lower, upper);
    store
        .register(&[
            token(&lower, "uma", None, now - 10, now + 600),
            token(&upper, "uma", None, now - 10, now + 600),
        ])
        .await
        .unwrap();

    let ev = e.revoke(RevokeRequest::jti(&upper)).await.unwrap().unwrap();
    assert_eq!(ev.key, upper, "the key is kept as given");
    let status = |jti: String| {
        let store = store.clone();
        async move { store.token(&jti, now).await.unwrap().unwrap() }
    };
    let fresh = engine_on(db, &clock, fast()).await;
    wait_until("the follower applied the revocation", || {
        follower.status().cursor >= ev.id
    })
    .await;
    for (name, eng) in [("writer", &e), ("fresh load", &fresh), ("sync", &follower)] {
        assert_eq!(eng.check(&jti_ref(&upper)), Some(Scope::Jti), "{name}");
        assert_eq!(eng.check(&jti_ref(&lower)), None, "{name}");
    }
    let l = status(lower.clone()).await;
    assert_eq!((l.status, l.revocation), (TokenStatus::Active, None));
    assert_eq!(status(upper.clone()).await.status, TokenStatus::Revoked);

    // The lower-case spelling is its own key: revoking it writes, restoring the upper-case
    // one does not lift it.
    let ev = e
        .revoke(RevokeRequest::jti(&lower))
        .await
        .unwrap()
        .expect("a different key: written");
    assert_eq!(ev.key, lower);
    let restored = e
        .restore(Scope::Jti, &upper, None, None)
        .await
        .unwrap()
        .expect("the upper-case revocation is lifted");
    let fresh = engine_on(db, &clock, fast()).await;
    wait_until("the follower applied the restore", || {
        follower.status().cursor >= restored.id
    })
    .await;
    for (name, eng) in [("writer", &e), ("fresh load", &fresh), ("sync", &follower)] {
        assert_eq!(eng.check(&jti_ref(&lower)), Some(Scope::Jti), "{name}");
        assert_eq!(eng.check(&jti_ref(&upper)), None, "{name}");
        assert_eq!(eng.set().len().jtis, 1, "{name}");
    }
    assert_eq!(status(lower.clone()).await.status, TokenStatus::Revoked);
    let u = status(upper.clone()).await;
    assert_eq!((u.status, u.revocation), (TokenStatus::Active, None));
    follower.stop_sync().await;
}

async fn blank_keys_and_future_cut_offs_are_refused_and_change_nothing(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let e = engine_on(db, &clock, fast()).await;
    let store = e.store().clone();
    let now = e.now_secs();
    let leeway = e.bounds().leeway_secs;
    let before = store.stats(now).await.unwrap();
    let refused = [
        RevokeRequest::subject("  "),
        RevokeRequest::family(""),
        RevokeRequest::jti(""),
        RevokeRequest::jti(" \t"),
        RevokeRequest::global_before(now + 3600),
        RevokeRequest::subject("x").cutoff(now + 3600),
        RevokeRequest::subject("x").cutoff(now + leeway + 1),
        RevokeRequest::global_before(now + leeway + 1),
    ];
    for req in &refused {
        match e.revoke(req.clone()).await {
            Err(Error::Invalid(_)) => {}
            other => panic!("{req:?} must be refused as invalid, got {other:?}"),
        }
    }
    // In a group of good ones, the bad one refuses the lot.
    let mixed = e
        .revoke_many(vec![
            RevokeRequest::jti("good"),
            RevokeRequest::subject(" "),
        ])
        .await;
    assert!(matches!(mixed, Err(Error::Invalid(_))), "{mixed:?}");
    assert_eq!(store.stats(now).await.unwrap(), before, "nothing written");
    assert!(e.set().is_empty());
    assert_eq!(e.check(&sub_ref("x", now)), None);
    assert_eq!(e.check(&jti_ref("good")), None);

    // A key with a trailing space is taken exactly as given.
    let ev = e
        .revoke(RevokeRequest::subject("erin "))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.key, "erin ");
    assert_eq!(e.check(&sub_ref("erin ", now - 1)), Some(Scope::Subject));
    assert_eq!(e.check(&sub_ref("erin", now - 1)), None);
    let rows = expiries(&store, now).await;
    assert_eq!(rows.len(), 1);
    assert!(rows.contains_key(&(Scope::Subject, "erin ".to_owned())));
    let fresh = engine_on(db, &clock, fast()).await;
    assert_eq!(fresh.check(&sub_ref("erin", now - 1)), None);
    assert_eq!(
        fresh.check(&sub_ref("erin ", now - 1)),
        Some(Scope::Subject)
    );

    // Up to the leeway ahead is accepted (clocks differ by that much).
    let edge = e
        .revoke(RevokeRequest::subject("x").cutoff(now + leeway))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edge.cutoff, Some(now + leeway));
}
