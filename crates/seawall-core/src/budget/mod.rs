//! Deadline budgets: one absolute deadline per request, shared by everything the request calls.
//!
//! A [`Budget`] is a deadline on the monotonic clock plus the [`TimeoutPolicy`] it was made
//! under. Every timeout derived from it is `min(remaining, per-call cap, policy maximum)`, and
//! a call is not started at all when less than the policy's `min_to_start` is left: failing
//! fast beats starting work that cannot finish (the cascading-failure incident was callers
//! waiting on a dependency long after their own callers had given up).
//!
//! Like the breaker, this is sans-IO: every method takes `now`. The tokio adapter
//! (`Budget::run`, behind the `tokio` feature) is the only part that waits.

mod header;
#[cfg(feature = "tower")]
mod layer;
mod policy;
#[cfg(feature = "tokio")]
mod run;

use std::time::Duration;

pub use header::{HeaderError, decode_grpc_timeout, decode_timeout_ms, encode_grpc_timeout};
#[cfg(feature = "tower")]
pub use layer::{BoxError, BudgetFuture, BudgetLayer, BudgetService};
pub use policy::{TimeoutPolicy, timeout_from_millis, timeout_from_secs};
#[cfg(feature = "tokio")]
pub use run::{BudgetError, DeadlineExceeded};

use crate::time::Timestamp;

/// A request's deadline and the policy it obeys. `Copy`: passing it around costs nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    deadline: Timestamp,
    policy: TimeoutPolicy,
}

/// Not enough time left to start a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "budget exhausted: {} ms left, a call needs at least {} ms to start",
    remaining.as_millis(),
    min_to_start.as_millis()
)]
pub struct BudgetExhausted {
    /// Time that was left.
    pub remaining: Duration,
    /// The policy's minimum to start a call.
    pub min_to_start: Duration,
}

impl Budget {
    /// A budget of `timeout` from `now`, scaled and capped by `policy`.
    pub fn new(now: Timestamp, timeout: Duration, policy: TimeoutPolicy) -> Budget {
        Budget {
            deadline: now.saturating_add(policy.apply(timeout)),
            policy,
        }
    }

    /// A budget ending `remaining` from `now`, as received from an upstream caller: capped by
    /// the policy's maximum but not scaled (it is the caller's deadline, not one of ours).
    pub fn with_remaining(now: Timestamp, remaining: Duration, policy: TimeoutPolicy) -> Budget {
        Budget {
            deadline: now.saturating_add(remaining.min(policy.max_timeout())),
            policy,
        }
    }

    /// A budget from its parts, as [`deadline`](Self::deadline) and [`policy`](Self::policy)
    /// give them (bindings keep a budget as numbers and rebuild it for each question).
    pub fn from_parts(deadline: Timestamp, policy: TimeoutPolicy) -> Budget {
        Budget { deadline, policy }
    }

    /// The deadline.
    pub fn deadline(&self) -> Timestamp {
        self.deadline
    }

    /// The policy.
    pub fn policy(&self) -> TimeoutPolicy {
        self.policy
    }

    /// Time left at `now` (zero once past the deadline).
    pub fn remaining(&self, now: Timestamp) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.deadline
    }

    /// A nested budget for one part of the request: it ends at the earlier of this budget's
    /// deadline and `now + cap` (the cap scaled and capped by the policy).
    pub fn child(&self, now: Timestamp, cap: Duration) -> Budget {
        Budget {
            deadline: self
                .deadline
                .min(now.saturating_add(self.policy.apply(cap))),
            policy: self.policy,
        }
    }

    /// Fails when less than the policy's `min_to_start` is left; otherwise returns what is left.
    pub fn check(&self, now: Timestamp) -> Result<Duration, BudgetExhausted> {
        let remaining = self.remaining(now);
        if remaining < self.policy.least_to_start() {
            return Err(BudgetExhausted {
                remaining,
                min_to_start: self.policy.min_to_start(),
            });
        }
        Ok(remaining)
    }

    /// The timeout for one call: `min(remaining, per-call cap, policy maximum)`, the cap scaled
    /// by the policy. Fails, before the call is made, when the budget cannot fit one.
    pub fn timeout_for(
        &self,
        now: Timestamp,
        per_call_cap: Option<Duration>,
    ) -> Result<Duration, BudgetExhausted> {
        let remaining = self.check(now)?;
        let cap = per_call_cap.map_or(self.policy.max_timeout(), |c| self.policy.apply(c));
        Ok(remaining.min(cap))
    }

    /// The time left as a `grpc-timeout` header value (`"1500m"`), rounded down so the callee
    /// never believes it has more time than the caller.
    pub fn to_grpc_timeout(&self, now: Timestamp) -> String {
        encode_grpc_timeout(self.remaining(now))
    }

    /// The time left in whole milliseconds, rounded down (for `x-request-timeout-ms`-style
    /// headers).
    pub fn to_timeout_ms(&self, now: Timestamp) -> String {
        self.remaining(now).as_millis().to_string()
    }

    /// A budget from a received `grpc-timeout` value, clamped to the policy maximum.
    pub fn from_grpc_timeout(
        value: &str,
        now: Timestamp,
        policy: TimeoutPolicy,
    ) -> Result<Budget, HeaderError> {
        Ok(Budget::with_remaining(
            now,
            decode_grpc_timeout(value)?,
            policy,
        ))
    }

    /// A budget from a received milliseconds header value, clamped to the policy maximum.
    pub fn from_timeout_ms(
        value: &str,
        now: Timestamp,
        policy: TimeoutPolicy,
    ) -> Result<Budget, HeaderError> {
        Ok(Budget::with_remaining(
            now,
            decode_timeout_ms(value)?,
            policy,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn remaining_child_and_timeout_for() {
        let b = Budget::new(t(0), S(2), TimeoutPolicy::DEFAULT);
        assert_eq!(b.remaining(t(500)), MS(1500));
        assert!(!b.is_expired(t(1999)));
        assert!(b.is_expired(t(2000)));
        // The child ends at the earlier deadline.
        assert_eq!(b.child(t(500), S(5)).deadline(), t(2000));
        assert_eq!(b.child(t(500), MS(300)).deadline(), t(800));
        assert_eq!(b.timeout_for(t(500), Some(MS(200))), Ok(MS(200)));
        assert_eq!(b.timeout_for(t(500), None), Ok(MS(1500)));
        // Less than min_to_start (10 ms) left: refused before the call.
        assert_eq!(
            b.timeout_for(t(1995), Some(S(1))),
            Err(BudgetExhausted {
                remaining: MS(5),
                min_to_start: MS(10)
            })
        );
    }

    #[test]
    fn the_policy_bounds_everything() {
        let p = TimeoutPolicy::new(S(15), 0.5, MS(0)).unwrap();
        let b = Budget::new(t(0), S(60), p);
        assert_eq!(b.remaining(t(0)), S(15), "capped at the maximum");
        let b = Budget::new(t(0), S(4), p);
        assert_eq!(b.remaining(t(0)), S(2), "scaled");
        assert_eq!(b.timeout_for(t(0), Some(S(1))), Ok(MS(500)));
        // An upstream deadline is clamped but not scaled.
        let up = Budget::with_remaining(t(0), S(4), p);
        assert_eq!(up.remaining(t(0)), S(4));
        let up = Budget::with_remaining(t(0), S(400), p);
        assert_eq!(up.remaining(t(0)), S(15));
        // A zero budget is exhausted even with min_to_start 0.
        assert!(Budget::new(t(0), S(0), p).check(t(0)).is_err());
    }
}
