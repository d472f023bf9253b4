//! Replays every conformance vector in `tests/conformance/breaker/` through the public Rust API.
//!
//! The vectors are the specification shared with the Node and Python suites (the format is in
//! `tests/conformance/README.md`). This replayer is deliberately strict about the files
//! themselves: an unknown key or op is reported rather than skipped, because a misspelt `expect`
//! would otherwise turn a check into a step that cannot fail. All files run in one test so that
//! a single run lists every disagreement; within a file, replay stops at the first one, since
//! later steps assume the earlier decisions.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{
    SCENARIO_KEYS, as_object, check_keys, check_or_replay, expect_eq, read_named, read_time,
    required_field, str_field,
};
use seawall::{
    BreakerConfig, BreakerMetrics, CircuitBreaker, Event, ManualClock, Permit, Rejected, Snapshot,
    Transition,
};
use serde_json::{Map, Value};

/// Tolerance for rates, which are percentages computed by division.
const RATE_TOLERANCE: f64 = 1e-9;

#[test]
fn conformance_vectors() {
    common::run_directory("breaker", run_file);
}

fn run_file(path: &Path) -> Result<(), String> {
    let doc = &read_named(path, SCENARIO_KEYS)?;
    let config_json = match doc.get("config") {
        Some(c) => c,
        None => return Err("the file needs a `config` object".into()),
    };
    let built = common::breaker_config::from_json(config_json, "config")?;
    check_or_replay(doc, built, Replay::run)
}

// ---------------------------------------------------------------------------------------------
// Replaying steps

struct Replay<'b> {
    clock: ManualClock,
    /// Every breaker the file will use, built up front so permits can borrow them: index 0 is
    /// the original, each `"fresh": true` restore moves on to the next.
    breakers: &'b [CircuitBreaker],
    logs: Vec<Arc<Mutex<Vec<Transition>>>>,
    current: usize,
    now_ms: f64,
    permits: HashMap<String, Permit<'b>>,
    saved: HashMap<String, Value>,
}

impl<'b> Replay<'b> {
    fn run(config: BreakerConfig, steps: &[Value]) -> Result<(), String> {
        let fresh_restores = steps
            .iter()
            .filter(|s| s.get("op") == Some(&Value::from("restore")))
            .filter(|s| s.get("fresh") == Some(&Value::Bool(true)))
            .count();
        let clock = ManualClock::new();
        let mut logs = Vec::new();
        let breakers: Vec<CircuitBreaker> = (0..=fresh_restores)
            .map(|_| {
                let breaker = CircuitBreaker::with_clock(config.clone(), clock.clone());
                let log: Arc<Mutex<Vec<Transition>>> = Arc::default();
                let sink = Arc::clone(&log);
                breaker.on_event(move |event| {
                    if let Event::StateChange(t) = event {
                        sink.lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(*t);
                    }
                });
                logs.push(log);
                breaker
            })
            .collect();
        let mut replay = Replay {
            clock,
            breakers: &breakers,
            logs,
            current: 0,
            now_ms: 0.0,
            permits: HashMap::new(),
            saved: HashMap::new(),
        };
        for (i, step) in steps.iter().enumerate() {
            let op = step.get("op").and_then(Value::as_str).unwrap_or("?");
            replay
                .step(step)
                .map_err(|e| format!("steps[{i}] ({op}): {e}"))?;
        }
        Ok(())
    }

