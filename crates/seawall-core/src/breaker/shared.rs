//! [`CircuitBreaker`]: the core state machine behind a lock, with a clock and RAII permits.
//!
//! The lock is held only for the decision (a few dozen nanoseconds), never while the user's
//! call runs, and listeners are called after it is released so they may use the breaker.
//!
//! Most calls take no lock at all: after every locked operation the core's [`FastPath`] is
//! published in an atomic word, and a call that the core would admit without looking at the
//! time (closed), or a success that would change nothing (a count window full of successes), or
//! a rejection before the open duration ends, is decided from that word and counted in atomics
//! (per-thread counters, see `counter.rs`) that the next locked operation folds into the core
//! ([`BreakerCore::absorb_fast`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::config::BreakerConfig;
use super::counter::ThreadCounter;
use super::fast::{FastAdmission, FastCounts, FastPath};
use super::machine::{
    BreakerCore, BreakerMetrics, BreakerState, Outcome, PermitTicket, Rejected, RejectionReason,
    Transition,
};
use super::snapshot::Snapshot;
use crate::error::SnapshotError;
use crate::time::{Clock, MonotonicClock, Timestamp};

/// Something a listener hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The state changed.
    StateChange(Transition),
    /// A call was rejected.
    Rejected(Rejected),
}

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// What the lock protects: the core, and how much of each fast-path count it has absorbed.
struct Locked {
    core: BreakerCore,
    absorbed: FastCounts,
}

struct Inner {
    core: Mutex<Locked>,
    clock: Arc<dyn Clock>,
    /// Replaced whole on registration so emitting clones an `Arc`, never the list.
    listeners: RwLock<Arc<Vec<Listener>>>,
    has_listeners: AtomicBool,
    /// The core's [`FastPath`], packed by [`pack`]; written under the lock after every
    /// operation, read without it.
    fast: AtomicU64,
    /// `FastAdmission::RejectUntil`'s instant, written before `fast`.
    open_until: AtomicU64,
    /// What the fast path did, in total ([`FastCounts`]); `Locked::absorbed` says how much of
    /// it the core has.
    fast_admitted: ThreadCounter,
    fast_succeeded: ThreadCounter,
    fast_rejected: ThreadCounter,
    /// Slow-call tracking needs each call's start time even when it is admitted without the core.
    needs_start: bool,
}

// The packed fast-path word: bits 0–2 the admission, bit 3 `success_is_noop`, the rest the epoch.
const ASK_CORE: u64 = 0;
const ADMIT_COUNTED: u64 = 1;
const ADMIT_UNCOUNTED: u64 = 2;
const REJECT_UNTIL: u64 = 3;
const REJECT_FORCED: u64 = 4;
const KIND_MASK: u64 = 0b111;
const SUCCESS_IS_NOOP: u64 = 0b1000;
const EPOCH_SHIFT: u32 = 4;

fn pack(fp: &FastPath) -> (u64, u64) {
    let (kind, until) = match fp.admission {
        FastAdmission::AskCore => (ASK_CORE, 0),
        FastAdmission::Admit { counted: true } => (ADMIT_COUNTED, 0),
        FastAdmission::Admit { counted: false } => (ADMIT_UNCOUNTED, 0),
        FastAdmission::RejectUntil { until } => (REJECT_UNTIL, until.as_nanos()),
        FastAdmission::Reject => (REJECT_FORCED, 0),
    };
    let noop = if fp.success_is_noop {
        SUCCESS_IS_NOOP
    } else {
        0
    };
    ((fp.epoch << EPOCH_SHIFT) | noop | kind, until)
}

/// The epoch as the packed word holds it (its top bits are shifted out; epochs never get there).
fn packed_epoch(epoch: u64) -> u64 {
    (epoch << EPOCH_SHIFT) >> EPOCH_SHIFT
}

/// A thread-safe circuit breaker. Cloning is cheap and clones share state.
///
/// ```
/// use seawall_core::{BreakerConfig, CircuitBreaker, CallError};
///
/// let breaker = CircuitBreaker::new(BreakerConfig::builder().minimum_calls(5).build()?);
/// let answer: Result<u32, CallError<std::io::Error>> = breaker.call_sync(|| Ok(42));
/// assert_eq!(answer.unwrap(), 42);
/// # Ok::<(), seawall_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The error of a call made through the breaker: rejected, or the call's own error.
#[derive(Debug)]
pub enum CallError<E> {
    /// The breaker did not let the call through.
    Rejected(Rejected),
    /// The call ran and failed.
    Inner(E),
}

