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
//! Most calls make no native call at all. The facade owns a `Float64Array` (see [`fast`] for
//! its layout) that it hands to the constructor; after every locked operation this module
//! writes the core's [`FastPath`] into it (what the core would answer without looking, and
//! until when), and the facade replays those answers, counting what it did in the same array.
//! Every locked operation starts by folding those counts into the core
//! ([`BreakerCore::absorb_fast`]) and zeroing them, so the core's metrics and decisions are the
//! same as if it had been asked every time (the core's property tests check that).
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
use napi::bindgen_prelude::{Float64Array, Unknown};
use napi_derive::napi;
use parking_lot::Mutex;
use seawall_core::breaker::{count_from_f64, duration_from_millis};
use seawall_core::{
    BackoffConfig, BreakerConfig, BreakerCore, BreakerState, ConfigError, FastAdmission,
    FastCounts, FastPath, Outcome, PermitTicket, RejectionReason, Snapshot, WindowConfig,
};

use crate::error;
use crate::options::{MAX_SAFE_INTEGER, Options, seed_from_f64, timestamp};
use crate::slots::Slots;

/// `last_retry_after_ns` when the last rejection gave no retry-after.
const NO_RETRY_AFTER: u64 = u64::MAX;

/// The layout of the facade's fast-path array: indices and admission codes. The facade
/// (lib/breaker.js) has the same constants.
pub mod fast {
    /// What the core would answer to an acquire: one of the `ADMIT_*`/`REJECT_*`/`ASK_CORE`.
    pub const ADMISSION: usize = 0;
    /// For `REJECT_UNTIL`: the end of the open duration, in whole nanoseconds on the clock.
    pub const UNTIL_NS: usize = 1;
    /// The state instance; a call admitted on the fast path carries token `epoch * 2 + 1`.
    pub const EPOCH: usize = 2;
    /// 1 when a success of a call admitted in `EPOCH` changes nothing but the counters.
    pub const SUCCESS_NOOP: usize = 3;
    /// 1 when the breaker tracks slow calls, so a call's start time must be read at admission.
    pub const NEEDS_START: usize = 4;
    /// Counts the facade adds to and this module folds into the core (then zeroes).
    pub const ADMITTED: usize = 5;
    pub const SUCCEEDED: usize = 6;
    pub const REJECTED: usize = 7;
    /// The array's length.
    pub const LEN: usize = 8;

    pub const ASK_CORE: f64 = 0.0;
    pub const ADMIT_COUNTED: f64 = 1.0;
    pub const ADMIT_UNCOUNTED: f64 = 2.0;
    pub const REJECT_UNTIL: f64 = 3.0;
    pub const REJECT_FORCED: f64 = 4.0;
}

/// The core and the facade's fast-path array, under one lock.
struct Locked {
    core: BreakerCore,
    /// The facade's `Float64Array` ([`fast`]); `None` when none was given.
    fast: Option<Float64Array>,
    needs_start: bool,
}

impl Locked {
    /// The facade's array, if it has the expected length.
    fn fast_slice(&mut self) -> Option<&mut [f64]> {
        let fast = self.fast.as_mut()?;
        // SAFETY: the array is the facade's private `Float64Array` over an `ArrayBuffer` it
        // created (`new ArrayBuffer`, so its backing store is off the V8 heap and never moves)
        // and never hands out, so nothing can detach or resize it; `Float64Array` holds a
        // reference that keeps it alive for as long as this value exists. It is only touched
        // here, under the lock, on the JS thread during a native call, when no JS runs, and the
        // slice does not outlive this borrow of `self`.
        let slice = unsafe { fast.as_mut() };
        (slice.len() >= fast::LEN).then_some(slice)
    }

    /// Folds in what the facade's fast path counted since the last locked operation.
    fn absorb(&mut self) {
        let Some(f) = self.fast_slice() else { return };
        let counts = FastCounts {
            admitted: count(f[fast::ADMITTED]),
            succeeded: count(f[fast::SUCCEEDED]),
            rejected: count(f[fast::REJECTED]),
        };
        f[fast::ADMITTED] = 0.0;
        f[fast::SUCCEEDED] = 0.0;
        f[fast::REJECTED] = 0.0;
        self.core.absorb_fast(counts);
    }

    /// Writes the core's fast path for the facade to replay until the next locked operation.
    fn publish(&mut self) {
        let path = self.core.fast_path();
        let needs_start = self.needs_start;
        let Some(f) = self.fast_slice() else { return };
        write_fast_path(f, &path, needs_start);
    }
}

/// A count the facade kept in a double (whole, non-negative, far below 2^53).
fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

