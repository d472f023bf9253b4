//! The connection pool engine (sans-IO): see [`PoolCore`].

mod config;
mod engine;
mod histogram;
#[cfg(feature = "tokio")]
mod tokio_pool;

pub use config::{IdleOrder, MAX_POOL_SIZE, MAX_WAITERS, PoolConfig, PoolConfigBuilder};
pub use engine::{
    Acquire, Action, DestroyReason, Lease, PoolCore, PoolError, PoolEvent, PoolMetrics, SlotId,
    WaiterId,
};
pub use histogram::Histogram;
#[cfg(feature = "tokio")]
pub use tokio_pool::{Manager, Pool, Pooled};
