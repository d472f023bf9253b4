//! `seawall._native.TimeoutPolicy` and `seawall._native.Budget`: the core's timeout policy and
//! deadline budget, for the Python facade in `seawall/_budget.py`.
//!
//! A budget is a `Copy` value in the core (a deadline and a policy), so these classes are frozen
//! and lock-free. Every method takes `now` from the facade's clock in seconds; the facade owns
//! the clock, the cancellation of `async with budget:` and everything else that waits. Every
//! rule (scale, cap, minimum to start, header formats and clamping) is the core's.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use seawall_core::{Budget, TimeoutPolicy, Timestamp};

use crate::convert::{self, optional, timestamp};
use crate::error::{BUDGET_FIELDS as F, budget_exhausted, config_error, header_error, type_error};

/// The header formats a budget travels in.
const FORMATS: &[&str] = &["grpc-timeout", "timeout-ms"];
const FORMATS_EXPECTED: &str = "one of 'grpc-timeout', 'timeout-ms'";

/// The timeout policy. Private: use `seawall.TimeoutPolicy`.
#[pyclass(frozen, eq, module = "seawall._native", name = "TimeoutPolicy")]
#[derive(PartialEq)]
pub struct Policy {
    pub(crate) inner: TimeoutPolicy,
}

#[pymethods]
impl Policy {
    /// Validates a policy (seconds). Every argument is required: the defaults live in the
    /// facade's signature.
    #[new]
    #[pyo3(signature = (*, max_timeout, scale, min_to_start))]
    fn new(
        py: Python<'_>,
        max_timeout: &Bound<'_, PyAny>,
        scale: &Bound<'_, PyAny>,
        min_to_start: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        // Converted in the order the core validates, so the same field is reported first in
        // every language.
        let max_timeout = convert::timeout(py, F, "max_timeout", max_timeout)?;
        let scale = convert::number(F, "scale", scale)?;
        let min_to_start = convert::timeout(py, F, "min_to_start", min_to_start)?;
        TimeoutPolicy::new(max_timeout, scale, min_to_start)
            .map(|inner| Policy { inner })
            .map_err(|e| config_error(py, F, &e))
    }

    /// The longest timeout allowed, in seconds.
    #[getter]
    fn max_timeout(&self) -> f64 {
        self.inner.max_timeout().as_secs_f64()
    }

    /// The factor applied to every configured timeout.
    #[getter]
    fn scale(&self) -> f64 {
        self.inner.scale()
    }

    /// The least time left, in seconds, for which a call is still started.
    #[getter]
    fn min_to_start(&self) -> f64 {
        self.inner.min_to_start().as_secs_f64()
    }

    /// The process-wide policy (the core's).
    #[staticmethod]
    fn get_global() -> Policy {
        Policy {
            inner: TimeoutPolicy::global(),
        }
    }

    /// Replaces the process-wide policy (the core's).
    #[staticmethod]
    fn set_global(policy: &Policy) {
        TimeoutPolicy::set_global(policy.inner);
    }
}

/// The core's default policy in the facade's units, keyed by keyword argument, so a test can
/// hold the facade's signature to it.
#[pyfunction]
pub fn budget_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let p = TimeoutPolicy::DEFAULT;
    let d = PyDict::new(py);
    d.set_item("max_timeout", p.max_timeout().as_secs_f64())?;
    d.set_item("scale", p.scale())?;
    d.set_item("min_to_start", p.min_to_start().as_secs_f64())?;
    Ok(d)
}

/// The keywords [`check_timeout`] may name.
const TIMEOUT_FIELDS: &[&str] = &["timeout", "attempt_timeout", "cap", "retry_after"];

/// Checks `value` as a timeout in seconds for the keyword `field` (one of `timeout`,
/// `attempt_timeout`, `cap`, `retry_after`) and returns it as a float, so that the facade can
/// validate a setting when it is given rather than at the first call.
#[pyfunction]
pub fn check_timeout(py: Python<'_>, field: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let Some(field) = TIMEOUT_FIELDS.iter().find(|f| **f == field) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "field must be one of {TIMEOUT_FIELDS:?}, got {field:?}"
        )));
    };
    Ok(convert::timeout(py, F, field, value)?.as_secs_f64())
}

/// A request's deadline under a policy. Private: use `seawall.Budget`.
#[pyclass(frozen, module = "seawall._native", name = "Budget")]
pub struct NativeBudget {
    pub(crate) inner: Budget,
}

