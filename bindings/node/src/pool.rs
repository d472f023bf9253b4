//! The core's sans-IO pool engine ([`PoolCore`]) for the facade's `Pool` adapter (lib/pool.js)
//! and its public low-level `PoolEngine` (lib/pool-engine.js).
//!
//! Each pool's engine lives in a per-thread slot table (see `slots.rs`); a [`NativePool`] owns
//! its slot and frees it when garbage-collected. Every operation is a module function taking
//! that slot and numbers, so the acquire and release fast paths are one native call each:
//!
//! - `poolAcquire(pool, nowMs, [budget…])` → `connSlot * 8 + pending` (≥ 8) when a connection is
//!   ready, `-(1 + waiter * 8 + pending)` (≤ -9) when the caller must wait, and
//!   `-(1 + pending)` (in [-8, -1]) when the engine refused, with the reason in
//!   `poolTakeError(pool)`.
//! - `poolRelease(pool, connSlot, checkout?, broken, nowMs)` → `pending`, or -1 when the engine
//!   refused the lease. The adapter passes no checkout: this module remembers the checkout of
//!   each lease the engine issued (from `Ready` and `Hand`), so the adapter needs no second call
//!   to learn it; `PoolEngine` passes the lease's own.
//! - the `handle*`, `drain` and `resize` functions → `pending`; `poolCancel` →
//!   `pending * 2 + cancelled`.
//!
//! `pending` is a bit set: [`ACTIONS`] (the adapter must call `poolTakeActions`), [`EVENTS`]
//! (`poolTakeEvents`) and [`REARM`] (the engine's next timeout is now earlier than the time the
//! adapter's timer was armed for: ask `poolNextTimeout` and re-arm). The engine's queues are moved
//! here after every call, so the bits are exact and a call that changed nothing costs the
//! adapter nothing more.
//!
//! Actions cross as flat numbers, four per action: `[0, slot, deadlineMs, 0]` create,
//! `[1, slot, 0, 0]` validate, `[2, slot, reason, 0]` destroy (reason: the index in
//! [`DESTROY_REASONS`]), `[3, waiter, slot, checkout]` hand, `[4, waiter, 0, 0]` fail (the
//! errors, in order, from `poolTakeFailures`). Events, rarer, cross as small objects.
//!
//! Nothing here reads a clock, keeps a JS value or calls into JS: connection objects stay in the
//! facade, keyed by slot id.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use napi::bindgen_prelude::{Float64Array, JsObjectValue, Object, Unknown};
use napi::{Env, sys};
use napi_derive::napi;
use seawall_core::breaker::{count_from_f64, duration_from_millis};
use seawall_core::pool::{
    Acquire, Action, DestroyReason, IdleOrder, Lease, PoolConfig, PoolCore, PoolError, PoolEvent,
    SlotId, WaiterId,
};
use seawall_core::{Budget, ConfigError, Timestamp};

use crate::breaker::{self, Nesting};
use crate::budget::{budget, moved};
use crate::error::{self, NativePoolError};
use crate::options::{MAX_SAFE_INTEGER, Options, millis, seed_from_f64, timestamp};
use crate::slots::Slots;

/// `pending` bit: actions wait in `poolTakeActions`.
pub const ACTIONS: u32 = 1;
/// `pending` bit: events wait in `poolTakeEvents`.
pub const EVENTS: u32 = 2;
/// `pending` bit: the engine wants to be woken earlier than the adapter's timer is armed for.
pub const REARM: u32 = 4;
/// One more than the largest `pending`: the factor the ids are multiplied by.
const PENDING_SPAN: f64 = 8.0;

/// Destroy reasons, in the order of their codes in a destroy action.
pub const DESTROY_REASONS: [DestroyReason; 8] = [
    DestroyReason::Broken,
    DestroyReason::Invalid,
    DestroyReason::IdleTimeout,
    DestroyReason::Expired,
    DestroyReason::Resized,
    DestroyReason::Closed,
    DestroyReason::CreateTimedOut,
    DestroyReason::Stale,
];

/// Events kept for a caller that never takes them, as the engine does.
const EVENT_CAPACITY: usize = 256;

struct Entry {
    core: PoolCore,
    /// Actions moved out of the engine and not yet taken.
    actions: VecDeque<Action>,
    /// Errors of the fail actions already taken as numbers, for `poolTakeFailures`.
    failures: VecDeque<PoolError>,
    events: VecDeque<PoolEvent>,
    /// The checkout of every lease the engine issued and that is still out, by slot.
    checkouts: HashMap<u64, u64, BuildHasherDefault<IdHasher>>,
    /// The time the adapter's timer is armed for (the last `poolNextTimeout` answer).
    armed: Option<Timestamp>,
    /// Why the last refused acquire was refused.
    refused: Option<PoolError>,
    /// The adapter's action array (`poolSetActionArray`), into which `sync` writes the actions
    /// it moves out of the engine whenever the adapter has left it empty.
    out: Option<Float64Array>,
}

