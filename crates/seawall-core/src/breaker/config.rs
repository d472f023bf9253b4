//! Breaker configuration: defaults, the builder, and validation.
//!
//! Every field is checked once, here, so that Rust, Node.js and Python reject the same values
//! with the same message. Bindings convert their numbers with [`duration_from_millis`] /
//! [`duration_from_secs`], which apply the same checks to NaN, infinities and negatives.

use std::time::Duration;

use crate::error::{ConfigError, FieldKind};

/// Largest count window and largest `minimum_calls` / `consecutive_failures`.
pub const MAX_COUNT: u32 = 1_000_000;
/// Most buckets a time window may have (each is 24 bytes, allocated once).
pub const MAX_BUCKETS: u32 = 10_000;
/// Longest duration any breaker field accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);
/// Shortest duration any breaker field accepts.
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// Most probes a half-open breaker may admit.
pub const MAX_HALF_OPEN_CALLS: u32 = 10_000;

/// Which calls the breaker judges by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowConfig {
    /// The last `size` calls.
    Count {
        /// Number of calls remembered.
        size: u32,
    },
    /// The calls of the last `duration`, kept in `buckets` equal slices that expire one at a time.
    Time {
        /// How far back the window reaches.
        duration: Duration,
        /// Number of slices; more buckets expire old calls more smoothly.
        buckets: u32,
    },
}

/// How long the breaker stays open after each trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BackoffConfig {
    /// Always `open_duration`.
    Fixed,
    /// `open_duration × multiplier^k` for the k-th consecutive re-open without a successful
    /// close in between, capped at `max_open_duration`, then shortened by up to `jitter` (a
    /// fraction) at random so a fleet of breakers does not probe in lock-step.
    Exponential {
        /// Growth per consecutive re-open, in [1, 100].
        multiplier: f64,
        /// Cap on the open duration.
        max_open_duration: Duration,
        /// Fraction in [0, 1] by which a duration may be shortened at random.
        jitter: f64,
    },
}

impl BackoffConfig {
    /// The cap bindings use when the user gives none: ten times the base open duration, at most
    /// 24 h, so a breaker that keeps failing probes waits minutes, not hours.
    pub fn default_max_open_duration(open_duration: Duration) -> Duration {
        open_duration.saturating_mul(10).min(MAX_DURATION)
    }

    /// Growth per re-open bindings use when the user gives none.
    pub const DEFAULT_MULTIPLIER: f64 = 2.0;
}

/// A validated breaker configuration. Build one with [`BreakerConfig::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) window: WindowConfig,
    pub(crate) minimum_calls: u32,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) open_duration: Duration,
    pub(crate) backoff: BackoffConfig,
    pub(crate) half_open_calls: u32,
    pub(crate) max_half_open_duration: Option<Duration>,
    pub(crate) seed: Option<u64>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: None,
            window: WindowConfig::Count { size: 100 },
            minimum_calls: 20,
            consecutive_failures: None,
            open_duration: Duration::from_secs(30),
            backoff: BackoffConfig::Fixed,
            half_open_calls: 3,
            max_half_open_duration: Some(Duration::from_secs(120)),
            seed: None,
        }
    }
}

