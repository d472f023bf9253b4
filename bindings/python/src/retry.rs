//! `seawall._native.RetryConfig`, `RetryBudget` and `RetryLoop`: the core's retry decisions for
//! the Python facade in `seawall/_retry.py`.
//!
//! The core decides whether an attempt fits the budget, how long to wait after a failure and
//! when to give up; the facade runs the user's function, classifies its errors and sleeps. A
//! retry budget is shared by many calls (and threads): the core's [`RetryBudget`] keeps its
//! state behind a lock that is held for one decision, never while Python code runs.
//!
//! A call's [`Budget`] and the shared retry budget may read different clocks (`time.monotonic`
//! and the core's monotonic clock, or a test's manual clock). The core's [`RetryState`] takes
//! one `now` for both, so when the two readings differ the budget is carried over to the retry
//! budget's clock with the same time left ([`Budget::with_remaining`]; the time left never
//! exceeds the policy maximum, so nothing is clamped) before asking the core.

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use seawall_core::{
    Backoff, Budget, ConfigError, RetryBudget, RetryBudgetConfig, RetryConfig, RetryDecision,
    RetryState, Timestamp, retry_after_from_secs,
};

use crate::budget::{NativeBudget, optional_timeout};
use crate::convert::{self, optional, timestamp};
use crate::error::{RETRY_FIELDS as F, budget_exhausted, config_error};

const BACKOFFS: &[&str] = &["constant", "exponential", "decorrelated_jitter"];
const BACKOFFS_EXPECTED: &str = "one of 'constant', 'exponential', 'decorrelated_jitter'";

/// A retry policy's numbers. Private: use `seawall.RetryPolicy`.
#[pyclass(frozen, module = "seawall._native", name = "RetryConfig")]
pub struct Config {
    inner: RetryConfig,
}

#[pymethods]
impl Config {
    /// Validates a policy (seconds). Every argument is required: the defaults live in the
    /// facade's signature. `delay` is for `constant` only; `base`, `cap` for the other two;
    /// `multiplier` for `exponential`.
    #[new]
    #[pyo3(signature = (*, max_attempts, backoff, base, cap, delay, multiplier, seed))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        max_attempts: &Bound<'_, PyAny>,
        backoff: &Bound<'_, PyAny>,
        base: &Bound<'_, PyAny>,
        cap: &Bound<'_, PyAny>,
        delay: &Bound<'_, PyAny>,
        multiplier: &Bound<'_, PyAny>,
        seed: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let max_attempts = attempts(py, max_attempts)?;
        let kind = convert::choice(py, F, "backoff.kind", backoff, BACKOFFS, BACKOFFS_EXPECTED)?;
        let backoff = if kind == "constant" {
            let Some(delay) = optional(delay) else {
                // Leaving out an argument the call needs is a TypeError in Python.
                return Err(PyTypeError::new_err(
                    "delay is required when backoff is 'constant'",
                ));
            };
            Backoff::Constant {
                delay: convert::timeout(py, F, "backoff.delay", delay)?,
            }
        } else {
            convert::only_with(
                py,
                F,
                "backoff.delay",
                delay,
                "None unless backoff is 'constant'",
            )?;
            let base = convert::timeout(py, F, "backoff.base", base)?;
            let cap = convert::timeout(py, F, "backoff.cap", cap)?;
            if kind == "exponential" {
                Backoff::Exponential {
                    base,
                    cap,
                    multiplier: convert::number(F, "backoff.multiplier", multiplier)?,
                }
            } else {
                Backoff::DecorrelatedJitter { base, cap }
            }
        };
        let seed = convert::seed(py, F, seed)?;
        RetryConfig::new(max_attempts, backoff, seed)
            .map(|inner| Config { inner })
            .map_err(|e| config_error(py, F, &e))
    }

    /// Attempts in all, the first included.
    #[getter]
    fn max_attempts(&self) -> u32 {
        self.inner.max_attempts()
    }

    /// The backoff's kind.
    #[getter]
    fn backoff<'py>(&self, py: Python<'py>) -> &Bound<'py, PyString> {
        match self.inner.backoff() {
            Backoff::Constant { .. } => intern!(py, "constant"),
            Backoff::Exponential { .. } => intern!(py, "exponential"),
            Backoff::DecorrelatedJitter { .. } => intern!(py, "decorrelated_jitter"),
        }
    }

    /// The constant wait in seconds (`None` for the other kinds).
    #[getter]
    fn delay(&self) -> Option<f64> {
        match self.inner.backoff() {
            Backoff::Constant { delay } => Some(delay.as_secs_f64()),
            _ => None,
        }
    }

    /// The first or shortest wait in seconds (`None` for `constant`).
    #[getter]
    fn base(&self) -> Option<f64> {
        match self.inner.backoff() {
            Backoff::Exponential { base, .. } | Backoff::DecorrelatedJitter { base, .. } => {
                Some(base.as_secs_f64())
            }
            Backoff::Constant { .. } => None,
        }
    }

    /// The longest wait in seconds (`None` for `constant`).
    #[getter]
    fn cap(&self) -> Option<f64> {
        match self.inner.backoff() {
            Backoff::Exponential { cap, .. } | Backoff::DecorrelatedJitter { cap, .. } => {
                Some(cap.as_secs_f64())
            }
            Backoff::Constant { .. } => None,
        }
    }

    /// The growth per attempt (`None` unless `exponential`).
    #[getter]
    fn multiplier(&self) -> Option<f64> {
        match self.inner.backoff() {
            Backoff::Exponential { multiplier, .. } => Some(multiplier),
            _ => None,
        }
    }

    /// The jitter seed, if fixed.
    #[getter]
    fn seed(&self) -> Option<u64> {
        self.inner.seed()
    }
}

