//! Retries: how many attempts, how long to wait between them, and when to stop.
//!
//! The core decides; adapters wait. [`RetryState`] is one call's retry loop as a state machine:
//! [`start_attempt`](RetryState::start_attempt) says whether another attempt fits the budget and
//! how long it may take; [`on_failure`](RetryState::on_failure) says how long to wait before the
//! next one, or why to give up. It never plans a wait that ends past the deadline, prefers a
//! server's `retry_after` hint to its own backoff when the hint fits, and takes every retry from
//! a shared [`RetryBudgetCore`] so that retries cannot multiply load during an outage.

mod budget;
mod shared;

use std::time::Duration;

pub use budget::{RetryBudgetConfig, RetryBudgetCore, RetryBudgetMetrics};
pub use shared::RetryBudget;

use crate::budget::{Budget, BudgetExhausted};
use crate::error::{ConfigError, FieldKind};
use crate::time::Timestamp;

/// Most attempts a retry policy may make.
pub const MAX_ATTEMPTS: u32 = 100;

/// How long to wait before attempt n + 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// Always `delay`.
    Constant {
        /// The wait.
        delay: Duration,
    },
    /// `base × multiplier^(n − 1)` after the n-th failure, at most `cap`.
    Exponential {
        /// First wait.
        base: Duration,
        /// Longest wait.
        cap: Duration,
        /// Growth per attempt, in [1, 100].
        multiplier: f64,
    },
    /// AWS's "decorrelated jitter": uniform between `base` and three times the previous wait,
    /// at most `cap`. Spreads a crowd of retrying callers without letting waits collapse.
    DecorrelatedJitter {
        /// Shortest wait.
        base: Duration,
        /// Longest wait.
        cap: Duration,
    },
}

impl Backoff {
    /// Growth per attempt bindings use for an exponential backoff when the user gives none.
    pub const DEFAULT_MULTIPLIER: f64 = 2.0;
}

/// A validated retry policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    max_attempts: u32,
    backoff: Backoff,
    seed: Option<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            backoff: Backoff::DecorrelatedJitter {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(5),
            },
            seed: None,
        }
    }
}

fn check_backoff_duration(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d > crate::breaker::MAX_DURATION {
        return Err(ConfigError::new(
            field,
            FieldKind::Duration,
            "a duration between 0 and 24 h",
            crate::breaker::format_duration(d),
        ));
    }
    Ok(())
}

impl RetryConfig {
    /// A validated policy: `max_attempts` in [1, 100] counts the first attempt; `seed` fixes
    /// the jitter (tests and conformance vectors).
    pub fn new(
        max_attempts: u32,
        backoff: Backoff,
        seed: Option<u64>,
    ) -> Result<RetryConfig, ConfigError> {
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err(ConfigError::new(
                "max_attempts",
                FieldKind::Number,
                "an integer in [1, 100]",
                max_attempts,
            ));
        }
        match backoff {
            Backoff::Constant { delay } => check_backoff_duration("backoff.delay", delay)?,
            Backoff::Exponential {
                base,
                cap,
                multiplier,
            } => {
                check_backoff_duration("backoff.base", base)?;
                check_backoff_duration("backoff.cap", cap)?;
                if !(1.0..=100.0).contains(&multiplier) {
                    return Err(ConfigError::new(
                        "backoff.multiplier",
                        FieldKind::Number,
                        "a number in [1, 100]",
                        multiplier,
                    ));
                }
                if cap < base {
                    return Err(ConfigError::new(
                        "backoff.cap",
                        FieldKind::Duration,
                        "at least backoff.base",
                        crate::breaker::format_duration(cap),
                    ));
                }
            }
            Backoff::DecorrelatedJitter { base, cap } => {
                check_backoff_duration("backoff.base", base)?;
                check_backoff_duration("backoff.cap", cap)?;
                if cap < base {
                    return Err(ConfigError::new(
                        "backoff.cap",
                        FieldKind::Duration,
                        "at least backoff.base",
                        crate::breaker::format_duration(cap),
                    ));
                }
            }
        }
        Ok(RetryConfig {
            max_attempts,
            backoff,
            seed,
        })
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
    /// The backoff.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }
    /// The jitter seed, if fixed.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }
}

