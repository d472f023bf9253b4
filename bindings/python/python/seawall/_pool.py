"""Connection pools: what the asyncio ``Pool`` and the threaded ``SyncPool`` share, and ``Pool``.

Every decision (which caller gets which connection, when to open, check or close one, when a
wait ends, whether the database is considered down) is the native engine's, one synchronous call
each; the call also returns what the engine wants done, which the adapter does here: it calls
the user's ``create`` / ``validate`` / ``destroy``, wakes waiting callers, keeps one timer for the
engine, and tells listeners. Connection objects stay on this side, in a dict keyed by the
engine's slot id.

Invariants kept here:
- every action the engine asks for is performed exactly once, by whoever received it (a hand-off
  to a caller that has gone away puts the connection straight back);
- a caller that gives up (a cancelled task) cancels its wait in the engine, and a connection
  handed to it in the meantime goes back to the pool;
- a release names the exact checkout it returns. ``async with pool.connection()`` holds it.
  ``release(conn)`` returns the connection's current checkout, except when the releasing task
  (or thread) received an earlier checkout of that connection, so most likely returned it
  already, and another task still running holds the current one: that is a second release, and
  it must not return a checkout someone else now holds. (A holder that has finished, such as the
  task ``asyncio.wait_for`` runs an acquire in on Python < 3.12, hands its checkout on; a task
  handed a connection by another never received a checkout of it and may release it.)
- the timer is scheduled for the engine's earliest deadline; firing early is harmless (the
  engine finds nothing due and names the next time), firing late never happens.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
import traceback
import weakref
from collections import deque
from types import FrameType, TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Deque,
    Dict,
    Generic,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from ._breaker import StateChange
from ._budget import _CURRENT_TASKS, Budget
from ._errors import (
    ConnectFailed,
    ConnectionNotCheckedOut,
    DatabaseUnavailable,
    PoolClosed,
)
from ._native import check_timeout
from ._pool_engine import (
    READY,
    WAIT,
    ConnectAttemptFailed,
    Drained,
    IdleOrder,
    LeakReturned,
    LeakSuspected,
    PoolEvent,
    PoolMetrics,
    metrics_from,
    native_budget,
    native_pool,
)

__all__ = ["Pool"]

_log = logging.getLogger("seawall")
_get_running_loop = asyncio.get_running_loop

C = TypeVar("C")

_Listener = Callable[[Any], object]


def describe(exc: BaseException) -> str:
    """An exception as the text the engine keeps and reports (``ConnectFailed.error``)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _callable_or_none(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


class _Checkout:
    """A connection out of the pool: which checkout, where it was acquired (when leaks are
    tracked), and the task or thread that received it."""

    __slots__ = ("checkout", "stack", "holder")

    def __init__(self, checkout: int, stack: Optional[traceback.StackSummary]) -> None:
        self.checkout = checkout
        self.stack = stack
        self.holder: Any = None


def _format(stack: Optional[traceback.StackSummary]) -> Optional[str]:
    return "".join(stack.format()) if stack is not None else None


class PoolBase(Generic[C]):
    """What both adapters do with the engine's actions and events; the waiting, the timer and
    running user code are each adapter's."""

    def __init__(
        self,
        create: Callable[[], Any],
        *,
        destroy: Optional[Callable[[C], Any]],
        validate: Optional[Callable[[C], Any]],
        is_broken: Optional[Callable[[C], object]],
        max_size: int,
        min_idle: int,
        max_waiters: int,
        acquire_timeout: float,
        create_timeout: float,
        idle_timeout: Optional[float],
        max_lifetime: Optional[float],
        lifetime_jitter: float,
        validate_after: Optional[float],
        idle_order: IdleOrder,
        leak_threshold: Optional[float],
        create_backoff_base: float,
        create_backoff_cap: float,
        breaker: Optional[Mapping[str, Any]],
        seed: Optional[int],
    ) -> None:
        if not callable(create):
            raise TypeError(f"create must be callable, got {type(create).__name__}")
        self._create = create
        self._destroy_fn = _callable_or_none("destroy", destroy)
        self._validate = _callable_or_none("validate", validate)
        self._is_broken = _callable_or_none("is_broken", is_broken)
        self._native = native_pool(
            max_size=max_size,
            min_idle=min_idle,
            max_waiters=max_waiters,
            acquire_timeout=acquire_timeout,
            create_timeout=create_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
            lifetime_jitter=lifetime_jitter,
            # Without a `validate` there is nothing to check a connection with.
            validate_after=validate_after if validate is not None else None,
            idle_order=idle_order,
            leak_threshold=leak_threshold,
            create_backoff_base=create_backoff_base,
            create_backoff_cap=create_backoff_cap,
            breaker=breaker,
            seed=seed,
        )
        self._acquire_timeout: float = self._native.acquire_timeout
        self._tracks_leaks = self._native.leak_threshold is not None
        self._clock: Callable[[], float] = time.monotonic
        # Every connection the pool has, by slot, whatever its state (idle, out, being checked).
        self._conns: Dict[int, C] = {}
        self._slot_of: Dict[int, int] = {}
        # The slots checked out, with their checkout.
        self._out: Dict[int, _Checkout] = {}
        # Connections closed while checked out (the drain's deadline), by id: their release is
        # accepted silently.
        self._closed_out: Dict[int, Tuple[int, C]] = {}
        self._waiters: Dict[int, Any] = {}
        # The last checkout of each slot every task (or thread) received, to recognise a second
        # release; forgotten with the task.
        self._received: weakref.WeakKeyDictionary[Any, Dict[int, int]] = (
            weakref.WeakKeyDictionary()
        )
        self._last_error: Optional[BaseException] = None
        self._drained: Optional[Tuple[C, ...]] = None
        self._listeners: Dict[Optional[type], List[_Listener]] = {}

    # -- what each adapter provides (declared here, defined by ``Pool`` and ``SyncPool``) ------

    # Makes sure the engine's `handle_timeout` runs at the given time at the latest.
    _schedule: Callable[[float], None]
    # Runs `create` for a slot, or `validate` for a slot's connection, without blocking the
    # caller; and abandons either if it is still running.
    _start_create: Callable[[int], None]
    _cancel_create: Callable[[int], None]
    _start_validate: Callable[[int, C], None]
    _cancel_validate: Callable[[int], None]
    # Runs `destroy(conn)` without blocking the caller.
    _close: Callable[[C], None]
    # The record of a waiter if it is still waiting (removed), else None; and waking it with
    # its checkout or its error.
    _take_waiter: Callable[[int], Any]
    _deliver: Callable[[Any, Union[Tuple[int, int], BaseException]], None]
    # The drain's `Drained` event arrived (`self._drained` is set).
    _drain_finished: Callable[[], None]
    # The task or thread running now, and whether one has ended.
    _holder: Callable[[], Any]
    _finished: Callable[[Any], bool]

    # -- performing the engine's actions ----------------------------------------------------

    def _call(self, method: Callable[..., Tuple[Any, Any, Any, Any]], *args: Any) -> Any:
        """Calls a native method taking ``now`` last, applies what it asked for, returns its
        result."""
        result, actions, events, next_timeout = method(*args, self._clock())
        self._apply(actions, events, next_timeout)
        return result

    def _apply(
        self,
        actions: Optional[List[Tuple[Any, ...]]],
        events: Optional[List[Tuple[Any, ...]]],
        next_timeout: Optional[float],
        returned: Optional[Tuple[int, Optional[_Checkout]]] = None,
    ) -> None:
        if next_timeout is not None:
            self._schedule(next_timeout)
        if actions:
            # A hand-off to a caller that has gone away gives the connection back, which can
            # make the engine ask for more: a work list rather than recursion keeps a long run
            # of departed callers from exhausting the stack.
            todo: Deque[Tuple[Any, ...]] = deque(actions)
            while todo:
                action = todo.popleft()
                kind = action[0]
                more = None
                if kind == "hand":
                    more = self._hand(action[1], action[2], action[3])
                elif kind == "fail":
                    record = self._take_waiter(action[1])
                    if record is not None:
                        self._deliver(record, self._decorated(action[2]))
                elif kind == "create":
                    self._start_create(action[1])
                elif kind == "validate":
                    more = self._validate_slot(action[1])
                else:
                    self._destroy(action[1], action[2])
                if more is not None:
                    _, more_actions, more_events, more_next = more
                    if more_next is not None:
                        self._schedule(more_next)
                    if more_actions:
                        todo.extend(more_actions)
                    if more_events:
                        events = (events or []) + more_events
        if events:
            self._emit(events, returned)

    def _hand(self, waiter: int, slot: int, checkout: int) -> Any:
        record = self._take_waiter(waiter)
        if record is None:
            # The caller gave up after the engine chose it: the connection goes back.
            return self._native.release(slot, checkout, False, self._clock())
        self._out[slot] = _Checkout(checkout, record.stack)
        self._deliver(record, (slot, checkout))
        return None

    def _validate_slot(self, slot: int) -> Any:
        conn = self._conns.get(slot)
        if conn is None or self._validate is None:
            return self._native.handle_validated(slot, False, self._clock())
        self._start_validate(slot, conn)
        return None

    def _destroy(self, slot: int, reason: str) -> None:
        # A create still running is abandoned: its deadline passed, or the drain's did.
        self._cancel_create(slot)
        if reason == "create_timed_out":
            # The engine's error is the timeout now, not the last exception seen.
            self._last_error = None
        self._cancel_validate(slot)
        conn = self._conns.pop(slot, None)
        if conn is None:
            return
        self._slot_of.pop(id(conn), None)
        if self._out.pop(slot, None) is not None:
            self._closed_out[id(conn)] = (slot, conn)
        self._close(conn)

    def _decorated(self, exc: BaseException) -> BaseException:
        """A connection error carries the last attempt's exception, when the pool has it."""
        if isinstance(exc, (ConnectFailed, DatabaseUnavailable)) and self._last_error is not None:
            exc.cause = self._last_error
            exc.__cause__ = self._last_error
        return exc

    def _created(self, slot: int, conn: C, was_pending: bool) -> None:
        """Reports a finished create (``was_pending``: the engine had not abandoned it; a late
        result is reported all the same, and the engine asks to close it)."""
        self._conns[slot] = conn
        self._slot_of[id(conn)] = slot
        if was_pending:
            self._last_error = None
        self._call(self._native.handle_created, slot)

    def _create_failed(self, slot: int, exc: BaseException, was_pending: bool) -> None:
        if was_pending:
            self._last_error = exc
        self._call(self._native.handle_create_failed, slot, describe(exc))

    # -- events -----------------------------------------------------------------------------

    def _emit(
        self,
        events: List[Tuple[Any, ...]],
        returned: Optional[Tuple[int, Optional[_Checkout]]],
    ) -> None:
        for e in events:
            kind = e[0]
            event: PoolEvent
            if kind == "drained":
                by_slot = dict(self._closed_out.values())
                self._drained = tuple(by_slot[s] for s in e[1] if s in by_slot)
                self._drain_finished()
                event = Drained(self._drained)
            elif not self._listeners:
                continue
            elif kind == "leak_suspected":
                out = self._out.get(e[1])
                event = LeakSuspected(e[1], e[2], _format(out.stack if out else None))
            elif kind == "leak_returned":
                out = returned[1] if returned is not None and returned[0] == e[1] else None
                event = LeakReturned(e[1], e[2], _format(out.stack if out else None))
            elif kind == "breaker":
                event = StateChange(e[1], e[2], e[3])
            else:
                event = ConnectAttemptFailed(e[1], e[2], self._last_error)
            listeners = self._listeners.get(type(event), []) + self._listeners.get(None, [])
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    _log.exception("seawall: pool listener %r raised", listener)

    def _listen(self, kinds: Tuple[Optional[type], ...], callback: Any) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        for kind in kinds:
            self._listeners.setdefault(kind, []).append(callback)

    def on_event(self, callback: Callable[[PoolEvent], object]) -> Callable[[PoolEvent], object]:
        """Calls ``callback(event)`` for every event (``LeakSuspected``, ``LeakReturned``,
        ``StateChange``, ``ConnectAttemptFailed``, ``Drained``); usable as a decorator.
        Listeners run on the code path that caused the event; an exception they raise is
        logged (logger ``seawall``), never propagated."""
        self._listen((None,), callback)
        return callback

    def on_leak(self, callback: Callable[[Any], object]) -> Callable[[Any], object]:
        """Calls ``callback(event)`` when a checkout is held past ``leak_threshold``
        (``LeakSuspected``, with the stack where it was acquired) and when such a checkout comes
        back (``LeakReturned``)."""
        self._listen((LeakSuspected, LeakReturned), callback)
        return callback

    def on_breaker(
        self, callback: Callable[[StateChange], object]
    ) -> Callable[[StateChange], object]:
        """Calls ``callback(StateChange)`` when the breaker guarding connection attempts changes
        state."""
        self._listen((StateChange,), callback)
        return callback

    def on_connect_failed(
        self, callback: Callable[[ConnectAttemptFailed], object]
    ) -> Callable[[ConnectAttemptFailed], object]:
        """Calls ``callback(ConnectAttemptFailed)`` for every failed connection attempt."""
        self._listen((ConnectAttemptFailed,), callback)
        return callback

    def on_drained(self, callback: Callable[[Drained], object]) -> Callable[[Drained], object]:
        """Calls ``callback(Drained)`` when a drain finishes."""
        self._listen((Drained,), callback)
        return callback

    # -- checkouts --------------------------------------------------------------------------

    def _where(self) -> Optional[traceback.StackSummary]:
        """Where the caller is acquiring from (the first frame outside Seawall)."""
        f: Optional[FrameType] = sys._getframe(1)
        while f is not None and f.f_globals.get("__name__", "").startswith("seawall."):
            f = f.f_back
        if f is None:
            return None
        # Source lines are read only if the stack is ever printed.
        stack = traceback.StackSummary.extract(traceback.walk_stack(f), lookup_lines=False)
        stack.reverse()
        return stack

    def _handed(self, slot: int, checkout: int) -> C:
        conn = self._conns.get(slot)
        out = self._out.get(slot)
        if conn is None or out is None:
            # Closed between the hand-off and now (the drain's deadline): nothing to give.
            raise PoolClosed("the pool closed while handing over the connection")
        holder = self._holder()
        out.holder = holder
        if holder is not None:
            # WeakKeyDictionary.get without its Python frame (a weak reference without a
            # callback to a live object is the one the object already has: nothing is made).
            received = self._received.data.get(weakref.ref(holder))  # type: ignore[attr-defined]
            if received is None:
                self._received[holder] = {slot: checkout}
            else:
                if len(received) >= 16:
                    # Slots are never reused: forget those whose connection is gone.
                    for gone in [s for s in received if s not in self._conns]:
                        del received[gone]
                received[slot] = checkout
        return conn

    def release(self, conn: C, broken: bool = False) -> None:
        """Returns a connection taken with ``acquire``. ``broken=True`` (or ``is_broken(conn)``
        returning true) closes it instead of reusing it.

        Raises ``ConnectionNotCheckedOut`` (a ``ValueError``) when the connection is not out: it
        was already returned, or never came from this pool. A second release is refused even
        after the connection has gone to someone else: when this task (or thread) received an
        earlier checkout of it, and a task still running holds the current one, that checkout is
        left with its holder. (So a connection passed between tasks by hand should not go to a
        task that has used it before while its holder still runs; ``connection()`` blocks name
        their exact checkout and have no such limit.) Returning a connection the pool closed
        while it was out (at a drain's deadline) does nothing.
        """
        slot = self._slot_of.get(id(conn))
        if slot is None or self._conns.get(slot) is not conn:
            closed = self._closed_out.get(id(conn))
            if closed is not None and closed[1] is conn:
                del self._closed_out[id(conn)]
                return
            raise ConnectionNotCheckedOut(
                "release() was given a connection that is not checked out from this pool: it "
                "never came from it, or it was already returned and closed"
            )
        out = self._out.get(slot)
        if out is None:
            raise ConnectionNotCheckedOut(
                "release() was given a connection that is not checked out: it was already "
                "returned"
            )
        me = self._holder()
        seen = self._received.get(me, {}).get(slot) if me is not None else None
        if seen is not None and seen != out.checkout:
            holder = out.holder
            if holder is not None and holder is not me and not self._finished(holder):
                raise ConnectionNotCheckedOut(
                    "this connection was already returned by this caller and is now checked out "
                    "by another task or thread: it was left with them"
                )
        self._return(slot, out.checkout, conn, bool(broken), True)

    def _return(
        self, slot: int, checkout: int, conn: Optional[C], broken: bool, strict: bool
    ) -> None:
        """Returns one exact checkout. ``strict``: a refusal (already returned) raises."""
        if conn is not None and self._conns.get(slot) is not conn:
            closed = self._closed_out.pop(id(conn), None)
            if closed is not None and closed[1] is conn:
                return
        if not broken and conn is not None and self._is_broken is not None:
            try:
                broken = bool(self._is_broken(conn))
            except Exception:
                _log.exception("seawall: is_broken raised; closing the connection")
                broken = True
        accepted, actions, events, next_timeout = self._native.release(
            slot, checkout, broken, self._clock()
        )
        if not accepted:
            self._apply(actions, events, next_timeout)
            if strict:
                raise ConnectionNotCheckedOut(
                    "this checkout of the connection was already returned (or closed); the "
                    "connection may since have gone to another caller, who keeps it"
                )
            return
        # Taken off before the engine's actions run: they may hand the slot straight on.
        out = self._out.pop(slot, None)
        if actions is not None or events is not None:
            self._apply(actions, events, next_timeout, (slot, out))
        elif next_timeout is not None:
            # The usual return: only the engine's next time (an idle connection's expiry).
            self._schedule(next_timeout)

    # -- reading and steering ---------------------------------------------------------------

    def metrics(self) -> PoolMetrics:
        """The pool's numbers now."""
        return metrics_from(self._call(self._native.metrics))

    def resize(self, max_size: int) -> None:
        """Changes ``max_size`` at run time: growing serves waiting callers at once, shrinking
        closes idle connections at once and checked-out ones as they come back. Raises
        ``InvalidConfigError`` for a size outside [1, 10000]."""
        self._call(self._native.resize, max_size)

    @property
    def closed(self) -> bool:
        """Whether a drain has finished (the pool then refuses every acquire)."""
        return self._native.is_closed()

    def __repr__(self) -> str:
        m = self._native.config()
        return (
            f"<{type(self).__name__} max_size={m['max_size']} idle={self._idle_count()} "
            f"out={len(self._out)} closed={self.closed}>"
        )

    def _idle_count(self) -> int:
        return len(self._conns) - len(self._out)


class _AsyncWaiter:
    __slots__ = ("future", "stack")

    def __init__(
        self, future: asyncio.Future[Any], stack: Optional[traceback.StackSummary]
    ) -> None:
        self.future = future
        self.stack = stack


class Pool(PoolBase[C]):
    """An asyncio connection pool whose decisions are made by Seawall's engine: hard limits,
    a bounded FIFO wait queue, fail-fast when the database is down, and no reconnect storm.

    ``create`` is an async function returning a new connection (handshake included: the pool
    abandons it at ``create_timeout``, cancelling it); ``destroy(conn)`` closes one (default:
    ``conn.close()``, awaited if it returns an awaitable); ``validate(conn)`` (sync or async)
    says whether a connection idle for longer than ``validate_after`` still works (an exception
    counts as no); ``is_broken(conn)`` is asked on every return whether to close it rather than
    reuse it.

    Configuration (durations in seconds; out-of-range values raise ``InvalidConfigError``, a
    ``ValueError``; values of the wrong type ``TypeError``):

    - ``max_size``: most connections, those being opened included, in [1, 10000]. Default 10.
    - ``min_idle``: idle connections kept open, at most ``max_size``. Default 0.
    - ``max_waiters``: most callers waiting; beyond it ``acquire`` raises ``PoolOverloaded`` at
      once. Default 1000.
    - ``acquire_timeout``: longest a caller waits (also bounded by its budget), at most the
      timeout policy's maximum. Default 5.
    - ``create_timeout``: longest a connection attempt may take. Default 5.
    - ``idle_timeout``: idle connections older than this close (down to ``min_idle``); ``None``
      off. Default 600.
    - ``max_lifetime``: connections are replaced after about this long, shortened at random by
      up to the fraction ``lifetime_jitter`` so a fleet does not reconnect at once; ``None``
      off. Defaults 1800 and 0.1.
    - ``validate_after``: with ``validate``, a connection idle longer than this is checked
      before it is handed out; ``None`` never. Default 0.5.
    - ``idle_order``: ``"lifo"`` (the warmest connection) or ``"fifo"``. Default ``"lifo"``.
    - ``leak_threshold``: a checkout held longer is reported once (``on_leak``, with the stack
      where it was acquired, captured only when this is set) and again when it comes back.
      Default ``None`` (off).
    - ``create_backoff_base``, ``create_backoff_cap``: after failed attempts the next one waits
      from base, doubling, to cap, with jitter. Defaults 0.05 and 5.
    - ``breaker``: the circuit breaker guarding connection attempts, as a dict of
      ``CircuitBreaker`` keyword arguments; it replaces the default whole (keywords left out
      take ``CircuitBreaker``'s defaults). Default ``None``: open after 5 failed attempts in a
      row, for 5 s, then one probe.
    - ``seed``: fixes the jitter (tests).

    Use ``async with pool.connection() as conn:``, or ``conn = await pool.acquire()`` and
    ``pool.release(conn)``. Failures raise ``PoolTimeout`` (a ``TimeoutError``),
    ``PoolOverloaded``, ``ConnectFailed``, ``DatabaseUnavailable`` (breaker open: at once, with
    ``retry_after``), ``BudgetExhausted`` or ``PoolClosed``. ``await pool.drain()`` closes it.

    The pool binds to the running event loop at construction (or at first use when built
    outside one) and must be used from that loop's thread.
    """

    def __init__(
        self,
        create: Callable[[], Awaitable[C]],
        *,
        destroy: Optional[Callable[[C], Any]] = None,
        validate: Optional[Callable[[C], Any]] = None,
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
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self._creating: Dict[int, asyncio.Task[None]] = {}
        self._validating: Dict[int, asyncio.Task[None]] = {}
        # Every task the pool started, so that a drain can wait for the closes it caused.
        self._tasks: Set[asyncio.Task[None]] = set()
        self._drain_future: Optional[asyncio.Future[Tuple[C, ...]]] = None
        self._drain_deadline = 0.0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # Opens the `min_idle` connections.
        self._call(self._native.handle_timeout)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._bind(loop)
        elif self._loop is not loop:
            raise RuntimeError("this Pool is bound to another event loop")
        return loop

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        loop = self._loop
        if loop is None:
            loop = self._running_loop()
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the timer ---------------------------------------------------------------------------

    def _schedule(self, at: float) -> None:
        loop = self._loop
        if loop is None or (self._timer_at is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_later(max(0.0, at - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        at = self._timer_at
        self._timer = None
        self._timer_at = None
        now = self._clock()
        if at is not None and now < at:
            # The loop may run a timer a hair early; the engine must see its deadline reached.
            now = at
        _, actions, events, next_timeout = self._native.handle_timeout(now)
        self._apply(actions, events, next_timeout)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    # -- user code ---------------------------------------------------------------------------

    def _start_create(self, slot: int) -> None:
        self._creating[slot] = self._spawn(self._run_create(slot))

    def _cancel_create(self, slot: int) -> None:
        task = self._creating.pop(slot, None)
        if task is not None:
            task.cancel()

    async def _run_create(self, slot: int) -> None:
        try:
            conn = await self._create()
        except asyncio.CancelledError:
            if self._creating.pop(slot, None) is not None:
                # Cancelled from outside (the loop shutting down): the engine still waits.
                self._call(
                    self._native.handle_create_failed, slot, "connection attempt cancelled"
                )
            raise
        except Exception as exc:
            self._create_failed(slot, exc, self._creating.pop(slot, None) is not None)
            return
        self._created(slot, conn, self._creating.pop(slot, None) is not None)

    def _start_validate(self, slot: int, conn: C) -> None:
        self._validating[slot] = self._spawn(self._run_validate(slot, conn))

    def _cancel_validate(self, slot: int) -> None:
        task = self._validating.pop(slot, None)
        if task is not None:
            task.cancel()

    async def _run_validate(self, slot: int, conn: C) -> None:
        validate = self._validate
        ok = False
        try:
            if validate is not None:
                result = validate(conn)
                if inspect.isawaitable(result):
                    result = await result
                ok = bool(result)
        except asyncio.CancelledError:
            if self._validating.pop(slot, None) is not None:
                self._call(self._native.handle_validated, slot, False)
            raise
        except Exception:
            _log.debug("seawall: validate raised; the connection is closed", exc_info=True)
        if self._validating.pop(slot, None) is not None:
            self._call(self._native.handle_validated, slot, ok)

    def _close(self, conn: C) -> None:
        self._spawn(self._run_destroy(conn))

    async def _run_destroy(self, conn: C) -> None:
        try:
            if self._destroy_fn is not None:
                result = self._destroy_fn(conn)
            else:
                close = getattr(conn, "close", None)
                result = close() if callable(close) else None
            if inspect.isawaitable(result):
                await result
        except Exception:
            _log.warning("seawall: closing a connection raised", exc_info=True)

    # -- waiting -----------------------------------------------------------------------------

    def _take_waiter(self, waiter: int) -> Optional[_AsyncWaiter]:
        record: Optional[_AsyncWaiter] = self._waiters.pop(waiter, None)
        if record is None or record.future.done():
            return None
        return record

    def _deliver(self, record: _AsyncWaiter, result: Union[Tuple[int, int], BaseException]) -> None:
        if isinstance(result, BaseException):
            record.future.set_exception(result)
        else:
            record.future.set_result(result)

    def _begin(
        self, budget: Optional[Budget]
    ) -> Union[Tuple[C, int, int], Coroutine[Any, Any, Tuple[C, int, int]]]:
        """Asks the engine for a connection: ``(conn, slot, checkout)`` when one is ready, else
        the coroutine that waits for it (awaited by the caller). Not a coroutine itself, so
        that the common case (an idle connection) costs no coroutine of its own."""
        loop = self._loop
        if loop is None or loop is not _get_running_loop():
            loop = self._running_loop()
        stack = self._where() if self._tracks_leaks else None
        if budget is None:
            native: Any = None
            budget_now: Optional[float] = None
        else:
            native, budget_now = native_budget(budget)
        code, a, b, actions, events, next_timeout = self._native.acquire(
            self._clock(), native, budget_now
        )
        if code == READY:
            self._out[a] = _Checkout(b, stack)
            if actions is not None or events is not None or next_timeout is not None:
                self._apply(actions, events, next_timeout)
            return self._handed(a, b), a, b
        if code != WAIT:
            self._apply(actions, events, next_timeout)
            raise self._decorated(a)
        future: asyncio.Future[Tuple[int, int]] = loop.create_future()
        self._waiters[a] = _AsyncWaiter(future, stack)
        self._apply(actions, events, next_timeout)
        return self._wait(a, future)

    async def _wait(
        self, waiter: int, future: asyncio.Future[Tuple[int, int]]
    ) -> Tuple[C, int, int]:
        try:
            slot, checkout = await future
        except asyncio.CancelledError:
            self._abandon(waiter, future)
            raise
        return self._handed(slot, checkout), slot, checkout

    async def _acquire(self, budget: Optional[Budget]) -> Tuple[C, int, int]:
        begun = self._begin(budget)
        if isinstance(begun, tuple):
            return begun
        return await begun

    def _abandon(self, waiter: int, future: asyncio.Future[Tuple[int, int]]) -> None:
        """The waiting task was cancelled: cancel its wait, or give back what it was handed."""
        if self._waiters.pop(waiter, None) is not None:
            self._call(self._native.cancel, waiter)
            return
        if future.done() and not future.cancelled():
            if future.exception() is None:
                slot, checkout = future.result()
                self._return(slot, checkout, self._conns.get(slot), False, False)

    def resize(self, max_size: int) -> None:
        """Changes ``max_size`` at run time: growing serves waiting callers at once, shrinking
        closes idle connections at once and checked-out ones as they come back. Call it from the
        pool's event loop (growing may open connections). Raises ``InvalidConfigError`` for a
        size outside [1, 10000]."""
        self._running_loop()
        super().resize(max_size)

    async def acquire(self, *, budget: Optional[Budget] = None) -> C:
        """A connection, waiting at most ``acquire_timeout`` (and no longer than ``budget``
        allows). Return it with ``release``; prefer ``async with pool.connection()``.

        A task cancelled while it waits leaves the queue, and a connection handed to it in the
        meantime goes back to the pool.
        """
        begun = self._begin(budget)
        if isinstance(begun, tuple):
            return begun[0]
        conn, _, _ = await begun
        return conn

    def connection(self, *, budget: Optional[Budget] = None) -> _AsyncConnection[C]:
        """``async with pool.connection() as conn:``: a connection for the block, returned when
        it ends (closed instead when ``is_broken(conn)`` says so)."""
        return _AsyncConnection(self, budget)

    async def drain(self, timeout: float = 10.0) -> List[C]:
        """Stops handing out connections and closes the pool: waiting callers fail with
        ``PoolClosed``, idle connections close now, checked-out ones as they come back, and after
        ``timeout`` seconds whatever is still out is closed. Returns the connections that were
        still checked out then (an empty list when everything came back). Calling it again
        waits for the same drain."""
        timeout = check_timeout("timeout", timeout)
        loop = self._running_loop()
        if self._drain_future is None:
            self._drain_future = loop.create_future()
            now = self._clock()
            self._drain_deadline = now + timeout
            _, actions, events, next_timeout = self._native.drain(now, self._drain_deadline)
            self._apply(actions, events, next_timeout)
        held = await asyncio.shield(self._drain_future)
        # The closes the drain started, and the creates it abandoned.
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(
                pending, timeout=max(self._drain_deadline - self._clock(), 0.0) + 1.0
            )
        return list(held)

    def _holder(self) -> Any:
        if _CURRENT_TASKS is not None:
            return _CURRENT_TASKS.get(_get_running_loop())
        return asyncio.current_task()

    def _finished(self, holder: Any) -> bool:
        return bool(holder.done())

    def _drain_finished(self) -> None:
        self._stop_timer()
        future = self._drain_future
        if future is not None and not future.done() and self._drained is not None:
            future.set_result(self._drained)

    async def __aenter__(self) -> Pool[C]:
        self._running_loop()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.drain()


class _AsyncConnection(Generic[C]):
    """The context manager of ``Pool.connection``: holds the exact checkout it returns."""

    __slots__ = ("_pool", "_budget", "_held")

    def __init__(self, pool: Pool[C], budget: Optional[Budget]) -> None:
        self._pool = pool
        self._budget = budget
        self._held: Optional[Tuple[C, int, int]] = None

    async def __aenter__(self) -> C:
        if self._held is not None:
            raise RuntimeError("this connection() block is already in use")
        begun = self._pool._begin(self._budget)
        if isinstance(begun, tuple):
            self._held = begun
        else:
            self._held = await begun
        return self._held[0]

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        held, self._held = self._held, None
        if held is not None:
            conn, slot, checkout = held
            self._pool._return(slot, checkout, conn, False, True)
