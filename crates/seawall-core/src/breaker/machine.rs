//! The breaker's state machine: `try_acquire(now)`, `record(ticket, outcome, now)`.
//!
//! Invariants this file keeps:
//! - a half-open breaker never has more than `half_open_calls` probes in flight or completed;
//! - an outcome counts towards a decision only in the state instance (the *epoch*) that admitted
//!   it: a slow call admitted while closed cannot reopen a breaker that has since half-opened;
//! - counters add up: `permitted == successes + failures + ignored + in_flight`;
//! - all transitions are lazy: open → half-open and the half-open timeout happen on the first
//!   call that passes a time past the deadline; nothing needs a timer.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::time::Duration;

use super::config::{BackoffConfig, BreakerConfig, WindowConfig};
use super::window::{CallRecord, CountWindow, TimeWindow, Totals, Window};
use crate::time::{Timestamp, duration_nanos};

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; outcomes are recorded and judged.
    Closed,
    /// Calls are rejected until the open duration has passed.
    Open,
    /// A few probe calls are let through to test the dependency.
    HalfOpen,
    /// Rejects every call until changed by hand.
    ForcedOpen,
    /// Permits every call and records nothing.
    Disabled,
    /// Permits every call and records outcomes, but never opens.
    MetricsOnly,
}

impl BreakerState {
    /// The snake_case name used in snapshots, metrics and conformance vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
            BreakerState::MetricsOnly => "metrics_only",
        }
    }
}

/// How a call ended, as the caller classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Not counted at all (e.g. a client error, or a call cancelled by the caller).
    Ignored,
}

/// Why a call was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionReason {
    /// The breaker is open.
    Open,
    /// The breaker is half-open and all its probe slots are taken.
    HalfOpenFull,
    /// The breaker was forced open by hand.
    ForcedOpen,
}

impl RejectionReason {
    /// The snake_case name used by bindings and conformance vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::Open => "open",
            RejectionReason::HalfOpenFull => "half_open_full",
            RejectionReason::ForcedOpen => "forced_open",
        }
    }
}

/// A call the breaker refused to let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker rejected the call ({})", reason.as_str())]
pub struct Rejected {
    /// Why.
    pub reason: RejectionReason,
    /// When a call may be admitted again, if the breaker knows (it does while open).
    pub retry_after: Option<Duration>,
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionReason {
    /// Failure rate in the window reached the threshold.
    FailureRate,
    /// Slow-call rate in the window reached the threshold.
    SlowCallRate,
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// The open duration passed.
    OpenDurationElapsed,
    /// The half-open probes succeeded.
    ProbesSucceeded,
    /// Too many half-open probes failed.
    ProbesFailed,
    /// Too many half-open probes were slow.
    ProbesSlow,
    /// Half-open lasted longer than `max_half_open_duration`.
    HalfOpenTimeout,
    /// `force_open()`.
    ForcedOpen,
    /// `disable()`.
    Disabled,
    /// `metrics_only()`.
    MetricsOnly,
    /// `reset()`.
    Reset,
    /// A snapshot was restored.
    Restored,
}

impl TransitionReason {
    /// The snake_case name used by bindings and conformance vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionReason::FailureRate => "failure_rate",
            TransitionReason::SlowCallRate => "slow_call_rate",
            TransitionReason::ConsecutiveFailures => "consecutive_failures",
            TransitionReason::OpenDurationElapsed => "open_duration_elapsed",
            TransitionReason::ProbesSucceeded => "probes_succeeded",
            TransitionReason::ProbesFailed => "probes_failed",
            TransitionReason::ProbesSlow => "probes_slow",
            TransitionReason::HalfOpenTimeout => "half_open_timeout",
            TransitionReason::ForcedOpen => "forced_open",
            TransitionReason::Disabled => "disabled",
            TransitionReason::MetricsOnly => "metrics_only",
            TransitionReason::Reset => "reset",
            TransitionReason::Restored => "restored",
        }
    }
}

/// A state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// When (the `now` of the call that caused it).
    pub at: Timestamp,
}

