//! Keeps a [`RevocationSet`] equal to the database: an initial snapshot, then the event log
//! read by cursor, woken by NOTIFY on PostgreSQL and by a timer everywhere.

use crate::store::{Backend, Store};
use crate::{Event, EventKind, Result, RevocationSet, SharedClock};
use serde::Serialize;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// How many events one read fetches.
const BATCH: u32 = 1_000;

/// What sync knows about itself, for `/health`, metrics and the TUI status bar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The database behind the set.
    pub backend: Option<Backend>,
    /// Highest event id applied to the set.
    pub cursor: i64,
    /// When the last read of the database succeeded, ms since the epoch.
    pub last_success_ms: Option<i64>,
    /// The last read error, if the most recent read failed.
    pub last_error: Option<String>,
    /// When the last error happened, ms since the epoch.
    pub last_error_ms: Option<i64>,
    /// Delay between the newest applied event being written and being applied, in ms.
    pub lag_ms: Option<i64>,
    /// Whether a NOTIFY listener is connected (PostgreSQL).
    pub listening: bool,
    /// Events applied since start.
    pub applied: u64,
    /// Times the sync task ended or panicked and was restarted by its supervisor.
    pub restarts: u64,
    /// Failed reads of the database since start.
    pub errors: u64,
}

/// Called with the lag of every event sync applies: milliseconds from the event being
/// written to it being applied here (see [`Engine::observe_lag`](crate::Engine::observe_lag)).
pub type LagObserver = Arc<dyn Fn(i64) + Send + Sync>;

impl SyncStatus {
    /// Milliseconds since the last successful read (`None` before the first).
    pub fn staleness_ms(&self, now_ms: i64) -> Option<i64> {
        self.last_success_ms
            .map(|t| now_ms.saturating_sub(t).max(0))
    }

    /// True while the most recent read failed.
    pub fn is_degraded(&self) -> bool {
        self.last_error.is_some()
    }
}

/// Applies events to a set in id order; shared by the background reader and write-through.
pub(crate) struct Syncer {
    store: Arc<dyn Store>,
    set: Arc<RevocationSet>,
    /// The cursor doubles as the apply lock: whoever holds it applies events in id order,
    /// so a slow read can never re-apply an old event over a newer one.
    cursor: tokio::sync::Mutex<i64>,
    status: Mutex<SyncStatus>,
    /// When the last read succeeded (`i64::MIN` before the first): the one copy, read by
    /// [`Syncer::status`] and, without the lock, by the request path.
    last_success_ms: AtomicI64,
    clock: SharedClock,
    /// Set once, by a metrics layer; read per applied batch.
    lag_observer: std::sync::OnceLock<LagObserver>,
}

impl Syncer {
    pub(crate) fn new(store: Arc<dyn Store>, set: Arc<RevocationSet>) -> Self {
        let status = SyncStatus {
            backend: Some(store.backend()),
            ..SyncStatus::default()
        };
        Self {
            clock: store.clock(),
            store,
            set,
            cursor: tokio::sync::Mutex::new(0),
            status: Mutex::new(status),
            last_success_ms: AtomicI64::new(i64::MIN),
            lag_observer: std::sync::OnceLock::new(),
        }
    }

    /// Installs the lag observer; `false` if one is already installed.
    pub(crate) fn observe_lag(&self, observer: LagObserver) -> bool {
        self.lag_observer.set(observer).is_ok()
    }

    /// Reports the lag of each applied event to the observer, if any.
    fn report_lag(&self, events: &[Event]) {
        if let Some(observe) = self.lag_observer.get() {
            let now = self.clock.now_ms();
            for e in events {
                observe(now.saturating_sub(e.at_ms));
            }
        }
    }

    pub(crate) fn status(&self) -> SyncStatus {
        let mut status = self
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        // Kept in the atomic only, which the request path reads.
        let last = self.last_success_ms.load(Ordering::Acquire);
        status.last_success_ms = (last != i64::MIN).then_some(last);
        status
    }

