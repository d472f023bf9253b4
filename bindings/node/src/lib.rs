//! Node.js binding of Seawall: the native half of the npm package `seawall`.
//!
//! This crate translates and decides nothing: it converts JS numbers and option objects for the
//! core, calls it, and maps its errors ([`error`]). One file per concept: [`breaker`],
//! [`budget`] (deadlines and the timeout policy), [`retry`] (retry loops and retry budgets),
//! [`pool`] (the connection pool engine), [`memory`] (the memory watchdog).
//! Promises, timers, AbortSignals, events, classification callbacks, the clock and the pool's
//! connection objects live in the hand-written facade (`index.js`, `lib/`), so no JS value is
//! ever held from Rust and a process using Seawall exits by itself.

mod breaker;
mod budget;
mod error;
mod memory;
mod options;
mod pool;
mod retry;
mod slots;

pub use breaker::{NativeBreaker, NativeMetrics, NativeTransition, acquire, record};
pub use budget::{
    NativePolicy, budget_check, budget_child, budget_from_header, budget_is_expired, budget_new,
    budget_offset, budget_remaining, budget_start_margin, budget_timeout_for, budget_to_header,
    check_timeout_option, policy_global, policy_new, policy_set_global,
};
pub use error::NativePoolError;
pub use memory::{
    NativeAssessment, NativeDumpFile, NativeDumpPlan, NativeMemoryReading, NativeTrend,
    NativeWatchdog, NativeWatchdogAction, NativeWatchdogConfig, NativeWatchdogCounts,
    memory_without_cgroup, read_memory, read_memory_at,
};
pub use pool::{
    NativeHistogram, NativePool, NativePoolEvent, NativePoolMetrics, pool_acquire,
    pool_acquire_now, pool_cancel, pool_checkout_of, pool_drain, pool_handle_broken,
    pool_handle_create_failed, pool_handle_created, pool_handle_timeout, pool_handle_validated,
    pool_hot_functions, pool_is_closed, pool_metrics, pool_next_timeout, pool_pending,
    pool_release, pool_release_now, pool_resize, pool_set_action_array, pool_take_actions,
    pool_take_actions_into, pool_take_error, pool_take_events, pool_take_failures,
};
pub use retry::{
    NativeRetryBudget, NativeRetryBudgetMetrics, NativeRetryConfig, retry_attempts, retry_begin,
    retry_config_new, retry_end, retry_on_failure, retry_start_attempt,
};
