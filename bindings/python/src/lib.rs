//! `seawall._native`: the private native module under the `seawall` pip package.
//!
//! It exposes the core's circuit breaker, timeout policy, deadline budget, retry and connection
//! pool decisions as synchronous calls that take the time and return a decision, and nothing
//! else: no runtime, no threads, no stored Python callbacks. Awaiting the user's coroutine,
//! cancelling it at a deadline, sleeping between attempts, opening, checking and closing
//! connections, waking the callers waiting for one, decorators, context managers and listeners
//! live in the Python facade (`python/seawall/`), which is the only supported way to use this
//! module.

mod breaker;
mod budget;
mod convert;
mod error;
mod pool;
mod retry;

use pyo3::prelude::*;

/// Seawall's native core (private: import `seawall` instead).
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::breaker::{Breaker, defaults};
    #[pymodule_export]
    use crate::budget::{NativeBudget, Policy, budget_defaults, check_timeout};
    #[pymodule_export]
    use crate::pool::{NativePool, pool_defaults};
    #[pymodule_export]
    use crate::retry::{Config, NativeRetryBudget, NativeRetryLoop, retry_defaults};
}
