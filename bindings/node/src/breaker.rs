//! `NativeBreaker`: the core's sans-IO breaker behind a lock, with a surface shaped for V8.
//!
//! The facade (`index.js`) reads the host clock and passes `nowMs` into every call; nothing here
//! reads a clock, keeps a JS callback or waits, so a breaker never keeps the event loop alive.
//!
//! The hot path is two calls that return plain numbers (allocating a JS object per call would
//! cost more than the decision itself):
//! - `acquire(slot, nowMs)` → `token * 2 + pending` when permitted (≥ 0), or
//!   `-(1 + (reason * 2 + pending))` when rejected, with reason 0 open, 1 half_open_full,
//!   2 forced_open. Only after a rejection does the facade ask `lastRetryAfterMs()`.
//! - `record(slot, token, startedMs, outcome, nowMs)` → `pending`.
//!
//! `pending` says the core queued state transitions; only then does the facade call
//! `takeTransitions()` to emit `stateChange` events.
//!
//! Those two are module functions taking the breaker's `slot` number rather than methods:
//! napi-rs 3 registers a borrow of the receiver in a global map on every method call, which
//! measured ~300 ns per call here against ~30 ns for a function taking numbers. The slot
//! indexes a per-thread table of the cores; a `NativeBreaker` owns its slot and frees it when
//! garbage-collected, and the facade keeps the `NativeBreaker` alive as long as it uses the
//! slot, so a slot never outlives its breaker in use.
//!
//! Every function is `catch_unwind`: a panic becomes an exception instead of aborting Node. The
//! core has no `unsafe` and parking_lot does not poison, so a breaker stays usable afterwards.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use napi::Env;
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;
use parking_lot::Mutex;
use seawall_core::breaker::{count_from_f64, duration_from_millis};
use seawall_core::{
    BackoffConfig, BreakerConfig, BreakerCore, BreakerState, ConfigError, Outcome, PermitTicket,
    RejectionReason, Snapshot, WindowConfig,
};

use crate::error;
use crate::options::{MAX_SAFE_INTEGER, Options, seed_from_f64, timestamp};
use crate::slots::Slots;

/// `last_retry_after_ns` when the last rejection gave no retry-after.
const NO_RETRY_AFTER: u64 = u64::MAX;

/// What a `NativeBreaker` and its slot in [`SLOTS`] share.
struct Shared {
    core: Mutex<BreakerCore>,
    /// Retry-after of the last rejection, read by the facade only after a rejection.
    last_retry_after_ns: AtomicU64,
}

thread_local! {
    /// The cores of this thread's breakers, by slot (see [`crate::slots`]).
    static SLOTS: RefCell<Slots<Arc<Shared>>> = RefCell::new(Slots::default());
}

/// Runs `f` on the breaker in `slot`; `None` if there is none. `f` must not call into JS (a
/// finalizer freeing a slot could then find the table borrowed).
fn with_slot<R>(slot: u32, f: impl FnOnce(&Shared) -> R) -> Option<R> {
    SLOTS.with(|slots| {
        let slots = slots.borrow();
        slots.get(slot).map(|shared| f(shared))
    })
}

fn unknown_slot(env: &Env) -> napi::Error {
    error::internal_argument_error(env, "no breaker in this slot")
}

/// Admits a call to the breaker in `slot` or rejects it; see the module documentation for the
/// encoding of the result.
#[napi(catch_unwind)]
pub fn acquire(env: Env, slot: u32, now_ms: f64) -> napi::Result<f64> {
    let now = timestamp(&env, now_ms)?;
    let result = with_slot(slot, |shared| {
        let mut core = shared.core.lock();
        let result = core.try_acquire(now);
        let pending = f64::from(u8::from(core.has_transitions()));
        drop(core);
        match result {
            Ok(ticket) => {
                // The token counts state changes, so it stays far below 2^52; should it ever
                // not, a token a double cannot carry exactly must not become another one.
                let token = ticket.to_raw().0 as f64;
                (token * 2.0 <= MAX_SAFE_INTEGER).then_some(token * 2.0 + pending)
            }
            Err(rejected) => {
                let ns = rejected.retry_after.map_or(NO_RETRY_AFTER, |d| {
                    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
                });
                shared.last_retry_after_ns.store(ns, Ordering::Relaxed);
                let reason = match rejected.reason {
                    RejectionReason::Open => 0.0,
                    RejectionReason::HalfOpenFull => 1.0,
                    RejectionReason::ForcedOpen => 2.0,
                };
                Some(-(1.0 + reason * 2.0 + pending))
            }
        }
    });
    match result {
        Some(Some(code)) => Ok(code),
        Some(None) => Err(error::internal_argument_error(
            &env,
            "permit token exceeds the range of a JavaScript number",
        )),
        None => Err(unknown_slot(&env)),
    }
}

