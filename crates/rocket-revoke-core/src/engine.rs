//! [`Engine`]: a store, the revocation set it feeds, and the sync task between them.

use crate::batch::Batcher;
use crate::set::SetView;
use crate::store::{PruneReport, Store};
use crate::sync::{SyncStatus, Syncer};
use crate::{
    Bounds, Error, Event, Result, Revocation, RevocationSet, Scope, SharedClock, TokenRef,
};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The longest revocation key, reason or actor the engine writes, in bytes. Keys come from
/// tokens, which the verifier caps at [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN), so
/// no real key is longer; the cap keeps every value a library caller sends to the database
/// far from the 4 GiB that sqlx 0.7 mis-encodes (RUSTSEC-2024-0363, see deny.toml).
pub(crate) const MAX_KEY_LEN: usize = crate::verifier::MAX_TOKEN_LEN;

/// Refuses a key, reason or actor longer than [`MAX_KEY_LEN`].
fn check_len(what: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.len() > MAX_KEY_LEN => Err(Error::Invalid(format!(
            "the {what} is {} bytes; at most {MAX_KEY_LEN} are accepted",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// Engine settings. Every field has a default; see each for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How often sync reads the event log when nothing woke it, in ms.
    /// _Default:_ `250`.
    pub poll_interval_ms: u64,
    /// How often expired entries are dropped from the set and, when
    /// [`prune_database`](Self::prune_database) is on, from the database, in seconds.
    /// _Default:_ `60`.
    pub prune_interval_secs: u64,
    /// The longest lifetime (`exp - iat`) of any token this app accepts, in seconds. Tokens
    /// living longer are refused, and subject, family and global revocations stay in force
    /// this long past the last token they cover (see [`Bounds`]).
    /// _Default:_ `2592000` (30 days).
    pub max_token_ttl_secs: i64,
    /// The verifier's leeway on `exp`, in seconds: a revocation outlives its tokens by it.
    /// _Default:_ `30`.
    pub leeway_secs: i64,
    /// How far instances' clocks may disagree, in seconds: a revocation outlives its tokens
    /// by it too. _Default:_ `60`.
    pub clock_skew_secs: i64,
    /// How long expired registry rows and old events are kept, in seconds.
    /// _Default:_ `604800` (7 days).
    pub retention_secs: i64,
    /// Record these bounds in the database at start (the largest of every app's wins), as an
    /// app does. Off, the engine only reads the recorded bounds, as revokectl does.
    /// _Default:_ `true`.
    pub publish_bounds: bool,
    /// Prune the database (expired revocations, old registry rows and events) on the
    /// sync task every `prune_interval_secs`, one instance at a time.
    /// _Default:_ `true`.
    pub prune_database: bool,
    /// How many revocations may wait for the writer (group commit) on top of the batch being
    /// written; one more fails at once with [`Error::Overloaded`], nothing written. It
    /// bounds the memory and the requests a stalled database can pile up. Between 1 and
    /// [`MAX_WRITE_QUEUE`].
    ///
    /// _Default:_ `4096`: 16 full batches of 256, far above the concurrency a healthy
    /// database sees (a batch takes every waiting revocation), so only a stall fills it.
    pub write_queue: usize,
}

/// Largest [`EngineConfig::write_queue`]: 256 full batches ahead of the last caller, already
/// seconds of waiting at a few milliseconds per commit.
pub const MAX_WRITE_QUEUE: usize = 65_536;

impl Default for EngineConfig {
    fn default() -> Self {
        let bounds = Bounds::default();
        Self {
            poll_interval_ms: 250,
            prune_interval_secs: 60,
            max_token_ttl_secs: bounds.max_token_ttl_secs,
            leeway_secs: bounds.leeway_secs,
            clock_skew_secs: bounds.clock_skew_secs,
            retention_secs: bounds.retention_secs,
            publish_bounds: true,
            prune_database: true,
            write_queue: 4096,
        }
    }
}

impl EngineConfig {
    /// Checks the settings that are not bounds (see [`Bounds::validate`] for those).
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_WRITE_QUEUE).contains(&self.write_queue) {
            return Err(Error::Invalid(format!(
                "`write_queue` must be between 1 and {MAX_WRITE_QUEUE} (got {})",
                self.write_queue
            )));
        }
        Ok(())
    }

    /// The lifetime bounds these settings declare.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            max_token_ttl_secs: self.max_token_ttl_secs,
            leeway_secs: self.leeway_secs,
            clock_skew_secs: self.clock_skew_secs,
            retention_secs: self.retention_secs,
        }
    }
}

