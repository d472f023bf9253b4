//! `seawall._native.Breaker`: the core's sans-IO [`BreakerCore`] behind a lock, for the Python
//! facade in `seawall/_breaker.py`.
//!
//! Every method takes `now` from the facade's clock (seconds as a float) and returns at once; the
//! lock is held only for the core's decision, never while Python code runs, so nothing here can
//! deadlock with the GIL. The facade owns classifying an outcome and listeners. Methods whose
//! call may change the state say so in their return value, so the facade polls
//! `take_transitions()` only when there is something to hear.
//!
//! The core publishes a [`FastPath`] after every locked operation: admissions in a closed (or
//! open, forced-open, disabled) breaker and successes that change nothing but counters are
//! taken from it without the core, counted in [`FastCounts`], and folded in (`absorb_fast`)
//! at the start of the next locked operation ([`Breaker::locked`]), so every decision stays the
//! core's and the metrics add up.
//!
//! [`BreakerBase`] is the native base of `CircuitBreaker`: its sync `call` and the calls of sync
//! decorated functions ([`Guarded`]) read the clock, admit, call the function and record in one
//! native call, calling back into the facade only for what needs it (an exception to classify,
//! a result classifier, transitions or rejections with listeners to tell).
//!
//! Type checks (a `str` where a number belongs) happen here, at the boundary; every range check
//! is the core's, and its errors are re-spelled by `error.rs`.

use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use pyo3::PyTraverseError;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use seawall_core::{
    BackoffConfig, BreakerConfig, BreakerCore, BreakerState, FastAdmission, FastCounts, FastPath,
    Outcome, PermitTicket, Rejected, RejectionReason, Snapshot, Timestamp, TransitionReason,
    WindowConfig,
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
    core: Mutex<Locked>,
}

/// The core, with what it last published for the fast path ([`FastPath`]) and what the fast
/// path has done since ([`FastCounts`]), under one lock.
struct Locked {
    core: BreakerCore,
    fast: FastPath,
    counts: FastCounts,
}

/// The core, locked, with the fast path's counts folded in; republishes the fast path when
/// dropped (after whatever the holder did to the core).
struct CoreGuard<'a>(MutexGuard<'a, Locked>);

impl std::ops::Deref for CoreGuard<'_> {
    type Target = BreakerCore;
    fn deref(&self) -> &BreakerCore {
        &self.0.core
    }
}

impl std::ops::DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut BreakerCore {
        &mut self.0.core
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        self.0.fast = self.0.core.fast_path();
    }
}

impl Breaker {
    fn from_core(core: BreakerCore) -> Self {
        let fast = core.fast_path();
        Breaker {
            core: Mutex::new(Locked {
                core,
                fast,
                counts: FastCounts::default(),
            }),
        }
    }

