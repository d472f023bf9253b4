//! Seawall: circuit breakers, deadline budgets and connection pools from one Rust core, with the
//! same decisions in Rust, Node.js and Python.
//!
//! This crate re-exports [`seawall_core`]; see [`CircuitBreaker`] to start.
//!
//! ```
//! use std::time::Duration;
//! use seawall::{BreakerConfig, CircuitBreaker};
//!
//! let breaker = CircuitBreaker::new(
//!     BreakerConfig::builder()
//!         .failure_rate_threshold(50.0)
//!         .count_window(100)
//!         .open_duration(Duration::from_secs(30))
//!         .build()?,
//! );
//! match breaker.try_acquire() {
//!     Ok(permit) => permit.success(),
//!     Err(rejected) => println!("retry after {:?}", rejected.retry_after),
//! }
//! # Ok::<(), seawall::ConfigError>(())
//! ```

pub use seawall_core::*;

#[cfg(feature = "postgres")]
pub mod postgres;
