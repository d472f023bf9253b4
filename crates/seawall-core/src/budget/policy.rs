//! The timeout policy: the organisation's rules for every timeout, applied in one place.
//!
//! After the cascading-failure incident the rules were: every call has a timeout, none longer
//! than 15 s, and during an incident every timeout can be cut (by half, say) without a deploy.
//! A [`TimeoutPolicy`] is those rules as data; every [`Budget`](super::Budget) carries one and
//! every timeout derived from a budget passes through it, so no API can produce a timeout above
//! the maximum.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use parking_lot::Mutex;

use crate::breaker::{MAX_DURATION, duration_from_millis, duration_from_secs};
use crate::error::{ConfigError, FieldKind};

/// Rules applied to every budget and every timeout derived from one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeoutPolicy {
    max_timeout: Duration,
    scale: f64,
    min_to_start: Duration,
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        TimeoutPolicy::DEFAULT
    }
}

/// The process-wide policy ([`TimeoutPolicy::global`]), read on every `Budget::start`: a
/// sequence lock, so a read is a handful of atomic loads and never waits for a lock (a reader
/// retries only while a rare `set_global` is writing).
struct GlobalPolicy {
    /// Odd while a writer is storing the fields.
    seq: AtomicU64,
    max_timeout_ns: AtomicU64,
    scale_bits: AtomicU64,
    min_to_start_ns: AtomicU64,
    /// Serialises writers.
    writer: Mutex<()>,
}

static GLOBAL: GlobalPolicy = GlobalPolicy {
    seq: AtomicU64::new(0),
    max_timeout_ns: AtomicU64::new(duration_ns(TimeoutPolicy::DEFAULT.max_timeout)),
    scale_bits: AtomicU64::new(TimeoutPolicy::DEFAULT.scale.to_bits()),
    min_to_start_ns: AtomicU64::new(duration_ns(TimeoutPolicy::DEFAULT.min_to_start)),
    writer: parking_lot::const_mutex(()),
};

/// Nanoseconds in a policy duration (at most 24 h, so it fits).
const fn duration_ns(d: Duration) -> u64 {
    d.as_secs() * 1_000_000_000 + d.subsec_nanos() as u64
}