    fn with_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        let mut guard = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }

    /// Highest event id applied to the set.
    pub(crate) fn cursor(&self) -> i64 {
        self.status
            .lock()
            .map_or_else(|p| p.into_inner().cursor, |s| s.cursor)
    }

    /// Milliseconds since the last successful read at `now_ms` (`None` before the first):
    /// one atomic load, for the request path.
    #[inline]
    pub(crate) fn staleness_ms(&self, now_ms: i64) -> Option<i64> {
        let last = self.last_success_ms.load(Ordering::Acquire);
        (last != i64::MIN).then(|| now_ms.saturating_sub(last).max(0))
    }

    /// Notes that the sync task ended or panicked and is being restarted.
    pub(crate) fn note_restart(&self, why: String) {
        let now = self.clock.now_ms();
        self.with_status(|s| {
            s.restarts += 1;
            s.last_error = Some(why);
            s.last_error_ms = Some(now);
        });
    }

    pub(crate) fn set_listening(&self, on: bool) {
        self.with_status(|s| s.listening = on);
    }

    /// Replaces the set with a fresh snapshot and replays what came after it.
    #[tracing::instrument(level = "debug", name = "sync.reload", skip_all, fields(cursor = tracing::field::Empty))]
    pub(crate) async fn reload(&self) -> Result<usize> {
        let mut cursor = self.cursor.lock().await;
        let (loaded, revocations) = self.load().await?;
        *cursor = loaded;
        self.with_status(|s| s.cursor = loaded);
        tracing::Span::current().record("cursor", loaded);
        tracing::debug!(cursor = loaded, revocations, "revocation set loaded");
        self.catch_up_locked(&mut cursor).await
    }

    /// Streams a snapshot into a fresh copy of the set and swaps it in; returns the snapshot's
    /// cursor and how many revocations it held. On error the set is unchanged.
    async fn load(&self) -> Result<(i64, usize)> {
        let mut loader = self.set.loader();
        let cursor = self.record(
            self.store
                .snapshot_into(self.clock.now_secs(), &mut loader)
                .await,
        )?;
        let n = loader.pushed();
        loader.finish();
        Ok((cursor, n))
    }

    /// Reads and applies every event after the cursor.
    #[tracing::instrument(level = "debug", name = "sync.catch_up", skip_all, fields(cursor = tracing::field::Empty, applied = tracing::field::Empty))]
    pub(crate) async fn catch_up(&self) -> Result<usize> {
        let mut cursor = self.cursor.lock().await;
        let span = tracing::Span::current();
        span.record("cursor", *cursor);
        let applied = self.catch_up_locked(&mut cursor).await?;
        span.record("applied", applied);
        Ok(applied)
    }

    /// Write-through: applies events this process just committed. When they follow the
    /// cursor directly they are applied as they are; otherwise (someone else's events lie
    /// between) the log is read so everything is applied in id order.
    pub(crate) async fn apply_committed(&self, events: &[Event]) -> Result<()> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let mut cursor = self.cursor.lock().await;
        if last.id <= *cursor {
            return Ok(());
        }
        let contiguous = events
            .iter()
            .filter(|e| e.id > *cursor)
            .enumerate()
            .all(|(i, e)| e.id == *cursor + 1 + i as i64);
        if contiguous {
            for e in events.iter().filter(|e| e.id > *cursor) {
                self.apply(e);
            }
            let first_new = events.partition_point(|e| e.id <= *cursor);
            self.report_lag(&events[first_new..]);
            *cursor = last.id;
            let lag = self.clock.now_ms().saturating_sub(last.at_ms);
            self.with_status(|s| {
                s.cursor = last.id;
                s.lag_ms = Some(lag);
                s.applied += events.len() as u64;
            });
            return Ok(());
        }
        self.catch_up_locked(&mut cursor).await.map(|_| ())
    }

    async fn catch_up_locked(&self, cursor: &mut i64) -> Result<usize> {
        let mut total = 0usize;
        loop {
            let events = self.record(self.store.events_after(*cursor, BATCH).await)?;
            let Some(first) = events.first() else {
                break;
            };
            if first.id > *cursor + 1 && *cursor > 0 {
                // A gap: a rolled-back id, or events pruned past our cursor. Only the latter
                // needs a full reload.
                let oldest = self.record(self.store.first_event_id().await)?;
                if oldest > *cursor + 1 {
                    tracing::warn!(
                        cursor = *cursor,
                        oldest,
                        "event log pruned past the cursor; reloading"
                    );
                    *cursor = self.load().await?.0;
                    continue;
                }
            }
            let n = events.len();
            for e in &events {
                self.apply(e);
            }
            self.report_lag(&events);
            if let Some(last) = events.last() {
                *cursor = last.id;
                let lag = self.clock.now_ms().saturating_sub(last.at_ms);
                let c = *cursor;
                self.with_status(|s| {
                    s.cursor = c;
                    s.lag_ms = Some(lag);
                    s.applied += n as u64;
                });
            }
            total += n;
            if n < BATCH as usize {
                break;
            }
        }
        Ok(total)
    }

    fn apply(&self, e: &Event) {
        match e.kind {
            EventKind::Revoke => {
                if let Some(rev) = e.as_revocation() {
                    self.set.apply(&rev);
                }
            }
            EventKind::Restore => {
                self.set
                    .restore_scoped(e.scope, e.issuer.as_deref(), &e.key);
            }
            // The family revocation travels as its own Revoke event.
            EventKind::ReuseDetected => {}
        }
    }

    /// Notes the outcome of a database read in the status.
    fn record<T>(&self, r: Result<T>) -> Result<T> {
        let now = self.clock.now_ms();
        match &r {
            Ok(_) => {
                self.with_status(|s| {
                    s.last_error = None;
                });
                self.last_success_ms.fetch_max(now, Ordering::Release);
            }
            Err(e) => {
                let msg = e.to_string();
                self.with_status(|s| {
                    s.last_error = Some(msg);
                    s.last_error_ms = Some(now);
                    s.errors += 1;
                });
            }
        }
        r
    }
}
