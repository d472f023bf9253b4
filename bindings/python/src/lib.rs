//! `seawall._native`: the private native module under the `seawall` pip package.
//!
//! It exposes the core's circuit breaker as synchronous decisions (acquire, record, read the
//! state) and nothing else: no runtime, no threads, no stored Python callbacks. Awaiting the
//! user's coroutine, decorators, context managers and listeners live in the Python facade
//! (`python/seawall/`), which is the only supported way to use this module.

mod breaker;
mod error;

use pyo3::prelude::*;

/// Seawall's native core (private: import `seawall` instead).
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::breaker::{Breaker, defaults};
}
