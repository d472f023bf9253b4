//! Every core error, turned into the Python exception a user of `seawall` expects.
//!
//! The exception classes themselves live in `seawall/_errors.py`, because `InvalidConfigError`
//! and `SnapshotError` subclass both `SeawallError` and the builtin `ValueError`, which a class
//! defined from Rust cannot do. They are imported once and cached. Field names are re-spelled
//! from the core's (`window.size`) to the keyword arguments of `CircuitBreaker` (`window_size`)
//! here and nowhere else.
//!
//! A rejected call ([`seawall_core::Rejected`]) is not an error at this boundary: `acquire`
//! returns it as a plain value and the facade raises a fresh `CircuitOpenError`, so that no
//! exception object is ever shared between raises.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use seawall_core::{ConfigError, SnapshotError};

/// The core's field names and the keyword argument each one is in Python. Fields missing here
/// are spelled the same in both.
const PY_FIELDS: &[(&str, &str)] = &[
    ("window.kind", "window"),
    ("window.size", "window_size"),
    ("window.duration", "window_duration"),
    ("window.buckets", "window_buckets"),
    ("backoff.kind", "backoff"),
    ("backoff.multiplier", "backoff_multiplier"),
    ("backoff.max_open_duration", "max_open_duration"),
    ("backoff.jitter", "backoff_jitter"),
];

/// The Python keyword argument for a core field name.
pub(crate) fn py_field(core_field: &str) -> &str {
    PY_FIELDS
        .iter()
        .find(|(core, _)| *core == core_field)
        .map_or(core_field, |(_, py)| py)
}

/// `text` with every core field name in it re-spelled for Python (the range of
/// `window.buckets` mentions `window.duration`, for instance).
fn respell(text: &str) -> String {
    PY_FIELDS
        .iter()
        .fold(text.to_owned(), |acc, (core, py)| acc.replace(core, py))
}

/// The message of an out-of-range configuration value, in Python's spelling.
pub(crate) fn config_message(e: &ConfigError) -> String {
    format!(
        "{} must be {}, got {}",
        py_field(e.field),
        respell(e.expected),
        e.got
    )
}

static INVALID_CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SNAPSHOT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Instantiates `seawall._errors.<name>` with `message` and keyword attributes; falls back to a
/// plain `ValueError` if the facade cannot be imported (the native module used on its own), so
/// that a bad value never turns into an `ImportError`.
fn facade_error(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: String,
    attrs: &[(&str, Option<&str>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = cell.import(py, "seawall._errors", name)?;
        let kwargs = PyDict::new(py);
        for (key, value) in attrs {
            kwargs.set_item(key, value)?;
        }
        Ok(PyErr::from_value(cls.call((&message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|_| PyValueError::new_err(message.clone()))
}

/// A [`ConfigError`] as `seawall.InvalidConfigError` (a `ValueError`) whose `field` is the
/// Python keyword.
pub(crate) fn config_error(py: Python<'_>, e: &ConfigError) -> PyErr {
    let expected = respell(e.expected);
    facade_error(
        py,
        &INVALID_CONFIG_ERROR,
        "InvalidConfigError",
        config_message(e),
        &[
            ("field", Some(py_field(e.field))),
            ("expected", Some(&expected)),
            ("got", Some(&e.got)),
        ],
    )
}

/// A [`SnapshotError`] as `seawall.SnapshotError` (a `ValueError`).
pub(crate) fn snapshot_error(py: Python<'_>, e: &SnapshotError) -> PyErr {
    // Both variants carry their explanation in their message; listing them keeps a new variant
    // from slipping through unnoticed.
    let message = match e {
        SnapshotError::Malformed(_) | SnapshotError::UnsupportedVersion { .. } => e.to_string(),
    };
    facade_error(py, &SNAPSHOT_ERROR, "SnapshotError", message, &[])
}

/// A value of the wrong Python type for `core_field`: `TypeError` naming the keyword, what it
/// accepts and the type it got (`failure_rate_threshold must be a number, got str`).
pub(crate) fn type_error(core_field: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let type_name = got
        .get_type()
        .qualname()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "{} must be {expected}, got {type_name}",
        py_field(core_field)
    ))
}

/// A clock reading the core cannot use (NaN, infinite or negative).
pub(crate) fn clock_error(reading: f64) -> PyErr {
    PyValueError::new_err(format!(
        "the breaker's clock must return finite, non-negative monotonic seconds, got {reading}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seawall_core::{BreakerConfig, FieldKind};
    use std::time::Duration;

    #[test]
    fn fields_use_python_keywords() {
        assert_eq!(py_field("window.size"), "window_size");
        assert_eq!(py_field("window.duration"), "window_duration");
        assert_eq!(py_field("window.buckets"), "window_buckets");
        assert_eq!(py_field("backoff.multiplier"), "backoff_multiplier");
        assert_eq!(py_field("backoff.max_open_duration"), "max_open_duration");
        assert_eq!(py_field("backoff.jitter"), "backoff_jitter");
        assert_eq!(py_field("open_duration"), "open_duration");
        assert_eq!(py_field("failure_rate_threshold"), "failure_rate_threshold");
    }

    #[test]
    fn messages_name_the_keyword_and_the_range() {
        let e = BreakerConfig::builder()
            .time_window(Duration::from_millis(5), 10)
            .build()
            .expect_err("5 ms cannot hold 10 buckets");
        let m = config_message(&e);
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
            config_message(&e),
            "failure_rate_threshold must be a percentage in (0, 100], got 150"
        );
    }
}
