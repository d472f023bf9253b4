//! Retry loops and retry budgets, for the facade's `RetryPolicy`, `RetryLoop` and `RetryBudget`.
//!
//! A `RetryConfig` is plain data: the facade keeps the validated values as numbers
//! ([`NativeRetryConfig`]) and passes them back to [`retry_begin`], which starts a core
//! `RetryState` in a slot of this thread's loop table. The loop's hot calls are module functions
//! taking that slot and numbers (see `slots.rs`): [`retry_start_attempt`] returns the attempt's
//! timeout in ms or `-(1 + remainingMs)` when the budget cannot fit an attempt, and
//! [`retry_on_failure`] returns the wait in ms or `-(1 + reason)`, reason 0
//! `attempts_exhausted`, 1 `budget_exhausted`, 2 `retry_after_beyond_budget`, 3
//! `retry_budget_exhausted`. The facade frees a loop's slot with [`retry_end`] (its own loops
//! when they finish, a user's `RetryLoop` when it is garbage-collected).
//!
//! Retry budgets are shared and mutable, so each is a core `RetryBudget` (a lock around the
//! core state) owned by a [`NativeRetryBudget`]; a loop holds a clone of the one it draws from.
//! The process-wide budget is the core's own `RetryBudget::global()`, on the core's monotonic
//! clock. A budget built with a JS clock takes its time from the facade instead.
//!
//! The core's `RetryState` takes one `now` for the request's budget and the retry budget. When
//! their clocks differ (a budget on `performance`, the retry budget on the core's clock), the
//! budget is moved onto the retry budget's timeline: same time left, same decisions.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;
use seawall_core::budget::timeout_from_millis;
use seawall_core::retry::RetryBudgetMetrics;
use seawall_core::{
    Backoff, Budget, ConfigError, FieldKind, GiveUpReason, RetryBudget, RetryBudgetConfig,
    RetryConfig, RetryDecision, RetryState, Timestamp,
};

use crate::budget::{budget, cap, moved, time_or_exhausted};
use crate::error;
use crate::options::{Options, millis, seed_from_f64, timestamp};
use crate::slots::Slots;

/// A retry budget and whose clock says what time it is for it.
#[derive(Clone)]
struct RetryBudgetEntry {
    budget: RetryBudget,
    /// The facade passes `now` from a JS clock; otherwise the core's clock is read.
    js_clock: bool,
}

struct LoopEntry {
    state: RetryState,
    retry_budget: Option<RetryBudgetEntry>,
}

thread_local! {
    static LOOPS: RefCell<Slots<LoopEntry>> = RefCell::new(Slots::default());
    static RETRY_BUDGETS: RefCell<Slots<RetryBudgetEntry>> = RefCell::new(Slots::default());
}

/// Backoff kinds, as the facade numbers them.
const CONSTANT: u32 = 0;
const EXPONENTIAL: u32 = 1;
const DECORRELATED_JITTER: u32 = 2;

/// Growth per attempt of an exponential backoff when none is given. The core has no default
/// for it (its retry default is decorrelated jitter); 2 is the usual doubling.
const DEFAULT_MULTIPLIER: f64 = 2.0;

/// A validated retry configuration as the facade stores it.
#[napi(object)]
pub struct NativeRetryConfig {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// 0 constant, 1 exponential, 2 decorrelated jitter.
    pub kind: u32,
    /// The constant delay, or the base, in whole nanoseconds.
    pub first_ns: f64,
    /// The cap in whole nanoseconds (0 for constant).
    pub cap_ns: f64,
    /// The exponential multiplier (0 otherwise).
    pub multiplier: f64,
    /// The jitter seed, if fixed.
    pub seed: Option<f64>,
}

impl From<RetryConfig> for NativeRetryConfig {
    fn from(c: RetryConfig) -> Self {
        let ns = |d: Duration| d.as_nanos() as f64;
        let (kind, first_ns, cap_ns, multiplier) = match c.backoff() {
            Backoff::Constant { delay } => (CONSTANT, ns(delay), 0.0, 0.0),
            Backoff::Exponential {
                base,
                cap,
                multiplier,
            } => (EXPONENTIAL, ns(base), ns(cap), multiplier),
            Backoff::DecorrelatedJitter { base, cap } => {
                (DECORRELATED_JITTER, ns(base), ns(cap), 0.0)
            }
        };
        NativeRetryConfig {
            max_attempts: c.max_attempts(),
            kind,
            first_ns,
            cap_ns,
            multiplier,
            // Seeds were checked to be safe integers, so the double is exact.
            seed: c.seed().map(|s| s as f64),
        }
    }
}