    /// The core for a decision: every core call goes through here, so that the counters it
    /// reads include the fast path's and the fast path is republished after it.
    fn locked(&self) -> CoreGuard<'_> {
        let mut g = self.core.lock();
        let counts = std::mem::take(&mut g.counts);
        g.core.absorb_fast(counts);
        CoreGuard(g)
    }
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
        failure_rate_threshold: Bound<'_, PyAny>,
        slow_call_rate_threshold: Bound<'_, PyAny>,
        slow_call_duration: Bound<'_, PyAny>,
        window: Bound<'_, PyAny>,
        window_size: Bound<'_, PyAny>,
        window_duration: Bound<'_, PyAny>,
        window_buckets: Bound<'_, PyAny>,
        minimum_calls: Bound<'_, PyAny>,
        consecutive_failures: Bound<'_, PyAny>,
        open_duration: Bound<'_, PyAny>,
        backoff: Bound<'_, PyAny>,
        backoff_multiplier: Bound<'_, PyAny>,
        max_open_duration: Bound<'_, PyAny>,
        backoff_jitter: Bound<'_, PyAny>,
        half_open_calls: Bound<'_, PyAny>,
        max_half_open_duration: Bound<'_, PyAny>,
        seed: Bound<'_, PyAny>,
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
        Ok(Breaker::from_core(BreakerCore::new(config)))
    }

    /// Admits a call or not. Admitted: an `int`, `token << 1 | pending`, where `token` goes back
    /// to `record` and `pending` says transitions are waiting. Rejected: a tuple
    /// `(reason, retry_after_seconds | None, pending)`.
    fn acquire<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyAny>> {
        let now = timestamp(now)?;
        let (result, pending) = {
            let mut core = self.locked();
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
        let mut core = self.locked();
        core.record(ticket, outcome, now);
        Ok(core.has_transitions())
    }

    /// Whether state changes are waiting for `take_transitions`.
    fn has_transitions(&self) -> bool {
        self.locked().has_transitions()
    }

    /// The state changes not yet taken, oldest first, as `(from, to, reason)` tuples.
    fn take_transitions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut taken = Vec::new();
        {
            let mut core = self.locked();
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
        let state = self.locked().state(now);
        Ok(state_name(py, state))
    }

    /// The metrics at `now`, as a dict keyed by the names of `seawall.Metrics`' attributes.
    fn metrics<'py>(&self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyDict>> {
        let now = timestamp(now)?;
        let m = self.locked().metrics(now);
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
        self.locked().force_open(now);
        Ok(())
    }

    /// Permits every call and records nothing until another manual change.
    fn disable(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.locked().disable(now);
        Ok(())
    }

    /// Records outcomes but never rejects, until another manual change.
    fn metrics_only(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.locked().metrics_only(now);
        Ok(())
    }

    /// Closed, with an empty window and the base open duration.
    fn reset(&self, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        self.locked().reset(now);
        Ok(())
    }

    /// The state at `now` as the versioned JSON snapshot.
    fn snapshot(&self, now: f64) -> PyResult<String> {
        let now = timestamp(now)?;
        let snapshot = self.locked().snapshot(now);
        Ok(snapshot.to_json())
    }

    /// Resumes from a JSON snapshot as if it had been taken at `now`; a bad snapshot raises
    /// `SnapshotError` and changes nothing.
    fn restore(&self, py: Python<'_>, snapshot: &str, now: f64) -> PyResult<()> {
        let now = timestamp(now)?;
        let snapshot = Snapshot::from_json(snapshot).map_err(|e| snapshot_error(py, &e))?;
        self.locked()
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
pub(crate) struct BreakerArgs<'py> {
    pub(crate) failure_rate_threshold: Bound<'py, PyAny>,
    pub(crate) slow_call_rate_threshold: Bound<'py, PyAny>,
    pub(crate) slow_call_duration: Bound<'py, PyAny>,
    pub(crate) window: Bound<'py, PyAny>,
    pub(crate) window_size: Bound<'py, PyAny>,
    pub(crate) window_duration: Bound<'py, PyAny>,
    pub(crate) window_buckets: Bound<'py, PyAny>,
    pub(crate) minimum_calls: Bound<'py, PyAny>,
    pub(crate) consecutive_failures: Bound<'py, PyAny>,
    pub(crate) open_duration: Bound<'py, PyAny>,
    pub(crate) backoff: Bound<'py, PyAny>,
    pub(crate) backoff_multiplier: Bound<'py, PyAny>,
    pub(crate) max_open_duration: Bound<'py, PyAny>,
    pub(crate) backoff_jitter: Bound<'py, PyAny>,
    pub(crate) half_open_calls: Bound<'py, PyAny>,
    pub(crate) max_half_open_duration: Bound<'py, PyAny>,
    pub(crate) seed: Bound<'py, PyAny>,
}

