//! Every error this binding throws, and every core error kind, mapped in one place.
//!
//! The core names configuration fields in Rust's spelling (`open_duration`, `window.size`); a
//! JavaScript user wrote `openDurationMs` and `window.size`, so messages and the `field` property
//! are re-spelled here: each dotted segment camelCased, and `Ms` appended to durations (which JS
//! takes as millisecond numbers). The JS classes (`SnapshotError`, `InvalidHeaderError`,
//! `BreakerOpenError`, …) live in the facade; errors thrown from here carry the `code` the
//! facade and users match on.
//!
//! Core errors and where they surface:
//! - [`ConfigError`]: options → [`config_error`]; method arguments → [`argument_error`].
//! - [`SnapshotError`] → [`snapshot_error`]; [`HeaderError`] → [`header_error`].
//! - `BudgetExhausted` and `GiveUpReason` are decisions, not failures of the call into Rust:
//!   the hot paths return them as numbers (see `budget.rs`, `retry.rs`) and the facade builds
//!   `BudgetExhaustedError` / `RetryBudgetExhaustedError` itself, without a native exception.
//! - `PoolError` is a decision too: `pool.rs` hands it over as data ([`pool_error`]) and the
//!   facade builds `PoolTimeoutError`, `PoolOverloadedError`, `ConnectFailedError`,
//!   `DatabaseUnavailableError`, `BudgetExhaustedError` or `PoolClosedError` from its `kind`.

use napi::{Env, JsRangeError, JsTypeError, JsValue, bindgen_prelude::JsObjectValue};
use napi_derive::napi;
use seawall_core::pool::PoolError;
use seawall_core::{ConfigError, FieldKind, HeaderError, SnapshotError};

use crate::options::millis;

/// `code` of every error about options.
pub const INVALID_CONFIG: &str = "SEAWALL_INVALID_CONFIG";
/// `code` of a snapshot that cannot be restored.
pub const INVALID_SNAPSHOT: &str = "SEAWALL_INVALID_SNAPSHOT";
/// `code` of a clock reading the core cannot use (NaN, negative, infinite).
pub const INVALID_CLOCK: &str = "SEAWALL_INVALID_CLOCK";
/// `code` of a bad argument to a method (a negative cap, a NaN retry-after).
pub const INVALID_ARGUMENT: &str = "SEAWALL_INVALID_ARGUMENT";
/// `code` of a received deadline header that is not a timeout.
pub const INVALID_HEADER: &str = "SEAWALL_INVALID_HEADER";

/// Core fields that hold durations. The core tags the field of a [`ConfigError`] with its kind,
/// but `expected` may mention another field by name (`at least open_duration`), and that one
/// has to be re-spelled too.
const DURATION_FIELDS: &[&str] = &[
    "slow_call_duration",
    "window.duration",
    "open_duration",
    "backoff.max_open_duration",
    "max_half_open_duration",
    "max_timeout",
    "min_to_start",
    "backoff.delay",
    "backoff.base",
    "backoff.cap",
    "retry_budget.ttl",
    "acquire_timeout",
    "create_timeout",
    "idle_timeout",
    "max_lifetime",
    "validate_after",
    "leak_threshold",
    "create_backoff.base",
    "create_backoff.cap",
    "interval",
];

/// Core fields that are plain numbers and that an `expected` text may mention by name
/// (`an integer between 0 and max_size`, `a percentage in (warn_percent, 100]`).
const NUMBER_FIELDS: &[&str] = &["max_size", "warn_percent"];

/// A core field name in JavaScript's spelling: `backoff.max_open_duration` (a duration) is
/// `backoff.maxOpenDurationMs`.
pub fn js_field(core_field: &str, kind: FieldKind) -> String {
    let mut out = core_field
        .split('.')
        .map(camel_case)
        .collect::<Vec<_>>()
        .join(".");
    if kind == FieldKind::Duration {
        out.push_str("Ms");
    }
    out
}

