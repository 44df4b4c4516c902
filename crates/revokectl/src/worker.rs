//! The background side: runs [`Request`]s on the Tokio runtime, each as its own task, and
//! sends the results back to the UI thread as [`Action`]s. Also watches the engine's sync
//! status so revocations made elsewhere show up without a key press.

use crate::action::{Action, Details, Request};
use crate::app::EVENT_PAGE;
use ratatui::crossterm::event::Event;
use rocket_revoke_core::store::ListQuery;
use rocket_revoke_core::{now_secs, Engine};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;

/// What the UI thread waits for: terminal input or a result.
#[derive(Debug)]
pub enum Msg {
    /// A terminal event from the input thread.
    Input(Event),
    /// A result from the worker.
    Action(Box<Action>),
}

/// Replacing page queries allowed to run at once.
const PAGE_SLOTS: usize = 2;

/// How often the sync status is sampled.
const SYNC_POLL: Duration = Duration::from_millis(100);

/// Starts the worker; returns where to send requests.
pub fn spawn(rt: &Handle, engine: Engine, tx: Sender<Msg>) -> UnboundedSender<Request> {
    let (req_tx, mut req_rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
    // Replacing page queries: at most PAGE_SLOTS at once, latest wins. Typing fast never
    // piles queries up on the pool, queries made stale while waiting are never started, and
    // one slow query does not hold back the next.
    let (page_tx, mut page_rx) = tokio::sync::watch::channel::<Option<Request>>(None);
    let e = engine.clone();
    let t = tx.clone();
    rt.spawn(async move {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(PAGE_SLOTS));
        while page_rx.changed().await.is_ok() {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let req = page_rx.borrow_and_update().clone();
            let Some(req) = req else {
                continue;
            };
            let (engine, tx) = (e.clone(), t.clone());
            tokio::spawn(async move {
                let action = handle(&engine, req).await;
                let _ = tx.send(Msg::Action(Box::new(action)));
                drop(permit);
            });
        }
    });
    let e = engine.clone();
    let t = tx.clone();
    rt.spawn(async move {
        while let Some(req) = req_rx.recv().await {
            if matches!(req, Request::List { append: false, .. }) {
                let _ = page_tx.send(Some(req));
                continue;
            }
            let engine = e.clone();
            let tx = t.clone();
            tokio::spawn(async move {
                let action = handle(&engine, req).await;
                let _ = tx.send(Msg::Action(Box::new(action)));
            });
        }
    });
    rt.spawn(async move {
        let mut last = None;
        let mut sent_at = Instant::now();
        loop {
            let s = engine.status();
            let key = (s.cursor, s.last_error.clone(), s.listening);
            if last.as_ref() != Some(&key) || sent_at.elapsed() >= Duration::from_secs(1) {
                last = Some(key);
                sent_at = Instant::now();
                if tx.send(Msg::Action(Box::new(Action::Synced(s)))).is_err() {
                    break;
                }
            }
            tokio::time::sleep(SYNC_POLL).await;
        }
    });
    req_tx
}

/// Runs one request.
pub async fn handle(engine: &Engine, req: Request) -> Action {
    let store = engine.store();
    let now = now_secs();
    match req {
        Request::List { seq, query, append } => {
            let started = Instant::now();
            match store.list(&query, now).await {
                Ok(rows) => Action::Page {
                    seq,
                    rows,
                    append,
                    limit: if query.limit == 0 { 100 } else { query.limit },
                    elapsed: started.elapsed(),
                },
                Err(e) => Action::Failed(format!("query failed: {e}")),
            }
        }
        Request::Stats => match store.stats(now).await {
            Ok(s) => Action::Stats(s),
            Err(e) => Action::Failed(format!("counting failed: {e}")),
        },
        Request::Details { jti, fid } => {
            let token = match store.token(&jti, now).await {
                Ok(t) => t,
                Err(e) => return Action::Failed(format!("reading {jti} failed: {e}")),
            };
            let family = match fid {
                Some(fid) => {
                    let q = ListQuery {
                        family: Some(fid),
                        limit: 50,
                        ..ListQuery::default()
                    };
                    match store.list(&q, now).await {
                        Ok(rows) => rows,
                        Err(e) => return Action::Failed(format!("reading the family failed: {e}")),
                    }
                }
                None => Vec::new(),
            };
            Action::Details(Details { jti, token, family })
        }
        Request::Events { seq, before } => match store.recent_events(before, EVENT_PAGE).await {
            Ok(events) => Action::Events {
                seq,
                events,
                append: before.is_some(),
            },
            Err(e) => Action::Failed(format!("reading the event log failed: {e}")),
        },
        Request::Revoke(req) => {
            let what = if req.scope == rocket_revoke_core::Scope::Global {
                "every token issued before the cut-off".to_owned()
            } else {
                format!("{} {}", req.scope, req.key)
            };
            match engine.revoke(req).await {
                Ok(Some(e)) => Action::Done(format!("revoked {what} (event #{})", e.id)),
                Ok(None) => Action::Done(format!("{what} was already revoked; nothing changed")),
                Err(e) => Action::Failed(format!("revoking {what} failed: {e}")),
            }
        }
        Request::Restore {
            scope,
            key,
            reason,
            actor,
        } => match engine
            .restore(scope, &key, reason.as_deref(), Some(&actor))
            .await
        {
            Ok(Some(e)) => Action::Done(format!("restored {scope} {key} (event #{})", e.id)),
            Ok(None) => Action::Failed(format!("there was no {scope} revocation of {key} to lift")),
            Err(e) => Action::Failed(format!("restoring {scope} {key} failed: {e}")),
        },
    }
}