/// Validates a breaker configuration (durations in seconds); errors name the keywords as
/// `f` spells them.
pub(crate) fn breaker_config(
    py: Python<'_>,
    f: Fields,
    a: &BreakerArgs<'_>,
) -> PyResult<BreakerConfig> {
    // Converted in the order the core validates, so that a configuration with several bad
    // values reports the same field first in every language.
    let failure_rate_threshold =
        convert::number(f, "failure_rate_threshold", &a.failure_rate_threshold)?;
    let slow_call_rate_threshold =
        convert::number(f, "slow_call_rate_threshold", &a.slow_call_rate_threshold)?;
    let slow_call_duration = optional(&a.slow_call_duration)
        .map(|v| convert::duration(py, f, "slow_call_duration", v))
        .transpose()?;
    let window = window_config(py, f, a)?;
    let minimum_calls = convert::count(py, f, "minimum_calls", &a.minimum_calls)?;
    let consecutive_failures = optional(&a.consecutive_failures)
        .map(|v| convert::count(py, f, "consecutive_failures", v))
        .transpose()?;
    let open_duration = convert::duration(py, f, "open_duration", &a.open_duration)?;
    let backoff = backoff_config(py, f, a, open_duration)?;
    let half_open_calls = convert::count(py, f, "half_open_calls", &a.half_open_calls)?;
    let max_half_open_duration = optional(&a.max_half_open_duration)
        .map(|v| convert::duration(py, f, "max_half_open_duration", v))
        .transpose()?;
    let seed = convert::seed(py, f, &a.seed)?;
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
    // Looked up in BREAKER_KEYWORDS' order (fields are evaluated as written), so the first
    // missing keyword is the one reported.
    let get = |key: &str| {
        d.get_item(key)?
            .ok_or_else(|| PyTypeError::new_err(format!("{name} is missing {key}")))
    };
    let args = BreakerArgs {
        failure_rate_threshold: get("failure_rate_threshold")?,
        slow_call_rate_threshold: get("slow_call_rate_threshold")?,
        slow_call_duration: get("slow_call_duration")?,
        window: get("window")?,
        window_size: get("window_size")?,
        window_duration: get("window_duration")?,
        window_buckets: get("window_buckets")?,
        minimum_calls: get("minimum_calls")?,
        consecutive_failures: get("consecutive_failures")?,
        open_duration: get("open_duration")?,
        backoff: get("backoff")?,
        backoff_multiplier: get("backoff_multiplier")?,
        max_open_duration: get("max_open_duration")?,
        backoff_jitter: get("backoff_jitter")?,
        half_open_calls: get("half_open_calls")?,
        max_half_open_duration: get("max_half_open_duration")?,
        seed: get("seed")?,
    };
    breaker_config(py, f, &args)
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .qualname()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// `window` and the arguments of its kind as the core's [`WindowConfig`].
fn window_config(py: Python<'_>, f: Fields, a: &BreakerArgs<'_>) -> PyResult<WindowConfig> {
    let kind = convert::choice(
        py,
        f,
        "window.kind",
        &a.window,
        &["count", "time"],
        "one of 'count', 'time'",
    )?;
    if kind == "time" {
        // Leaving out an argument the call needs is a TypeError in Python.
        let Some(window_duration) = optional(&a.window_duration) else {
            return Err(PyTypeError::new_err(format!(
                "{} is required when {} is 'time'",
                f.py("window.duration"),
                f.py("window.kind")
            )));
        };
        return Ok(WindowConfig::Time {
            duration: convert::duration(py, f, "window.duration", window_duration)?,
            buckets: convert::count(py, f, "window.buckets", &a.window_buckets)?,
        });
    }
    convert::only_with(
        py,
        f,
        "window.duration",
        &a.window_duration,
        "None unless window is 'time'",
    )?;
    Ok(WindowConfig::Count {
        size: convert::count(py, f, "window.size", &a.window_size)?,
    })
}

/// `backoff` and the arguments of its kind as the core's [`BackoffConfig`]; `open_duration`
/// gives the default cap.
fn backoff_config(
    py: Python<'_>,
    f: Fields,
    a: &BreakerArgs<'_>,
    open_duration: Duration,
) -> PyResult<BackoffConfig> {
    let kind = convert::choice(
        py,
        f,
        "backoff.kind",
        &a.backoff,
        &["fixed", "exponential"],
        "one of 'fixed', 'exponential'",
    )?;
    if kind == "exponential" {
        return Ok(BackoffConfig::Exponential {
            multiplier: convert::number(f, "backoff.multiplier", &a.backoff_multiplier)?,
            max_open_duration: match optional(&a.max_open_duration) {
                Some(v) => convert::duration(py, f, "backoff.max_open_duration", v)?,
                None => BackoffConfig::default_max_open_duration(open_duration),
            },
            jitter: convert::number(f, "backoff.jitter", &a.backoff_jitter)?,
        });
    }
    convert::only_with(
        py,
        f,
        "backoff.max_open_duration",
        &a.max_open_duration,
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

/// What [`BreakerBase`] needs from its facade, set once by `_bind` in `CircuitBreaker.__init__`.
struct Guard {
    core: Py<Breaker>,
    clock: Py<PyAny>,
    /// `CircuitOpenError`, built here without running its `__init__` (see [`open_error`]).
    error_type: Py<PyType>,
    /// `CircuitOpenError`'s third argument.
    name: Py<PyAny>,
    /// True when `clock` is `time.monotonic`, read here directly (see [`monotonic`]).
    native_clock: bool,
    /// True when a result needs no classifier (`is_result_failure` is `None`): a success is
    /// recorded here without calling back into the facade.
    plain_results: bool,
}

/// The native base class of `seawall.CircuitBreaker`: its synchronous `call`, done in one
/// native call (read the clock, admit, call the function, record, raise a rejection), and the
/// call of a function decorated with `@breaker` ([`Guarded`]).
///
/// It decides nothing: admission and recording are the core's ([`Breaker`]), classifying an
/// exception and telling listeners stay the facade's (`_record_exception`, `_record_result`,
/// `_emit_transitions`, `_rejected`), which it calls back only when there is something for them
/// to do (an exception, a result classifier, transitions waiting, reject listeners), so that the
/// common closed path and the common rejection never run Python code of Seawall's.
#[pyclass(frozen, subclass, module = "seawall._native", name = "BreakerBase")]
pub struct BreakerBase {
    guard: OnceLock<Guard>,
}

/// The type of a coroutine object (`types.CoroutineType`), to refuse async functions on the
/// sync path.
static COROUTINE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn coroutine_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    COROUTINE_TYPE.import(py, "types", "CoroutineType")
}

impl BreakerBase {
    fn guard(&self) -> PyResult<&Guard> {
        self.guard.get().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err(
                "CircuitBreaker.__init__ was not called on this instance",
            )
        })
    }
}

