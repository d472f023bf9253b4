//! `seawall._native.PoolCore`: the core's sans-IO pool engine ([`PoolCore`]) behind a lock, for
//! the asyncio and thread adapters in `seawall/_pool.py` and the public `seawall.PoolEngine`.
//!
//! Every decision (which waiter gets which connection, when to open, validate or close one, when
//! a wait ends, what the breaker allows) is the engine's. The adapters own the connection
//! objects (keyed by slot id; they never cross into Rust) and perform what the engine asks.
//!
//! To keep an adapter's acquire and release to one native call each, every method that can
//! make the engine ask for something returns, with its own result, what it asked for: the
//! actions and events it queued (lists of small tuples, or `None` when there are none) and the
//! time of the engine's next timer (`None`: none). The lock is held for the engine's decision and
//! for collecting those, never while Python objects are built: building an exception can run
//! Python code (an import, a garbage collection), which must not find the lock taken.
//!
//! Action tuples: `("create", slot, deadline)`, `("validate", slot)`,
//! `("destroy", slot, reason)`, `("hand", waiter, slot, checkout)`, `("fail", waiter, error)`
//! where `error` is a fresh exception instance. Event tuples: `("leak_suspected", slot,
//! held_for)`, `("leak_returned", slot, held_for)`, `("breaker", from, to, reason)`,
//! `("connect_failed", error_text, attempts)`, `("drained", [slot, ...])`. Times are seconds on
//! the adapter's clock.

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::IntoPyObjectExt;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use seawall_core::pool::{
    Acquire, Action, Histogram, IdleOrder, Lease, PoolConfig, PoolCore, PoolEvent, SlotId, WaiterId,
};
use seawall_core::{Budget, Timestamp};

use crate::breaker::{breaker_config_from_dict, config_dict, reason_name, state_name};
use crate::budget::NativeBudget;
use crate::convert::{self, optional, timestamp};
use crate::error::{POOL_BREAKER_FIELDS, POOL_FIELDS as F, config_error, pool_error};

/// `acquire`'s result codes (the first item of its tuple).
const READY: u8 = 0;
const WAIT: u8 = 1;
const ERROR: u8 = 2;

const IDLE_ORDERS: &[&str] = &["lifo", "fifo"];
const IDLE_ORDERS_EXPECTED: &str = "one of 'lifo', 'fifo'";

fn secs(t: Timestamp) -> f64 {
    t.as_nanos() as f64 / 1e9
}

/// What the engine asked for during one call, collected under the lock.
struct Batch {
    actions: Vec<Action>,
    events: Vec<PoolEvent>,
    next: Option<Timestamp>,
}

/// `(actions | None, events | None, next_timeout | None)` as Python values.
type PyBatch<'py> = (
    Option<Bound<'py, PyList>>,
    Option<Bound<'py, PyList>>,
    Option<f64>,
);

impl Batch {
    fn take(core: &mut PoolCore) -> Batch {
        let actions = std::iter::from_fn(|| core.poll_action()).collect();
        let events = std::iter::from_fn(|| core.poll_event()).collect();
        let next = core.poll_timeout();
        Batch {
            actions,
            events,
            next,
        }
    }