/// `max_attempts` as the core's count. The core's range check only sees integers, so a value
/// that is not one (2.5, NaN, 10**40) is reported with the core's own wording of the range.
fn attempts(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = convert::number(F, "max_attempts", v)?;
    if n.is_finite() && n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
        // Integral and in range, so the cast is exact.
        return Ok(n as u32);
    }
    // Zero is always out of range: the core's error for it carries the wording.
    match RetryConfig::new(
        0,
        Backoff::Constant {
            delay: Duration::ZERO,
        },
        None,
    ) {
        Err(e) => Err(config_error(
            py,
            F,
            &ConfigError {
                got: convert::repr(v),
                ..e
            },
        )),
        Ok(_) => Err(PyValueError::new_err(format!(
            "max_attempts must be a whole number, got {}",
            convert::repr(v)
        ))),
    }
}

/// The core's default retry policy and retry budget in the facade's units, keyed by keyword
/// argument, so a test can hold the facade's signatures to them.
#[pyfunction]
pub fn retry_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let c = RetryConfig::default();
    let d = PyDict::new(py);
    d.set_item("max_attempts", c.max_attempts())?;
    match c.backoff() {
        Backoff::Constant { delay } => {
            d.set_item("backoff", "constant")?;
            d.set_item("delay", delay.as_secs_f64())?;
        }
        Backoff::Exponential {
            base,
            cap,
            multiplier,
        } => {
            d.set_item("backoff", "exponential")?;
            d.set_item("base", base.as_secs_f64())?;
            d.set_item("cap", cap.as_secs_f64())?;
            d.set_item("multiplier", multiplier)?;
        }
        Backoff::DecorrelatedJitter { base, cap } => {
            d.set_item("backoff", "decorrelated_jitter")?;
            d.set_item("base", base.as_secs_f64())?;
            d.set_item("cap", cap.as_secs_f64())?;
        }
    }
    d.set_item("seed", c.seed())?;
    let b = RetryBudgetConfig::default();
    d.set_item("percent", b.percent())?;
    d.set_item("min_per_second", b.min_per_second())?;
    d.set_item("ttl", b.ttl().as_secs_f64())?;
    Ok(d)
}

