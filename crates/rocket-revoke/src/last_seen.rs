//! Last-seen recording: guards hand sightings to a bounded channel without waiting; one
//! background task dedupes them and writes them to the registry in batches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket_revoke_core::store::{Store, TokenRecord};
use rocket_revoke_core::{now_secs, Claims, TokenKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most rows one `observe` call writes.
const MAX_BATCH: usize = 1_000;

type Sighting = (TokenRecord, i64);

/// The sending half, held by the [`Revoker`](crate::Revoker), and the task that drains it.
pub(crate) struct LastSeen {
    tx: mpsc::Sender<Sighting>,
    rx: Mutex<Option<mpsc::Receiver<Sighting>>>,
    task: Mutex<Option<(JoinHandle<()>, oneshot::Sender<()>)>>,
    interval: Duration,
    max_ttl: i64,
    dropped: AtomicU64,
}

impl LastSeen {
    pub(crate) fn new(capacity: usize, interval: Duration, max_ttl: i64) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        LastSeen {
            tx,
            rx: Mutex::new(Some(rx)),
            task: Mutex::new(None),
            interval,
            max_ttl,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues a sighting of an accepted token. Never waits: when the queue is full the
    /// sighting is dropped (and counted).
    pub(crate) fn record<E>(&self, claims: &Claims<E>) {
        let Some(jti) = claims.jti.as_deref() else {
            return;
        };
        let now = now_secs();
        let record = TokenRecord {
            jti: jti.to_owned(),
            sub: claims.sub.clone().unwrap_or_default(),
            fid: claims.fid.clone(),
            kind: claims.kind.unwrap_or(TokenKind::External),
            iat: claims.iat.unwrap_or(now),
            exp: claims.exp.unwrap_or(now.saturating_add(self.max_ttl)),
            label: None,
        };
        if self.tx.try_send((record, now)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::debug!(dropped = n + 1, "last-seen queue full; sightings dropped");
            }
        }
    }

    /// Sightings dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Starts the writer task (once). Needs a Tokio runtime.
    pub(crate) fn start(&self, store: Arc<dyn Store>) {
        let Some(rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let handle = tokio::spawn(run(rx, stop_rx, store, self.interval));
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some((handle, stop_tx));
    }

    /// Stops the writer after a last write of what is queued, and waits for it.
    pub(crate) async fn stop(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((handle, stop)) = task {
            let _ = stop.send(());
            let _ = handle.await;
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Sighting>,
    mut stop: oneshot::Receiver<()>,
    store: Arc<dyn Store>,
    every: Duration,
) {
    let mut pending: HashMap<String, Sighting> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => flush(&store, &mut pending).await,
            msg = rx.recv() => match msg {
                Some(s) => {
                    merge(&mut pending, s);
                    if pending.len() >= MAX_BATCH {
                        flush(&store, &mut pending).await;
                    }
                }
                None => break,
            },
        }
    }
    while let Ok(s) = rx.try_recv() {
        merge(&mut pending, s);
    }
    flush(&store, &mut pending).await;
}

fn merge(pending: &mut HashMap<String, Sighting>, (record, at): Sighting) {
    match pending.get_mut(&record.jti) {
        Some(entry) => entry.1 = entry.1.max(at),
        None => {
            pending.insert(record.jti.clone(), (record, at));
        }
    }
}

async fn flush(store: &Arc<dyn Store>, pending: &mut HashMap<String, Sighting>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<Sighting> = pending.drain().map(|(_, s)| s).collect();
    for chunk in batch.chunks(MAX_BATCH) {
        if let Err(e) = store.observe(chunk).await {
            // Last seen is advisory: drop the batch rather than grow without bound.
            tracing::warn!(error = %e, rows = chunk.len(), "cannot record last-seen times");
        }
    }
}