impl BreakerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: BreakerConfig::default(),
        }
    }

    /// Failure-rate percentage at or above which the breaker opens.
    pub fn failure_rate_threshold(&self) -> f64 {
        self.failure_rate_threshold
    }
    /// Slow-call-rate percentage at or above which the breaker opens.
    pub fn slow_call_rate_threshold(&self) -> f64 {
        self.slow_call_rate_threshold
    }
    /// Calls longer than this are slow; `None` disables slow-call tracking.
    pub fn slow_call_duration(&self) -> Option<Duration> {
        self.slow_call_duration
    }
    /// The sliding window.
    pub fn window(&self) -> WindowConfig {
        self.window
    }
    /// Calls needed in the window before a rate can trip the breaker, as configured.
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls
    }
    /// `minimum_calls` as applied: a count window of N calls can never hold more than N, so the
    /// threshold is capped at the window size (as Resilience4j does).
    pub fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            WindowConfig::Count { size } => self.minimum_calls.min(size),
            WindowConfig::Time { .. } => self.minimum_calls,
        }
    }
    /// Failures in a row that open the breaker regardless of rates; `None` if disabled.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }
    /// Base open duration.
    pub fn open_duration(&self) -> Duration {
        self.open_duration
    }
    /// Open-duration growth over consecutive re-opens.
    pub fn backoff(&self) -> BackoffConfig {
        self.backoff
    }
    /// Probes admitted while half-open.
    pub fn half_open_calls(&self) -> u32 {
        self.half_open_calls
    }
    /// How long half-open may last before an unfinished trial counts as failed.
    pub fn max_half_open_duration(&self) -> Option<Duration> {
        self.max_half_open_duration
    }
    /// Seed of the jitter generator, if fixed.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }
}

/// Builds a [`BreakerConfig`]; [`build`](Self::build) validates every field.
#[derive(Debug, Clone)]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
}

impl BreakerConfigBuilder {
    /// Failure-rate percentage in (0, 100] at or above which the breaker opens. Default 50.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }
    /// Slow-call-rate percentage in (0, 100] at or above which the breaker opens. Default 100
    /// (every call in the window slow); only applies once `slow_call_duration` is set.
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }
    /// Calls that take longer than this are slow, whatever their outcome. Default: disabled.
    pub fn slow_call_duration(mut self, d: Option<Duration>) -> Self {
        self.config.slow_call_duration = d;
        self
    }
    /// Judge the last `size` calls. Default 100.
    pub fn count_window(mut self, size: u32) -> Self {
        self.config.window = WindowConfig::Count { size };
        self
    }
    /// Judge the calls of the last `duration`, in `buckets` slices.
    pub fn time_window(mut self, duration: Duration, buckets: u32) -> Self {
        self.config.window = WindowConfig::Time { duration, buckets };
        self
    }
    /// Sets the window.
    pub fn window(mut self, window: WindowConfig) -> Self {
        self.config.window = window;
        self
    }
    /// Calls needed in the window before a rate can trip the breaker. Default 20.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }
    /// Open after `n` failures in a row, whatever the window says. Default: disabled.
    pub fn consecutive_failures(mut self, n: Option<u32>) -> Self {
        self.config.consecutive_failures = n;
        self
    }
    /// How long the breaker stays open before probing. Default 30 s.
    pub fn open_duration(mut self, d: Duration) -> Self {
        self.config.open_duration = d;
        self
    }
    /// Growth of the open duration over consecutive re-opens. Default fixed.
    pub fn backoff(mut self, b: BackoffConfig) -> Self {
        self.config.backoff = b;
        self
    }
    /// Probes admitted while half-open. Default 3.
    pub fn half_open_calls(mut self, n: u32) -> Self {
        self.config.half_open_calls = n;
        self
    }
    /// Longest a half-open trial may last before the breaker opens again. Default 120 s;
    /// `None` waits for the probes for ever.
    pub fn max_half_open_duration(mut self, d: Option<Duration>) -> Self {
        self.config.max_half_open_duration = d;
        self
    }
    /// Fixes the jitter generator's seed (tests, conformance vectors). Default: random.
    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.config.seed = seed;
        self
    }

    /// Validates every field and returns the configuration.
    pub fn build(self) -> Result<BreakerConfig, ConfigError> {
        let c = self.config;
        check_percent("failure_rate_threshold", c.failure_rate_threshold)?;
        check_percent("slow_call_rate_threshold", c.slow_call_rate_threshold)?;
        if let Some(d) = c.slow_call_duration {
            check_duration("slow_call_duration", d)?;
        }
        match c.window {
            WindowConfig::Count { size } => {
                check_count("window.size", size)?;
            }
            WindowConfig::Time { duration, buckets } => {
                check_duration("window.duration", duration)?;
                check_count("window.buckets", buckets)?;
                if duration < MIN_DURATION * buckets {
                    return Err(ConfigError::new(
                        "window.buckets",
                        FieldKind::Number,
                        "at most window.duration in milliseconds (each bucket spans at least 1 ms)",
                        buckets,
                    ));
                }
            }
        }
        check_count("minimum_calls", c.minimum_calls)?;
        if let Some(n) = c.consecutive_failures {
            check_count("consecutive_failures", n)?;
        }
        check_duration("open_duration", c.open_duration)?;
        if let BackoffConfig::Exponential {
            multiplier,
            max_open_duration,
            jitter,
        } = c.backoff
        {
            if !(1.0..=100.0).contains(&multiplier) {
                return Err(ConfigError::new(
                    "backoff.multiplier",
                    FieldKind::Number,
                    "a number in [1, 100]",
                    multiplier,
                ));
            }
            check_duration("backoff.max_open_duration", max_open_duration)?;
            if max_open_duration < c.open_duration {
                return Err(ConfigError::new(
                    "backoff.max_open_duration",
                    FieldKind::Duration,
                    "at least open_duration",
                    format_duration(max_open_duration),
                ));
            }
            if !(0.0..=1.0).contains(&jitter) {
                return Err(ConfigError::new(
                    "backoff.jitter",
                    FieldKind::Number,
                    "a fraction in [0, 1]",
                    jitter,
                ));
            }
        }
        check_count("half_open_calls", c.half_open_calls)?;
        if let Some(d) = c.max_half_open_duration {
            check_duration("max_half_open_duration", d)?;
        }
        Ok(c)
    }
}

