//! Durable storage: the token registry, current revocations and the event log.
//!
//! One trait, [`Store`], with two backends over `sqlx` pools: [`SqliteStore`] (the embedded
//! default) and [`PgStore`] (many instances), both a [`SqlStore`] over a `sqlx` pool. They
//! share their SQL (`sql.rs`) and its implementation (`generic.rs`); `dialect.rs` holds the
//! store type and names what differs: how a write transaction starts, how rows are written in
//! bulk, how readers are woken.

use crate::{Bounds, Event, Result, Revocation, Scope, SharedClock, TokenKind};
use serde::{Deserialize, Serialize};
use std::fmt;

mod dialect;
mod generic;
mod postgres;
mod rows;
mod sql;
mod sqlite;

pub use dialect::SqlStore;
pub use postgres::{PgStore, CHANNEL, EVENT_LOCK};
pub use sqlite::SqliteStore;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite (one file, WAL mode); sync polls.
    Sqlite,
    /// PostgreSQL; sync is woken by LISTEN/NOTIFY and polls as a fallback.
    Postgres,
}

impl Backend {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as recorded in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Unique token id.
    pub jti: String,
    /// Subject (user id).
    pub sub: String,
    /// Session family id, shared by every token of one login.
    pub fid: Option<String>,
    /// Access, refresh or external.
    pub kind: TokenKind,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Free text shown to operators (client name, device, ...).
    pub label: Option<String>,
}

/// A token's state as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Neither revoked nor expired.
    Active,
    /// Covered by a revocation of any scope (wins over expired).
    Revoked,
    /// Past its `exp`.
    Expired,
}

impl TokenStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Revoked => "revoked",
            TokenStatus::Expired => "expired",
        }
    }
}

impl std::str::FromStr for TokenStatus {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(TokenStatus::Active),
            "revoked" => Ok(TokenStatus::Revoked),
            "expired" => Ok(TokenStatus::Expired),
            other => Err(crate::Error::Invalid(format!(
                "unknown status {other:?} (expected active, revoked or expired)"
            ))),
        }
    }
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The revocation that covers a token, as shown next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationInfo {
    /// The scope that matched (jti wins over family, family over subject, subject over global).
    pub scope: Scope,
    /// When, seconds since the epoch.
    pub revoked_at: i64,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub actor: Option<String>,
}

/// A registry row with its computed status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The recorded token.
    #[serde(flatten)]
    pub token: TokenRecord,
    /// When a guard last saw it, seconds since the epoch.
    pub last_seen: Option<i64>,
    /// For refresh tokens: when it was spent by a rotation.
    pub spent_at: Option<i64>,
    /// Status at the time of the query.
    pub status: TokenStatus,
    /// The revocation that covers it, if revoked.
    pub revocation: Option<RevocationInfo>,
}

/// Filters and paging for [`Store::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only tokens in this state.
    pub status: Option<TokenStatus>,
    /// Only tokens of exactly this subject.
    pub subject: Option<String>,
    /// Only tokens of this family.
    pub family: Option<String>,
    /// Only tokens whose jti starts with this.
    pub jti_prefix: Option<String>,
    /// Tokens whose subject, jti or label starts with this text.
    pub text: Option<String>,
    /// Keyset paging: only tokens after this `(iat, jti)` in newest-first order.
    pub after: Option<(i64, String)>,
    /// Skip this many rows (prefer `after` for deep pages).
    pub offset: u64,
    /// Page size; 0 means the default of 100.
    pub limit: u32,
}

/// Counts for dashboards and `revokectl stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Registry rows.
    pub tokens: i64,
    /// Registry rows neither revoked nor expired.
    pub active: i64,
    /// Registry rows covered by a revocation.
    pub revoked: i64,
    /// Registry rows past `exp` and not revoked.
    pub expired: i64,
    /// Rows in the revocations table.
    pub revocations: i64,
    /// Rows in the event log.
    pub events: i64,
    /// Highest event id.
    pub last_event_id: i64,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Expired revocations removed.
    pub revocations: u64,
    /// Registry rows removed (expired before the retention window).
    pub tokens: u64,
    /// Events removed (older than the retention window).
    pub events: u64,
}

/// Every unexpired revocation and the event id it is consistent with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Highest event id reflected in `revocations`; sync continues after it.
    pub cursor: i64,
    /// The revocations in force.
    pub revocations: Vec<Revocation>,
}

