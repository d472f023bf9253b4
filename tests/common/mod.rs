//! Helpers shared by the conformance replayers (`tests/conformance.rs` for breakers,
//! `tests/conformance_budget.rs` for budgets and retries): finding the vector files, running a
//! directory and collecting every disagreement, and reading JSON strictly.
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