/// A server's retry-after hint from a binding's number of seconds. A hint is not a setting with
/// a range but a fact about the server, so any length converts: infinity and lengths past
/// `Duration::MAX` saturate, and [`RetryState::on_failure`] then gives up with
/// `retry_after_beyond_budget`. NaN and negatives are refused, naming `retry_after`.
pub fn retry_after_from_secs(secs: f64) -> Result<Duration, ConfigError> {
    if secs.is_nan() || secs < 0.0 {
        return Err(ConfigError::new(
            "retry_after",
            FieldKind::Duration,
            "a non-negative duration",
            secs,
        ));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// [`retry_after_from_secs`] for a number of milliseconds.
pub fn retry_after_from_millis(millis: f64) -> Result<Duration, ConfigError> {
    retry_after_from_secs(millis / 1000.0).map_err(|e| ConfigError {
        got: format!("{millis} ms"),
        ..e
    })
}

/// Why a call stopped retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
    /// The wait plus the policy's minimum to start would not fit in what is left of the budget.
    BudgetExhausted,
    /// The server's `retry_after` does not fit in what is left of the budget.
    RetryAfterBeyondBudget,
    /// The shared retry budget allows no more retries now.
    RetryBudgetExhausted,
}

impl GiveUpReason {
    /// The snake_case name used by bindings and conformance vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::BudgetExhausted => "budget_exhausted",
            GiveUpReason::RetryAfterBeyondBudget => "retry_after_beyond_budget",
            GiveUpReason::RetryBudgetExhausted => "retry_budget_exhausted",
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then start the next attempt.
    RetryAfter(Duration),
    /// Stop and report the last failure.
    GiveUp(GiveUpReason),
}

/// One call's retry loop.
#[derive(Debug, Clone)]
pub struct RetryState {
    config: RetryConfig,
    attempts: u32,
    previous_delay: Duration,
    rng: u64,
}

impl RetryState {
    /// A loop that has made no attempt yet.
    pub fn new(config: RetryConfig) -> Self {
        let base = match config.backoff {
            Backoff::Constant { delay } => delay,
            Backoff::Exponential { base, .. } | Backoff::DecorrelatedJitter { base, .. } => base,
        };
        RetryState {
            config,
            attempts: 0,
            previous_delay: base,
            rng: config.seed.unwrap_or_else(crate::breaker::random_seed),
        }
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts an attempt if the budget fits one, returning its timeout
    /// (`min(remaining, attempt_cap, policy maximum)`). The first attempt counts as a request
    /// in `retry_budget`.
    pub fn start_attempt(
        &mut self,
        now: Timestamp,
        budget: &Budget,
        attempt_cap: Option<Duration>,
        retry_budget: Option<&mut RetryBudgetCore>,
    ) -> Result<Duration, BudgetExhausted> {
        let timeout = budget.timeout_for(now, attempt_cap)?;
        if self.attempts == 0
            && let Some(rb) = retry_budget
        {
            rb.record_request(now);
        }
        self.attempts += 1;
        Ok(timeout)
    }

    /// After a retryable failure: how long to wait, or why to stop. `retry_after` is a server
    /// hint (an open breaker's, or a parsed `Retry-After`); it replaces the computed backoff when
    /// it fits the budget and ends the retries when it does not.
    pub fn on_failure(
        &mut self,
        now: Timestamp,
        budget: &Budget,
        retry_after: Option<Duration>,
        retry_budget: Option<&mut RetryBudgetCore>,
    ) -> RetryDecision {
        if self.attempts >= self.config.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let delay = match retry_after {
            Some(hint) => hint,
            None => self.next_backoff(),
        };
        let needed = delay.saturating_add(budget.policy().min_to_start());
        let remaining = budget.remaining(now);
        if needed > remaining || delay >= remaining {
            return RetryDecision::GiveUp(if retry_after.is_some() {
                GiveUpReason::RetryAfterBeyondBudget
            } else {
                GiveUpReason::BudgetExhausted
            });
        }
        if let Some(rb) = retry_budget
            && !rb.try_withdraw(now)
        {
            return RetryDecision::GiveUp(GiveUpReason::RetryBudgetExhausted);
        }
        RetryDecision::RetryAfter(delay)
    }

    fn next_backoff(&mut self) -> Duration {
        match self.config.backoff {
            Backoff::Constant { delay } => delay,
            Backoff::Exponential {
                base,
                cap,
                multiplier,
            } => {
                let exp = i32::try_from(self.attempts.saturating_sub(1)).unwrap_or(i32::MAX);
                let secs = base.as_secs_f64() * multiplier.powi(exp);
                Duration::from_secs_f64(secs.min(cap.as_secs_f64()))
            }
            Backoff::DecorrelatedJitter { base, cap } => {
                let hi = self.previous_delay.saturating_mul(3).max(base);
                let span = hi.saturating_sub(base).as_secs_f64();
                let u = crate::breaker::splitmix_unit(&mut self.rng);
                let d = Duration::from_secs_f64(base.as_secs_f64() + span * u).min(cap);
                self.previous_delay = d;
                d
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::TimeoutPolicy;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn exponential() -> RetryConfig {
        RetryConfig::new(
            4,
            Backoff::Exponential {
                base: MS(100),
                cap: MS(300),
                multiplier: 2.0,
            },
            Some(1),
        )
        .unwrap()
    }

    #[test]
    fn exponential_backoff_then_attempts_exhausted() {
        let budget = Budget::new(t(0), Duration::from_secs(10), TimeoutPolicy::DEFAULT);
        let mut r = RetryState::new(exponential());
        let mut delays = vec![];
        loop {
            r.start_attempt(t(0), &budget, None, None).unwrap();
            match r.on_failure(t(0), &budget, None, None) {
                RetryDecision::RetryAfter(d) => delays.push(d),
                RetryDecision::GiveUp(reason) => {
                    assert_eq!(reason, GiveUpReason::AttemptsExhausted);
                    break;
                }
            }
        }
        assert_eq!(delays, vec![MS(100), MS(200), MS(300)]);
    }

    #[test]
    fn never_waits_past_the_deadline_and_hints_win_when_they_fit() {
        let budget = Budget::new(t(0), MS(1000), TimeoutPolicy::DEFAULT);
        let mut r = RetryState::new(exponential());
        r.start_attempt(t(0), &budget, None, None).unwrap();
        assert_eq!(
            r.on_failure(t(0), &budget, Some(MS(500)), None),
            RetryDecision::RetryAfter(MS(500))
        );
        r.start_attempt(t(500), &budget, None, None).unwrap();
        // 495 ms left: a 490 ms wait would leave 5 ms, under the 10 ms minimum to start.
        assert_eq!(
            r.on_failure(t(505), &budget, Some(MS(490)), None),
            RetryDecision::GiveUp(GiveUpReason::RetryAfterBeyondBudget)
        );
        assert_eq!(
            r.on_failure(t(950), &budget, None, None),
            RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
        );
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_cap() {
        let cfg = RetryConfig::new(
            100,
            Backoff::DecorrelatedJitter {
                base: MS(10),
                cap: MS(1000),
            },
            Some(42),
        )
        .unwrap();
        let budget = Budget::new(t(0), Duration::from_secs(15), TimeoutPolicy::DEFAULT);
        let mut r = RetryState::new(cfg);
        let mut prev = MS(10);
        for _ in 0..50 {
            r.start_attempt(t(0), &budget, None, None).unwrap();
            let RetryDecision::RetryAfter(d) = r.on_failure(t(0), &budget, None, None) else {
                panic!("fits");
            };
            assert!(d >= MS(10) && d <= MS(1000) && d <= prev * 3, "{d:?}");
            prev = d;
        }
    }

    #[test]
    fn the_retry_budget_stops_a_storm() {
        let rb_cfg = RetryBudgetConfig::new(10.0, 0.0, Duration::from_secs(10)).unwrap();
        let mut rb = RetryBudgetCore::new(rb_cfg);
        let budget = Budget::new(t(0), Duration::from_secs(15), TimeoutPolicy::DEFAULT);
        let cfg = RetryConfig::new(2, Backoff::Constant { delay: MS(1) }, None).unwrap();
        let mut retried = 0;
        for _ in 0..100 {
            let mut r = RetryState::new(cfg);
            r.start_attempt(t(0), &budget, None, Some(&mut rb)).unwrap();
            if let RetryDecision::RetryAfter(_) = r.on_failure(t(0), &budget, None, Some(&mut rb)) {
                retried += 1;
            }
        }
        assert_eq!(retried, 10, "10 % of 100 requests");
    }

    #[test]
    fn retry_after_hints_saturate_instead_of_failing() {
        assert_eq!(retry_after_from_secs(1.5), Ok(MS(1500)));
        assert_eq!(retry_after_from_secs(f64::INFINITY), Ok(Duration::MAX));
        assert_eq!(retry_after_from_millis(1e30), Ok(Duration::MAX));
        assert_eq!(
            retry_after_from_secs(f64::NAN).unwrap_err().field,
            "retry_after"
        );
        assert!(retry_after_from_millis(-1.0).is_err());
    }

    #[test]
    fn validation_names_fields() {
        let e = RetryConfig::new(0, Backoff::Constant { delay: MS(1) }, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "max_attempts must be an integer in [1, 100], got 0"
        );
        let e = RetryConfig::new(
            3,
            Backoff::Exponential {
                base: MS(100),
                cap: MS(10),
                multiplier: 2.0,
            },
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "backoff.cap");
    }
}
