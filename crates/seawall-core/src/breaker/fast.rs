//! The decisions an adapter may take without the core, until the core's next mutation.
//!
//! Almost every call a healthy service makes goes through a closed breaker, and in that state the
//! core's answer to "may I?" does not depend on the time or on anything but the state; once a
//! count window holds only successes, a further success changes nothing in it either. Asking the
//! core for those answers costs a lock (Rust), a native call (Node, Python) and a clock read each
//! time. So after every mutation the core publishes a [`FastPath`]: what it would answer, and for
//! how long. Adapters read it (an atomic word, a typed array), act on it, and count what they did
//! in [`FastCounts`], which they hand back with [`BreakerCore::absorb_fast`] at the start of their
//! next locked operation. The core still makes every decision; the adapter only replays one it
//! has published. `tests/properties.rs` checks that a breaker driven this way makes the same
//! decisions and reports the same metrics as one asked every time.

use super::machine::{BreakerCore, Phase};
use super::window::Window;
use crate::time::Timestamp;

/// What the core would decide right now, valid until its next mutation (any `&mut self` call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPath {
    /// The current state instance. A call admitted by the fast path carries it, so that its
    /// outcome counts only if the breaker has not changed state since.
    pub epoch: u64,
    /// What `try_acquire` would answer.
    pub admission: FastAdmission,
    /// Whether a success, recorded now by a call admitted in `epoch`, would change nothing in the
    /// core but its counters: the breaker is closed (or metrics-only), its count window is full
    /// of successes, and slow calls are not tracked. The adapter then adds 1 to
    /// [`FastCounts::succeeded`] instead of calling [`BreakerCore::record`].
    pub success_is_noop: bool,
}

/// What `try_acquire` would answer, as published in a [`FastPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastAdmission {
    /// Admit without the core. A `counted` admission adds 1 to [`FastCounts::admitted`] and
    /// must record an outcome later; an uncounted one (the breaker is disabled) needs nothing.
    Admit {
        /// Whether the call counts (false only while disabled).
        counted: bool,
    },
    /// While `now < until`, reject with [`RejectionReason::Open`] and
    /// `retry_after = until - now`, adding 1 to [`FastCounts::rejected`]. At or after `until`,
    /// ask the core: the breaker half-opens.
    ///
    /// [`RejectionReason::Open`]: super::RejectionReason::Open
    RejectUntil {
        /// When the open duration ends.
        until: Timestamp,
    },
    /// Reject with [`RejectionReason::ForcedOpen`] and no retry-after, adding 1 to
    /// [`FastCounts::rejected`].
    ///
    /// [`RejectionReason::ForcedOpen`]: super::RejectionReason::ForcedOpen
    Reject,
    /// Ask the core (half-open: the probe slots are counted there).
    AskCore,
}

/// What an adapter did on the fast path since it last called [`BreakerCore::absorb_fast`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastCounts {
    /// Calls admitted without the core, counted ([`FastAdmission::Admit`] with `counted`).
    pub admitted: u64,
    /// Of those, calls whose success was recorded without the core
    /// ([`FastPath::success_is_noop`]).
    pub succeeded: u64,
    /// Calls rejected without the core.
    pub rejected: u64,
}

impl FastCounts {
    /// Whether there is nothing to absorb.
    pub fn is_empty(&self) -> bool {
        *self == FastCounts::default()
    }
}

impl BreakerCore {
    /// What the core would decide now, valid until the next `&mut self` call. An adapter
    /// republishes it after every locked operation.
    pub fn fast_path(&self) -> FastPath {
        let admission = match self.phase {
            Phase::Closed | Phase::MetricsOnly => FastAdmission::Admit { counted: true },
            Phase::Disabled => FastAdmission::Admit { counted: false },
            Phase::Open { until } => FastAdmission::RejectUntil { until },
            Phase::ForcedOpen => FastAdmission::Reject,
            Phase::HalfOpen { .. } => FastAdmission::AskCore,
        };
        // A success in a full, all-success count window evicts a success and writes a success:
        // the window's contents, the consecutive-failure count (already 0) and therefore every
        // later decision are unchanged (the ring's write position moves, but a record is always
        // evicted exactly `size` records after it was written, wherever it sits). Failure rates
        // are in (0, 100], so a window without failures cannot trip. Time windows bucket by
        // time, so a success there always changes something.
        let success_is_noop = matches!(self.phase, Phase::Closed | Phase::MetricsOnly)
            && self.config.slow_call_duration.is_none()
            && self.consecutive_failures == 0
            && match &self.window {
                Window::Count(w) => w.is_full_of_successes(),
                Window::Time(_) => false,
            };
        FastPath {
            epoch: self.epoch(),
            admission,
            success_is_noop,
        }
    }

    /// Folds in what an adapter's fast path did since the last call: admissions and successes
    /// go to the counters (`permitted`, `successes`, `in_flight`), rejections to `rejected`.
    /// Call it at the start of every locked operation, before anything reads the counters.
    pub fn absorb_fast(&mut self, counts: FastCounts) {
        if counts.is_empty() {
            return;
        }
        self.add_fast_counts(counts);
    }
}