/// Reads the facade's clock (seconds as a float).
fn read_clock(py: Python<'_>, g: &Guard) -> PyResult<f64> {
    if g.native_clock
        && let Some(now) = monotonic()
    {
        return Ok(now);
    }
    g.clock.bind(py).call0()?.extract::<f64>()
}

/// `time.monotonic()` without the Python call: on Linux CPython reads `CLOCK_MONOTONIC` and
/// returns its nanoseconds divided by 1e9, which this does too, so both give the same float.
#[cfg(target_os = "linux")]
pub(crate) fn monotonic() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_MONOTONIC: i32 = 1;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec (64-bit time_t and long on the 64-bit Linux
    // targets this is compiled for; see the cfg below).
    if unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) } != 0 {
        return None;
    }
    let ns = ts
        .tv_sec
        .checked_mul(1_000_000_000)?
        .checked_add(ts.tv_nsec)?;
    Some(ns as f64 / 1e9)
}

/// Elsewhere the Python clock is called.
#[cfg(not(target_os = "linux"))]
pub(crate) fn monotonic() -> Option<f64> {
    None
}

/// Whether `clock` is `time.monotonic` and this platform reads it natively.
fn is_time_monotonic(clock: &Bound<'_, PyAny>) -> PyResult<bool> {
    if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
        return Ok(false);
    }
    let py = clock.py();
    let monotonic = py
        .import(intern!(py, "time"))?
        .getattr(intern!(py, "monotonic"))?;
    Ok(clock.is(&monotonic))
}

