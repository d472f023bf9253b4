//! Node.js binding of Seawall: the native half of the npm package `seawall`.
//!
//! This crate translates and decides nothing: [`breaker::NativeBreaker`] converts JS numbers and
//! option objects for the core, calls it, and maps its errors ([`error`]). Promises, events,
//! classification callbacks and the clock live in the hand-written facade (`index.js`), so no
//! JS function is ever held from Rust and a process with breakers exits by itself.

mod breaker;
mod error;

pub use breaker::{NativeBreaker, NativeMetrics, NativeTransition, acquire, record};
