//! A fixed-size latency histogram: 64 power-of-two buckets of nanoseconds, allocated inline,
//! so recording never allocates and percentiles are within a factor of two.

use std::time::Duration;

use crate::time::duration_nanos;

/// Counts of durations by power-of-two bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; 64],
    count: u64,
    sum_nanos: u64,
    max_nanos: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; 64],
            count: 0,
            sum_nanos: 0,
            max_nanos: 0,
        }
    }
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let n = duration_nanos(d);
        // Bucket i holds values in [2^(i-1), 2^i); zero goes to bucket 0.
        let i = (64 - n.leading_zeros()) as usize;
        self.buckets[i.min(63)] += 1;
        self.count += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(n);
        self.max_nanos = self.max_nanos.max(n);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// The longest.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_nanos)
    }

    /// An upper bound for the `q` quantile (q in [0, 1]): the top of the bucket holding it,
    /// never above the maximum seen. Zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let top = if i == 0 { 0 } else { (1u64 << i.min(63)) - 1 };
                return Duration::from_nanos(top.min(self.max_nanos));
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_factor_of_two() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 100);
        let p50 = h.quantile(0.5);
        assert!(p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(100));
        assert_eq!(h.quantile(1.0), Duration::from_millis(100));
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }
}