#[pymethods]
impl NativeBudget {
    /// A budget of `timeout` seconds from `now`, scaled and capped by `policy`.
    #[new]
    fn new(
        py: Python<'_>,
        now: f64,
        timeout: &Bound<'_, PyAny>,
        policy: &Policy,
    ) -> PyResult<Self> {
        let timeout = convert::timeout(py, F, "timeout", timeout)?;
        Ok(NativeBudget {
            inner: Budget::new(timestamp(now)?, timeout, policy.inner),
        })
    }

    /// A budget of `timeout` seconds from `now` under the process-wide policy (what
    /// `Budget(timeout)` makes, without building the policy object).
    #[staticmethod]
    fn under_global(py: Python<'_>, now: f64, timeout: &Bound<'_, PyAny>) -> PyResult<Self> {
        let timeout = convert::timeout(py, F, "timeout", timeout)?;
        Ok(NativeBudget {
            inner: Budget::new(timestamp(now)?, timeout, TimeoutPolicy::global()),
        })
    }

    /// A budget from a received header value at `now`, clamped to `policy`'s maximum.
    /// `value` must be a `str` (`TypeError` otherwise); a malformed one raises
    /// `InvalidHeaderError`.
    #[staticmethod]
    fn from_header(
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        now: f64,
        format: &Bound<'_, PyAny>,
        policy: &Policy,
    ) -> PyResult<Self> {
        let format = header_format(py, format)?;
        let Ok(value) = value.cast::<PyString>() else {
            return Err(type_error(F, "value", "a str", value));
        };
        let value = value.to_cow()?;
        let now = timestamp(now)?;
        let decoded = if format == "timeout-ms" {
            Budget::from_timeout_ms(&value, now, policy.inner)
        } else {
            Budget::from_grpc_timeout(&value, now, policy.inner)
        };
        decoded
            .map(|inner| NativeBudget { inner })
            .map_err(|e| header_error(py, &e))
    }

    /// The deadline, in seconds on the clock `now` is read from.
    #[getter]
    fn deadline(&self) -> f64 {
        self.inner.deadline().as_nanos() as f64 / 1e9
    }

    /// The policy the budget obeys.
    #[getter]
    fn policy(&self) -> Policy {
        Policy {
            inner: self.inner.policy(),
        }
    }

    /// Seconds left at `now` (0 once past the deadline).
    fn remaining(&self, now: f64) -> PyResult<f64> {
        Ok(self.inner.remaining(timestamp(now)?).as_secs_f64())
    }

    /// Whether the deadline has passed at `now`.
    fn is_expired(&self, now: f64) -> PyResult<bool> {
        Ok(self.inner.is_expired(timestamp(now)?))
    }

    /// A nested budget ending at the earlier of this one's deadline and `now + cap`.
    fn child(&self, py: Python<'_>, now: f64, cap: &Bound<'_, PyAny>) -> PyResult<NativeBudget> {
        let cap = convert::timeout(py, F, "cap", cap)?;
        Ok(NativeBudget {
            inner: self.inner.child(timestamp(now)?, cap),
        })
    }

    /// Seconds left at `now`, or `BudgetExhausted` when a call cannot be started.
    fn check(&self, py: Python<'_>, now: f64) -> PyResult<f64> {
        self.inner
            .check(timestamp(now)?)
            .map(|d| d.as_secs_f64())
            .map_err(|e| budget_exhausted(py, &e))
    }

    /// The timeout of one call at `now` (`cap` in seconds or `None`), or `BudgetExhausted`.
    fn timeout_for(&self, py: Python<'_>, now: f64, cap: &Bound<'_, PyAny>) -> PyResult<f64> {
        let cap = optional_timeout(py, "cap", cap)?;
        self.inner
            .timeout_for(timestamp(now)?, cap)
            .map(|d| d.as_secs_f64())
            .map_err(|e| budget_exhausted(py, &e))
    }

    /// The time left at `now` as a header value in `format`.
    fn to_header(&self, py: Python<'_>, now: f64, format: &Bound<'_, PyAny>) -> PyResult<String> {
        let format = header_format(py, format)?;
        let now = timestamp(now)?;
        Ok(if format == "timeout-ms" {
            self.inner.to_timeout_ms(now)
        } else {
            self.inner.to_grpc_timeout(now)
        })
    }
}

/// `None`, or seconds as a timeout or a hint (see [`convert::timeout`]).
pub(crate) fn optional_timeout(
    py: Python<'_>,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<Option<Duration>> {
    optional(v)
        .map(|v| convert::timeout(py, F, core_field, v))
        .transpose()
}

fn header_format(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    convert::choice(py, F, "format", v, FORMATS, FORMATS_EXPECTED)
}

