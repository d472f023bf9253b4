//! Python values into the core's types, at the boundary and nowhere else.
//!
//! Only type checks happen here (a `str` where a number belongs is a `TypeError` naming the
//! keyword); every range check is the core's, through its own conversions
//! (`duration_from_secs`, `timeout_from_secs`, `count_from_f64`) or its constructors. Each
//! function takes the [`Fields`] table of the class being built, so errors name that class's
//! keyword.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use seawall_core::budget::timeout_from_secs;
use seawall_core::{ConfigError, FieldKind, Timestamp};

use crate::error::{Fields, clock_error, config_error, type_error};

/// A clock reading in seconds as the core's timestamp.
pub(crate) fn timestamp(secs: f64) -> PyResult<Timestamp> {
    Timestamp::from_secs_f64(secs).ok_or_else(|| clock_error(secs))
}

/// `repr(v)`, for error messages.
pub(crate) fn repr(v: &Bound<'_, PyAny>) -> String {
    v.repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string())
}

/// `None` as `None`, anything else as a value to check.
pub(crate) fn optional<'a, 'py>(v: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, PyAny>> {
    (!v.is_none()).then_some(v)
}

/// A Python number (int or float, not bool) as `f64`. Ints too large for a float become
/// infinities so that the core rejects them as out of range rather than this failing oddly.
pub(crate) fn number(
    fields: Fields,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>() {
        return Err(type_error(fields, core_field, "a number", v));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(f.value());
    }
    if v.is_instance_of::<PyInt>() {
        return match v.extract::<f64>() {
            Ok(x) => Ok(x),
            Err(_) if v.lt(0)? => Ok(f64::NEG_INFINITY),
            Err(_) => Ok(f64::INFINITY),
        };
    }
    Err(type_error(fields, core_field, "a number", v))
}

/// Seconds as a configured duration, through the breaker's conversion (NaN, infinities,
/// negatives, more than 24 h).
pub(crate) fn duration(
    py: Python<'_>,
    fields: Fields,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<Duration> {
    let secs = number(fields, core_field, v)?;
    seawall_core::breaker::duration_from_secs(core_field, secs)
        .map_err(|e| config_error(py, fields, &e))
}

/// Seconds as a timeout, through the budget's conversion: anything from 0 to 24 h is accepted
/// (values above the policy maximum are clamped by the policy, not refused here).
pub(crate) fn timeout(
    py: Python<'_>,
    fields: Fields,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<Duration> {
    let secs = number(fields, core_field, v)?;
    timeout_from_secs(core_field, secs).map_err(|e| config_error(py, fields, &e))
}

/// A count, through the core's conversion (fractions, negatives, NaN). An integral float such as
/// `10.0` is accepted, as it is in JavaScript.
pub(crate) fn count(
    py: Python<'_>,
    fields: Fields,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<u32> {
    let n = number(fields, core_field, v)?;
    seawall_core::breaker::count_from_f64(core_field, n).map_err(|e| config_error(py, fields, &e))
}

/// One of `options`, as the `'static` option it matched.
pub(crate) fn choice(
    py: Python<'_>,
    fields: Fields,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
    options: &[&'static str],
    expected: &'static str,
) -> PyResult<&'static str> {
    let Ok(s) = v.cast::<PyString>() else {
        return Err(type_error(fields, core_field, "a str", v));
    };
    let s = s.to_cow()?;
    if let Some(found) = options.iter().find(|o| **o == &*s) {
        return Ok(found);
    }
    Err(config_error(
        py,
        fields,
        &ConfigError {
            field: core_field,
            expected,
            got: repr(v),
            kind: FieldKind::Choice,
        },
    ))
}

/// Rejects a value given for a field that the chosen kind ignores: `window_duration` with a
/// count window is a mistake the user would otherwise never hear about.
pub(crate) fn only_with(
    py: Python<'_>,
    fields: Fields,
    core_field: &'static str,
    v: &Bound<'_, PyAny>,
    expected: &'static str,
) -> PyResult<()> {
    let Some(v) = optional(v) else {
        return Ok(());
    };
    Err(config_error(
        py,
        fields,
        &ConfigError {
            field: core_field,
            expected,
            got: repr(v),
            kind: FieldKind::Duration,
        },
    ))
}

/// A jitter seed: `None` or an integer in `[0, 2^64)`. An integral float is accepted like any
/// count (JSON and JavaScript write seeds as plain numbers).
pub(crate) fn seed(py: Python<'_>, fields: Fields, v: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    let Some(v) = optional(v) else {
        return Ok(None);
    };
    let out_of_range = || {
        config_error(
            py,
            fields,
            &ConfigError {
                field: "seed",
                expected: "an integer in [0, 2**64)",
                got: repr(v),
                kind: FieldKind::Number,
            },
        )
    };
    if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() {
        return v.extract::<u64>().map(Some).map_err(|_| out_of_range());
    }
    let x = number(fields, "seed", v)?;
    // 2^64 is exactly representable, so `x < 2^64` admits every float that fits in a u64.
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 18_446_744_073_709_551_616.0 {
        // Integral and in range, so the cast is exact.
        Ok(Some(x as u64))
    } else {
        Err(out_of_range())
    }
}
