//! The tokio adapter: run a future under a budget, cancelling it at the deadline.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::{Budget, BudgetExhausted};
use crate::time::{Clock, MonotonicClock, Timestamp, duration_nanos};

/// The work did not finish before the deadline and was cancelled (dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline exceeded: the call was cancelled after {} ms", timeout.as_millis())]
pub struct DeadlineExceeded {
    /// How long the call was given: what was left of its time when it first had to wait (the
    /// work is polled once before the timer is set up, so a call that finishes at once costs
    /// no timer).
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
    ///
    /// The returned future holds a copy of the budget, not a borrow.
    pub fn run<F: Future>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<F::Output, BudgetError>> + use<F> {
        self.run_capped(None, work)
    }

    /// Like [`run`](Self::run), with the call also bounded by `per_call_cap` (scaled by the
    /// policy): `min(remaining, cap, policy maximum)`.
    pub fn run_capped<F: Future>(
        &self,
        per_call_cap: Option<Duration>,
        work: F,
    ) -> impl Future<Output = Result<F::Output, BudgetError>> + use<F> {
        let budget = *self;
        // One future, not an `async fn` awaiting another: nothing is checked before the first
        // poll, as before.
        async move {
            let (deadline, given) = budget.call_deadline(per_call_cap)?;
            let mut work = pin!(work);
            // Like `tokio::time::timeout`, the work is polled first, and the timer is set up
            // only once the work has to wait: work that finishes at once never touches the timer
            // wheel nor reads the precise clock, and its future never holds a `Sleep` (which
            // costs even unused, in a future's size and drop).
            if let Poll::Ready(v) =
                std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await
            {
                return Ok(v);
            }
            let left = deadline.saturating_duration_since(MonotonicClock.now());
            let timeout = given.unwrap_or(left);
            // Measured on tokio's clock, so a paused test clock governs it.
            let mut delay = pin!(tokio::time::sleep_until(tokio::time::Instant::now() + left));
            // The work has just returned pending in this same poll: look at the timer first.
            let mut work_just_polled = true;
            std::future::poll_fn(move |cx| {
                if !std::mem::take(&mut work_just_polled)
                    && let Poll::Ready(v) = work.as_mut().poll(cx)
                {
                    return Poll::Ready(Ok(v));
                }
                // As in tokio's `Timeout`: when the task's coop budget is used up (by the work,
                // typically), still look at the timer, or a busy work future could never time
                // out. Unlike tokio this does not sample the budget before polling the work, a
                // cost on every call: a timer that fires while the budget was already out is
                // still a timer that fired.
                let fired = if tokio::task::coop::has_budget_remaining() {
                    delay.as_mut().poll(cx)
                } else {
                    pin!(tokio::task::coop::unconstrained(delay.as_mut())).poll(cx)
                };
                fired.map(|()| Err(BudgetError::DeadlineExceeded(DeadlineExceeded { timeout })))
            })
            .await
        }
    }

    /// When a call started now must end, per [`timeout_for`](Self::timeout_for), and the
    /// timeout when it was computed exactly. Without a cap, a cheap bracket of the clock
    /// usually settles it: with comfortably more than `min_to_start` left and the deadline
    /// within the policy maximum, the call ends at the budget's deadline whatever the exact
    /// time. Otherwise the precise clock decides.
    fn call_deadline(
        &self,
        per_call_cap: Option<Duration>,
    ) -> Result<(Timestamp, Option<Duration>), BudgetExhausted> {
        if per_call_cap.is_none() {
            let (earliest, slack) = MonotonicClock.now_coarse();
            let latest = earliest.saturating_add(slack);
            // In nanoseconds: this runs on every call, the `Duration` round trips add up.
            let deadline = self.deadline.as_nanos();
            let least_left = deadline.saturating_sub(latest.as_nanos());
            let most_left = deadline.saturating_sub(earliest.as_nanos());
            if least_left >= duration_nanos(self.policy.least_to_start())
                && most_left <= duration_nanos(self.policy.max_timeout())
            {
                return Ok((self.deadline, None));
            }
        }
        let now = MonotonicClock.now();
        let timeout = self.timeout_for(now, per_call_cap)?;
        Ok((now.saturating_add(timeout), Some(timeout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cancels_at_the_deadline() {
        let b = Budget::start(Duration::from_millis(100));
        let slow = b.run(tokio::time::sleep(Duration::from_secs(1))).await;
        let Err(BudgetError::DeadlineExceeded(e)) = slow else {
            panic!("expected a deadline, got {slow:?}");
        };
        // The call was given what was left of the 100 ms.
        assert!(e.timeout <= Duration::from_millis(100) && e.timeout > Duration::from_millis(50));
        let fast = Budget::start(Duration::from_secs(1)).run(async { 7 }).await;
        assert_eq!(fast, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_yields_first_is_still_cut_at_the_deadline() {
        let b = Budget::start(Duration::from_millis(100));
        let started = tokio::time::Instant::now();
        let r = b
            .run(async {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            })
            .await;
        assert!(matches!(r, Err(BudgetError::DeadlineExceeded(_))));
        assert!(started.elapsed() <= Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cap_bounds_the_call_and_is_reported() {
        let b = Budget::start(Duration::from_secs(10));
        let r = b
            .run_capped(
                Some(Duration::from_millis(30)),
                tokio::time::sleep(Duration::from_secs(1)),
            )
            .await;
        assert_eq!(
            r,
            Err(BudgetError::DeadlineExceeded(DeadlineExceeded {
                timeout: Duration::from_millis(30)
            }))
        );
    }

    #[tokio::test]
    async fn a_budget_past_the_policy_maximum_is_capped() {
        // Rebuilt from parts, a budget can end later than the policy allows one call to run:
        // the call still gets at most the maximum.
        let policy =
            crate::TimeoutPolicy::new(Duration::from_millis(20), 1.0, Duration::ZERO).unwrap();
        let far = MonotonicClock
            .now()
            .saturating_add(Duration::from_secs(3600));
        let b = Budget::from_parts(far, policy);
        let r = b.run(tokio::time::sleep(Duration::from_secs(5))).await;
        let Err(BudgetError::DeadlineExceeded(e)) = r else {
            panic!("expected a deadline, got {r:?}");
        };
        assert_eq!(e.timeout, Duration::from_millis(20));
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

    #[tokio::test]
    async fn a_budget_just_under_min_to_start_is_refused() {
        // 9 ms left against a 10 ms minimum: the coarse bracket cannot settle it, the precise
        // clock must refuse it.
        let b = Budget::start(Duration::from_millis(9));
        let r = b.run(async { 1 }).await;
        assert!(matches!(r, Err(BudgetError::Exhausted(_))), "{r:?}");
        // Comfortably above: started.
        let b = Budget::start(Duration::from_millis(500));
        assert_eq!(b.run(async { 1 }).await, Ok(1));
    }
}