fn check_percent(field: &'static str, v: f64) -> Result<(), ConfigError> {
    // `!(v > 0.0)` also rejects NaN.
    if !(v > 0.0 && v <= 100.0) {
        return Err(ConfigError::new(
            field,
            FieldKind::Number,
            "a percentage in (0, 100]",
            v,
        ));
    }
    Ok(())
}

/// The allowed range of each count field (breaker, retry and pool), in one place so that [`count_from_f64`] reports the
/// same range as [`BreakerConfigBuilder::build`] for values too large for a `u32`.
fn count_range(field: &str) -> (u32, u32, &'static str) {
    match field {
        "window.buckets" => (1, MAX_BUCKETS, "an integer in [1, 10000]"),
        "half_open_calls" => (1, MAX_HALF_OPEN_CALLS, "an integer in [1, 10000]"),
        "max_attempts" => (1, crate::retry::MAX_ATTEMPTS, "an integer in [1, 100]"),
        "max_size" => (1, crate::pool::MAX_POOL_SIZE, "an integer in [1, 10000]"),
        "min_idle" => (
            0,
            crate::pool::MAX_POOL_SIZE,
            "an integer between 0 and max_size",
        ),
        "max_waiters" => (0, crate::pool::MAX_WAITERS, "an integer in [0, 1000000]"),
        _ => (1, MAX_COUNT, "an integer in [1, 1000000]"),
    }
}

fn check_count(field: &'static str, v: u32) -> Result<(), ConfigError> {
    let (min, max, expected) = count_range(field);
    if v < min || v > max {
        return Err(ConfigError::new(field, FieldKind::Number, expected, v));
    }
    Ok(())
}

const DURATION_RANGE: &str = "a duration between 1 ms and 24 h";

fn check_duration(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d < MIN_DURATION || d > MAX_DURATION {
        return Err(ConfigError::new(
            field,
            FieldKind::Duration,
            DURATION_RANGE,
            format_duration(d),
        ));
    }
    Ok(())
}

/// Renders a duration the way error messages show it (`1.5 s`, `250 ms`).
pub(crate) fn format_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_secs_f64() * 1000.0)
    }
}

/// Converts a binding's millisecond number into a duration for `field`, rejecting NaN,
/// infinities, negatives and values past 24 h with the field's name. Range checks
/// proper happen in [`BreakerConfigBuilder::build`].
pub fn duration_from_millis(field: &'static str, millis: f64) -> Result<Duration, ConfigError> {
    duration_between_0_and_24h(field, millis / 1000.0, millis, "ms", DURATION_RANGE)
}

