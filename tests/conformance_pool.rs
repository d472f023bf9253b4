//! Replays every conformance vector in `tests/conformance/pool/` through the public Rust API of
//! the sans-IO pool engine ([`PoolCore`]), driven the way an adapter drives it.
//!
//! The vectors are the specification shared with the Node and Python suites (the format is in
//! `tests/conformance/README.md`, section "Pools"). As for breakers, budgets and retries, the
//! replayer is strict about the files: an unknown key or op is an error, and the directory is one
//! test that lists every disagreeing file (with the step) before failing. Within a file, replay
//! stops at the first disagreement, since later steps assume the earlier decisions. Vectors in
//! `tests/conformance/pending/` are not replayed.
//!
//! Slots are named by the files: a name is bound to the engine's slot id the first time an
//! expected action mentions it, and must match afterwards (and one slot never gets two names).
//! Callers are named by the `id` given to `acquire`; a caller's lease is kept under its id, also
//! after it is released, so that a repeated or stale release can be tried.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{
    Invalid, SCENARIO_KEYS, as_object, breaker_config, check_keys, check_or_replay, count,
    duration, expect_eq, number, optional_duration, read_named, read_time, required_field,
    str_field, type_error,
};
use seawall::budget::timeout_from_millis;
use seawall::pool::{
    Acquire, Action, IdleOrder, Lease, PoolConfig, PoolCore, PoolEvent, PoolMetrics, SlotId,
    WaiterId,
};
use seawall::{Budget, TimeoutPolicy, Timestamp};
use serde_json::{Map, Value};

/// Tolerance for times compared in milliseconds (`next_timeout`): one nanosecond.
const MS_TOLERANCE: f64 = 1e-6;

/// The error kinds an acquire can fail with.
const ERROR_KINDS: &[&str] = &[
    "timeout",
    "overloaded",
    "connect_failed",
    "database_unavailable",
    "budget_exhausted",
    "closed",
];

/// The reasons a connection is destroyed.
const DESTROY_REASONS: &[&str] = &[
    "broken",
    "invalid",
    "idle_timeout",
    "expired",
    "resized",
    "closed",
    "create_timed_out",
    "stale",
];

#[test]
fn pool_vectors() {
    common::run_directory("pool", run_file);
}