/// A fresh `CircuitOpenError(reason, retry_after, name)`, made by the type's `tp_new` alone:
/// its attributes read `args`, so `__init__` has nothing to add, and skipping the Python
/// `__init__` (with its `super()` call) is most of the cost of a rejection.
fn open_error(
    py: Python<'_>,
    g: &Guard,
    reason: &Bound<'_, PyString>,
    retry_after: Option<f64>,
) -> PyResult<PyErr> {
    let args = (reason, retry_after, g.name.bind(py)).into_pyobject(py)?;
    let tp = g.error_type.bind(py);
    // SAFETY: `tp` is a live heap type (a Python class deriving from Exception), whose tp_new
    // slot is `BaseException.__new__` or an override with the same signature; it is called with
    // a valid args tuple and no kwargs, and the new reference it returns (or NULL with an error
    // set) is taken over by `from_owned_ptr_or_err`.
    let obj = unsafe {
        let slot = pyo3::ffi::PyType_GetSlot(tp.as_type_ptr(), pyo3::ffi::Py_tp_new);
        if slot.is_null() {
            return Ok(PyErr::from_value(tp.call1(args)?));
        }
        let new: pyo3::ffi::newfunc = std::mem::transmute(slot);
        let raw = new(tp.as_type_ptr(), args.as_ptr(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, raw)?
    };
    Ok(PyErr::from_value(obj))
}

/// The core's published answer to `try_acquire(now)`, when it has one ([`FastPath`]): an
/// admission or a rejection taken without the core and counted for it. `None`: ask the core.
fn fast_admit(core: &Breaker, now: Timestamp) -> Option<Result<PermitTicket, Rejected>> {
    let mut l = core.core.lock();
    if l.core.has_transitions() {
        // State changes not yet told (a permit released by the garbage collector): the slow
        // path reports them.
        return None;
    }
    let fast = l.fast;
    match fast.admission {
        FastAdmission::Admit { counted } => {
            if counted {
                l.counts.admitted += 1;
            }
            Some(Ok(PermitTicket::admitted_fast(fast.epoch, now, counted)))
        }
        FastAdmission::RejectUntil { until } if now < until => {
            l.counts.rejected += 1;
            Some(Err(Rejected {
                reason: RejectionReason::Open,
                retry_after: Some(until.saturating_duration_since(now)),
            }))
        }
        FastAdmission::Reject => {
            l.counts.rejected += 1;
            Some(Err(Rejected {
                reason: RejectionReason::ForcedOpen,
                retry_after: None,
            }))
        }
        FastAdmission::RejectUntil { .. } | FastAdmission::AskCore => None,
    }
}

/// Counts a success without the core when the core has published that it would change
/// nothing but its counters (for a call admitted in the current state instance). No clock is
/// read: such a success has no use for its duration (slow calls are not tracked then).
fn fast_success(core: &Breaker, ticket: &PermitTicket) -> bool {
    let mut l = core.core.lock();
    if l.fast.success_is_noop && ticket.counted() && ticket.epoch() == l.fast.epoch {
        l.counts.succeeded += 1;
        return true;
    }
    false
}

/// Admits a call at the facade's clock: the ticket and its start time in seconds, or the
/// rejection to raise (fresh, with the facade's listeners told).
fn admit(py: Python<'_>, owner: &Bound<'_, PyAny>, g: &Guard) -> PyResult<(PermitTicket, f64)> {
    let core = g.core.get();
    let started_secs = read_clock(py, g)?;
    let started = timestamp(started_secs)?;
    let (admitted, pending) = match fast_admit(core, started) {
        Some(decided) => (decided, false),
        None => {
            let mut c = core.locked();
            let r = c.try_acquire(started);
            (r, c.has_transitions())
        }
    };
    let ticket = match admitted {
        Ok(ticket) => ticket,
        Err(rejected) => {
            let reason = match rejected.reason {
                RejectionReason::Open => intern!(py, "open"),
                RejectionReason::HalfOpenFull => intern!(py, "half_open_full"),
                RejectionReason::ForcedOpen => intern!(py, "forced_open"),
            };
            let retry_after = rejected.retry_after.map(|d| d.as_secs_f64());
            let listened = !owner
                .getattr(intern!(py, "_reject_listeners"))?
                .is_empty()?;
            if pending || listened {
                // Listeners to tell: the facade's own rejection path.
                let err = owner
                    .call_method1(intern!(py, "_rejected"), ((reason, retry_after, pending),))?;
                return Err(PyErr::from_value(err));
            }
            return Err(open_error(py, g, reason, retry_after)?);
        }
    };
    if pending && let Err(e) = owner.call_method0(intern!(py, "_emit_transitions")) {
        core.locked().record(ticket, Outcome::Ignored, started);
        return Err(e);
    }
    Ok((ticket, started_secs))
}

/// Records the result of an admitted call: a success unless the facade's result classifier
/// (called back only when there is one) says otherwise.
fn settle(
    py: Python<'_>,
    owner: &Bound<'_, PyAny>,
    g: &Guard,
    ticket: PermitTicket,
    started_secs: f64,
    result: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let core = g.core.get();
    if g.plain_results && fast_success(core, &ticket) {
        return Ok(());
    }
    if !g.plain_results {
        let (token, _) = ticket.to_raw();
        owner.call_method1(intern!(py, "_record_result"), (token, started_secs, result))?;
        return Ok(());
    }
    let now = match read_clock(py, g).and_then(timestamp) {
        Ok(now) => now,
        Err(e) => {
            // A clock that fails must not leak the permit (it may hold a half-open probe slot).
            let (_, started) = ticket.to_raw();
            core.locked().record(ticket, Outcome::Ignored, started);
            return Err(e);
        }
    };
    let pending = {
        let mut c = core.locked();
        c.record(ticket, Outcome::Success, now);
        c.has_transitions()
    };
    if pending {
        owner.call_method0(intern!(py, "_emit_transitions"))?;
    }
    Ok(())
}

/// The whole synchronous guarded call: `fn(*args, **kwargs)` through the breaker `owner` (the
/// `CircuitBreaker`), with the facade's semantics (see `CircuitBreaker.call`).
fn guarded_call<'py>(
    py: Python<'py>,
    owner: &Bound<'py, PyAny>,
    g: &Guard,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (ticket, started_secs) = admit(py, owner, g)?;
    let result = match func.call(args, kwargs) {
        Ok(result) => result,
        Err(e) => {
            // Classifying an exception (exclusions, predicates) is the facade's.
            let (token, _) = ticket.to_raw();
            if let Err(e2) = owner.call_method1(
                intern!(py, "_record_exception"),
                (token, started_secs, e.value(py)),
            ) {
                e2.set_context(py, Some(e));
                return Err(e2);
            }
            return Err(e);
        }
    };
    if result.get_type().is(coroutine_type(py)?) {
        // An async function handed to the sync path returned a coroutine that has not run.
        let _ = result.call_method0(intern!(py, "close"));
        let (_, started) = ticket.to_raw();
        g.core
            .get()
            .locked()
            .record(ticket, Outcome::Ignored, started);
        return Err(PyTypeError::new_err(
            "call() runs sync functions; use `await breaker.call_async(fn)`",
        ));
    }
    settle(py, owner, g, ticket, started_secs, &result)?;
    Ok(result)
}