impl Entry {
    /// Moves what the engine queued into this entry and says what is pending.
    fn sync(&mut self) -> u32 {
        while let Some(action) = self.core.poll_action() {
            match &action {
                Action::Hand { lease, .. } => {
                    self.checkouts
                        .insert(lease.slot().as_u64(), lease.checkout());
                }
                Action::Destroy { slot, .. } => {
                    self.checkouts.remove(&slot.as_u64());
                }
                _ => {}
            }
            self.actions.push_back(action);
        }
        while let Some(event) = self.core.poll_event() {
            if self.events.len() == EVENT_CAPACITY {
                self.events.pop_front();
            }
            self.events.push_back(event);
        }
        let mut pending = 0;
        if self.write_actions(false) > 0 || !self.actions.is_empty() {
            pending |= ACTIONS;
        }
        if !self.events.is_empty() {
            pending |= EVENTS;
        }
        if let Some(next) = self.core.poll_timeout()
            && self.armed.is_none_or(|armed| next < armed)
        {
            pending |= REARM;
        }
        pending
    }
}

impl Entry {
    /// Writes queued actions into the adapter's array (see [`pool_set_action_array`]): its
    /// element 0 is the number of actions written after it, four numbers each; the adapter sets
    /// it to 0 once it has taken them and to -1 while it performs them. Unless `force`, the
    /// array is written only when the adapter left it empty (0), so that a native call made
    /// while the adapter performs a batch never overwrites it. Returns how many it wrote.
    fn write_actions(&mut self, force: bool) -> usize {
        let Some(out) = self.out.as_mut() else {
            return 0;
        };
        // SAFETY: the array is the adapter's private `Float64Array` over an `ArrayBuffer` it
        // created and never hands out, so nothing can detach or resize it (its backing store is
        // off the V8 heap and never moves); `Float64Array` holds a reference that keeps it
        // alive as long as this entry. It is only touched here, on the JS thread during a
        // native call, when no JS runs, and the slice does not outlive this function.
        let out = unsafe { out.as_mut() };
        if out.is_empty() || (!force && out[0] != 0.0) {
            return 0;
        }
        let room = (out.len() - 1) / 4;
        let mut written = 0;
        while written < room {
            let Some(action) = self.actions.pop_front() else {
                break;
            };
            for (i, cell) in flatten(action, &mut self.failures).into_iter().enumerate() {
                out[1 + written * 4 + i] = match cell {
                    // Ids count creates, waits and checkouts from 1: far below 2^53.
                    Cell::Id(v) => v as f64,
                    Cell::Num(n) => n,
                };
            }
            written += 1;
        }
        out[0] = written as f64;
        written
    }
}

/// Hashes an engine id to itself: ids are distinct integers handed out in sequence, so they
/// need no mixing (SipHash was a tenth of the native time of an acquire and release).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

thread_local! {
    /// This thread's pool engines, by slot (see [`crate::slots`]).
    static POOLS: RefCell<Slots<Entry>> = RefCell::new(Slots::default());
}

fn unknown_pool(env: &Env) -> napi::Error {
    error::internal_argument_error(env, "no pool in this slot")
}

/// Runs `f` on the engine in `pool`. `f` must not call into JS (a finalizer freeing a slot
/// could then find the table borrowed).
fn with_pool<R>(env: &Env, pool: u32, f: impl FnOnce(&mut Entry) -> R) -> napi::Result<R> {
    POOLS
        .with(|t| t.borrow_mut().get_mut(pool).map(f))
        .ok_or_else(|| unknown_pool(env))
}

/// An engine id (slot, waiter, checkout) from JS: a non-negative safe integer.
fn id(env: &Env, what: &str, v: f64) -> napi::Result<u64> {
    if v.is_finite() && v.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&v) {
        Ok(v as u64)
    } else {
        Err(error::internal_argument_error(
            env,
            &format!("{what} must be a non-negative integer below 2^53"),
        ))
    }
}

/// An engine id for JS. Ids count creates, waits and checkouts from 1, so they stay far below
/// 2^53; should one not, it must not silently become another id.
fn id_number(env: &Env, v: u64) -> napi::Result<f64> {
    let n = v as f64;
    if n * PENDING_SPAN <= MAX_SAFE_INTEGER {
        Ok(n)
    } else {
        Err(error::internal_argument_error(
            env,
            "pool id exceeds the range of a JavaScript number",
        ))
    }
}

/// The engine of one pool, driven by the `seawall` facade. Private: use `Pool` or `PoolEngine`.
#[napi]
pub struct NativePool {
    slot: u32,
}

impl Drop for NativePool {
    fn drop(&mut self) {
        // `try_` so that a finalizer running while the thread is being torn down, or (never
        // expected) while the table is borrowed, leaks a slot instead of panicking.
        let _ = POOLS.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                t.release(self.slot);
            }
        });
    }
}

