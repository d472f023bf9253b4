//! `seawall._native.Breaker`: the core's sans-IO [`BreakerCore`] behind a lock, for the Python
//! facade in `seawall/_breaker.py`.
//!
//! Every method takes `now` from the facade's clock (seconds as a float) and returns at once; the
//! lock is held only for the core's decision, never while Python code runs, so nothing here can
//! deadlock with the GIL. The facade owns everything that touches user code: calling the
//! guarded function, classifying its outcome, listeners. Methods whose call may change the
//! state say so in their return value, so the facade polls `take_transitions()` only when there
//! is something to hear.
//!
//! Type checks (a `str` where a number belongs) happen here, at the boundary; every range check
//! is the core's, and its errors are re-spelled by `error.rs`.

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use seawall_core::{
    BackoffConfig, BreakerConfig, BreakerCore, BreakerState, Outcome, PermitTicket,
    RejectionReason, Snapshot, TransitionReason, WindowConfig,
};

use crate::convert::{self, optional, timestamp};
use crate::error::{BREAKER_FIELDS, Fields, config_error, snapshot_error};

/// The outcome codes the facade passes to [`Breaker::record`].
const SUCCESS: u8 = 0;
const FAILURE: u8 = 1;
const IGNORED: u8 = 2;

/// A circuit breaker's state machine. Private: use `seawall.CircuitBreaker`.
#[pyclass(frozen, module = "seawall._native", name = "Breaker")]
pub struct Breaker {
    core: Mutex<BreakerCore>,
}