/// A JS number for `maxAttempts`. The core takes a `u32`; a value that is not one (a fraction,
/// NaN, a negative) is shown to the user as given, in the core's words for the range.
fn max_attempts(v: f64) -> Result<u32, ConfigError> {
    if v.is_finite() && v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
        return Ok(v as u32);
    }
    let core = RetryConfig::new(0, RetryConfig::default().backoff(), None).err();
    Err(ConfigError {
        got: v.to_string(),
        ..core.unwrap_or(ConfigError {
            field: "max_attempts",
            expected: "a whole number",
            got: String::new(),
            kind: FieldKind::Number,
        })
    })
}

/// Builds and validates a retry configuration from the options of `new RetryPolicy(options)`.
#[napi(catch_unwind)]
pub fn retry_config_new(env: Env, options: Unknown<'_>) -> napi::Result<NativeRetryConfig> {
    let o = Options::root(&env, options, "options", "")?;
    let cfg = |e: ConfigError| error::config_error(&env, &e);
    let default = RetryConfig::default();
    let attempts = match o.number("maxAttempts")? {
        Some(v) => max_attempts(v).map_err(cfg)?,
        None => default.max_attempts(),
    };
    let backoff = match o.object("backoff", "backoff.")? {
        None => default.backoff(),
        Some(b) => {
            const KINDS: &str = "'constant', 'exponential' or 'decorrelated_jitter'";
            let ms = |field, v| timeout_from_millis(field, v).map_err(cfg);
            match b.kind(KINDS)?.as_str() {
                "constant" => Backoff::Constant {
                    delay: ms("backoff.delay", b.required_number("delayMs")?)?,
                },
                "exponential" => Backoff::Exponential {
                    base: ms("backoff.base", b.required_number("baseMs")?)?,
                    cap: ms("backoff.cap", b.required_number("capMs")?)?,
                    multiplier: b.number("multiplier")?.unwrap_or(DEFAULT_MULTIPLIER),
                },
                "decorrelated_jitter" => {
                    // Either bound may be left out: the core's default jitter supplies it.
                    let (base, cap) = match default.backoff() {
                        Backoff::DecorrelatedJitter { base, cap } => (Some(base), Some(cap)),
                        _ => (None, None),
                    };
                    let bound = |key, field, default: Option<Duration>| match b.number(key)? {
                        Some(v) => ms(field, v),
                        None => default.map_or_else(|| ms(field, b.required_number(key)?), Ok),
                    };
                    Backoff::DecorrelatedJitter {
                        base: bound("baseMs", "backoff.base", base)?,
                        cap: bound("capMs", "backoff.cap", cap)?,
                    }
                }
                other => {
                    return Err(error::option_choice_error(
                        &env,
                        "backoff.kind",
                        KINDS,
                        other,
                    ));
                }
            }
        }
    };
    let seed = match o.nullable_number("seed")? {
        Some(Some(v)) => Some(seed_from_f64(v).map_err(cfg)?),
        _ => None,
    };
    RetryConfig::new(attempts, backoff, seed)
        .map(NativeRetryConfig::from)
        .map_err(cfg)
}

fn config_from_parts(
    env: &Env,
    max_attempts: u32,
    kind: u32,
    first_ns: f64,
    cap_ns: f64,
    multiplier: f64,
    seed: Option<f64>,
) -> napi::Result<RetryConfig> {
    let ns = |v: f64| -> napi::Result<Duration> {
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_nanos(v.round() as u64))
        } else {
            Err(error::internal_argument_error(
                env,
                "backoff durations must be non-negative nanoseconds",
            ))
        }
    };
    let backoff = match kind {
        CONSTANT => Backoff::Constant {
            delay: ns(first_ns)?,
        },
        EXPONENTIAL => Backoff::Exponential {
            base: ns(first_ns)?,
            cap: ns(cap_ns)?,
            multiplier,
        },
        DECORRELATED_JITTER => Backoff::DecorrelatedJitter {
            base: ns(first_ns)?,
            cap: ns(cap_ns)?,
        },
        _ => return Err(error::internal_argument_error(env, "unknown backoff kind")),
    };
    let seed = seed
        .map(seed_from_f64)
        .transpose()
        .map_err(|e| error::config_error(env, &e))?;
    RetryConfig::new(max_attempts, backoff, seed).map_err(|e| error::config_error(env, &e))
}