/// A retry budget shared by every call that uses it. Private: use `seawall.RetryBudget`.
///
/// It holds the core's thread-safe [`RetryBudget`] (clones share one budget), so the
/// process-wide default is the core's own. Methods take `now` from the facade's clock, or
/// `None` to read the core's monotonic clock.
#[pyclass(frozen, module = "seawall._native", name = "RetryBudget")]
pub struct NativeRetryBudget {
    inner: RetryBudget,
}

#[pymethods]
impl NativeRetryBudget {
    /// Validates the settings (`ttl` in seconds) and builds an empty budget.
    #[new]
    #[pyo3(signature = (*, percent, min_per_second, ttl))]
    fn new(
        py: Python<'_>,
        percent: &Bound<'_, PyAny>,
        min_per_second: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let percent = convert::number(F, "retry_budget.percent", percent)?;
        let min_per_second = convert::number(F, "retry_budget.min_per_second", min_per_second)?;
        let ttl = convert::timeout(py, F, "retry_budget.ttl", ttl)?;
        let config = RetryBudgetConfig::new(percent, min_per_second, ttl)
            .map_err(|e| config_error(py, F, &e))?;
        Ok(NativeRetryBudget {
            inner: RetryBudget::new(config),
        })
    }

    /// The core's process-wide retry budget.
    #[staticmethod]
    fn get_global() -> NativeRetryBudget {
        NativeRetryBudget {
            inner: RetryBudget::global(),
        }
    }

    /// Retries allowed as a percentage of requests.
    #[getter]
    fn percent(&self) -> f64 {
        self.config().percent()
    }

    /// Retries always allowed per second.
    #[getter]
    fn min_per_second(&self) -> f64 {
        self.config().min_per_second()
    }

    /// How long a request or retry counts, in seconds.
    #[getter]
    fn ttl(&self) -> f64 {
        self.config().ttl().as_secs_f64()
    }

    /// `(requests, retries, allowed)` in the window at `now` (`None`: the core's clock).
    #[pyo3(signature = (now=None))]
    fn metrics(&self, now: Option<f64>) -> PyResult<(u64, u64, u64)> {
        let now = now.map(timestamp).transpose()?;
        let m = self
            .inner
            .with_core(|core, core_now| core.metrics(now.unwrap_or(core_now)));
        Ok((m.requests, m.retries, m.allowed))
    }
}

impl NativeRetryBudget {
    fn config(&self) -> RetryBudgetConfig {
        self.inner.with_core(|core, _| core.config())
    }
}

/// One call's retry loop. Private: use `seawall.RetryPolicy.begin`.
#[pyclass(frozen, module = "seawall._native", name = "RetryLoop")]
pub struct NativeRetryLoop {
    state: Mutex<RetryState>,
    budget: Budget,
    retry_budget: Option<RetryBudget>,
}

#[pymethods]
impl NativeRetryLoop {
    /// A loop that has made no attempt yet, under `budget`, taking retries from `retry_budget`.
    #[new]
    #[pyo3(signature = (config, budget, retry_budget))]
    fn new(
        config: &Config,
        budget: &NativeBudget,
        retry_budget: Option<&NativeRetryBudget>,
    ) -> Self {
        NativeRetryLoop {
            state: Mutex::new(RetryState::new(config.inner)),
            budget: budget.inner,
            retry_budget: retry_budget.map(|rb| rb.inner.clone()),
        }
    }

    /// Attempts started so far.
    #[getter]
    fn attempts(&self) -> u32 {
        self.state.lock().attempts()
    }

