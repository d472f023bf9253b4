//! Replays every conformance vector in `tests/conformance/budget/` and
//! `tests/conformance/retry/` through the public Rust API.
//!
//! The vectors are the specification shared with the Node and Python suites (the format is in
//! `tests/conformance/README.md`, sections "Budgets" and "Retries"). As for breakers, the
//! replayer is strict about the files: an unknown key or op is an error, and each directory is
//! one test that lists every disagreeing file (with the step) before failing. Within a file,
//! replay stops at the first disagreement, since later steps assume the earlier decisions.
//! Vectors in `tests/conformance/pending/` are not replayed.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{
    Invalid, as_object, check_config_error, check_keys, check_or_replay, expect_eq, number,
    read_named, read_time, required_field, str_field, type_error,
};
use seawall::breaker::count_from_f64;
use seawall::budget::timeout_from_millis;
use seawall::retry::{
    Backoff, RetryBudgetConfig, RetryBudgetCore, RetryConfig, RetryDecision, RetryState,
};
use seawall::{Budget, TimeoutPolicy, Timestamp};
use serde_json::{Map, Value};

/// Tolerance for times compared in milliseconds (`remaining`, `check`, `timeout_for`,
/// `start_attempt`): one nanosecond.
const MS_TOLERANCE: f64 = 1e-6;

#[test]
fn budget_vectors() {
    common::run_directory("budget", run_budget_file);
}

#[test]
fn retry_vectors() {
    common::run_directory("retry", run_retry_file);
}

// ---------------------------------------------------------------------------------------------
// Shared configuration: the timeout policy and the budget's timeout

/// Converts a duration in milliseconds the way the bindings do, through the core, so that
/// negative, huge and non-finite values are reported by the core as `range` errors on `field`.
fn millis(v: &Value, field: &'static str) -> Result<Duration, Invalid> {
    Ok(timeout_from_millis(field, number(v, field)?)?)
}

/// The file's `policy` (absent: the defaults). The outer `Err` is a malformed vector; the inner
/// one is the library refusing the policy.
fn policy_from_json(v: Option<&Value>) -> Result<Result<TimeoutPolicy, Invalid>, String> {
    let Some(v) = v else {
        return Ok(Ok(TimeoutPolicy::DEFAULT));
    };
    let obj = as_object(v, "policy")?;
    check_keys(
        obj,
        &["max_timeout_ms", "scale", "min_to_start_ms"],
        "policy",
    )?;
    Ok(build_policy(obj))
}

fn build_policy(obj: &Map<String, Value>) -> Result<TimeoutPolicy, Invalid> {
    let d = TimeoutPolicy::DEFAULT;
    let max_timeout = match obj.get("max_timeout_ms") {
        Some(v) => millis(v, "max_timeout")?,
        None => d.max_timeout(),
    };
    let scale = match obj.get("scale") {
        Some(v) => number(v, "scale")?,
        None => d.scale(),
    };
    let min_to_start = match obj.get("min_to_start_ms") {
        Some(v) => millis(v, "min_to_start")?,
        None => d.min_to_start(),
    };
    Ok(TimeoutPolicy::new(max_timeout, scale, min_to_start)?)
}

/// A step's duration (`timeout_ms`, `cap_ms`, `retry_after_ms`): a value the core refuses is a
/// malformed vector here, since steps carry no `expect_error` for it.
fn step_millis(v: &Value, key: &str, field: &'static str) -> Result<Duration, String> {
    millis(v, field).map_err(|e| format!("`{key}` is not a valid duration: {}", e.message))
}

/// An optional cap: absent or `null` is none.
fn optional_cap(v: Option<&Value>) -> Result<Option<Duration>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => step_millis(v, "cap_ms", "cap").map(Some),
    }
}

