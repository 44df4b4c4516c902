//! [`Engine`]: a store, the revocation set it feeds, and the sync task between them.

use crate::batch::Batcher;
use crate::store::{PruneReport, Store};
use crate::sync::{SyncStatus, Syncer};
use crate::{now_secs, Error, Event, Result, Revocation, RevocationSet, Scope, TokenRef};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Engine settings. Every field has a default; see each for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How often sync reads the event log when nothing woke it, in ms.
    /// _Default:_ `250`.
    pub poll_interval_ms: u64,
    /// How often expired entries are dropped from the set, in seconds.
    /// _Default:_ `60`.
    pub prune_interval_secs: u64,
    /// The longest lifetime of any token this app accepts, in seconds. Subject, family and
    /// unknown-jti revocations are kept this long. It must be at least your refresh tokens'
    /// lifetime, or a pruned cut-off would let an old token back in.
    /// _Default:_ `2592000` (30 days).
    pub max_token_ttl_secs: i64,
    /// How long expired registry rows and old events are kept, in seconds.
    /// _Default:_ `604800` (7 days).
    pub retention_secs: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 250,
            prune_interval_secs: 60,
            max_token_ttl_secs: 30 * 24 * 3600,
            retention_secs: 7 * 24 * 3600,
        }
    }
}

/// A revocation to make, built with [`RevokeRequest::jti`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeRequest {
    /// What to revoke.
    pub scope: Scope,
    /// The jti, subject or family id (ignored for global).
    pub key: String,
    /// For subject and global: revoke tokens issued at or before this time (default now).
    pub cutoff: Option<i64>,
    /// When the revocation may be pruned (default: derived from the token or the max TTL).
    pub expires_at: Option<i64>,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub actor: Option<String>,
}

impl RevokeRequest {
    fn new(scope: Scope, key: impl Into<String>) -> Self {
        Self {
            scope,
            key: key.into(),
            cutoff: None,
            expires_at: None,
            reason: None,
            actor: None,
        }
    }

    /// Revoke one token by jti.
    pub fn jti(jti: impl Into<String>) -> Self {
        Self::new(Scope::Jti, jti)
    }

    /// Revoke every token of `sub` issued up to now ("log out everywhere").
    pub fn subject(sub: impl Into<String>) -> Self {
        Self::new(Scope::Subject, sub)
    }

    /// Revoke a session family (one login and all its rotated tokens).
    pub fn family(fid: impl Into<String>) -> Self {
        Self::new(Scope::Family, fid)
    }