/// Begins one call's retry loop with the configuration the facade stored, drawing retries from
/// the retry budget in `retryBudgetSlot` (none when absent). Returns the loop's slot.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn retry_begin(
    env: Env,
    max_attempts: u32,
    kind: u32,
    first_ns: f64,
    cap_ns: f64,
    multiplier: f64,
    seed: Option<f64>,
    retry_budget_slot: Option<u32>,
) -> napi::Result<u32> {
    let config = config_from_parts(&env, max_attempts, kind, first_ns, cap_ns, multiplier, seed)?;
    let retry_budget = match retry_budget_slot {
        None => None,
        Some(slot) => Some(
            RETRY_BUDGETS
                .with(|t| t.borrow().get(slot).cloned())
                .ok_or_else(|| {
                    error::internal_argument_error(&env, "no retry budget in this slot")
                })?,
        ),
    };
    let entry = LoopEntry {
        state: RetryState::new(config),
        retry_budget,
    };
    LOOPS
        .with(|t| t.borrow_mut().insert(entry))
        .ok_or_else(|| error::internal_argument_error(&env, "too many retry loops"))
}

/// Frees a loop's slot. Freeing a free slot does nothing.
#[napi(catch_unwind)]
pub fn retry_end(slot: u32) {
    // `try_` so that a finalizer running while the thread is torn down cannot panic.
    let _ = LOOPS.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            t.release(slot);
        }
    });
}

/// Attempts started so far by the loop in `slot`.
#[napi(catch_unwind)]
pub fn retry_attempts(env: Env, slot: u32) -> napi::Result<u32> {
    LOOPS
        .with(|t| t.borrow().get(slot).map(|l| l.state.attempts()))
        .ok_or_else(|| unknown_loop(&env))
}

fn unknown_loop(env: &Env) -> napi::Error {
    error::internal_argument_error(env, "no retry loop in this slot")
}

/// Runs `f` on the loop in `slot` with the time to use and the budget on that clock, and the
/// core state of its retry budget if it has one.
fn with_loop<R>(
    env: &Env,
    slot: u32,
    b: Budget,
    now_ms: f64,
    retry_budget_now_ms: Option<f64>,
    f: impl FnOnce(&mut RetryState, Timestamp, &Budget, Option<&mut seawall_core::RetryBudgetCore>) -> R,
) -> napi::Result<R> {
    let now = timestamp(env, now_ms)?;
    let rb_now = retry_budget_now_ms
        .map(|ms| timestamp(env, ms))
        .transpose()?;
    LOOPS.with(|t| {
        let mut t = t.borrow_mut();
        let entry = t.get_mut(slot).ok_or_else(|| unknown_loop(env))?;
        match &entry.retry_budget {
            None => Ok(f(&mut entry.state, now, &b, None)),
            Some(rb) => {
                let js_clock = rb.js_clock;
                let state = &mut entry.state;
                Ok(rb.budget.with_core(|core, core_now| {
                    let rb_now = match (js_clock, rb_now) {
                        (true, Some(t)) => t,
                        _ => core_now,
                    };
                    f(state, rb_now, &moved(&b, now, rb_now), Some(core))
                }))
            }
        }
    })
}

/// Starts an attempt of the loop in `slot` under the budget the facade stored, at `nowMs` on
/// the budget's clock: its timeout in ms, or `-(1 + remainingMs)` when the budget cannot fit
/// one. `retryBudgetNowMs` is the time on the retry budget's JS clock, if it has one.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn retry_start_attempt(
    env: Env,
    slot: u32,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
    cap_ms: Option<f64>,
    retry_budget_now_ms: Option<f64>,
) -> napi::Result<f64> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    let cap = cap(&env, "cap", cap_ms)?;
    with_loop(
        &env,
        slot,
        b,
        now_ms,
        retry_budget_now_ms,
        |state, now, b, rb| time_or_exhausted(state.start_attempt(now, b, cap, rb)),
    )
}