/// Writes `path` into the facade's array. Anything a double cannot carry exactly (an epoch or
/// an instant past 2^53) is published as "ask the core", which is always correct.
fn write_fast_path(f: &mut [f64], path: &FastPath, needs_start: bool) {
    let epoch = path.epoch as f64;
    let (admission, until) = if epoch * 2.0 + 1.0 > MAX_SAFE_INTEGER {
        (fast::ASK_CORE, 0.0)
    } else {
        match path.admission {
            FastAdmission::Admit { counted: true } => (fast::ADMIT_COUNTED, 0.0),
            FastAdmission::Admit { counted: false } => (fast::ADMIT_UNCOUNTED, 0.0),
            FastAdmission::RejectUntil { until } => {
                let ns = until.as_nanos();
                if ns as f64 <= MAX_SAFE_INTEGER {
                    (fast::REJECT_UNTIL, ns as f64)
                } else {
                    (fast::ASK_CORE, 0.0)
                }
            }
            FastAdmission::Reject => (fast::REJECT_FORCED, 0.0),
            FastAdmission::AskCore => (fast::ASK_CORE, 0.0),
        }
    };
    f[fast::ADMISSION] = admission;
    f[fast::UNTIL_NS] = until;
    f[fast::EPOCH] = if admission == fast::ASK_CORE {
        -1.0
    } else {
        epoch
    };
    f[fast::SUCCESS_NOOP] = f64::from(u8::from(
        path.success_is_noop && admission != fast::ASK_CORE,
    ));
    f[fast::NEEDS_START] = f64::from(u8::from(needs_start));
}

/// What a `NativeBreaker` and its slot in [`SLOTS`] share.
struct Shared {
    locked: Mutex<Locked>,
    /// Retry-after of the last rejection, read by the facade only after a rejection.
    last_retry_after_ns: AtomicU64,
}

impl Shared {
    /// Runs `f` on the core under the lock: first the fast path's counts are folded in, and
    /// afterwards the core's fast path is republished.
    fn with_core<R>(&self, f: impl FnOnce(&mut BreakerCore) -> R) -> R {
        let mut locked = self.locked.lock();
        locked.absorb();
        let r = f(&mut locked.core);
        locked.publish();
        r
    }
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
        let (result, pending) = shared.with_core(|core| {
            let result = core.try_acquire(now);
            (result, f64::from(u8::from(core.has_transitions())))
        });
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
        shared.with_core(|core| {
            core.record(ticket, outcome, now);
            core.has_transitions()
        })
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
    ///
    /// `fast` is the facade's fast-path array (see the module documentation): a
    /// `Float64Array` of at least 8 elements over its own, never shared `ArrayBuffer`.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Unknown<'_>, fast: Option<Float64Array>) -> napi::Result<Self> {
        let config = parse_options(&env, options)?;
        if fast.as_ref().is_some_and(|f| f.len() < fast::LEN) {
            return Err(error::internal_argument_error(
                &env,
                "the fast-path array is too short",
            ));
        }
        let needs_start = config.slow_call_duration().is_some();
        let mut locked = Locked {
            core: BreakerCore::new(config),
            fast,
            needs_start,
        };
        locked.publish();
        let shared = Arc::new(Shared {
            locked: Mutex::new(locked),
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
        self.shared.with_core(|core| {
            let mut out = Vec::new();
            while let Some(t) = core.poll_transition() {
                out.push(NativeTransition {
                    from: t.from.as_str().to_owned(),
                    to: t.to.as_str().to_owned(),
                    reason: t.reason.as_str().to_owned(),
                });
            }
            out
        })
    }

    /// The state at `nowMs` as `index * 2 + pending`, the index into `STATES` of the facade
    /// (closed, open, half_open, forced_open, disabled, metrics_only).
    #[napi(catch_unwind)]
    pub fn state_code(&self, env: Env, now_ms: f64) -> napi::Result<u32> {
        let now = timestamp(&env, now_ms)?;
        Ok(self.shared.with_core(|core| {
            let index = match core.state(now) {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
                BreakerState::ForcedOpen => 3,
                BreakerState::Disabled => 4,
                BreakerState::MetricsOnly => 5,
            };
            index * 2 + u32::from(core.has_transitions())
        }))
    }

    /// The numbers at `nowMs`.
    #[napi(catch_unwind)]
    pub fn metrics(&self, env: Env, now_ms: f64) -> napi::Result<NativeMetrics> {
        let now = timestamp(&env, now_ms)?;
        let m = self.shared.with_core(|core| core.metrics(now));
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
        self.shared.with_core(|core| core.force_open(now));
        Ok(())
    }

    /// Admits every call and records nothing until another manual change.
    #[napi(catch_unwind)]
    pub fn disable(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.with_core(|core| core.disable(now));
        Ok(())
    }

    /// Records outcomes but never rejects until another manual change.
    #[napi(catch_unwind)]
    pub fn metrics_only(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.with_core(|core| core.metrics_only(now));
        Ok(())
    }

    /// Back to closed with an empty window.
    #[napi(catch_unwind)]
    pub fn reset(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        self.shared.with_core(|core| core.reset(now));
        Ok(())
    }

    /// The state at `nowMs` as the core's versioned JSON snapshot.
    #[napi(catch_unwind)]
    pub fn snapshot(&self, env: Env, now_ms: f64) -> napi::Result<String> {
        let now = timestamp(&env, now_ms)?;
        Ok(self.shared.with_core(|core| core.snapshot(now)).to_json())
    }

    /// Replaces the state with a JSON snapshot, as if taken at `nowMs`. A snapshot that cannot
    /// be restored changes nothing and throws (code `SEAWALL_INVALID_SNAPSHOT`).
    #[napi(catch_unwind)]
    pub fn restore(&self, env: Env, json: String, now_ms: f64) -> napi::Result<()> {
        let now = timestamp(&env, now_ms)?;
        let snapshot = Snapshot::from_json(&json).map_err(|e| error::snapshot_error(&env, &e))?;
        self.shared
            .with_core(|core| core.restore(&snapshot, now))
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