#[pymethods]
impl Breaker {
    /// Validates the configuration (durations in seconds) and builds a closed breaker. Every
    /// argument is required: the defaults live in the facade's signature.
    #[new]
    #[pyo3(signature = (
        *,
        failure_rate_threshold,
        slow_call_rate_threshold,
        slow_call_duration,
        window,
        window_size,
        window_duration,
        window_buckets,
        minimum_calls,
        consecutive_failures,
        open_duration,
        backoff,
        backoff_multiplier,
        max_open_duration,
        backoff_jitter,
        half_open_calls,
        max_half_open_duration,
        seed,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        failure_rate_threshold: &Bound<'_, PyAny>,
        slow_call_rate_threshold: &Bound<'_, PyAny>,
        slow_call_duration: &Bound<'_, PyAny>,
        window: &Bound<'_, PyAny>,
        window_size: &Bound<'_, PyAny>,
        window_duration: &Bound<'_, PyAny>,
        window_buckets: &Bound<'_, PyAny>,
        minimum_calls: &Bound<'_, PyAny>,
        consecutive_failures: &Bound<'_, PyAny>,
        open_duration: &Bound<'_, PyAny>,
        backoff: &Bound<'_, PyAny>,
        backoff_multiplier: &Bound<'_, PyAny>,
        max_open_duration: &Bound<'_, PyAny>,
        backoff_jitter: &Bound<'_, PyAny>,
        half_open_calls: &Bound<'_, PyAny>,
        max_half_open_duration: &Bound<'_, PyAny>,
        seed: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let args = BreakerArgs {
            failure_rate_threshold,
            slow_call_rate_threshold,
            slow_call_duration,
            window,
            window_size,
            window_duration,
            window_buckets,
            minimum_calls,
            consecutive_failures,
            open_duration,
            backoff,
            backoff_multiplier,
            max_open_duration,
            backoff_jitter,
            half_open_calls,
            max_half_open_duration,
            seed,
        };
        let config = breaker_config(py, BREAKER_FIELDS, &args)?;
        Ok(Breaker {
            core: Mutex::new(BreakerCore::new(config)),
        })
    }

    /// Admits a call or not. Admitted: an `int`, `token << 1 | pending`, where `token` goes back
    /// to `record` and `pending` says transitions are waiting. Rejected: a tuple
    /// `(reason, retry_after_seconds | None, pending)`.
    fn acquire<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyAny>> {
        let now = timestamp(now)?;
        let (result, pending) = {
            let mut core = self.core.lock();
            let result = core.try_acquire(now);
            (result, core.has_transitions())
        };
        match result {
            Ok(ticket) => {
                let (token, _) = ticket.to_raw();
                // The epoch would need 2^62 state changes to overflow this.
                let packed = token.checked_mul(2).ok_or_else(|| {
                    PyOverflowError::new_err("the breaker has changed state too many times")
                })? | u64::from(pending);
                Ok(packed.into_pyobject(py)?.into_any())
            }
            Err(rejected) => {
                let reason = match rejected.reason {
                    RejectionReason::Open => intern!(py, "open"),
                    RejectionReason::HalfOpenFull => intern!(py, "half_open_full"),
                    RejectionReason::ForcedOpen => intern!(py, "forced_open"),
                };
                let retry_after = rejected.retry_after.map(|d| d.as_secs_f64());
                Ok((reason, retry_after, pending).into_pyobject(py)?.into_any())
            }
        }
    }

    /// Records the outcome (0 success, 1 failure, 2 ignored) of the call admitted at `started`
    /// with `token`. Returns whether transitions are waiting.
    fn record(&self, token: u64, started: f64, outcome: u8, now: f64) -> PyResult<bool> {
        let outcome = match outcome {
            SUCCESS => Outcome::Success,
            FAILURE => Outcome::Failure,
            IGNORED => Outcome::Ignored,
            other => {
                return Err(PyValueError::new_err(format!(
                    "outcome must be 0 (success), 1 (failure) or 2 (ignored), got {other}"
                )));
            }
        };
        let ticket = PermitTicket::from_raw(token, timestamp(started)?);
        let now = timestamp(now)?;
        let mut core = self.core.lock();
        core.record(ticket, outcome, now);
        Ok(core.has_transitions())
    }

    /// Whether state changes are waiting for `take_transitions`.
    fn has_transitions(&self) -> bool {
        self.core.lock().has_transitions()
    }

    /// The state changes not yet taken, oldest first, as `(from, to, reason)` tuples.
    fn take_transitions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut taken = Vec::new();
        {
            let mut core = self.core.lock();
            while let Some(t) = core.poll_transition() {
                taken.push(t);
            }
        }
        let list = PyList::empty(py);
        for t in taken {
            list.append(PyTuple::new(
                py,
                [
                    state_name(py, t.from),
                    state_name(py, t.to),
                    reason_name(py, t.reason),
                ],
            )?)?;
        }
        Ok(list)
    }

    /// The state at `now`.
    fn state<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyString>> {
        let now = timestamp(now)?;
        let state = self.core.lock().state(now);
        Ok(state_name(py, state))
    }

    /// The metrics at `now`, as a dict keyed by the names of `seawall.Metrics`' attributes.
    fn metrics<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyDict>> {
        let now = timestamp(now)?;
        let m = self.core.lock().metrics(now);
        let d = PyDict::new(py);
        d.set_item(intern!(py, "state"), state_name(py, m.state))?;
        d.set_item(intern!(py, "failure_rate"), m.failure_rate)?;
        d.set_item(intern!(py, "slow_call_rate"), m.slow_call_rate)?;
        d.set_item(intern!(py, "calls_in_window"), m.calls_in_window)?;
        d.set_item(intern!(py, "failures_in_window"), m.failures_in_window)?;
        d.set_item(intern!(py, "slow_calls_in_window"), m.slow_calls_in_window)?;
        d.set_item(intern!(py, "permitted"), m.permitted)?;
        d.set_item(intern!(py, "successes"), m.successes)?;
        d.set_item(intern!(py, "failures"), m.failures)?;
        d.set_item(intern!(py, "ignored"), m.ignored)?;
        d.set_item(intern!(py, "slow_calls"), m.slow_calls)?;
        d.set_item(intern!(py, "rejected"), m.rejected)?;
        d.set_item(intern!(py, "in_flight"), m.in_flight)?;
        d.set_item(intern!(py, "times_opened"), m.times_opened)?;
        d.set_item(intern!(py, "consecutive_failures"), m.consecutive_failures)?;
        Ok(d)
    }

    /// Rejects every call until another manual change.
    fn force_open(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.core.lock().force_open(now);
        Ok(())
    }

    /// Permits every call and records nothing until another manual change.
    fn disable(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.core.lock().disable(now);
        Ok(())
    }

    /// Records outcomes but never rejects, until another manual change.
    fn metrics_only(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.core.lock().metrics_only(now);
        Ok(())
    }

    /// Closed, with an empty window and the base open duration.
    fn reset(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.core.lock().reset(now);
        Ok(())
    }

    /// The state at `now` as the versioned JSON snapshot.
    fn snapshot(&self, now: f64) -> PyResult<String> {
        let now = timestamp(now)?;
        let snapshot = self.core.lock().snapshot(now);
        Ok(snapshot.to_json())
    }

    /// Resumes from a JSON snapshot as if it had been taken at `now`; a bad snapshot raises
    /// `SnapshotError` and changes nothing.
    fn restore(&self, py: Python<'_>, snapshot: &str, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        let snapshot = Snapshot::from_json(snapshot).map_err(|e| snapshot_error(py, &e))?;
        self.core
            .lock()
            .restore(&snapshot, now)
            .map_err(|e| snapshot_error(py, &e))
    }
}

