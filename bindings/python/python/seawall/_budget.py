"""Deadline budgets in Python: the timeout policy, ``Budget``, and cancellation at the deadline.

Every rule (scaling, the policy maximum, the minimum to start a call, header formats and
clamping) is one synchronous call into ``seawall._native``. This module reads the clock and does
the one thing the core cannot: cancel the caller's asyncio work at the deadline.

Cancellation follows ``asyncio.timeout``: a timer on the event loop cancels the task running the
block, and leaving the block turns *that* cancellation (and only that one) into
``DeadlineExceeded``. On Python 3.11+ the task's cancellation count tells ours from a
cancellation that came from outside (which then propagates untouched, as it must). Python 3.9
and 3.10 have no such count: there our cancellation carries a message of its own, and a
``CancelledError`` carrying another message is left alone; an outside cancellation without a
message that lands in the same loop iteration as the deadline can still be taken for the
deadline's (``asyncio.wait_for`` has the same limit on those versions).

Invariants kept here: a block's deadline is forgotten whenever the block is left, however it is
left, so nothing of it stays on the loop (the loop's one shared timer, ``_LoopTimer``, may stay
armed until the earliest deadline it was set for, then fires once, finds nothing and stops); no
task is created; the per-entry state lives in
a context variable, never on the budget, so one budget can guard blocks in many tasks at once.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import sys
import time
import weakref
from types import FunctionType as _FunctionType
from typing import Any, Awaitable, Callable, Dict, List, Literal, Optional, Tuple

from ._clock import resolve_clock
from ._errors import DeadlineExceeded
from ._native import Budget as _NativeBudget
from ._native import BudgetBase as _BudgetBase
from ._native import Ready as _Ready
from ._native import TimeoutPolicy as _NativePolicy

__all__ = ["Budget", "HeaderFormat", "TimeoutPolicy"]

HeaderFormat = Literal["grpc-timeout", "timeout-ms"]

# ``Task.cancelling()`` / ``Task.uncancel()`` arrived in 3.11.
_COUNTS_CANCELS = sys.version_info >= (3, 11)
# What our cancellation says on 3.9 / 3.10, so that leaving the block can recognise it.
_CANCEL_MESSAGE = "seawall: deadline exceeded"

_get_running_loop = asyncio.get_running_loop
# What ``__aexit__`` returns: done, with None (the exception is not suppressed).
_DONE: _Ready[None] = _Ready(None)
_monotonic = time.monotonic
# Before 3.12 ``asyncio.current_task`` is a Python function reading this dict (written by the C
# task step); reading it directly saves a frame on every block. 3.12+ has a C current_task.
_CURRENT_TASKS: Optional[Dict[Any, Any]] = None
if sys.version_info < (3, 12):
    _tasks_dict = getattr(asyncio.tasks, "_current_tasks", None)
    if isinstance(_tasks_dict, dict):
        _CURRENT_TASKS = _tasks_dict


class TimeoutPolicy:
    """The rules every budget and every timeout derived from one obeys (seconds).

    - ``max_timeout``: no timeout may exceed it, whatever a caller asks for; between 1 ms and
      24 h. Default 15.
    - ``scale``: every configured timeout is multiplied by it, in (0, 1]; 0.5 halves every
      timeout during an incident. Default 1.
    - ``min_to_start``: a call is not started with less than this left (``BudgetExhausted``
      instead); between 0 and ``max_timeout``. Default 0.01.

    Out-of-range values raise ``InvalidConfigError`` (a ``ValueError``) naming the keyword;
    values of the wrong type raise ``TypeError``. Policies are immutable and compare by value.
    """

    __slots__ = ("_native",)

    def __init__(
        self, max_timeout: float = 15.0, scale: float = 1.0, min_to_start: float = 0.01
    ) -> None:
        self._native = _NativePolicy(
            max_timeout=max_timeout, scale=scale, min_to_start=min_to_start
        )

    @classmethod
    def _wrap(cls, native: _NativePolicy) -> TimeoutPolicy:
        policy = object.__new__(cls)
        policy._native = native
        return policy

    @property
    def max_timeout(self) -> float:
        """The longest timeout allowed, in seconds."""
        return self._native.max_timeout

    @property
    def scale(self) -> float:
        """The factor applied to every configured timeout."""
        return self._native.scale

    @property
    def min_to_start(self) -> float:
        """The least time left, in seconds, for which a call is still started."""
        return self._native.min_to_start

    @staticmethod
    def get_global() -> TimeoutPolicy:
        """The process-wide policy: the one every budget created without a ``policy`` gets."""
        return TimeoutPolicy._wrap(_NativePolicy.get_global())

    @staticmethod
    def set_global(policy: TimeoutPolicy) -> None:
        """Replaces the process-wide policy (to halve every timeout during an incident, say).
        Budgets created before keep the policy they were created with."""
        if not isinstance(policy, TimeoutPolicy):
            raise TypeError(f"policy must be a TimeoutPolicy, got {type(policy).__name__}")
        _NativePolicy.set_global(policy._native)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeoutPolicy):
            return NotImplemented
        return bool(self._native == other._native)

    def __hash__(self) -> int:
        return hash((self.max_timeout, self.scale, self.min_to_start))

    def __reduce__(self) -> Any:
        return (TimeoutPolicy, (self.max_timeout, self.scale, self.min_to_start))

    def __repr__(self) -> str:
        return (
            f"TimeoutPolicy(max_timeout={self.max_timeout!r}, scale={self.scale!r}, "
            f"min_to_start={self.min_to_start!r})"
        )


def _native_policy(policy: Optional[TimeoutPolicy]) -> _NativePolicy:
    if policy is None:
        return _NativePolicy.get_global()
    if not isinstance(policy, TimeoutPolicy):
        raise TypeError(f"policy must be a TimeoutPolicy or None, got {type(policy).__name__}")
    return policy._native


# A block under a deadline, as a list (cheaper to make than an object, and a block is entered
# on every call): [budget or None, when (loop time), timeout, cancelling, fired, outer block of
# the same task or None].
_BUDGET, _WHEN, _TIMEOUT, _CANCELLING, _FIRED, _OUTER = range(6)
_Block = List[Any]


class _LoopTimer:
    """The one timer of an event loop for every block under a deadline running on it.

    A block registers its deadline (loop time) here instead of scheduling a handle of its own:
    a loop handle costs an allocation and a push on the loop's heap, and one that is cancelled
    (every block that finishes in time) stays on the heap until the loop sweeps it, so with a
    handle per block a busy loop pays for a heap of dead timers. Here the loop holds at most one
    handle, armed for the earliest deadline it has seen; leaving a block only forgets it. When
    the handle fires it cancels the tasks whose blocks are due, as ``asyncio.timeout`` would,
    and re-arms for the earliest deadline left, or stays unarmed when no block is left. In
    steady state (blocks entered and left well before their deadlines) nothing is scheduled on
    the loop at all.

    The blocks open in each task are kept here too, innermost first (``_blocks``), which is
    how leaving a block finds it: cheaper than a context variable, and a task's blocks are
    entered and left by that task alone.
    """

    __slots__ = ("_loop", "_handle", "_at", "_blocks", "_now", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # The loop's clock: asyncio's own loops read time.monotonic, called directly then (a
        # Python frame less per block); any other loop is asked.
        self._now: Callable[[], float] = (
            _monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        )
        self._handle: Optional[asyncio.TimerHandle] = None
        self._at = math.inf
        self._blocks: Dict[Any, _Block] = {}

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._at = math.inf
        # As asyncio does for its own timers: what is due within the clock's resolution is due.
        now = self._now() + getattr(self._loop, "_clock_resolution", 0.0)
        due = []
        nearest = math.inf
        for task, block in self._blocks.items():
            b: Optional[_Block] = block
            while b is not None:
                if not b[_FIRED]:
                    if b[_WHEN] <= now:
                        due.append((task, b))
                    elif b[_WHEN] < nearest:
                        nearest = b[_WHEN]
                b = b[_OUTER]
        if nearest < math.inf:
            self._arm(nearest)
        for task, b in due:
            _expire(task, b)

    def pending(self) -> int:
        """How many blocks are open (for tests and the benchmark's leak check)."""
        n = 0
        for block in self._blocks.values():
            b: Optional[_Block] = block
            while b is not None:
                n += 1
                b = b[_OUTER]
        return n

    def is_armed(self) -> bool:
        """Whether the loop holds this timer's handle now."""
        return self._handle is not None and not self._handle.cancelled()


# The timer of each loop, forgotten with the loop; the last one used is kept at hand (a weak
# reference, checked against the running loop), since a program almost always has one loop.
_TIMERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopTimer] = (
    weakref.WeakKeyDictionary()
)
_last_timer: Tuple[Callable[[], Optional[asyncio.AbstractEventLoop]], Optional[_LoopTimer]] = (
    lambda: None,
    None,
)