fn run_file(path: &Path) -> Result<(), String> {
    let doc = &read_named(path, SCENARIO_KEYS)?;
    let empty = Value::Object(Map::new());
    let built = config_from_json(doc.get("config").unwrap_or(&empty))?;
    check_or_replay(doc, built, Replay::run)
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Converts a vector's `config` into a [`PoolConfig`]. The outer `Err` is a malformed vector;
/// the inner one is the library refusing the configuration.
fn config_from_json(v: &Value) -> Result<Result<PoolConfig, Invalid>, String> {
    let obj = as_object(v, "config")?;
    check_keys(
        obj,
        &[
            "max_size",
            "min_idle",
            "max_waiters",
            "acquire_timeout_ms",
            "create_timeout_ms",
            "idle_timeout_ms",
            "max_lifetime_ms",
            "lifetime_jitter",
            "validate_after_ms",
            "idle_order",
            "leak_threshold_ms",
            "create_backoff",
            "breaker",
            "seed",
        ],
        "config",
    )?;
    if let Some(Value::Object(backoff)) = obj.get("create_backoff") {
        check_keys(backoff, &["base_ms", "cap_ms"], "config.create_backoff")?;
    }
    let breaker = match obj.get("breaker") {
        Some(b) => Some(breaker_config::from_json(b, "config.breaker")?),
        None => None,
    };
    Ok(build_config(obj, breaker))
}

fn build_config(
    obj: &Map<String, Value>,
    breaker: Option<Result<seawall::BreakerConfig, Invalid>>,
) -> Result<PoolConfig, Invalid> {
    let mut b = PoolConfig::builder();
    if let Some(v) = obj.get("max_size") {
        b = b.max_size(count(v, "max_size")?);
    }
    if let Some(v) = obj.get("min_idle") {
        b = b.min_idle(count(v, "min_idle")?);
    }
    if let Some(v) = obj.get("max_waiters") {
        b = b.max_waiters(count(v, "max_waiters")?);
    }
    if let Some(v) = obj.get("acquire_timeout_ms") {
        b = b.acquire_timeout(duration(v, "acquire_timeout")?);
    }
    if let Some(v) = obj.get("create_timeout_ms") {
        b = b.create_timeout(duration(v, "create_timeout")?);
    }
    if let Some(v) = obj.get("idle_timeout_ms") {
        b = b.idle_timeout(optional_duration(v, "idle_timeout")?);
    }
    if let Some(v) = obj.get("max_lifetime_ms") {
        b = b.max_lifetime(optional_duration(v, "max_lifetime")?);
    }
    if let Some(v) = obj.get("lifetime_jitter") {
        b = b.lifetime_jitter(number(v, "lifetime_jitter")?);
    }
    if let Some(v) = obj.get("validate_after_ms") {
        b = b.validate_after(optional_duration(v, "validate_after")?);
    }
    if let Some(v) = obj.get("idle_order") {
        b = b.idle_order(match v {
            Value::String(s) if s == "lifo" => IdleOrder::Lifo,
            Value::String(s) if s == "fifo" => IdleOrder::Fifo,
            Value::String(s) => {
                return Err(Invalid {
                    field: "idle_order".into(),
                    kind: "range",
                    message: format!("idle_order must be \"lifo\" or \"fifo\", got {s:?}"),
                });
            }
            other => return Err(type_error("idle_order", "a string", other)),
        });
    }
    if let Some(v) = obj.get("leak_threshold_ms") {
        b = b.leak_threshold(optional_duration(v, "leak_threshold")?);
    }
    if let Some(v) = obj.get("create_backoff") {
        let Value::Object(backoff) = v else {
            return Err(type_error("create_backoff", "an object", v));
        };
        let part = |key: &str, field: &'static str| match backoff.get(key) {
            Some(v) => duration(v, field),
            None => Err(type_error(field, "present", &Value::Null)),
        };
        let base = part("base_ms", "create_backoff.base")?;
        let cap = part("cap_ms", "create_backoff.cap")?;
        b = b.create_backoff(base, cap);
    }
    if let Some(breaker) = breaker {
        b = b.breaker(breaker?);
    }
    if let Some(v) = obj.get("seed") {
        b = b.seed(Some(common::seed(v)?));
    }
    // The acquire timeout may not exceed the timeout policy's maximum: the default policy's,
    // explicitly, so that a process-wide policy set elsewhere cannot change a vector.
    Ok(b.build_under(TimeoutPolicy::DEFAULT.max_timeout())?)
}

// ---------------------------------------------------------------------------------------------
// Replaying steps

/// What a vector expects of one action.
#[derive(Debug)]
enum Expected {
    Create(String),
    Validate(String),
    Destroy(String, String),
    Hand(String, String),
    Fail(String, String),
}

struct Replay {
    pool: PoolCore,
    now: Timestamp,
    now_ms: f64,
    /// Slot names and the engine's ids, both ways.
    slot_ids: HashMap<String, SlotId>,
    slot_names: HashMap<SlotId, String>,
    /// The caller behind each waiter, and each caller's latest waiter.
    callers: HashMap<WaiterId, String>,
    waiters: HashMap<String, WaiterId>,
    /// The latest lease each caller was given.
    leases: HashMap<String, Lease>,
}

impl Replay {
    fn run(config: PoolConfig, steps: &[Value]) -> Result<(), String> {
        let mut pool = PoolCore::new(config);
        // Every scenario starts with a timer at 0, which opens the `min_idle` connections.
        pool.handle_timeout(Timestamp::ZERO);
        let mut replay = Replay {
            pool,
            now: Timestamp::ZERO,
            now_ms: 0.0,
            slot_ids: HashMap::new(),
            slot_names: HashMap::new(),
            callers: HashMap::new(),
            waiters: HashMap::new(),
            leases: HashMap::new(),
        };
        for (i, step) in steps.iter().enumerate() {
            let op = step.get("op").and_then(Value::as_str).unwrap_or("?");
            replay
                .step(step)
                .map_err(|e| format!("steps[{i}] ({op}): {e}"))?;
        }
        Ok(())
    }