fn camel_case(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Re-spells the field names a core `expected` text mentions. A duration mentioned "in
/// milliseconds" loses those words, since the `Ms` suffix now says it.
fn js_expected(expected: &str) -> String {
    let mut out = expected.to_owned();
    for field in DURATION_FIELDS {
        let js = js_field(field, FieldKind::Duration);
        out = out.replace(&format!("{field} in milliseconds"), &js);
        out = replace_word(&out, field, &js);
    }
    for field in NUMBER_FIELDS {
        out = replace_word(&out, field, &js_field(field, FieldKind::Number));
    }
    out
}

/// Replaces `word` where it stands alone (so `open_duration` does not match inside
/// `max_open_duration`).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// A rejected value as a JavaScript user would write it: Rust prints infinity as `inf` and
/// some durations in seconds (`1.5 s`), JavaScript users passed `Infinity` and milliseconds.
fn js_got(got: &str, kind: FieldKind) -> String {
    let got = if let Some(rest) = got.strip_prefix("-inf") {
        format!("-Infinity{rest}")
    } else if let Some(rest) = got.strip_prefix("inf") {
        format!("Infinity{rest}")
    } else {
        got.to_owned()
    };
    if kind == FieldKind::Duration
        && let Some(secs) = got.strip_suffix(" s").and_then(|s| s.parse::<f64>().ok())
    {
        // Rounded to the nanosecond so that 1.001 s reads 1001 ms, not 1000.9999999999999 ms.
        let ms = (secs * 1e9).round() / 1e6;
        return format!("{ms} ms");
    }
    got
}

/// A core [`ConfigError`] as the RangeError a JavaScript user sees:
/// `openDurationMs must be a duration between 1 ms and 24 h, got 0 ms`.
pub fn config_error(env: &Env, e: &ConfigError) -> napi::Error {
    core_range_error(env, INVALID_CONFIG, e)
}

/// A core [`ConfigError`] about a method argument rather than an option (`budget.child(-1)`):
/// the same RangeError, with `code: 'SEAWALL_INVALID_ARGUMENT'`.
pub fn argument_error(env: &Env, e: &ConfigError) -> napi::Error {
    core_range_error(env, INVALID_ARGUMENT, e)
}

/// A core [`ConfigError`] about an option of a nested options object, named from the outer
/// object (`prefix` is its JS path, like `breaker.`): `breaker.openDurationMs must be …`.
pub fn config_error_at(env: &Env, prefix: &str, e: &ConfigError) -> napi::Error {
    core_range_error_at(env, INVALID_CONFIG, prefix, e)
}

fn core_range_error(env: &Env, code: &str, e: &ConfigError) -> napi::Error {
    core_range_error_at(env, code, "", e)
}

fn core_range_error_at(env: &Env, code: &str, prefix: &str, e: &ConfigError) -> napi::Error {
    let field = format!("{prefix}{}", js_field(e.field, e.kind));
    let message = format!(
        "{field} must be {}, got {}",
        js_expected(e.expected),
        js_got(&e.got, e.kind)
    );
    range_error(env, code, &message, Some(&field))
}

/// A header value the core refused. The facade turns it into its `InvalidHeaderError`;
/// `header`, `value` and `reason` say which format, what was received and what is wrong.
pub fn header_error(env: &Env, e: &HeaderError) -> napi::Error {
    let error = napi::JsError::from(napi::Error::new(INVALID_HEADER, e.to_string()));
    with_properties(
        error.into_unknown(*env),
        &[
            ("header", e.header),
            ("value", &e.value),
            ("reason", e.reason),
        ],
    )
}

/// Why the pool refused or failed an acquire, as data for the facade's error classes. Numbers
/// are milliseconds; absent fields do not apply to this `kind`.
#[napi(object)]
#[derive(Default)]
pub struct NativePoolError {
    /// `timeout`, `overloaded`, `connect_failed`, `database_unavailable`, `budget_exhausted` or
    /// `closed` (the core's `PoolError::kind`).
    pub kind: String,
    /// The core's message, the same in every language.
    pub message: String,
    /// timeout: how long the caller waited.
    pub waited_ms: Option<f64>,
    /// timeout: connections checked out.
    pub in_use: Option<u32>,
    /// timeout: connections idle.
    pub idle: Option<u32>,
    /// timeout, overloaded: callers waiting.
    pub waiting: Option<u32>,
    /// timeout: how long the longest-held checkout had been out, if any was.
    pub oldest_checkout_age_ms: Option<f64>,
    /// overloaded: the queue's bound.
    pub max_waiters: Option<u32>,
    /// connect_failed: the last attempt's error.
    pub error: Option<String>,
    /// connect_failed: failed attempts in a row.
    pub attempts: Option<u32>,
    /// database_unavailable: when attempts resume, if known.
    pub retry_after_ms: Option<f64>,
    /// database_unavailable: the last connection error seen, if any.
    pub last_error: Option<String>,
    /// budget_exhausted: the time the budget had left.
    pub remaining_ms: Option<f64>,
    /// budget_exhausted: the least time a call needs to start.
    pub min_to_start_ms: Option<f64>,
}

/// A core [`PoolError`] as data; every variant is mapped here.
pub fn pool_error(e: &PoolError) -> NativePoolError {
    let mut out = NativePoolError {
        kind: e.kind().to_owned(),
        message: e.to_string(),
        ..NativePoolError::default()
    };
    match e {
        PoolError::Timeout {
            waited,
            in_use,
            idle,
            waiting,
            oldest_checkout_age,
        } => {
            out.waited_ms = Some(millis(*waited));
            out.in_use = Some(*in_use);
            out.idle = Some(*idle);
            out.waiting = Some(*waiting);
            out.oldest_checkout_age_ms = oldest_checkout_age.map(millis);
        }
        PoolError::Overloaded {
            waiting,
            max_waiters,
        } => {
            out.waiting = Some(*waiting);
            out.max_waiters = Some(*max_waiters);
        }
        PoolError::ConnectFailed { error, attempts } => {
            out.error = Some(error.clone());
            out.attempts = Some(*attempts);
        }
        PoolError::DatabaseUnavailable {
            retry_after,
            last_error,
        } => {
            out.retry_after_ms = retry_after.map(millis);
            out.last_error = last_error.clone();
        }
        PoolError::BudgetExhausted(b) => {
            out.remaining_ms = Some(millis(b.remaining));
            out.min_to_start_ms = Some(millis(b.min_to_start));
        }
        PoolError::Closed => {}
    }
    out
}

/// An option of the wrong JavaScript type: `failureRateThreshold must be a number, got string`.
pub fn option_type_error(env: &Env, field: &str, expected: &str, got: &str) -> napi::Error {
    let message = format!("{field} must be {expected}, got {got}");
    type_error(env, INVALID_CONFIG, &message, Some(field))
}

/// A string option outside its set of names: `window.kind must be 'count' or 'time', got 'x'`.
pub fn option_choice_error(env: &Env, field: &str, expected: &str, got: &str) -> napi::Error {
    let message = format!("{field} must be {expected}, got '{got}'");
    range_error(env, INVALID_CONFIG, &message, Some(field))
}

/// A snapshot the core refused. The facade turns it into its `SnapshotError` class; `reason`
/// lets code tell a corrupt snapshot from one written by a newer Seawall.
pub fn snapshot_error(env: &Env, e: &SnapshotError) -> napi::Error {
    let reason = match e {
        SnapshotError::Malformed(_) => "malformed",
        SnapshotError::UnsupportedVersion { .. } => "unsupported_version",
    };
    let error = napi::JsError::from(napi::Error::new(INVALID_SNAPSHOT, e.to_string()));
    with_properties(error.into_unknown(*env), &[("reason", reason)])
}

/// A clock reading the core cannot place on its timeline.
pub fn clock_error(env: &Env, now_ms: f64) -> napi::Error {
    let message = format!(
        "clock.now() must return a finite, non-negative number of milliseconds, got {}",
        js_number(now_ms)
    );
    range_error(env, INVALID_CLOCK, &message, None)
}

/// An argument of the private native surface that only a caller bypassing the facade can get
/// wrong; still an exception, never a panic.
pub fn internal_argument_error(env: &Env, message: &str) -> napi::Error {
    range_error(env, "SEAWALL_INTERNAL", message, None)
}

fn js_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        v.to_string()
    }
}