/// Rows the engine's scheduled prunes removed since start, by table.
#[derive(Debug, Default)]
struct Pruned {
    revocations: AtomicU64,
    tokens: AtomicU64,
    events: AtomicU64,
}

/// A revocation to make, built with [`RevokeRequest::jti`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeRequest {
    /// What to revoke.
    pub scope: Scope,
    /// The jti, subject or family id (ignored for global).
    pub key: String,
    /// The issuer it is scoped to ([`Revocation::issuer`]); `None` (the default) for every
    /// issuer. Set it when the app accepts tokens of more than one issuer.
    pub issuer: Option<String>,
    /// For subject and global: revoke tokens issued at or before this time (default now).
    pub cutoff: Option<i64>,
    /// For a jti: the token's `exp` (default: from the registry; unknown, the longest
    /// lifetime from now); the revocation stays in force past it by leeway and skew. For the
    /// other scopes: a later end of its time in force than the bounds give (never earlier).
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
            issuer: None,
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

    /// Scopes the revocation to tokens of issuer `iss` (their `iss` claim); an empty one is
    /// no scope. Subject "42" at one identity provider is not subject "42" at another.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
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

    /// Sets the token's `exp` (jti), or a later end of the time in force (other scopes).
    pub fn expires_at(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// The store, the in-memory set and the sync task, as one cheap-to-clone handle.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use rocket_revoke_core::{Engine, EngineConfig, RevokeRequest, Scope, TokenRef};
/// use rocket_revoke_core::store::{SqliteStore, Store};
/// use std::sync::Arc;
///
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
/// let engine = Engine::new(Arc::new(store), EngineConfig::default()).await?;
/// let event = engine.revoke(RevokeRequest::jti("token-1").reason("stolen laptop")).await?;
/// assert!(event.is_some(), "committed and announced");
/// // Already in force: nothing is written, and it still succeeds.
/// assert!(engine.revoke(RevokeRequest::jti("token-1")).await?.is_none());
/// let token = TokenRef { jti: Some("token-1"), ..TokenRef::default() };
/// assert_eq!(engine.check(&token), Some(Scope::Jti));
/// # Ok::<(), rocket_revoke_core::Error>(())
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
    clock: SharedClock,
    /// The bounds in force on the database (the largest any app recorded).
    bounds: RwLock<Bounds>,
    pruned: Pruned,
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
    /// Records or reads the lifetime bounds (see [`EngineConfig::publish_bounds`]), then
    /// loads every revocation in force from `store` (which must be migrated). Time comes
    /// from the store's [`Clock`](crate::Clock). Sync is not running until
    /// [`Engine::start_sync`].
    pub async fn new(store: Arc<dyn Store>, config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let mine = config.bounds();
        mine.validate()?;
        let bounds = if config.publish_bounds {
            store.publish_settings(&mine).await?
        } else {
            match store.settings().await? {
                Some(recorded) => recorded,
                None => {
                    tracing::warn!(
                        "no lifetime bounds recorded in the database (no app has launched on it); using the defaults"
                    );
                    mine
                }
            }
        };
        let clock = store.clock();
        let set = Arc::new(RevocationSet::new());
        let sync = Arc::new(Syncer::new(store.clone(), set.clone()));
        sync.reload().await?;
        let batcher = Batcher::new(store.clone(), sync.clone(), config.write_queue);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                set,
                sync,
                batcher,
                config,
                clock,
                bounds: RwLock::new(bounds),
                pruned: Pruned::default(),
                task: Mutex::new(None),
            }),
        })
    }

    /// The clock every decision of this engine reads (the store's).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Now, in seconds since the epoch, by [`Engine::clock`].
    #[inline]
    pub fn now_secs(&self) -> i64 {
        self.inner.clock.now_secs()
    }

    /// The lifetime bounds in force on the database: what revocations are sized by.
    pub fn bounds(&self) -> Bounds {
        *self.inner.bounds.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the recorded bounds again (the sync task does so every prune interval, so an
    /// app launched later with longer lifetimes is heard of).
    pub async fn refresh_bounds(&self) -> Result<Bounds> {
        let recorded = self.inner.store.settings().await?;
        let mut bounds = self.inner.bounds.write().unwrap_or_else(|p| p.into_inner());
        if let Some(recorded) = recorded {
            *bounds = bounds.merge(&recorded);
        }
        Ok(*bounds)
    }

    /// Milliseconds since sync last read the database successfully, `None` before the
    /// first read. One atomic load: cheap enough for every request.
    #[inline]
    pub fn staleness_ms(&self) -> Option<i64> {
        self.inner.sync.staleness_ms(self.inner.clock.now_ms())
    }

    /// Rows removed by the scheduled database prunes since start.
    pub fn pruned(&self) -> PruneReport {
        let p = &self.inner.pruned;
        PruneReport {
            revocations: p.revocations.load(Ordering::Relaxed),
            tokens: p.tokens.load(Ordering::Relaxed),
            events: p.events.load(Ordering::Relaxed),
        }
    }

    /// Revocations never written because their caller went away (dropped the future of
    /// [`Engine::revoke`]: a client that disconnected or timed out) before the writer took
    /// them into a batch, since start.
    pub fn abandoned_revocations(&self) -> u64 {
        self.inner.batcher.abandoned()
    }

    /// Which scope revokes this token, if any. Never does I/O and never waits on a writer.
    #[inline]
    pub fn check(&self, token: &TokenRef<'_>) -> Option<Scope> {
        self.inner.set.check(token)
    }

    /// The in-memory set, read-only: it changes through [`Engine::revoke`],
    /// [`Engine::restore`] and sync, which keep it equal to the database.
    pub fn set(&self) -> SetView<'_> {
        SetView::new(&self.inner.set)
    }

    /// For tests: drops the entries expired at `now` (seconds) from memory without
    /// touching the store, as an early in-memory prune would (e.g. one instance's clock
    /// ahead of the others'). Returns how many were dropped. Apps use [`Engine::prune`].
    #[doc(hidden)]
    pub fn prune_memory_only(&self, now: i64) -> usize {
        self.inner.set.prune(now)
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
    /// Returns the event written, or `None` when an equal or stronger revocation of the same
    /// key is already in force: then nothing is written, nobody is notified, and it is still
    /// a success (the token is revoked).
    ///
    /// The key is taken exactly as it appears in tokens (a blank one is an error); a cut-off
    /// later than now plus the leeway is an error. The revocation stays in force as long as
    /// any token it covers can be accepted (see [`Bounds`]).
    ///
    /// Concurrent calls on one engine are committed together (group commit): one transaction
    /// takes every revocation waiting at that moment (up to 256), so throughput grows with
    /// concurrency instead of being one disk flush per revocation. Each caller still gets its
    /// own answer, returned only once the revocation is committed and applied to the local
    /// set; if the batch's transaction fails, every caller in it gets the error and none of it
    /// is written. Repeated revocations of one key in a batch behave as if made one after the
    /// other (a cut-off or expiry never moves backwards).
    ///
    /// At most [`EngineConfig::write_queue`] revocations wait for the writer: beyond that
    /// this fails at once with [`Error::Overloaded`] and writes nothing. A call whose future
    /// is dropped before its batch is taken writes nothing either (nobody hears the answer);
    /// once its batch is being written, it is committed.
    pub async fn revoke(&self, req: RevokeRequest) -> Result<Option<Event>> {
        let rev = self.resolve(req, self.now_secs()).await?;
        self.inner.batcher.revoke(rev).await
    }

    /// Commits several revocations in one transaction of their own (all or nothing), and
    /// returns their outcomes (as [`Engine::revoke`]'s) in the order of `reqs`.
    pub async fn revoke_many(&self, reqs: Vec<RevokeRequest>) -> Result<Vec<Option<Event>>> {
        let now = self.now_secs();
        let mut revs = Vec::with_capacity(reqs.len());
        for req in reqs {
            revs.push(self.resolve(req, now).await?);
        }
        let events = self.inner.store.revoke(&revs).await?;
        let written: Vec<Event> = events.iter().flatten().cloned().collect();
        self.inner.sync.apply_committed(&written).await?;
        Ok(events)
    }

    /// Lifts a revocation; `None` when there was none. The key is taken exactly as given.
    /// This lifts the revocation for every issuer (the unscoped one); see
    /// [`restore_scoped`](Self::restore_scoped) for one scoped to an issuer.
    pub async fn restore(
        &self,
        scope: Scope,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>> {
        self.restore_scoped(scope, None, key, reason, actor).await
    }

    /// Lifts the revocation of `key` scoped to `issuer` ([`Revocation::issuer`]; `None` or
    /// empty: the unscoped one). Only that revocation is lifted: an unscoped one of the same
    /// key, or another issuer's, stays in force.
    pub async fn restore_scoped(
        &self,
        scope: Scope,
        issuer: Option<&str>,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>> {
        if scope != Scope::Global && key.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "a {scope} restore needs a key (a blank one matches no token)"
            )));
        }
        check_len("key", Some(key))?;
        check_len("issuer", issuer)?;
        check_len("reason", reason)?;
        check_len("actor", actor)?;
        let issuer = issuer.filter(|i| !i.is_empty());
        let event = self
            .inner
            .store
            .restore(scope, issuer, key, reason, actor)
            .await?;
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

    /// Prunes the database (revocations no longer in force, registry rows and events past
    /// the recorded retention) and the set, now.
    pub async fn prune(&self) -> Result<PruneReport> {
        let now = self.now_secs();
        let retention = self.bounds().retention_secs;
        let report = self.inner.store.prune(now, retention).await?;
        self.inner.set.prune(now);
        Ok(report)
    }

    /// The scheduled prune: the set always, the database when this instance wins the claim.
    async fn scheduled_prune(&self) {
        let now_ms = self.inner.clock.now_ms();
        let dropped = self.inner.set.prune(now_ms.div_euclid(1000));
        if dropped > 0 {
            tracing::debug!(dropped, "pruned expired revocations from the set");
        }
        if let Err(e) = self.refresh_bounds().await {
            tracing::debug!(error = %e, "cannot re-read the lifetime bounds");
        }
        if !self.inner.config.prune_database {
            return;
        }
        let interval_ms = i64::try_from(self.inner.config.prune_interval_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        match self.inner.store.claim_prune(now_ms, interval_ms).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!(error = %e, "cannot claim the database prune");
                return;
            }
        }
        let retention = self.bounds().retention_secs;
        match self
            .inner
            .store
            .prune(now_ms.div_euclid(1000), retention)
            .await
        {
            Ok(report) => {
                let p = &self.inner.pruned;
                p.revocations
                    .fetch_add(report.revocations, Ordering::Relaxed);
                p.tokens.fetch_add(report.tokens, Ordering::Relaxed);
                p.events.fetch_add(report.events, Ordering::Relaxed);
                tracing::debug!(?report, "pruned the database");
            }
            Err(e) => tracing::warn!(error = %e, "scheduled database prune failed"),
        }
    }

    /// Checks a request and fills in its cut-off and expiry from the bounds in force.
    async fn resolve(&self, req: RevokeRequest, now: i64) -> Result<Revocation> {
        let bounds = self.bounds();
        // Keys match exactly as they appear in tokens: no trimming, and a blank key would
        // never match anything a caller meant.
        if req.scope != Scope::Global && req.key.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "a {} revocation needs a key (a blank one matches no token)",
                req.scope
            )));
        }
        check_len("key", Some(&req.key))?;
        check_len("issuer", req.issuer.as_deref())?;
        check_len("reason", req.reason.as_deref())?;
        check_len("actor", req.actor.as_deref())?;
        if let Some(cutoff) = req.cutoff {
            let latest = now.saturating_add(bounds.leeway_secs);
            if cutoff > latest {
                return Err(Error::Invalid(format!(
                    "the cut-off {cutoff} is {} s in the future; a cut-off covers tokens already issued, so it must not be later than now (plus the {} s leeway)",
                    cutoff - now,
                    bounds.leeway_secs
                )));
            }
        }
        let key = req.key;
        let (cutoff, expires_at) = match req.scope {
            Scope::Jti => {
                let until = match req.expires_at {
                    Some(exp) => bounds.jti_until(exp),
                    None => match self.inner.store.token(&key, now).await? {
                        Some(t) => bounds.jti_until(t.token.exp),
                        None => bounds.issued_until(now),
                    },
                };
                (None, until)
            }
            Scope::Family => (None, bounds.issued_until(now)),
            Scope::Subject | Scope::Global => {
                let cutoff = req.cutoff.unwrap_or(now);
                (Some(cutoff), bounds.issued_until(cutoff))
            }
        };
        // An explicit expiry can only lengthen the time in force, never cut it short.
        let expires_at = match (req.scope, req.expires_at) {
            (Scope::Jti, _) | (_, None) => expires_at,
            (_, Some(at)) => expires_at.max(at),
        };
        Ok(Revocation {
            scope: req.scope,
            key: if req.scope == Scope::Global {
                String::new()
            } else {
                key
            },
            issuer: req.issuer.filter(|i| !i.is_empty()),
            cutoff,
            expires_at: Some(expires_at),
            reason: req.reason,
            actor: req.actor,
            revoked_at: now,
        })
    }

    /// Starts the background sync task (idempotent). Needs a Tokio runtime.
    ///
    /// The task is supervised: if it ends or panics it is started again after a backoff
    /// (100 ms doubling to 30 s), and [`SyncStatus::restarts`] and `last_error` say so.
    pub fn start_sync(&self) {
        let mut slot = self.inner.task.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let stop = Arc::new(Notify::new());
        let engine = self.clone();
        let stop2 = stop.clone();
        let handle = tokio::spawn(async move { engine.supervise(stop2).await });
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

    async fn supervise(&self, stop: Arc<Notify>) {
        const FIRST: Duration = Duration::from_millis(100);
        const MOST: Duration = Duration::from_secs(30);
        let mut backoff = FIRST;
        loop {
            let engine = self.clone();
            let inner_stop = stop.clone();
            let started = tokio::time::Instant::now();
            let run = tokio::spawn(async move { engine.run_sync(inner_stop).await });
            // The loop only returns when asked to stop.
            let why = match run.await {
                Ok(()) => break,
                Err(e) if e.is_panic() => "the sync task panicked".to_owned(),
                Err(e) => format!("the sync task failed: {e}"),
            };
            self.inner.sync.set_listening(false);
            self.inner.sync.note_restart(why.clone());
            if started.elapsed() > MOST {
                backoff = FIRST;
            }
            tracing::error!(reason = %why, retry_in_ms = backoff.as_millis() as u64, "revocation sync stopped; restarting it");
            tokio::select! {
                _ = stop.notified() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MOST);
        }
        self.inner.sync.set_listening(false);
    }

    async fn run_sync(&self, stop: Arc<Notify>) {
        let poll = Duration::from_millis(self.inner.config.poll_interval_ms.max(1));
        let prune_every = Duration::from_secs(self.inner.config.prune_interval_secs.max(1));
        let mut feed = None;
        let mut next_feed_attempt = tokio::time::Instant::now();
        let mut next_prune = tokio::time::Instant::now() + prune_every;
        // Reads happen at least once a poll interval even while notifications keep
        // arriving, so staleness measures the database's reachability, not traffic.
        let mut last_read = tokio::time::Instant::now();
        loop {
            if feed.is_none() && tokio::time::Instant::now() >= next_feed_attempt {
                match self.inner.store.listen().await {
                    Ok(Some(f)) => {
                        feed = Some(f);
                        self.inner.sync.set_listening(true);
                        // Anything committed while we were not listening.
                        let _ = self.inner.sync.catch_up().await;
                        last_read = tokio::time::Instant::now();
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
            let until_read = poll.saturating_sub(last_read.elapsed());
            let woke = tokio::select! {
                _ = stop.notified() => Woke::Stop,
                r = woke => Woke::Feed(r),
                _ = tokio::time::sleep(until_read) => Woke::Timer,
            };
            let read = match woke {
                Woke::Stop => return,
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
            } || last_read.elapsed() >= poll;
            if read {
                last_read = tokio::time::Instant::now();
                if let Err(e) = self.inner.sync.catch_up().await {
                    tracing::warn!(error = %e, "revocation sync failed; serving the last synced set");
                }
            }
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + prune_every;
                self.scheduled_prune().await;
            }
        }
    }
}
