//! The pool engine: slots, limits, the waiter queue and every timer decision, sans-IO.
//!
//! The adapter owns the connection objects, keyed by [`SlotId`], and performs what
//! [`poll_action`](PoolCore::poll_action) asks (create, validate, destroy, hand a slot to a
//! waiter, fail a waiter), reporting results through the `handle_*` methods. It keeps one timer,
//! for [`poll_timeout`](PoolCore::poll_timeout), and calls [`handle_timeout`](PoolCore::handle_timeout)
//! when it fires.
//!
//! Invariants:
//! - never more than `max_size` slots exist, those being created or validated included;
//! - waiters are served oldest first, and never more than `max_waiters` wait;
//! - every waiter ends exactly once: handed a slot, or failed with a [`PoolError`];
//! - connection attempts go through the pool's breaker: while it is open no attempt is made and
//!   callers fail at once; failed attempts back off with jitter before the next one.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use super::config::{IdleOrder, PoolConfig};
use super::histogram::Histogram;
use crate::breaker::{
    BreakerCore, BreakerState, Outcome, PermitTicket, RejectionReason, Transition, splitmix_unit,
};
use crate::budget::{Budget, BudgetExhausted};
use crate::error::{ConfigError, FieldKind};
use crate::time::Timestamp;

/// Identifies a connection slot. Never reused: a late result for a slot that was abandoned is
/// recognised as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(u64);

impl SlotId {
    /// The id as a number (below 2^53, so JavaScript carries it exactly).
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// An id from [`as_u64`](Self::as_u64).
    pub fn from_u64(v: u64) -> Self {
        SlotId(v)
    }
}

/// One checkout of a connection: the slot and which checkout of it this is. Released by
/// [`PoolCore::release`]; a lease released twice, or after its connection was closed, is refused,
/// so a stale handle can never return a connection someone else now holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease {
    slot: SlotId,
    checkout: u64,
}

impl Lease {
    /// The connection's slot.
    pub fn slot(self) -> SlotId {
        self.slot
    }
    /// The checkout number (unique within the pool, below 2^53).
    pub fn checkout(self) -> u64 {
        self.checkout
    }
    /// A lease from its parts (bindings carry it as two numbers).
    pub fn from_parts(slot: SlotId, checkout: u64) -> Self {
        Lease { slot, checkout }
    }
}

/// Identifies a caller waiting for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(u64);

impl WaiterId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// An id from [`as_u64`](Self::as_u64).
    pub fn from_u64(v: u64) -> Self {
        WaiterId(v)
    }
}

/// Why the pool failed an acquire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No connection became free in time.
    #[error(
        "timed out after {} ms waiting for a connection ({in_use} in use, {idle} idle, {waiting} waiting{})",
        waited.as_millis(),
        oldest_checkout_age.map(|a| format!(", oldest checkout held {} ms", a.as_millis())).unwrap_or_default()
    )]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// Connections checked out.
        in_use: u32,
        /// Connections idle (being validated, say).
        idle: u32,
        /// Callers waiting, this one included.
        waiting: u32,
        /// How long the longest-held checkout has been out.
        oldest_checkout_age: Option<Duration>,
    },
    /// The waiter queue is full: failing at once beats piling up.
    #[error("pool overloaded: {waiting} callers already waiting (max_waiters {max_waiters})")]
    Overloaded {
        /// Callers waiting.
        waiting: u32,
        /// The limit.
        max_waiters: u32,
    },
    /// Connection attempts failed while the caller waited.
    #[error("could not connect after {attempts} attempts: {error}")]
    ConnectFailed {
        /// The last attempt's error.
        error: String,
        /// Failed attempts in a row.
        attempts: u32,
    },
    /// The breaker guarding connection attempts is open.
    #[error("database unavailable{}{}",
        retry_after.map(|d| format!(", retry after {} ms", d.as_millis())).unwrap_or_default(),
        last_error.as_ref().map(|e| format!(" (last connect error: {e})")).unwrap_or_default())]
    DatabaseUnavailable {
        /// When attempts resume, if known.
        retry_after: Option<Duration>,
        /// The last connection error seen.
        last_error: Option<String>,
    },
    /// The caller's budget cannot fit a wait.
    #[error(transparent)]
    BudgetExhausted(#[from] BudgetExhausted),
    /// The pool is draining or closed.
    #[error("pool is closed")]
    Closed,
}

impl PoolError {
    /// A stable snake_case name for bindings and conformance vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            PoolError::Timeout { .. } => "timeout",
            PoolError::Overloaded { .. } => "overloaded",
            PoolError::ConnectFailed { .. } => "connect_failed",
            PoolError::DatabaseUnavailable { .. } => "database_unavailable",
            PoolError::BudgetExhausted(_) => "budget_exhausted",
            PoolError::Closed => "closed",
        }
    }
}

/// Why the adapter must close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyReason {
    /// Returned as broken.
    Broken,
    /// Failed validation.
    Invalid,
    /// Idle longer than `idle_timeout`.
    IdleTimeout,
    /// Older than its lifetime.
    Expired,
    /// The pool shrank (`resize`).
    Resized,
    /// The pool is draining or closed.
    Closed,
    /// The create took longer than `create_timeout`: abandon it, close what it produces.
    CreateTimedOut,
    /// A result arrived for a slot the pool had already given up on.
    Stale,
}

impl DestroyReason {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DestroyReason::Broken => "broken",
            DestroyReason::Invalid => "invalid",
            DestroyReason::IdleTimeout => "idle_timeout",
            DestroyReason::Expired => "expired",
            DestroyReason::Resized => "resized",
            DestroyReason::Closed => "closed",
            DestroyReason::CreateTimedOut => "create_timed_out",
            DestroyReason::Stale => "stale",
        }
    }
}