fn range_error(env: &Env, code: &str, message: &str, field: Option<&str>) -> napi::Error {
    let error = JsRangeError::from(napi::Error::new(code, message));
    with_properties(error.into_unknown(*env), &field_property(field))
}

fn type_error(env: &Env, code: &str, message: &str, field: Option<&str>) -> napi::Error {
    let error = JsTypeError::from(napi::Error::new(code, message));
    with_properties(error.into_unknown(*env), &field_property(field))
}

fn field_property(field: Option<&str>) -> Vec<(&'static str, &str)> {
    field.map(|f| ("field", f)).into_iter().collect()
}

/// Adds string properties to a freshly built JS error and wraps it so napi throws that very
/// object. Should a property fail to attach (only when the engine is tearing down), the error
/// is still thrown without it.
fn with_properties(error: napi::Unknown<'_>, props: &[(&str, &str)]) -> napi::Error {
    if let Ok(mut object) = error.coerce_to_object() {
        for (key, value) in props {
            let _ = object.set_named_property(key, *value);
        }
    }
    napi::Error::from(error)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fields_are_camel_cased_with_ms_on_durations() {
        assert_eq!(
            js_field("open_duration", FieldKind::Duration),
            "openDurationMs"
        );
        assert_eq!(
            js_field("window.duration", FieldKind::Duration),
            "window.durationMs"
        );
        assert_eq!(
            js_field("backoff.max_open_duration", FieldKind::Duration),
            "backoff.maxOpenDurationMs"
        );
        assert_eq!(js_field("window.size", FieldKind::Number), "window.size");
        assert_eq!(
            js_field("failure_rate_threshold", FieldKind::Number),
            "failureRateThreshold"
        );
    }

    #[test]
    fn expected_texts_name_fields_in_js_spelling() {
        assert_eq!(
            js_expected("at least open_duration"),
            "at least openDurationMs"
        );
        assert_eq!(
            js_expected(
                "at most window.duration in milliseconds (each bucket spans at least 1 ms)"
            ),
            "at most window.durationMs (each bucket spans at least 1 ms)"
        );
        assert_eq!(
            js_expected("at least backoff.max_open_duration"),
            "at least backoff.maxOpenDurationMs"
        );
        assert_eq!(
            js_expected("a duration between 0 and max_timeout"),
            "a duration between 0 and maxTimeoutMs"
        );
        assert_eq!(
            js_expected("at least backoff.base"),
            "at least backoff.baseMs"
        );
        assert_eq!(
            js_field("retry_budget.ttl", FieldKind::Duration),
            "retryBudget.ttlMs"
        );
        assert_eq!(
            js_field("retry_budget.min_per_second", FieldKind::Number),
            "retryBudget.minPerSecond"
        );
        assert_eq!(
            js_expected("a percentage in (0, 100]"),
            "a percentage in (0, 100]"
        );
    }

    #[test]
    fn pool_fields_read_as_javascript() {
        assert_eq!(
            js_field("create_backoff.base", FieldKind::Duration),
            "createBackoff.baseMs"
        );
        assert_eq!(
            js_field("acquire_timeout", FieldKind::Duration),
            "acquireTimeoutMs"
        );
        assert_eq!(js_field("max_waiters", FieldKind::Number), "maxWaiters");
        assert_eq!(
            js_expected("at least create_backoff.base"),
            "at least createBackoff.baseMs"
        );
        assert_eq!(
            js_expected("an integer between 0 and max_size"),
            "an integer between 0 and maxSize"
        );
    }

    #[test]
    fn watchdog_fields_read_as_javascript() {
        assert_eq!(
            js_expected("a duration between 10 ms and interval"),
            "a duration between 10 ms and intervalMs"
        );
        assert_eq!(
            js_expected("a percentage in (warn_percent, 100]"),
            "a percentage in (warnPercent, 100]"
        );
    }

    #[test]
    fn pool_errors_carry_their_numbers() {
        let e = pool_error(&PoolError::Timeout {
            waited: Duration::from_millis(50),
            in_use: 2,
            idle: 0,
            waiting: 3,
            oldest_checkout_age: None,
        });
        assert_eq!(e.kind, "timeout");
        assert_eq!(e.waited_ms, Some(50.0));
        assert_eq!((e.in_use, e.idle, e.waiting), (Some(2), Some(0), Some(3)));
        assert_eq!(e.oldest_checkout_age_ms, None);
        let e = pool_error(&PoolError::DatabaseUnavailable {
            retry_after: Some(Duration::from_micros(1500)),
            last_error: Some("refused".into()),
        });
        assert_eq!(e.retry_after_ms, Some(1.5));
        assert_eq!(e.last_error.as_deref(), Some("refused"));
        assert!(e.message.contains("database unavailable"), "{}", e.message);
    }

    #[test]
    fn rejected_values_read_as_javascript() {
        assert_eq!(js_got("inf", FieldKind::Number), "Infinity");
        assert_eq!(js_got("-inf ms", FieldKind::Duration), "-Infinity ms");
        assert_eq!(js_got("1.5 s", FieldKind::Duration), "1500 ms");
        assert_eq!(js_got("1.001 s", FieldKind::Duration), "1001 ms");
        assert_eq!(js_got("0.5 ms", FieldKind::Duration), "0.5 ms");
        assert_eq!(js_got("150", FieldKind::Number), "150");
        assert_eq!(js_got("inf ms", FieldKind::Duration), "Infinity ms");
        assert_eq!(js_got("600 s", FieldKind::Duration), "600000 ms");
        assert_eq!(js_got("NaN", FieldKind::Number), "NaN");
        assert_eq!(js_number(f64::NAN), "NaN");
        assert_eq!(js_number(f64::NEG_INFINITY), "-Infinity");
    }
}
