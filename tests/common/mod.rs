//! Helpers shared by the conformance replayers (`tests/conformance.rs` for breakers,
//! `tests/conformance_budget.rs` for budgets and retries, `tests/conformance_pool.rs` for pools):
//! finding the vector files, running a directory and collecting every disagreement, and reading
//! JSON strictly.
//!
//! Strictness is the point: an unknown key is reported rather than skipped, because a misspelt
//! `expect` would otherwise turn a check into a step that cannot fail.

use std::fmt::Debug;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use seawall::{ConfigError, Timestamp};
use serde_json::{Map, Value};

/// Replays every `*.json` file of `tests/conformance/<subdir>` with `run_file`, and panics with
/// the list of files that disagree (each message names the step). An empty directory fails: a
/// suite that checks nothing must not pass.
pub fn run_directory(subdir: &str, run_file: fn(&Path) -> Result<(), String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(subdir);
    let files = vector_files(&dir);
    assert!(
        !files.is_empty(),
        "no conformance vectors found in {}: an empty directory must not pass",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        if let Err(e) = run_file(path) {
            failures.push(format!("{name}: {e}"));
        }
    }
    if !failures.is_empty() {
        let mut report = format!(
            "{} of {} conformance vectors disagree:\n",
            failures.len(),
            files.len()
        );
        for f in &failures {
            let _ = writeln!(report, "  - {f}");
        }
        panic!("{report}");
    }
    eprintln!("{} conformance vectors agree", files.len());
}

fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read conformance directory {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// Reads a vector file as a JSON object.
pub fn read_vector(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
    match doc {
        Value::Object(map) => Ok(map),
        other => Err(format!("the file must be a JSON object, not {other}")),
    }
}

/// Reads a vector file whose top-level keys must be among `allowed` and whose `name` is a
/// string.
pub fn read_named(path: &Path, allowed: &[&str]) -> Result<Map<String, Value>, String> {
    let doc = read_vector(path)?;
    check_keys(&doc, allowed, "the file")?;
    match doc.get("name") {
        Some(Value::String(_)) => Ok(doc),
        _ => Err("the file needs a string `name`".into()),
    }
}

/// The top-level keys of a scenario with a `config` and either `steps` or `expect_error`.
#[allow(dead_code)] // the budget replayer's files have other keys
pub const SCENARIO_KEYS: &[&str] = &["name", "description", "config", "steps", "expect_error"];

/// An expectation written `[lo, hi]` (both numbers), named `what` in the error.
#[allow(dead_code)] // each replayer uses its own subset of these helpers
pub fn bounds(v: &Value, what: &str) -> Result<(f64, f64), String> {
    match v.as_array().map(Vec::as_slice) {
        Some([lo, hi]) => match (lo.as_f64(), hi.as_f64()) {
            (Some(lo), Some(hi)) => Ok((lo, hi)),
            _ => Err(format!("{what} must be [lo, hi], not {v}")),
        },
        _ => Err(format!("{what} must be [lo, hi], not {v}")),
    }
}

/// Reads a step's `t` (milliseconds, never decreasing) into the manual time; `now_ms` is the
/// previous reading and is updated.
pub fn read_time(t: &Value, now_ms: &mut f64) -> Result<Timestamp, String> {
    let ms = t
        .as_f64()
        .ok_or_else(|| format!("`t` must be a number of milliseconds, not {t}"))?;
    if ms < *now_ms {
        return Err(format!("`t` went backwards, from {now_ms} to {ms} ms"));
    }
    let ts = Timestamp::from_millis_f64(ms).ok_or_else(|| format!("bad time {ms} ms"))?;
    *now_ms = ms;
    Ok(ts)
}

// ---------------------------------------------------------------------------------------------
// Configuration errors

/// A configuration the library refused, in the vocabulary of the vectors.
#[derive(Debug)]
pub struct Invalid {
    pub field: String,
    /// `range` (the core's [`ConfigError`]) or `type` (a JSON value Rust cannot even express).
    pub kind: &'static str,
    pub message: String,
}

impl From<ConfigError> for Invalid {
    fn from(e: ConfigError) -> Self {
        Invalid {
            field: e.field.to_string(),
            kind: "range",
            message: e.to_string(),
        }
    }
}

pub fn type_error(field: &str, expected: &str, got: &Value) -> Invalid {
    Invalid {
        field: field.to_string(),
        kind: "type",
        message: format!("{field} must be {expected}, got {got}"),
    }
}

/// Finishes a vector once its configuration is built: a validation scenario (`expect_error`)
/// checks the library's refusal with [`check_config_error`]; a scenario with `steps` replays them.
pub fn check_or_replay<C: Debug>(
    doc: &Map<String, Value>,
    built: Result<C, Invalid>,
    replay: impl FnOnce(C, &[Value]) -> Result<(), String>,
) -> Result<(), String> {
    match (doc.get("expect_error"), doc.get("steps")) {
        (Some(expected), None) => check_config_error(built, expected),
        (None, Some(Value::Array(steps))) => {
            let config = built.map_err(|e| {
                format!(
                    "configuration rejected ({} error on `{}`): {}",
                    e.kind, e.field, e.message
                )
            })?;
            replay(config, steps)
        }
        _ => Err("the file needs either `steps` (a list) or `expect_error`, not both".into()),
    }
}

/// Checks a validation scenario: `built` must have failed on `expected.field` with
/// `expected.kind`, and the message must name the field.
pub fn check_config_error<T: Debug>(
    built: Result<T, Invalid>,
    expected: &Value,
) -> Result<(), String> {
    let expected = as_object(expected, "expect_error")?;
    check_keys(expected, &["field", "kind"], "expect_error")?;
    let field = str_field(expected, "field", "expect_error")?;
    let kind = str_field(expected, "kind", "expect_error")?;
    if kind != "range" && kind != "type" {
        return Err(format!(
            "expect_error.kind must be `range` or `type`, not {kind:?}"
        ));
    }
    match built {
        Ok(config) => Err(format!(
            "expected a {kind} error on `{field}`, but the config was accepted: {config:?}"
        )),
        Err(e) if e.field == field && e.kind == kind => {
            if e.message.contains(field) {
                Ok(())
            } else {
                Err(format!(
                    "the {kind} error on `{field}` does not name the field: {:?}",
                    e.message
                ))
            }
        }
        Err(e) => Err(format!(
            "expected a {kind} error on `{field}`, got a {} error on `{}`: {}",
            e.kind, e.field, e.message
        )),
    }
}

/// A configuration number; anything else is a `type` error on `field`.
pub fn number(v: &Value, field: &'static str) -> Result<f64, Invalid> {
    v.as_f64().ok_or_else(|| type_error(field, "a number", v))
}

// ---------------------------------------------------------------------------------------------
// Small JSON helpers for reading the vectors strictly.

pub fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be a JSON object, not {v}"))
}