/// Something the adapter must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection for `slot`, then call [`PoolCore::handle_created`] or
    /// [`PoolCore::handle_create_failed`]. Give up at `deadline` (the pool will have).
    Create {
        /// The slot.
        slot: SlotId,
        /// When the pool stops waiting for it.
        deadline: Timestamp,
    },
    /// Check the connection of `slot`, then call [`PoolCore::handle_validated`].
    Validate {
        /// The slot.
        slot: SlotId,
    },
    /// Close the connection of `slot` (or abandon its create) and forget it.
    Destroy {
        /// The slot.
        slot: SlotId,
        /// Why.
        reason: DestroyReason,
    },
    /// Give the connection of the lease's slot to `waiter`.
    Hand {
        /// The waiter.
        waiter: WaiterId,
        /// The checkout to release later.
        lease: Lease,
    },
    /// Fail `waiter`.
    Fail {
        /// The waiter.
        waiter: WaiterId,
        /// Why.
        error: PoolError,
    },
}

/// Something worth telling operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEvent {
    /// A checkout has been held longer than `leak_threshold`.
    LeakSuspected {
        /// The slot.
        slot: SlotId,
        /// How long it has been out.
        held_for: Duration,
    },
    /// A checkout reported as a suspected leak came back.
    LeakReturned {
        /// The slot.
        slot: SlotId,
        /// How long it was out.
        held_for: Duration,
    },
    /// The pool's breaker changed state.
    Breaker(Transition),
    /// A connection attempt failed.
    ConnectFailed {
        /// The error.
        error: String,
        /// Failed attempts in a row.
        attempts: u32,
    },
    /// The drain finished; these checkouts were still held and were closed.
    Drained {
        /// Slots still checked out at the deadline.
        still_held: Vec<SlotId>,
    },
}

/// The result of [`PoolCore::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// A connection is ready now.
    Ready(Lease),
    /// Wait for [`Action::Hand`] or [`Action::Fail`] for this waiter.
    Wait(WaiterId),
}

/// The pool's numbers, named after OpenTelemetry's `db.client.connection.*` metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMetrics {
    /// `db.client.connection.count{state=idle}`.
    pub idle: u32,
    /// `db.client.connection.count{state=used}`: checked out, or being validated for a caller.
    pub used: u32,
    /// Connections being opened.
    pub creating: u32,
    /// `db.client.connection.max`.
    pub max: u32,
    /// `db.client.connection.idle.max`.
    pub idle_max: u32,
    /// `db.client.connection.idle.min`.
    pub idle_min: u32,
    /// `db.client.connection.pending_requests`.
    pub pending_requests: u32,
    /// `db.client.connection.timeouts`.
    pub timeouts: u64,
    /// Checkouts handed out.
    pub acquired: u64,
    /// Checkouts returned.
    pub released: u64,
    /// Acquires refused because the queue was full.
    pub overloaded: u64,
    /// Acquires failed because the breaker was open.
    pub unavailable: u64,
    /// Connections opened.
    pub created: u64,
    /// Connection attempts that failed or timed out.
    pub create_failures: u64,
    /// Connections closed.
    pub destroyed: u64,
    /// Suspected leaks reported.
    pub leaks: u64,
    /// `db.client.connection.create_time`.
    pub create_time: Histogram,
    /// `db.client.connection.wait_time`.
    pub wait_time: Histogram,
    /// `db.client.connection.use_time`.
    pub use_time: Histogram,
    /// The state of the breaker guarding connection attempts.
    pub breaker_state: BreakerState,
    /// How long the longest-held checkout has been out.
    pub oldest_checkout_age: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
