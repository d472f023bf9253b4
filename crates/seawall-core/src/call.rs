//! [`CallPolicy`]: budget → retry → breaker → per-attempt timeout, in that order, in one call.
//!
//! The order matters and is easy to get wrong by hand: the budget must bound everything
//! (including the waits between retries); the retry loop must see the breaker's rejections (to
//! honour its `retry_after`) but the breaker must see every attempt, not just the last; and the
//! per-attempt timeout must be derived from what is left of the budget at each attempt.

use std::future::Future;
use std::time::Duration;

use crate::breaker::{CircuitBreaker, Outcome, Rejected};
use crate::budget::{Budget, BudgetExhausted, DeadlineExceeded, TimeoutPolicy};
use crate::retry::{GiveUpReason, RetryBudget, RetryConfig, RetryDecision, RetryState};
use crate::time::{Clock, MonotonicClock};

/// Whether a failed attempt is worth another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// Do not retry (a bad request, say).
    No,
    /// Retry after the policy's backoff.
    Yes,
    /// Retry after this long (a server's `Retry-After`), if the budget fits it.
    After(Duration),
}

/// Why a call through a [`CallPolicy`] failed.
#[derive(Debug)]
pub enum RunError<E> {
    /// The last attempt's own error.
    Inner(E),
    /// The breaker rejected the last attempt.
    Rejected(Rejected),
    /// The last attempt ran out of time and was cancelled.
    DeadlineExceeded(DeadlineExceeded),
    /// Not enough time was left to start the first attempt.
    BudgetExhausted(BudgetExhausted),
    /// The shared retry budget refused a retry; holds the last attempt's failure.
    RetryBudgetExhausted(Box<RunError<E>>),
}

impl<E: std::fmt::Display> std::fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Inner(e) => e.fmt(f),
            RunError::Rejected(r) => r.fmt(f),
            RunError::DeadlineExceeded(d) => d.fmt(f),
            RunError::BudgetExhausted(b) => b.fmt(f),
            RunError::RetryBudgetExhausted(last) => {
                write!(f, "retry budget exhausted; last failure: {last}")
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RunError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Inner(e) => Some(e),
            RunError::Rejected(r) => Some(r),
            RunError::DeadlineExceeded(d) => Some(d),
            RunError::BudgetExhausted(b) => Some(b),
            RunError::RetryBudgetExhausted(last) => Some(last.as_ref()),
        }
    }
}

/// Runs calls under a budget, with retries, a breaker and a per-attempt timeout.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use seawall_core::{BreakerConfig, Budget, CallPolicy, CircuitBreaker, RetryConfig};
///
/// let policy = CallPolicy::new()
///     .breaker(CircuitBreaker::new(BreakerConfig::builder().build()?))
///     .retry(RetryConfig::default())
///     .attempt_timeout(Duration::from_millis(500));
/// let budget = Budget::start(Duration::from_secs(2));
/// let answer: Result<u32, _> = policy.run(Some(&budget), |_attempt| async { Ok::<_, std::io::Error>(42) }).await;
/// assert_eq!(answer?, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CallPolicy {
    breaker: Option<CircuitBreaker>,
    retry: RetryConfig,
    retry_budget: Option<RetryBudget>,
    attempt_timeout: Option<Duration>,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl CallPolicy {
    /// The default policy: [`RetryConfig::default`] retries, the process-wide retry budget,
    /// no breaker, attempts bounded only by the budget.
    pub fn new() -> Self {
        CallPolicy {
            breaker: None,
            retry: RetryConfig::default(),
            retry_budget: Some(RetryBudget::global()),
            attempt_timeout: None,
        }
    }

    /// Every attempt goes through `breaker`.
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// How many attempts and how long between them.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The retry budget to draw retries from (`None` disables it: think twice).
    pub fn retry_budget(mut self, retry_budget: Option<RetryBudget>) -> Self {
        self.retry_budget = retry_budget;
        self
    }

    /// Caps each attempt (scaled by the budget's policy, and never beyond what is left).
    pub fn attempt_timeout(mut self, cap: Duration) -> Self {
        self.attempt_timeout = Some(cap);
        self
    }

    /// Runs `attempt(n)` (n from 1) until it succeeds or the policy gives up; every error is
    /// retryable. Without a budget, the call gets the process-wide policy's maximum.
    pub async fn run<T, E, F, Fut>(
        &self,
        budget: Option<&Budget>,
        attempt: F,
    ) -> Result<T, RunError<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_with(budget, |_| Retryable::Yes, attempt).await
    }

    /// Like [`run`](Self::run), with `classify` deciding which errors are worth a retry and
    /// passing on a server's `Retry-After`.
    pub async fn run_with<T, E, F, Fut, C>(
        &self,
        budget: Option<&Budget>,
        classify: C,
        mut attempt: F,
    ) -> Result<T, RunError<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Fn(&E) -> Retryable,
    {
        let clock = MonotonicClock;
        let budget = budget
            .copied()
            .unwrap_or_else(|| Budget::start(TimeoutPolicy::global().max_timeout()));
        let mut state = RetryState::new(self.retry);
        let mut last: Option<RunError<E>> = None;
        loop {
            let started = match &self.retry_budget {
                Some(rb) => rb.with_core(|core, _| {
                    state.start_attempt(clock.now(), &budget, self.attempt_timeout, Some(core))
                }),
                None => state.start_attempt(clock.now(), &budget, self.attempt_timeout, None),
            };
            let timeout = match started {
                Ok(t) => t,
                Err(e) => return Err(last.unwrap_or(RunError::BudgetExhausted(e))),
            };
            let (failure, hint) = match self.one_attempt(timeout, attempt(state.attempts())).await {
                Ok(v) => return Ok(v),
                Err(RunError::Inner(e)) => match classify(&e) {
                    Retryable::No => return Err(RunError::Inner(e)),
                    Retryable::Yes => (RunError::Inner(e), None),
                    Retryable::After(d) => (RunError::Inner(e), Some(d)),
                },
                Err(RunError::Rejected(r)) => (RunError::Rejected(r), r.retry_after),
                Err(other) => (other, None),
            };
            let decision = match &self.retry_budget {
                Some(rb) => {
                    rb.with_core(|core, _| state.on_failure(clock.now(), &budget, hint, Some(core)))
                }
                None => state.on_failure(clock.now(), &budget, hint, None),
            };
            match decision {
                RetryDecision::RetryAfter(delay) => tokio::time::sleep(delay).await,
                RetryDecision::GiveUp(GiveUpReason::RetryBudgetExhausted) => {
                    return Err(RunError::RetryBudgetExhausted(Box::new(failure)));
                }
                RetryDecision::GiveUp(_) => return Err(failure),
            }
            last = Some(failure);
        }
    }

    async fn one_attempt<T, E, Fut>(&self, timeout: Duration, fut: Fut) -> Result<T, RunError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = match &self.breaker {
            Some(b) => Some(b.try_acquire().map_err(RunError::Rejected)?),
            None => None,
        };
        let result = tokio::time::timeout(timeout, fut).await;
        let outcome = match &result {
            Ok(Ok(_)) => Outcome::Success,
            // A timed-out attempt is the dependency's failure as much as an error is.
            Ok(Err(_)) | Err(_) => Outcome::Failure,
        };
        if let Some(p) = permit {
            p.record(outcome);
        }
        match result {
            Ok(r) => r.map_err(RunError::Inner),
            Err(_) => Err(RunError::DeadlineExceeded(DeadlineExceeded { timeout })),
        }
    }
}

