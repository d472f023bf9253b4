//! [`Pool`]: the pool engine driven on tokio, with connection objects owned here, in Rust.
//!
//! The engine decides; this file only performs its actions (spawning creates, validations and
//! destroys, waking waiters) and keeps one timer task per pool for `poll_timeout`. The lock
//! around the engine and the connection map is never held across an `.await`.
//!
//! The hot paths take the lock once and read the clock once: a checkout of an idle connection
//! and a return allocate nothing, and wake nobody unless a caller is waiting for the connection
//! or the engine's next timeout moved earlier than the timer task's (see
//! [`PoolCore::poll_timeout_before`]). Waiting callers are woken through their own waker.

use std::backtrace::Backtrace;
use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{Notify, oneshot};

use super::engine::IdMap;
use super::{Acquire, Action, Lease, PoolConfig, PoolCore, PoolError, PoolEvent, PoolMetrics};
use crate::budget::Budget;
use crate::time::{Clock, MonotonicClock, Timestamp};

/// Creates, checks and closes connections for a [`Pool`].
pub trait Manager: Send + Sync + 'static {
    /// The connection type.
    type Connection: Send + 'static;
    /// What a failed create reports (shown in [`PoolError::ConnectFailed`]).
    type Error: std::fmt::Display + Send + 'static;

    /// Opens a connection, handshake included. The pool cancels it at `create_timeout`.
    fn create(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Whether an idle connection still works (called only for connections idle longer than
    /// `validate_after`). Default: trust it.
    fn validate(&self, conn: &mut Self::Connection) -> impl Future<Output = bool> + Send {
        let _ = conn;
        async { true }
    }

    /// Closes a connection. Default: drop it.
    fn destroy(&self, conn: Self::Connection) -> impl Future<Output = ()> + Send {
        drop(conn);
        async {}
    }
}

type Listener = Arc<dyn Fn(&PoolEvent, Option<&Backtrace>) + Send + Sync>;

/// A waiting caller's mailbox, shared by its future and the pool: the pool puts the engine's
/// answer (with the connection) here and wakes the caller, who takes it under this small lock
/// rather than the pool's. Mailboxes are reused once their caller is done with them, so
/// waiting allocates nothing once the pool has warmed up.
struct WaiterCell<C> {
    mailbox: Mutex<Mailbox<C>>,
}

struct Mailbox<C> {
    waker: Option<Waker>,
    outcome: Option<Outcome<C>>,
}

/// What a waiter is handed: a checkout and its connection (`None` if the pool closed it in
/// the meantime), or why it failed.
type Outcome<C> = Result<(Lease, Option<C>), PoolError>;

type Cell<C> = Arc<WaiterCell<C>>;

/// Mailboxes kept for reuse, at most.
const SPARE_CELLS: usize = 256;

struct State<M: Manager> {
    core: PoolCore,
    /// Connections not checked out: idle, or being validated (taken out while it runs).
    conns: IdMap<u64, M::Connection>,
    /// Callers waiting, until the engine hands them a connection or fails them.
    waiters: IdMap<u64, Cell<M::Connection>>,
    /// Mailboxes of callers served, for reuse once their futures have let go of them.
    spare_cells: VecDeque<Cell<M::Connection>>,
    /// Where each checkout was taken, by slot: captured only when leaks are reported
    /// (`leak_threshold` is set), since a backtrace costs microseconds.
    acquired_at: IdMap<u64, Arc<Backtrace>>,
    /// When the timer task will next call `handle_timeout` (`None`: only when notified). The
    /// task is notified only when the engine's next timeout moves before this.
    timer_at: Option<Timestamp>,
}

struct Shared<M: Manager> {
    manager: M,
    state: Mutex<State<M>>,
    /// Wakes the timer task when the earliest deadline moved earlier. Its own `Arc` so the
    /// task can wait on it while holding only a weak reference to the pool.
    timer: Arc<Notify>,
    listeners: Mutex<Vec<Listener>>,
    /// `leak_threshold` is set (it cannot change): capture where each checkout is taken.
    track_leaks: bool,
}

/// What to do once the state lock is released: wake the callers that were handed a connection
/// or an error, and the timer task if its deadline moved earlier. Done outside the lock so a
/// woken task (on another worker) does not find the lock still held.
#[must_use]
struct Wakeups {
    first: Option<Waker>,
    more: Vec<Waker>,
    timer: bool,
}

impl Wakeups {
    #[inline]
    fn run(self, timer: &Notify) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
        if self.timer {
            timer.notify_one();
        }
    }

    fn push(&mut self, w: Option<Waker>) {
        let Some(w) = w else { return };
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.more.push(w);
        }
    }
}

