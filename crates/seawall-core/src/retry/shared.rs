//! [`RetryBudget`]: the retry budget behind a lock, shared by every caller of a dependency.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::{RetryBudgetConfig, RetryBudgetCore, RetryBudgetMetrics};
use crate::time::{Clock, MonotonicClock, Timestamp};

/// A thread-safe retry budget. Clones share the same budget: make one per dependency and hand
/// it to every caller of that dependency.
#[derive(Clone)]
pub struct RetryBudget {
    core: Arc<Mutex<RetryBudgetCore>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget")
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl RetryBudget {
    /// A budget on the real clock.
    pub fn new(config: RetryBudgetConfig) -> Self {
        Self::with_clock(config, MonotonicClock)
    }

    /// A budget reading `clock` (a [`ManualClock`](crate::ManualClock) in tests). `CallPolicy`
    /// and `retry` read the monotonic clock for both the call's budget and the retry budget, so
    /// give them budgets on the real clock ([`new`](Self::new) or [`global`](Self::global)).
    pub fn with_clock(config: RetryBudgetConfig, clock: impl Clock) -> Self {
        RetryBudget {
            core: Arc::new(Mutex::new(RetryBudgetCore::new(config))),
            clock: Arc::new(clock),
        }
    }

    /// The process-wide budget (20 % of requests plus 10 retries a second over 10 s) used by
    /// every retry that is not given one, so that retries are bounded even when nobody thought
    /// about it.
    pub fn global() -> RetryBudget {
        static GLOBAL: OnceLock<RetryBudget> = OnceLock::new();
        GLOBAL
            .get_or_init(|| RetryBudget::new(RetryBudgetConfig::default()))
            .clone()
    }

    /// Runs `f` on the budget's state at the budget clock's `now`.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut RetryBudgetCore, Timestamp) -> R) -> R {
        let now = self.clock.now();
        f(&mut self.core.lock(), now)
    }

    /// The numbers now.
    pub fn metrics(&self) -> RetryBudgetMetrics {
        self.with_core(|c, now| c.metrics(now))
    }
}