def _timer_of(loop: asyncio.AbstractEventLoop) -> _LoopTimer:
    global _last_timer
    ref, timer = _last_timer
    if timer is not None and ref() is loop:
        return timer
    timer = _TIMERS.get(loop)
    if timer is None:
        timer = _TIMERS[loop] = _LoopTimer(loop)
    _last_timer = (weakref.ref(loop), timer)
    return timer


def loop_timer(loop: asyncio.AbstractEventLoop) -> Optional[_LoopTimer]:
    """The shared deadline timer of ``loop``, if a budget has used one there (for tests and the
    benchmark's leak check)."""
    return _TIMERS.get(loop)


def _here() -> Tuple[_LoopTimer, Any]:
    """The running loop's timer and the running task."""
    loop = _get_running_loop()
    if _CURRENT_TASKS is not None:
        task = _CURRENT_TASKS.get(loop)
    else:
        task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("a budget can only cancel work running inside an asyncio task")
    ref, timer = _last_timer
    if timer is None or ref() is not loop:
        timer = _timer_of(loop)
    return timer, task


def _enter(timeout: float, budget: Optional[Budget]) -> Tuple[_LoopTimer, Any, _Block]:
    """Opens a block of the running task, cancelled ``timeout`` seconds from now."""
    timer, task = _here()
    blocks = timer._blocks
    when = timer._now() + timeout
    block = [
        budget,
        when,
        timeout,
        task.cancelling() if _COUNTS_CANCELS else 0,
        False,
        blocks.get(task),
    ]
    blocks[task] = block
    if when < timer._at:
        timer._arm(when)
    return timer, task, block


