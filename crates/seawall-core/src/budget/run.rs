//! The tokio adapter: run a future under a budget, cancelling it at the deadline.

use std::future::Future;
use std::time::Duration;

use super::{Budget, BudgetExhausted};
use crate::time::{Clock, MonotonicClock};

/// The work did not finish before the deadline and was cancelled (dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline exceeded: the call was cancelled after {} ms", timeout.as_millis())]
pub struct DeadlineExceeded {
    /// How long the call was given.
    pub timeout: Duration,
}

/// Why [`Budget::run`] did not return the future's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// Too little time was left to start.
    #[error(transparent)]
    Exhausted(#[from] BudgetExhausted),
    /// The deadline passed while the work ran.
    #[error(transparent)]
    DeadlineExceeded(#[from] DeadlineExceeded),
}

impl Budget {
    /// A budget of `timeout` from now on the real clock, under the process-wide policy.
    pub fn start(timeout: Duration) -> Budget {
        Budget::new(
            MonotonicClock.now(),
            timeout,
            super::TimeoutPolicy::global(),
        )
    }

    /// Time left now, on the real clock.
    pub fn remaining_now(&self) -> Duration {
        self.remaining(MonotonicClock.now())
    }

    /// Runs `work` until it finishes or the deadline passes, whichever is first. Fails without
    /// polling `work` when the budget cannot fit a call (see [`Budget::check`]). At the
    /// deadline `work` is dropped, which cancels it the way tokio cancels anything.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, BudgetError> {
        self.run_capped(None, work).await
    }

    /// Like [`run`](Self::run), with the call also bounded by `per_call_cap` (scaled by the
    /// policy): `min(remaining, cap, policy maximum)`.
    pub async fn run_capped<F: Future>(
        &self,
        per_call_cap: Option<Duration>,
        work: F,
    ) -> Result<F::Output, BudgetError> {
        let timeout = self.timeout_for(MonotonicClock.now(), per_call_cap)?;
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| BudgetError::DeadlineExceeded(DeadlineExceeded { timeout }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cancels_at_the_deadline() {
        let b = Budget::start(Duration::from_millis(100));
        let slow = b.run(tokio::time::sleep(Duration::from_secs(1))).await;
        assert!(matches!(slow, Err(BudgetError::DeadlineExceeded(_))));
        let fast = Budget::start(Duration::from_secs(1)).run(async { 7 }).await;
        assert_eq!(fast, Ok(7));
    }

    #[tokio::test]
    async fn exhausted_budget_never_polls_the_work() {
        let b = Budget::start(Duration::ZERO);
        let mut polled = false;
        let r = b
            .run(async {
                polled = true;
            })
            .await;
        assert!(matches!(r, Err(BudgetError::Exhausted(_))));
        assert!(!polled);
    }
}