/// The core's defaults in the facade's units (seconds), keyed by keyword argument, so a test
/// can hold the facade's signature to them.
#[pyfunction]
pub fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    config_dict(py, &BreakerConfig::default())
}

/// A breaker configuration as `CircuitBreaker` keyword arguments (seconds).
pub(crate) fn config_dict<'py>(py: Python<'py>, c: &BreakerConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("failure_rate_threshold", c.failure_rate_threshold())?;
    d.set_item("slow_call_rate_threshold", c.slow_call_rate_threshold())?;
    d.set_item(
        "slow_call_duration",
        c.slow_call_duration().map(|d| d.as_secs_f64()),
    )?;
    match c.window() {
        WindowConfig::Count { size } => {
            d.set_item("window", "count")?;
            d.set_item("window_size", size)?;
        }
        WindowConfig::Time { duration, buckets } => {
            d.set_item("window", "time")?;
            d.set_item("window_duration", duration.as_secs_f64())?;
            d.set_item("window_buckets", buckets)?;
        }
    }
    d.set_item("minimum_calls", c.minimum_calls())?;
    d.set_item("consecutive_failures", c.consecutive_failures())?;
    d.set_item("open_duration", c.open_duration().as_secs_f64())?;
    match c.backoff() {
        BackoffConfig::Fixed => d.set_item("backoff", "fixed")?,
        BackoffConfig::Exponential {
            multiplier,
            max_open_duration,
            jitter,
        } => {
            d.set_item("backoff", "exponential")?;
            d.set_item("backoff_multiplier", multiplier)?;
            d.set_item("max_open_duration", max_open_duration.as_secs_f64())?;
            d.set_item("backoff_jitter", jitter)?;
        }
    }
    d.set_item("half_open_calls", c.half_open_calls())?;
    d.set_item(
        "max_half_open_duration",
        c.max_half_open_duration().map(|d| d.as_secs_f64()),
    )?;
    d.set_item("seed", c.seed())?;
    Ok(d)
}

/// The keyword arguments of `CircuitBreaker`, in its signature's order (also the keys of the
/// dict that configures a pool's breaker).
pub(crate) const BREAKER_KEYWORDS: [&str; 17] = [
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration",
    "window",
    "window_size",
    "window_duration",
    "window_buckets",
    "minimum_calls",
    "consecutive_failures",
    "open_duration",
    "backoff",
    "backoff_multiplier",
    "max_open_duration",
    "backoff_jitter",
    "half_open_calls",
    "max_half_open_duration",
    "seed",
];