impl GlobalPolicy {
    fn load(&self) -> TimeoutPolicy {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let max = self.max_timeout_ns.load(Ordering::Relaxed);
                let scale = self.scale_bits.load(Ordering::Relaxed);
                let min = self.min_to_start_ns.load(Ordering::Relaxed);
                // Orders the field loads before the re-check of `seq`.
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return TimeoutPolicy {
                        max_timeout: Duration::from_nanos(max),
                        scale: f64::from_bits(scale),
                        min_to_start: Duration::from_nanos(min),
                    };
                }
            }
            std::hint::spin_loop();
        }
    }

    fn store(&self, p: TimeoutPolicy) {
        let _writer = self.writer.lock();
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Readers that see a field written below also see `seq` odd (or changed).
        fence(Ordering::Release);
        self.max_timeout_ns
            .store(duration_ns(p.max_timeout), Ordering::Relaxed);
        self.scale_bits.store(p.scale.to_bits(), Ordering::Relaxed);
        self.min_to_start_ns
            .store(duration_ns(p.min_to_start), Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

impl TimeoutPolicy {
    /// No timeout above 15 s, no scaling, and no call started with less than 10 ms left.
    pub const DEFAULT: TimeoutPolicy = TimeoutPolicy {
        max_timeout: Duration::from_secs(15),
        scale: 1.0,
        min_to_start: Duration::from_millis(10),
    };

    /// A validated policy.
    ///
    /// - `max_timeout`: no timeout may exceed it; between 1 ms and 24 h.
    /// - `scale`: every configured timeout is multiplied by it, in (0, 1] (0.5 halves them).
    /// - `min_to_start`: a call is not started with less than this left; between 0 and
    ///   `max_timeout`.
    pub fn new(
        max_timeout: Duration,
        scale: f64,
        min_to_start: Duration,
    ) -> Result<TimeoutPolicy, ConfigError> {
        if max_timeout < Duration::from_millis(1) || max_timeout > MAX_DURATION {
            return Err(ConfigError::new(
                "max_timeout",
                FieldKind::Duration,
                "a duration between 1 ms and 24 h",
                crate::breaker::format_duration(max_timeout),
            ));
        }
        // `!(scale > 0.0)` also rejects NaN.
        if !(scale > 0.0 && scale <= 1.0) {
            return Err(ConfigError::new(
                "scale",
                FieldKind::Number,
                "a factor in (0, 1]",
                scale,
            ));
        }
        if min_to_start > max_timeout {
            return Err(ConfigError::new(
                "min_to_start",
                FieldKind::Duration,
                "a duration between 0 and max_timeout",
                crate::breaker::format_duration(min_to_start),
            ));
        }
        Ok(TimeoutPolicy {
            max_timeout,
            scale,
            min_to_start,
        })
    }

    /// The longest timeout allowed.
    pub fn max_timeout(&self) -> Duration {
        self.max_timeout
    }

    /// The factor applied to every configured timeout.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The least time left for which a call is still started.
    pub fn min_to_start(&self) -> Duration {
        self.min_to_start
    }

    /// The least time left with which a call may start: `min_to_start`, and never zero (a
    /// budget with nothing left starts nothing). [`Budget::check`](super::Budget::check) and
    /// every derived timeout use this one rule, and bindings that answer "may a call start?"
    /// without a native call read it here rather than restating it.
    pub fn least_to_start(&self) -> Duration {
        self.min_to_start.max(Duration::from_nanos(1))
    }

    /// A configured timeout as the policy allows it: scaled, then capped at the maximum.
    pub fn apply(&self, timeout: Duration) -> Duration {
        // Scaling by 1 (the usual case) is the identity; skipping the float round trip keeps
        // the common path cheap and exact.
        let scaled = if self.scale == 1.0 {
            timeout
        } else {
            timeout.mul_f64(self.scale)
        };
        scaled.min(self.max_timeout)
    }

    /// The process-wide policy, used wherever a budget is created without one.
    pub fn global() -> TimeoutPolicy {
        GLOBAL.load()
    }

    /// Replaces the process-wide policy (during an incident, for instance). Budgets created
    /// before keep the policy they were created with; new ones use this one.
    pub fn set_global(policy: TimeoutPolicy) {
        GLOBAL.store(policy);
    }
}

/// Converts a binding's timeout in milliseconds, rejecting NaN, infinities, negatives and
/// values above 24 h (almost certainly a unit mistake) with the field's name. Values between the
/// policy maximum and 24 h are accepted and clamped by the policy.
pub fn timeout_from_millis(field: &'static str, millis: f64) -> Result<Duration, ConfigError> {
    duration_from_millis(field, millis).map_err(|e| ConfigError {
        expected: "a duration between 0 and 24 h",
        ..e
    })
}

/// Converts a binding's timeout in seconds (see [`timeout_from_millis`]).
pub fn timeout_from_secs(field: &'static str, secs: f64) -> Result<Duration, ConfigError> {
    duration_from_secs(field, secs).map_err(|e| ConfigError {
        expected: "a duration between 0 and 24 h",
        ..e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_every_field() {
        let ms = Duration::from_millis;
        assert_eq!(
            TimeoutPolicy::new(ms(0), 1.0, ms(0)).unwrap_err().field,
            "max_timeout"
        );
        assert_eq!(
            TimeoutPolicy::new(ms(1000), 0.0, ms(0))
                .unwrap_err()
                .to_string(),
            "scale must be a factor in (0, 1], got 0"
        );
        assert!(TimeoutPolicy::new(ms(1000), f64::NAN, ms(0)).is_err());
        assert!(TimeoutPolicy::new(ms(1000), 1.5, ms(0)).is_err());
        assert_eq!(
            TimeoutPolicy::new(ms(1000), 1.0, ms(1001))
                .unwrap_err()
                .field,
            "min_to_start"
        );
    }

    #[test]
    fn the_global_policy_round_trips() {
        // Other tests in this process read the global while this runs: the policy set here
        // differs from the default by a nanosecond, which none of them can notice.
        let p = TimeoutPolicy::new(
            Duration::from_nanos(15_000_000_001),
            1.0,
            Duration::from_millis(10),
        )
        .unwrap();
        let before = TimeoutPolicy::global();
        TimeoutPolicy::set_global(p);
        assert_eq!(TimeoutPolicy::global(), p);
        TimeoutPolicy::set_global(before);
        assert_eq!(TimeoutPolicy::global(), before);
    }

    #[test]
    fn apply_scales_then_caps() {
        let p = TimeoutPolicy::new(Duration::from_secs(15), 0.5, Duration::ZERO).unwrap();
        assert_eq!(p.apply(Duration::from_secs(4)), Duration::from_secs(2));
        assert_eq!(p.apply(Duration::from_secs(60)), Duration::from_secs(15));
    }
}