/// Records the outcome (0 success, 1 failure, 2 ignored) of the permit `token` that the
/// breaker in `slot` admitted at `startedMs`. Returns whether state transitions are pending.
#[napi(catch_unwind)]
pub fn record(
    env: Env,
    slot: u32,
    token: f64,
    started_ms: f64,
    outcome: u32,
    now_ms: f64,
) -> napi::Result<bool> {
    if !((0.0..=MAX_SAFE_INTEGER).contains(&token) && token.fract() == 0.0) {
        return Err(error::internal_argument_error(
            &env,
            "permit token must be a non-negative integer",
        ));
    }
    let outcome = match outcome {
        0 => Outcome::Success,
        1 => Outcome::Failure,
        2 => Outcome::Ignored,
        _ => {
            return Err(error::internal_argument_error(
                &env,
                "outcome must be 0 (success), 1 (failure) or 2 (ignored)",
            ));
        }
    };
    let started = timestamp(&env, started_ms)?;
    let now = timestamp(&env, now_ms)?;
    let ticket = PermitTicket::from_raw(token as u64, started);
    with_slot(slot, |shared| {
        let mut core = shared.core.lock();
        core.record(ticket, outcome, now);
        core.has_transitions()
    })
    .ok_or_else(|| unknown_slot(&env))
}

/// The sans-IO circuit breaker of `seawall-core`, driven by the `seawall` facade. Private: use
/// `CircuitBreaker` from `seawall`.
#[napi]
pub struct NativeBreaker {
    // Wrapped so the `catch_unwind` napi generates around each method accepts `&self`: after a
    // panic the core is still a valid value (it only holds plain data).
    shared: AssertUnwindSafe<Arc<Shared>>,
    slot: u32,
}

impl Drop for NativeBreaker {
    fn drop(&mut self) {
        // `try_` so that a finalizer running while the thread is being torn down, or (never
        // expected) while the table is borrowed, leaks a slot instead of panicking.
        let _ = SLOTS.try_with(|slots| {
            if let Ok(mut slots) = slots.try_borrow_mut() {
                slots.release(self.slot);
            }
        });
    }
}

/// A state change, as `stateChange` listeners receive it.
#[napi(object)]
pub struct NativeTransition {
    /// State before (`closed`, `open`, `half_open`, …).
    pub from: String,
    /// State after.
    pub to: String,
    /// Why (`failure_rate`, `open_duration_elapsed`, …).
    pub reason: String,
}

/// The breaker's numbers; rates are percentages.
#[napi(object)]
pub struct NativeMetrics {
    /// Current state.
    pub state: String,
    /// Failed calls among the calls judged now, in percent.
    pub failure_rate: f64,
    /// Slow calls among the calls judged now, in percent.
    pub slow_call_rate: f64,
    /// Calls judged now (the window's, or the completed half-open probes).
    pub calls_in_window: u32,
    /// Failed calls among them.
    pub failures_in_window: u32,
    /// Slow calls among them.
    pub slow_calls_in_window: u32,
    /// Calls admitted and counted since creation.
    pub permitted: f64,
    /// Successes since creation.
    pub successes: f64,
    /// Failures since creation.
    pub failures: f64,
    /// Ignored outcomes since creation.
    pub ignored: f64,
    /// Slow calls since creation.
    pub slow_calls: f64,
    /// Rejected calls since creation.
    pub rejected: f64,
    /// Permits not yet settled.
    pub in_flight: f64,
    /// Times the breaker opened (forced opens included).
    pub times_opened: f64,
    /// Failures in a row right now.
    pub consecutive_failures: u32,
}