impl<E: std::fmt::Display> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Rejected(r) => Some(r),
            CallError::Inner(e) => Some(e),
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker on the real monotonic clock.
    pub fn new(config: BreakerConfig) -> Self {
        Self::with_clock(config, MonotonicClock)
    }

    /// A closed breaker reading `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(config: BreakerConfig, clock: impl Clock) -> Self {
        let needs_start = config.slow_call_duration().is_some();
        let core = BreakerCore::new(config);
        let (fast, open_until) = pack(&core.fast_path());
        CircuitBreaker {
            inner: Arc::new(Inner {
                core: Mutex::new(Locked {
                    core,
                    absorbed: FastCounts::default(),
                }),
                clock: Arc::new(clock),
                listeners: RwLock::new(Arc::new(Vec::new())),
                has_listeners: AtomicBool::new(false),
                fast: AtomicU64::new(fast),
                open_until: AtomicU64::new(open_until),
                fast_admitted: ThreadCounter::default(),
                fast_succeeded: ThreadCounter::default(),
                fast_rejected: ThreadCounter::default(),
                needs_start,
            }),
        }
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// What the fast path counted since `absorbed`, which it then covers. Successes are read
    /// before admissions: a success is counted after its own admission (on whichever thread),
    /// so whatever success this sees, it also sees the admission (no transient in-flight
    /// underflow).
    fn take_fast_counts(&self, absorbed: &mut FastCounts) -> FastCounts {
        let i = &self.inner;
        let succeeded = i.fast_succeeded.total();
        let admitted = i.fast_admitted.total();
        let rejected = i.fast_rejected.total();
        let new = FastCounts {
            admitted: admitted.wrapping_sub(absorbed.admitted),
            succeeded: succeeded.wrapping_sub(absorbed.succeeded),
            rejected: rejected.wrapping_sub(absorbed.rejected),
        };
        *absorbed = FastCounts {
            admitted,
            succeeded,
            rejected,
        };
        new
    }

    /// Runs `f` on the core under the lock, then tells listeners about transitions it caused.
    fn with_core<R>(&self, f: impl FnOnce(&mut BreakerCore, Timestamp) -> R) -> R {
        let now = self.now();
        let mut locked = self.inner.core.lock();
        let Locked { core, absorbed } = &mut *locked;
        core.absorb_fast(self.take_fast_counts(absorbed));
        let r = f(core, now);
        let (fast, open_until) = pack(&core.fast_path());
        self.inner.open_until.store(open_until, Ordering::Relaxed);
        self.inner.fast.store(fast, Ordering::Release);
        if core.has_transitions() {
            if self.inner.has_listeners.load(Ordering::Relaxed) {
                let mut transitions = Vec::new();
                while let Some(t) = core.poll_transition() {
                    transitions.push(t);
                }
                drop(locked);
                for t in transitions {
                    self.emit(&Event::StateChange(t));
                }
            } else {
                while core.poll_transition().is_some() {}
            }
        }
        r
    }

    fn emit(&self, event: &Event) {
        // Hold a reference, not the lock, so a listener may add listeners without deadlocking.
        let listeners = Arc::clone(&self.inner.listeners.read());
        for l in listeners.iter() {
            l(event);
        }
    }

    /// Calls `listener` on every state change and rejection, after the breaker's lock is
    /// released. Listeners run on the thread that caused the event; keep them short.
    pub fn on_event(&self, listener: impl Fn(&Event) + Send + Sync + 'static) {
        let mut listeners = self.inner.listeners.write();
        let mut next = Vec::clone(&listeners);
        next.push(Arc::new(listener));
        *listeners = Arc::new(next);
        self.inner.has_listeners.store(true, Ordering::Relaxed);
    }

    /// Admits a call, or says why not and when to retry. The permit records exactly one
    /// outcome; dropped unrecorded, it is released as ignored.
    // Inlined so the result is built in the caller's frame: returned through a call, the
    // `Result<Permit, Rejected>` was copied in pieces and the copy stalled on store forwarding
    // (two thirds of a rejection's time in the profile).
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let i = &self.inner;
        let word = i.fast.load(Ordering::Acquire);
        let epoch = word >> EPOCH_SHIFT;
        let fast = match word & KIND_MASK {
            ADMIT_COUNTED => {
                i.fast_admitted.add_one();
                let started = if i.needs_start {
                    self.now()
                } else {
                    Timestamp::ZERO
                };
                return Ok(Permit {
                    breaker: self,
                    ticket: Some(PermitTicket::admitted_fast(epoch, started, true)),
                });
            }
            ADMIT_UNCOUNTED => {
                return Ok(Permit {
                    breaker: self,
                    ticket: Some(PermitTicket::admitted_fast(epoch, Timestamp::ZERO, false)),
                });
            }
            REJECT_UNTIL => {
                let until = Timestamp::from_nanos(i.open_until.load(Ordering::Relaxed));
                // The coarse reading lags by at most `slack`: if even the latest time it could
                // stand for is before `until`, the breaker is still open. Close to the end, ask
                // the core with a precise reading.
                let (now, slack) = i.clock.now_coarse();
                (now.saturating_add(slack) < until).then(|| Rejected {
                    reason: RejectionReason::Open,
                    retry_after: Some(until.saturating_duration_since(now)),
                })
            }
            REJECT_FORCED => Some(Rejected {
                reason: RejectionReason::ForcedOpen,
                retry_after: None,
            }),
            _ => None,
        };
        match fast {
            Some(rejected) => {
                i.fast_rejected.add_one();
                if i.has_listeners.load(Ordering::Relaxed) {
                    self.emit(&Event::Rejected(rejected));
                }
                Err(rejected)
            }
            None => self.try_acquire_locked(),
        }
    }

    #[inline(never)]
    fn try_acquire_locked(&self) -> Result<Permit<'_>, Rejected> {
        match self.with_core(|c, now| c.try_acquire(now)) {
            Ok(ticket) => Ok(Permit {
                breaker: self,
                ticket: Some(ticket),
            }),
            Err(rejected) => {
                if self.inner.has_listeners.load(Ordering::Relaxed) {
                    self.emit(&Event::Rejected(rejected));
                }
                Err(rejected)
            }
        }
    }

    #[inline]
    fn record(&self, ticket: PermitTicket, outcome: Outcome) {
        if !ticket.counted() {
            // Admitted while disabled: the core ignores the outcome.
            return;
        }
        if outcome == Outcome::Success {
            let word = self.inner.fast.load(Ordering::Acquire);
            if word & SUCCESS_IS_NOOP != 0 && word >> EPOCH_SHIFT == packed_epoch(ticket.epoch()) {
                self.inner.fast_succeeded.add_one();
                return;
            }
        }
        self.record_locked(ticket, outcome);
    }

    #[inline(never)]
    fn record_locked(&self, ticket: PermitTicket, outcome: Outcome) {
        self.with_core(|c, now| c.record(ticket, outcome, now));
    }

    /// Runs `f` if the breaker admits it; `Err` counts as a failure, `Ok` as a success.
    /// A future dropped before it finishes (a cancelled request) records nothing.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(default_classify, f).await
    }

    /// Like [`call`](Self::call), with `classify` deciding what counts as a failure (e.g. only
    /// server errors, not "not found").
    pub async fn call_with<T, E, F, Fut, C>(&self, classify: C, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> Outcome,
    {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = f().await;
        permit.record(classify(&result));
        result.map_err(CallError::Inner)
    }

    /// Runs the blocking `f` if the breaker admits it; `Err` counts as a failure.
    #[inline(always)]
    pub fn call_sync<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_sync_with(default_classify, f)
    }

    /// Like [`call_sync`](Self::call_sync), with `classify` deciding what counts as a failure.
    // Inlined (with `try_acquire`) so a rejection is built where the caller keeps its result:
    // through a call, the `Rejected` was copied in pieces and the copy stalled on store
    // forwarding.
    #[inline(always)]
    pub fn call_sync_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = f();
        permit.record(classify(&result));
        result.map_err(CallError::Inner)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.with_core(|c, now| c.state(now))
    }

    /// The current numbers.
    pub fn metrics(&self) -> BreakerMetrics {
        self.with_core(|c, now| c.metrics(now))
    }

    /// Rejects every call until [`reset`](Self::reset) or another manual change.
    pub fn force_open(&self) {
        self.with_core(|c, now| c.force_open(now));
    }

    /// Permits every call and records nothing until another manual change.
    pub fn disable(&self) {
        self.with_core(|c, now| c.disable(now));
    }

    /// Records outcomes but never rejects, until another manual change.
    pub fn metrics_only(&self) {
        self.with_core(|c, now| c.metrics_only(now));
    }

    /// Closed, with an empty window and the base open duration.
    pub fn reset(&self) {
        self.with_core(|c, now| c.reset(now));
    }

    /// The state, for [`restore`](Self::restore) here or in another process or language.
    pub fn snapshot(&self) -> Snapshot {
        self.with_core(|c, now| c.snapshot(now))
    }

    /// Resumes from a snapshot.
    pub fn restore(&self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        self.with_core(|c, now| c.restore(snapshot, now))
    }
}

fn default_classify<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

/// Permission to make one call. Record how it went with [`success`](Self::success),
/// [`failure`](Self::failure) or [`ignore`](Self::ignore); dropping it unrecorded counts as
/// ignored, so a half-open probe slot is never lost.
#[must_use = "dropping a permit at once records the call as ignored"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Option<PermitTicket>,
}

impl std::fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Permit<'_> {
    /// Records `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record(t, outcome);
        }
    }
    /// The call succeeded.
    pub fn success(self) {
        self.record(Outcome::Success)
    }
    /// The call failed.
    pub fn failure(self) {
        self.record(Outcome::Failure)
    }
    /// The call should not count either way.
    pub fn ignore(self) {
        self.record(Outcome::Ignored)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record(t, Outcome::Ignored);
        }
    }
}