fn as_ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn expect_ms(what: &str, expected: &Value, actual: Duration) -> Result<(), String> {
    let want = expected
        .as_f64()
        .ok_or_else(|| format!("the expected {what} must be a number of ms, not {expected}"))?;
    let got = as_ms(actual);
    if (want - got).abs() <= MS_TOLERANCE {
        Ok(())
    } else {
        Err(format!("expected {what} {want} ms, got {got} ms"))
    }
}

/// The only error a step may expect from a budget check.
fn expect_exhausted(v: &Value, op: &str) -> Result<(), String> {
    match v.as_str() {
        Some("budget_exhausted") => Ok(()),
        _ => Err(format!(
            "{op}.expect_error must be \"budget_exhausted\", not {v}"
        )),
    }
}

/// Checks the result of a budget check against `expect_ms` (or `expect_timeout_ms`) or
/// `expect_error`; exactly one of them must be given.
fn check_timeout(
    obj: &Map<String, Value>,
    op: &str,
    ms_key: &str,
    result: Result<Duration, seawall::BudgetExhausted>,
) -> Result<(), String> {
    match (obj.get(ms_key), obj.get("expect_error"), result) {
        (Some(want), None, Ok(d)) => expect_ms("time", want, d),
        (Some(want), None, Err(e)) => Err(format!("expected {want} ms, got an error: {e}")),
        (None, Some(err), Ok(d)) => {
            expect_exhausted(err, op)?;
            Err(format!(
                "expected budget_exhausted, got a timeout of {} ms",
                as_ms(d)
            ))
        }
        (None, Some(err), Err(_)) => expect_exhausted(err, op),
        _ => Err(format!(
            "{op} needs exactly one of `{ms_key}` and `expect_error`"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Budgets

fn run_budget_file(path: &Path) -> Result<(), String> {
    let doc = read_named(
        path,
        &[
            "name",
            "description",
            "policy",
            "budget_timeout_ms",
            "steps",
            "expect_error",
        ],
    )?;
    let policy = policy_from_json(doc.get("policy"))?;
    match (doc.get("expect_error"), doc.get("steps")) {
        (Some(expected), None) => {
            // The policy, then the budget of `budget_timeout_ms` (if given) made under it at 0.
            let built = policy.and_then(|p| {
                let budget = match doc.get("budget_timeout_ms") {
                    Some(v) => Some(Budget::new(Timestamp::ZERO, millis(v, "timeout")?, p)),
                    None => None,
                };
                Ok((p, budget))
            });
            check_config_error(built, expected)
        }
        (None, Some(Value::Array(steps))) => {
            if doc.contains_key("budget_timeout_ms") {
                return Err("`budget_timeout_ms` only belongs to a validation scenario \
                            (steps create budgets with the `budget` op)"
                    .into());
            }
            let policy = policy.map_err(|e| {
                format!(
                    "policy rejected ({} error on `{}`): {}",
                    e.kind, e.field, e.message
                )
            })?;
            let mut replay = BudgetReplay {
                policy,
                now_ms: 0.0,
                now: Timestamp::ZERO,
                budgets: HashMap::new(),
            };
            for (i, step) in steps.iter().enumerate() {
                let op = step.get("op").and_then(Value::as_str).unwrap_or("?");
                replay
                    .step(step)
                    .map_err(|e| format!("steps[{i}] ({op}): {e}"))?;
            }
            Ok(())
        }
        _ => Err("the file needs either `steps` (a list) or `expect_error`, not both".into()),
    }
}

struct BudgetReplay {
    policy: TimeoutPolicy,
    now_ms: f64,
    now: Timestamp,
    budgets: HashMap<String, Budget>,
}

impl BudgetReplay {
    fn step(&mut self, step: &Value) -> Result<(), String> {
        let obj = as_object(step, "a step")?;
        let op = str_field(obj, "op", "a step")?;
        let allowed: &[&str] = match op {
            "budget" => &["id", "timeout_ms"],
            "child" => &["budget", "id", "cap_ms"],
            "remaining" => &["budget", "expect_ms"],
            "expired" => &["budget", "expect"],
            "timeout_for" => &["budget", "cap_ms", "expect_ms", "expect_error"],
            "check" => &["budget", "expect_ms", "expect_error"],
            "encode" => &["budget", "format", "expect"],
            "decode" => &["format", "value", "id", "expect_error"],
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
            "budget" => {
                let timeout = step_millis(
                    required_field(obj, "timeout_ms", op)?,
                    "timeout_ms",
                    "timeout",
                )?;
                self.keep(obj, Budget::new(now, timeout, self.policy))
            }
            "child" => {
                let parent = self.budget(obj)?;
                let cap = step_millis(required_field(obj, "cap_ms", op)?, "cap_ms", "cap")?;
                self.keep(obj, parent.child(now, cap))
            }
            "remaining" => {
                let b = self.budget(obj)?;
                expect_ms(
                    "remaining",
                    required_field(obj, "expect_ms", op)?,
                    b.remaining(now),
                )
            }
            "expired" => {
                let b = self.budget(obj)?;
                let want = required_field(obj, "expect", op)?
                    .as_bool()
                    .ok_or("expired.expect must be a boolean")?;
                let got = b.is_expired(now);
                if want == got {
                    Ok(())
                } else {
                    Err(format!("expected expired {want}, got {got}"))
                }
            }
            "timeout_for" => {
                let b = self.budget(obj)?;
                // `cap_ms` must be present: `null` says "no per-call cap" explicitly.
                required_field(obj, "cap_ms", op)?;
                let cap = optional_cap(obj.get("cap_ms"))?;
                check_timeout(obj, op, "expect_ms", b.timeout_for(now, cap))
            }
            "check" => {
                let b = self.budget(obj)?;
                check_timeout(obj, op, "expect_ms", b.check(now))
            }
            "encode" => {
                let b = self.budget(obj)?;
                let got = match str_field(obj, "format", op)? {
                    "grpc-timeout" => b.to_grpc_timeout(now),
                    "timeout-ms" => b.to_timeout_ms(now),
                    other => return Err(format!("unknown header format {other:?}")),
                };
                expect_eq("header value", str_field(obj, "expect", op)?, &got)
            }
            "decode" => self.decode(obj, now),
            _ => unreachable!("ops were matched above"),
        }
    }

    fn budget(&self, obj: &Map<String, Value>) -> Result<Budget, String> {
        let id = str_field(obj, "budget", "the step")?;
        self.budgets
            .get(id)
            .copied()
            .ok_or_else(|| format!("no budget is kept under id {id:?}"))
    }

    fn keep(&mut self, obj: &Map<String, Value>, budget: Budget) -> Result<(), String> {
        let id = str_field(obj, "id", "the step")?;
        if self.budgets.insert(id.to_string(), budget).is_some() {
            return Err(format!("id {id:?} is already used by another budget"));
        }
        Ok(())
    }

    fn decode(&mut self, obj: &Map<String, Value>, now: Timestamp) -> Result<(), String> {
        let value = str_field(obj, "value", "decode")?;
        let decoded = match str_field(obj, "format", "decode")? {
            "grpc-timeout" => Budget::from_grpc_timeout(value, now, self.policy),
            "timeout-ms" => Budget::from_timeout_ms(value, now, self.policy),
            other => return Err(format!("unknown header format {other:?}")),
        };
        match (obj.get("id"), obj.get("expect_error"), decoded) {
            (Some(_), None, Ok(budget)) => self.keep(obj, budget),
            (Some(_), None, Err(e)) => Err(format!("expected {value:?} to decode, got: {e}")),
            (None, Some(err), result) => {
                if err.as_str() != Some("invalid_header") {
                    return Err(format!(
                        "decode.expect_error must be \"invalid_header\", not {err}"
                    ));
                }
                match result {
                    Err(e) if e.to_string().contains(&format!("{value:?}")) => Ok(()),
                    Err(e) => Err(format!("the error does not show the value: {e}")),
                    Ok(b) => Err(format!(
                        "expected {value:?} to be rejected, it decoded to {} ms",
                        as_ms(b.remaining(now))
                    )),
                }
            }
            _ => Err("decode needs exactly one of `id` and `expect_error`".into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Retries

/// Everything a retry file configures, once the library accepted it.
#[derive(Debug)]
struct RetrySetup {
    policy: TimeoutPolicy,
    budget_timeout: Option<Duration>,
    retry: RetryConfig,
    retry_budget: Option<RetryBudgetConfig>,
}

fn run_retry_file(path: &Path) -> Result<(), String> {
    let doc = read_named(
        path,
        &[
            "name",
            "description",
            "policy",
            "budget_timeout_ms",
            "retry",
            "retry_budget",
            "steps",
            "expect_error",
        ],
    )?;
    let policy = policy_from_json(doc.get("policy"))?;
    let retry = match doc.get("retry") {
        Some(v) => {
            let obj = as_object(v, "retry")?;
            check_keys(obj, &["max_attempts", "backoff", "seed"], "retry")?;
            check_backoff_keys(obj)?;
            obj
        }
        None => return Err("the file needs a `retry` object".into()),
    };
    let retry_budget = match doc.get("retry_budget") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let obj = as_object(v, "retry_budget")?;
            check_keys(
                obj,
                &["percent", "min_per_second", "ttl_ms"],
                "retry_budget",
            )?;
            Some(obj)
        }
    };
    let built = (|| -> Result<RetrySetup, Invalid> {
        let policy = policy?;
        let budget_timeout = match doc.get("budget_timeout_ms") {
            Some(v) => Some(millis(v, "timeout")?),
            None => None,
        };
        let retry = build_retry(retry)?;
        let retry_budget = match (doc.get("retry_budget"), retry_budget) {
            (None, _) => Some(RetryBudgetConfig::default()),
            (_, None) => None,
            (_, Some(obj)) => Some(build_retry_budget(obj)?),
        };
        Ok(RetrySetup {
            policy,
            budget_timeout,
            retry,
            retry_budget,
        })
    })();
    check_or_replay(&doc, built, |setup, steps| {
        let budget_timeout = setup
            .budget_timeout
            .ok_or("a retry scenario needs `budget_timeout_ms`")?;
        let mut replay = RetryReplay {
            policy: setup.policy,
            budget_timeout,
            config: setup.retry,
            retry_budget: setup.retry_budget.map(RetryBudgetCore::new),
            now_ms: 0.0,
            now: Timestamp::ZERO,
            state: RetryState::new(setup.retry),
            budget: Budget::new(Timestamp::ZERO, budget_timeout, setup.policy),
        };
        for (i, step) in steps.iter().enumerate() {
            let op = step.get("op").and_then(Value::as_str).unwrap_or("?");
            replay
                .step(step)
                .map_err(|e| format!("steps[{i}] ({op}): {e}"))?;
        }
        Ok(())
    })
}

/// Catches misspelt keys inside a `backoff` of a known kind. Values of the wrong type and
/// unknown kinds are left to the conversion, which reports them as the library would.
fn check_backoff_keys(retry: &Map<String, Value>) -> Result<(), String> {
    let Some(Value::Object(obj)) = retry.get("backoff") else {
        return Ok(());
    };
    let keys: &[&str] = match obj.get("kind").and_then(Value::as_str) {
        Some("constant") => &["kind", "delay_ms"],
        Some("exponential") => &["kind", "base_ms", "cap_ms", "multiplier"],
        Some("decorrelated_jitter") => &["kind", "base_ms", "cap_ms"],
        _ => return Ok(()),
    };
    check_keys(obj, keys, "retry.backoff")
}

/// A field that must be present: absent reads as `undefined`, a type error.
fn present<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a Value, Invalid> {
    obj.get(key)
        .ok_or_else(|| type_error(field, "present", &Value::Null))
}

fn build_retry(obj: &Map<String, Value>) -> Result<RetryConfig, Invalid> {
    let attempts = number(
        present(obj, "max_attempts", "max_attempts")?,
        "max_attempts",
    )?;
    // Fractions, negatives and values past u32 are refused by the core's count conversion;
    // the range itself is RetryConfig::new's.
    let max_attempts = count_from_f64("max_attempts", attempts)?;
    let backoff = build_backoff(present(obj, "backoff", "backoff")?)?;
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| Invalid {
            field: "seed".into(),
            kind: "range",
            message: format!("seed must be a non-negative integer, got {n}"),
        })?),
        Some(other) => return Err(type_error("seed", "an integer", other)),
    };
    Ok(RetryConfig::new(max_attempts, backoff, seed)?)
}

fn build_backoff(v: &Value) -> Result<Backoff, Invalid> {
    let Value::Object(obj) = v else {
        return Err(type_error("backoff", "an object", v));
    };
    let kind = match present(obj, "kind", "backoff.kind")? {
        Value::String(s) => s.as_str(),
        other => return Err(type_error("backoff.kind", "a string", other)),
    };
    let base = |obj| millis(present(obj, "base_ms", "backoff.base")?, "backoff.base");
    let cap = |obj| millis(present(obj, "cap_ms", "backoff.cap")?, "backoff.cap");
    match kind {
        "constant" => Ok(Backoff::Constant {
            delay: millis(present(obj, "delay_ms", "backoff.delay")?, "backoff.delay")?,
        }),
        "exponential" => Ok(Backoff::Exponential {
            base: base(obj)?,
            cap: cap(obj)?,
            multiplier: number(
                present(obj, "multiplier", "backoff.multiplier")?,
                "backoff.multiplier",
            )?,
        }),
        "decorrelated_jitter" => Ok(Backoff::DecorrelatedJitter {
            base: base(obj)?,
            cap: cap(obj)?,
        }),
        other => Err(Invalid {
            field: "backoff.kind".into(),
            kind: "range",
            message: format!(
                "backoff.kind must be \"constant\", \"exponential\" or \
                 \"decorrelated_jitter\", got {other:?}"
            ),
        }),
    }
}

fn build_retry_budget(obj: &Map<String, Value>) -> Result<RetryBudgetConfig, Invalid> {
    let d = RetryBudgetConfig::default();
    let percent = match obj.get("percent") {
        Some(v) => number(v, "retry_budget.percent")?,
        None => d.percent(),
    };
    let min_per_second = match obj.get("min_per_second") {
        Some(v) => number(v, "retry_budget.min_per_second")?,
        None => d.min_per_second(),
    };
    let ttl = match obj.get("ttl_ms") {
        Some(v) => millis(v, "retry_budget.ttl")?,
        None => d.ttl(),
    };
    Ok(RetryBudgetConfig::new(percent, min_per_second, ttl)?)
}

struct RetryReplay {
    policy: TimeoutPolicy,
    budget_timeout: Duration,
    config: RetryConfig,
    retry_budget: Option<RetryBudgetCore>,
    now_ms: f64,
    now: Timestamp,
    /// The current call: its retry loop and its budget.
    state: RetryState,
    budget: Budget,
}

impl RetryReplay {
    fn step(&mut self, step: &Value) -> Result<(), String> {
        let obj = as_object(step, "a step")?;
        let op = str_field(obj, "op", "a step")?;
        let allowed: &[&str] = match op {
            "begin" => &[],
            "start_attempt" => &["cap_ms", "expect_timeout_ms", "expect_error"],
            "failure" => &[
                "retry_after_ms",
                "expect_delay_ms",
                "expect_delay_ms_between",
                "expect_give_up",
            ],
            "retry_budget" => &["expect"],
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
            "begin" => {
                self.state = RetryState::new(self.config);
                self.budget = Budget::new(now, self.budget_timeout, self.policy);
                Ok(())
            }
            "start_attempt" => {
                let cap = optional_cap(obj.get("cap_ms"))?;
                let result =
                    self.state
                        .start_attempt(now, &self.budget, cap, self.retry_budget.as_mut());
                check_timeout(obj, op, "expect_timeout_ms", result)
            }
            "failure" => self.failure(obj, now),
            "retry_budget" => {
                let expected =
                    as_object(required_field(obj, "expect", op)?, "retry_budget.expect")?;
                check_keys(
                    expected,
                    &["requests", "retries", "allowed"],
                    "retry_budget.expect",
                )?;
                let rb = self
                    .retry_budget
                    .as_mut()
                    .ok_or("the file has no retry budget (`retry_budget` is null)")?;
                let m = rb.metrics(now);
                let mut wrong = Vec::new();
                for (key, got) in [
                    ("requests", m.requests),
                    ("retries", m.retries),
                    ("allowed", m.allowed),
                ] {
                    if let Some(want) = expected.get(key)
                        && want.as_u64() != Some(got)
                    {
                        wrong.push(format!("{key}: expected {want}, got {got}"));
                    }
                }
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(format!("retry budget differs: {}", wrong.join("; ")))
                }
            }
            _ => unreachable!("ops were matched above"),
        }
    }

    fn failure(&mut self, obj: &Map<String, Value>, now: Timestamp) -> Result<(), String> {
        let hint = match obj.get("retry_after_ms") {
            None => None,
            Some(v) => Some(step_millis(v, "retry_after_ms", "retry_after")?),
        };
        let decision = self
            .state
            .on_failure(now, &self.budget, hint, self.retry_budget.as_mut());
        let shown = match decision {
            RetryDecision::RetryAfter(d) => format!("a wait of {} ms", as_ms(d)),
            RetryDecision::GiveUp(r) => format!("give up ({})", r.as_str()),
        };
        let expectations = [
            "expect_delay_ms",
            "expect_delay_ms_between",
            "expect_give_up",
        ]
        .iter()
        .filter(|k| obj.contains_key(**k))
        .count();
        if expectations != 1 {
            return Err("failure needs exactly one of `expect_delay_ms`, \
                        `expect_delay_ms_between` and `expect_give_up`"
                .into());
        }
        if let Some(want) = obj.get("expect_delay_ms") {
            let ms = want
                .as_f64()
                .ok_or_else(|| format!("expect_delay_ms must be a number, not {want}"))?;
            // Exact to the nanosecond: delays are whole nanosecond counts in every language.
            match decision {
                RetryDecision::RetryAfter(d) if (ms * 1e6).round() as u128 == d.as_nanos() => {
                    Ok(())
                }
                _ => Err(format!("expected a wait of {ms} ms, got {shown}")),
            }
        } else if let Some(bounds) = obj.get("expect_delay_ms_between") {
            let (lo, hi) = common::bounds(bounds, "expect_delay_ms_between")?;
            match decision {
                RetryDecision::RetryAfter(d) if lo <= as_ms(d) && as_ms(d) <= hi => Ok(()),
                _ => Err(format!("expected a wait in [{lo}, {hi}] ms, got {shown}")),
            }
        } else {
            let want = str_field(obj, "expect_give_up", "failure")?;
            const REASONS: [&str; 4] = [
                "attempts_exhausted",
                "budget_exhausted",
                "retry_after_beyond_budget",
                "retry_budget_exhausted",
            ];
            if !REASONS.contains(&want) {
                return Err(format!(
                    "expect_give_up must be one of {}, not {want:?}",
                    REASONS.join(", ")
                ));
            }
            match decision {
                RetryDecision::GiveUp(r) if r.as_str() == want => Ok(()),
                _ => Err(format!("expected give up ({want}), got {shown}")),
            }
        }
    }
}