/// After a retryable failure of the loop in `slot`: the wait in ms, or `-(1 + reason)` (see the
/// module documentation). `retryAfterMs` is a server's hint; any non-negative number is a
/// hint (the core decides whether it fits), NaN and negatives are refused.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn retry_on_failure(
    env: Env,
    slot: u32,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
    retry_after_ms: Option<f64>,
    retry_budget_now_ms: Option<f64>,
) -> napi::Result<f64> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    let hint = retry_after_ms.map(|ms| retry_after(&env, ms)).transpose()?;
    with_loop(
        &env,
        slot,
        b,
        now_ms,
        retry_budget_now_ms,
        |state, now, b, rb| match state.on_failure(now, b, hint, rb) {
            RetryDecision::RetryAfter(d) => millis(d),
            RetryDecision::GiveUp(reason) => {
                -1.0 - match reason {
                    GiveUpReason::AttemptsExhausted => 0.0,
                    GiveUpReason::BudgetExhausted => 1.0,
                    GiveUpReason::RetryAfterBeyondBudget => 2.0,
                    GiveUpReason::RetryBudgetExhausted => 3.0,
                }
            }
        },
    )
}

/// A server's hint in ms, through the core's conversion (any length; NaN and negatives refused).
fn retry_after(env: &Env, ms: f64) -> napi::Result<Duration> {
    seawall_core::retry_after_from_millis(ms).map_err(|e| error::argument_error(env, &e))
}

/// A retry budget's numbers.
#[napi(object)]
pub struct NativeRetryBudgetMetrics {
    /// Requests (first attempts) in the window.
    pub requests: f64,
    /// Retries in the window.
    pub retries: f64,
    /// Retries the window allows in all.
    pub allowed: f64,
}

impl From<RetryBudgetMetrics> for NativeRetryBudgetMetrics {
    fn from(m: RetryBudgetMetrics) -> Self {
        NativeRetryBudgetMetrics {
            requests: m.requests as f64,
            retries: m.retries as f64,
            allowed: m.allowed as f64,
        }
    }
}

/// A retry budget shared by the loops that draw from it. Private: use `RetryBudget` from
/// `seawall`.
#[napi]
pub struct NativeRetryBudget {
    entry: AssertUnwindSafe<RetryBudgetEntry>,
    slot: u32,
}

impl Drop for NativeRetryBudget {
    fn drop(&mut self) {
        let _ = RETRY_BUDGETS.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                t.release(self.slot);
            }
        });
    }
}

impl NativeRetryBudget {
    fn register(env: &Env, entry: RetryBudgetEntry) -> napi::Result<Self> {
        let slot = RETRY_BUDGETS
            .with(|t| t.borrow_mut().insert(entry.clone()))
            .ok_or_else(|| error::internal_argument_error(env, "too many retry budgets"))?;
        Ok(NativeRetryBudget {
            entry: AssertUnwindSafe(entry),
            slot,
        })
    }
}