enum SlotState {
    Creating {
        started: Timestamp,
        deadline: Timestamp,
        ticket: PermitTicket,
    },
    Idle {
        since: Timestamp,
    },
    Validating {
        waiter: Option<WaiterId>,
        /// A check that hangs (a black-holed route) counts as failed at this time, so it cannot
        /// hold its slot for ever; `create_timeout` bounds it, as it bounds a connect.
        deadline: Timestamp,
    },
    InUse {
        since: Timestamp,
        leak_reported: bool,
        checkout: u64,
        /// Reported dead while out ([`PoolCore::handle_broken`]): closed when it comes back.
        broken: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    state: SlotState,
    /// When the connection should be replaced, if it has a lifetime.
    expires_at: Option<Timestamp>,
    /// When the connection was last returned (or created).
    last_used: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    enqueued: Timestamp,
    /// Set when the caller's own budget set the deadline (it then fails as budget exhausted):
    /// the budget policy's minimum to start a call.
    budget_bound: Option<Duration>,
    /// A slot being validated on this waiter's behalf.
    assigned: Option<SlotId>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lifecycle {
    Open,
    Draining { deadline: Timestamp },
    Closed,
}

/// Hashes the pool's own ids (slot, waiter and checkout numbers, handed out in sequence): one
/// multiplication instead of SipHash, which guards against keys chosen by an attacker, and
/// these keys are not chosen by anyone.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: sequential ids spread over both the low bits (the bucket) and the
        // high bits (the tag the table compares first).
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A `HashMap` keyed by the pool's ids.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Events past this many unpolled are dropped, oldest first.
const EVENT_CAPACITY: usize = 256;

/// The sans-IO connection pool.
#[derive(Debug)]
pub struct PoolCore {
    config: PoolConfig,
    breaker: BreakerCore,
    /// Ordered, so that everything done to several slots at once happens in slot order: the
    /// same inputs give the same actions in every binding.
    slots: BTreeMap<SlotId, Slot>,
    next_slot: u64,
    idle: VecDeque<SlotId>,
    creating: u32,
    validating: u32,
    in_use: u32,
    waiters: IdMap<WaiterId, Waiter>,
    /// Unassigned waiters, oldest first; ids no longer in `waiters` are skipped.
    queue: VecDeque<WaiterId>,
    assigned: u32,
    /// Waiter deadlines in order, as most arrive (every waiter without a budget gets
    /// `acquire_timeout`, so enqueue order is deadline order): O(1) to add and to drop once
    /// served. A deadline earlier than the last one here goes to `deadlines` instead.
    fifo_deadlines: VecDeque<(Timestamp, WaiterId)>,
    deadlines: BinaryHeap<Reverse<(Timestamp, WaiterId)>>,
    next_waiter: u64,
    next_checkout: u64,
    next_create_at: Timestamp,
    /// The latest `now` seen: a timer at or before it has already been acted on.
    now_hint: Timestamp,
    create_failures_in_row: u32,
    last_create_error: Option<String>,
    lifecycle: Lifecycle,
    rng: u64,
    actions: VecDeque<Action>,
    events: VecDeque<PoolEvent>,
    m: Counters,
    /// The earliest time anything done since the last [`poll_timeout`](Self::poll_timeout) may
    /// have added to it (`None`: nothing), so [`poll_timeout_before`](Self::poll_timeout_before)
    /// can skip the full computation on the hot paths. Paths that are rare or hard to bound set
    /// it to zero, which forces the computation.
    timer_floor: Option<Timestamp>,
}

#[derive(Debug, Clone, Default)]
struct Counters {
    timeouts: u64,
    acquired: u64,
    released: u64,
    overloaded: u64,
    unavailable: u64,
    created: u64,
    create_failures: u64,
    destroyed: u64,
    leaks: u64,
    create_time: Histogram,
    wait_time: Histogram,
    use_time: Histogram,
}

impl PoolCore {
    /// An empty pool. Call [`handle_timeout`](Self::handle_timeout) once at start to open the
    /// `min_idle` connections.
    pub fn new(config: PoolConfig) -> Self {
        let rng = config.seed.unwrap_or_else(crate::breaker::random_seed);
        PoolCore {
            breaker: BreakerCore::new(config.breaker.clone()),
            config,
            slots: BTreeMap::new(),
            next_slot: 1,
            idle: VecDeque::new(),
            creating: 0,
            validating: 0,
            in_use: 0,
            waiters: IdMap::default(),
            queue: VecDeque::new(),
            assigned: 0,
            fifo_deadlines: VecDeque::new(),
            deadlines: BinaryHeap::new(),
            next_waiter: 1,
            next_checkout: 1,
            next_create_at: Timestamp::ZERO,
            now_hint: Timestamp::ZERO,
            create_failures_in_row: 0,
            last_create_error: None,
            lifecycle: Lifecycle::Open,
            rng,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            m: Counters::default(),
            timer_floor: None,
        }
    }

    /// Something due at `t` may now count in [`poll_timeout`](Self::poll_timeout).
    fn touch_timer(&mut self, t: Timestamp) {
        self.timer_floor = Some(self.timer_floor.map_or(t, |f| f.min(t)));
    }

    /// The next timer may have moved anywhere: the next check computes it in full.
    fn touch_timer_any(&mut self) {
        self.timer_floor = Some(Timestamp::ZERO);
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    fn seen(&mut self, now: Timestamp) {
        self.now_hint = self.now_hint.max(now);
    }

    fn total(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Connections on their way to the queue: creates, and validations whose caller gave up.
    /// A validation for a caller covers that caller only.
    fn supply_in_flight(&self) -> u32 {
        (self.creating + self.validating).saturating_sub(self.assigned)
    }

    fn unassigned(&self) -> u32 {
        self.waiters.len() as u32 - self.assigned
    }

    /// Asks for a connection. `budget` bounds the wait (with the pool's `acquire_timeout`).
    pub fn acquire(
        &mut self,
        now: Timestamp,
        budget: Option<&Budget>,
    ) -> Result<Acquire, PoolError> {
        self.seen(now);
        if self.lifecycle != Lifecycle::Open {
            return Err(PoolError::Closed);
        }
        let mut deadline = now.saturating_add(self.config.acquire_timeout);
        let mut budget_bound = None;
        if let Some(b) = budget {
            b.check(now)?;
            if b.deadline() < deadline {
                deadline = b.deadline();
                budget_bound = Some(b.policy().min_to_start());
            }
        }
        // Serve from idle only when nobody is queued ahead (FIFO fairness).
        if self.unassigned() == 0
            && let Some(slot) = self.take_idle(now)
        {
            if !self.needs_validation(slot, now) {
                self.m.wait_time.record(Duration::ZERO);
                let lease = self.check_out(slot, now);
                // Taking an idle connection may leave fewer than `min_idle`.
                self.dispatch(now);
                return Ok(Acquire::Ready(lease));
            }
            let id = self.enqueue(now, deadline, budget_bound, Some(slot))?;
            self.start_validation(slot, Some(id), now);
            return Ok(Acquire::Wait(id));
        }
        // Nothing idle to serve this caller: if the database is known to be down, say so now
        // rather than after the acquire timeout.
        if let Some(err) = self.unavailable_error(now) {
            self.m.unavailable += 1;
            return Err(err);
        }
        let id = self.enqueue(now, deadline, budget_bound, None)?;
        self.queue.push_back(id);
        self.dispatch(now);
        Ok(Acquire::Wait(id))
    }

    /// The error to fail fast with when the breaker guarding connection attempts is open and
    /// nothing idle can serve; `None` otherwise.
    fn unavailable_error(&mut self, now: Timestamp) -> Option<PoolError> {
        let state = self.breaker.state(now);
        if state != BreakerState::Closed {
            // Its open time decides when the next create may start.
            self.touch_timer_any();
        }
        self.forward_breaker_events();
        matches!(state, BreakerState::Open | BreakerState::ForcedOpen).then(|| {
            PoolError::DatabaseUnavailable {
                retry_after: self
                    .breaker
                    .open_until()
                    .map(|u| u.saturating_duration_since(now)),
                last_error: self.last_create_error.clone(),
            }
        })
    }

    fn enqueue(
        &mut self,
        now: Timestamp,
        deadline: Timestamp,
        budget_bound: Option<Duration>,
        assigned: Option<SlotId>,
    ) -> Result<WaiterId, PoolError> {
        // `max_waiters` bounds the callers queued for a connection; a caller whose connection is
        // being validated already has one and is not in the queue.
        if assigned.is_none() && self.unassigned() >= self.config.max_waiters {
            self.m.overloaded += 1;
            return Err(PoolError::Overloaded {
                waiting: self.waiters.len() as u32,
                max_waiters: self.config.max_waiters,
            });
        }
        let id = WaiterId(self.next_waiter);
        self.next_waiter += 1;
        self.waiters.insert(
            id,
            Waiter {
                enqueued: now,
                budget_bound,
                assigned,
            },
        );
        if assigned.is_some() {
            self.assigned += 1;
        }
        self.touch_timer(deadline);
        // Ids only grow, so (deadline, id) stays sorted in the deque.
        if self
            .fifo_deadlines
            .back()
            .is_none_or(|&(d, _)| d <= deadline)
        {
            self.fifo_deadlines.push_back((deadline, id));
        } else {
            self.deadlines.push(Reverse((deadline, id)));
        }
        Ok(id)
    }

    /// The caller gave up (its task was cancelled, its signal aborted). Safe to call for a
    /// waiter that has already been served or failed: then it does nothing and returns false.
    pub fn cancel(&mut self, waiter: WaiterId, now: Timestamp) -> bool {
        self.seen(now);
        self.touch_timer_any();
        let Some(w) = self.waiters.remove(&waiter) else {
            return false;
        };
        if w.assigned.is_some() {
            self.assigned -= 1;
            if let Some(slot) = w.assigned
                && let Some(s) = self.slots.get_mut(&slot)
                && let SlotState::Validating { waiter, .. } = &mut s.state
            {
                *waiter = None;
            }
        }
        self.compact_queue();
        self.dispatch(now);
        true
    }

    /// Returns a checked-out connection. `broken` connections are destroyed, never reused.
    /// Returns false (and does nothing) for a lease that is no longer checked out.
    pub fn release(&mut self, lease: Lease, broken: bool, now: Timestamp) -> bool {
        self.seen(now);
        let slot = lease.slot;
        let Some(s) = self.slots.get_mut(&slot) else {
            return false;
        };
        let SlotState::InUse {
            since,
            leak_reported,
            checkout,
            broken: reported_broken,
        } = s.state
        else {
            return false;
        };
        let broken = broken || reported_broken;
        if checkout != lease.checkout {
            return false;
        }
        s.last_used = now;
        let held = now.saturating_duration_since(since);
        let expired = s.expires_at.is_some_and(|e| now >= e);
        self.m.released += 1;
        self.m.use_time.record(held);
        if leak_reported {
            self.push_event(PoolEvent::LeakReturned {
                slot,
                held_for: held,
            });
        }
        let reason = if broken {
            Some(DestroyReason::Broken)
        } else if self.lifecycle != Lifecycle::Open {
            Some(DestroyReason::Closed)
        } else if self.total() > self.config.max_size {
            Some(DestroyReason::Resized)
        } else if expired {
            Some(DestroyReason::Expired)
        } else {
            None
        };
        match reason {
            // `destroy` accounts for the slot as in use.
            Some(r) => self.destroy(slot, r),
            None => {
                self.in_use -= 1;
                self.make_available(slot, now);
            }
        }
        self.dispatch(now);
        self.maybe_finish_drain(now);
        true
    }

    /// A create finished: `slot` now has a connection.
    pub fn handle_created(&mut self, slot: SlotId, now: Timestamp) {
        self.seen(now);
        self.touch_timer_any();
        let Some(s) = self.slots.get_mut(&slot) else {
            self.actions.push_back(Action::Destroy {
                slot,
                reason: DestroyReason::Stale,
            });
            return;
        };
        let SlotState::Creating {
            started, ticket, ..
        } = s.state
        else {
            return;
        };
        self.m.created += 1;
        self.m
            .create_time
            .record(now.saturating_duration_since(started));
        self.breaker.record(ticket, Outcome::Success, now);
        self.forward_breaker_events();
        self.create_failures_in_row = 0;
        self.next_create_at = Timestamp::ZERO;
        let lifetime = self.config.max_lifetime.map(|l| {
            let cut = self.config.lifetime_jitter * splitmix_unit(&mut self.rng);
            now.saturating_add(l.mul_f64(1.0 - cut))
        });
        let s = self.slots.get_mut(&slot).map(|s| {
            s.expires_at = lifetime;
            s.last_used = now;
        });
        debug_assert!(s.is_some());
        if self.lifecycle != Lifecycle::Open {
            // Still counted as creating: `destroy` accounts for it.
            self.destroy(slot, DestroyReason::Closed);
            self.maybe_finish_drain(now);
            return;
        }
        self.creating -= 1;
        self.make_available(slot, now);
        self.dispatch(now);
    }

    /// A create failed with `error`.
    pub fn handle_create_failed(&mut self, slot: SlotId, error: &str, now: Timestamp) {
        self.seen(now);
        self.touch_timer_any();
        let Some(s) = self.slots.get(&slot) else {
            return;
        };
        let SlotState::Creating { ticket, .. } = s.state else {
            return;
        };
        self.slots.remove(&slot);
        self.creating -= 1;
        self.create_failed(ticket, error.to_owned(), now);
        self.maybe_finish_drain(now);
    }

    fn create_failed(&mut self, ticket: PermitTicket, error: String, now: Timestamp) {
        self.m.create_failures += 1;
        self.breaker.record(ticket, Outcome::Failure, now);
        self.forward_breaker_events();
        self.create_failures_in_row = self.create_failures_in_row.saturating_add(1);
        // Exponential back-off with full jitter between attempts: no tight reconnect loop.
        let exp = self.create_failures_in_row.saturating_sub(1).min(30);
        let ceiling = self
            .config
            .create_backoff_base
            .saturating_mul(1 << exp)
            .min(self.config.create_backoff_cap);
        let wait = ceiling.mul_f64(0.5 + 0.5 * splitmix_unit(&mut self.rng));
        self.next_create_at = now.saturating_add(wait);
        self.push_event(PoolEvent::ConnectFailed {
            error: error.clone(),
            attempts: self.create_failures_in_row,
        });
        self.last_create_error = Some(error);
        if let Some(err) = self.unavailable_error(now) {
            self.fail_unassigned(&err);
        }
        self.dispatch(now);
    }

    /// A validation finished.
    pub fn handle_validated(&mut self, slot: SlotId, ok: bool, now: Timestamp) {
        self.seen(now);
        self.touch_timer_any();
        let Some(s) = self.slots.get(&slot) else {
            // The pool gave up on this slot (the check timed out, or a drain closed it): close
            // whatever connection the adapter still holds for it.
            self.actions.push_back(Action::Destroy {
                slot,
                reason: DestroyReason::Stale,
            });
            return;
        };
        let SlotState::Validating { waiter, .. } = s.state else {
            return;
        };
        if let Some(w) = waiter
            && let Some(info) = self.waiters.get_mut(&w)
        {
            info.assigned = None;
            self.assigned -= 1;
            if ok {
                self.validating -= 1;
                if let Some(info) = self.waiters.remove(&w) {
                    self.hand(w, info, slot, now);
                }
                self.dispatch(now);
                return;
            }
            // Its connection was dead: the waiter goes back to the head of the queue.
            self.queue.push_front(w);
        }
        if ok {
            self.validating -= 1;
            self.make_available(slot, now);
        } else {
            // `destroy` accounts for the slot as validating.
            self.destroy(slot, DestroyReason::Invalid);
        }
        self.dispatch(now);
        self.maybe_finish_drain(now);
    }

    /// The adapter learned that a connection is dead (a client's socket error event, say).
    /// Idle, it is closed at once, so it is never handed out; being validated, the check fails;
    /// checked out, it will be closed when it comes back, whatever the release says. Returns
    /// whether the pool knew the slot.
    pub fn handle_broken(&mut self, slot: SlotId, now: Timestamp) -> bool {
        self.seen(now);
        self.touch_timer_any();
        let Some(s) = self.slots.get_mut(&slot) else {
            return false;
        };
        match &mut s.state {
            SlotState::Idle { .. } => {
                self.destroy(slot, DestroyReason::Broken);
                self.dispatch(now);
                self.maybe_finish_drain(now);
            }
            SlotState::Validating { .. } => self.handle_validated(slot, false, now),
            SlotState::InUse { broken, .. } => *broken = true,
            SlotState::Creating { .. } => return false,
        }
        true
    }

    /// Applies every timer decision due at `now`: waiter and create deadlines, idle timeouts,
    /// lifetimes, leak reports, create back-off, `min_idle`, and the drain deadline.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.seen(now);
        self.touch_timer_any();
        self.expire_waiters(now);
        self.expire_creates(now);
        self.expire_validations(now);
        self.expire_idle(now);
        self.report_leaks(now);
        if let Lifecycle::Draining { deadline } = self.lifecycle
            && now >= deadline
        {
            self.close_now(now);
        }
        self.dispatch(now);
        self.maybe_finish_drain(now);
    }

    fn expire_waiters(&mut self, now: Timestamp) {
        while let Some((deadline, id, in_fifo)) = self.peek_deadline() {
            if deadline > now {
                break;
            }
            self.pop_deadline(in_fifo);
            let Some(w) = self.waiters.remove(&id) else {
                continue;
            };
            if let Some(slot) = w.assigned {
                self.assigned -= 1;
                if let Some(s) = self.slots.get_mut(&slot)
                    && let SlotState::Validating { waiter, .. } = &mut s.state
                {
                    *waiter = None;
                }
            }
            let error = if let Some(min_to_start) = w.budget_bound {
                PoolError::BudgetExhausted(BudgetExhausted {
                    remaining: Duration::ZERO,
                    min_to_start,
                })
            } else if self.create_failures_in_row > 0
                && let Some(e) = &self.last_create_error
            {
                PoolError::ConnectFailed {
                    error: e.clone(),
                    attempts: self.create_failures_in_row,
                }
            } else {
                PoolError::Timeout {
                    waited: now.saturating_duration_since(w.enqueued),
                    in_use: self.in_use,
                    idle: self.idle.len() as u32,
                    waiting: self.waiters.len() as u32 + 1,
                    oldest_checkout_age: self.oldest_checkout_age(now),
                }
            };
            self.m.timeouts += 1;
            self.actions.push_back(Action::Fail { waiter: id, error });
        }
        self.compact_queue();
    }

    fn expire_creates(&mut self, now: Timestamp) {
        let late: Vec<(SlotId, PermitTicket)> = self
            .slots
            .iter()
            .filter_map(|(&id, s)| match s.state {
                SlotState::Creating {
                    deadline, ticket, ..
                } if now >= deadline => Some((id, ticket)),
                _ => None,
            })
            .collect();
        for (slot, ticket) in late {
            self.slots.remove(&slot);
            self.creating -= 1;
            self.actions.push_back(Action::Destroy {
                slot,
                reason: DestroyReason::CreateTimedOut,
            });
            let error = format!(
                "connection attempt timed out after {} ms",
                self.config.create_timeout.as_millis()
            );
            self.create_failed(ticket, error, now);
        }
    }

    /// A check past its deadline fails: the connection closes and its caller, if still
    /// waiting, goes back to the head of the queue.
    fn expire_validations(&mut self, now: Timestamp) {
        let late: Vec<(SlotId, Option<WaiterId>)> = self
            .slots
            .iter()
            .filter_map(|(&id, s)| match s.state {
                SlotState::Validating { waiter, deadline } if now >= deadline => Some((id, waiter)),
                _ => None,
            })
            .collect();
        for (slot, waiter) in late {
            if let Some(w) = waiter
                && let Some(info) = self.waiters.get_mut(&w)
            {
                info.assigned = None;
                self.assigned -= 1;
                self.queue.push_front(w);
            }
            self.destroy(slot, DestroyReason::Invalid);
        }
    }

    fn expire_idle(&mut self, now: Timestamp) {
        let mut i = 0;
        while i < self.idle.len() {
            let id = self.idle[i];
            let Some(s) = self.slots.get(&id) else {
                self.idle.remove(i);
                continue;
            };
            let SlotState::Idle { since } = s.state else {
                i += 1;
                continue;
            };
            let reason = if s.expires_at.is_some_and(|e| now >= e) {
                Some(DestroyReason::Expired)
            } else if self
                .config
                .idle_timeout
                .is_some_and(|t| now.saturating_duration_since(since) >= t)
                && self.idle.len() as u32 > self.config.min_idle
            {
                Some(DestroyReason::IdleTimeout)
            } else {
                None
            };
            match reason {
                Some(r) => {
                    self.idle.remove(i);
                    self.destroy(id, r);
                }
                None => i += 1,
            }
        }
    }

    fn report_leaks(&mut self, now: Timestamp) {
        let Some(threshold) = self.config.leak_threshold else {
            return;
        };
        let mut found = Vec::new();
        for (&id, s) in self.slots.iter_mut() {
            if let SlotState::InUse {
                since,
                leak_reported,
                ..
            } = &mut s.state
                && !*leak_reported
                && now.saturating_duration_since(*since) >= threshold
            {
                *leak_reported = true;
                found.push((id, now.saturating_duration_since(*since)));
            }
        }
        found.sort();
        for (slot, held_for) in found {
            self.m.leaks += 1;
            self.push_event(PoolEvent::LeakSuspected { slot, held_for });
        }
    }

    /// Serves queued waiters from idle connections and starts the creates that demand and
    /// `min_idle` call for, within the limits, the breaker and the back-off.
    fn dispatch(&mut self, now: Timestamp) {
        if self.lifecycle != Lifecycle::Open {
            return;
        }
        while let Some(&front) = self.queue.front() {
            if !self.waiters.contains_key(&front) {
                self.queue.pop_front();
                continue;
            }
            if let Some(slot) = self.take_idle(now) {
                self.queue.pop_front();
                if self.needs_validation(slot, now) {
                    if let Some(w) = self.waiters.get_mut(&front) {
                        w.assigned = Some(slot);
                    }
                    self.assigned += 1;
                    self.start_validation(slot, Some(front), now);
                } else if let Some(w) = self.waiters.remove(&front) {
                    self.hand(front, w, slot, now);
                }
                continue;
            }
            if self.supply_in_flight() >= self.unassigned() {
                break;
            }
            if !self.try_start_create(now) {
                break;
            }
        }
        // Keep `min_idle` warm when nobody is waiting for the creates already under way.
        while self.unassigned() == 0
            && (self.idle.len() as u32 + self.creating) < self.config.min_idle
            && self.try_start_create(now)
        {}
    }

    /// Starts a create if the size limit, the back-off and the breaker allow it.
    fn try_start_create(&mut self, now: Timestamp) -> bool {
        if self.total() >= self.config.max_size {
            return false;
        }
        // The back-off spaces attempts while the breaker is still closed; once it has opened,
        // its open duration does the spacing and the half-open probe goes at once.
        if now < self.next_create_at && self.breaker.state(now) != BreakerState::HalfOpen {
            return false;
        }
        match self.breaker.try_acquire(now) {
            Ok(ticket) => {
                self.forward_breaker_events();
                let slot = SlotId(self.next_slot);
                self.next_slot += 1;
                let deadline = now.saturating_add(self.config.create_timeout);
                self.touch_timer(deadline);
                self.slots.insert(
                    slot,
                    Slot {
                        state: SlotState::Creating {
                            started: now,
                            deadline,
                            ticket,
                        },
                        expires_at: None,
                        last_used: now,
                    },
                );
                self.creating += 1;
                self.actions.push_back(Action::Create { slot, deadline });
                true
            }
            Err(rejected) => {
                self.forward_breaker_events();
                if rejected.reason != RejectionReason::HalfOpenFull {
                    // Open: nobody queued will get a connection before it half-opens.
                    if let Some(err) = self.unavailable_error(now) {
                        self.fail_unassigned(&err);
                    }
                }
                false
            }
        }
    }

    fn fail_unassigned(&mut self, error: &PoolError) {
        while let Some(id) = self.queue.pop_front() {
            if self.waiters.remove(&id).is_some() {
                if matches!(error, PoolError::DatabaseUnavailable { .. }) {
                    self.m.unavailable += 1;
                }
                self.actions.push_back(Action::Fail {
                    waiter: id,
                    error: error.clone(),
                });
            }
        }
        self.compact_deadlines();
    }

    fn take_idle(&mut self, now: Timestamp) -> Option<SlotId> {
        loop {
            let slot = match self.config.idle_order {
                IdleOrder::Lifo => self.idle.pop_back(),
                IdleOrder::Fifo => self.idle.pop_front(),
            }?;
            let Some(s) = self.slots.get(&slot) else {
                continue;
            };
            if s.expires_at.is_some_and(|e| now >= e) {
                self.destroy(slot, DestroyReason::Expired);
                continue;
            }
            return Some(slot);
        }
    }

    fn needs_validation(&self, slot: SlotId, now: Timestamp) -> bool {
        match (self.config.validate_after, self.slots.get(&slot)) {
            (Some(after), Some(s)) => now.saturating_duration_since(s.last_used) > after,
            _ => false,
        }
    }

    fn start_validation(&mut self, slot: SlotId, waiter: Option<WaiterId>, now: Timestamp) {
        let deadline = now.saturating_add(self.config.create_timeout);
        self.touch_timer(deadline);
        if let Some(s) = self.slots.get_mut(&slot) {
            s.state = SlotState::Validating { waiter, deadline };
            self.validating += 1;
            self.actions.push_back(Action::Validate { slot });
        }
    }

    fn check_out(&mut self, slot: SlotId, now: Timestamp) -> Lease {
        if let Some(t) = self.config.leak_threshold {
            self.touch_timer(now.saturating_add(t));
        }
        let checkout = self.next_checkout;
        self.next_checkout += 1;
        if let Some(s) = self.slots.get_mut(&slot) {
            s.state = SlotState::InUse {
                since: now,
                leak_reported: false,
                checkout,
                broken: false,
            };
            self.in_use += 1;
            self.m.acquired += 1;
        }
        Lease { slot, checkout }
    }

    /// Checks `slot` out to `waiter`, already removed from `waiters` (its record is `w`).
    fn hand(&mut self, waiter: WaiterId, w: Waiter, slot: SlotId, now: Timestamp) {
        self.compact_deadlines();
        self.m
            .wait_time
            .record(now.saturating_duration_since(w.enqueued));
        let lease = self.check_out(slot, now);
        self.actions.push_back(Action::Hand { waiter, lease });
    }

    /// Hands `slot` to the oldest queued waiter, or puts it in the idle list; closes it instead
    /// when the pool is over `max_size` (it shrank while the connection was being opened).
    fn make_available(&mut self, slot: SlotId, now: Timestamp) {
        if self.total() > self.config.max_size {
            // Counted as idle for `destroy`: the caller has already uncounted its old state.
            if let Some(s) = self.slots.get_mut(&slot) {
                s.state = SlotState::Idle { since: now };
            }
            self.destroy(slot, DestroyReason::Resized);
            return;
        }
        while let Some(w) = self.queue.pop_front() {
            if let Some(info) = self.waiters.remove(&w) {
                self.hand(w, info, slot, now);
                return;
            }
        }
        self.make_idle(slot, now);
    }

    fn make_idle(&mut self, slot: SlotId, now: Timestamp) {
        if let Some(s) = self.slots.get_mut(&slot) {
            s.state = SlotState::Idle { since: now };
            let expires_at = s.expires_at;
            self.idle.push_back(slot);
            // Idle, its lifetime and idle timeout count again.
            if let Some(e) = expires_at {
                self.touch_timer(e);
            }
            if let Some(t) = self.config.idle_timeout {
                self.touch_timer(now.saturating_add(t));
                // One more than `min_idle`: the idle timeouts of the others count again, and
                // they may be due before this one's.
                if self.config.min_idle > 0 && self.idle.len() as u32 == self.config.min_idle + 1 {
                    self.touch_timer_any();
                }
            }
        }
    }

    fn destroy(&mut self, slot: SlotId, reason: DestroyReason) {
        if let Some(s) = self.slots.remove(&slot) {
            // Below the limit again, a create may be wanted (and wait for a timer).
            self.touch_timer_any();
            match s.state {
                SlotState::Creating { .. } => self.creating -= 1,
                SlotState::Validating { .. } => self.validating -= 1,
                SlotState::InUse { .. } => self.in_use -= 1,
                SlotState::Idle { .. } => self.idle.retain(|&i| i != slot),
            }
            self.m.destroyed += 1;
            self.actions.push_back(Action::Destroy { slot, reason });
        }
    }

    fn compact_queue(&mut self) {
        // Cancelled and timed-out waiters leave ids behind; drop them once they dominate so the
        // queue stays proportional to the live waiters.
        if self.queue.len() > 2 * self.waiters.len() + 16 {
            let waiters = &self.waiters;
            self.queue.retain(|id| waiters.contains_key(id));
        }
        self.compact_deadlines();
    }

    /// Served waiters leave their deadline in the heap. Waiters with the same timeout are
    /// served in deadline order, so the one just served is usually on top: popping stale tops
    /// keeps the heap at the live waiters without waiting for `poll_timeout`, which the adapter
    /// no longer calls on every operation; a rebuild bounds what other orders leave behind.
    fn compact_deadlines(&mut self) {
        while let Some((_, id, in_fifo)) = self.peek_deadline() {
            if self.waiters.contains_key(&id) {
                break;
            }
            self.pop_deadline(in_fifo);
        }
        if self.fifo_deadlines.len() + self.deadlines.len() > 2 * self.waiters.len() + 16 {
            let waiters = &self.waiters;
            self.fifo_deadlines
                .retain(|(_, id)| waiters.contains_key(id));
            self.deadlines
                .retain(|Reverse((_, id))| waiters.contains_key(id));
        }
    }

    /// The earliest waiter deadline (live or not), in (deadline, id) order across both
    /// structures, exactly as one heap would give them; and whether it is in the deque.
    fn peek_deadline(&self) -> Option<(Timestamp, WaiterId, bool)> {
        let fifo = self.fifo_deadlines.front().copied();
        let heap = self.deadlines.peek().map(|Reverse(e)| *e);
        match (fifo, heap) {
            (Some(f), Some(h)) if h < f => Some((h.0, h.1, false)),
            (Some(f), _) => Some((f.0, f.1, true)),
            (None, Some(h)) => Some((h.0, h.1, false)),
            (None, None) => None,
        }
    }

    fn pop_deadline(&mut self, in_fifo: bool) {
        if in_fifo {
            self.fifo_deadlines.pop_front();
        } else {
            self.deadlines.pop();
        }
    }

    fn oldest_checkout_age(&self, now: Timestamp) -> Option<Duration> {
        self.slots
            .values()
            .filter_map(|s| match s.state {
                SlotState::InUse { since, .. } => Some(now.saturating_duration_since(since)),
                _ => None,
            })
            .max()
    }

    fn forward_breaker_events(&mut self) {
        while let Some(t) = self.breaker.poll_transition() {
            self.push_event(PoolEvent::Breaker(t));
        }
    }

    fn push_event(&mut self, e: PoolEvent) {
        if self.events.len() == EVENT_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Stops handing out connections: queued callers fail with [`PoolError::Closed`], idle
    /// connections close, checked-out ones close when returned, and at `deadline` whatever is
    /// still out is closed and reported in [`PoolEvent::Drained`].
    pub fn drain(&mut self, now: Timestamp, deadline: Timestamp) {
        self.seen(now);
        self.touch_timer_any();
        if self.lifecycle != Lifecycle::Open {
            return;
        }
        self.lifecycle = Lifecycle::Draining { deadline };
        let ids: Vec<WaiterId> = self.waiters.keys().copied().collect();
        let mut ids = ids;
        ids.sort();
        for id in ids {
            self.waiters.remove(&id);
            self.actions.push_back(Action::Fail {
                waiter: id,
                error: PoolError::Closed,
            });
        }
        self.queue.clear();
        self.assigned = 0;
        let idle: Vec<SlotId> = self.idle.drain(..).collect();
        for slot in idle {
            self.destroy(slot, DestroyReason::Closed);
        }
        let validating: Vec<SlotId> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.state, SlotState::Validating { .. }))
            .map(|(&id, _)| id)
            .collect();
        for slot in validating {
            self.destroy(slot, DestroyReason::Closed);
        }
        self.maybe_finish_drain(now);
    }

    fn maybe_finish_drain(&mut self, now: Timestamp) {
        if matches!(self.lifecycle, Lifecycle::Draining { .. }) && self.slots.is_empty() {
            self.close_now(now);
        }
    }

    fn close_now(&mut self, _now: Timestamp) {
        let mut still_held: Vec<SlotId> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.state, SlotState::InUse { .. }))
            .map(|(&id, _)| id)
            .collect();
        still_held.sort();
        let mut all: Vec<SlotId> = self.slots.keys().copied().collect();
        all.sort();
        for slot in all {
            self.destroy(slot, DestroyReason::Closed);
        }
        self.lifecycle = Lifecycle::Closed;
        self.push_event(PoolEvent::Drained { still_held });
    }