#[napi]
impl NativeBreaker {
    /// Builds a breaker from the options object of `new CircuitBreaker(options)`. Keys it does
    /// not know are ignored (the facade's own options pass through it).
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Unknown<'_>) -> napi::Result<Self> {
        let config = parse_options(&env, options)?;
        let shared = Arc::new(Shared {
            core: Mutex::new(BreakerCore::new(config)),
            last_retry_after_ns: AtomicU64::new(NO_RETRY_AFTER),
        });
        let slot = SLOTS
            .with(|slots| slots.borrow_mut().insert(Arc::clone(&shared)))
            .ok_or_else(|| error::internal_argument_error(&env, "too many breakers"))?;
        Ok(NativeBreaker {
            shared: AssertUnwindSafe(shared),
            slot,
        })
    }

    /// The slot to pass to `acquire` and `record`.
    #[napi(getter, catch_unwind)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Milliseconds until the last rejected call could be admitted, or null when the breaker
    /// cannot say (half-open with its probes taken, forced open).
    #[napi(catch_unwind)]
    pub fn last_retry_after_ms(&self) -> Option<f64> {
        match self.shared.last_retry_after_ns.load(Ordering::Relaxed) {
            NO_RETRY_AFTER => None,
            ns => Some(ns as f64 / 1e6),
        }
    }

    /// The state changes queued since the last call, oldest first.
    #[napi(catch_unwind)]
    pub fn take_transitions(&self) -> Vec<NativeTransition> {
        let mut core = self.shared.core.lock();
        let mut out = Vec::new();
        while let Some(t) = core.poll_transition() {
            out.push(NativeTransition {
                from: t.from.as_str().to_owned(),
                to: t.to.as_str().to_owned(),
                reason: t.reason.as_str().to_owned(),
            });
        }
        out
    }

    /// The state at `nowMs` as `index * 2 + pending`, the index into `STATES` of the facade
    /// (closed, open, half_open, forced_open, disabled, metrics_only).
    #[napi(catch_unwind)]
    pub fn state_code(&self, env: Env, now_ms: f64) -> napi::Result<u32> {
        let now = timestamp(&env, now_ms)?;
        let mut core = self.shared.core.lock();
        let index = match core.state(now) {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
            BreakerState::MetricsOnly => 5,
        };
        Ok(index * 2 + u32::from(core.has_transitions()))
    }

    /// The numbers at `nowMs`.
    #[napi(catch_unwind)]
    pub fn metrics(&self, env: Env, now_ms: f64) -> napi::Result<NativeMetrics> {
        let now = timestamp(&env, now_ms)?;
        let m = self.shared.core.lock().metrics(now);
        Ok(NativeMetrics {
            state: m.state.as_str().to_owned(),
            failure_rate: m.failure_rate,
            slow_call_rate: m.slow_call_rate,
            calls_in_window: m.calls_in_window,
            failures_in_window: m.failures_in_window,
            slow_calls_in_window: m.slow_calls_in_window,
            permitted: m.permitted as f64,
            successes: m.successes as f64,
            failures: m.failures as f64,
            ignored: m.ignored as f64,
            slow_calls: m.slow_calls as f64,
            rejected: m.rejected as f64,
            in_flight: m.in_flight as f64,
            times_opened: m.times_opened as f64,
            consecutive_failures: m.consecutive_failures,
        })
    }

    /// Rejects every call until another manual change.
    #[napi(catch_unwind)]
    pub fn force_open(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.core.lock().force_open(now);
        Ok(())
    }

    /// Admits every call and records nothing until another manual change.
    #[napi(catch_unwind)]
    pub fn disable(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.core.lock().disable(now);
        Ok(())
    }

    /// Records outcomes but never rejects until another manual change.
    #[napi(catch_unwind)]
    pub fn metrics_only(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.core.lock().metrics_only(now);
        Ok(())
    }

    /// Back to closed with an empty window.
    #[napi(catch_unwind)]
    pub fn reset(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.core.lock().reset(now);
        Ok(())
    }

    /// The state at `nowMs` as the core's versioned JSON snapshot.
    #[napi(catch_unwind)]
    pub fn snapshot(&self, env: Env, now_ms: f64) -> napi::Result<String> {
        let now = timestamp(&env, now_ms)?;
        Ok(self.shared.core.lock().snapshot(now).to_json())
    }

    /// Replaces the state with a JSON snapshot, as if taken at `nowMs`. A snapshot that cannot
    /// be restored changes nothing and throws (code `SEAWALL_INVALID_SNAPSHOT`).
    #[napi(catch_unwind)]
    pub fn restore(&self, env: Env, json: String, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        let snapshot = Snapshot::from_json(&json).map_err(|e| error::snapshot_error(&env, &e))?;
        self.shared
            .core
            .lock()
            .restore(&snapshot, now)
            .map_err(|e| error::snapshot_error(&env, &e))
    }
}

/// Builds a core config from the JS options object. JS types are checked here (TypeError);
/// numbers go through the core's converters and builder, which own every range.
fn parse_options(env: &Env, options: Unknown<'_>) -> napi::Result<BreakerConfig> {
    let o = Options::root(env, options, "options", "")?;
    config_from(env, &o, Nesting::Root)
}

