//! Seawall's core: deterministic, sans-IO resilience state machines.
//!
//! Every primitive here takes the current time as an argument and returns a decision. Nothing
//! reads a clock, spawns a task or sleeps, which is what lets the same logic run under tokio, the
//! Node.js event loop and asyncio, and lets tests replay hours of virtual time in microseconds.
//! The Rust adapters built on top ([`CircuitBreaker`]) add a [`Clock`], locking and RAII permits.

pub mod breaker;
pub mod budget;
#[cfg(feature = "tokio")]
mod call;
mod error;
pub mod memory;
pub mod pool;
pub mod retry;
mod time;

pub use breaker::{
    BackoffConfig, BreakerConfig, BreakerConfigBuilder, BreakerCore, BreakerMetrics, BreakerState,
    CallError, CircuitBreaker, Event, FastAdmission, FastCounts, FastPath, Outcome, Permit,
    PermitTicket, Rejected, RejectionReason, Snapshot, Transition, TransitionReason, WindowConfig,
};
pub use budget::{Budget, BudgetExhausted, HeaderError, TimeoutPolicy};
#[cfg(feature = "tokio")]
pub use budget::{BudgetError, DeadlineExceeded};
#[cfg(feature = "tokio")]
pub use call::{CallPolicy, Retryable, RunError, retry};
pub use error::{ConfigError, FieldKind, SnapshotError};
pub use retry::{
    Backoff, GiveUpReason, RetryBudget, RetryBudgetConfig, RetryBudgetCore, RetryConfig,
    RetryDecision, RetryState, retry_after_from_millis, retry_after_from_secs,
};
pub use time::{Clock, ManualClock, MonotonicClock, Timestamp};