/// An awaitable that is already done: awaiting it gives `value` at once, without suspending.
/// `Budget.__aenter__` and `__aexit__` return one instead of being coroutines (a coroutine per
/// block entered and left was a third of a block's cost); `Ready(None)` is shared. Private.
#[pyclass(frozen, module = "seawall._native", name = "Ready")]
pub struct Ready {
    value: Py<PyAny>,
}

#[pymethods]
impl Ready {
    #[new]
    fn new(value: Py<PyAny>) -> Self {
        Ready { value }
    }

    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Finishes at once with the value (`StopIteration(value)`; none for `None`).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.value.is_none(py) {
            return Ok(None);
        }
        Err(pyo3::exceptions::PyStopIteration::new_err((self
            .value
            .clone_ref(py),)))
    }

    /// As `__next__` (what a coroutine awaiting it sends is ignored: it never suspends).
    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        self.__next__(py)
    }

    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.value)
    }
}

/// The native base class of `seawall.Budget`: the budget and its clock, built by the type call
/// itself. `Budget(timeout)` is made on every call made under a budget, and a Python `__init__`
/// (a frame, two objects: the facade and its native budget) was most of its cost. Private.
#[pyclass(frozen, subclass, module = "seawall._native", name = "BudgetBase")]
pub struct BudgetBase {
    inner: Budget,
    clock: Py<PyAny>,
    /// True when `clock` is `time.monotonic`, read here directly.
    native_clock: bool,
}

static MONOTONIC: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

fn time_monotonic(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    MONOTONIC
        .get_or_try_init(py, || {
            py.import("time")?
                .getattr("monotonic")
                .map(pyo3::Bound::unbind)
        })
        .map(|m| m.bind(py))
}

impl BudgetBase {
    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        if self.native_clock
            && let Some(now) = crate::breaker::monotonic()
        {
            return Ok(now);
        }
        self.clock.bind(py).call0()?.extract::<f64>()
    }
}

#[pymethods]
impl BudgetBase {
    /// `Budget(timeout, *, policy=None, clock=None)`. The common case (the process-wide policy,
    /// `time.monotonic`) is done here; any other policy or clock is checked by the facade's
    /// helpers (`_native_policy`, `resolve_clock`), whose errors the facade documents. Given a
    /// native budget as `timeout` (the facade's `_wrap`, for `child` and `from_header`), wraps
    /// it as it is.
    #[new]
    #[pyo3(signature = (timeout, *, policy=None, clock=None))]
    fn new(
        py: Python<'_>,
        timeout: &Bound<'_, PyAny>,
        policy: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let policy = policy.filter(|p| !p.is_none());
        let clock = clock.filter(|c| !c.is_none());
        let facade = || py.import(pyo3::intern!(py, "seawall._budget"));
        // Checked in the order the facade always has: policy, clock, timeout.
        let policy = match policy {
            None => TimeoutPolicy::global(),
            Some(p) => {
                let native = facade()?.call_method1(pyo3::intern!(py, "_native_policy"), (p,))?;
                native.cast::<Policy>()?.get().inner
            }
        };
        let clock = match clock {
            None => time_monotonic(py)?.clone(),
            Some(c) => facade()?.call_method1(pyo3::intern!(py, "resolve_clock"), (c,))?,
        };
        let native_clock = clock.is(time_monotonic(py)?)
            && cfg!(all(target_os = "linux", target_pointer_width = "64"));
        if let Ok(native) = timeout.cast::<NativeBudget>() {
            return Ok(BudgetBase {
                inner: native.get().inner,
                clock: clock.unbind(),
                native_clock,
            });
        }
        let mut base = BudgetBase {
            inner: Budget::new(Timestamp::ZERO, Duration::ZERO, policy),
            clock: clock.unbind(),
            native_clock,
        };
        let now = timestamp(base.now(py)?)?;
        let timeout = convert::timeout(py, F, "timeout", timeout)?;
        base.inner = Budget::new(now, timeout, policy);
        Ok(base)
    }

    /// The budget's clock (the facade reads it).
    #[getter]
    fn _clock(&self, py: Python<'_>) -> Py<PyAny> {
        self.clock.clone_ref(py)
    }

    /// The budget as the native value the pool and the retry loop take.
    #[getter]
    fn _native(&self) -> NativeBudget {
        NativeBudget { inner: self.inner }
    }

    /// The timeout of a call given no cap, now (`BudgetExhausted` when none can start): what a
    /// block under the budget is cancelled after.
    fn _timeout_now(&self, py: Python<'_>) -> PyResult<f64> {
        let now = timestamp(self.now(py)?)?;
        self.inner
            .timeout_for(now, None)
            .map(|d| d.as_secs_f64())
            .map_err(|e| budget_exhausted(py, &e))
    }

    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.clock)
    }
}
