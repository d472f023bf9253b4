//! The retry budget: retries may add at most a percentage of the request rate, plus a small
//! floor, over a sliding TTL window (Finagle's and Envoy's design).
//!
//! A per-call attempt limit does not stop a retry storm: when a dependency fails, every caller
//! multiplies its load by the attempt count. A budget shared by all callers of a dependency caps
//! the extra load at, by default, 20 % of the requests plus 10 retries a second, however many
//! callers retry. Sans-IO: `now` is passed in and old buckets expire lazily.

use std::time::Duration;

use crate::error::{ConfigError, FieldKind};
use crate::time::{Timestamp, duration_nanos};

/// Number of slices the TTL window is cut into; deposits expire one slice at a time.
const SLICES: usize = 10;

/// Retry budget settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    percent: f64,
    min_per_second: f64,
    ttl: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig {
            percent: 20.0,
            min_per_second: 10.0,
            ttl: Duration::from_secs(10),
        }
    }
}

impl RetryBudgetConfig {
    /// A validated configuration.
    ///
    /// - `percent`: retries allowed as a percentage of requests, in [0, 1000];
    /// - `min_per_second`: retries always allowed per second of `ttl`, in [0, 100000];
    /// - `ttl`: how long a request or retry counts, between 1 s and 1 h.
    pub fn new(
        percent: f64,
        min_per_second: f64,
        ttl: Duration,
    ) -> Result<RetryBudgetConfig, ConfigError> {
        // The negated forms also reject NaN.
        if !(0.0..=1000.0).contains(&percent) {
            return Err(ConfigError::new(
                "retry_budget.percent",
                FieldKind::Number,
                "a percentage in [0, 1000]",
                percent,
            ));
        }
        if !(0.0..=100_000.0).contains(&min_per_second) {
            return Err(ConfigError::new(
                "retry_budget.min_per_second",
                FieldKind::Number,
                "a number in [0, 100000]",
                min_per_second,
            ));
        }
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "retry_budget.ttl",
                FieldKind::Duration,
                "a duration between 1 s and 1 h",
                crate::breaker::format_duration(ttl),
            ));
        }
        Ok(RetryBudgetConfig {
            percent,
            min_per_second,
            ttl,
        })
    }

    /// Retries allowed as a percentage of requests.
    pub fn percent(&self) -> f64 {
        self.percent
    }
    /// Retries always allowed per second.
    pub fn min_per_second(&self) -> f64 {
        self.min_per_second
    }
    /// How long a request or retry counts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    index: u64,
    requests: u64,
    retries: u64,
}

/// The budget's state: requests and retries of the last `ttl`.
#[derive(Debug, Clone)]
pub struct RetryBudgetCore {
    config: RetryBudgetConfig,
    slices: [Slice; SLICES],
    width_nanos: u64,
    requests: u64,
    retries: u64,
}

/// A view of a retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetMetrics {
    /// Requests (first attempts) in the window.
    pub requests: u64,
    /// Retries in the window.
    pub retries: u64,
    /// Retries the window allows in all.
    pub allowed: u64,
}

impl RetryBudgetCore {
    /// An empty budget.
    pub fn new(config: RetryBudgetConfig) -> Self {
        RetryBudgetCore {
            config,
            slices: [Slice::default(); SLICES],
            width_nanos: (duration_nanos(config.ttl) / SLICES as u64).max(1),
            requests: 0,
            retries: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> RetryBudgetConfig {
        self.config
    }

    /// The slice for `now`, offset so that index 0 is never a live slice.
    fn slice_at(&mut self, now: Timestamp) -> &mut Slice {
        let index = now.as_nanos() / self.width_nanos + SLICES as u64;
        let i = (index % SLICES as u64) as usize;
        for s in &mut self.slices {
            // Expire every slice that fell out of the window (older than SLICES - 1 slices).
            if s.index + (SLICES as u64) <= index && (s.requests > 0 || s.retries > 0) {
                self.requests -= s.requests;
                self.retries -= s.retries;
                *s = Slice::default();
            }
        }
        let slice = &mut self.slices[i];
        if slice.index != index {
            // Only an empty slice (expired above) or one from the future (a clock that stepped
            // back) can differ; reuse it for now.
            self.requests -= slice.requests;
            self.retries -= slice.retries;
            *slice = Slice {
                index,
                ..Slice::default()
            };
        }
        slice
    }

    /// Counts a request (a first attempt).
    pub fn record_request(&mut self, now: Timestamp) {
        self.slice_at(now).requests += 1;
        self.requests += 1;
    }

    fn allowed(&self) -> u64 {
        let share = self.requests as f64 * self.config.percent / 100.0;
        let floor = self.config.min_per_second * self.config.ttl.as_secs_f64();
        // Both terms are finite and non-negative; `as` truncates towards zero.
        (share + 1e-9).floor() as u64 + (floor + 1e-9).floor() as u64
    }

    /// Takes one retry from the budget if it allows one.
    pub fn try_withdraw(&mut self, now: Timestamp) -> bool {
        self.slice_at(now);
        if self.retries >= self.allowed() {
            return false;
        }
        self.slice_at(now).retries += 1;
        self.retries += 1;
        true
    }

    /// The numbers at `now`.
    pub fn metrics(&mut self, now: Timestamp) -> RetryBudgetMetrics {
        self.slice_at(now);
        RetryBudgetMetrics {
            requests: self.requests,
            retries: self.retries,
            allowed: self.allowed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_plus_floor_over_the_ttl() {
        let cfg = RetryBudgetConfig::new(20.0, 1.0, Duration::from_secs(10)).unwrap();
        let mut b = RetryBudgetCore::new(cfg);
        let t0 = Timestamp::from_millis(0);
        for _ in 0..100 {
            b.record_request(t0);
        }
        // 20 % of 100 plus 1/s over 10 s.
        let granted = (0..100).filter(|_| b.try_withdraw(t0)).count();
        assert_eq!(granted, 30);
        // After the TTL everything has expired and the floor is available again.
        let later = Timestamp::from_millis(10_000);
        assert_eq!(
            b.metrics(later),
            RetryBudgetMetrics {
                requests: 0,
                retries: 0,
                allowed: 10
            }
        );
    }

    #[test]
    fn validation() {
        let s = Duration::from_secs;
        assert!(RetryBudgetConfig::new(-1.0, 1.0, s(10)).is_err());
        assert!(RetryBudgetConfig::new(f64::NAN, 1.0, s(10)).is_err());
        assert!(RetryBudgetConfig::new(20.0, -1.0, s(10)).is_err());
        assert_eq!(
            RetryBudgetConfig::new(20.0, 1.0, Duration::from_millis(10))
                .unwrap_err()
                .field,
            "retry_budget.ttl"
        );
    }
}