/// A connection pool on tokio. Cloning is cheap; clones share the pool.
pub struct Pool<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The real clock. Checkouts and returns read it precisely: the use and wait histograms are
/// in microseconds, and a coarse clock (4 ms ticks here) would flatten them.
fn now() -> Timestamp {
    MonotonicClock.now()
}

impl<M: Manager> Pool<M> {
    /// A pool that opens connections with `manager`. Must be called inside a tokio runtime: it
    /// starts the pool's timer task (which ends when the last clone of the pool is dropped).
    pub fn new(manager: M, config: PoolConfig) -> Self {
        let track_leaks = config.leak_threshold().is_some();
        let shared = Arc::new(Shared {
            manager,
            track_leaks,
            state: Mutex::new(State {
                core: PoolCore::new(config),
                conns: IdMap::default(),
                waiters: IdMap::default(),
                spare_cells: VecDeque::new(),
                acquired_at: IdMap::default(),
                timer_at: None,
            }),
            timer: Arc::new(Notify::new()),
            listeners: Mutex::new(Vec::new()),
        });
        tokio::spawn(run_timer(
            Arc::downgrade(&shared),
            Arc::clone(&shared.timer),
        ));
        shared.with_core(|core, now| core.handle_timeout(now));
        Pool { shared }
    }

    /// A connection, waiting at most `acquire_timeout`.
    // A plain future rather than an `async fn`: awaited the same way, without the wrapper
    // futures that would carry the result up through each layer.
    pub fn get(&self) -> impl Future<Output = Result<Pooled<M>, PoolError>> + Send + '_ {
        self.get_with(None)
    }

    /// A connection, waiting at most the earlier of `acquire_timeout` and the budget's end.
    pub fn get_with(
        &self,
        budget: Option<&Budget>,
    ) -> impl Future<Output = Result<Pooled<M>, PoolError>> + Send + '_ {
        Acquiring {
            shared: &self.shared,
            budget: budget.copied(),
            waiter: None,
            done: false,
        }
    }

    /// Calls `listener` for leak reports, breaker changes, connect failures and the end of a
    /// drain. For leak reports the second argument is where the connection was checked out (a
    /// backtrace, captured when `leak_threshold` is set). Listeners run on the task that caused
    /// the event; keep them short.
    pub fn on_event(
        &self,
        listener: impl Fn(&PoolEvent, Option<&Backtrace>) + Send + Sync + 'static,
    ) {
        self.shared.listeners.lock().push(Arc::new(listener));
    }

    /// The pool's numbers.
    pub fn metrics(&self) -> PoolMetrics {
        self.shared.with_core(|core, now| core.metrics(now))
    }

    /// Changes `max_size`.
    pub fn resize(&self, max_size: u32) -> Result<(), crate::ConfigError> {
        self.shared
            .with_core(|core, now| core.resize(max_size, now))
    }

    /// Stops handing out connections, waits up to `timeout` for checkouts to come back, closes
    /// everything, and returns the slots that were still checked out at the deadline.
    pub async fn drain(&self, timeout: Duration) -> Vec<super::SlotId> {
        let (tx, rx) = oneshot::channel();
        let tx = Mutex::new(Some(tx));
        self.on_event(move |e, _| {
            if let PoolEvent::Drained { still_held } = e
                && let Some(tx) = tx.lock().take()
            {
                let _ = tx.send(still_held.clone());
            }
        });
        self.shared.with_core(|core, now| {
            core.drain(now, now.saturating_add(timeout));
        });
        rx.await.unwrap_or_default()
    }
}