def _forget(timer: _LoopTimer, task: Any, block: _Block) -> None:
    """Closes ``block`` of ``task`` (normally its innermost)."""
    blocks = timer._blocks
    top = blocks.get(task)
    if top is block:
        outer = block[_OUTER]
        if outer is None:
            del blocks[task]
        else:
            blocks[task] = outer
        return
    # Left out of order (``__aexit__`` called by hand): unlink it. Blocks are lists, so the
    # one above it is simply pointed past it.
    b = top
    while b is not None and b[_OUTER] is not block:
        b = b[_OUTER]
    if b is not None:
        b[_OUTER] = block[_OUTER]


def _expire(task: Any, block: _Block) -> None:
    """The block's deadline has come: cancel its task (``asyncio.timeout``'s way)."""
    block[_FIRED] = True
    if _COUNTS_CANCELS:
        task.cancel()
    else:
        task.cancel(_CANCEL_MESSAGE)


def _outcome(
    task: Any, block: _Block, exc: Optional[BaseException]
) -> Optional[DeadlineExceeded]:
    """After a fired block: the error to raise (from ``exc``) when the deadline cancelled it,
    else ``None`` (``exc``, if any, propagates as it is)."""
    if _COUNTS_CANCELS:
        # Every cancel request counts; ours is undone here. More left than before the block
        # means someone else asked too, and theirs must propagate.
        if task.uncancel() > block[_CANCELLING]:
            return None
    elif (
        isinstance(exc, asyncio.CancelledError)
        and exc.args
        and exc.args[0] != _CANCEL_MESSAGE
    ):
        return None
    if not isinstance(exc, asyncio.CancelledError):
        # The block swallowed the cancellation or ended with an error of its own.
        return None
    timeout: float = block[_TIMEOUT]
    return DeadlineExceeded(
        f"deadline exceeded: the work was cancelled after {timeout:.3f} s", timeout
    )


