//! Sliding windows of recorded calls.
//!
//! Both kinds keep running totals so a decision reads three integers, and both allocate their
//! storage once, at construction: recording a call never allocates. The time window expires
//! buckets lazily from the timestamp it is given; nothing ticks in the background.

use std::time::Duration;

use crate::time::{Timestamp, duration_nanos};

/// What one call contributes: whether it failed and whether it was slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallRecord {
    pub failed: bool,
    pub slow: bool,
}

impl CallRecord {
    pub fn code(self) -> u8 {
        u8::from(self.failed) | (u8::from(self.slow) << 1)
    }
    pub fn from_code(c: u8) -> Self {
        CallRecord {
            failed: c & 1 != 0,
            slow: c & 2 != 0,
        }
    }
}

/// Running totals over the calls a window holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

impl Totals {
    fn add(&mut self, r: CallRecord) {
        self.calls += 1;
        self.failures += u32::from(r.failed);
        self.slow += u32::from(r.slow);
    }
    fn sub(&mut self, r: CallRecord) {
        self.calls -= 1;
        self.failures -= u32::from(r.failed);
        self.slow -= u32::from(r.slow);
    }
    fn sub_totals(&mut self, o: Totals) {
        self.calls -= o.calls;
        self.failures -= o.failures;
        self.slow -= o.slow;
    }
    fn add_totals(&mut self, o: Totals) {
        self.calls += o.calls;
        self.failures += o.failures;
        self.slow += o.slow;
    }
}

/// The last N calls, as a ring of 2-bit records.
#[derive(Debug, Clone)]
pub(crate) struct CountWindow {
    ring: Box<[u8]>,
    /// Next slot to write.
    head: usize,
    len: usize,
    totals: Totals,
}

impl CountWindow {
    pub fn new(size: u32) -> Self {
        CountWindow {
            ring: vec![0; size as usize].into_boxed_slice(),
            head: 0,
            len: 0,
            totals: Totals::default(),
        }
    }

    pub fn record(&mut self, r: CallRecord) {
        if self.len == self.ring.len() {
            self.totals.sub(CallRecord::from_code(self.ring[self.head]));
        } else {
            self.len += 1;
        }
        self.ring[self.head] = r.code();
        self.totals.add(r);
        self.head = (self.head + 1) % self.ring.len();
    }

    /// Whether the window is full and holds only successes that were not slow.
    pub fn is_full_of_successes(&self) -> bool {
        self.len == self.ring.len() && self.totals.failures == 0 && self.totals.slow == 0
    }

    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.totals = Totals::default();
    }

    /// Records, oldest first.
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = CallRecord> + '_ {
        let cap = self.ring.len();
        let start = (self.head + cap - self.len) % cap;
        (0..self.len).map(move |i| CallRecord::from_code(self.ring[(start + i) % cap]))
    }
}

/// One slice of a time window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bucket {
    /// Index of the time slice (`t / width`) this bucket currently holds.
    pub slice: u64,
    pub totals: Totals,
}

/// The calls of the last `buckets × width`, one bucket per slice of `width`.
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    width_nanos: u64,
    /// Newest slice seen; buckets for slices older than `newest - len + 1` are stale.
    newest: u64,
    totals: Totals,
}

impl TimeWindow {
    pub fn new(duration: Duration, buckets: u32) -> Self {
        // Validation guarantees each bucket spans at least 1 ms, so width is never zero.
        let width_nanos = (duration_nanos(duration) / u64::from(buckets)).max(1);
        TimeWindow {
            buckets: vec![Bucket::default(); buckets as usize].into_boxed_slice(),
            width_nanos,
            newest: 0,
            totals: Totals::default(),
        }
    }

    /// The slice holding `now`, offset by the number of buckets so that a restored bucket up to
    /// a whole window older than the clock's origin still has a slice index.
    fn slice_of(&self, now: Timestamp) -> u64 {
        now.as_nanos() / self.width_nanos + self.buckets.len() as u64
    }