    /// Whether the pool has finished closing.
    pub fn is_closed(&self) -> bool {
        self.lifecycle == Lifecycle::Closed
    }

    /// Changes `max_size` at run time. Shrinking closes idle connections at once and checked-out
    /// ones as they come back.
    pub fn resize(&mut self, max_size: u32, now: Timestamp) -> Result<(), ConfigError> {
        self.seen(now);
        self.touch_timer_any();
        if !(1..=super::config::MAX_POOL_SIZE).contains(&max_size) {
            return Err(ConfigError::new(
                "max_size",
                FieldKind::Number,
                "an integer in [1, 10000]",
                max_size,
            ));
        }
        self.config.max_size = max_size;
        self.config.min_idle = self.config.min_idle.min(max_size);
        while self.total() > self.config.max_size {
            let Some(slot) = self.idle.pop_front() else {
                break;
            };
            self.destroy(slot, DestroyReason::Resized);
        }
        self.dispatch(now);
        Ok(())
    }

    /// Whether an action or an event is waiting to be polled (the hot paths usually have none).
    #[cfg(feature = "tokio")]
    pub(crate) fn has_output(&self) -> bool {
        !self.actions.is_empty() || !self.events.is_empty()
    }

    /// What the adapter must do next.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing worth telling operators.
    pub fn poll_event(&mut self) -> Option<PoolEvent> {
        self.events.pop_front()
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&mut self) -> Option<Timestamp> {
        self.timer_floor = None;
        self.compact_deadlines();
        let mut next = self.peek_deadline().map(|(d, _, _)| d);
        let mut consider = |t: Timestamp| {
            next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        };
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            consider(deadline);
        }
        for s in self.slots.values() {
            match s.state {
                SlotState::Creating { deadline, .. } | SlotState::Validating { deadline, .. } => {
                    consider(deadline)
                }
                SlotState::Idle { since } => {
                    if let Some(e) = s.expires_at {
                        consider(e);
                    }
                    if let Some(t) = self.config.idle_timeout
                        && self.idle.len() as u32 > self.config.min_idle
                    {
                        consider(since.saturating_add(t));
                    }
                }
                SlotState::InUse {
                    since,
                    leak_reported: false,
                    ..
                } => {
                    if let Some(t) = self.config.leak_threshold {
                        consider(since.saturating_add(t));
                    }
                }
                _ => {}
            }
        }
        if let Some(at) = self.create_wait() {
            consider(at);
        }
        next
    }

    /// When a create that is wanted now (for a waiter or `min_idle`) but held back (back-off,
    /// breaker) may start. O(1): [`poll_timeout_before`](Self::poll_timeout_before) checks it
    /// every time, since it depends on counts that most operations change.
    fn create_wait(&self) -> Option<Timestamp> {
        let wants_create = self.lifecycle == Lifecycle::Open
            && (self.unassigned() > self.supply_in_flight()
                || (self.idle.len() as u32 + self.creating) < self.config.min_idle)
            && self.total() < self.config.max_size;
        if !wants_create {
            return None;
        }
        // Times already passed were acted on: if no create could start then, none can until
        // a result arrives (a half-open probe in flight), so they are no reason to wake.
        let at = match self.breaker.open_until() {
            Some(until) => until.max(self.next_create_at),
            None => self.next_create_at,
        };
        (at > self.now_hint).then_some(at)
    }

    /// For an adapter whose timer is armed for `armed` (`None`: not armed), computed with
    /// [`poll_timeout`](Self::poll_timeout): `Some(t)` when the next timeout is now `t`, earlier
    /// than `armed`, so the timer must be re-armed; `None` when the armed timer is early enough
    /// (firing early is harmless: [`handle_timeout`](Self::handle_timeout) then finds nothing to
    /// do). Cheap when nothing done since the last `poll_timeout` can be due before `armed`,
    /// which is the case on the pool's hot paths (an idle connection checked out, one returned,
    /// a caller queued behind others), so an adapter can call it after every operation.
    pub fn poll_timeout_before(&mut self, armed: Option<Timestamp>) -> Option<Timestamp> {
        let floor = match (self.timer_floor, self.create_wait()) {
            (Some(f), Some(w)) => f.min(w),
            (f, w) => f.or(w)?,
        };
        if armed.is_some_and(|a| floor >= a) {
            return None;
        }
        let next = self.poll_timeout()?;
        armed.is_none_or(|a| next < a).then_some(next)
    }

    /// The numbers at `now`.
    pub fn metrics(&mut self, now: Timestamp) -> PoolMetrics {
        let breaker_state = self.breaker.state(now);
        if breaker_state != BreakerState::Closed {
            self.touch_timer_any();
        }
        self.forward_breaker_events();
        PoolMetrics {
            idle: self.idle.len() as u32,
            used: self.in_use + self.validating,
            creating: self.creating,
            max: self.config.max_size,
            idle_max: self.config.max_size,
            idle_min: self.config.min_idle,
            pending_requests: self.waiters.len() as u32,
            timeouts: self.m.timeouts,
            acquired: self.m.acquired,
            released: self.m.released,
            overloaded: self.m.overloaded,
            unavailable: self.m.unavailable,
            created: self.m.created,
            create_failures: self.m.create_failures,
            destroyed: self.m.destroyed,
            leaks: self.m.leaks,
            create_time: self.m.create_time,
            wait_time: self.m.wait_time,
            use_time: self.m.use_time,
            breaker_state,
            oldest_checkout_age: self.oldest_checkout_age(now),
        }
    }
}
