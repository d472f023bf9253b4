//! Every core error, turned into the Python exception a user of `seawall` expects.
//!
//! The exception classes themselves live in `seawall/_errors.py`, because several subclass both
//! `SeawallError` and a builtin (`InvalidConfigError` and `InvalidHeaderError` are `ValueError`s),
//! which a class defined from Rust cannot do. They are imported once and cached, and a fresh
//! instance is built for every raise. Field names are re-spelled from the core's (`window.size`,
//! `backoff.base`) to the keyword arguments of the Python constructor that took them
//! (`window_size`, `base`) here and nowhere else: the same core field can be a different keyword
//! in two classes (`backoff.multiplier` is `backoff_multiplier` on `CircuitBreaker` and
//! `multiplier` on `RetryPolicy`), so each class passes its own table.
//!
//! A rejected call ([`seawall_core::Rejected`]) is not an error at this boundary: `acquire`
//! returns it as a plain value and the facade raises a fresh `CircuitOpenError`. Likewise a
//! failed pool acquire ([`PoolError`]) is returned as a fresh exception *instance* (see
//! [`pool_error`]) so that the adapter can raise it, or hand it to a waiting task, itself.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use seawall_core::pool::PoolError;
use seawall_core::{BudgetExhausted, ConfigError, HeaderError, SnapshotError};

/// The core's field names and the keyword argument each one is in one Python class. Fields
/// missing from a table are spelled the same in both. `prefix` goes in front of every keyword:
/// the pool's breaker is configured by a dict under the pool's `breaker` keyword, so its
/// `window_size` is reported as `breaker.window_size`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    names: &'static [(&'static str, &'static str)],
    prefix: &'static str,
}

impl Fields {
    const fn new(names: &'static [(&'static str, &'static str)]) -> Self {
        Fields { names, prefix: "" }
    }

    /// The same table, with every keyword reported under `prefix`.
    const fn within(self, prefix: &'static str) -> Self {
        Fields {
            names: self.names,
            prefix,
        }
    }
}

/// `CircuitBreaker`'s keywords.
pub(crate) const BREAKER_FIELDS: Fields = Fields::new(&[
    ("window.kind", "window"),
    ("window.size", "window_size"),
    ("window.duration", "window_duration"),
    ("window.buckets", "window_buckets"),
    ("backoff.kind", "backoff"),
    ("backoff.multiplier", "backoff_multiplier"),
    ("backoff.max_open_duration", "max_open_duration"),
    ("backoff.jitter", "backoff_jitter"),
]);

/// `TimeoutPolicy`'s and `Budget`'s keywords: the core's names already.
pub(crate) const BUDGET_FIELDS: Fields = Fields::new(&[]);

/// `MemoryWatchdog`'s keywords (`WatchdogCore`'s): the core's names already, so every error
/// names exactly the keyword the user typed.
pub(crate) const WATCHDOG_FIELDS: Fields = Fields::new(&[]);

/// `Pool`'s, `SyncPool`'s and `PoolEngine`'s keywords.
pub(crate) const POOL_FIELDS: Fields = Fields::new(&[
    ("create_backoff.base", "create_backoff_base"),
    ("create_backoff.cap", "create_backoff_cap"),
]);

/// The keys of the dict given as a pool's `breaker`: `CircuitBreaker`'s keywords, reported
/// under `breaker.`.
pub(crate) const POOL_BREAKER_FIELDS: Fields = BREAKER_FIELDS.within("breaker.");

/// `RetryPolicy`'s and `RetryBudget`'s keywords.
pub(crate) const RETRY_FIELDS: Fields = Fields::new(&[
    ("backoff.kind", "backoff"),
    ("backoff.delay", "delay"),
    ("backoff.base", "base"),
    ("backoff.cap", "cap"),
    ("backoff.multiplier", "multiplier"),
    ("retry_budget.percent", "percent"),
    ("retry_budget.min_per_second", "min_per_second"),
    ("retry_budget.ttl", "ttl"),
]);

impl Fields {
    /// The Python keyword argument for a core field name.
    pub(crate) fn py(self, core_field: &str) -> String {
        let name = self
            .names
            .iter()
            .find(|(core, _)| *core == core_field)
            .map_or(core_field, |(_, py)| py);
        format!("{}{name}", self.prefix)
    }

    /// `text` with every core field name in it re-spelled for Python (the range of
    /// `window.buckets` mentions `window.duration`, for instance). No core name in a table is
    /// part of another, so the order of replacement does not matter.
    fn respell(self, text: &str) -> String {
        self.names
            .iter()
            .fold(text.to_owned(), |acc, (core, py)| acc.replace(core, py))
    }

    /// The message of an out-of-range configuration value, in Python's spelling.
    pub(crate) fn config_message(self, e: &ConfigError) -> String {
        format!(
            "{} must be {}, got {}",
            self.py(e.field),
            self.respell(e.expected),
            e.got
        )
    }
}