/// A breaker's configuration as given from Python, one value per keyword.
pub(crate) struct BreakerArgs<'a, 'py> {
    pub(crate) failure_rate_threshold: &'a Bound<'py, PyAny>,
    pub(crate) slow_call_rate_threshold: &'a Bound<'py, PyAny>,
    pub(crate) slow_call_duration: &'a Bound<'py, PyAny>,
    pub(crate) window: &'a Bound<'py, PyAny>,
    pub(crate) window_size: &'a Bound<'py, PyAny>,
    pub(crate) window_duration: &'a Bound<'py, PyAny>,
    pub(crate) window_buckets: &'a Bound<'py, PyAny>,
    pub(crate) minimum_calls: &'a Bound<'py, PyAny>,
    pub(crate) consecutive_failures: &'a Bound<'py, PyAny>,
    pub(crate) open_duration: &'a Bound<'py, PyAny>,
    pub(crate) backoff: &'a Bound<'py, PyAny>,
    pub(crate) backoff_multiplier: &'a Bound<'py, PyAny>,
    pub(crate) max_open_duration: &'a Bound<'py, PyAny>,
    pub(crate) backoff_jitter: &'a Bound<'py, PyAny>,
    pub(crate) half_open_calls: &'a Bound<'py, PyAny>,
    pub(crate) max_half_open_duration: &'a Bound<'py, PyAny>,
    pub(crate) seed: &'a Bound<'py, PyAny>,
}

/// Validates a breaker configuration (durations in seconds); errors name the keywords as
/// `f` spells them.
pub(crate) fn breaker_config(
    py: Python<'_>,
    f: Fields,
    a: &BreakerArgs<'_, '_>,
) -> PyResult<BreakerConfig> {
    // Converted in the order the core validates, so that a configuration with several bad
    // values reports the same field first in every language.
    let failure_rate_threshold =
        convert::number(f, "failure_rate_threshold", a.failure_rate_threshold)?;
    let slow_call_rate_threshold =
        convert::number(f, "slow_call_rate_threshold", a.slow_call_rate_threshold)?;
    let slow_call_duration = optional(a.slow_call_duration)
        .map(|v| convert::duration(py, f, "slow_call_duration", v))
        .transpose()?;
    let window = window_config(py, f, a)?;
    let minimum_calls = convert::count(py, f, "minimum_calls", a.minimum_calls)?;
    let consecutive_failures = optional(a.consecutive_failures)
        .map(|v| convert::count(py, f, "consecutive_failures", v))
        .transpose()?;
    let open_duration = convert::duration(py, f, "open_duration", a.open_duration)?;
    let backoff = backoff_config(py, f, a, open_duration)?;
    let half_open_calls = convert::count(py, f, "half_open_calls", a.half_open_calls)?;
    let max_half_open_duration = optional(a.max_half_open_duration)
        .map(|v| convert::duration(py, f, "max_half_open_duration", v))
        .transpose()?;
    let seed = convert::seed(py, f, a.seed)?;
    BreakerConfig::builder()
        .failure_rate_threshold(failure_rate_threshold)
        .slow_call_rate_threshold(slow_call_rate_threshold)
        .slow_call_duration(slow_call_duration)
        .window(window)
        .minimum_calls(minimum_calls)
        .consecutive_failures(consecutive_failures)
        .open_duration(open_duration)
        .backoff(backoff)
        .half_open_calls(half_open_calls)
        .max_half_open_duration(max_half_open_duration)
        .seed(seed)
        .build()
        .map_err(|e| config_error(py, f, &e))
}