#[napi]
impl NativePool {
    /// Builds an engine from the options object of `new Pool(options)` or
    /// `new PoolEngine(options)`. Keys it does not know are ignored (the facade's own options,
    /// such as `create`, pass through it).
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Unknown<'_>) -> napi::Result<Self> {
        let config = parse_options(&env, options)?;
        let entry = Entry {
            core: PoolCore::new(config),
            actions: VecDeque::new(),
            failures: VecDeque::new(),
            events: VecDeque::new(),
            checkouts: HashMap::default(),
            armed: None,
            refused: None,
            out: None,
        };
        let slot = POOLS
            .with(|t| t.borrow_mut().insert(entry))
            .ok_or_else(|| error::internal_argument_error(&env, "too many pools"))?;
        Ok(NativePool { slot })
    }

    /// The slot to pass to the `pool*` functions.
    #[napi(getter, catch_unwind)]
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// Asks for a connection at `nowMs`; see the module documentation for the result. A budget is
/// given as the numbers the facade's `Budget` keeps (deadline and policy) and the time on the
/// budget's clock, and is moved onto the pool's clock: the same time left.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn pool_acquire(
    env: Env,
    pool: u32,
    now_ms: f64,
    deadline_ns: Option<f64>,
    max_ns: Option<f64>,
    scale: Option<f64>,
    min_ns: Option<f64>,
    budget_now_ms: Option<f64>,
) -> napi::Result<f64> {
    let now = timestamp(&env, now_ms)?;
    let caller_budget: Option<Budget> = match (deadline_ns, max_ns, scale, min_ns, budget_now_ms) {
        (None, ..) => None,
        (Some(d), Some(max), Some(scale), Some(min), Some(budget_now)) => {
            let b = budget(&env, d, max, scale, min)?;
            Some(moved(&b, timestamp(&env, budget_now)?, now))
        }
        _ => {
            return Err(error::internal_argument_error(
                &env,
                "a budget needs its deadline, policy and clock reading",
            ));
        }
    };
    let (result, pending) = with_pool(&env, pool, |e| {
        let result = e.core.acquire(now, caller_budget.as_ref());
        match &result {
            Ok(Acquire::Ready(lease)) => {
                e.checkouts.insert(lease.slot().as_u64(), lease.checkout());
            }
            Ok(Acquire::Wait(_)) => {}
            Err(refused) => e.refused = Some(refused.clone()),
        }
        (result, e.sync())
    })?;
    let pending = f64::from(pending);
    Ok(match result {
        Ok(Acquire::Ready(lease)) => {
            id_number(&env, lease.slot().as_u64())? * PENDING_SPAN + pending
        }
        Ok(Acquire::Wait(waiter)) => {
            -(1.0 + id_number(&env, waiter.as_u64())? * PENDING_SPAN + pending)
        }
        Err(_) => -(1.0 + pending),
    })
}

/// `poolAcquire` without a budget: the pool's hot path, with no optional arguments to convert.
#[napi(catch_unwind)]
pub fn pool_acquire_now(env: Env, pool: u32, now_ms: f64) -> napi::Result<f64> {
    pool_acquire(env, pool, now_ms, None, None, None, None, None)
}

/// Why the last refused acquire was refused.
#[napi(catch_unwind)]
pub fn pool_take_error(env: Env, pool: u32) -> napi::Result<Option<NativePoolError>> {
    with_pool(&env, pool, |e| {
        e.refused.take().map(|r| error::pool_error(&r))
    })
}

/// Returns the checkout of `connSlot`: the lease `(connSlot, checkout)`, or, without a
/// checkout, the one the engine last issued for that slot. `pending`, or -1 when refused (a
/// lease released twice, or closed by the pool meanwhile).
#[napi(catch_unwind)]
pub fn pool_release(
    env: Env,
    pool: u32,
    conn_slot: f64,
    checkout: Option<f64>,
    broken: bool,
    now_ms: f64,
) -> napi::Result<f64> {
    let now = timestamp(&env, now_ms)?;
    let slot = id(&env, "slot", conn_slot)?;
    let checkout = checkout.map(|c| id(&env, "checkout", c)).transpose()?;
    with_pool(&env, pool, |e| {
        let Some(checkout) = checkout.or_else(|| e.checkouts.get(&slot).copied()) else {
            return -1.0;
        };
        let lease = Lease::from_parts(SlotId::from_u64(slot), checkout);
        if !e.core.release(lease, broken, now) {
            return -1.0;
        }
        if e.checkouts.get(&slot) == Some(&checkout) {
            e.checkouts.remove(&slot);
        }
        f64::from(e.sync())
    })
}

/// `poolRelease` without a checkout (the one the engine last issued for `connSlot`): the pool's
/// hot path, with no optional argument to convert.
#[napi(catch_unwind)]
pub fn pool_release_now(
    env: Env,
    pool: u32,
    conn_slot: f64,
    broken: bool,
    now_ms: f64,
) -> napi::Result<f64> {
    pool_release(env, pool, conn_slot, None, broken, now_ms)
}

/// The checkout the engine last issued for `connSlot`, if it is still out.
#[napi(catch_unwind)]
pub fn pool_checkout_of(env: Env, pool: u32, conn_slot: f64) -> napi::Result<Option<f64>> {
    let slot = id(&env, "slot", conn_slot)?;
    let checkout = with_pool(&env, pool, |e| e.checkouts.get(&slot).copied())?;
    checkout.map(|c| id_number(&env, c)).transpose()
}

/// The caller `waiter` gave up: `pending * 2 + 1` if it was still waiting, `pending * 2` if it
/// had already been served or failed.
#[napi(catch_unwind)]
pub fn pool_cancel(env: Env, pool: u32, waiter: f64, now_ms: f64) -> napi::Result<u32> {
    let now = timestamp(&env, now_ms)?;
    let waiter = WaiterId::from_u64(id(&env, "waiter", waiter)?);
    with_pool(&env, pool, |e| {
        let cancelled = e.core.cancel(waiter, now);
        e.sync() * 2 + u32::from(cancelled)
    })
}