static INVALID_CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SNAPSHOT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BUDGET_EXHAUSTED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_HEADER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static POOL_TIMEOUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static POOL_OVERLOADED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONNECT_FAILED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATABASE_UNAVAILABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static POOL_CLOSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Instantiates `seawall._errors.<name>` with `message` and the keyword attributes `fill` sets;
/// falls back to `fallback(message)` if the facade cannot be imported (the native module used on
/// its own), so that a bad value never turns into an `ImportError`.
fn facade_error(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: String,
    fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>,
    fallback: fn(String) -> PyErr,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = cell.import(py, "seawall._errors", name)?;
        let kwargs = PyDict::new(py);
        fill(&kwargs)?;
        Ok(PyErr::from_value(cls.call((&message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|_| fallback(message.clone()))
}

fn value_error(message: String) -> PyErr {
    PyValueError::new_err(message)
}

/// A [`ConfigError`] as `seawall.InvalidConfigError` (a `ValueError`) whose `field` is the
/// keyword in `fields`.
pub(crate) fn config_error(py: Python<'_>, fields: Fields, e: &ConfigError) -> PyErr {
    facade_error(
        py,
        &INVALID_CONFIG_ERROR,
        "InvalidConfigError",
        fields.config_message(e),
        |kw| {
            kw.set_item("field", fields.py(e.field))?;
            kw.set_item("expected", fields.respell(e.expected))?;
            kw.set_item("got", &e.got)
        },
        value_error,
    )
}

/// A [`SnapshotError`] as `seawall.SnapshotError` (a `ValueError`).
pub(crate) fn snapshot_error(py: Python<'_>, e: &SnapshotError) -> PyErr {
    // Both variants carry their explanation in their message; listing them keeps a new variant
    // from slipping through unnoticed.
    let message = match e {
        SnapshotError::Malformed(_) | SnapshotError::UnsupportedVersion { .. } => e.to_string(),
    };
    facade_error(
        py,
        &SNAPSHOT_ERROR,
        "SnapshotError",
        message,
        |_| Ok(()),
        value_error,
    )
}

/// A [`BudgetExhausted`] as `seawall.BudgetExhausted`, with `remaining` and `min_to_start` in
/// seconds.
pub(crate) fn budget_exhausted(py: Python<'_>, e: &BudgetExhausted) -> PyErr {
    facade_error(
        py,
        &BUDGET_EXHAUSTED,
        "BudgetExhausted",
        e.to_string(),
        |kw| {
            kw.set_item("remaining", e.remaining.as_secs_f64())?;
            kw.set_item("min_to_start", e.min_to_start.as_secs_f64())
        },
        // Without the facade there is no better builtin: the deadline is, in effect, reached.
        pyo3::exceptions::PyTimeoutError::new_err,
    )
}

/// A [`HeaderError`] as `seawall.InvalidHeaderError` (a `ValueError`).
pub(crate) fn header_error(py: Python<'_>, e: &HeaderError) -> PyErr {
    facade_error(
        py,
        &INVALID_HEADER_ERROR,
        "InvalidHeaderError",
        e.to_string(),
        |kw| {
            kw.set_item("header", e.header)?;
            kw.set_item("value", &e.value)?;
            kw.set_item("reason", e.reason)
        },
        value_error,
    )
}

/// A [`PoolError`] as a fresh instance of the matching `seawall` exception (not raised):
/// `PoolTimeout` (also a `TimeoutError`), `PoolOverloaded`, `ConnectFailed`,
/// `DatabaseUnavailable`, `BudgetExhausted` or `PoolClosed`, with the error's numbers as
/// attributes in seconds. The message is the core's.
pub(crate) fn pool_error(py: Python<'_>, e: &PoolError) -> PyErr {
    let message = e.to_string();
    match e {
        PoolError::Timeout {
            waited,
            in_use,
            idle,
            waiting,
            oldest_checkout_age,
        } => facade_error(
            py,
            &POOL_TIMEOUT,
            "PoolTimeout",
            message,
            |kw| {
                kw.set_item("waited", waited.as_secs_f64())?;
                kw.set_item("in_use", in_use)?;
                kw.set_item("idle", idle)?;
                kw.set_item("waiting", waiting)?;
                kw.set_item(
                    "oldest_checkout_age",
                    oldest_checkout_age.map(|d| d.as_secs_f64()),
                )
            },
            pyo3::exceptions::PyTimeoutError::new_err,
        ),
        PoolError::Overloaded {
            waiting,
            max_waiters,
        } => facade_error(
            py,
            &POOL_OVERLOADED,
            "PoolOverloaded",
            message,
            |kw| {
                kw.set_item("waiting", waiting)?;
                kw.set_item("max_waiters", max_waiters)
            },
            runtime_error,
        ),
        PoolError::ConnectFailed { error, attempts } => facade_error(
            py,
            &CONNECT_FAILED,
            "ConnectFailed",
            message,
            |kw| {
                kw.set_item("error", error)?;
                kw.set_item("attempts", attempts)
            },
            runtime_error,
        ),
        PoolError::DatabaseUnavailable {
            retry_after,
            last_error,
        } => facade_error(
            py,
            &DATABASE_UNAVAILABLE,
            "DatabaseUnavailable",
            message,
            |kw| {
                kw.set_item("retry_after", retry_after.map(|d| d.as_secs_f64()))?;
                kw.set_item("last_error", last_error)
            },
            runtime_error,
        ),
        PoolError::BudgetExhausted(b) => budget_exhausted(py, b),
        PoolError::Closed => facade_error(
            py,
            &POOL_CLOSED,
            "PoolClosed",
            message,
            |_| Ok(()),
            runtime_error,
        ),
    }
}

fn runtime_error(message: String) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(message)
}

/// A value of the wrong Python type for `core_field`: `TypeError` naming the keyword, what it
/// accepts and the type it got (`failure_rate_threshold must be a number, got str`).
pub(crate) fn type_error(
    fields: Fields,
    core_field: &str,
    expected: &str,
    got: &Bound<'_, PyAny>,
) -> PyErr {
    let type_name = got
        .get_type()
        .qualname()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "{} must be {expected}, got {type_name}",
        fields.py(core_field)
    ))
}