#[pymethods]
impl BreakerBase {
    /// Accepts (and ignores) the arguments of the subclass's constructor: `_bind`, from
    /// `CircuitBreaker.__init__`, sets everything up.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        BreakerBase {
            guard: OnceLock::new(),
        }
    }

    /// Connects the instance to its state machine and facade settings (once).
    fn _bind(
        &self,
        core: Py<Breaker>,
        clock: Bound<'_, PyAny>,
        error_type: Py<PyType>,
        name: Py<PyAny>,
        plain_results: bool,
    ) -> PyResult<()> {
        let native_clock = is_time_monotonic(&clock)?;
        self.guard
            .set(Guard {
                core,
                clock: clock.unbind(),
                native_clock,
                error_type,
                name,
                plain_results,
            })
            .map_err(|_| {
                pyo3::exceptions::PyRuntimeError::new_err("CircuitBreaker is already initialised")
            })
    }

    /// Calls ``fn(*args, **kwargs)`` through the breaker and returns its result.
    #[pyo3(signature = (fn_, /, *args, **kwargs))]
    fn call<'py>(
        slf: &Bound<'py, Self>,
        fn_: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let g = slf.get().guard()?;
        guarded_call(slf.py(), slf.as_any(), g, fn_, args, kwargs)
    }

    /// Admits a call (the async paths): `(token, started)`, or raises the rejection.
    fn _admit(slf: &Bound<'_, Self>) -> PyResult<(u64, f64)> {
        let g = slf.get().guard()?;
        let (ticket, started) = admit(slf.py(), slf.as_any(), g)?;
        Ok((ticket.to_raw().0, started))
    }

    /// Records the `result` of the call admitted with `token` at `started` (the async paths).
    fn _settle(
        slf: &Bound<'_, Self>,
        token: u64,
        started: f64,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let g = slf.get().guard()?;
        let ticket = PermitTicket::from_raw(token, timestamp(started)?);
        settle(slf.py(), slf.as_any(), g, ticket, started, result)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(g) = self.guard.get() {
            visit.call(&g.clock)?;
            visit.call(&g.name)?;
        }
        Ok(())
    }
}

/// A sync function decorated with `@breaker`: calling it is [`BreakerBase::call`]. Private:
/// the facade subclasses it (`seawall._breaker._Guarded`) to give it a `__dict__` for
/// `functools.wraps`.
#[pyclass(frozen, subclass, module = "seawall._native", name = "Guarded")]
pub struct Guarded {
    owner: Py<BreakerBase>,
    func: Py<PyAny>,
}

#[pymethods]
impl Guarded {
    #[new]
    fn new(owner: Py<BreakerBase>, func: Py<PyAny>) -> Self {
        Guarded { owner, func }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let owner = self.owner.bind(py);
        let g = owner.get().guard()?;
        guarded_call(py, owner.as_any(), g, self.func.bind(py), args, kwargs)
    }

    /// Binds like a function, so that a decorated method receives `self`.
    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        obj: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match obj {
            None => Ok(slf.clone().into_any()),
            Some(obj) if obj.is_none() => Ok(slf.clone().into_any()),
            Some(obj) => METHOD_TYPE
                .import(py, "types", "MethodType")?
                .call1((slf, obj)),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.owner)?;
        visit.call(&self.func)
    }
}

static METHOD_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
