//! Time as the core sees it: a point on a monotonic clock, passed in by the caller.
//!
//! A [`Timestamp`] is nanoseconds since an arbitrary origin chosen by the adapter. Only
//! differences between timestamps mean anything, which is why the same state machine can be
//! driven by `std::time::Instant`, `performance.now()`, `time.monotonic_ns()` or a manual clock.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A point on a monotonic clock, in nanoseconds since the clock's own origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The clock's origin.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// A timestamp `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// A timestamp from a binding's clock reading in milliseconds (`performance.now()`),
    /// rounded to the nanosecond; `None` for NaN, infinities and negatives.
    pub fn from_millis_f64(millis: f64) -> Option<Self> {
        Self::from_nanos_f64(millis * 1e6)
    }

    /// A timestamp from a binding's clock reading in seconds (`time.monotonic()`), rounded to
    /// the nanosecond; `None` for NaN, infinities and negatives.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        Self::from_nanos_f64(secs * 1e9)
    }

    fn from_nanos_f64(nanos: f64) -> Option<Self> {
        // `as` saturates at u64::MAX, which is far past any real clock reading.
        (nanos.is_finite() && nanos >= 0.0).then(|| Timestamp(nanos.round() as u64))
    }

    /// Milliseconds since the origin, as a binding's clock would read them.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later (clocks that step back
    /// by a few nanoseconds across threads must not produce nonsense).
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at the far future instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }
}

/// Nanoseconds in `d`, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of [`Timestamp`]s. Adapters read one; tests substitute a [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real monotonic clock (`std::time::Instant`), with a process-wide origin so that every
/// breaker in the process agrees on what a timestamp means.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> Timestamp {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        Timestamp(duration_nanos(origin.elapsed()))
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at the origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.nanos.fetch_add(duration_nanos(d), Ordering::SeqCst);
    }

    /// Sets the clock to `t`. Moving it backwards is allowed (the core tolerates it) but is
    /// rarely what a test means.
    pub fn set(&self, t: Timestamp) {
        self.nanos.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::SeqCst))
    }
}