/// Tells the engine in `pool` what happened to the connection of `connSlot` at `nowMs`, and
/// returns what is now pending.
fn handle_slot(
    env: &Env,
    pool: u32,
    conn_slot: f64,
    now_ms: f64,
    f: impl FnOnce(&mut PoolCore, SlotId, Timestamp),
) -> napi::Result<u32> {
    let now = timestamp(env, now_ms)?;
    let slot = SlotId::from_u64(id(env, "slot", conn_slot)?);
    with_pool(env, pool, |e| {
        f(&mut e.core, slot, now);
        e.sync()
    })
}

/// The create for `connSlot` succeeded.
#[napi(catch_unwind)]
pub fn pool_handle_created(env: Env, pool: u32, conn_slot: f64, now_ms: f64) -> napi::Result<u32> {
    handle_slot(&env, pool, conn_slot, now_ms, PoolCore::handle_created)
}

/// The create for `connSlot` failed with `error` (its text is what `connectFailed` events and
/// `ConnectFailedError` report).
#[napi(catch_unwind)]
pub fn pool_handle_create_failed(
    env: Env,
    pool: u32,
    conn_slot: f64,
    error: String,
    now_ms: f64,
) -> napi::Result<u32> {
    handle_slot(&env, pool, conn_slot, now_ms, |core, slot, now| {
        core.handle_create_failed(slot, &error, now);
    })
}

/// The validation of `connSlot` finished.
#[napi(catch_unwind)]
pub fn pool_handle_validated(
    env: Env,
    pool: u32,
    conn_slot: f64,
    ok: bool,
    now_ms: f64,
) -> napi::Result<u32> {
    handle_slot(&env, pool, conn_slot, now_ms, |core, slot, now| {
        core.handle_validated(slot, ok, now);
    })
}

/// The connection of `connSlot` is dead (its client reported an error): closed at once if idle,
/// when it comes back if checked out.
#[napi(catch_unwind)]
pub fn pool_handle_broken(env: Env, pool: u32, conn_slot: f64, now_ms: f64) -> napi::Result<u32> {
    handle_slot(&env, pool, conn_slot, now_ms, |core, slot, now| {
        core.handle_broken(slot, now);
    })
}

/// Applies every timer decision due at `nowMs`.
#[napi(catch_unwind)]
pub fn pool_handle_timeout(env: Env, pool: u32, now_ms: f64) -> napi::Result<u32> {
    let now = timestamp(&env, now_ms)?;
    with_pool(&env, pool, |e| {
        e.core.handle_timeout(now);
        e.sync()
    })
}

/// Starts draining at `nowMs`, closing whatever is still out at `deadlineMs`.
#[napi(catch_unwind)]
pub fn pool_drain(env: Env, pool: u32, now_ms: f64, deadline_ms: f64) -> napi::Result<u32> {
    let now = timestamp(&env, now_ms)?;
    let deadline = timestamp(&env, deadline_ms)?;
    with_pool(&env, pool, |e| {
        e.core.drain(now, deadline);
        e.sync()
    })
}

/// Changes `maxSize`; a size outside [1, 10000] throws a RangeError naming `maxSize`.
#[napi(catch_unwind)]
pub fn pool_resize(env: Env, pool: u32, max_size: f64, now_ms: f64) -> napi::Result<u32> {
    let now = timestamp(&env, now_ms)?;
    let arg = |e: ConfigError| error::argument_error(&env, &e);
    let n = count_from_f64("max_size", max_size).map_err(arg)?;
    with_pool(&env, pool, |e| e.core.resize(n, now).map(|()| e.sync()))?.map_err(arg)
}

/// What is pending now (after a call whose result did not say, such as `poolMetrics`).
#[napi(catch_unwind)]
pub fn pool_pending(env: Env, pool: u32) -> napi::Result<u32> {
    with_pool(&env, pool, Entry::sync)
}

/// The time, in ms on the pool's clock, at which the engine next wants `poolHandleTimeout`, or
/// -1 for none. The answer is remembered as the time the adapter's timer is armed for.
#[napi(catch_unwind)]
pub fn pool_next_timeout(env: Env, pool: u32) -> napi::Result<f64> {
    with_pool(&env, pool, |e| {
        let next = e.core.poll_timeout();
        e.armed = next;
        next.map_or(-1.0, Timestamp::as_millis_f64)
    })
}

/// Whether the pool has finished closing.
#[napi(catch_unwind)]
pub fn pool_is_closed(env: Env, pool: u32) -> napi::Result<bool> {
    with_pool(&env, pool, |e| e.core.is_closed())
}

/// One number of a flattened action: an engine id (checked to fit a JS number) or a plain one.
enum Cell {
    Id(u64),
    Num(f64),
}

/// Action codes, the first number of each flattened action.
const CREATE: f64 = 0.0;
const VALIDATE: f64 = 1.0;
const DESTROY: f64 = 2.0;
const HAND: f64 = 3.0;
const FAIL: f64 = 4.0;

fn reason_code(reason: DestroyReason) -> f64 {
    DESTROY_REASONS
        .iter()
        .position(|&r| r == reason)
        .map_or(f64::NAN, |i| i as f64)
}