    /// Expires every bucket that fell out of the window by `now`.
    pub fn advance(&mut self, now: Timestamp) {
        let slice = self.slice_of(now);
        if slice <= self.newest {
            return;
        }
        let n = self.buckets.len() as u64;
        if slice - self.newest >= n {
            self.clear_all(slice);
            return;
        }
        for s in self.newest + 1..=slice {
            let b = &mut self.buckets[(s % n) as usize];
            self.totals.sub_totals(b.totals);
            *b = Bucket {
                slice: s,
                totals: Totals::default(),
            };
        }
        self.newest = slice;
    }

    fn clear_all(&mut self, slice: u64) {
        for b in self.buckets.iter_mut() {
            *b = Bucket::default();
        }
        self.buckets[(slice % self.buckets.len() as u64) as usize].slice = slice;
        self.newest = slice;
        self.totals = Totals::default();
    }

    pub fn record(&mut self, r: CallRecord, now: Timestamp) {
        self.advance(now);
        let slice = self.slice_of(now).min(self.newest);
        let n = self.buckets.len() as u64;
        // A timestamp older than the window (a clock that stepped back) lands in the oldest
        // live bucket rather than resurrecting an expired one.
        let slice = slice.max(self.newest.saturating_sub(n - 1));
        let b = &mut self.buckets[(slice % n) as usize];
        if b.slice != slice {
            self.totals.sub_totals(b.totals);
            *b = Bucket {
                slice,
                totals: Totals::default(),
            };
        }
        b.totals.add(r);
        self.totals.add(r);
    }

    pub fn clear(&mut self, now: Timestamp) {
        self.clear_all(self.slice_of(now));
    }

    /// Live buckets with their age in slices (0 = current), for snapshots.
    pub fn live_buckets(&self) -> impl Iterator<Item = (u64, Totals)> + '_ {
        let n = self.buckets.len() as u64;
        let newest = self.newest;
        self.buckets.iter().filter_map(move |b| {
            let age = newest.checked_sub(b.slice)?;
            (age < n && b.totals.calls > 0).then_some((age, b.totals))
        })
    }

    /// Restores a bucket `age_nanos` old (relative to `now`).
    pub fn restore_bucket(&mut self, now: Timestamp, age_nanos: u64, t: Totals) {
        self.advance(now);
        let n = self.buckets.len() as u64;
        let age = age_nanos / self.width_nanos;
        if age >= n {
            return;
        }
        let Some(slice) = self.newest.checked_sub(age) else {
            return;
        };
        let b = &mut self.buckets[(slice % n) as usize];
        if b.slice != slice {
            self.totals.sub_totals(b.totals);
            *b = Bucket {
                slice,
                totals: Totals::default(),
            };
        }
        b.totals.add_totals(t);
        self.totals.add_totals(t);
    }

    pub fn width_nanos(&self) -> u64 {
        self.width_nanos
    }
}

/// Either kind of window.
#[derive(Debug, Clone)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub fn totals(&mut self, now: Timestamp) -> Totals {
        match self {
            Window::Count(w) => w.totals,
            Window::Time(w) => {
                w.advance(now);
                w.totals
            }
        }
    }

    pub fn record(&mut self, r: CallRecord, now: Timestamp) {
        match self {
            Window::Count(w) => w.record(r),
            Window::Time(w) => w.record(r, now),
        }
    }

    pub fn clear(&mut self, now: Timestamp) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: CallRecord = CallRecord {
        failed: false,
        slow: false,
    };
    const FAIL: CallRecord = CallRecord {
        failed: true,
        slow: false,
    };

    #[test]
    fn count_window_forgets_oldest() {
        let mut w = CountWindow::new(3);
        w.record(FAIL);
        w.record(OK);
        w.record(OK);
        assert_eq!(w.totals.failures, 1);
        w.record(OK);
        assert_eq!(
            w.totals,
            Totals {
                calls: 3,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(w.iter_oldest_first().count(), 3);
    }

    #[test]
    fn time_window_expires_buckets_lazily() {
        let mut w = TimeWindow::new(Duration::from_secs(10), 10);
        w.record(FAIL, Timestamp::from_millis(0));
        w.record(OK, Timestamp::from_millis(5_500));
        w.advance(Timestamp::from_millis(9_999));
        assert_eq!(w.totals.calls, 2);
        w.advance(Timestamp::from_millis(10_000));
        assert_eq!(
            w.totals,
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        w.advance(Timestamp::from_millis(100_000));
        assert_eq!(w.totals, Totals::default());
    }
}