/// Receives a snapshot row by row ([`Store::snapshot_into`]).
pub trait SnapshotSink: Send {
    /// About how many revocations of `scope` will follow: a sizing hint, given before the
    /// first [`push`](Self::push), that may count some already expired.
    fn expect(&mut self, scope: Scope, revocations: usize) {
        let _ = (scope, revocations);
    }

    /// One revocation in force. The reference is only valid for the call.
    fn push(&mut self, revocation: &Revocation);
}

impl SnapshotSink for Vec<Revocation> {
    fn expect(&mut self, _scope: Scope, revocations: usize) {
        self.reserve(revocations);
    }

    fn push(&mut self, revocation: &Revocation) {
        self.push(revocation.clone());
    }
}

impl SnapshotSink for crate::SetLoader<'_> {
    fn expect(&mut self, scope: Scope, revocations: usize) {
        crate::SetLoader::expect(self, scope, revocations);
    }

    fn push(&mut self, revocation: &Revocation) {
        crate::SetLoader::push(self, revocation);
    }
}

/// Outcome of [`Store::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The refresh token was unspent; it is now spent and the new tokens are recorded.
    Rotated,
    /// The refresh token had been spent before: its family is now revoked. The events
    /// (revoke family, reuse detected) were committed in the same transaction.
    Reused {
        /// The family that was revoked.
        fid: Option<String>,
        /// Events written.
        events: Vec<Event>,
    },
    /// No refresh token with this jti is in the registry.
    Unknown,
    /// A revocation in the database covers the presented refresh token (seen inside the
    /// rotation's transaction, ordered against revocation commits); nothing was written.
    Revoked(Scope),
}

/// Filters for [`Store::events`], the audit trail. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events of this scope.
    pub scope: Option<Scope>,
    /// Only events of exactly this key (jti, subject or family id).
    pub key: Option<String>,
    /// Only events of revocations scoped to exactly this issuer (`""`: the unscoped ones).
    pub issuer: Option<String>,
    /// Only events by exactly this actor.
    pub actor: Option<String>,
    /// Only events written at or after this time, milliseconds since the epoch.
    pub since_ms: Option<i64>,
    /// Only events with an id below this (paging).
    pub before_id: Option<i64>,
    /// At most this many; 0 means 100.
    pub limit: u32,
}

/// Rows one prune batch removes from each table at most, so no prune transaction holds
/// the write lock for long.
pub const PRUNE_BATCH: u32 = 1_000;

/// Hands a revocation batch the revocations that reached the queue after it was taken; see
/// [`Store::revoke_batch`]. Returns none when there are none (or the batch is full).
pub type Joiners = Box<dyn FnMut() -> Vec<Revocation> + Send>;

/// Wakes sync when other processes commit events.
#[async_trait::async_trait]
pub trait ChangeFeed: Send {
    /// Waits for the next notification. An error means the feed is broken; sync falls back
    /// to polling and asks for a new feed later.
    async fn recv(&mut self) -> Result<()>;

    /// Like [`ChangeFeed::recv`], and returns the highest event id the notification
    /// announces when it says (PostgreSQL's payload): sync skips reading the log when it has
    /// applied that id already, as it has for its own writes. The default announces nothing.
    async fn recv_upto(&mut self) -> Result<Option<i64>> {
        self.recv().await.map(|()| None)
    }
}