/// One action as four numbers (see the module documentation); a fail action's error is kept
/// for `poolTakeFailures`.
fn flatten(action: Action, failures: &mut VecDeque<PoolError>) -> [Cell; 4] {
    match action {
        Action::Create { slot, deadline } => [
            Cell::Num(CREATE),
            Cell::Id(slot.as_u64()),
            Cell::Num(deadline.as_millis_f64()),
            Cell::Num(0.0),
        ],
        Action::Validate { slot } => [
            Cell::Num(VALIDATE),
            Cell::Id(slot.as_u64()),
            Cell::Num(0.0),
            Cell::Num(0.0),
        ],
        Action::Destroy { slot, reason } => [
            Cell::Num(DESTROY),
            Cell::Id(slot.as_u64()),
            Cell::Num(reason_code(reason)),
            Cell::Num(0.0),
        ],
        Action::Hand { waiter, lease } => [
            Cell::Num(HAND),
            Cell::Id(waiter.as_u64()),
            Cell::Id(lease.slot().as_u64()),
            Cell::Id(lease.checkout()),
        ],
        Action::Fail { waiter, error } => {
            failures.push_back(error);
            [
                Cell::Num(FAIL),
                Cell::Id(waiter.as_u64()),
                Cell::Num(0.0),
                Cell::Num(0.0),
            ]
        }
    }
}

fn cell_number(env: &Env, c: Cell) -> napi::Result<f64> {
    match c {
        Cell::Id(v) => id_number(env, v),
        Cell::Num(n) => Ok(n),
    }
}

/// The actions queued since the last call, four numbers each (see the module documentation).
/// The errors of the fail actions among them go to `poolTakeFailures`.
#[napi(catch_unwind)]
pub fn pool_take_actions(env: Env, pool: u32) -> napi::Result<Vec<f64>> {
    let cells = with_pool(&env, pool, |e| {
        let mut cells = Vec::with_capacity(e.actions.len() * 4);
        while let Some(action) = e.actions.pop_front() {
            cells.extend(flatten(action, &mut e.failures));
        }
        cells
    })?;
    cells.into_iter().map(|c| cell_number(&env, c)).collect()
}

/// Registers the adapter's action array: a `Float64Array` over its own, never shared
/// `ArrayBuffer`, of `1 + 4 * n` numbers. From then on every call that leaves actions queued
/// writes them into it when the adapter has left it empty (see `Entry::write_actions`), so that
/// the adapter needs no second call to take them; `poolTakeActionsInto` takes what did not fit.
#[napi(catch_unwind)]
pub fn pool_set_action_array(env: Env, pool: u32, array: Float64Array) -> napi::Result<()> {
    if array.len() < 5 || !(array.len() - 1).is_multiple_of(4) {
        return Err(error::internal_argument_error(
            &env,
            "the action array must hold 1 + 4n numbers",
        ));
    }
    with_pool(&env, pool, |e| e.out = Some(array))
}

/// Writes the queued actions into the registered action array (see `pool_set_action_array`),
/// whatever it held, and returns how many it wrote (also in its element 0); a full array
/// means more may wait. 0 when no array is registered.
#[napi(catch_unwind)]
pub fn pool_take_actions_into(env: Env, pool: u32) -> napi::Result<u32> {
    let written = with_pool(&env, pool, |e| e.write_actions(true))?;
    u32::try_from(written).map_err(|_| error::internal_argument_error(&env, "too many actions"))
}

/// The errors of the fail actions taken so far, in order.
#[napi(catch_unwind)]
pub fn pool_take_failures(env: Env, pool: u32) -> napi::Result<Vec<NativePoolError>> {
    with_pool(&env, pool, |e| {
        e.failures
            .drain(..)
            .map(|f| error::pool_error(&f))
            .collect()
    })
}

/// Something worth telling operators, as `Pool` listeners and `PoolEngine.pollEvent()` see it.
#[napi(object)]
#[derive(Default)]
pub struct NativePoolEvent {
    /// `leak`, `leakReturned`, `breaker`, `connectFailed` or `drained`.
    pub kind: String,
    /// leak, leakReturned: the connection's slot.
    pub slot: Option<f64>,
    /// leak, leakReturned: how long the checkout has been (was) out.
    pub held_for_ms: Option<f64>,
    /// breaker: the state before.
    pub from: Option<String>,
    /// breaker: the state after.
    pub to: Option<String>,
    /// breaker: why.
    pub reason: Option<String>,
    /// connectFailed: the failed attempt's error.
    pub error: Option<String>,
    /// connectFailed: failed attempts in a row.
    pub attempts: Option<u32>,
    /// drained: the slots still checked out at the deadline (and closed then).
    pub still_held: Option<Vec<f64>>,
}