/// Where breaker options sit: a breaker's own options, or a pool's `breaker` option (whose
/// errors name the field from the pool's options: `breaker.openDurationMs`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Root,
    InPool,
}

impl Nesting {
    fn prefix(self) -> &'static str {
        match self {
            Nesting::Root => "",
            Nesting::InPool => "breaker.",
        }
    }
    fn window(self) -> &'static str {
        match self {
            Nesting::Root => "window.",
            Nesting::InPool => "breaker.window.",
        }
    }
    fn backoff(self) -> &'static str {
        match self {
            Nesting::Root => "backoff.",
            Nesting::InPool => "breaker.backoff.",
        }
    }
}

/// A breaker configuration from an options object; see [`parse_options`].
pub fn config_from(env: &Env, o: &Options<'_>, at: Nesting) -> napi::Result<BreakerConfig> {
    let cfg = |e: ConfigError| error::config_error_at(env, at.prefix(), &e);
    let mut b = BreakerConfig::builder();

    if let Some(v) = o.number("failureRateThreshold")? {
        b = b.failure_rate_threshold(v);
    }
    if let Some(v) = o.number("slowCallRateThreshold")? {
        b = b.slow_call_rate_threshold(v);
    }
    if let Some(v) = o.nullable_number("slowCallDurationMs")? {
        let d = v
            .map(|ms| duration_from_millis("slow_call_duration", ms))
            .transpose()
            .map_err(cfg)?;
        b = b.slow_call_duration(d);
    }
    if let Some(w) = o.object("window", at.window())? {
        const KINDS: &str = "'count' or 'time'";
        let kind = w.kind(KINDS)?;
        let window = match kind.as_str() {
            "count" => WindowConfig::Count {
                size: count_from_f64("window.size", w.required_number("size")?).map_err(cfg)?,
            },
            "time" => WindowConfig::Time {
                duration: duration_from_millis("window.duration", w.required_number("durationMs")?)
                    .map_err(cfg)?,
                buckets: count_from_f64("window.buckets", w.required_number("buckets")?)
                    .map_err(cfg)?,
            },
            other => {
                return Err(error::option_choice_error(
                    env,
                    &w.path("kind"),
                    KINDS,
                    other,
                ));
            }
        };
        b = b.window(window);
    }
    if let Some(v) = o.number("minimumCalls")? {
        b = b.minimum_calls(count_from_f64("minimum_calls", v).map_err(cfg)?);
    }
    if let Some(v) = o.nullable_number("consecutiveFailures")? {
        let n = v
            .map(|n| count_from_f64("consecutive_failures", n))
            .transpose()
            .map_err(cfg)?;
        b = b.consecutive_failures(n);
    }
    let mut open_duration = BreakerConfig::default().open_duration();
    if let Some(v) = o.number("openDurationMs")? {
        open_duration = duration_from_millis("open_duration", v).map_err(cfg)?;
        b = b.open_duration(open_duration);
    }
    if let Some(bo) = o.object("backoff", at.backoff())? {
        const KINDS: &str = "'fixed' or 'exponential'";
        let kind = bo.kind(KINDS)?;
        let backoff = match kind.as_str() {
            "fixed" => BackoffConfig::Fixed,
            // The defaults are the core's (the same in every binding); no jitter unless asked.
            "exponential" => BackoffConfig::Exponential {
                multiplier: bo
                    .number("multiplier")?
                    .unwrap_or(BackoffConfig::DEFAULT_MULTIPLIER),
                max_open_duration: match bo.number("maxOpenDurationMs")? {
                    Some(ms) => {
                        duration_from_millis("backoff.max_open_duration", ms).map_err(cfg)?
                    }
                    None => BackoffConfig::default_max_open_duration(open_duration),
                },
                jitter: bo.number("jitter")?.unwrap_or(0.0),
            },
            other => {
                return Err(error::option_choice_error(
                    env,
                    &bo.path("kind"),
                    KINDS,
                    other,
                ));
            }
        };
        b = b.backoff(backoff);
    }
    if let Some(v) = o.number("halfOpenCalls")? {
        b = b.half_open_calls(count_from_f64("half_open_calls", v).map_err(cfg)?);
    }
    if let Some(v) = o.nullable_number("maxHalfOpenDurationMs")? {
        let d = v
            .map(|ms| duration_from_millis("max_half_open_duration", ms))
            .transpose()
            .map_err(cfg)?;
        b = b.max_half_open_duration(d);
    }
    if let Some(v) = o.nullable_number("seed")? {
        b = b.seed(v.map(seed_from_f64).transpose().map_err(cfg)?);
    }
    b.build().map_err(cfg)
}