    fn into_py(self, py: Python<'_>) -> PyResult<PyBatch<'_>> {
        let actions = if self.actions.is_empty() {
            None
        } else {
            let list = PyList::empty(py);
            for a in self.actions {
                list.append(action(py, a)?)?;
            }
            Some(list)
        };
        let events = if self.events.is_empty() {
            None
        } else {
            let list = PyList::empty(py);
            for e in self.events {
                list.append(event(py, e)?)?;
            }
            Some(list)
        };
        Ok((actions, events, self.next.map(secs)))
    }
}

fn action(py: Python<'_>, a: Action) -> PyResult<Bound<'_, PyTuple>> {
    Ok(match a {
        Action::Create { slot, deadline } => {
            (intern!(py, "create"), slot.as_u64(), secs(deadline)).into_pyobject(py)?
        }
        Action::Validate { slot } => (intern!(py, "validate"), slot.as_u64()).into_pyobject(py)?,
        Action::Destroy { slot, reason } => (
            intern!(py, "destroy"),
            slot.as_u64(),
            pyo3::types::PyString::intern(py, reason.as_str()),
        )
            .into_pyobject(py)?,
        Action::Hand { waiter, lease } => (
            intern!(py, "hand"),
            waiter.as_u64(),
            lease.slot().as_u64(),
            lease.checkout(),
        )
            .into_pyobject(py)?,
        Action::Fail { waiter, error } => (
            intern!(py, "fail"),
            waiter.as_u64(),
            pool_error(py, &error).into_value(py),
        )
            .into_pyobject(py)?,
    })
}

fn event(py: Python<'_>, e: PoolEvent) -> PyResult<Bound<'_, PyTuple>> {
    Ok(match e {
        PoolEvent::LeakSuspected { slot, held_for } => (
            intern!(py, "leak_suspected"),
            slot.as_u64(),
            held_for.as_secs_f64(),
        )
            .into_pyobject(py)?,
        PoolEvent::LeakReturned { slot, held_for } => (
            intern!(py, "leak_returned"),
            slot.as_u64(),
            held_for.as_secs_f64(),
        )
            .into_pyobject(py)?,
        PoolEvent::Breaker(t) => (
            intern!(py, "breaker"),
            state_name(py, t.from),
            state_name(py, t.to),
            reason_name(py, t.reason),
        )
            .into_pyobject(py)?,
        PoolEvent::ConnectFailed { error, attempts } => {
            (intern!(py, "connect_failed"), error, attempts).into_pyobject(py)?
        }
        PoolEvent::Drained { still_held } => {
            let slots: Vec<u64> = still_held.iter().map(|s| s.as_u64()).collect();
            (intern!(py, "drained"), slots).into_pyobject(py)?
        }
    })
}

/// A histogram as `(count, sum, max, p50, p90, p99)`, in seconds.
fn histogram(h: &Histogram) -> (u64, f64, f64, f64, f64, f64) {
    (
        h.count(),
        h.sum().as_secs_f64(),
        h.max().as_secs_f64(),
        h.quantile(0.5).as_secs_f64(),
        h.quantile(0.9).as_secs_f64(),
        h.quantile(0.99).as_secs_f64(),
    )
}

fn optional_secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn idle_order_name(o: IdleOrder) -> &'static str {
    match o {
        IdleOrder::Lifo => "lifo",
        IdleOrder::Fifo => "fifo",
    }
}

/// The connection pool's engine. Private: use `seawall.Pool`, `seawall.SyncPool` or
/// `seawall.PoolEngine`.
#[pyclass(frozen, module = "seawall._native", name = "PoolCore")]
pub struct NativePool {
    core: Mutex<PoolCore>,
}

impl NativePool {
    /// Runs `f` on the engine under the lock and collects what it asked for.
    fn with_core<R>(&self, f: impl FnOnce(&mut PoolCore) -> R) -> (R, Batch) {
        let mut core = self.core.lock();
        let r = f(&mut core);
        (r, Batch::take(&mut core))
    }
}

/// `(result, actions, events, next_timeout)`.
fn reply<'py>(
    py: Python<'py>,
    result: impl IntoPyObject<'py>,
    batch: Batch,
) -> PyResult<Bound<'py, PyTuple>> {
    let result = result.into_bound_py_any(py)?;
    let (actions, events, next) = batch.into_py(py)?;
    (result, actions, events, next).into_pyobject(py)
}