    /// Revoke every token issued at or before `cutoff` (the emergency switch).
    pub fn global_before(cutoff: i64) -> Self {
        Self {
            cutoff: Some(cutoff),
            ..Self::new(Scope::Global, "")
        }
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the cut-off (subject and global).
    pub fn cutoff(mut self, cutoff: i64) -> Self {
        self.cutoff = Some(cutoff);
        self
    }

    /// Sets when the revocation may be pruned.
    pub fn expires_at(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// The store, the in-memory set and the sync task, as one cheap-to-clone handle.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use revoke_core::{Engine, EngineConfig, RevokeRequest, Scope, TokenRef};
/// use revoke_core::store::{SqliteStore, Store};
/// use std::sync::Arc;
///
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
/// let engine = Engine::new(Arc::new(store), EngineConfig::default()).await?;
/// engine.revoke(RevokeRequest::jti("token-1").reason("stolen laptop")).await?;
/// let token = TokenRef { jti: Some("token-1"), ..TokenRef::default() };
/// assert_eq!(engine.check(&token), Some(Scope::Jti));
/// # Ok::<(), revoke_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    set: Arc<RevocationSet>,
    sync: Arc<Syncer>,
    /// Group commit of [`Engine::revoke`].
    batcher: Batcher,
    config: EngineConfig,
    task: Mutex<Option<(JoinHandle<()>, Arc<Notify>)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.inner.store.backend())
            .field("set", &self.inner.set.len())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Engine {
    /// Loads every unexpired revocation from `store` (which must be migrated). Sync is not
    /// running until [`Engine::start_sync`].
    pub async fn new(store: Arc<dyn Store>, config: EngineConfig) -> Result<Self> {
        let set = Arc::new(RevocationSet::new());
        let sync = Arc::new(Syncer::new(store.clone(), set.clone()));
        sync.reload().await?;
        let batcher = Batcher::new(store.clone(), sync.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                set,
                sync,
                batcher,
                config,
                task: Mutex::new(None),
            }),
        })
    }

    /// Which scope revokes this token, if any. Never does I/O and never waits on a writer.
    #[inline]
    pub fn check(&self, token: &TokenRef<'_>) -> Option<Scope> {
        self.inner.set.check(token)
    }

    /// The in-memory set.
    pub fn set(&self) -> &Arc<RevocationSet> {
        &self.inner.set
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Sync status: cursor, last success and error, lag.
    pub fn status(&self) -> SyncStatus {
        self.inner.sync.status()
    }

    /// Calls `observer` with the lag of every event sync applies (milliseconds from being
    /// written to being applied here), for a metrics histogram. Called on the sync task,
    /// never on a request. Only one observer per engine; `false` if one is already set.
    pub fn observe_lag(&self, observer: impl Fn(i64) + Send + Sync + 'static) -> bool {
        self.inner.sync.observe_lag(Arc::new(observer))
    }

    /// Commits a revocation, applies it to the local set, and lets other instances know
    /// (NOTIFY on PostgreSQL). If the commit fails nothing changes and the error is returned.
    ///
    /// Concurrent calls on one engine are committed together (group commit): one transaction
    /// takes every revocation waiting at that moment (up to 256), so throughput grows with
    /// concurrency instead of being one disk flush per revocation. Each caller still gets its
    /// own event, returned only once the revocation is committed and applied to the local set;
    /// if the batch's transaction fails, every caller in it gets the error and none of it is
    /// written. Repeated revocations of one key in a batch behave as if made one after the
    /// other (each gets its event; a cut-off or expiry never moves backwards).
    pub async fn revoke(&self, req: RevokeRequest) -> Result<Event> {
        let rev = self.resolve(req, now_secs()).await?;
        self.inner.batcher.revoke(rev).await
    }

    /// Commits several revocations in one transaction of their own (all or nothing), and
    /// returns their events in the order of `reqs`.
    pub async fn revoke_many(&self, reqs: Vec<RevokeRequest>) -> Result<Vec<Event>> {
        let now = now_secs();
        let mut revs = Vec::with_capacity(reqs.len());
        for req in reqs {
            revs.push(self.resolve(req, now).await?);
        }
        let events = self.inner.store.revoke(&revs).await?;
        self.inner.sync.apply_committed(&events).await?;
        Ok(events)
    }

    /// Lifts a revocation; `None` when there was none.
    pub async fn restore(
        &self,
        scope: Scope,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>> {
        let event = self.inner.store.restore(scope, key, reason, actor).await?;
        if let Some(e) = &event {
            self.inner
                .sync
                .apply_committed(std::slice::from_ref(e))
                .await?;
        }
        Ok(event)
    }

    /// Applies events committed by this process (for example by the issuer's reuse
    /// detection) to the local set, in order.
    pub async fn apply_committed(&self, events: &[Event]) -> Result<()> {
        self.inner.sync.apply_committed(events).await
    }

    /// Reads the event log now; returns how many events were applied.
    pub async fn sync_now(&self) -> Result<usize> {
        self.inner.sync.catch_up().await
    }

    /// Reloads the whole set from the database.
    pub async fn reload(&self) -> Result<usize> {
        self.inner.sync.reload().await
    }

    /// Prunes the database (expired revocations, old registry rows and events) and the set.
    pub async fn prune(&self) -> Result<PruneReport> {
        let now = now_secs();
        let report = self
            .inner
            .store
            .prune(now, self.inner.config.retention_secs)
            .await?;
        self.inner.set.prune(now);
        Ok(report)
    }

    /// Fills in a request's cut-off and expiry.
    async fn resolve(&self, req: RevokeRequest, now: i64) -> Result<Revocation> {
        let ttl = self.inner.config.max_token_ttl_secs;
        let key = req.key.trim().to_owned();
        if req.scope != Scope::Global && key.is_empty() {
            return Err(Error::Invalid(format!(
                "a {} revocation needs a key",
                req.scope
            )));
        }
        let (cutoff, expires_at) = match req.scope {
            Scope::Jti => {
                let exp = match req.expires_at {
                    Some(e) => e,
                    None => match self.inner.store.token(&key, now).await? {
                        Some(t) => t.token.exp,
                        None => now.saturating_add(ttl),
                    },
                };
                (None, Some(exp))
            }
            Scope::Family => (
                None,
                Some(req.expires_at.unwrap_or(now.saturating_add(ttl))),
            ),
            Scope::Subject => {
                let cutoff = req.cutoff.unwrap_or(now);
                (
                    Some(cutoff),
                    Some(req.expires_at.unwrap_or(cutoff.saturating_add(ttl))),
                )
            }
            Scope::Global => (Some(req.cutoff.unwrap_or(now)), req.expires_at),
        };
        Ok(Revocation {
            scope: req.scope,
            key: if req.scope == Scope::Global {
                String::new()
            } else {
                key
            },
            cutoff,
            expires_at,
            reason: req.reason,
            actor: req.actor,
            revoked_at: now,
        })
    }

    /// Starts the background sync task (idempotent). Needs a Tokio runtime.
    pub fn start_sync(&self) {
        let mut slot = self.inner.task.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let stop = Arc::new(Notify::new());
        let engine = self.clone();
        let stop2 = stop.clone();
        let handle = tokio::spawn(async move { engine.run_sync(stop2).await });
        *slot = Some((handle, stop));
    }

    /// Stops the background sync task and waits for it to finish.
    pub async fn stop_sync(&self) {
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((handle, stop)) = task {
            stop.notify_one();
            let _ = handle.await;
        }
    }

    async fn run_sync(&self, stop: Arc<Notify>) {
        let poll = Duration::from_millis(self.inner.config.poll_interval_ms.max(1));
        let prune_every = Duration::from_secs(self.inner.config.prune_interval_secs.max(1));
        let mut feed = None;
        let mut next_feed_attempt = tokio::time::Instant::now();
        let mut next_prune = tokio::time::Instant::now() + prune_every;
        loop {
            if feed.is_none() && tokio::time::Instant::now() >= next_feed_attempt {
                match self.inner.store.listen().await {
                    Ok(Some(f)) => {
                        feed = Some(f);
                        self.inner.sync.set_listening(true);
                        // Anything committed while we were not listening.
                        let _ = self.inner.sync.catch_up().await;
                    }
                    Ok(None) => next_feed_attempt += Duration::from_secs(3600 * 24 * 365),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes; polling");
                        next_feed_attempt = tokio::time::Instant::now() + Duration::from_secs(5);
                    }
                }
            }
            let woke = async {
                match feed.as_mut() {
                    Some(f) => f.recv_upto().await,
                    None => std::future::pending().await,
                }
            };
            enum Woke {
                Stop,
                Feed(Result<Option<i64>>),
                Timer,
            }
            let woke = tokio::select! {
                _ = stop.notified() => Woke::Stop,
                r = woke => Woke::Feed(r),
                _ = tokio::time::sleep(poll) => Woke::Timer,
            };
            let read = match woke {
                Woke::Stop => break,
                Woke::Feed(Err(e)) => {
                    tracing::warn!(error = %e, "change feed lost; polling until it is back");
                    feed = None;
                    self.inner.sync.set_listening(false);
                    next_feed_attempt = tokio::time::Instant::now() + Duration::from_secs(1);
                    true
                }
                // Announces events already applied (this engine's own writes, or ones an
                // earlier read caught): nothing to read. Every commit that appends events
                // announces its own last id, so nothing is missed.
                Woke::Feed(Ok(Some(upto))) => upto > self.inner.sync.cursor(),
                Woke::Feed(Ok(None)) | Woke::Timer => true,
            };
            if read {
                if let Err(e) = self.inner.sync.catch_up().await {
                    tracing::warn!(error = %e, "revocation sync failed; serving the last synced set");
                }
            }
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + prune_every;
                let dropped = self.inner.set.prune(now_secs());
                if dropped > 0 {
                    tracing::debug!(dropped, "pruned expired revocations from the set");
                }
            }
        }
        self.inner.sync.set_listening(false);
    }
}
