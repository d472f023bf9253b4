//! `seawall._native`: the private native module under the `seawall` pip package.
//!
//! It exposes the core's circuit breaker, timeout policy, deadline budget, retry and connection
//! pool decisions as synchronous calls that take the time and return a decision: no runtime, no
//! threads. Awaiting the user's coroutine, cancelling it at a deadline, sleeping between
//! attempts, opening, checking and closing connections, waking the callers waiting for one,
//! context managers and listeners live in the Python facade (`python/seawall/`), which is the
//! only supported way to use this module. Two hot paths are native bases of facade classes, so
//! that a call costs one native call: `BreakerBase` (the sync `CircuitBreaker.call` and sync
//! decorated functions; it calls back into the facade for classifiers and listeners) and
//! `BudgetBase` (building a `Budget`).

mod breaker;
mod budget;
mod convert;
mod error;
mod memory;
mod pool;
mod retry;

use pyo3::prelude::*;

/// Seawall's native core (private: import `seawall` instead).
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::breaker::{Breaker, BreakerBase, Guarded, defaults};
    #[pymodule_export]
    use crate::budget::{BudgetBase, NativeBudget, Policy, Ready, budget_defaults, check_timeout};
    #[pymodule_export]
    use crate::memory::{NativeWatchdog, check_limit_bytes, read_memory, watchdog_defaults};
    #[pymodule_export]
    use crate::pool::{NativePool, pool_defaults};
    #[pymodule_export]
    use crate::retry::{Config, NativeRetryBudget, NativeRetryLoop, retry_defaults};
}
