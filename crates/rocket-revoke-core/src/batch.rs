//! Group commit: concurrent [`Engine::revoke`](crate::Engine::revoke) calls on one engine share
//! one transaction.
//!
//! Every caller hands its resolved [`Revocation`] to a queue and waits on a oneshot. One writer
//! task per engine takes whatever is waiting (up to [`MAX_BATCH`]), commits it with one
//! [`Store::revoke_batch`] (one transaction: multi-row upserts and one multi-row event insert,
//! under the PostgreSQL event lock exactly as a single revocation; revocations that arrive
//! while the transaction is being opened join it), applies the events to the local set
//! through the sync apply path (in id order), and only then answers each caller with its own
//! event. A failed commit is an error for every caller of that batch; nothing of it is
//! written, since it was one transaction.
//!
//! With fsync on, a commit costs about a disk flush whatever it holds, and on PostgreSQL the
//! event lock serializes commits across instances: batching is what lets write throughput grow
//! with concurrency instead of being capped at one flush per revocation.
//!
//! The queue is bounded ([`EngineConfig::write_queue`](crate::EngineConfig::write_queue)): a
//! revocation that finds it full fails at once with [`Error::Overloaded`], nothing written,
//! instead of piling up behind a stalled database. A job whose caller went away (its future
//! dropped: the client disconnected or timed out) before the writer took it into a batch is
//! skipped: nobody can hear its answer, so nothing is written for it.

use crate::store::{Joiners, Store};
use crate::sync::Syncer;
use crate::{Error, Event, Result, Revocation};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The most revocations one transaction takes. Bounds the statement sizes and the time one
/// batch holds the event lock; anything beyond waits for the next batch.
pub(crate) const MAX_BATCH: usize = 256;

/// One caller's revocation and where its answer goes.
struct Job {
    rev: Revocation,
    reply: oneshot::Sender<Result<Option<Event>>>,
}

impl Job {
    /// Whether the caller is gone (its future dropped): nobody would hear the answer.
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// The queue in front of an engine's writer task. The task is started on first use, on the
/// runtime of that caller, and started again if its runtime went away; it ends when the
/// engine (the last sender) is dropped.
///
/// The queue is a bounded `mpsc` channel used with `try_send`: its capacity is exactly the
/// number of revocations waiting (a job the writer has taken frees its slot), so no second
/// primitive (a semaphore) has to be kept in step with it, and a full queue is known without
/// waiting. At most `capacity` revocations wait, plus the one batch being written.
pub(crate) struct Batcher {
    store: Arc<dyn Store>,
    sync: Arc<Syncer>,
    capacity: usize,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    /// Jobs skipped because their caller had gone.
    abandoned: Arc<AtomicU64>,
}

impl Batcher {
    /// `capacity` must be at least 1 (the engine validates it).
    pub(crate) fn new(store: Arc<dyn Store>, sync: Arc<Syncer>, capacity: usize) -> Self {
        Self {
            store,
            sync,
            capacity,
            queue: Mutex::new(None),
            abandoned: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Revocations skipped since start because their caller had gone.
    pub(crate) fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Commits `rev` (together with whatever other revocations are waiting), applies it to the
    /// set and returns its event (`None`: already in force, nothing written); or the error
    /// that made its batch fail.
    pub(crate) async fn revoke(&self, rev: Revocation) -> Result<Option<Event>> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job { rev, reply })?;
        answer.await.unwrap_or_else(|_| {
            Err(Error::Invalid(
                "the revocation writer stopped before answering".into(),
            ))
        })
    }

