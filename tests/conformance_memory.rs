//! Replays every conformance vector in `tests/conformance/memory/` through the public Rust API
//! of the watchdog policy (`WatchdogCore`) and the dump rotation planner.
//!
//! The format is in `tests/conformance/README.md`, section "Memory watchdog". As in the other
//! replayers, an unknown key or op is an error, and replay of a file stops at its first
//! disagreement.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Invalid, SCENARIO_KEYS, as_object, check_keys, check_or_replay, expect_eq, number, read_named,
    read_time, required_field, str_field, type_error,
};
use seawall::memory::{
    ActMode, Assessment, Basis, DumpFile, MemorySample, Trend, WatchdogAction, WatchdogConfig,
    WatchdogCore, plan_dump_rotation, watchdog_duration_from_millis, watchdog_integer_from_f64,
};
use serde_json::{Map, Value};

/// Relative tolerance for computed numbers (percentages, rates, slopes): the core computes them
/// once for every language, so only the JSON round trip of a float can differ.
const TOLERANCE: f64 = 1e-9;

#[test]
fn memory_vectors() {
    common::run_directory("memory", run_file);
}

const CONFIG_KEYS: &[&str] = &[
    "interval_ms",
    "alert_interval_ms",
    "warn_percent",
    "act_percent",
    "spike_percent_per_minute",
    "trend_window_ms",
    "trend_min_samples",
    "trend_horizon_ms",
    "cooldown_ms",
    "snapshot_headroom_factor",
    "act_mode",
    "drain_timeout_ms",
    "exit_code",
    "max_dump_files",
    "max_dump_bytes",
];

fn config_from_json(v: Option<&Value>) -> Result<Result<WatchdogConfig, Invalid>, String> {
    let empty = Map::new();
    let obj = match v {
        Some(v) => as_object(v, "config")?,
        None => &empty,
    };
    check_keys(obj, CONFIG_KEYS, "config")?;
    Ok(build_config(obj))
}