    fn step(&mut self, step: &Value) -> Result<(), String> {
        let obj = as_object(step, "a step")?;
        let op = str_field(obj, "op", "a step")?;
        let allowed: &[&str] = match op {
            "acquire" => &["id", "budget_ms", "expect"],
            "actions" | "metrics" | "events" => &["expect"],
            "created" => &["slot"],
            "create_failed" => &["slot", "error"],
            "validated" => &["slot", "ok"],
            "release" => &["id", "broken", "expect"],
            "cancel" => &["id", "expect"],
            "timeout" => &[],
            "next_timeout" => &["expect_ms", "expect_ms_between"],
            "resize" => &["max_size"],
            "drain" => &["deadline_ms"],
            other => return Err(format!("unknown op {other:?}")),
        };
        let mut all = vec!["op", "t"];
        all.extend_from_slice(allowed);
        check_keys(obj, &all, op)?;
        if let Some(t) = obj.get("t") {
            self.now = read_time(t, &mut self.now_ms)?;
        }
        let now = self.now;
        match op {
            "acquire" => self.acquire(obj),
            "actions" => self.actions(required_field(obj, "expect", op)?),
            "created" => {
                let slot = self.slot(obj, op)?;
                self.pool.handle_created(slot, now);
                Ok(())
            }
            "create_failed" => {
                let slot = self.slot(obj, op)?;
                let error = str_field(obj, "error", op)?;
                self.pool.handle_create_failed(slot, error, now);
                Ok(())
            }
            "validated" => {
                let slot = self.slot(obj, op)?;
                let ok = bool_field(obj, "ok", op)?
                    .ok_or("validated needs `ok` (a boolean)".to_string())?;
                self.pool.handle_validated(slot, ok, now);
                Ok(())
            }
            "release" => {
                let id = str_field(obj, "id", op)?;
                let lease = *self
                    .leases
                    .get(id)
                    .ok_or_else(|| format!("no lease was ever given to {id:?}"))?;
                let broken = bool_field(obj, "broken", op)?.unwrap_or(false);
                let expected = bool_field(obj, "expect", op)?.unwrap_or(true);
                let accepted = self.pool.release(lease, broken, now);
                expect_bool("release accepted", expected, accepted)
            }
            "cancel" => {
                let id = str_field(obj, "id", op)?;
                let waiter = *self
                    .waiters
                    .get(id)
                    .ok_or_else(|| format!("{id:?} never waited"))?;
                let expected = bool_field(obj, "expect", op)?.unwrap_or(true);
                let cancelled = self.pool.cancel(waiter, now);
                expect_bool("cancel accepted", expected, cancelled)
            }
            "timeout" => {
                self.pool.handle_timeout(now);
                Ok(())
            }
            "next_timeout" => self.next_timeout(obj),
            "resize" => {
                let v = required_field(obj, "max_size", op)?;
                let n = count(v, "max_size")
                    .map_err(|e| format!("`max_size` is not a valid count: {}", e.message))?;
                self.pool
                    .resize(n, now)
                    .map_err(|e| format!("resize({n}) was refused: {e}"))
            }
            "drain" => {
                let v = required_field(obj, "deadline_ms", op)?;
                let deadline = v
                    .as_f64()
                    .and_then(Timestamp::from_millis_f64)
                    .ok_or_else(|| format!("drain.deadline_ms must be a time in ms, not {v}"))?;
                self.pool.drain(now, deadline);
                Ok(())
            }
            "metrics" => {
                let expected = as_object(required_field(obj, "expect", op)?, "metrics.expect")?;
                check_metrics(expected, &self.pool.metrics(now))
            }
            "events" => self.events(required_field(obj, "expect", op)?),
            _ => unreachable!("ops were matched above"),
        }
    }

    /// The slot a step names: it must already be bound by an expected action.
    fn slot(&self, obj: &Map<String, Value>, op: &str) -> Result<SlotId, String> {
        let name = str_field(obj, "slot", op)?;
        self.bound(name)
    }

    fn bound(&self, name: &str) -> Result<SlotId, String> {
        self.slot_ids.get(name).copied().ok_or_else(|| {
            format!("slot {name:?} is not bound yet (no expected action has named it)")
        })
    }

    /// Matches `name` with the engine's `slot`, binding a fresh name to a fresh slot.
    fn bind(&mut self, name: &str, slot: SlotId) -> bool {
        match (self.slot_ids.get(name), self.slot_names.get(&slot)) {
            (Some(&id), _) => id == slot,
            (None, Some(_)) => false,
            (None, None) => {
                self.slot_ids.insert(name.to_string(), slot);
                self.slot_names.insert(slot, name.to_string());
                true
            }
        }
    }