/// A breaker configuration from a dict holding every one of [`BREAKER_KEYWORDS`] (the facade
/// fills in `CircuitBreaker`'s defaults): a key outside them, or one missing, is a `TypeError`,
/// as it would be for keyword arguments.
pub(crate) fn breaker_config_from_dict(
    py: Python<'_>,
    f: Fields,
    name: &str,
    d: &Bound<'_, PyAny>,
) -> PyResult<BreakerConfig> {
    let Ok(d) = d.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a dict of CircuitBreaker keyword arguments or None, got {}",
            type_name(d)
        )));
    };
    for key in d.keys() {
        let known = key
            .cast::<PyString>()
            .ok()
            .and_then(|k| k.to_cow().ok().map(|k| BREAKER_KEYWORDS.contains(&&*k)))
            .unwrap_or(false);
        if !known {
            return Err(PyTypeError::new_err(format!(
                "{name} got an unexpected keyword {}: CircuitBreaker's keywords are {}",
                convert::repr(&key),
                BREAKER_KEYWORDS.join(", ")
            )));
        }
    }
    let mut values = Vec::with_capacity(BREAKER_KEYWORDS.len());
    for key in BREAKER_KEYWORDS {
        match d.get_item(key)? {
            Some(v) => values.push(v),
            None => {
                return Err(PyTypeError::new_err(format!("{name} is missing {key}")));
            }
        }
    }
    let [
        failure_rate_threshold,
        slow_call_rate_threshold,
        slow_call_duration,
        window,
        window_size,
        window_duration,
        window_buckets,
        minimum_calls,
        consecutive_failures,
        open_duration,
        backoff,
        backoff_multiplier,
        max_open_duration,
        backoff_jitter,
        half_open_calls,
        max_half_open_duration,
        seed,
    ] = values.as_slice()
    else {
        return Err(PyTypeError::new_err(format!("{name} is incomplete")));
    };
    let args = BreakerArgs {
        failure_rate_threshold,
        slow_call_rate_threshold,
        slow_call_duration,
        window,
        window_size,
        window_duration,
        window_buckets,
        minimum_calls,
        consecutive_failures,
        open_duration,
        backoff,
        backoff_multiplier,
        max_open_duration,
        backoff_jitter,
        half_open_calls,
        max_half_open_duration,
        seed,
    };
    breaker_config(py, f, &args)
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .qualname()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// `window` and the arguments of its kind as the core's [`WindowConfig`].
fn window_config(py: Python<'_>, f: Fields, a: &BreakerArgs<'_, '_>) -> PyResult<WindowConfig> {
    let kind = convert::choice(
        py,
        f,
        "window.kind",
        a.window,
        &["count", "time"],
        "one of 'count', 'time'",
    )?;
    if kind == "time" {
        // Leaving out an argument the call needs is a TypeError in Python.
        let Some(window_duration) = optional(a.window_duration) else {
            return Err(PyTypeError::new_err(format!(
                "{} is required when {} is 'time'",
                f.py("window.duration"),
                f.py("window.kind")
            )));
        };
        return Ok(WindowConfig::Time {
            duration: convert::duration(py, f, "window.duration", window_duration)?,
            buckets: convert::count(py, f, "window.buckets", a.window_buckets)?,
        });
    }
    convert::only_with(
        py,
        f,
        "window.duration",
        a.window_duration,
        "None unless window is 'time'",
    )?;
    Ok(WindowConfig::Count {
        size: convert::count(py, f, "window.size", a.window_size)?,
    })
}

/// `backoff` and the arguments of its kind as the core's [`BackoffConfig`]; `open_duration`
/// gives the default cap.
fn backoff_config(
    py: Python<'_>,
    f: Fields,
    a: &BreakerArgs<'_, '_>,
    open_duration: Duration,
) -> PyResult<BackoffConfig> {
    let kind = convert::choice(
        py,
        f,
        "backoff.kind",
        a.backoff,
        &["fixed", "exponential"],
        "one of 'fixed', 'exponential'",
    )?;
    if kind == "exponential" {
        return Ok(BackoffConfig::Exponential {
            multiplier: convert::number(f, "backoff.multiplier", a.backoff_multiplier)?,
            max_open_duration: match optional(a.max_open_duration) {
                Some(v) => convert::duration(py, f, "backoff.max_open_duration", v)?,
                None => BackoffConfig::default_max_open_duration(open_duration),
            },
            jitter: convert::number(f, "backoff.jitter", a.backoff_jitter)?,
        });
    }
    convert::only_with(
        py,
        f,
        "backoff.max_open_duration",
        a.max_open_duration,
        "None unless backoff is 'exponential'",
    )?;
    Ok(BackoffConfig::Fixed)
}

pub(crate) fn state_name(py: Python<'_>, state: BreakerState) -> Bound<'_, PyString> {
    match state {
        BreakerState::Closed => intern!(py, "closed"),
        BreakerState::Open => intern!(py, "open"),
        BreakerState::HalfOpen => intern!(py, "half_open"),
        BreakerState::ForcedOpen => intern!(py, "forced_open"),
        BreakerState::Disabled => intern!(py, "disabled"),
        BreakerState::MetricsOnly => intern!(py, "metrics_only"),
    }
    .clone()
}

pub(crate) fn reason_name(py: Python<'_>, reason: TransitionReason) -> Bound<'_, PyString> {
    PyString::intern(py, reason.as_str())
}