fn build_config(obj: &Map<String, Value>) -> Result<WatchdogConfig, Invalid> {
    let duration = |key: &str, field: &'static str| -> Result<Option<Duration>, Invalid> {
        obj.get(key)
            .map(|v| Ok(watchdog_duration_from_millis(field, number(v, field)?)?))
            .transpose()
    };
    let integer = |key: &str| -> Result<Option<u64>, Invalid> {
        let field: &'static str = match key {
            "trend_min_samples" => "trend_min_samples",
            "exit_code" => "exit_code",
            "max_dump_files" => "max_dump_files",
            _ => "max_dump_bytes",
        };
        obj.get(key)
            .map(|v| Ok(watchdog_integer_from_f64(field, number(v, field)?)?))
            .transpose()
    };
    let float = |key: &'static str| -> Result<Option<f64>, Invalid> {
        obj.get(key).map(|v| number(v, key)).transpose()
    };
    let mut b = WatchdogConfig::builder();
    if let Some(d) = duration("interval_ms", "interval")? {
        b = b.interval(d);
    }
    if let Some(d) = duration("alert_interval_ms", "alert_interval")? {
        b = b.alert_interval(d);
    }
    if let Some(p) = float("warn_percent")? {
        b = b.warn_percent(p);
    }
    if let Some(p) = float("act_percent")? {
        b = b.act_percent(p);
    }
    if let Some(p) = float("spike_percent_per_minute")? {
        b = b.spike_percent_per_minute(p);
    }
    if let Some(d) = duration("trend_window_ms", "trend_window")? {
        b = b.trend_window(d);
    }
    if let Some(n) = integer("trend_min_samples")? {
        b = b.trend_min_samples(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(d) = duration("trend_horizon_ms", "trend_horizon")? {
        b = b.trend_horizon(d);
    }
    if let Some(d) = duration("cooldown_ms", "cooldown")? {
        b = b.cooldown(d);
    }
    if let Some(f) = float("snapshot_headroom_factor")? {
        b = b.snapshot_headroom_factor(f);
    }
    if let Some(v) = obj.get("act_mode") {
        let mode = match v.as_str() {
            Some("restart") => ActMode::Restart,
            Some("event_only") => ActMode::EventOnly,
            Some(other) => {
                return Err(Invalid {
                    field: "act_mode".into(),
                    kind: "range",
                    message: format!(
                        "act_mode must be \"restart\" or \"event_only\", got {other:?}"
                    ),
                });
            }
            None => return Err(type_error("act_mode", "a string", v)),
        };
        b = b.act_mode(mode);
    }
    if let Some(d) = duration("drain_timeout_ms", "drain_timeout")? {
        b = b.drain_timeout(d);
    }
    if let Some(n) = integer("exit_code")? {
        b = b.exit_code(i32::try_from(n).unwrap_or(i32::MAX));
    }
    if let Some(n) = integer("max_dump_files")? {
        b = b.max_dump_files(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(n) = integer("max_dump_bytes")? {
        b = b.max_dump_bytes(n);
    }
    Ok(b.build()?)
}

fn run_file(path: &Path) -> Result<(), String> {
    let doc = read_named(path, SCENARIO_KEYS)?;
    let built = config_from_json(doc.get("config"))?;
    check_or_replay(&doc, built, |config, steps| {
        let mut core = WatchdogCore::new(config.clone());
        let mut now_ms = 0.0;
        for (i, step) in steps.iter().enumerate() {
            run_step(&mut core, &config, step, &mut now_ms)
                .map_err(|e| format!("step {i}: {e}"))?;
        }
        Ok(())
    })
}

fn run_step(
    core: &mut WatchdogCore,
    config: &WatchdogConfig,
    step: &Value,
    now_ms: &mut f64,
) -> Result<(), String> {
    let obj = as_object(step, "a step")?;
    match str_field(obj, "op", "a step")? {
        "sample" => {
            check_keys(
                obj,
                &[
                    "t",
                    "op",
                    "usage",
                    "limit",
                    "heap_used",
                    "heap_limit",
                    "expect",
                ],
                "a sample step",
            )?;
            let now = read_time(required_field(obj, "t", "a sample step")?, now_ms)?;
            let bytes = |key: &str| -> Result<Option<u64>, String> {
                obj.get(key)
                    .map(|v| {
                        v.as_u64()
                            .ok_or_else(|| format!("`{key}` must be a whole number of bytes"))
                    })
                    .transpose()
            };
            let sample = MemorySample {
                usage_bytes: bytes("usage")?.ok_or("a sample step needs `usage`")?,
                limit_bytes: bytes("limit")?.ok_or("a sample step needs `limit`")?,
                heap_used_bytes: bytes("heap_used")?,
                heap_limit_bytes: bytes("heap_limit")?,
            };
            let assessment = core.observe(now, sample);
            check_assessment(&assessment, required_field(obj, "expect", "a sample step")?)
        }
        "rotate_dumps" => {
            check_keys(
                obj,
                &["op", "existing", "incoming_bytes", "expect"],
                "a rotate_dumps step",
            )?;
            let existing = required_field(obj, "existing", "a rotate_dumps step")?
                .as_array()
                .ok_or("`existing` must be a list")?
                .iter()
                .map(|f| {
                    let f = as_object(f, "a dump file")?;
                    check_keys(f, &["name", "bytes", "created"], "a dump file")?;
                    Ok(DumpFile {
                        name: str_field(f, "name", "a dump file")?.to_string(),
                        bytes: f
                            .get("bytes")
                            .and_then(Value::as_u64)
                            .ok_or("bad `bytes`")?,
                        created: f
                            .get("created")
                            .and_then(Value::as_u64)
                            .ok_or("bad `created`")?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let incoming = obj
                .get("incoming_bytes")
                .and_then(Value::as_u64)
                .ok_or("`incoming_bytes` must be a whole number")?;
            let plan = plan_dump_rotation(config, &existing, incoming);
            let expect = as_object(
                required_field(obj, "expect", "a rotate_dumps step")?,
                "expect",
            )?;
            check_keys(expect, &["delete", "fits"], "expect")?;
            let delete: Vec<&str> = required_field(expect, "delete", "expect")?
                .as_array()
                .ok_or("`delete` must be a list")?
                .iter()
                .map(|v| v.as_str().ok_or("`delete` holds names"))
                .collect::<Result<_, _>>()?;
            if plan.delete != delete {
                return Err(format!(
                    "expected to delete {delete:?}, got {:?}",
                    plan.delete
                ));
            }
            let fits = required_field(expect, "fits", "expect")?
                .as_bool()
                .ok_or("`fits` must be a boolean")?;
            if plan.fits != fits {
                return Err(format!("expected fits = {fits}, got {}", plan.fits));
            }
            Ok(())
        }
        "counts" => {
            check_keys(obj, &["op", "expect"], "a counts step")?;
            let expect = as_object(required_field(obj, "expect", "a counts step")?, "expect")?;
            let actual = serde_json::to_value(core.counts()).map_err(|e| e.to_string())?;
            for (key, want) in expect {
                let got = actual
                    .get(key)
                    .ok_or_else(|| format!("unknown counter {key:?}"))?;
                if got != want {
                    return Err(format!("expected counter {key} = {want}, got {got}"));
                }
            }
            Ok(())
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

fn close(expected: f64, actual: f64) -> bool {
    (expected - actual).abs() <= TOLERANCE * expected.abs().max(1.0)
}

fn expect_number(what: &str, expected: &Value, actual: f64) -> Result<(), String> {
    let e = expected
        .as_f64()
        .ok_or_else(|| format!("expected {what} must be a number, not {expected}"))?;
    if close(e, actual) {
        Ok(())
    } else {
        Err(format!("expected {what} {e}, got {actual}"))
    }
}

fn expect_ms(what: &str, expected: &Value, actual: Option<Duration>) -> Result<(), String> {
    match (expected, actual) {
        (Value::Null, None) => Ok(()),
        (Value::Null, Some(d)) => Err(format!("expected no {what}, got {d:?}")),
        (e, Some(d)) => expect_number(what, e, d.as_secs_f64() * 1000.0),
        (e, None) => Err(format!("expected {what} {e}, got none")),
    }
}

fn check_trend(expected: &Value, actual: Option<&Trend>) -> Result<(), String> {
    match (expected, actual) {
        (Value::Null, None) => Ok(()),
        (Value::Null, Some(t)) => Err(format!("expected no trend, got {t:?}")),
        (_, None) => Err(format!("expected trend {expected}, got none")),
        (e, Some(t)) => {
            let e = as_object(e, "trend")?;
            check_keys(
                e,
                &["bytes_per_second", "r2", "time_to_limit_ms", "samples"],
                "trend",
            )?;
            if let Some(v) = e.get("bytes_per_second") {
                expect_number("trend.bytes_per_second", v, t.bytes_per_second)?;
            }
            if let Some(v) = e.get("r2") {
                expect_number("trend.r2", v, t.r2)?;
            }
            if let Some(v) = e.get("time_to_limit_ms") {
                expect_ms("trend.time_to_limit_ms", v, t.time_to_limit)?;
            }
            if let Some(v) = e.get("samples") {
                expect_number("trend.samples", v, f64::from(t.samples))?;
            }
            Ok(())
        }
    }
}

fn check_assessment(a: &Assessment, expected: &Value) -> Result<(), String> {
    let e = as_object(expected, "expect")?;
    check_keys(
        e,
        &[
            "level",
            "percent",
            "basis",
            "growth_percent_per_minute",
            "trend",
            "next_sample_ms",
            "actions",
        ],
        "expect",
    )?;
    expect_eq("level", str_field(e, "level", "expect")?, a.level.as_str())?;
    if let Some(v) = e.get("percent") {
        expect_number("percent", v, a.percent)?;
    }
    if let Some(v) = e.get("basis") {
        expect_eq(
            "basis",
            v.as_str().ok_or("`basis` must be a string")?,
            a.basis.as_str(),
        )?;
    }
    if let Some(v) = e.get("growth_percent_per_minute") {
        match (v, a.growth_percent_per_minute) {
            (Value::Null, None) => {}
            (Value::Null, Some(g)) => return Err(format!("expected no growth, got {g}")),
            (v, Some(g)) => expect_number("growth_percent_per_minute", v, g)?,
            (v, None) => return Err(format!("expected growth {v}, got none")),
        }
    }
    if let Some(v) = e.get("trend") {
        check_trend(v, a.trend.as_ref())?;
    }
    if let Some(v) = e.get("next_sample_ms") {
        expect_ms("next_sample_ms", v, Some(a.next_sample_in))?;
    }
    let actions = required_field(e, "actions", "expect")?
        .as_array()
        .ok_or("`actions` must be a list")?;
    if actions.len() != a.actions.len() {
        return Err(format!(
            "expected {} actions {}, got {:?}",
            actions.len(),
            Value::Array(actions.clone()),
            a.actions
        ));
    }
    for (i, (want, got)) in actions.iter().zip(&a.actions).enumerate() {
        check_action(want, got).map_err(|m| format!("action {i}: {m}"))?;
    }
    Ok(())
}

fn check_action(expected: &Value, actual: &WatchdogAction) -> Result<(), String> {
    let e = as_object(expected, "an action")?;
    let kind = str_field(e, "kind", "an action")?;
    let percent_basis = |percent: f64, basis: Basis| -> Result<(), String> {
        check_keys(e, &["kind", "percent", "basis"], "the action")?;
        if let Some(v) = e.get("percent") {
            expect_number("percent", v, percent)?;
        }
        if let Some(v) = e.get("basis") {
            expect_eq(
                "basis",
                v.as_str().ok_or("`basis` is a string")?,
                basis.as_str(),
            )?;
        }
        Ok(())
    };
    match (kind, actual) {
        ("warn", WatchdogAction::Warn { percent, basis })
        | ("recovered", WatchdogAction::Recovered { percent, basis })
        | ("act", WatchdogAction::Act { percent, basis }) => percent_basis(*percent, *basis),
        (
            "spike",
            WatchdogAction::Spike {
                percent_per_minute,
                basis,
            },
        ) => {
            check_keys(e, &["kind", "percent_per_minute", "basis"], "the action")?;
            if let Some(v) = e.get("percent_per_minute") {
                expect_number("percent_per_minute", v, *percent_per_minute)?;
            }
            if let Some(v) = e.get("basis") {
                expect_eq(
                    "basis",
                    v.as_str().ok_or("`basis` is a string")?,
                    basis.as_str(),
                )?;
            }
            Ok(())
        }
        ("leak_trend", WatchdogAction::LeakTrend { trend }) => {
            check_keys(e, &["kind", "trend"], "the action")?;
            check_trend(required_field(e, "trend", "the action")?, Some(trend))
        }
        (
            "evidence",
            WatchdogAction::Evidence {
                evidence,
                trigger,
                free_bytes,
                needed_bytes,
            },
        ) => {
            check_keys(
                e,
                &["kind", "evidence", "trigger", "free_bytes", "needed_bytes"],
                "the action",
            )?;
            let (evidence, trigger) = (evidence.as_str(), trigger.as_str());
            expect_eq(
                "evidence",
                str_field(e, "evidence", "the action")?,
                evidence,
            )?;
            expect_eq("trigger", str_field(e, "trigger", "the action")?, trigger)?;
            if let Some(v) = e.get("free_bytes") {
                expect_number("free_bytes", v, *free_bytes as f64)?;
            }
            if let Some(v) = e.get("needed_bytes") {
                expect_number("needed_bytes", v, *needed_bytes as f64)?;
            }
            Ok(())
        }
        (
            "restart",
            WatchdogAction::Restart {
                drain_timeout,
                exit_code,
            },
        ) => {
            check_keys(e, &["kind", "drain_timeout_ms", "exit_code"], "the action")?;
            if let Some(v) = e.get("drain_timeout_ms") {
                expect_ms("drain_timeout_ms", v, Some(*drain_timeout))?;
            }
            if let Some(v) = e.get("exit_code") {
                expect_number("exit_code", v, f64::from(*exit_code))?;
            }
            Ok(())
        }
        (kind, actual) => Err(format!("expected a {kind:?} action, got {actual:?}")),
    }
}
