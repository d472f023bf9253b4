//! Time as the core sees it: a point on a monotonic clock, passed in by the caller.
//!
//! A [`Timestamp`] is nanoseconds since an arbitrary origin chosen by the adapter. Only
//! differences between timestamps mean anything, which is why the same state machine can be
//! driven by `std::time::Instant`, `performance.now()`, `time.monotonic_ns()` or a manual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    /// A cheaper reading that is never later than [`now`](Self::now) and normally at most the
    /// returned slack earlier. Enough to tell that a deadline far away has not passed (an open
    /// breaker rejecting, a budget with seconds left) without paying for a precise read. A
    /// stalled timer interrupt can make it lag more than the slack; callers only use it to
    /// confirm that a deadline is still ahead, so a late reading only delays that answer. By
    /// default, `now()` with no slack.
    fn now_coarse(&self) -> (Timestamp, Duration) {
        (self.now(), Duration::ZERO)
    }
}

/// The real monotonic clock, with a process-wide origin so that every breaker, budget and pool
/// in the process agrees on what a timestamp means. On Linux it reads `CLOCK_MONOTONIC` (the
/// clock behind `std::time::Instant`) directly, which skips `Instant`'s arithmetic, and offers
/// `CLOCK_MONOTONIC_COARSE` as [`now_coarse`](Clock::now_coarse); elsewhere it is `Instant`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Timestamp {
        mono::now()
    }

    #[inline]
    fn now_coarse(&self) -> (Timestamp, Duration) {
        mono::now_coarse()
    }
}

/// `CLOCK_MONOTONIC` and `CLOCK_MONOTONIC_COARSE`, both read from the vDSO. They are the same
/// clock at two resolutions (the coarse one is the precise one as of the last scheduler tick),
/// so with one raw origin a coarse reading is never later than a precise one taken after it.
/// The coarse read costs a few nanoseconds; a precise one about 20 ns on this kind of VM.
#[cfg(target_os = "linux")]
mod mono {
    use std::sync::OnceLock;
    use std::time::Duration;

    use super::Timestamp;

    struct Origin {
        /// Raw `CLOCK_MONOTONIC` nanoseconds at the origin.
        raw: u64,
        /// Two ticks of the coarse clock: it is updated by the timer interrupt, which can run
        /// a little after the tick it serves (seen here: 4.0002 ms behind with a 4 ms tick).
        slack: Duration,
    }

    fn read(clock: libc::clockid_t) -> Option<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return None;
        }
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u64::try_from(ts.tv_nsec).ok()?;
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)
    }

    fn origin() -> &'static Origin {
        static ORIGIN: OnceLock<Origin> = OnceLock::new();
        ORIGIN.get_or_init(|| {
            let mut res = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: as in `read`.
            let tick = if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) } == 0
            {
                Duration::new(
                    u64::try_from(res.tv_sec).unwrap_or(0),
                    u32::try_from(res.tv_nsec).unwrap_or(0),
                )
            } else {
                Duration::ZERO
            };
            Origin {
                // CLOCK_MONOTONIC cannot fail on Linux; 0 would only make timestamps larger.
                raw: read(libc::CLOCK_MONOTONIC).unwrap_or(0),
                slack: tick.saturating_mul(2),
            }
        })
    }

    #[inline]
    pub(super) fn now() -> Timestamp {
        let origin = origin();
        Timestamp(read(libc::CLOCK_MONOTONIC).map_or(0, |raw| raw.saturating_sub(origin.raw)))
    }

    #[inline]
    pub(super) fn now_coarse() -> (Timestamp, Duration) {
        let origin = origin();
        match read(libc::CLOCK_MONOTONIC_COARSE) {
            // Read before the origin (the origin is set by the first reading of either kind),
            // a coarse reading saturates at 0, still never later than `now()`.
            Some(raw) if !origin.slack.is_zero() => {
                (Timestamp(raw.saturating_sub(origin.raw)), origin.slack)
            }
            _ => (now(), Duration::ZERO),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod mono {
    use std::time::Duration;

    use super::{Timestamp, duration_nanos};

    pub(super) fn now() -> Timestamp {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        Timestamp(duration_nanos(ORIGIN.get_or_init(Instant::now).elapsed()))
    }

    pub(super) fn now_coarse() -> (Timestamp, Duration) {
        (now(), Duration::ZERO)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coarse_reading_is_never_late_and_never_earlier_than_its_slack() {
        for _ in 0..10_000 {
            let before = MonotonicClock.now();
            let (coarse, slack) = MonotonicClock.now_coarse();
            let after = MonotonicClock.now();
            assert!(coarse <= after, "{coarse:?} is later than {after:?}");
            assert!(
                before <= coarse.saturating_add(slack),
                "{coarse:?} + {slack:?} is earlier than {before:?}"
            );
        }
    }

    #[test]
    fn a_manual_clock_has_no_slack() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_millis(5));
        assert_eq!(
            clock.now_coarse(),
            (Timestamp::from_millis(5), Duration::ZERO)
        );
    }
}
