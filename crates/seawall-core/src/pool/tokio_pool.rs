//! [`Pool`]: the pool engine driven on tokio, with connection objects owned here, in Rust.
//!
//! The engine decides; this file only performs its actions (spawning creates, validations and
//! destroys, waking waiters) and keeps one timer task per pool for `poll_timeout`. The lock
//! around the engine and the connection map is never held across an `.await`.

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

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

struct State<M: Manager> {
    core: PoolCore,
    /// Connections not checked out: idle, or being validated (taken out while it runs).
    conns: HashMap<u64, M::Connection>,
    waiters: HashMap<u64, oneshot::Sender<Result<Lease, PoolError>>>,
    /// Where each checkout was taken, by slot: captured only when leaks are reported
    /// (`leak_threshold` is set), since a backtrace costs microseconds.
    acquired_at: HashMap<u64, Arc<Backtrace>>,
}

struct Shared<M: Manager> {
    manager: M,
    state: Mutex<State<M>>,
    /// Wakes the timer task when the earliest deadline may have moved. Its own `Arc` so the
    /// task can wait on it while holding only a weak reference to the pool.
    timer: Arc<Notify>,
    listeners: Mutex<Vec<Listener>>,
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

fn now() -> Timestamp {
    MonotonicClock.now()
}

impl<M: Manager> Pool<M> {
    /// A pool that opens connections with `manager`. Must be called inside a tokio runtime: it
    /// starts the pool's timer task (which ends when the last clone of the pool is dropped).
    pub fn new(manager: M, config: PoolConfig) -> Self {
        let shared = Arc::new(Shared {
            manager,
            state: Mutex::new(State {
                core: PoolCore::new(config),
                conns: HashMap::new(),
                waiters: HashMap::new(),
                acquired_at: HashMap::new(),
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
    pub async fn get(&self) -> Result<Pooled<M>, PoolError> {
        self.get_with(None).await
    }

    /// A connection, waiting at most the earlier of `acquire_timeout` and the budget's end.
    pub async fn get_with(&self, budget: Option<&Budget>) -> Result<Pooled<M>, PoolError> {
        let (tx, rx) = oneshot::channel();
        let waiter = {
            let mut st = self.shared.state.lock();
            let acquired = st.core.acquire(now(), budget);
            let r = match acquired {
                Ok(Acquire::Ready(lease)) => Ok(Ok(lease)),
                Ok(Acquire::Wait(w)) => {
                    st.waiters.insert(w.as_u64(), tx);
                    Ok(Err(w))
                }
                Err(e) => Err(e),
            };
            self.shared.process(&mut st);
            r?
        };
        self.shared.timer.notify_one();
        let lease = match waiter {
            Ok(lease) => lease,
            Err(w) => {
                let mut guard = WaitGuard {
                    shared: &self.shared,
                    waiter: w.as_u64(),
                    rx: Some(rx),
                };
                let rx = guard.rx.as_mut().ok_or(PoolError::Closed)?;
                let r = rx.await.map_err(|_| PoolError::Closed)?;
                guard.rx = None;
                r?
            }
        };
        let conn = {
            let mut st = self.shared.state.lock();
            let slot = lease.slot().as_u64();
            if st.core.config().leak_threshold().is_some() {
                st.acquired_at
                    .insert(slot, Arc::new(Backtrace::force_capture()));
            }
            st.conns.remove(&slot)
        };
        match conn {
            Some(conn) => Ok(Pooled {
                shared: Arc::clone(&self.shared),
                lease,
                conn: Some(conn),
                broken: false,
            }),
            // Closed between the hand-off and now (a drain deadline): nothing to give.
            None => Err(PoolError::Closed),
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
        self.shared.state.lock().core.metrics(now())
    }

    /// Changes `max_size`.
    pub fn resize(&self, max_size: u32) -> Result<(), crate::ConfigError> {
        let r = self
            .shared
            .with_core(|core, now| core.resize(max_size, now));
        self.shared.timer.notify_one();
        r
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
        self.shared.timer.notify_one();
        rx.await.unwrap_or_default()
    }
}

/// Cancels a wait whose future is dropped, and returns a connection handed to it meanwhile.
struct WaitGuard<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    waiter: u64,
    rx: Option<oneshot::Receiver<Result<Lease, PoolError>>>,
}

impl<M: Manager> Drop for WaitGuard<'_, M> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut st = self.shared.state.lock();
        st.waiters.remove(&self.waiter);
        let cancelled = st
            .core
            .cancel(super::WaiterId::from_u64(self.waiter), now());
        if !cancelled && let Ok(Ok(lease)) = rx.try_recv() {
            // Served just before the caller gave up: put the connection back.
            st.core.release(lease, false, now());
        }
        self.shared.process(&mut st);
    }
}

impl<M: Manager> Shared<M> {
    fn with_core<R>(self: &Arc<Self>, f: impl FnOnce(&mut PoolCore, Timestamp) -> R) -> R {
        let mut st = self.state.lock();
        let r = f(&mut st.core, now());
        self.process(&mut st);
        r
    }

    /// Performs every action the engine asks for, and reports its events.
    fn process(self: &Arc<Self>, st: &mut State<M>) {
        while let Some(action) = st.core.poll_action() {
            match action {
                Action::Create { slot, deadline } => {
                    let shared = Arc::clone(self);
                    tokio::spawn(async move {
                        let limit = deadline.saturating_duration_since(now());
                        let result = tokio::time::timeout(limit, shared.manager.create()).await;
                        let mut st = shared.state.lock();
                        match result {
                            Ok(Ok(conn)) => {
                                st.conns.insert(slot.as_u64(), conn);
                                st.core.handle_created(slot, now());
                            }
                            Ok(Err(e)) => st.core.handle_create_failed(slot, &e.to_string(), now()),
                            // The engine abandons it at the same deadline (a no-op if it did).
                            Err(_) => st.core.handle_create_failed(
                                slot,
                                "connection attempt timed out",
                                now(),
                            ),
                        }
                        shared.process(&mut st);
                        drop(st);
                        shared.timer.notify_one();
                    });
                }
                Action::Validate { slot } => {
                    let Some(mut conn) = st.conns.remove(&slot.as_u64()) else {
                        st.core.handle_validated(slot, false, now());
                        continue;
                    };
                    let shared = Arc::clone(self);
                    tokio::spawn(async move {
                        let ok = shared.manager.validate(&mut conn).await;
                        let mut st = shared.state.lock();
                        st.conns.insert(slot.as_u64(), conn);
                        st.core.handle_validated(slot, ok, now());
                        shared.process(&mut st);
                    });
                }
                Action::Destroy { slot, .. } => {
                    if let Some(conn) = st.conns.remove(&slot.as_u64()) {
                        let shared = Arc::clone(self);
                        tokio::spawn(async move { shared.manager.destroy(conn).await });
                    }
                }
                Action::Hand { waiter, lease } => {
                    let delivered = st
                        .waiters
                        .remove(&waiter.as_u64())
                        .is_some_and(|tx| tx.send(Ok(lease)).is_ok());
                    if !delivered {
                        st.core.release(lease, false, now());
                    }
                }
                Action::Fail { waiter, error } => {
                    if let Some(tx) = st.waiters.remove(&waiter.as_u64()) {
                        let _ = tx.send(Err(error));
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
        let next = s.state.lock().core.poll_timeout();
        let wait = next.map(|t| t.saturating_duration_since(now()));
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
        // Back in the map first: the engine may hand it straight to a waiter or destroy it.
        st.conns.insert(slot, conn);
        if !st.core.release(self.lease, self.broken, now())
            && let Some(conn) = st.conns.remove(&slot)
        {
            // The pool closed it while it was out (a drain deadline): close it now.
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move { shared.manager.destroy(conn).await });
        }
        self.shared.process(&mut st);
        // After `process`, so a `LeakReturned` event still names where the checkout was taken.
        st.acquired_at.remove(&slot);
        drop(st);
        self.shared.timer.notify_one();
    }
}