    fn breaker(&self) -> &'b CircuitBreaker {
        &self.breakers[self.current]
    }

    fn step(&mut self, step: &Value) -> Result<(), String> {
        let obj = as_object(step, "a step")?;
        let op = str_field(obj, "op", "a step")?;
        let allowed: &[&str] = match op {
            "acquire" => &[
                "id",
                "expect",
                "reason",
                "retry_after_ms",
                "retry_after_ms_between",
            ],
            "record" => &["id", "outcome"],
            "release" => &["id"],
            "call" => &["outcome", "count", "expect"],
            "state" | "metrics" | "events" => &["expect"],
            "force_open" | "disable" | "metrics_only" | "reset" => &[],
            "snapshot" => &["expect", "save_as"],
            "restore" => &["snapshot", "from", "fresh", "expect_error"],
            other => return Err(format!("unknown op {other:?}")),
        };
        let mut all = vec!["op", "t"];
        all.extend_from_slice(allowed);
        check_keys(obj, &all, op)?;
        if let Some(t) = obj.get("t") {
            self.set_time(t)?;
        }
        match op {
            "acquire" => self.acquire(obj),
            "record" => {
                let id = str_field(obj, "id", op)?;
                let permit = self
                    .permits
                    .remove(id)
                    .ok_or_else(|| format!("no permit is held under id {id:?}"))?;
                record(permit, str_field(obj, "outcome", op)?)
            }
            "release" => {
                let id = str_field(obj, "id", op)?;
                let permit = self
                    .permits
                    .remove(id)
                    .ok_or_else(|| format!("no permit is held under id {id:?}"))?;
                drop(permit);
                Ok(())
            }
            "call" => self.call(obj),
            "state" => {
                let expected = str_field(obj, "expect", op)?;
                let actual = self.breaker().state().as_str();
                expect_eq("state", expected, actual)
            }
            "metrics" => {
                let expected = as_object(required_field(obj, "expect", op)?, "metrics.expect")?;
                check_metrics(expected, &self.breaker().metrics())
            }
            "events" => self.events(required_field(obj, "expect", op)?),
            "force_open" => {
                self.breaker().force_open();
                Ok(())
            }
            "disable" => {
                self.breaker().disable();
                Ok(())
            }
            "metrics_only" => {
                self.breaker().metrics_only();
                Ok(())
            }
            "reset" => {
                self.breaker().reset();
                Ok(())
            }
            "snapshot" => self.snapshot(obj),
            "restore" => self.restore(obj),
            _ => unreachable!("ops were matched above"),
        }
    }

    fn set_time(&mut self, t: &Value) -> Result<(), String> {
        let ts = read_time(t, &mut self.now_ms)?;
        self.clock.set(ts);
        Ok(())
    }

    fn acquire(&mut self, obj: &Map<String, Value>) -> Result<(), String> {
        let expected = str_field(obj, "expect", "acquire")?;
        let id = match obj.get("id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("acquire.id must be a string, not {other}")),
        };
        match (expected, self.breaker().try_acquire()) {
            ("permitted", Ok(permit)) => {
                for key in ["reason", "retry_after_ms", "retry_after_ms_between"] {
                    if obj.contains_key(key) {
                        return Err(format!("`{key}` only applies to a rejection"));
                    }
                }
                let id = id.ok_or("a permitted acquire needs an `id` to keep the permit under")?;
                if self.permits.insert(id.clone(), permit).is_some() {
                    return Err(format!("id {id:?} is already held by another permit"));
                }
                Ok(())
            }
            ("rejected", Err(rejected)) => check_rejection(obj, &rejected),
            ("permitted", Err(rejected)) => Err(format!(
                "expected permitted, got rejected ({}, retry_after {:?})",
                rejected.reason.as_str(),
                rejected.retry_after
            )),
            ("rejected", Ok(_)) => Err("expected rejected, got permitted".into()),
            (other, _) => Err(format!(
                "acquire.expect must be \"permitted\" or \"rejected\", not {other:?}"
            )),
        }
    }

    fn call(&mut self, obj: &Map<String, Value>) -> Result<(), String> {
        let outcome = str_field(obj, "outcome", "call")?;
        let n = match obj.get("count") {
            None => 1,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("call.count must be a non-negative integer, not {v}"))?,
        };
        let expected = match obj.get("expect") {
            None => "permitted",
            Some(Value::String(s)) if s == "permitted" || s == "rejected" => s.as_str(),
            Some(other) => {
                return Err(format!(
                    "call.expect must be \"permitted\" or \"rejected\", not {other}"
                ));
            }
        };
        for i in 0..n {
            match (expected, self.breaker().try_acquire()) {
                ("permitted", Ok(permit)) => record(permit, outcome)?,
                ("rejected", Err(_)) => {}
                ("permitted", Err(rejected)) => {
                    return Err(format!(
                        "call {} of {n}: expected permitted, got rejected ({})",
                        i + 1,
                        rejected.reason.as_str()
                    ));
                }
                _ => {
                    return Err(format!(
                        "call {} of {n}: expected rejected, got permitted",
                        i + 1
                    ));
                }
            }
        }
        Ok(())
    }

    fn events(&mut self, expected: &Value) -> Result<(), String> {
        let Value::Array(expected) = expected else {
            return Err("events.expect must be a list".into());
        };
        let mut wanted = Vec::new();
        for e in expected {
            let e = as_object(e, "an expected event")?;
            check_keys(e, &["from", "to", "reason"], "an expected event")?;
            wanted.push(format!(
                "{}->{} ({})",
                str_field(e, "from", "an event")?,
                str_field(e, "to", "an event")?,
                str_field(e, "reason", "an event")?
            ));
        }
        let heard: Vec<String> = std::mem::take(
            &mut *self.logs[self.current]
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
        .iter()
        .map(|t| {
            format!(
                "{}->{} ({})",
                t.from.as_str(),
                t.to.as_str(),
                t.reason.as_str()
            )
        })
        .collect();
        if heard == wanted {
            Ok(())
        } else {
            Err(format!("expected events {wanted:?}, got {heard:?}"))
        }
    }

    fn snapshot(&mut self, obj: &Map<String, Value>) -> Result<(), String> {
        let snapshot = self.breaker().snapshot();
        let actual = serde_json::to_value(&snapshot)
            .map_err(|e| format!("cannot serialise the snapshot: {e}"))?;
        if let Some(expected) = obj.get("expect")
            && *expected != actual
        {
            return Err(format!("expected snapshot {expected}, got {actual}"));
        }
        if let Some(name) = obj.get("save_as") {
            let name = name
                .as_str()
                .ok_or_else(|| format!("snapshot.save_as must be a string, not {name}"))?;
            self.saved.insert(name.to_string(), actual);
        }
        Ok(())
    }

    fn restore(&mut self, obj: &Map<String, Value>) -> Result<(), String> {
        let source = match (obj.get("snapshot"), obj.get("from")) {
            (Some(s), None) => s.clone(),
            (None, Some(Value::String(name))) => self
                .saved
                .get(name)
                .cloned()
                .ok_or_else(|| format!("no snapshot was saved as {name:?}"))?,
            _ => return Err("restore needs `snapshot` (an object) or `from` (a name)".into()),
        };
        if !source.is_object() {
            return Err("restore.snapshot must be an object".into());
        }
        match obj.get("fresh") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => self.current += 1,
            Some(other) => return Err(format!("restore.fresh must be a boolean, not {other}")),
        }
        let expect_error = match obj.get("expect_error") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(other) => {
                return Err(format!(
                    "restore.expect_error must be a boolean, not {other}"
                ));
            }
        };
        let breaker = self.breaker();
        // The same path a binding takes: JSON text in, version checked before the shape.
        let parsed = Snapshot::from_json(&source.to_string());
        if expect_error {
            let before = serde_json::to_value(breaker.snapshot()).map_err(|e| e.to_string())?;
            let result = parsed.and_then(|s| breaker.restore(&s));
            let after = serde_json::to_value(breaker.snapshot()).map_err(|e| e.to_string())?;
            match result {
                Ok(()) => Err(format!(
                    "expected the restore of {source} to fail, it succeeded"
                )),
                Err(_) if before != after => Err(format!(
                    "the failed restore changed the breaker from {before} to {after}"
                )),
                Err(_) => Ok(()),
            }
        } else {
            parsed
                .and_then(|s| breaker.restore(&s))
                .map_err(|e| format!("expected the restore to succeed, got: {e}"))
        }
    }
}