/// The future of [`Pool::get_with`]. The first poll asks the engine; when it says wait, the
/// caller's waker goes into its [`WaiterCell`] and later polls only look there. Dropped before
/// it finished, it cancels the wait, or returns a connection handed to it meanwhile.
struct Acquiring<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    budget: Option<Budget>,
    /// Set once queued: the waiter and its mailbox.
    waiter: Option<(u64, Cell<M::Connection>)>,
    /// Returned its result: nothing to undo on drop.
    done: bool,
}

impl<M: Manager> State<M> {
    /// A mailbox for a new waiter: the oldest spare one if its last caller has let go of it.
    fn take_cell(&mut self, waker: &Waker) -> Cell<M::Connection> {
        // The oldest spare is usually free; one whose caller has been woken but has not yet run
        // is still held, and goes to the back. A new mailbox only when every spare is held, so
        // the spares stop growing at the most callers ever waiting or being woken at once.
        let mut cell = None;
        for _ in 0..self.spare_cells.len() {
            let Some(mut c) = self.spare_cells.pop_front() else {
                break;
            };
            if Arc::get_mut(&mut c).is_some() {
                cell = Some(c);
                break;
            }
            self.spare_cells.push_back(c);
        }
        let mut cell = cell.unwrap_or_else(|| {
            Arc::new(WaiterCell {
                mailbox: Mutex::new(Mailbox {
                    waker: None,
                    outcome: None,
                }),
            })
        });
        if let Some(c) = Arc::get_mut(&mut cell) {
            let mb = c.mailbox.get_mut();
            mb.waker = Some(waker.clone());
            mb.outcome = None;
        }
        cell
    }

    fn recycle_cell(&mut self, cell: Cell<M::Connection>) {
        if self.spare_cells.len() < SPARE_CELLS {
            self.spare_cells.push_back(cell);
        }
    }
}

impl<M: Manager> Future for Acquiring<'_, M> {
    type Output = Result<Pooled<M>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let shared = this.shared;
        if let Some((_, cell)) = &this.waiter {
            let outcome = {
                let mut mb = cell.mailbox.lock();
                match mb.outcome.take() {
                    Some(outcome) => outcome,
                    None => {
                        match &mut mb.waker {
                            Some(old) if old.will_wake(cx.waker()) => {}
                            slot => *slot = Some(cx.waker().clone()),
                        }
                        return Poll::Pending;
                    }
                }
            };
            this.done = true;
            let (lease, conn) = outcome?;
            if shared.track_leaks {
                shared
                    .state
                    .lock()
                    .acquired_at
                    .insert(lease.slot().as_u64(), Arc::new(Backtrace::force_capture()));
            }
            return Poll::Ready(Pooled::new(shared, lease, conn));
        }
        let mut st = shared.state.lock();
        let now = now();
        let lease = match st.core.acquire(now, this.budget.as_ref()) {
            Ok(Acquire::Ready(lease)) => lease,
            Ok(Acquire::Wait(w)) => {
                let cell = st.take_cell(cx.waker());
                st.waiters.insert(w.as_u64(), Arc::clone(&cell));
                this.waiter = Some((w.as_u64(), cell));
                shared.settle(st, now);
                return Poll::Pending;
            }
            Err(e) => {
                this.done = true;
                shared.settle(st, now);
                return Poll::Ready(Err(e));
            }
        };
        this.done = true;
        let slot = lease.slot().as_u64();
        if shared.track_leaks {
            st.acquired_at
                .insert(slot, Arc::new(Backtrace::force_capture()));
        }
        let conn = st.conns.remove(&slot);
        shared.settle(st, now);
        Poll::Ready(Pooled::new(shared, lease, conn))
    }
}