#[pymethods]
impl NativePool {
    /// Validates the configuration (durations in seconds, `None` turns an optional one off) and
    /// builds an empty pool; `acquire_timeout` may not exceed the process-wide timeout policy's
    /// maximum. `breaker` is `None` (the pool's default breaker) or a dict holding every
    /// `CircuitBreaker` keyword. Every argument is required: the defaults live in the facade's
    /// signature.
    #[new]
    #[pyo3(signature = (
        *,
        max_size,
        min_idle,
        max_waiters,
        acquire_timeout,
        create_timeout,
        idle_timeout,
        max_lifetime,
        lifetime_jitter,
        validate_after,
        idle_order,
        leak_threshold,
        create_backoff_base,
        create_backoff_cap,
        breaker,
        seed,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        max_size: &Bound<'_, PyAny>,
        min_idle: &Bound<'_, PyAny>,
        max_waiters: &Bound<'_, PyAny>,
        acquire_timeout: &Bound<'_, PyAny>,
        create_timeout: &Bound<'_, PyAny>,
        idle_timeout: &Bound<'_, PyAny>,
        max_lifetime: &Bound<'_, PyAny>,
        lifetime_jitter: &Bound<'_, PyAny>,
        validate_after: &Bound<'_, PyAny>,
        idle_order: &Bound<'_, PyAny>,
        leak_threshold: &Bound<'_, PyAny>,
        create_backoff_base: &Bound<'_, PyAny>,
        create_backoff_cap: &Bound<'_, PyAny>,
        breaker: &Bound<'_, PyAny>,
        seed: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        // Converted in the order the core validates, so that a configuration with several bad
        // values reports the same field first in every language.
        let duration =
            |field: &'static str, v: &Bound<'_, PyAny>| convert::duration(py, F, field, v);
        let optional_duration = |field: &'static str, v: &Bound<'_, PyAny>| {
            optional(v).map(|v| duration(field, v)).transpose()
        };
        let mut b = PoolConfig::builder()
            .max_size(convert::count(py, F, "max_size", max_size)?)
            .min_idle(convert::count(py, F, "min_idle", min_idle)?)
            .max_waiters(convert::count(py, F, "max_waiters", max_waiters)?)
            .acquire_timeout(duration("acquire_timeout", acquire_timeout)?)
            .create_timeout(duration("create_timeout", create_timeout)?)
            .idle_timeout(optional_duration("idle_timeout", idle_timeout)?)
            .max_lifetime(optional_duration("max_lifetime", max_lifetime)?)
            .lifetime_jitter(convert::number(F, "lifetime_jitter", lifetime_jitter)?)
            // Zero is valid here (validate every checkout), hence the timeout conversion,
            // whose range starts at 0.
            .validate_after(
                optional(validate_after)
                    .map(|v| convert::timeout(py, F, "validate_after", v))
                    .transpose()?,
            );
        let order = convert::choice(
            py,
            F,
            "idle_order",
            idle_order,
            IDLE_ORDERS,
            IDLE_ORDERS_EXPECTED,
        )?;
        b = b
            .idle_order(if order == "fifo" {
                IdleOrder::Fifo
            } else {
                IdleOrder::Lifo
            })
            .leak_threshold(optional_duration("leak_threshold", leak_threshold)?)
            .create_backoff(
                duration("create_backoff.base", create_backoff_base)?,
                duration("create_backoff.cap", create_backoff_cap)?,
            );
        if let Some(breaker) = optional(breaker) {
            b = b.breaker(breaker_config_from_dict(
                py,
                POOL_BREAKER_FIELDS,
                "breaker",
                breaker,
            )?);
        }
        b = b.seed(convert::seed(py, F, seed)?);
        let config = b.build().map_err(|e| config_error(py, F, &e))?;
        Ok(NativePool {
            core: Mutex::new(PoolCore::new(config)),
        })
    }

    /// The longest an acquire waits, in seconds.
    #[getter]
    fn acquire_timeout(&self) -> f64 {
        self.core.lock().config().acquire_timeout().as_secs_f64()
    }

    /// The leak threshold in seconds, or `None` when leaks are not tracked.
    #[getter]
    fn leak_threshold(&self) -> Option<f64> {
        optional_secs(self.core.lock().config().leak_threshold())
    }

    /// The configuration in force (after `resize`, `max_size` and `min_idle` are the new ones),
    /// in seconds, keyed by keyword.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.core.lock().config().clone();
        config_values(py, &c)
    }

    /// Asks for a connection at `now`. `budget` (with its own clock's reading `budget_now`, when
    /// that clock is not the pool's) bounds the wait. Returns `(code, a, b, actions, events,
    /// next_timeout)`: code 0 ready (`a` slot, `b` checkout), 1 wait (`a` the waiter id), 2 error
    /// (`a` a fresh exception instance, to raise).
    #[pyo3(signature = (now, budget=None, budget_now=None))]
    fn acquire<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        budget: Option<&Bound<'py, NativeBudget>>,
        budget_now: Option<f64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let budget = match budget {
            None => None,
            Some(b) => {
                let inner = b.get().inner;
                Some(match budget_now {
                    // The budget reads another clock: carry it over with the same time left
                    // (never more than the policy maximum, so nothing is clamped).
                    Some(bn) if bn != now => {
                        Budget::with_remaining(t, inner.remaining(timestamp(bn)?), inner.policy())
                    }
                    _ => inner,
                })
            }
        };
        let (result, batch) = self.with_core(|core| core.acquire(t, budget.as_ref()));
        let (actions, events, next) = batch.into_py(py)?;
        let (code, a, b): (u8, Bound<'py, PyAny>, u64) = match result {
            Ok(Acquire::Ready(lease)) => (
                READY,
                lease.slot().as_u64().into_pyobject(py)?.into_any(),
                lease.checkout(),
            ),
            Ok(Acquire::Wait(w)) => (WAIT, w.as_u64().into_pyobject(py)?.into_any(), 0),
            Err(e) => (
                ERROR,
                pool_error(py, &e).into_value(py).into_bound(py).into_any(),
                0,
            ),
        };
        (code, a, b, actions, events, next).into_pyobject(py)
    }

    /// Returns the checkout `(slot, checkout)`; `broken` closes the connection instead of
    /// reusing it. Returns `(accepted, actions, events, next_timeout)`: a checkout already
    /// returned, or whose connection was closed, is refused (nothing changes).
    fn release<'py>(
        &self,
        py: Python<'py>,
        slot: u64,
        checkout: u64,
        broken: bool,
        now: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let lease = Lease::from_parts(SlotId::from_u64(slot), checkout);
        let (accepted, batch) = self.with_core(|core| core.release(lease, broken, t));
        reply(py, accepted, batch)
    }

    /// The caller waiting as `waiter` gave up. Returns `(cancelled, actions, events,
    /// next_timeout)`; `cancelled` is false when the waiter had already been served or failed.
    fn cancel<'py>(&self, py: Python<'py>, waiter: u64, now: f64) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let (cancelled, batch) = self.with_core(|core| core.cancel(WaiterId::from_u64(waiter), t));
        reply(py, cancelled, batch)
    }

    /// The create for `slot` succeeded. Returns `(None, actions, events, next_timeout)`.
    fn handle_created<'py>(
        &self,
        py: Python<'py>,
        slot: u64,
        now: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let ((), batch) = self.with_core(|core| core.handle_created(SlotId::from_u64(slot), t));
        reply(py, py.None(), batch)
    }

    /// The create for `slot` failed with `error` (its text). Returns `(None, actions, events,
    /// next_timeout)`.
    fn handle_create_failed<'py>(
        &self,
        py: Python<'py>,
        slot: u64,
        error: &str,
        now: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let ((), batch) =
            self.with_core(|core| core.handle_create_failed(SlotId::from_u64(slot), error, t));
        reply(py, py.None(), batch)
    }

    /// The validation of `slot` finished. Returns `(None, actions, events, next_timeout)`.
    fn handle_validated<'py>(
        &self,
        py: Python<'py>,
        slot: u64,
        ok: bool,
        now: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let ((), batch) =
            self.with_core(|core| core.handle_validated(SlotId::from_u64(slot), ok, t));
        reply(py, py.None(), batch)
    }

    /// The connection of `slot` is dead: closed at once if idle, failed if being validated,
    /// closed when it comes back if checked out. Returns `(known, actions, events,
    /// next_timeout)`.
    fn handle_broken<'py>(
        &self,
        py: Python<'py>,
        slot: u64,
        now: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let (known, batch) = self.with_core(|core| core.handle_broken(SlotId::from_u64(slot), t));
        reply(py, known, batch)
    }

    /// The timer fired (or the adapter wants the engine to look at the time). Returns `(None,
    /// actions, events, next_timeout)`.
    fn handle_timeout<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let ((), batch) = self.with_core(|core| core.handle_timeout(t));
        reply(py, py.None(), batch)
    }

    /// Starts draining at `now`; whatever is still checked out at `deadline` is closed. Returns
    /// `(None, actions, events, next_timeout)`.
    fn drain<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        deadline: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let deadline = timestamp(deadline)?;
        let ((), batch) = self.with_core(|core| core.drain(t, deadline));
        reply(py, py.None(), batch)
    }

    /// Changes `max_size` at `now`. Returns `(None, actions, events, next_timeout)`, or raises
    /// `InvalidConfigError` (nothing changes).
    fn resize<'py>(
        &self,
        py: Python<'py>,
        max_size: &Bound<'py, PyAny>,
        now: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let n = convert::count(py, F, "max_size", max_size)?;
        let t = timestamp(now)?;
        let (result, batch) = self.with_core(|core| core.resize(n, t));
        result.map_err(|e| config_error(py, F, &e))?;
        reply(py, py.None(), batch)
    }

    /// When the engine next wants `handle_timeout`, in seconds (`None`: never, until something
    /// else happens).
    fn poll_timeout(&self) -> Option<f64> {
        self.core.lock().poll_timeout().map(secs)
    }

    /// Whether the pool has finished draining.
    fn is_closed(&self) -> bool {
        self.core.lock().is_closed()
    }

    /// The numbers at `now`, keyed by the names of `seawall.PoolMetrics`' attributes;
    /// histograms as `(count, sum, max, p50, p90, p99)` in seconds. Returns `(metrics, actions,
    /// events, next_timeout)`: reading the breaker's state can move it (open to half-open).
    fn metrics<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyTuple>> {
        let t = timestamp(now)?;
        let (m, batch) = self.with_core(|core| core.metrics(t));
        let d = PyDict::new(py);
        d.set_item(intern!(py, "idle"), m.idle)?;
        d.set_item(intern!(py, "used"), m.used)?;
        d.set_item(intern!(py, "creating"), m.creating)?;
        d.set_item(intern!(py, "max"), m.max)?;
        d.set_item(intern!(py, "idle_max"), m.idle_max)?;
        d.set_item(intern!(py, "idle_min"), m.idle_min)?;
        d.set_item(intern!(py, "pending_requests"), m.pending_requests)?;
        d.set_item(intern!(py, "timeouts"), m.timeouts)?;
        d.set_item(intern!(py, "acquired"), m.acquired)?;
        d.set_item(intern!(py, "released"), m.released)?;
        d.set_item(intern!(py, "overloaded"), m.overloaded)?;
        d.set_item(intern!(py, "unavailable"), m.unavailable)?;
        d.set_item(intern!(py, "created"), m.created)?;
        d.set_item(intern!(py, "create_failures"), m.create_failures)?;
        d.set_item(intern!(py, "destroyed"), m.destroyed)?;
        d.set_item(intern!(py, "leaks"), m.leaks)?;
        d.set_item(intern!(py, "create_time"), histogram(&m.create_time))?;
        d.set_item(intern!(py, "wait_time"), histogram(&m.wait_time))?;
        d.set_item(intern!(py, "use_time"), histogram(&m.use_time))?;
        d.set_item(
            intern!(py, "breaker_state"),
            state_name(py, m.breaker_state),
        )?;
        d.set_item(
            intern!(py, "oldest_checkout_age"),
            optional_secs(m.oldest_checkout_age),
        )?;
        reply(py, d, batch)
    }
}