class _Deadline:
    """A block of the running task cancelled at a deadline (``asyncio.timeout``'s logic, for
    Python 3.9+, on the loop's shared ``_LoopTimer``), for code that holds it between its start
    and its end (``CallPolicy``)."""

    __slots__ = ("_timeout", "_timer", "_task", "_block")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._timer: Optional[_LoopTimer] = None
        self._task: Any = None
        self._block: Optional[_Block] = None

    def start(self) -> None:
        self._timer, self._task, self._block = _enter(self._timeout, None)

    def _on_timeout(self) -> None:
        if self._block is not None:
            _expire(self._task, self._block)

    def finish(self, exc: Optional[BaseException]) -> Optional[DeadlineExceeded]:
        """Stops the timer. Returns the error to raise (from ``exc``) when the deadline
        cancelled the block, else ``None`` (``exc``, if any, propagates as it is)."""
        timer, task, block = self._timer, self._task, self._block
        self._timer = self._task = self._block = None
        if timer is None or block is None:
            return None
        _forget(timer, task, block)
        if not block[_FIRED]:
            return None
        return _outcome(task, block, exc)


def _discard(work: Any) -> None:
    """Makes sure work that will not be run does not linger: a coroutine is closed (no "never
    awaited" warning) and a future is cancelled."""
    if inspect.iscoroutine(work):
        work.close()
    elif asyncio.isfuture(work):
        work.cancel()