fn record(permit: Permit<'_>, outcome: &str) -> Result<(), String> {
    match outcome {
        "success" => permit.success(),
        "failure" => permit.failure(),
        "ignored" => permit.ignore(),
        other => {
            return Err(format!(
                "outcome must be success, failure or ignored, not {other:?}"
            ));
        }
    }
    Ok(())
}

fn check_rejection(obj: &Map<String, Value>, rejected: &Rejected) -> Result<(), String> {
    if let Some(reason) = obj.get("reason") {
        let reason = reason
            .as_str()
            .ok_or_else(|| format!("acquire.reason must be a string, not {reason}"))?;
        expect_eq("rejection reason", reason, rejected.reason.as_str())?;
    }
    let actual_ms = rejected.retry_after.map(|d| d.as_nanos() as f64 / 1e6);
    if let Some(expected) = obj.get("retry_after_ms") {
        let ok = match (expected, rejected.retry_after) {
            (Value::Null, None) => true,
            (Value::Number(n), Some(d)) => {
                let ms = n.as_f64().unwrap_or(f64::NAN);
                // Exact: the vectors use whole milliseconds, which are exact nanosecond counts.
                (ms * 1e6).round() as u128 == d.as_nanos()
            }
            (Value::Number(_) | Value::Null, _) => false,
            (other, _) => {
                return Err(format!(
                    "acquire.retry_after_ms must be a number or null, not {other}"
                ));
            }
        };
        if !ok {
            return Err(format!(
                "expected retry_after_ms {expected}, got {}",
                show_ms(actual_ms)
            ));
        }
    }
    if let Some(bounds) = obj.get("retry_after_ms_between") {
        let (lo, hi) = common::bounds(bounds, "acquire.retry_after_ms_between")?;
        match actual_ms {
            Some(ms) if lo <= ms && ms <= hi => {}
            _ => {
                return Err(format!(
                    "expected retry_after_ms in [{lo}, {hi}], got {}",
                    show_ms(actual_ms)
                ));
            }
        }
    }
    Ok(())
}