impl<M: Manager> Drop for Acquiring<'_, M> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some((w, cell)) = self.waiter.take() else {
            return;
        };
        let shared = self.shared;
        // The pool's lock first, then the mailbox's: the order the hand-off takes them in.
        let mut st = shared.state.lock();
        let now = now();
        let outcome = cell.mailbox.lock().outcome.take();
        match outcome {
            // Served just before the caller gave up: put the connection back (the engine hands
            // it to the next caller in line).
            Some(Ok((lease, conn))) => {
                if let Some(conn) = conn {
                    st.conns.insert(lease.slot().as_u64(), conn);
                }
                st.core.release(lease, false, now);
            }
            Some(Err(_)) => {}
            None => {
                st.waiters.remove(&w);
                st.core.cancel(super::WaiterId::from_u64(w), now);
            }
        }
        shared.settle(st, now);
    }
}

impl<M: Manager> Shared<M> {
    fn with_core<R>(self: &Arc<Self>, f: impl FnOnce(&mut PoolCore, Timestamp) -> R) -> R {
        let mut st = self.state.lock();
        let now = now();
        let r = f(&mut st.core, now);
        self.settle(st, now);
        r
    }

    /// [`process`](Self::process), then, with the lock released, the wakeups it names.
    fn settle(self: &Arc<Self>, mut st: MutexGuard<'_, State<M>>, now: Timestamp) {
        let wakeups = self.process(&mut st, now);
        drop(st);
        wakeups.run(&self.timer);
    }

    /// Performs every action the engine asks for, reports its events, and says whom to wake
    /// once the lock is released.
    fn process(self: &Arc<Self>, st: &mut State<M>, now: Timestamp) -> Wakeups {
        let mut wakeups = Wakeups {
            first: None,
            more: Vec::new(),
            timer: false,
        };
        if st.core.has_output() {
            self.perform(st, now, &mut wakeups);
        }
        if let Some(t) = st.core.poll_timeout_before(st.timer_at) {
            st.timer_at = Some(t);
            wakeups.timer = true;
        }
        wakeups
    }

    /// The actions and events of [`process`](Self::process).
    fn perform(self: &Arc<Self>, st: &mut State<M>, now: Timestamp, wakeups: &mut Wakeups) {
        while let Some(action) = st.core.poll_action() {
            match action {
                Action::Create { slot, deadline } => {
                    let shared = Arc::clone(self);
                    tokio::spawn(async move {
                        let limit = deadline.saturating_duration_since(self::now());
                        let result = tokio::time::timeout(limit, shared.manager.create()).await;
                        let mut st = shared.state.lock();
                        let now = self::now();
                        match result {
                            Ok(Ok(conn)) => {
                                st.conns.insert(slot.as_u64(), conn);
                                st.core.handle_created(slot, now);
                            }
                            Ok(Err(e)) => st.core.handle_create_failed(slot, &e.to_string(), now),
                            // The engine abandons it at the same deadline (a no-op if it did).
                            Err(_) => st.core.handle_create_failed(
                                slot,
                                "connection attempt timed out",
                                now,
                            ),
                        }
                        shared.settle(st, now);
                    });
                }
                Action::Validate { slot } => {
                    let Some(mut conn) = st.conns.remove(&slot.as_u64()) else {
                        st.core.handle_validated(slot, false, now);
                        continue;
                    };
                    let shared = Arc::clone(self);
                    tokio::spawn(async move {
                        let ok = shared.manager.validate(&mut conn).await;
                        let mut st = shared.state.lock();
                        let now = self::now();
                        st.conns.insert(slot.as_u64(), conn);
                        st.core.handle_validated(slot, ok, now);
                        shared.settle(st, now);
                    });
                }
                Action::Destroy { slot, .. } => {
                    if let Some(conn) = st.conns.remove(&slot.as_u64()) {
                        let shared = Arc::clone(self);
                        tokio::spawn(async move { shared.manager.destroy(conn).await });
                    }
                }
                Action::Hand { waiter, lease } => match st.waiters.remove(&waiter.as_u64()) {
                    Some(cell) => {
                        let conn = st.conns.remove(&lease.slot().as_u64());
                        let mut mb = cell.mailbox.lock();
                        mb.outcome = Some(Ok((lease, conn)));
                        wakeups.push(mb.waker.take());
                        drop(mb);
                        st.recycle_cell(cell);
                    }
                    // Nobody to take it (cannot happen while entries outlive their waits):
                    // put it back rather than lose it.
                    None => {
                        st.core.release(lease, false, now);
                    }
                },
                Action::Fail { waiter, error } => {
                    if let Some(cell) = st.waiters.remove(&waiter.as_u64()) {
                        let mut mb = cell.mailbox.lock();
                        mb.outcome = Some(Err(error));
                        wakeups.push(mb.waker.take());
                        drop(mb);
                        st.recycle_cell(cell);
                    }
                }
            }
        }
        let mut events = Vec::new();
        while let Some(e) = st.core.poll_event() {
            events.push(e);
        }
        if !events.is_empty() {
            let listeners = self.listeners.lock().clone();
            for e in &events {
                let at = match e {
                    PoolEvent::LeakSuspected { slot, .. }
                    | PoolEvent::LeakReturned { slot, .. } => {
                        st.acquired_at.get(&slot.as_u64()).cloned()
                    }
                    _ => None,
                };
                for l in &listeners {
                    l(e, at.as_deref());
                }
            }
        }
    }
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        // Let the timer task see that the pool is gone and end.
        self.timer.notify_one();
    }
}