class Budget(_BudgetBase):
    """A request's deadline: created from a total timeout, carried through the request and
    shared by everything it calls. Times are seconds.

    ``Budget(2.0)`` ends 2 s from now (scaled and capped by the policy, the process-wide one
    unless ``policy`` is given). ``timeout`` may be anything from 0 to 24 h; values above the
    policy maximum are clamped to it; negative, NaN, infinite or larger values raise
    ``InvalidConfigError`` (a ``ValueError``), and a value that is not a number ``TypeError``.
    ``clock`` is a zero-argument callable returning monotonic seconds (default
    ``time.monotonic``).

    Use it as ``async with budget:`` (cancels the block at the deadline and raises
    ``DeadlineExceeded``), ``await budget.run(work)``, or synchronously with ``check()`` and
    ``timeout_for()`` before each call. Pass the time left downstream with ``to_header()`` and
    rebuild it on the other side with ``Budget.from_header()``. Immutable: share it freely
    between tasks and threads.
    """

    # No ``__init__``: the native base builds the budget in the type call (see ``BudgetBase``),
    # and provides ``_native`` (the core's budget) and ``_clock``.
    __slots__ = ()

    @classmethod
    def _wrap(cls, native: _NativeBudget, clock: Callable[[], float]) -> Budget:
        return cls(native, clock=clock)  # type: ignore[arg-type]

    @classmethod
    def from_header(
        cls,
        value: str,
        *,
        format: HeaderFormat = "grpc-timeout",
        policy: Optional[TimeoutPolicy] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> Budget:
        """A budget from a header value received from a caller: ``grpc-timeout`` (``"100m"``,
        ``"2S"``) or ``timeout-ms`` (``"1500"``). The caller's deadline is capped at the policy
        maximum but not scaled. A malformed value raises ``InvalidHeaderError`` (a
        ``ValueError``); a value that is not a ``str`` raises ``TypeError``."""
        native_policy = _native_policy(policy)
        clock = resolve_clock(clock)
        return cls._wrap(_NativeBudget.from_header(value, clock(), format, native_policy), clock)

    @property
    def remaining(self) -> float:
        """Seconds left (0 once the deadline has passed)."""
        return self._native.remaining(self._clock())

    @property
    def is_expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._native.is_expired(self._clock())

    @property
    def deadline(self) -> float:
        """The deadline, in seconds on the budget's clock (``time.monotonic`` by default)."""
        return self._native.deadline

    @property
    def policy(self) -> TimeoutPolicy:
        """The policy the budget was created under."""
        return TimeoutPolicy._wrap(self._native.policy)

    def child(self, cap: float) -> Budget:
        """A budget for one part of the request: it ends at the earlier of this deadline and
        ``cap`` seconds from now (``cap`` scaled and capped by the policy)."""
        return Budget._wrap(self._native.child(self._clock(), cap), self._clock)

    def timeout_for(self, cap: Optional[float] = None) -> float:
        """The timeout for one call, in seconds: the least of the time left, ``cap`` (scaled by
        the policy) and the policy maximum. Raises ``BudgetExhausted``, before the call is
        made, when less than the policy's ``min_to_start`` is left."""
        return self._native.timeout_for(self._clock(), cap)

    def check(self) -> float:
        """Raises ``BudgetExhausted`` when a call should not be started (less than
        ``min_to_start`` left); otherwise returns the seconds left. For synchronous code, which
        cannot be cancelled: check before each call."""
        return self._native.check(self._clock())

    def to_header(self, format: HeaderFormat = "grpc-timeout") -> str:
        """The time left as a header value for a downstream call: ``grpc-timeout`` (the finest
        unit that fits, ``"1500000u"``) or ``timeout-ms`` (whole milliseconds), rounded down so
        the callee never believes it has more time than we do."""
        return self._native.to_header(self._clock(), format)

    # -- cancellation at the deadline ------------------------------------------------------

    # Both run on every call made under a budget, so ``_enter`` and ``_here`` are inlined.
    # ``__aexit__`` does its work when called and returns an awaitable that is already done
    # (``async with`` awaits what it returns) rather than being a coroutine; ``__aenter__``
    # stays one, since a done awaitable carrying a value costs more than a coroutine.

    async def __aenter__(self) -> Budget:
        """Starts the block, cancelled at the deadline; raises ``BudgetExhausted`` without
        running it when the budget cannot fit a call."""
        timeout = self._timeout_now()
        loop = _get_running_loop()
        if _CURRENT_TASKS is not None:
            task = _CURRENT_TASKS.get(loop)
        else:
            task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a budget can only cancel work running inside an asyncio task")
        ref, timer = _last_timer
        if timer is None or ref() is not loop:
            timer = _timer_of(loop)
        blocks = timer._blocks
        when = timer._now() + timeout
        blocks[task] = [
            self,
            when,
            timeout,
            task.cancelling() if _COUNTS_CANCELS else 0,
            False,
            blocks.get(task),
        ]
        if when < timer._at:
            timer._arm(when)
        return self

    def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> Awaitable[None]:
        """Stops the timer; turns the deadline's cancellation into ``DeadlineExceeded``."""
        loop = _get_running_loop()
        if _CURRENT_TASKS is not None:
            task = _CURRENT_TASKS.get(loop)
        else:
            task = asyncio.current_task(loop)
        ref, timer = _last_timer
        if timer is None or ref() is not loop:
            timer = _timer_of(loop)
        blocks = timer._blocks
        block: Optional[_Block] = blocks.get(task)
        if block is not None and block[_BUDGET] is self:
            outer = block[_OUTER]
            if outer is None:
                del blocks[task]
            else:
                blocks[task] = outer
        else:
            while block is not None and block[_BUDGET] is not self:
                block = block[_OUTER]
            if block is None:
                raise RuntimeError("Budget exited without a matching `async with` in this task")
            _forget(timer, task, block)
        if block[_FIRED]:
            error = _outcome(task, block, exc)
            if error is not None:
                raise error from exc
        return _DONE

    async def run(self, work: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Awaits ``work`` (a coroutine or other awaitable, or an async function called with
        ``args`` and ``kwargs``) until it finishes or the deadline passes, whichever is first.

        At the deadline the work is cancelled and ``DeadlineExceeded`` is raised. When the budget
        cannot fit a call, ``BudgetExhausted`` is raised and the work is not started (a
        coroutine is closed, a future cancelled).
        """
        # A plain function is never awaitable: skip inspect.isawaitable for the common case.
        if type(work) is not _FunctionType and inspect.isawaitable(work):
            if args or kwargs:
                _discard(work)
                raise TypeError(
                    "arguments are only accepted with an async function, not an awaitable"
                )
            fn = None
        elif callable(work):
            fn = work
        else:
            raise TypeError(
                f"work must be an awaitable or an async function, got {type(work).__name__}"
            )
        try:
            timer, task, block = _enter(self._timeout_now(), None)
        except BaseException:
            _discard(work)
            raise
        # The work runs here, not in a helper coroutine: one coroutine less per call.
        try:
            result = await (work if fn is None else fn(*args, **kwargs))
        except BaseException as exc:
            _forget(timer, task, block)
            if block[_FIRED]:
                error = _outcome(task, block, exc)
                if error is not None:
                    raise error from exc
            raise
        _forget(timer, task, block)
        if block[_FIRED]:
            # The deadline came as the work finished: our cancellation is undone (3.11+), as
            # asyncio.timeout does when its block ends normally.
            _outcome(task, block, None)
        return result

    def __repr__(self) -> str:
        return f"<Budget remaining={self.remaining:.3f}s policy={self.policy!r}>"