pub fn check_keys(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown key {k:?} in {what} (allowed: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

pub fn required_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a Value, String> {
    obj.get(key).ok_or_else(|| format!("{what} needs `{key}`"))
}

pub fn str_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a str, String> {
    required_field(obj, key, what)?
        .as_str()
        .ok_or_else(|| format!("`{key}` of {what} must be a string"))
}

pub fn expect_eq(what: &str, expected: &str, actual: &str) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!("expected {what} {expected:?}, got {actual:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Converting numbers through the core, and a breaker `config` object

/// A count (`max_size`, `window.size`, …) through the core's conversion, so that negative,
/// fractional and huge values are reported by the core as `range` errors on `field`; a value
/// that is not a number is a `type` error.
#[allow(dead_code)] // each replayer uses its own subset of these helpers
pub fn count(v: &Value, field: &'static str) -> Result<u32, Invalid> {
    Ok(seawall::breaker::count_from_f64(field, number(v, field)?)?)
}

/// A duration in milliseconds through the core's conversion (see [`count`]).
#[allow(dead_code)]
pub fn duration(v: &Value, field: &'static str) -> Result<std::time::Duration, Invalid> {
    Ok(seawall::breaker::duration_from_millis(
        field,
        number(v, field)?,
    )?)
}

/// A duration in milliseconds, or `null` for none.
#[allow(dead_code)]
pub fn optional_duration(
    v: &Value,
    field: &'static str,
) -> Result<Option<std::time::Duration>, Invalid> {
    match v {
        Value::Null => Ok(None),
        v => Ok(Some(duration(v, field)?)),
    }
}

/// A breaker configuration object, with the keys of a breaker vector's `config` (the format is
/// in `tests/conformance/README.md`). The pool vectors use it for the pool's own `breaker`; it
/// reads exactly what `tests/conformance.rs` reads.
#[allow(dead_code)]
pub mod breaker_config {
    use seawall::{BackoffConfig, BreakerConfig, WindowConfig};
    use serde_json::{Map, Value};

    use super::{Invalid, as_object, check_keys, count, duration, number, type_error};

    const KEYS: &[&str] = &[
        "failure_rate_threshold",
        "slow_call_rate_threshold",
        "slow_call_duration_ms",
        "window",
        "minimum_calls",
        "consecutive_failures",
        "open_duration_ms",
        "backoff",
        "half_open_calls",
        "max_half_open_duration_ms",
        "seed",
    ];

    /// Converts `v` (named `what` in messages) into a [`BreakerConfig`]. The outer `Err` is a
    /// malformed vector (an unknown key); the inner one is the library refusing the value.
    pub fn from_json(v: &Value, what: &str) -> Result<Result<BreakerConfig, Invalid>, String> {
        let obj = as_object(v, what)?;
        check_keys(obj, KEYS, what)?;
        check_variant_keys(
            obj,
            what,
            "window",
            &[("count", &["size"]), ("time", &["duration_ms", "buckets"])],
        )?;
        check_variant_keys(
            obj,
            what,
            "backoff",
            &[
                ("fixed", &[]),
                (
                    "exponential",
                    &["multiplier", "max_open_duration_ms", "jitter"],
                ),
            ],
        )?;
        Ok(build(obj))
    }

    /// Catches misspelt keys inside `window` / `backoff` of a known kind. Values of the wrong
    /// type and unknown kinds are left to the conversion, which reports them as the library
    /// would.
    fn check_variant_keys(
        config: &Map<String, Value>,
        what: &str,
        key: &str,
        variants: &[(&str, &[&str])],
    ) -> Result<(), String> {
        let Some(Value::Object(obj)) = config.get(key) else {
            return Ok(());
        };
        let kind = obj.get("kind").and_then(Value::as_str);
        for (name, keys) in variants {
            if kind == Some(*name) {
                let mut allowed = vec!["kind"];
                allowed.extend_from_slice(keys);
                return check_keys(obj, &allowed, &format!("{what}.{key} ({name})"));
            }
        }
        Ok(())
    }

    fn build(obj: &Map<String, Value>) -> Result<BreakerConfig, Invalid> {
        let mut b = BreakerConfig::builder();
        if let Some(v) = obj.get("failure_rate_threshold") {
            b = b.failure_rate_threshold(number(v, "failure_rate_threshold")?);
        }
        if let Some(v) = obj.get("slow_call_rate_threshold") {
            b = b.slow_call_rate_threshold(number(v, "slow_call_rate_threshold")?);
        }
        if let Some(v) = obj.get("slow_call_duration_ms") {
            b = b.slow_call_duration(super::optional_duration(v, "slow_call_duration")?);
        }
        if let Some(v) = obj.get("window") {
            b = b.window(window(v)?);
        }
        if let Some(v) = obj.get("minimum_calls") {
            b = b.minimum_calls(count(v, "minimum_calls")?);
        }
        if let Some(v) = obj.get("consecutive_failures") {
            let n = match v {
                Value::Null => None,
                v => Some(count(v, "consecutive_failures")?),
            };
            b = b.consecutive_failures(n);
        }
        if let Some(v) = obj.get("open_duration_ms") {
            b = b.open_duration(duration(v, "open_duration")?);
        }
        if let Some(v) = obj.get("backoff") {
            b = b.backoff(backoff(v)?);
        }
        if let Some(v) = obj.get("half_open_calls") {
            b = b.half_open_calls(count(v, "half_open_calls")?);
        }
        if let Some(v) = obj.get("max_half_open_duration_ms") {
            b = b.max_half_open_duration(super::optional_duration(v, "max_half_open_duration")?);
        }
        if let Some(v) = obj.get("seed") {
            b = b.seed(Some(super::seed(v)?));
        }
        Ok(b.build()?)
    }

    /// A sub-object field that must be present: absent reads as `undefined`, a type error.
    fn required<'a>(
        obj: &'a Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<&'a Value, Invalid> {
        obj.get(key)
            .ok_or_else(|| type_error(field, "present", &Value::Null))
    }

    fn kind_of<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, Invalid> {
        match required(obj, "kind", field)? {
            Value::String(s) => Ok(s),
            other => Err(type_error(field, "a string", other)),
        }
    }

    fn window(v: &Value) -> Result<WindowConfig, Invalid> {
        let Value::Object(obj) = v else {
            return Err(type_error("window", "an object", v));
        };
        match kind_of(obj, "window.kind")? {
            "count" => {
                let size = count(required(obj, "size", "window.size")?, "window.size")?;
                Ok(WindowConfig::Count { size })
            }
            "time" => {
                let duration = duration(
                    required(obj, "duration_ms", "window.duration")?,
                    "window.duration",
                )?;
                let buckets = count(
                    required(obj, "buckets", "window.buckets")?,
                    "window.buckets",
                )?;
                Ok(WindowConfig::Time { duration, buckets })
            }
            other => Err(Invalid {
                field: "window.kind".into(),
                kind: "range",
                message: format!("window.kind must be \"count\" or \"time\", got {other:?}"),
            }),
        }
    }

    fn backoff(v: &Value) -> Result<BackoffConfig, Invalid> {
        let Value::Object(obj) = v else {
            return Err(type_error("backoff", "an object", v));
        };
        match kind_of(obj, "backoff.kind")? {
            "fixed" => Ok(BackoffConfig::Fixed),
            "exponential" => {
                let multiplier = number(
                    required(obj, "multiplier", "backoff.multiplier")?,
                    "backoff.multiplier",
                )?;
                let max_open_duration = duration(
                    required(obj, "max_open_duration_ms", "backoff.max_open_duration")?,
                    "backoff.max_open_duration",
                )?;
                let jitter = number(required(obj, "jitter", "backoff.jitter")?, "backoff.jitter")?;
                Ok(BackoffConfig::Exponential {
                    multiplier,
                    max_open_duration,
                    jitter,
                })
            }
            other => Err(Invalid {
                field: "backoff.kind".into(),
                kind: "range",
                message: format!(
                    "backoff.kind must be \"fixed\" or \"exponential\", got {other:?}"
                ),
            }),
        }
    }
}

/// A jitter seed: a non-negative integer (below 2^53 in the vectors).
#[allow(dead_code)]
pub fn seed(v: &Value) -> Result<u64, Invalid> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| Invalid {
            field: "seed".into(),
            kind: "range",
            message: format!("seed must be a non-negative integer, got {n}"),
        }),
        other => Err(type_error("seed", "an integer", other)),
    }
}
