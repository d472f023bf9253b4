"""``SyncPool``: the connection pool for threaded code.

The engine and everything done with its actions are shared with the asyncio ``Pool``
(``_pool.py``); this module adds the thread-side waiting. Waiting callers block on a lock of
their own (the GIL is released while they wait); the user's ``create``, ``validate`` and
``destroy`` run on short-lived daemon threads, so a slow connect never holds up the caller that
happened to trigger it; and one daemon timer thread per pool calls the engine at its deadlines.
No thread the pool starts keeps the interpreter alive, and the timer thread ends when the pool
is drained or garbage-collected.

Each engine call is atomic (the native engine holds its lock for the decision, and Python code
runs under the GIL), and the results are dictionary operations that are atomic too. The one
sequence that must not interleave is a caller's ``acquire`` answering "wait" and the caller
registering itself as a waiter: a hand-off processed by another thread in between would find no
one. ``_lock`` covers both, and hand-offs take waiters under it.
"""

from __future__ import annotations

import logging
import threading
import traceback
import weakref
from types import TracebackType
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Set, Tuple, Type, Union

from ._budget import Budget
from ._native import check_timeout
from ._pool import C, PoolBase, _Checkout
from ._pool_engine import READY, WAIT, IdleOrder, native_budget

__all__ = ["SyncPool"]

_log = logging.getLogger("seawall")

# How long past its expected deadline a waiting caller lets the timer thread fail it before it
# asks the engine itself (a stalled timer thread must never stall a caller).
_GRACE = 0.005
_RECHECK = 0.02


class _SyncWaiter:
    __slots__ = ("lock", "stack", "result")

    def __init__(self, stack: Optional[traceback.StackSummary]) -> None:
        # Taken now and released by whoever delivers the result: the caller blocks on it.
        self.lock = threading.Lock()
        self.lock.acquire()
        self.stack = stack
        self.result: Union[None, Tuple[int, int], BaseException] = None


class _Timer:
    """The timer thread's state, shared with the pool (the thread holds no reference to the
    pool itself, so an abandoned pool can be collected and its thread end)."""

    __slots__ = ("cond", "at", "stopped")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.at: Optional[float] = None
        self.stopped = False

    def schedule(self, at: float) -> None:
        with self.cond:
            if self.at is not None and self.at <= at:
                return
            self.at = at
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()


def _run_timer(
    pool_ref: weakref.ReferenceType[SyncPool[Any]], timer: _Timer, clock: Callable[[], float]
) -> None:
    while True:
        with timer.cond:
            while True:
                if timer.stopped:
                    return
                at = timer.at
                now = clock()
                if at is not None and at <= now:
                    timer.at = None
                    break
                timer.cond.wait(None if at is None else at - now)
        pool = pool_ref()
        if pool is None:
            return
        try:
            pool._on_timer()
        except Exception:
            _log.exception("seawall: the pool's timer failed")
        del pool


def _spawn(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name="seawall-pool", daemon=True)
    thread.start()
    return thread