    fn enqueue(&self, job: Job) -> Result<()> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let job = match queue.as_ref() {
            Some(tx) => match tx.try_send(job) {
                Ok(()) => return Ok(()),
                // Never wait for room: a caller queued behind a stalled database would hold
                // its request (and its memory) for as long as the stall lasts.
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(Error::Overloaded {
                        capacity: self.capacity,
                    })
                }
                // The writer's runtime was shut down: start a new writer on ours.
                Err(mpsc::error::TrySendError::Closed(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::channel(self.capacity);
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Invalid("revocations need a Tokio runtime".into()))?;
        handle.spawn(write_loop(
            rx,
            self.store.clone(),
            self.sync.clone(),
            self.abandoned.clone(),
        ));
        // A fresh channel (capacity at least 1) with its receiver alive: this cannot fail.
        let _ = tx.try_send(job);
        *queue = Some(tx);
        Ok(())
    }
}

/// How long the writer may wait for callers it expects before it commits (Tokio's timer
/// rounds it up to its next millisecond tick).
const MAX_LINGER: Duration = Duration::from_millis(1);

/// The writer: one batch at a time, in arrival order.
///
/// A batch is what is waiting when the writer comes round, plus what arrives while its
/// transaction is being opened (`Store::revoke_batch` asks the joiners right before the first
/// row is written). Under load, when the last batch took at least twice [`MAX_LINGER`], the
/// writer also waits up to [`MAX_LINGER`] for as many callers as were in flight around the
/// last batch: callers answered by one batch come back with their next revocation a moment
/// later, and without the wait every other batch would carry only the stragglers (half the
/// callers per transaction, and transactions are what the event lock serializes). The wait
/// ends as soon as they are all there; an engine with one caller at a time never waits.
///
/// Jobs whose caller has gone are dropped as they are taken (here and as joiners), and
/// counted in `abandoned`.
async fn write_loop(
    rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    sync: Arc<Syncer>,
    abandoned: Arc<AtomicU64>,
) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut expected = 1usize;
    let mut linger = false;
    loop {
        {
            let mut queue = rx.lock().await;
            if queue.recv_many(&mut jobs, MAX_BATCH).await == 0 {
                // Every sender (the engine) is gone.
                break;
            }
            if linger && jobs.len() < expected {
                let deadline = tokio::time::Instant::now() + MAX_LINGER;
                while jobs.len() < expected {
                    let want = expected - jobs.len();
                    match tokio::time::timeout_at(deadline, queue.recv_many(&mut jobs, want)).await
                    {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
            }
        }
        skip_abandoned(&mut jobs, &abandoned);
        if jobs.is_empty() {
            continue;
        }
        let started = tokio::time::Instant::now();
        let size = commit(&mut jobs, &rx, store.as_ref(), &sync, &abandoned).await;
        linger = started.elapsed() >= 2 * MAX_LINGER;
        expected = (size + rx.lock().await.len()).clamp(1, MAX_BATCH);
    }
}

/// Drops the jobs whose caller has gone. A caller that goes after this point (while its batch
/// is written) still has its revocation committed: it was already part of the transaction.
fn skip_abandoned(jobs: &mut Vec<Job>, abandoned: &AtomicU64) {
    let before = jobs.len();
    jobs.retain(|j| !j.abandoned());
    note_abandoned(abandoned, (before - jobs.len()) as u64);
}

/// Counts (and logs) `skipped` jobs whose caller had gone.
fn note_abandoned(abandoned: &AtomicU64, skipped: u64) {
    if skipped > 0 {
        abandoned.fetch_add(skipped, Ordering::Relaxed);
        tracing::debug!(
            skipped,
            "revocations skipped: their callers went away before they were written"
        );
    }
}

/// Commits one batch (`jobs` and whatever joins it), answers every caller in it, and returns
/// its size.
async fn commit(
    jobs: &mut Vec<Job>,
    rx: &Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    store: &dyn Store,
    sync: &Syncer,
    abandoned: &Arc<AtomicU64>,
) -> usize {
    let revs: Vec<Revocation> = jobs.iter().map(|j| j.rev.clone()).collect();
    let joined = Arc::new(Mutex::new(Vec::new()));
    let joiners: Joiners = {
        let (rx, joined, abandoned) = (rx.clone(), joined.clone(), abandoned.clone());
        let mut room = MAX_BATCH - jobs.len();
        Box::new(move || {
            let mut revs = Vec::new();
            // The writer holds the queue only between batches, never while one is written.
            let Ok(mut queue) = rx.try_lock() else {
                return revs;
            };
            let mut joined = joined.lock().unwrap_or_else(|p| p.into_inner());
            let mut skipped = 0u64;
            while room > 0 {
                let Ok(job) = queue.try_recv() else { break };
                if job.abandoned() {
                    skipped += 1;
                    continue;
                }
                revs.push(job.rev.clone());
                joined.push(job);
                room -= 1;
            }
            note_abandoned(&abandoned, skipped);
            revs
        })
    };
    let result = store.revoke_batch(revs, joiners).await;
    // The joiners' events follow the others', in the order they were taken.
    jobs.append(&mut joined.lock().unwrap_or_else(|p| p.into_inner()));
    let size = jobs.len();
    let outcome = match result {
        Ok(events) if events.len() != size => Err(Error::Corrupt(format!(
            "{size} revocations committed {} events",
            events.len()
        ))),
        Ok(events) => {
            let written: Vec<Event> = events.iter().flatten().cloned().collect();
            sync.apply_committed(&written).await.map(|()| events)
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(events) => {
            for (job, event) in jobs.drain(..).zip(events) {
                let _ = job.reply.send(Ok(event));
            }
        }
        Err(e) => {
            tracing::debug!(batch = size, error = %e, "revocation batch failed");
            let last = jobs.pop();
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(e.clone()));
            }
            if let Some(job) = last {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    size
}