/// Converts a binding's seconds number into a duration for `field` (see [`duration_from_millis`]).
pub fn duration_from_secs(field: &'static str, secs: f64) -> Result<Duration, ConfigError> {
    duration_between_0_and_24h(field, secs, secs, "s", DURATION_RANGE)
}

/// The conversion behind every binding's duration: `secs` must be finite and in [0, 24 h]
/// (each config's `build` then checks the field's own range); the error names `field`, says
/// `expected`, and shows the value as the binding gave it (`shown` `unit`).
pub(crate) fn duration_between_0_and_24h(
    field: &'static str,
    secs: f64,
    shown: f64,
    unit: &str,
    expected: &'static str,
) -> Result<Duration, ConfigError> {
    // `contains` is false for NaN.
    if !(0.0..=MAX_DURATION.as_secs_f64()).contains(&secs) {
        return Err(ConfigError::new(
            field,
            FieldKind::Duration,
            expected,
            format!("{shown} {unit}"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Converts a binding's number into a count for `field`, rejecting NaN, fractions, negatives
/// and values past `u32::MAX` with the field's name and its allowed range.
pub fn count_from_f64(field: &'static str, v: f64) -> Result<u32, ConfigError> {
    if !v.is_finite() || v.fract() != 0.0 || v < 0.0 || v > f64::from(u32::MAX) {
        return Err(ConfigError::new(
            field,
            FieldKind::Number,
            count_range(field).2,
            v,
        ));
    }
    // In range and integral, so the cast is exact.
    Ok(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = BreakerConfig::builder().build().expect("defaults");
        assert_eq!(c.failure_rate_threshold(), 50.0);
        assert_eq!(c.window(), WindowConfig::Count { size: 100 });
        assert_eq!(c.minimum_calls(), 20);
        assert_eq!(c.open_duration(), Duration::from_secs(30));
        assert_eq!(c.half_open_calls(), 3);
        assert_eq!(c.slow_call_duration(), None);
    }

    #[test]
    fn messages_name_field_range_and_value() {
        let e = BreakerConfig::builder()
            .failure_rate_threshold(150.0)
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failure_rate_threshold must be a percentage in (0, 100], got 150"
        );
        let e = BreakerConfig::builder()
            .failure_rate_threshold(f64::NAN)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "failure_rate_threshold");
        let e = BreakerConfig::builder()
            .count_window(0)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "window.size");
        let e = BreakerConfig::builder()
            .open_duration(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "open_duration must be a duration between 1 ms and 24 h, got 0 ms"
        );
        let e = BreakerConfig::builder()
            .time_window(Duration::from_millis(5), 10)
            .build()
            .unwrap_err();
        assert_eq!(e.field, "window.buckets");
    }

    #[test]
    fn binding_numbers_are_checked() {
        assert!(duration_from_millis("open_duration", f64::NAN).is_err());
        assert!(duration_from_millis("open_duration", -1.0).is_err());
        assert!(duration_from_millis("open_duration", f64::INFINITY).is_err());
        assert_eq!(
            duration_from_millis("open_duration", 1500.0).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            duration_from_secs("open_duration", 0.25).unwrap(),
            Duration::from_millis(250)
        );
        assert!(count_from_f64("window.size", 1.5).is_err());
        assert!(count_from_f64("window.size", -3.0).is_err());
        assert_eq!(count_from_f64("window.size", 7.0).unwrap(), 7);
        assert_eq!(
            count_from_f64("window.size", 5e9).unwrap_err().to_string(),
            "window.size must be an integer in [1, 1000000], got 5000000000"
        );
    }

    #[test]
    fn minimum_calls_is_capped_by_count_window() {
        let c = BreakerConfig::builder().count_window(10).build().unwrap();
        assert_eq!(c.effective_minimum_calls(), 10);
    }
}
