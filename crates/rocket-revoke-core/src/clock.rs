//! [`Clock`]: where the engine, its stores, the issuer and the guard read the time, so a test
//! can move past an expiry, a leeway or a retention without sleeping through it.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// Every time-dependent decision (issuing, verifying, cut-offs, expiries, pruning,
/// staleness) reads one of these. [`SystemClock`] is the default; [`ManualClock`] is for tests.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
}

/// The system clock as a [`SharedClock`].
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that only moves when told to; clones share one time.
///
/// ```
/// use rocket_revoke_core::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000_000);
/// clock.advance_secs(90);
/// assert_eq!(clock.now_ms(), 1_090_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// A clock showing the system time now.
    pub fn starting_now() -> Self {
        Self::new(crate::now_ms())
    }

    /// Sets the time.
    pub fn set_ms(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward (or back, with a negative value) by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.advance_ms(secs.saturating_mul(1000));
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