    /// Starts an attempt at `now` (the budget's clock) and returns its timeout in seconds, or
    /// raises `BudgetExhausted`. `retry_budget_now` is the retry budget's clock reading (`None`:
    /// the core's clock); `cap` the per-attempt cap in seconds, or `None`.
    fn start_attempt(
        &self,
        py: Python<'_>,
        now: f64,
        retry_budget_now: Option<f64>,
        cap: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let cap = optional_timeout(py, "cap", cap)?;
        let now = timestamp(now)?;
        let rb_now = retry_budget_now.map(timestamp).transpose()?;
        let started = match &self.retry_budget {
            None => self
                .state
                .lock()
                .start_attempt(now, &self.budget, cap, None),
            Some(rb) => rb.with_core(|core, core_now| {
                let (t, budget) = self.on_timeline(now, rb_now.unwrap_or(core_now));
                self.state.lock().start_attempt(t, &budget, cap, Some(core))
            }),
        };
        started
            .map(|d| d.as_secs_f64())
            .map_err(|e| budget_exhausted(py, &e))
    }

    /// After a retryable failure at `now`: `(True, delay_seconds, None)` to retry, or
    /// `(False, None, reason)` to give up. `retry_after` is a server hint in seconds, or `None`.
    fn on_failure<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        retry_budget_now: Option<f64>,
        retry_after: &Bound<'py, PyAny>,
    ) -> PyResult<(bool, Option<f64>, Option<Bound<'py, PyString>>)> {
        let retry_after = optional(retry_after)
            .map(|v| {
                let secs = convert::number(F, "retry_after", v)?;
                retry_after_from_secs(secs).map_err(|e| config_error(py, F, &e))
            })
            .transpose()?;
        let now = timestamp(now)?;
        let rb_now = retry_budget_now.map(timestamp).transpose()?;
        let decision = match &self.retry_budget {
            None => self
                .state
                .lock()
                .on_failure(now, &self.budget, retry_after, None),
            Some(rb) => rb.with_core(|core, core_now| {
                let (t, budget) = self.on_timeline(now, rb_now.unwrap_or(core_now));
                self.state
                    .lock()
                    .on_failure(t, &budget, retry_after, Some(core))
            }),
        };
        Ok(match decision {
            RetryDecision::RetryAfter(delay) => (true, Some(delay.as_secs_f64()), None),
            RetryDecision::GiveUp(reason) => {
                (false, None, Some(PyString::intern(py, reason.as_str())))
            }
        })
    }
}

impl NativeRetryLoop {
    /// The budget as seen on the retry budget's clock at `rb_now`: itself when the readings
    /// agree, otherwise a budget with the same time left ending on that clock.
    fn on_timeline(&self, now: Timestamp, rb_now: Timestamp) -> (Timestamp, Budget) {
        if rb_now == now {
            return (now, self.budget);
        }
        let remaining = self.budget.remaining(now);
        (
            rb_now,
            Budget::with_remaining(rb_now, remaining, self.budget.policy()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seawall_core::TimeoutPolicy;

    fn loop_with(budget: Budget) -> NativeRetryLoop {
        NativeRetryLoop {
            state: Mutex::new(RetryState::new(RetryConfig::default())),
            budget,
            retry_budget: None,
        }
    }

    #[test]
    fn a_budget_keeps_its_time_left_on_another_clock() {
        let policy = TimeoutPolicy::DEFAULT;
        let budget = Budget::new(
            Timestamp::from_millis(5_000),
            Duration::from_secs(2),
            policy,
        );
        let l = loop_with(budget);
        // Same reading: the budget itself.
        let now = Timestamp::from_millis(5_500);
        assert_eq!(l.on_timeline(now, now), (now, budget));
        // Another clock, far ahead: the same 1.5 s left, ending on that clock.
        let rb_now = Timestamp::from_millis(900_000);
        let (t, moved) = l.on_timeline(now, rb_now);
        assert_eq!(t, rb_now);
        assert_eq!(moved.remaining(rb_now), Duration::from_millis(1_500));
        assert_eq!(moved.policy(), policy);
        // Another clock behind, with the budget already spent there: still nothing left.
        let late = Timestamp::from_millis(8_000);
        let (t, moved) = l.on_timeline(late, Timestamp::from_millis(10));
        assert!(moved.is_expired(t));
    }
}