fn show_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "null".to_string(), |ms| ms.to_string())
}

fn check_metrics(expected: &Map<String, Value>, m: &BreakerMetrics) -> Result<(), String> {
    let mut wrong = Vec::new();
    for (key, want) in expected {
        let got: Value = match key.as_str() {
            "state" => m.state.as_str().into(),
            "failure_rate" => m.failure_rate.into(),
            "slow_call_rate" => m.slow_call_rate.into(),
            "calls_in_window" => m.calls_in_window.into(),
            "failures_in_window" => m.failures_in_window.into(),
            "slow_calls_in_window" => m.slow_calls_in_window.into(),
            "permitted" => m.permitted.into(),
            "successes" => m.successes.into(),
            "failures" => m.failures.into(),
            "ignored" => m.ignored.into(),
            "slow_calls" => m.slow_calls.into(),
            "rejected" => m.rejected.into(),
            "in_flight" => m.in_flight.into(),
            "times_opened" => m.times_opened.into(),
            "consecutive_failures" => m.consecutive_failures.into(),
            other => return Err(format!("unknown metric {other:?}")),
        };
        let same = match key.as_str() {
            "failure_rate" | "slow_call_rate" => match (want.as_f64(), got.as_f64()) {
                (Some(w), Some(g)) => (w - g).abs() <= RATE_TOLERANCE,
                _ => false,
            },
            "state" => *want == got,
            _ => want.as_u64().is_some() && want.as_u64() == got.as_u64(),
        };
        if !same {
            wrong.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("metrics differ: {}", wrong.join("; ")))
    }
}
