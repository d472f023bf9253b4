//! The circuit breaker: stop calling a dependency that is failing or slow, probe it now and
//! then, and resume when it has recovered.
//!
//! [`BreakerCore`] is the sans-IO state machine; [`CircuitBreaker`] is the thread-safe Rust
//! adapter with a clock, RAII permits, `call` helpers and listeners.

mod config;
mod counter;
mod fast;
mod machine;
mod shared;
mod snapshot;
mod window;

pub use config::{
    BackoffConfig, BreakerConfig, BreakerConfigBuilder, MAX_BUCKETS, MAX_COUNT, MAX_DURATION,
    MAX_HALF_OPEN_CALLS, MIN_DURATION, WindowConfig, count_from_f64, duration_from_millis,
    duration_from_secs,
};
pub(crate) use config::{duration_between_0_and_24h, format_duration};
pub use fast::{FastAdmission, FastCounts, FastPath};
pub use machine::{
    BreakerCore, BreakerMetrics, BreakerState, Outcome, PermitTicket, Rejected, RejectionReason,
    Transition, TransitionReason,
};
pub(crate) use machine::{random_seed, splitmix_unit};
pub use shared::{CallError, CircuitBreaker, Event, Permit};
pub use snapshot::{SNAPSHOT_VERSION, Snapshot, SnapshotBucket, SnapshotTotals, SnapshotWindow};