class SyncPool(PoolBase[C]):
    """A thread-safe connection pool for threaded code, with the same engine, configuration,
    errors, events and metrics as the asyncio ``Pool`` (see there).

    ``create()`` returns a new connection; it runs on a daemon thread of its own and cannot be
    interrupted, so give the driver its own connect timeout (psycopg's ``connect_timeout``): the
    pool stops waiting for it at ``create_timeout`` and closes whatever it returns late.
    ``destroy(conn)`` (default ``conn.close()``), ``validate(conn)`` and ``is_broken(conn)`` are
    plain functions.

    Use ``with pool.connection() as conn:``, or ``conn = pool.acquire()`` and
    ``pool.release(conn)``. A waiting caller blocks without holding the GIL. ``pool.drain()``
    closes the pool; ``with SyncPool(...) as pool:`` drains it at the end of the block.
    """

    def __init__(
        self,
        create: Callable[[], C],
        *,
        destroy: Optional[Callable[[C], object]] = None,
        validate: Optional[Callable[[C], object]] = None,
        is_broken: Optional[Callable[[C], object]] = None,
        max_size: int = 10,
        min_idle: int = 0,
        max_waiters: int = 1000,
        acquire_timeout: float = 5.0,
        create_timeout: float = 5.0,
        idle_timeout: Optional[float] = 600.0,
        max_lifetime: Optional[float] = 1800.0,
        lifetime_jitter: float = 0.1,
        validate_after: Optional[float] = 0.5,
        idle_order: IdleOrder = "lifo",
        leak_threshold: Optional[float] = None,
        create_backoff_base: float = 0.05,
        create_backoff_cap: float = 5.0,
        breaker: Optional[Mapping[str, Any]] = None,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            create,
            destroy=destroy,
            validate=validate,
            is_broken=is_broken,
            max_size=max_size,
            min_idle=min_idle,
            max_waiters=max_waiters,
            acquire_timeout=acquire_timeout,
            create_timeout=create_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
            lifetime_jitter=lifetime_jitter,
            validate_after=validate_after,
            idle_order=idle_order,
            leak_threshold=leak_threshold,
            create_backoff_base=create_backoff_base,
            create_backoff_cap=create_backoff_cap,
            breaker=breaker,
            seed=seed,
        )
        self._lock = threading.Lock()
        self._creating: Dict[int, bool] = {}
        self._validating: Dict[int, bool] = {}
        self._closing: Set[threading.Thread] = set()
        self._drained_flag = threading.Event()
        self._drain_deadline: Optional[float] = None
        self._timer = _Timer()
        _spawn_timer = threading.Thread(
            target=_run_timer,
            args=(weakref.ref(self), self._timer, self._clock),
            name="seawall-pool-timer",
            daemon=True,
        )
        _spawn_timer.start()
        weakref.finalize(self, self._timer.stop)
        # Opens the `min_idle` connections.
        self._call(self._native.handle_timeout)

    # -- the timer ---------------------------------------------------------------------------

    def _schedule(self, at: float) -> None:
        self._timer.schedule(at)

    def _on_timer(self) -> None:
        self._call(self._native.handle_timeout)

    # -- user code ---------------------------------------------------------------------------

    def _start_create(self, slot: int) -> None:
        self._creating[slot] = True
        _spawn(self._run_create, slot)

    def _cancel_create(self, slot: int) -> None:
        # A thread cannot be interrupted: forgetting it is what abandons it, and the engine
        # asks to close whatever it returns late.
        self._creating.pop(slot, None)

    def _run_create(self, slot: int) -> None:
        try:
            conn = self._create()
        except Exception as exc:
            self._create_failed(slot, exc, self._creating.pop(slot, None) is not None)
            return
        except BaseException as exc:
            self._create_failed(slot, exc, self._creating.pop(slot, None) is not None)
            raise
        self._created(slot, conn, self._creating.pop(slot, None) is not None)

    def _start_validate(self, slot: int, conn: C) -> None:
        self._validating[slot] = True
        _spawn(self._run_validate, slot, conn)

    def _cancel_validate(self, slot: int) -> None:
        self._validating.pop(slot, None)

    def _run_validate(self, slot: int, conn: C) -> None:
        ok = False
        try:
            ok = bool(self._validate(conn)) if self._validate is not None else False
        except Exception:
            _log.debug("seawall: validate raised; the connection is closed", exc_info=True)
        if self._validating.pop(slot, None) is not None:
            self._call(self._native.handle_validated, slot, ok)

    def _close(self, conn: C) -> None:
        thread = threading.Thread(target=self._run_destroy, args=(conn,), daemon=True)
        self._closing.add(thread)
        thread.start()

    def _run_destroy(self, conn: C) -> None:
        try:
            if self._destroy_fn is not None:
                self._destroy_fn(conn)
            else:
                close = getattr(conn, "close", None)
                if callable(close):
                    close()
        except Exception:
            _log.warning("seawall: closing a connection raised", exc_info=True)
        finally:
            self._closing.discard(threading.current_thread())

    # -- waiting -----------------------------------------------------------------------------

    def _take_waiter(self, waiter: int) -> Optional[_SyncWaiter]:
        with self._lock:
            record: Optional[_SyncWaiter] = self._waiters.pop(waiter, None)
        return record

    def _deliver(self, record: _SyncWaiter, result: Union[Tuple[int, int], BaseException]) -> None:
        record.result = result
        record.lock.release()

    def _acquire(self, budget: Optional[Budget]) -> Tuple[C, int, int]:
        stack = self._where() if self._tracks_leaks else None
        native, budget_now = native_budget(budget)
        with self._lock:
            now = self._clock()
            code, a, b, actions, events, next_timeout = self._native.acquire(
                now, native, budget_now
            )
            record = None
            if code == WAIT:
                record = _SyncWaiter(stack)
                self._waiters[a] = record
        if code == READY:
            self._out[a] = _Checkout(b, stack)
            self._apply(actions, events, next_timeout)
            return self._handed(a, b), a, b
        self._apply(actions, events, next_timeout)
        if record is None:
            raise self._decorated(a)
        limit = self._acquire_timeout
        if budget is not None:
            limit = min(limit, budget.remaining)
        self._wait(a, record, now + limit)
        result = record.result
        if not isinstance(result, tuple):
            # The lock is released only with a result: an error, or the checkout.
            raise result if result is not None else RuntimeError("woken without a result")
        slot, checkout = result
        return self._handed(slot, checkout), slot, checkout

    def _wait(self, waiter: int, record: _SyncWaiter, deadline: float) -> None:
        lock = record.lock
        try:
            while True:
                if lock.acquire(timeout=max(deadline - self._clock(), 0.0) + _GRACE):
                    return
                # Past the deadline and still waiting: ask the engine here rather than rely
                # on the timer thread being scheduled in time.
                self._on_timer()
                deadline = self._clock() + _RECHECK
        except BaseException:
            # Interrupted (KeyboardInterrupt): leave the queue, or give back what was handed.
            mine = self._take_waiter(waiter) is not None
            if mine:
                self._call(self._native.cancel, waiter)
            else:
                # Someone took the record to deliver to it: that takes microseconds.
                lock.acquire()
                result = record.result
                if isinstance(result, tuple):
                    slot, checkout = result
                    self._return(slot, checkout, self._conns.get(slot), False, False)
            raise

    def acquire(self, *, budget: Optional[Budget] = None) -> C:
        """A connection, blocking at most ``acquire_timeout`` (and no longer than ``budget``
        allows) without holding the GIL. Return it with ``release``; prefer
        ``with pool.connection()``."""
        conn, _, _ = self._acquire(budget)
        return conn

    def connection(self, *, budget: Optional[Budget] = None) -> _SyncConnection[C]:
        """``with pool.connection() as conn:``: a connection for the block, returned when it
        ends (closed instead when ``is_broken(conn)`` says so)."""
        return _SyncConnection(self, budget)

    def drain(self, timeout: float = 10.0) -> List[C]:
        """Stops handing out connections and closes the pool: waiting callers fail with
        ``PoolClosed``, idle connections close now, checked-out ones as they come back, and after
        ``timeout`` seconds whatever is still out is closed. Blocks until then, and until the
        closes it started have finished (bounded by the deadline). Returns the connections that
        were still checked out at the deadline. Calling it again waits for the same drain."""
        timeout = check_timeout("timeout", timeout)
        with self._lock:
            started = self._drain_deadline
            now = self._clock()
            deadline = now + timeout if started is None else started
            self._drain_deadline = deadline
        if started is None:
            _, actions, events, next_timeout = self._native.drain(now, deadline)
            self._apply(actions, events, next_timeout)
        while not self._drained_flag.wait(max(deadline - self._clock(), 0.0) + _GRACE):
            self._on_timer()
        for thread in list(self._closing):
            thread.join(max(deadline - self._clock(), 0.0) + 1.0)
        return list(self._drained or ())

    def _holder(self) -> Any:
        return threading.current_thread()

    def _finished(self, holder: Any) -> bool:
        return not holder.is_alive()

    def _drain_finished(self) -> None:
        self._drained_flag.set()
        self._timer.stop()

    def __enter__(self) -> SyncPool[C]:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.drain()


class _SyncConnection(Generic[C]):
    """The context manager of ``SyncPool.connection``: holds the exact checkout it returns."""

    __slots__ = ("_pool", "_budget", "_held")

    def __init__(self, pool: SyncPool[C], budget: Optional[Budget]) -> None:
        self._pool = pool
        self._budget = budget
        self._held: Optional[Tuple[C, int, int]] = None

    def __enter__(self) -> C:
        if self._held is not None:
            raise RuntimeError("this connection() block is already in use")
        self._held = self._pool._acquire(self._budget)
        return self._held[0]

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        held, self._held = self._held, None
        if held is not None:
            conn, slot, checkout = held
            self._pool._return(slot, checkout, conn, False, True)
