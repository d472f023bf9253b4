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

Invariants kept here: the timer handle is cancelled whenever the block is left, however it is
left, so nothing is left scheduled on the loop; no task is created; the per-entry state lives in
a context variable, never on the budget, so one budget can guard blocks in many tasks at once.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from contextvars import ContextVar
from typing import Any, Callable, Literal, Optional, Tuple

from ._clock import resolve_clock
from ._errors import DeadlineExceeded
from ._native import Budget as _NativeBudget
from ._native import TimeoutPolicy as _NativePolicy

__all__ = ["Budget", "HeaderFormat", "TimeoutPolicy"]

HeaderFormat = Literal["grpc-timeout", "timeout-ms"]

# ``Task.cancelling()`` / ``Task.uncancel()`` arrived in 3.11.
_COUNTS_CANCELS = sys.version_info >= (3, 11)
# What our cancellation says on 3.9 / 3.10, so that leaving the block can recognise it.
_CANCEL_MESSAGE = "seawall: deadline exceeded"


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


class _Deadline:
    """One cancellation timer for the block running in the current task (``asyncio.timeout``'s
    logic, for Python 3.9+)."""

    __slots__ = ("_timeout", "_task", "_handle", "_fired", "_cancelling")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._task: Optional[asyncio.Task[Any]] = None
        self._handle: Optional[asyncio.TimerHandle] = None
        self._fired = False
        self._cancelling = 0

    def start(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a budget can only cancel work running inside an asyncio task")
        loop = task.get_loop()
        self._task = task
        if _COUNTS_CANCELS:
            self._cancelling = task.cancelling()
        self._handle = loop.call_at(loop.time() + self._timeout, self._on_timeout)

    def _on_timeout(self) -> None:
        self._handle = None
        self._fired = True
        task = self._task
        if task is None:
            return
        if _COUNTS_CANCELS:
            task.cancel()
        else:
            task.cancel(_CANCEL_MESSAGE)

    def finish(self, exc: Optional[BaseException]) -> Optional[DeadlineExceeded]:
        """Stops the timer. Returns the error to raise (from ``exc``) when the deadline
        cancelled the block, else ``None`` (``exc``, if any, propagates as it is)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
        task, self._task = self._task, None
        if not self._fired or task is None:
            return None
        if _COUNTS_CANCELS:
            # Every cancel request counts; ours is undone here. More left than before the block
            # means someone else asked too, and theirs must propagate.
            if task.uncancel() > self._cancelling:
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
        return DeadlineExceeded(
            f"deadline exceeded: the work was cancelled after {self._timeout:.3f} s",
            self._timeout,
        )


def _given(awaitable: Any) -> Any:
    return awaitable


async def finish_within(
    deadline: _Deadline, fn: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """Awaits ``fn(*args, **kwargs)`` under a started ``deadline``, which is always stopped;
    raises ``DeadlineExceeded`` when the deadline cancelled it."""
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        error = deadline.finish(exc)
        if error is not None:
            raise error from exc
        raise
    deadline.finish(None)
    return result


# The deadlines of the ``async with budget:`` blocks open in the current context, innermost
# last, as (budget, deadline). Tuples, because contexts are copied into new tasks and must not
# share a mutable stack.
_OPEN: ContextVar[Tuple[Tuple[Budget, _Deadline], ...]] = ContextVar(
    "seawall_open_budgets", default=()
)


def _discard(work: Any) -> None:
    """Makes sure work that will not be run does not linger: a coroutine is closed (no "never
    awaited" warning) and a future is cancelled."""
    if inspect.iscoroutine(work):
        work.close()
    elif asyncio.isfuture(work):
        work.cancel()


class Budget:
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

    __slots__ = ("_native", "_clock")

    def __init__(
        self,
        timeout: float,
        *,
        policy: Optional[TimeoutPolicy] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        native_policy = _native_policy(policy)
        self._clock = resolve_clock(clock)
        self._native = _NativeBudget(self._clock(), timeout, native_policy)

    @classmethod
    def _wrap(cls, native: _NativeBudget, clock: Callable[[], float]) -> Budget:
        budget = object.__new__(cls)
        budget._native = native
        budget._clock = clock
        return budget

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

    def _deadline(self) -> _Deadline:
        return _Deadline(self._native.timeout_for(self._clock(), None))

    async def __aenter__(self) -> Budget:
        """Starts the block, cancelled at the deadline; raises ``BudgetExhausted`` without
        running it when the budget cannot fit a call."""
        deadline = self._deadline()
        deadline.start()
        _OPEN.set(_OPEN.get() + ((self, deadline),))
        return self

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        """Stops the timer; turns the deadline's cancellation into ``DeadlineExceeded``."""
        stack = _OPEN.get()
        i = len(stack) - 1
        while i >= 0 and stack[i][0] is not self:
            i -= 1
        if i < 0:
            raise RuntimeError("Budget exited without a matching `async with` in this task")
        deadline = stack[i][1]
        _OPEN.set(stack[:i] + stack[i + 1 :])
        error = deadline.finish(exc)
        if error is not None:
            raise error from exc

    async def run(self, work: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Awaits ``work`` (a coroutine or other awaitable, or an async function called with
        ``args`` and ``kwargs``) until it finishes or the deadline passes, whichever is first.

        At the deadline the work is cancelled and ``DeadlineExceeded`` is raised. When the budget
        cannot fit a call, ``BudgetExhausted`` is raised and the work is not started (a
        coroutine is closed, a future cancelled).
        """
        if inspect.isawaitable(work):
            if args or kwargs:
                _discard(work)
                raise TypeError(
                    "arguments are only accepted with an async function, not an awaitable"
                )
            awaitable: Any = work
            fn = None
        elif callable(work):
            awaitable = None
            fn = work
        else:
            raise TypeError(
                f"work must be an awaitable or an async function, got {type(work).__name__}"
            )
        try:
            deadline = self._deadline()
            deadline.start()
        except BaseException:
            _discard(work)
            raise
        if fn is None:
            return await finish_within(deadline, _given, (awaitable,), {})
        return await finish_within(deadline, fn, args, kwargs)

    def __repr__(self) -> str:
        return f"<Budget remaining={self.remaining:.3f}s policy={self.policy!r}>"