fn native_event(env: &Env, e: PoolEvent) -> napi::Result<NativePoolEvent> {
    let slot_number = |s: SlotId| id_number(env, s.as_u64());
    Ok(match e {
        PoolEvent::LeakSuspected { slot, held_for } => NativePoolEvent {
            kind: "leak".into(),
            slot: Some(slot_number(slot)?),
            held_for_ms: Some(millis(held_for)),
            ..NativePoolEvent::default()
        },
        PoolEvent::LeakReturned { slot, held_for } => NativePoolEvent {
            kind: "leakReturned".into(),
            slot: Some(slot_number(slot)?),
            held_for_ms: Some(millis(held_for)),
            ..NativePoolEvent::default()
        },
        PoolEvent::Breaker(t) => NativePoolEvent {
            kind: "breaker".into(),
            from: Some(t.from.as_str().into()),
            to: Some(t.to.as_str().into()),
            reason: Some(t.reason.as_str().into()),
            ..NativePoolEvent::default()
        },
        PoolEvent::ConnectFailed { error, attempts } => NativePoolEvent {
            kind: "connectFailed".into(),
            error: Some(error),
            attempts: Some(attempts),
            ..NativePoolEvent::default()
        },
        PoolEvent::Drained { still_held } => NativePoolEvent {
            kind: "drained".into(),
            still_held: Some(
                still_held
                    .into_iter()
                    .map(slot_number)
                    .collect::<napi::Result<_>>()?,
            ),
            ..NativePoolEvent::default()
        },
    })
}

/// The events queued since the last call, oldest first.
#[napi(catch_unwind)]
pub fn pool_take_events(env: Env, pool: u32) -> napi::Result<Vec<NativePoolEvent>> {
    let events: Vec<PoolEvent> = with_pool(&env, pool, |e| e.events.drain(..).collect())?;
    events.into_iter().map(|e| native_event(&env, e)).collect()
}

/// A latency histogram, summarised.
#[napi(object)]
pub struct NativeHistogram {
    /// Durations recorded.
    pub count: f64,
    /// Their sum, in ms.
    pub sum_ms: f64,
    /// The longest, in ms.
    pub max_ms: f64,
    /// Upper bounds of the median, 90th and 99th percentiles, in ms (within a factor of two,
    /// never above the maximum).
    pub p50_ms: f64,
    /// See `p50Ms`.
    pub p90_ms: f64,
    /// See `p50Ms`.
    pub p99_ms: f64,
}

impl From<&seawall_core::pool::Histogram> for NativeHistogram {
    fn from(h: &seawall_core::pool::Histogram) -> Self {
        NativeHistogram {
            count: h.count() as f64,
            sum_ms: millis(h.sum()),
            max_ms: millis(h.max()),
            p50_ms: millis(h.quantile(0.5)),
            p90_ms: millis(h.quantile(0.9)),
            p99_ms: millis(h.quantile(0.99)),
        }
    }
}

/// The pool's numbers, named after OpenTelemetry's `db.client.connection.*` metrics.
#[napi(object)]
pub struct NativePoolMetrics {
    /// `db.client.connection.count{state=idle}`.
    pub idle: u32,
    /// `db.client.connection.count{state=used}`.
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
    pub timeouts: f64,
    /// Checkouts handed out.
    pub acquired: f64,
    /// Checkouts returned.
    pub released: f64,
    /// Acquires refused because the queue was full.
    pub overloaded: f64,
    /// Acquires failed because the breaker was open.
    pub unavailable: f64,
    /// Connections opened.
    pub created: f64,
    /// Connection attempts that failed or timed out.
    pub create_failures: f64,
    /// Connections closed.
    pub destroyed: f64,
    /// Suspected leaks reported.
    pub leaks: f64,
    /// `db.client.connection.create_time`.
    pub create_time: NativeHistogram,
    /// `db.client.connection.wait_time`.
    pub wait_time: NativeHistogram,
    /// `db.client.connection.use_time`.
    pub use_time: NativeHistogram,
    /// The state of the breaker guarding connection attempts.
    pub breaker_state: String,
    /// How long the longest-held checkout has been out (absent when none is).
    pub oldest_checkout_age_ms: Option<f64>,
}

/// The numbers at `nowMs`. Reading them may move the pool's breaker (open to half-open): the
/// facade then asks `poolPending`.
#[napi(catch_unwind)]
pub fn pool_metrics(env: Env, pool: u32, now_ms: f64) -> napi::Result<NativePoolMetrics> {
    let now = timestamp(&env, now_ms)?;
    let m = with_pool(&env, pool, |e| e.core.metrics(now))?;
    Ok(NativePoolMetrics {
        idle: m.idle,
        used: m.used,
        creating: m.creating,
        max: m.max,
        idle_max: m.idle_max,
        idle_min: m.idle_min,
        pending_requests: m.pending_requests,
        timeouts: m.timeouts as f64,
        acquired: m.acquired as f64,
        released: m.released as f64,
        overloaded: m.overloaded as f64,
        unavailable: m.unavailable as f64,
        created: m.created as f64,
        create_failures: m.create_failures as f64,
        destroyed: m.destroyed as f64,
        leaks: m.leaks as f64,
        create_time: (&m.create_time).into(),
        wait_time: (&m.wait_time).into(),
        use_time: (&m.use_time).into(),
        breaker_state: m.breaker_state.as_str().into(),
        oldest_checkout_age_ms: m.oldest_checkout_age.map(millis),
    })
}