async fn run_timer<M: Manager>(shared: Weak<Shared<M>>, timer: Arc<Notify>) {
    loop {
        let notified = timer.notified();
        let Some(s) = shared.upgrade() else {
            return;
        };
        let wait = {
            let mut st = s.state.lock();
            let next = st.core.poll_timeout();
            st.timer_at = next;
            next.map(|t| t.saturating_duration_since(now()))
        };
        // Hold only a weak reference while sleeping, so dropping the pool ends this task.
        drop(s);
        match wait {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = notified => {}
                }
            }
            None => notified.await,
        }
        let Some(s) = shared.upgrade() else {
            return;
        };
        s.with_core(|core, now| core.handle_timeout(now));
        if s.state.lock().core.is_closed() {
            return;
        }
    }
}

/// A checked-out connection. Dereferences to the connection; returned to the pool on drop.
pub struct Pooled<M: Manager> {
    shared: Arc<Shared<M>>,
    lease: Lease,
    conn: Option<M::Connection>,
    broken: bool,
}

impl<M: Manager> Pooled<M> {
    /// The checkout of `lease`, or `Closed` if the pool was closed before the hand-off reached
    /// the connection (a drain deadline): then there is nothing to give.
    fn new(
        shared: &Arc<Shared<M>>,
        lease: Lease,
        conn: Option<M::Connection>,
    ) -> Result<Self, PoolError> {
        match conn {
            Some(conn) => Ok(Pooled {
                shared: Arc::clone(shared),
                lease,
                conn: Some(conn),
                broken: false,
            }),
            None => Err(PoolError::Closed),
        }
    }

    /// The connection is unusable: it will be closed, not reused.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Which checkout this is.
    pub fn lease(&self) -> Lease {
        self.lease
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        // Present from construction until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let slot = self.lease.slot().as_u64();
        let mut st = self.shared.state.lock();
        let now = now();
        // Back in the map first: the engine may hand it straight to a waiter or destroy it.
        st.conns.insert(slot, conn);
        if !st.core.release(self.lease, self.broken, now)
            && let Some(conn) = st.conns.remove(&slot)
        {
            // The pool closed it while it was out (a drain deadline): close it now.
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move { shared.manager.destroy(conn).await });
        }
        let wakeups = self.shared.process(&mut st, now);
        // After `process`, so a `LeakReturned` event still names where the checkout was taken.
        if !st.acquired_at.is_empty() {
            st.acquired_at.remove(&slot);
        }
        drop(st);
        wakeups.run(&self.shared.timer);
    }
}