/// Proof of admission, handed back with the outcome. Plain data so that bindings can carry it
/// across the FFI boundary as two numbers ([`PermitTicket::to_raw`]); the Rust [`Permit`]
/// wraps it in an RAII guard.
///
/// [`Permit`]: super::Permit
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a ticket must be handed back to `record`, or a half-open probe slot stays taken"]
pub struct PermitTicket {
    /// `epoch << 2 | counted << 1 | 1`: one non-zero word, so that `Option<PermitTicket>` (an
    /// RAII permit) is two plain words, which the compiler moves without the byte-sized stores
    /// that stalled store forwarding on the breaker's hot path.
    packed: NonZeroU64,
    started: Timestamp,
}

impl PermitTicket {
    fn new(epoch: u64, started: Timestamp, counted: bool) -> Self {
        let packed = (epoch << 2) | (u64::from(counted) << 1) | 1;
        PermitTicket {
            packed: NonZeroU64::new(packed).unwrap_or(NonZeroU64::MIN),
            started,
        }
    }

    /// When the call was admitted.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// The ticket as `(token, started)`; the token is below 2^53 for any realistic breaker, so
    /// JavaScript numbers carry it exactly.
    pub fn to_raw(self) -> (u64, Timestamp) {
        (
            (self.epoch() << 1) | u64::from(self.counted()),
            self.started,
        )
    }

    /// The ticket of a call the fast path admitted in `epoch` at `started` (see
    /// [`FastPath`](super::FastPath)). Hand it to [`BreakerCore::record`] after
    /// [`BreakerCore::absorb_fast`] has counted the admission.
    pub fn admitted_fast(epoch: u64, started: Timestamp, counted: bool) -> Self {
        Self::new(epoch, started, counted)
    }

    /// The state instance that admitted the call.
    pub fn epoch(&self) -> u64 {
        self.packed.get() >> 2
    }

    /// Whether the call counts (false for calls admitted while disabled, whose outcome the
    /// core ignores).
    pub fn counted(&self) -> bool {
        self.packed.get() & 2 != 0
    }

    /// Rebuilds a ticket from [`to_raw`](Self::to_raw)'s parts.
    pub fn from_raw(token: u64, started: Timestamp) -> Self {
        Self::new(token >> 1, started, token & 1 == 1)
    }
}

/// A point-in-time view of the breaker's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerMetrics {
    /// Current state.
    pub state: BreakerState,
    /// Percentage of failed calls among the calls judged now (the window, or the half-open
    /// probes); 0 when there are none.
    pub failure_rate: f64,
    /// Percentage of slow calls among the calls judged now; 0 when there are none.
    pub slow_call_rate: f64,
    /// Calls judged now (the window's, or the completed half-open probes).
    pub calls_in_window: u32,
    /// Failed calls among them.
    pub failures_in_window: u32,
    /// Slow calls among them.
    pub slow_calls_in_window: u32,
    /// Calls admitted and counted since creation (disabled-state calls are not counted).
    pub permitted: u64,
    /// Outcomes recorded as success since creation.
    pub successes: u64,
    /// Outcomes recorded as failure since creation.
    pub failures: u64,
    /// Outcomes recorded as ignored (including permits released without an outcome).
    pub ignored: u64,
    /// Calls that were slow (success or failure) since creation.
    pub slow_calls: u64,
    /// Calls rejected since creation.
    pub rejected: u64,
    /// Permits admitted and not yet recorded.
    pub in_flight: u64,
    /// How many times the breaker has opened (forced opens included).
    pub times_opened: u64,
    /// Failures in a row right now.
    pub consecutive_failures: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    Closed,
    Open {
        until: Timestamp,
    },
    HalfOpen {
        /// When this process entered (or restored) the trial.
        entered: Timestamp,
        /// Time the trial had already run before `entered` (non-zero only after a restore;
        /// kept apart because a timestamp cannot go below the clock's origin).
        elapsed_before: u64,
        in_flight: u32,
        completed: u32,
        failures: u32,
        slow: u32,
    },
    ForcedOpen,
    Disabled,
    MetricsOnly,
}

impl Phase {
    fn state(&self) -> BreakerState {
        match self {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
            Phase::ForcedOpen => BreakerState::ForcedOpen,
            Phase::Disabled => BreakerState::Disabled,
            Phase::MetricsOnly => BreakerState::MetricsOnly,
        }
    }
}

/// Transitions are rare; a caller that never polls loses the oldest ones past this many.
const EVENT_QUEUE_CAPACITY: usize = 64;