    fn slot_name(&self, slot: SlotId) -> String {
        self.slot_names
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| format!("<unnamed slot {}>", slot.as_u64()))
    }

    fn caller_name(&self, waiter: WaiterId) -> String {
        self.callers
            .get(&waiter)
            .cloned()
            .unwrap_or_else(|| format!("<unknown waiter {}>", waiter.as_u64()))
    }

    fn acquire(&mut self, obj: &Map<String, Value>) -> Result<(), String> {
        let id = str_field(obj, "id", "acquire")?.to_string();
        let expected = required_field(obj, "expect", "acquire")?;
        let expected_error = match expected {
            Value::String(s) if s == "ready" || s == "wait" => None,
            Value::Object(e) => {
                check_keys(e, &["error"], "acquire.expect")?;
                let kind = str_field(e, "error", "acquire.expect")?;
                known(kind, ERROR_KINDS, "error kind")?;
                Some(kind.to_string())
            }
            other => {
                return Err(format!(
                    "acquire.expect must be \"ready\", \"wait\" or {{\"error\": kind}}, not {other}"
                ));
            }
        };
        let budget = match obj.get("budget_ms") {
            None => None,
            Some(v) => {
                let ms = v
                    .as_f64()
                    .ok_or_else(|| format!("acquire.budget_ms must be a number, not {v}"))?;
                let timeout = timeout_from_millis("timeout", ms)
                    .map_err(|e| format!("`budget_ms` is not a valid duration: {e}"))?;
                Some(Budget::new(self.now, timeout, TimeoutPolicy::DEFAULT))
            }
        };
        let result = self.pool.acquire(self.now, budget.as_ref());
        let got = match &result {
            Ok(Acquire::Ready(lease)) => format!("ready (slot {})", self.slot_name(lease.slot())),
            Ok(Acquire::Wait(_)) => "wait".to_string(),
            Err(e) => format!("error {} ({e})", e.kind()),
        };
        let mismatch = || format!("expected {expected}, got {got}");
        match (expected_error, result) {
            (None, Ok(Acquire::Ready(lease))) if expected == "ready" => {
                self.leases.insert(id, lease);
                Ok(())
            }
            (None, Ok(Acquire::Wait(waiter))) if expected == "wait" => {
                self.callers.insert(waiter, id.clone());
                self.waiters.insert(id, waiter);
                Ok(())
            }
            (Some(kind), Err(e)) if e.kind() == kind => Ok(()),
            _ => Err(mismatch()),
        }
    }

    fn actions(&mut self, expected: &Value) -> Result<(), String> {
        let Value::Array(list) = expected else {
            return Err("actions.expect must be a list".into());
        };
        let wanted = list
            .iter()
            .map(parse_action)
            .collect::<Result<Vec<_>, _>>()?;
        let actual: Vec<Action> = std::iter::from_fn(|| self.pool.poll_action()).collect();
        let mut ok = wanted.len() == actual.len();
        if ok {
            for (w, a) in wanted.iter().zip(&actual) {
                if !self.match_action(w, a) {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            Ok(())
        } else {
            let shown: Vec<String> = actual.iter().map(|a| self.show_action(a)).collect();
            Err(format!(
                "expected actions {}, got [{}]",
                Value::Array(list.clone()),
                shown.join(", ")
            ))
        }
    }

    /// Whether the engine's action is the one expected, binding fresh slot names and keeping
    /// handed leases under the caller's id.
    fn match_action(&mut self, expected: &Expected, actual: &Action) -> bool {
        match (expected, actual) {
            (Expected::Create(name), Action::Create { slot, .. }) => self.bind(name, *slot),
            (Expected::Validate(name), Action::Validate { slot }) => self.bind(name, *slot),
            (Expected::Destroy(name, reason), Action::Destroy { slot, reason: r }) => {
                reason == r.as_str() && self.bind(name, *slot)
            }
            (Expected::Hand(caller, name), Action::Hand { waiter, lease }) => {
                if self.callers.get(waiter) != Some(caller) || !self.bind(name, lease.slot()) {
                    return false;
                }
                self.leases.insert(caller.clone(), *lease);
                true
            }
            (Expected::Fail(caller, kind), Action::Fail { waiter, error }) => {
                self.callers.get(waiter) == Some(caller) && error.kind() == kind
            }
            _ => false,
        }
    }

    fn show_action(&self, a: &Action) -> String {
        match a {
            Action::Create { slot, .. } => format!("{{create: {}}}", self.slot_name(*slot)),
            Action::Validate { slot } => format!("{{validate: {}}}", self.slot_name(*slot)),
            Action::Destroy { slot, reason } => format!(
                "{{destroy: {}, reason: {}}}",
                self.slot_name(*slot),
                reason.as_str()
            ),
            Action::Hand { waiter, lease } => format!(
                "{{hand: {}, slot: {}}}",
                self.caller_name(*waiter),
                self.slot_name(lease.slot())
            ),
            Action::Fail { waiter, error } => format!(
                "{{fail: {}, error: {} ({error})}}",
                self.caller_name(*waiter),
                error.kind()
            ),
        }
    }

    fn next_timeout(&mut self, obj: &Map<String, Value>) -> Result<(), String> {
        let actual = self.pool.poll_timeout().map(Timestamp::as_millis_f64);
        let shown = actual.map_or_else(|| "null".to_string(), |ms| format!("{ms} ms"));
        match (obj.get("expect_ms"), obj.get("expect_ms_between")) {
            (Some(Value::Null), None) => match actual {
                None => Ok(()),
                Some(_) => Err(format!("expected no timeout, got {shown}")),
            },
            (Some(Value::Number(n)), None) => {
                let want = n.as_f64().unwrap_or(f64::NAN);
                match actual {
                    Some(ms) if (ms - want).abs() <= MS_TOLERANCE => Ok(()),
                    _ => Err(format!("expected a timeout at {want} ms, got {shown}")),
                }
            }
            (None, Some(bounds)) => {
                let (lo, hi) = common::bounds(bounds, "next_timeout.expect_ms_between")?;
                match actual {
                    Some(ms) if lo <= ms && ms <= hi => Ok(()),
                    _ => Err(format!(
                        "expected a timeout in [{lo}, {hi}] ms, got {shown}"
                    )),
                }
            }
            _ => Err(
                "next_timeout needs exactly one of `expect_ms` (a number or null) and \
                 `expect_ms_between`"
                    .into(),
            ),
        }
    }

    fn events(&mut self, expected: &Value) -> Result<(), String> {
        let Value::Array(list) = expected else {
            return Err("events.expect must be a list".into());
        };
        let mut wanted = Vec::new();
        for e in list {
            wanted.push(self.parse_event(e)?);
        }
        let events: Vec<PoolEvent> = std::iter::from_fn(|| self.pool.poll_event()).collect();
        let heard: Vec<String> = events.iter().map(|e| self.show_event(e)).collect();
        if heard == wanted {
            Ok(())
        } else {
            Err(format!("expected events {wanted:?}, got {heard:?}"))
        }
    }

    /// An expected event in the canonical text [`show_event`](Self::show_event) gives the
    /// engine's; its slots must already be bound.
    fn parse_event(&self, e: &Value) -> Result<String, String> {
        let obj = as_object(e, "an expected event")?;
        let kind = if obj.contains_key("leak_suspected") {
            "leak_suspected"
        } else if obj.contains_key("leak_returned") {
            "leak_returned"
        } else if obj.contains_key("breaker") {
            "breaker"
        } else if obj.contains_key("connect_failed") {
            "connect_failed"
        } else if obj.contains_key("drained") {
            "drained"
        } else {
            return Err(format!("unknown event {e}"));
        };
        match kind {
            "leak_suspected" | "leak_returned" => {
                check_keys(obj, &[kind, "held_ms"], kind)?;
                let slot = str_field(obj, kind, kind)?;
                self.bound(slot)?;
                let held = required_field(obj, "held_ms", kind)?
                    .as_f64()
                    .ok_or_else(|| format!("{kind}.held_ms must be a number"))?;
                Ok(format!("{kind} {slot} held {held} ms"))
            }
            "breaker" => {
                check_keys(obj, &["breaker"], kind)?;
                let t = as_object(required_field(obj, "breaker", kind)?, "breaker")?;
                check_keys(t, &["from", "to", "reason"], "a breaker event")?;
                Ok(format!(
                    "breaker {}->{} ({})",
                    str_field(t, "from", "a breaker event")?,
                    str_field(t, "to", "a breaker event")?,
                    str_field(t, "reason", "a breaker event")?
                ))
            }
            "connect_failed" => {
                check_keys(obj, &["connect_failed", "attempts"], kind)?;
                let error = str_field(obj, kind, kind)?;
                let attempts = required_field(obj, "attempts", kind)?
                    .as_u64()
                    .ok_or("connect_failed.attempts must be a count")?;
                Ok(format!(
                    "connect_failed {error:?} after {attempts} attempts"
                ))
            }
            _ => {
                check_keys(obj, &["drained"], kind)?;
                let Value::Array(slots) = required_field(obj, "drained", kind)? else {
                    return Err("drained must be a list of slots".into());
                };
                let mut names = Vec::new();
                for s in slots {
                    let name = s.as_str().ok_or("drained must be a list of slot names")?;
                    self.bound(name)?;
                    names.push(name.to_string());
                }
                // The slots still held, in any order.
                names.sort();
                Ok(format!("drained {names:?}"))
            }
        }
    }

    fn show_event(&self, e: &PoolEvent) -> String {
        let ms = |d: std::time::Duration| d.as_nanos() as f64 / 1e6;
        match e {
            PoolEvent::LeakSuspected { slot, held_for } => format!(
                "leak_suspected {} held {} ms",
                self.slot_name(*slot),
                ms(*held_for)
            ),
            PoolEvent::LeakReturned { slot, held_for } => format!(
                "leak_returned {} held {} ms",
                self.slot_name(*slot),
                ms(*held_for)
            ),
            PoolEvent::Breaker(t) => format!(
                "breaker {}->{} ({})",
                t.from.as_str(),
                t.to.as_str(),
                t.reason.as_str()
            ),
            PoolEvent::ConnectFailed { error, attempts } => {
                format!("connect_failed {error:?} after {attempts} attempts")
            }
            PoolEvent::Drained { still_held } => {
                let mut names: Vec<String> =
                    still_held.iter().map(|s| self.slot_name(*s)).collect();
                names.sort();
                format!("drained {names:?}")
            }
        }
    }
}

fn parse_action(v: &Value) -> Result<Expected, String> {
    let obj = as_object(v, "an expected action")?;
    let what = "an expected action";
    let text = |key: &str| str_field(obj, key, what).map(str::to_string);
    if obj.contains_key("create") {
        check_keys(obj, &["create"], "a create action")?;
        Ok(Expected::Create(text("create")?))
    } else if obj.contains_key("validate") {
        check_keys(obj, &["validate"], "a validate action")?;
        Ok(Expected::Validate(text("validate")?))
    } else if obj.contains_key("destroy") {
        check_keys(obj, &["destroy", "reason"], "a destroy action")?;
        let reason = text("reason")?;
        known(&reason, DESTROY_REASONS, "destroy reason")?;
        Ok(Expected::Destroy(text("destroy")?, reason))
    } else if obj.contains_key("hand") {
        check_keys(obj, &["hand", "slot"], "a hand action")?;
        Ok(Expected::Hand(text("hand")?, text("slot")?))
    } else if obj.contains_key("fail") {
        check_keys(obj, &["fail", "error"], "a fail action")?;
        let error = text("error")?;
        known(&error, ERROR_KINDS, "error kind")?;
        Ok(Expected::Fail(text("fail")?, error))
    } else {
        Err(format!("unknown action {v}"))
    }
}

fn known(value: &str, set: &[&str], what: &str) -> Result<(), String> {
    if set.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "unknown {what} {value:?} (one of: {})",
            set.join(", ")
        ))
    }
}