/// Retries `attempt` under `budget` with `config`, drawing retries from the process-wide retry
/// budget: [`CallPolicy`] without a breaker.
pub async fn retry<T, E, F, Fut>(
    config: RetryConfig,
    budget: Option<&Budget>,
    attempt: F,
) -> Result<T, RunError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    CallPolicy::new().retry(config).run(budget, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerConfig;
    use crate::retry::{Backoff, RetryBudgetConfig};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn constant(attempts: u32, ms: u64) -> RetryConfig {
        RetryConfig::new(
            attempts,
            Backoff::Constant {
                delay: Duration::from_millis(ms),
            },
            Some(1),
        )
        .expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success() {
        let calls = AtomicU32::new(0);
        let policy = CallPolicy::new().retry(constant(3, 10)).retry_budget(None);
        let r: Result<u32, RunError<&str>> = policy
            .run(None, |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 3 { Err("flaky") } else { Ok(n) } }
            })
            .await;
        assert_eq!(r.ok(), Some(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn not_retryable_stops_at_once_and_attempt_timeouts_are_failures() {
        let policy = CallPolicy::new()
            .retry(constant(5, 10))
            .retry_budget(None)
            .attempt_timeout(Duration::from_millis(50));
        let r: Result<(), RunError<&str>> = policy
            .run_with(None, |_| Retryable::No, |_| async { Err("bad request") })
            .await;
        assert!(matches!(r, Err(RunError::Inner("bad request"))));
        let r: Result<(), RunError<&str>> = policy
            .run(None, |_| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(RunError::DeadlineExceeded(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_ends_retries_whose_wait_does_not_fit() {
        let breaker = CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"));
        breaker.force_open();
        let policy = CallPolicy::new()
            .breaker(breaker)
            .retry(constant(3, 10))
            .retry_budget(None);
        let r: Result<(), RunError<&str>> = policy.run(None, |_| async { Ok(()) }).await;
        // Forced open gives no retry_after: the policy's backoff applies, then attempts run out.
        assert!(matches!(r, Err(RunError::Rejected(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_caps_retries() {
        let rb = RetryBudget::new(
            RetryBudgetConfig::new(0.0, 0.0, Duration::from_secs(10)).expect("valid"),
        );
        let policy = CallPolicy::new()
            .retry(constant(3, 10))
            .retry_budget(Some(rb));
        let r: Result<(), RunError<&str>> = policy.run(None, |_| async { Err("down") }).await;
        assert!(matches!(r, Err(RunError::RetryBudgetExhausted(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_budget_never_calls() {
        let calls = AtomicU32::new(0);
        let budget = Budget::start(Duration::ZERO);
        let r: Result<(), RunError<&str>> = retry(constant(3, 10), Some(&budget), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;
        assert!(matches!(r, Err(RunError::BudgetExhausted(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