/// The single-threaded, sans-IO circuit breaker. Wrap it in a lock to share it
/// ([`CircuitBreaker`](super::CircuitBreaker) does).
#[derive(Debug, Clone)]
pub struct BreakerCore {
    pub(crate) config: BreakerConfig,
    pub(crate) window: Window,
    pub(crate) phase: Phase,
    epoch: u64,
    pub(crate) consecutive_failures: u32,
    /// Opens since the last successful close; drives the exponential backoff.
    pub(crate) consecutive_opens: u32,
    rng: u64,
    permitted: u64,
    successes: u64,
    failures: u64,
    ignored: u64,
    slow_calls: u64,
    rejected: u64,
    in_flight: u64,
    times_opened: u64,
    events: VecDeque<Transition>,
}

impl BreakerCore {
    /// A closed breaker with an empty window.
    pub fn new(config: BreakerConfig) -> Self {
        let window = match config.window {
            WindowConfig::Count { size } => Window::Count(CountWindow::new(size)),
            WindowConfig::Time { duration, buckets } => {
                Window::Time(TimeWindow::new(duration, buckets))
            }
        };
        let rng = config.seed.unwrap_or_else(random_seed);
        BreakerCore {
            config,
            window,
            phase: Phase::Closed,
            epoch: 0,
            consecutive_failures: 0,
            consecutive_opens: 0,
            rng,
            permitted: 0,
            successes: 0,
            failures: 0,
            ignored: 0,
            slow_calls: 0,
            rejected: 0,
            in_flight: 0,
            times_opened: 0,
            events: VecDeque::with_capacity(EVENT_QUEUE_CAPACITY),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state instance: it changes on every transition and reset.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn add_fast_counts(&mut self, c: super::FastCounts) {
        self.permitted += c.admitted;
        self.successes += c.succeeded;
        self.in_flight = (self.in_flight + c.admitted).saturating_sub(c.succeeded);
        self.rejected += c.rejected;
    }

    /// Admits a call or says why not.
    pub fn try_acquire(&mut self, now: Timestamp) -> Result<PermitTicket, Rejected> {
        self.advance(now);
        let counted = match &mut self.phase {
            Phase::Closed | Phase::MetricsOnly => true,
            Phase::Disabled => false,
            Phase::HalfOpen {
                in_flight,
                completed,
                ..
            } => {
                if *in_flight + *completed >= self.config.half_open_calls {
                    return Err(self.reject(RejectionReason::HalfOpenFull, None));
                }
                *in_flight += 1;
                true
            }
            Phase::Open { until } => {
                let retry_after = until.saturating_duration_since(now);
                return Err(self.reject(RejectionReason::Open, Some(retry_after)));
            }
            Phase::ForcedOpen => return Err(self.reject(RejectionReason::ForcedOpen, None)),
        };
        if counted {
            self.permitted += 1;
            self.in_flight += 1;
        }
        Ok(PermitTicket::new(self.epoch, now, counted))
    }

    fn reject(&mut self, reason: RejectionReason, retry_after: Option<Duration>) -> Rejected {
        self.rejected += 1;
        Rejected {
            reason,
            retry_after,
        }
    }

    /// Records the outcome of an admitted call; its duration is `now - ticket.started()`.
    pub fn record(&mut self, ticket: PermitTicket, outcome: Outcome, now: Timestamp) {
        if !ticket.counted() {
            return;
        }
        self.advance(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        let slow = outcome != Outcome::Ignored
            && self
                .config
                .slow_call_duration
                .is_some_and(|limit| now.saturating_duration_since(ticket.started()) > limit);
        match outcome {
            Outcome::Success => self.successes += 1,
            Outcome::Failure => self.failures += 1,
            Outcome::Ignored => self.ignored += 1,
        }
        self.slow_calls += u64::from(slow);
        if ticket.epoch() != self.epoch {
            // Admitted by a state that has since ended: counted, but it decides nothing.
            return;
        }
        let record = CallRecord {
            failed: outcome == Outcome::Failure,
            slow,
        };
        match &mut self.phase {
            Phase::Closed | Phase::MetricsOnly => {
                if outcome == Outcome::Ignored {
                    return;
                }
                self.window.record(record, now);
                if record.failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                } else {
                    self.consecutive_failures = 0;
                }
                if matches!(self.phase, Phase::Closed) {
                    self.judge_closed(now);
                }
            }
            Phase::HalfOpen {
                in_flight,
                completed,
                failures,
                slow: slow_probes,
                ..
            } => {
                *in_flight = in_flight.saturating_sub(1);
                if outcome == Outcome::Ignored {
                    return;
                }
                *completed += 1;
                *failures += u32::from(record.failed);
                *slow_probes += u32::from(record.slow);
                let (completed, failures, slow_probes) = (*completed, *failures, *slow_probes);
                self.judge_half_open(completed, failures, slow_probes, now);
            }
            // No permits are handed out in these states, so no ticket can carry their epoch.
            Phase::Open { .. } | Phase::ForcedOpen | Phase::Disabled => {}
        }
    }

    fn judge_closed(&mut self, now: Timestamp) {
        if let Some(limit) = self.config.consecutive_failures
            && self.consecutive_failures >= limit
        {
            self.open(TransitionReason::ConsecutiveFailures, now);
            return;
        }
        let t = self.window.totals(now);
        if t.calls < self.config.effective_minimum_calls() {
            return;
        }
        if rate_reached(t.failures, t.calls, self.config.failure_rate_threshold) {
            self.open(TransitionReason::FailureRate, now);
        } else if self.config.slow_call_duration.is_some()
            && rate_reached(t.slow, t.calls, self.config.slow_call_rate_threshold)
        {
            self.open(TransitionReason::SlowCallRate, now);
        }
    }

    /// Decides as soon as the outcome of the trial is certain: the rates are over all
    /// `half_open_calls` probes, so enough failures reopen before the last probe finishes.
    pub(crate) fn judge_half_open(
        &mut self,
        completed: u32,
        failures: u32,
        slow: u32,
        now: Timestamp,
    ) {
        let n = self.config.half_open_calls;
        if rate_reached(failures, n, self.config.failure_rate_threshold) {
            self.open(TransitionReason::ProbesFailed, now);
        } else if self.config.slow_call_duration.is_some()
            && rate_reached(slow, n, self.config.slow_call_rate_threshold)
        {
            self.open(TransitionReason::ProbesSlow, now);
        } else if completed >= n {
            self.consecutive_opens = 0;
            self.enter(Phase::Closed, TransitionReason::ProbesSucceeded, now);
        }
    }

    /// Applies the transitions that time alone causes.
    fn advance(&mut self, now: Timestamp) {
        match self.phase {
            Phase::Open { until } if now >= until => {
                self.enter(
                    Phase::HalfOpen {
                        entered: now,
                        elapsed_before: 0,
                        in_flight: 0,
                        completed: 0,
                        failures: 0,
                        slow: 0,
                    },
                    TransitionReason::OpenDurationElapsed,
                    now,
                );
            }
            Phase::HalfOpen {
                entered,
                elapsed_before,
                ..
            } => {
                if let Some(max) = self.config.max_half_open_duration
                    && half_open_elapsed(entered, elapsed_before, now) >= duration_nanos(max)
                {
                    self.open(TransitionReason::HalfOpenTimeout, now);
                }
            }
            _ => {}
        }
    }

    fn open(&mut self, reason: TransitionReason, now: Timestamp) {
        let d = self.next_open_duration();
        self.consecutive_opens = self.consecutive_opens.saturating_add(1);
        self.times_opened += 1;
        self.enter(
            Phase::Open {
                until: now.saturating_add(d),
            },
            reason,
            now,
        );
    }

    fn next_open_duration(&mut self) -> Duration {
        let base = self.config.open_duration;
        match self.config.backoff {
            BackoffConfig::Fixed => base,
            BackoffConfig::Exponential {
                multiplier,
                max_open_duration,
                jitter,
            } => {
                let exp = i32::try_from(self.consecutive_opens).unwrap_or(i32::MAX);
                let grown = base.as_secs_f64() * multiplier.powi(exp);
                let capped = grown.min(max_open_duration.as_secs_f64());
                let jittered = if jitter > 0.0 {
                    capped * (1.0 - jitter * self.next_unit())
                } else {
                    capped
                };
                // Never below 1 ms: an open breaker that half-opens at once protects nothing.
                Duration::from_secs_f64(jittered).max(super::config::MIN_DURATION)
            }
        }
    }

    fn next_unit(&mut self) -> f64 {
        splitmix_unit(&mut self.rng)
    }

    /// Moves to `phase`, starting a new epoch so outcomes admitted before no longer decide.
    pub(crate) fn enter(&mut self, phase: Phase, reason: TransitionReason, now: Timestamp) {
        let from = self.phase.state();
        if matches!(phase, Phase::Closed | Phase::MetricsOnly) {
            self.window.clear(now);
            self.consecutive_failures = 0;
        }
        self.phase = phase;
        self.epoch += 1;
        if from == phase.state() {
            return;
        }
        if self.events.len() == EVENT_QUEUE_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(Transition {
            from,
            to: phase.state(),
            reason,
            at: now,
        });
    }

    /// The state at `now` (applying any transition that time alone causes).
    pub fn state(&mut self, now: Timestamp) -> BreakerState {
        self.advance(now);
        self.phase.state()
    }

    /// When an open breaker will admit probes again, if it is open.
    pub fn open_until(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Open { until } => Some(until),
            _ => None,
        }
    }

    /// The numbers at `now`.
    pub fn metrics(&mut self, now: Timestamp) -> BreakerMetrics {
        self.advance(now);
        let t = match self.phase {
            Phase::HalfOpen {
                completed,
                failures,
                slow,
                ..
            } => Totals {
                calls: completed,
                failures,
                slow,
            },
            _ => self.window.totals(now),
        };
        BreakerMetrics {
            state: self.phase.state(),
            failure_rate: percent(t.failures, t.calls),
            slow_call_rate: percent(t.slow, t.calls),
            calls_in_window: t.calls,
            failures_in_window: t.failures,
            slow_calls_in_window: t.slow,
            permitted: self.permitted,
            successes: self.successes,
            failures: self.failures,
            ignored: self.ignored,
            slow_calls: self.slow_calls,
            rejected: self.rejected,
            in_flight: self.in_flight,
            times_opened: self.times_opened,
            consecutive_failures: self.consecutive_failures,
        }
    }

    /// The oldest state change not yet polled.
    pub fn poll_transition(&mut self) -> Option<Transition> {
        self.events.pop_front()
    }

    /// Whether [`poll_transition`](Self::poll_transition) has something.
    pub fn has_transitions(&self) -> bool {
        !self.events.is_empty()
    }

    /// Rejects every call until another manual change.
    pub fn force_open(&mut self, now: Timestamp) {
        if !matches!(self.phase, Phase::ForcedOpen) {
            self.times_opened += 1;
            self.enter(Phase::ForcedOpen, TransitionReason::ForcedOpen, now);
        }
    }

    /// Permits every call and records nothing until another manual change.
    pub fn disable(&mut self, now: Timestamp) {
        if !matches!(self.phase, Phase::Disabled) {
            self.enter(Phase::Disabled, TransitionReason::Disabled, now);
        }
    }

    /// Records outcomes but never rejects, until another manual change.
    pub fn metrics_only(&mut self, now: Timestamp) {
        if !matches!(self.phase, Phase::MetricsOnly) {
            self.enter(Phase::MetricsOnly, TransitionReason::MetricsOnly, now);
        }
    }

    /// Back to closed with an empty window and the base open duration. Counters are kept: they
    /// count since creation, like any monotonic metric.
    pub fn reset(&mut self, now: Timestamp) {
        self.consecutive_opens = 0;
        if matches!(self.phase, Phase::Closed) {
            self.window.clear(now);
            self.consecutive_failures = 0;
            self.epoch += 1;
        } else {
            self.enter(Phase::Closed, TransitionReason::Reset, now);
        }
    }
}

/// Nanoseconds a half-open trial has run at `now`.
pub(crate) fn half_open_elapsed(entered: Timestamp, elapsed_before: u64, now: Timestamp) -> u64 {
    elapsed_before.saturating_add(now.as_nanos().saturating_sub(entered.as_nanos()))
}

fn rate_reached(part: u32, whole: u32, threshold_percent: f64) -> bool {
    // Multiplying instead of dividing keeps the comparison exact for integer percentages.
    whole > 0 && f64::from(part) * 100.0 >= threshold_percent * f64::from(whole)
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// A uniform number in [0, 1) from a splitmix64 generator: tiny, seedable, and the same in
/// every binding because it runs here.
pub(crate) fn splitmix_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(duration_nanos(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    ))
}