/// An optional boolean field.
fn bool_field(obj: &Map<String, Value>, key: &str, op: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("{op}.{key} must be a boolean, not {other}")),
    }
}

fn expect_bool(what: &str, expected: bool, actual: bool) -> Result<(), String> {
    expect_eq(what, &expected.to_string(), &actual.to_string())
}

fn check_metrics(expected: &Map<String, Value>, m: &PoolMetrics) -> Result<(), String> {
    let mut wrong = Vec::new();
    for (key, want) in expected {
        let got: Value = match key.as_str() {
            "idle" => m.idle.into(),
            "used" => m.used.into(),
            "creating" => m.creating.into(),
            "max" => m.max.into(),
            "idle_max" => m.idle_max.into(),
            "idle_min" => m.idle_min.into(),
            "pending_requests" => m.pending_requests.into(),
            "timeouts" => m.timeouts.into(),
            "acquired" => m.acquired.into(),
            "released" => m.released.into(),
            "overloaded" => m.overloaded.into(),
            "unavailable" => m.unavailable.into(),
            "created" => m.created.into(),
            "create_failures" => m.create_failures.into(),
            "destroyed" => m.destroyed.into(),
            "leaks" => m.leaks.into(),
            "breaker_state" => m.breaker_state.as_str().into(),
            other => return Err(format!("unknown metric {other:?}")),
        };
        let same = match key.as_str() {
            "breaker_state" => *want == got,
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