/// Builds a core config from the JS options object. JS types are checked here (TypeError);
/// numbers go through the core's converters and builder, which own every range. The acquire
/// timeout may not exceed the process-wide timeout policy's maximum (`build` reads it).
fn parse_options(env: &Env, options: Unknown<'_>) -> napi::Result<PoolConfig> {
    let o = Options::root(env, options, "options", "")?;
    let cfg = |e: ConfigError| error::config_error(env, &e);
    let count = |field, v| count_from_f64(field, v).map_err(cfg);
    let duration = |field, v| duration_from_millis(field, v).map_err(cfg);
    let optional = |field, v: Option<f64>| v.map(|ms| duration(field, ms)).transpose();
    let mut b = PoolConfig::builder();

    if let Some(v) = o.number("maxSize")? {
        b = b.max_size(count("max_size", v)?);
    }
    if let Some(v) = o.number("minIdle")? {
        b = b.min_idle(count("min_idle", v)?);
    }
    if let Some(v) = o.number("maxWaiters")? {
        b = b.max_waiters(count("max_waiters", v)?);
    }
    if let Some(v) = o.number("acquireTimeoutMs")? {
        b = b.acquire_timeout(duration("acquire_timeout", v)?);
    }
    if let Some(v) = o.number("createTimeoutMs")? {
        b = b.create_timeout(duration("create_timeout", v)?);
    }
    if let Some(v) = o.nullable_number("idleTimeoutMs")? {
        b = b.idle_timeout(optional("idle_timeout", v)?);
    }
    if let Some(v) = o.nullable_number("maxLifetimeMs")? {
        b = b.max_lifetime(optional("max_lifetime", v)?);
    }
    if let Some(v) = o.number("lifetimeJitter")? {
        b = b.lifetime_jitter(v);
    }
    if let Some(v) = o.nullable_number("validateAfterMs")? {
        b = b.validate_after(optional("validate_after", v)?);
    }
    const ORDERS: &str = "'lifo' or 'fifo'";
    if let Some(order) = o.string("idleOrder", ORDERS)? {
        b = b.idle_order(match order.as_str() {
            "lifo" => IdleOrder::Lifo,
            "fifo" => IdleOrder::Fifo,
            other => {
                return Err(error::option_choice_error(env, "idleOrder", ORDERS, other));
            }
        });
    }
    if let Some(v) = o.nullable_number("leakThresholdMs")? {
        b = b.leak_threshold(optional("leak_threshold", v)?);
    }
    if let Some(backoff) = o.object("createBackoff", "createBackoff.")? {
        let base = duration("create_backoff.base", backoff.required_number("baseMs")?)?;
        let cap = duration("create_backoff.cap", backoff.required_number("capMs")?)?;
        b = b.create_backoff(base, cap);
    }
    if let Some(bo) = o.object("breaker", "breaker.")? {
        b = b.breaker(breaker::config_from(env, &bo, Nesting::InPool)?);
    }
    if let Some(v) = o.nullable_number("seed")? {
        b = b.seed(v.map(seed_from_f64).transpose().map_err(cfg)?);
    }
    b.build().map_err(cfg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn destroy_reasons_have_distinct_codes_in_order() {
        for (i, r) in DESTROY_REASONS.iter().enumerate() {
            assert_eq!(reason_code(*r), i as f64, "{}", r.as_str());
        }
        let names: Vec<&str> = DESTROY_REASONS.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "broken",
                "invalid",
                "idle_timeout",
                "expired",
                "resized",
                "closed",
                "create_timed_out",
                "stale"
            ]
        );
    }

    fn entry(config: PoolConfig) -> Entry {
        Entry {
            core: PoolCore::new(config),
            actions: VecDeque::new(),
            failures: VecDeque::new(),
            events: VecDeque::new(),
            checkouts: HashMap::default(),
            armed: None,
            refused: None,
            out: None,
        }
    }

    #[test]
    fn sync_tracks_handed_leases_and_asks_to_rearm_only_for_earlier_times() {
        let config = PoolConfig::builder()
            .max_size(1)
            .validate_after(None)
            .build_under(Duration::from_secs(15))
            .expect("valid");
        let mut e = entry(config);
        let t = |ms: u64| Timestamp::from_nanos(ms * 1_000_000);
        let Ok(Acquire::Wait(_)) = e.core.acquire(t(0), None) else {
            panic!("expected a wait");
        };
        // A create and the waiter's deadline at 5 s: the adapter must arm its timer.
        assert_eq!(e.sync(), ACTIONS | REARM);
        e.armed = e.core.poll_timeout();
        let Some(Action::Create { slot, .. }) = e.actions.pop_front() else {
            panic!("expected a create");
        };
        e.core.handle_created(slot, t(10));
        // Handed to the waiter: its lease is remembered; no earlier timeout.
        assert_eq!(e.sync(), ACTIONS);
        let Some(Action::Hand { lease, .. }) = e.actions.pop_front() else {
            panic!("expected a hand");
        };
        assert_eq!(e.checkouts.get(&slot.as_u64()), Some(&lease.checkout()));
    }
}

/// The pool's two hot functions, `poolAcquireNow` and `poolReleaseNow`, as plain N-API
/// callbacks: `{ acquire(pool, nowMs), release(pool, connSlot, broken, nowMs) }`, the same
/// functions with the same results and errors. The `#[napi]` wrappers set up and tear down a
/// borrow-tracking scope on every call (allocations, a lock, thread-local bookkeeping): about
/// a seventh of an uncontended acquire and release. These take numbers and return a number, so
/// they need none of it.
#[napi(catch_unwind)]
pub fn pool_hot_functions(env: &Env) -> napi::Result<Object<'_>> {
    let mut hot = Object::new(env)?;
    hot.set_named_property(
        "acquire",
        env.create_function::<(), f64>("poolAcquireNow", raw_acquire_now)?,
    )?;
    hot.set_named_property(
        "release",
        env.create_function::<(), f64>("poolReleaseNow", raw_release_now)?,
    )?;
    Ok(hot)
}

