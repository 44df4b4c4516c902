//! The group-commit queue: bounded (a full queue is an immediate `Overloaded`, nothing
//! written), and revocations whose caller went away are never written. Every test body runs
//! on SQLite and PostgreSQL, with the writer held up by a store wrapper ([`Gate`]).
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use rocket_revoke_core::store::{
    Backend, ChangeFeed, EventQuery, Joiners, ListQuery, PruneReport, Rotation, SnapshotSink,
    Stats, Store, TokenInfo, TokenRecord,
};
use rocket_revoke_core::{
    now_secs, Bounds, Engine, EngineConfig, Error, Event, Result, Revocation, RevokeRequest, Scope,
    SharedClock,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

both_backends!(
    a_full_queue_refuses_at_once_and_writes_nothing,
    a_caller_gone_before_its_batch_is_taken_writes_nothing,
    a_caller_gone_before_its_batch_is_joined_writes_nothing,
);

/// A store whose revocation batches wait at a gate until the test opens it; every other call
/// goes straight through.
struct Gate {
    inner: Arc<dyn Store>,
    /// Told each time a batch reaches the gate.
    entered: Notify,
    open: watch::Sender<bool>,
    /// Whether a held batch may take joiners once through (false: it never asks them, so
    /// what queued behind it waits for the next batch).
    joiners: bool,
}

impl Gate {
    fn new(inner: Arc<dyn Store>, joiners: bool) -> Arc<Self> {
        Arc::new(Self {
            inner,
            entered: Notify::new(),
            open: watch::channel(false).0,
            joiners,
        })
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

#[async_trait::async_trait]
impl Store for Gate {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    fn clock(&self) -> SharedClock {
        self.inner.clock()
    }
    async fn settings(&self) -> Result<Option<Bounds>> {
        self.inner.settings().await
    }
    async fn publish_settings(&self, mine: &Bounds) -> Result<Bounds> {
        self.inner.publish_settings(mine).await
    }
    async fn claim_prune(&self, now_ms: i64, interval_ms: i64) -> Result<bool> {
        self.inner.claim_prune(now_ms, interval_ms).await
    }
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        self.inner.events(query).await
    }
    async fn migrate(&self) -> Result<()> {
        self.inner.migrate().await
    }
    async fn register(&self, tokens: &[TokenRecord]) -> Result<()> {
        self.inner.register(tokens).await
    }
    async fn observe(&self, seen: &[(TokenRecord, i64)]) -> Result<()> {
        self.inner.observe(seen).await
    }
    async fn token(&self, jti: &str, now: i64) -> Result<Option<TokenInfo>> {
        self.inner.token(jti, now).await
    }
    async fn list(&self, query: &ListQuery, now: i64) -> Result<Vec<TokenInfo>> {
        self.inner.list(query, now).await
    }
    async fn stats(&self, now: i64) -> Result<Stats> {
        self.inner.stats(now).await
    }
    async fn revoke(&self, revocations: &[Revocation]) -> Result<Vec<Option<Event>>> {
        self.inner.revoke(revocations).await
    }
    async fn revoke_batch(
        &self,
        revocations: Vec<Revocation>,
        joiners: Joiners,
    ) -> Result<Vec<Option<Event>>> {
        self.entered.notify_one();
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open).await.unwrap();
        if self.joiners {
            self.inner.revoke_batch(revocations, joiners).await
        } else {
            drop(joiners);
            self.inner.revoke(&revocations).await
        }
    }
    async fn restore(
        &self,
        scope: Scope,
        issuer: Option<&str>,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>> {
        self.inner.restore(scope, issuer, key, reason, actor).await
    }
    async fn rotate(
        &self,
        old_jti: &str,
        issuer: Option<&str>,
        now: i64,
        new_tokens: &[TokenRecord],
        on_reuse: &Revocation,
    ) -> Result<Rotation> {
        self.inner
            .rotate(old_jti, issuer, now, new_tokens, on_reuse)
            .await
    }
    async fn snapshot_into(&self, now: i64, sink: &mut dyn SnapshotSink) -> Result<i64> {
        self.inner.snapshot_into(now, sink).await
    }
    async fn events_after(&self, cursor: i64, limit: u32) -> Result<Vec<Event>> {
        self.inner.events_after(cursor, limit).await
    }
    async fn first_event_id(&self) -> Result<i64> {
        self.inner.first_event_id().await
    }
    async fn listen(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        self.inner.listen().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn prune(&self, now: i64, retention: i64) -> Result<PruneReport> {
        self.inner.prune(now, retention).await
    }
}

/// An engine on `gate` with a write queue of `size`.
async fn engine(gate: &Arc<Gate>, size: usize) -> Engine {
    let config = EngineConfig {
        write_queue: size,
        ..EngineConfig::default()
    };
    Engine::new(gate.clone(), config).await.expect("engine")
}

/// A jti revocation that needs no registry lookup, so the first poll of `Engine::revoke`
/// reaches the queue.
fn jti(key: &str) -> RevokeRequest {
    RevokeRequest::jti(key).expires_at(now_secs() + 600)
}

type Pending = Pin<Box<dyn Future<Output = Result<Option<Event>>> + Send>>;

/// Starts `req` and returns its future once it is queued (polled until it waits).
async fn queued(engine: &Engine, req: RevokeRequest) -> Pending {
    let e = engine.clone();
    let mut fut: Pending = Box::pin(async move { e.revoke(req).await });
    let polled = tokio::time::timeout(Duration::from_millis(50), &mut fut).await;
    assert!(polled.is_err(), "held behind the gate: {polled:?}");
    fut
}

/// Starts `req` on its own task and waits until its batch is held at the gate.
async fn held(
    engine: &Engine,
    gate: &Gate,
    req: RevokeRequest,
) -> tokio::task::JoinHandle<Result<Option<Event>>> {
    let e = engine.clone();
    let task = tokio::spawn(async move { e.revoke(req).await });
    tokio::time::timeout(Duration::from_secs(10), gate.entered.notified())
        .await
        .expect("the writer reaches the gate");
    task
}

/// Events written for `key`.
async fn events_of(store: &dyn Store, key: &str) -> usize {
    store
        .events(&EventQuery {
            key: Some(key.into()),
            ..EventQuery::default()
        })
        .await
        .unwrap()
        .len()
}

async fn a_full_queue_refuses_at_once_and_writes_nothing(db: &TestDb) {
    let gate = Gate::new(db.store().await, true);
    let e = engine(&gate, 1).await;
    // "a" is taken by the writer (held at the gate), "b" fills the queue of one.
    let a = held(&e, &gate, jti("a")).await;
    let b = queued(&e, jti("b")).await;
    // "c" finds it full: refused without waiting for the writer.
    let c = tokio::time::timeout(Duration::from_secs(1), e.revoke(jti("c")))
        .await
        .expect("a full queue answers at once");
    match &c {
        Err(Error::Overloaded { capacity: 1 }) => {}
        other => panic!("expected Overloaded, got {other:?}"),
    }
    let msg = c.unwrap_err().to_string();
    assert!(
        msg.contains("write_queue") && msg.contains("retry"),
        "{msg}"
    );
    gate.open();
    assert!(a.await.unwrap().unwrap().is_some());
    assert!(b.await.unwrap().is_some());
    let now = now_secs();
    let store = e.store();
    assert!(store.token("c", now).await.unwrap().is_none());
    assert_eq!(events_of(store.as_ref(), "c").await, 0);
    assert_eq!(events_of(store.as_ref(), "a").await, 1);
    assert_eq!(events_of(store.as_ref(), "b").await, 1);
    let stats = store.stats(now).await.unwrap();
    assert_eq!((stats.revocations, stats.events), (2, 2));
    assert_eq!(e.check(&covered("c")), None);
    // The queue drained: the refused revocation goes through when asked again.
    assert!(e.revoke(jti("c")).await.unwrap().is_some());
    assert_eq!(e.check(&covered("c")), Some(Scope::Jti));
}

fn covered(jti: &str) -> rocket_revoke_core::TokenRef<'_> {
    rocket_revoke_core::TokenRef {
        jti: Some(jti),
        ..rocket_revoke_core::TokenRef::default()
    }
}

/// "gone" is queued behind a held batch and its caller drops it; `joiners` says whether the
/// held batch takes joiners (then "gone" is met as a joiner) or not (then it is met when the
/// writer takes the next batch).
async fn a_caller_goes_away(db: &TestDb, joiners: bool) {
    let gate = Gate::new(db.store().await, joiners);
    let e = engine(&gate, 8).await;
    let a = held(&e, &gate, jti("a")).await;
    let gone = queued(&e, jti("gone")).await;
    let kept = queued(&e, jti("kept")).await;
    drop(gone);
    gate.open();
    assert!(a.await.unwrap().unwrap().is_some());
    // "kept" queued after "gone": once it is answered, "gone" has been met by the writer.
    assert!(kept.await.unwrap().is_some());
    assert_eq!(e.abandoned_revocations(), 1);
    let store = e.store();
    assert_eq!(events_of(store.as_ref(), "gone").await, 0);
    assert_eq!(events_of(store.as_ref(), "kept").await, 1);
    let stats = store.stats(now_secs()).await.unwrap();
    assert_eq!((stats.revocations, stats.events), (2, 2));
    assert_eq!(e.check(&covered("gone")), None);
    assert_eq!(e.check(&covered("kept")), Some(Scope::Jti));
}

async fn a_caller_gone_before_its_batch_is_taken_writes_nothing(db: &TestDb) {
    a_caller_goes_away(db, false).await;
}

async fn a_caller_gone_before_its_batch_is_joined_writes_nothing(db: &TestDb) {
    a_caller_goes_away(db, true).await;
}

#[tokio::test]
async fn write_queue_is_bounded_and_the_error_names_it() {
    let db = TestDb::sqlite().await;
    for bad in [0, rocket_revoke_core::MAX_WRITE_QUEUE + 1] {
        let config = EngineConfig {
            write_queue: bad,
            ..EngineConfig::default()
        };
        let err = Engine::new(db.store().await, config).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("write_queue"), "{err}");
    }
    let config = EngineConfig {
        write_queue: rocket_revoke_core::MAX_WRITE_QUEUE,
        ..EngineConfig::default()
    };
    Engine::new(db.store().await, config)
        .await
        .expect("largest");
    assert_eq!(EngineConfig::default().write_queue, 4096);
}