/// A pool configuration in the facade's units (seconds), keyed by keyword. The back-off and the
/// seed are left out: the core does not expose them.
fn config_values<'py>(py: Python<'py>, c: &PoolConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("max_size", c.max_size())?;
    d.set_item("min_idle", c.min_idle())?;
    d.set_item("max_waiters", c.max_waiters())?;
    d.set_item("acquire_timeout", c.acquire_timeout().as_secs_f64())?;
    d.set_item("create_timeout", c.create_timeout().as_secs_f64())?;
    d.set_item("idle_timeout", optional_secs(c.idle_timeout()))?;
    d.set_item("max_lifetime", optional_secs(c.max_lifetime()))?;
    d.set_item("lifetime_jitter", c.lifetime_jitter())?;
    d.set_item("validate_after", optional_secs(c.validate_after()))?;
    d.set_item("idle_order", idle_order_name(c.idle_order()))?;
    d.set_item("leak_threshold", optional_secs(c.leak_threshold()))?;
    d.set_item("breaker", config_dict(py, c.breaker())?)?;
    Ok(d)
}

/// The core's pool defaults in the facade's units, keyed by keyword (the default breaker as a
/// dict of `CircuitBreaker` keywords), so a test can hold the facade's signature to them.
#[pyfunction]
pub fn pool_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    config_values(py, &PoolConfig::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_size: u32) -> PoolCore {
        PoolCore::new(
            PoolConfig::builder()
                .max_size(max_size)
                .seed(Some(1))
                .build_under(Duration::from_secs(15))
                .expect("a valid configuration"),
        )
    }

    #[test]
    fn a_batch_holds_everything_the_call_asked_for_and_the_next_timer() {
        let mut core = pool(1);
        let t0 = Timestamp::from_millis(1_000);
        let waiting = core.acquire(t0, None).expect("queued");
        assert!(matches!(waiting, Acquire::Wait(_)));
        let batch = Batch::take(&mut core);
        // The create for the waiter; the earliest deadline is the create's and the wait's.
        assert!(matches!(batch.actions.as_slice(), [Action::Create { .. }]));
        assert!(batch.events.is_empty());
        assert_eq!(batch.next, Some(Timestamp::from_millis(6_000)));
        // Taking them empties the engine's queues: nothing is performed twice.
        let again = Batch::take(&mut core);
        assert!(again.actions.is_empty() && again.events.is_empty());
    }

    #[test]
    fn timestamps_cross_as_seconds() {
        assert_eq!(secs(Timestamp::from_millis(1_500)), 1.5);
        assert_eq!(secs(Timestamp::ZERO), 0.0);
        assert_eq!(optional_secs(Some(Duration::from_millis(250))), Some(0.25));
        assert_eq!(optional_secs(None), None);
    }
}