/// Reads up to `N` arguments of a raw callback; missing ones are `undefined`.
///
/// # Safety
/// `env` and `info` must be the ones N-API passed to the callback.
unsafe fn raw_args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<[sys::napi_value; N]> {
    let mut argc = N;
    let mut argv = [std::ptr::null_mut(); N];
    // SAFETY: `argv` has room for `argc` values; the other out-pointers may be null.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok {
        return None;
    }
    if argc < N {
        let mut undefined = std::ptr::null_mut();
        // SAFETY: a valid env and out-pointer.
        if unsafe { sys::napi_get_undefined(env, &mut undefined) } != sys::Status::napi_ok {
            return None;
        }
        for slot in argv.iter_mut().skip(argc) {
            *slot = undefined;
        }
    }
    Some(argv)
}

/// A number argument; `None` if it is not a number.
///
/// # Safety
/// `env` and `value` must be valid for this callback.
unsafe fn raw_f64(env: sys::napi_env, value: sys::napi_value) -> Option<f64> {
    let mut out = 0.0;
    // SAFETY: a valid env, value and out-pointer.
    let status = unsafe { sys::napi_get_value_double(env, value, &mut out) };
    (status == sys::Status::napi_ok).then_some(out)
}

/// A boolean argument; `None` if it is not a boolean.
///
/// # Safety
/// `env` and `value` must be valid for this callback.
unsafe fn raw_bool(env: sys::napi_env, value: sys::napi_value) -> Option<bool> {
    let mut out = false;
    // SAFETY: a valid env, value and out-pointer.
    let status = unsafe { sys::napi_get_value_bool(env, value, &mut out) };
    (status == sys::Status::napi_ok).then_some(out)
}

/// The pool slot argument, as the `#[napi]` functions take it (a `u32`).
fn raw_pool(env: &Env, v: f64) -> napi::Result<u32> {
    if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(error::internal_argument_error(
            env,
            "pool must be a slot number",
        ))
    }
}

/// Runs a raw callback's body: a panic becomes an exception (as `catch_unwind` does for the
/// `#[napi]` functions), an error is thrown, a number is returned.
///
/// # Safety
/// `env` must be the callback's.
unsafe fn raw_call(
    env: sys::napi_env,
    body: impl FnOnce(&Env) -> napi::Result<f64> + std::panic::UnwindSafe,
) -> sys::napi_value {
    let js_env = Env::from_raw(env);
    let result = std::panic::catch_unwind(move || body(&js_env)).unwrap_or_else(|_| {
        Err(napi::Error::new(
            napi::Status::GenericFailure,
            "seawall: a native pool call panicked",
        ))
    });
    match result {
        Ok(v) => {
            let mut out = std::ptr::null_mut();
            // SAFETY: a valid env and out-pointer.
            if unsafe { sys::napi_create_double(env, v, &mut out) } == sys::Status::napi_ok {
                out
            } else {
                std::ptr::null_mut()
            }
        }
        Err(e) => {
            // SAFETY: `env` is the callback's, and no exception is pending.
            unsafe { napi::JsError::from(e).throw_into(env) };
            std::ptr::null_mut()
        }
    }
}

/// `poolAcquireNow(pool, nowMs)` as a raw callback.
unsafe extern "C" fn raw_acquire_now(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: `env` and `info` are the ones N-API passed.
    let args = unsafe { raw_args::<2>(env, info) }
        .and_then(|[p, n]| Some((unsafe { raw_f64(env, p) }?, unsafe { raw_f64(env, n) }?)));
    // SAFETY: `env` is the callback's.
    unsafe {
        raw_call(env, move |env| {
            let (pool, now_ms) =
                args.ok_or_else(|| error::internal_argument_error(env, "expected numbers"))?;
            pool_acquire(
                *env,
                raw_pool(env, pool)?,
                now_ms,
                None,
                None,
                None,
                None,
                None,
            )
        })
    }
}

/// `poolReleaseNow(pool, connSlot, broken, nowMs)` as a raw callback.
unsafe extern "C" fn raw_release_now(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: `env` and `info` are the ones N-API passed.
    let args = unsafe { raw_args::<4>(env, info) }.and_then(|[p, s, b, n]| {
        Some((
            unsafe { raw_f64(env, p) }?,
            unsafe { raw_f64(env, s) }?,
            unsafe { raw_bool(env, b) }?,
            unsafe { raw_f64(env, n) }?,
        ))
    });
    // SAFETY: `env` is the callback's.
    unsafe {
        raw_call(env, move |env| {
            let (pool, slot, broken, now_ms) = args.ok_or_else(|| {
                error::internal_argument_error(env, "expected numbers and a boolean")
            })?;
            pool_release(*env, raw_pool(env, pool)?, slot, None, broken, now_ms)
        })
    }
}