/// Durable storage for the registry, revocations and the event log.
///
/// Every write is one transaction; a failed write changes nothing and returns an error.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// The clock this store stamps events with; the engine built on it reads the same one.
    fn clock(&self) -> SharedClock;

    /// The lifetime bounds recorded in the database, if an app has recorded any.
    async fn settings(&self) -> Result<Option<Bounds>>;

    /// Records `mine` as bounds of an app on this database, in one transaction: each bound
    /// becomes the larger of the recorded one and `mine`. When a bound grows, every standing
    /// revocation is extended by as much, so it still outlives the tokens the new bound lets
    /// in (the first record extends the rows of earlier versions by the grace of `mine`).
    /// Returns the bounds now in force.
    async fn publish_settings(&self, mine: &Bounds) -> Result<Bounds>;

    /// Claims the scheduled database prune for `interval_ms`: true for exactly one caller
    /// per interval across every instance on this database. The lease lives in the
    /// recorded bounds' row, so it is always false before an app has recorded bounds.
    async fn claim_prune(&self, now_ms: i64, interval_ms: i64) -> Result<bool>;

    /// The audit trail, newest first, filtered.
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>>;

    /// Runs the embedded migrations (idempotent).
    async fn migrate(&self) -> Result<()>;

    /// Records issued tokens; rows that already exist are left unchanged.
    async fn register(&self, tokens: &[TokenRecord]) -> Result<()>;

    /// Records that tokens were used: registers unknown ones and updates `last_seen`.
    async fn observe(&self, seen: &[(TokenRecord, i64)]) -> Result<()>;

    /// One registry row with its status.
    async fn token(&self, jti: &str, now: i64) -> Result<Option<TokenInfo>>;

    /// A page of registry rows, newest first.
    async fn list(&self, query: &ListQuery, now: i64) -> Result<Vec<TokenInfo>>;

    /// Counts by status and table sizes.
    async fn stats(&self, now: i64) -> Result<Stats>;

    /// Commits revocations (upserting by scope, issuer and key) and their events in one transaction.
    /// Returns one entry per revocation, in order: its event, or `None` when an equal or
    /// stronger revocation of the same key was already in force (then nothing was written
    /// for it and nobody is notified).
    async fn revoke(&self, revocations: &[Revocation]) -> Result<Vec<Option<Event>>>;

    /// Group commit of a revocation batch: commits `revocations` as [`Store::revoke`] does and,
    /// in the same transaction, the revocations `joiners` returns when asked once the
    /// transaction is open (before any row is written), so that those that arrived while it
    /// was being opened need not wait for the next one. Returns one event per revocation in
    /// order, those of `revocations` first (`None` for one already in force). All or nothing, as
    /// `revoke`.
    ///
    /// The default implementation never asks `joiners` and is `revoke`.
    async fn revoke_batch(
        &self,
        revocations: Vec<Revocation>,
        joiners: Joiners,
    ) -> Result<Vec<Option<Event>>> {
        drop(joiners);
        self.revoke(&revocations).await
    }

    /// Lifts a revocation (the one scoped to `issuer`, or the unscoped one for `None`) and
    /// records a restore event; `None` when there was nothing to lift.
    async fn restore(
        &self,
        scope: Scope,
        issuer: Option<&str>,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>>;

    /// Spends refresh token `old_jti` and records `new_tokens`, atomically. If it was spent
    /// before, commits `on_reuse` (a family revocation) and a reuse event instead. `issuer`
    /// is the token's `iss`: revocations scoped to it cover the token as unscoped ones do.
    async fn rotate(
        &self,
        old_jti: &str,
        issuer: Option<&str>,
        now: i64,
        new_tokens: &[TokenRecord],
        on_reuse: &Revocation,
    ) -> Result<Rotation>;

    /// Every unexpired revocation and the cursor it is consistent with. Reasons and actors
    /// are left out (`None`): the set does not need them and a million rows load faster.
    async fn snapshot(&self, now: i64) -> Result<Snapshot> {
        let mut revocations = Vec::new();
        let cursor = self.snapshot_into(now, &mut revocations).await?;
        Ok(Snapshot {
            cursor,
            revocations,
        })
    }

    /// [`snapshot`](Self::snapshot) row by row: hands every unexpired revocation to `sink` as
    /// it is read, so a large set loads without the rows ever being held all at once, and
    /// returns the cursor. On error, what `sink` received is incomplete.
    async fn snapshot_into(&self, now: i64, sink: &mut dyn SnapshotSink) -> Result<i64>;

    /// Up to `limit` events with id greater than `cursor`, in id order.
    async fn events_after(&self, cursor: i64, limit: u32) -> Result<Vec<Event>>;

    /// Lowest event id still in the log (0 when empty); a reader whose cursor is below it
    /// minus one missed pruned events and must reload.
    async fn first_event_id(&self) -> Result<i64>;

    /// The audit trail, newest first: up to `limit` events with id below `before` (all when
    /// `None`).
    async fn recent_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<Event>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.events(&EventQuery {
            before_id: before,
            limit,
            ..EventQuery::default()
        })
        .await
    }

    /// A feed that wakes sync when new events commit (PostgreSQL LISTEN); `None` where the
    /// backend has none and sync only polls.
    async fn listen(&self) -> Result<Option<Box<dyn ChangeFeed>>>;

    /// Closes the pool; every later call fails.
    async fn close(&self);

    /// Removes revocations whose time in force ended before `now`, registry rows that expired
    /// before `now - retention`, and events older than `now - retention` (seconds) unless
    /// the revocation they record is still in force. The newest event always stays, so event
    /// ids (and every reader's cursor) keep growing. Works in transactions of at most
    /// [`PRUNE_BATCH`] rows per table, so it never holds the write lock for long.
    async fn prune(&self, now: i64, retention: i64) -> Result<PruneReport>;
}