/// A clock reading the core cannot use (NaN, infinite or negative).
pub(crate) fn clock_error(reading: f64) -> PyErr {
    PyValueError::new_err(format!(
        "the clock must return finite, non-negative monotonic seconds, got {reading}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seawall_core::{Backoff, BreakerConfig, FieldKind, RetryConfig};
    use std::time::Duration;

    #[test]
    fn fields_use_python_keywords() {
        let b = BREAKER_FIELDS;
        assert_eq!(b.py("window.size"), "window_size");
        assert_eq!(b.py("window.duration"), "window_duration");
        assert_eq!(b.py("window.buckets"), "window_buckets");
        assert_eq!(b.py("backoff.multiplier"), "backoff_multiplier");
        assert_eq!(b.py("backoff.max_open_duration"), "max_open_duration");
        assert_eq!(b.py("backoff.jitter"), "backoff_jitter");
        assert_eq!(b.py("open_duration"), "open_duration");
        assert_eq!(b.py("failure_rate_threshold"), "failure_rate_threshold");
        // The same core field, another class, another keyword.
        assert_eq!(RETRY_FIELDS.py("backoff.multiplier"), "multiplier");
        assert_eq!(RETRY_FIELDS.py("backoff.cap"), "cap");
        assert_eq!(RETRY_FIELDS.py("retry_budget.ttl"), "ttl");
        assert_eq!(BUDGET_FIELDS.py("max_timeout"), "max_timeout");
        assert_eq!(WATCHDOG_FIELDS.py("trend_window"), "trend_window");
    }

    #[test]
    fn pool_fields_use_python_keywords_and_the_breaker_is_prefixed() {
        assert_eq!(POOL_FIELDS.py("create_backoff.base"), "create_backoff_base");
        assert_eq!(POOL_FIELDS.py("create_backoff.cap"), "create_backoff_cap");
        assert_eq!(POOL_FIELDS.py("max_size"), "max_size");
        assert_eq!(POOL_BREAKER_FIELDS.py("window.size"), "breaker.window_size");
        assert_eq!(
            POOL_BREAKER_FIELDS.py("open_duration"),
            "breaker.open_duration"
        );
        let e = seawall_core::pool::PoolConfig::builder()
            .create_backoff(Duration::from_secs(1), Duration::from_millis(500))
            .build()
            .expect_err("cap below base");
        assert_eq!(
            POOL_FIELDS.config_message(&e),
            "create_backoff_cap must be at least create_backoff_base, got 500 ms"
        );
        let e = BreakerConfig::builder()
            .count_window(0)
            .build()
            .expect_err("an empty window");
        let m = POOL_BREAKER_FIELDS.config_message(&e);
        assert!(m.starts_with("breaker.window_size must be "), "{m}");
    }

    #[test]
    fn messages_name_the_keyword_and_the_range() {
        let e = BreakerConfig::builder()
            .time_window(Duration::from_millis(5), 10)
            .build()
            .expect_err("5 ms cannot hold 10 buckets");
        let m = BREAKER_FIELDS.config_message(&e);
        assert!(m.starts_with("window_buckets must be "), "{m}");
        assert!(m.contains("window_duration"), "{m}");
        assert!(!m.contains("window."), "{m}");

        let e = ConfigError {
            field: "failure_rate_threshold",
            expected: "a percentage in (0, 100]",
            got: "150".into(),
            kind: FieldKind::Number,
        };
        assert_eq!(
            BREAKER_FIELDS.config_message(&e),
            "failure_rate_threshold must be a percentage in (0, 100], got 150"
        );

        let e = RetryConfig::new(
            3,
            Backoff::Exponential {
                base: Duration::from_secs(1),
                cap: Duration::from_millis(10),
                multiplier: 2.0,
            },
            None,
        )
        .expect_err("cap below base");
        assert_eq!(
            RETRY_FIELDS.config_message(&e),
            "cap must be at least base, got 10 ms"
        );
    }
}