/// A JS number for `ttlMs`. Values the core cannot take as a `Duration` (NaN, negatives,
/// infinities) are shown as given, in the core's words for the range.
fn ttl(percent: f64, min_per_second: f64, ms: f64) -> Result<Duration, ConfigError> {
    if ms.is_finite() && ms >= 0.0 {
        return Ok(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
    }
    // Zero is below the core's range; its error names the range (or an earlier bad field).
    let core = RetryBudgetConfig::new(percent, min_per_second, Duration::ZERO).err();
    Err(match core {
        Some(e) if e.field == "retry_budget.ttl" => ConfigError {
            got: format!("{ms} ms"),
            ..e
        },
        Some(e) => e,
        None => ConfigError {
            field: "retry_budget.ttl",
            expected: "a duration",
            got: format!("{ms} ms"),
            kind: FieldKind::Duration,
        },
    })
}

#[napi]
impl NativeRetryBudget {
    /// Builds a retry budget from the options of `new RetryBudget(options)`; `jsClock` says the
    /// facade will pass the time from a JS clock (else the core's monotonic clock is read).
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Unknown<'_>, js_clock: bool) -> napi::Result<Self> {
        let o = Options::root(&env, options, "options", "retryBudget.")?;
        let default = RetryBudgetConfig::default();
        let percent = o.number("percent")?.unwrap_or(default.percent());
        let min_per_second = o
            .number("minPerSecond")?
            .unwrap_or(default.min_per_second());
        let ttl = match o.number("ttlMs")? {
            Some(ms) => ttl(percent, min_per_second, ms),
            None => Ok(default.ttl()),
        }
        .map_err(|e| error::config_error(&env, &e))?;
        let config = RetryBudgetConfig::new(percent, min_per_second, ttl)
            .map_err(|e| error::config_error(&env, &e))?;
        Self::register(
            &env,
            RetryBudgetEntry {
                budget: RetryBudget::new(config),
                js_clock,
            },
        )
    }

    /// The process-wide retry budget, shared with any Rust code in this process.
    #[napi(factory, catch_unwind)]
    pub fn global(env: Env) -> napi::Result<Self> {
        Self::register(
            &env,
            RetryBudgetEntry {
                budget: RetryBudget::global(),
                js_clock: false,
            },
        )
    }

    /// The slot to pass to `retryBegin`.
    #[napi(getter, catch_unwind)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Retries allowed as a percentage of requests.
    #[napi(getter, catch_unwind)]
    pub fn percent(&self) -> f64 {
        self.entry.budget.with_core(|c, _| c.config().percent())
    }

    /// Retries always allowed per second.
    #[napi(getter, catch_unwind)]
    pub fn min_per_second(&self) -> f64 {
        self.entry
            .budget
            .with_core(|c, _| c.config().min_per_second())
    }

    /// How long a request or retry counts, in ms.
    #[napi(getter, catch_unwind)]
    pub fn ttl_ms(&self) -> f64 {
        self.entry.budget.with_core(|c, _| millis(c.config().ttl()))
    }

    /// The numbers at `nowMs` on the JS clock (ignored when the core's clock is used).
    #[napi(catch_unwind)]
    pub fn metrics(&self, env: Env, now_ms: Option<f64>) -> napi::Result<NativeRetryBudgetMetrics> {
        let js_now = match (self.entry.js_clock, now_ms) {
            (true, Some(ms)) => Some(timestamp(&env, ms)?),
            _ => None,
        };
        Ok(self
            .entry
            .budget
            .with_core(|c, core_now| c.metrics(js_now.unwrap_or(core_now)))
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seawall_core::TimeoutPolicy;

    #[test]
    fn a_budget_moved_to_another_clock_keeps_its_time_left() {
        let p = TimeoutPolicy::DEFAULT;
        let b = Budget::new(Timestamp::from_millis(100), Duration::from_millis(50), p);
        let m = moved(
            &b,
            Timestamp::from_millis(120),
            Timestamp::from_millis(5_000),
        );
        assert_eq!(
            m.remaining(Timestamp::from_millis(5_000)),
            Duration::from_millis(30)
        );
        assert_eq!(m.deadline(), Timestamp::from_millis(5_030));
        // Past its deadline: still past it, by as much, on the other clock.
        let m = moved(
            &b,
            Timestamp::from_millis(170),
            Timestamp::from_millis(5_000),
        );
        assert!(m.is_expired(Timestamp::from_millis(5_000)));
        assert_eq!(m.deadline(), Timestamp::from_millis(4_980));
    }

    #[test]
    fn attempts_that_are_not_integers_get_the_cores_range() {
        let e = max_attempts(2.5).unwrap_err();
        assert_eq!(e.field, "max_attempts");
        assert_eq!(
            e.to_string(),
            "max_attempts must be an integer in [1, 100], got 2.5"
        );
        assert_eq!(max_attempts(f64::NAN).unwrap_err().got, "NaN");
        assert_eq!(max_attempts(7.0), Ok(7));
    }

    #[test]
    fn ttl_that_is_not_a_duration_gets_the_cores_range() {
        let e = ttl(20.0, 10.0, f64::NAN).unwrap_err();
        assert_eq!(e.field, "retry_budget.ttl");
        assert_eq!(e.got, "NaN ms");
        assert_eq!(ttl(20.0, 10.0, 1500.0), Ok(Duration::from_millis(1500)));
        // An earlier bad field is the one reported.
        assert_eq!(
            ttl(-1.0, 10.0, -5.0).unwrap_err().field,
            "retry_budget.percent"
        );
    }
}
