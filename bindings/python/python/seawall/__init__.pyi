"""Seawall: circuit breakers, deadline budgets, retries and connection pools from one Rust core
shared with Rust and Node.js, so every service in a fleet makes the same decisions about when to
stop calling a sick dependency, how long any call may take, when to retry, and how many
connections a database may be asked for.

Durations are seconds as floats. Every rule (when a breaker opens, how long a call may take,
whether to retry and after how long, which caller gets which connection) is decided by the
native core; this package adds decorators, context managers, asyncio cancellation, permits,
listeners, and the pools' asyncio and thread adapters.
"""

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Generic,
    Literal,
    Mapping,
    NamedTuple,
    TypeVar,
    overload,
)

from typing_extensions import ParamSpec, Self, TypeAlias

# The memory watchdog: documented in _watchdog.pyi.
from ._watchdog import (
    DUMP_PREFIX as DUMP_PREFIX,
    RESTART_EXIT_CODE as RESTART_EXIT_CODE,
    Assessment as Assessment,
    DumpPlan as DumpPlan,
    MemoryReading as MemoryReading,
    MemoryWatchdog as MemoryWatchdog,
    Trend as Trend,
    WatchdogAction as WatchdogAction,
    WatchdogCounts as WatchdogCounts,
    WatchdogEvent as WatchdogEvent,
    WatchdogMetrics as WatchdogMetrics,
    WatchdogPolicy as WatchdogPolicy,
    read_memory as read_memory,
)

__all__ = [
    "BackoffKind",
    "Budget",
    "BudgetExhausted",
    "CallPolicy",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConnectAttemptFailed",
    "ConnectFailed",
    "ConnectionNotCheckedOut",
    "CreateAction",
    "DatabaseUnavailable",
    "DeadlineExceeded",
    "DestroyAction",
    "DestroyReason",
    "Drained",
    "FailAction",
    "GiveUpReason",
    "HandAction",
    "HeaderFormat",
    "Histogram",
    "IdleOrder",
    "InvalidConfigError",
    "InvalidHeaderError",
    "LeakReturned",
    "LeakSuspected",
    "Lease",
    "ManualClock",
    "Metrics",
    "Permit",
    "Pool",
    "PoolAction",
    "PoolClosed",
    "PoolEngine",
    "PoolError",
    "PoolEvent",
    "PoolMetrics",
    "PoolOverloaded",
    "PoolTimeout",
    "Rejection",
    "RejectionReason",
    "RetryBudget",
    "RetryBudgetExhausted",
    "RetryBudgetMetrics",
    "RetryDecision",
    "RetryLoop",
    "RetryPolicy",
    "SeawallError",
    "SnapshotError",
    "State",
    "StateChange",
    "SyncPool",
    "TimeoutPolicy",
    "TransitionReason",
    "ValidateAction",
    "Waiter",
    # The memory watchdog (_watchdog.pyi).
    "Assessment",
    "DUMP_PREFIX",
    "DumpPlan",
    "MemoryReading",
    "MemoryWatchdog",
    "RESTART_EXIT_CODE",
    "Trend",
    "WatchdogAction",
    "WatchdogCounts",
    "WatchdogEvent",
    "WatchdogMetrics",
    "WatchdogPolicy",
    "read_memory",
    "retry",
    "retry_call",
    "retry_call_async",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C")

State: TypeAlias = Literal[
    "closed", "open", "half_open", "forced_open", "disabled", "metrics_only"
]
"""Where a breaker stands."""

RejectionReason: TypeAlias = Literal["open", "half_open_full", "forced_open"]
"""Why a call was rejected."""

TransitionReason: TypeAlias = Literal[
    "failure_rate",
    "slow_call_rate",
    "consecutive_failures",
    "open_duration_elapsed",
    "probes_succeeded",
    "probes_failed",
    "probes_slow",
    "half_open_timeout",
    "forced_open",
    "disabled",
    "metrics_only",
    "reset",
    "restored",
]
"""Why a breaker changed state."""

HeaderFormat: TypeAlias = Literal["grpc-timeout", "timeout-ms"]
"""How a budget travels in a header: ``grpc-timeout`` (``"100m"``) or plain milliseconds."""

BackoffKind: TypeAlias = Literal["constant", "exponential", "decorrelated_jitter"]
"""How a retry policy waits between attempts."""

GiveUpReason: TypeAlias = Literal[
    "attempts_exhausted", "budget_exhausted", "retry_after_beyond_budget", "retry_budget_exhausted"
]
"""Why a retry loop stopped."""

IdleOrder: TypeAlias = Literal["lifo", "fifo"]
"""Which idle connection a checkout gets: the most recently returned, or the least."""

DestroyReason: TypeAlias = Literal[
    "broken",
    "invalid",
    "idle_timeout",
    "expired",
    "resized",
    "closed",
    "create_timed_out",
    "stale",
]
"""Why the pool engine asks for a connection to be closed."""

_ExceptionTypes: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | list[type[BaseException]]
)

class SeawallError(Exception):
    """Base class of every exception Seawall raises on its own account."""

class CircuitOpenError(SeawallError):
    """The circuit breaker rejected the call; the guarded function was not called.

    A fresh instance is raised for every rejection.
    """

    @property
    def reason(self) -> RejectionReason:
        """``"open"``, ``"half_open_full"`` (all half-open probe slots taken) or
        ``"forced_open"``."""
    @property
    def retry_after(self) -> float | None:
        """Seconds until the breaker admits calls again, when it knows (it does while open)."""
    @property
    def breaker_name(self) -> str | None:
        """The ``name`` of the breaker that rejected the call."""

    def __init__(
        self, reason: str, retry_after: float | None = None, breaker_name: str | None = None
    ) -> None: ...

class InvalidConfigError(SeawallError, ValueError):
    """A configuration value is out of its allowed range (a ``ValueError``).

    The message names the keyword argument, the allowed range and the value given. Values of
    the wrong type raise ``TypeError`` instead.
    """

    message: str
    """The full message."""
    field: str
    """The rejected keyword argument (``"window_size"`` of ``CircuitBreaker``, ``"scale"`` of
    ``TimeoutPolicy``, ``"timeout"`` of ``Budget``, ``"base"`` of ``RetryPolicy``, ...)."""
    expected: str | None
    """What the field accepts."""
    got: str | None
    """The rejected value, as shown in the message."""

    def __init__(
        self,
        message: str,
        field: str = "",
        expected: str | None = None,
        got: str | None = None,
    ) -> None: ...

class SnapshotError(SeawallError, ValueError):
    """A snapshot cannot be restored: not JSON, not a snapshot, from a newer Seawall, or for a
    breaker with another kind of window. The breaker is left unchanged."""

class DeadlineExceeded(SeawallError, TimeoutError):
    """The deadline passed while the work ran, and the work was cancelled. Also a builtin
    ``TimeoutError``. A fresh instance is raised every time."""

    message: str
    """The full message."""
    timeout: float | None
    """How long the work was given, in seconds."""

    def __init__(
        self, message: str = "deadline exceeded", timeout: float | None = None
    ) -> None: ...

class BudgetExhausted(SeawallError):
    """Too little of the budget is left to start the call (less than the policy's
    ``min_to_start``), so it was not started."""

    message: str
    """The full message."""
    remaining: float | None
    """Seconds that were left."""
    min_to_start: float | None
    """The policy's minimum to start a call, in seconds."""

    def __init__(
        self,
        message: str = "budget exhausted",
        remaining: float | None = None,
        min_to_start: float | None = None,
    ) -> None: ...

class RetryBudgetExhausted(SeawallError):
    """The shared retry budget allows no more retries now, so the call gave up. Its
    ``__cause__`` is the last attempt's error."""

    message: str
    """The full message."""
    attempts: int | None
    """Attempts made before giving up."""

    def __init__(
        self, message: str = "retry budget exhausted", attempts: int | None = None
    ) -> None: ...

class InvalidHeaderError(SeawallError, ValueError):
    """A received header value is not a timeout (a ``ValueError``)."""

    message: str
    """The full message."""
    header: str | None
    """The format expected: ``"grpc-timeout"`` or ``"timeout-ms"``."""
    value: str | None
    """The value received (at most 64 characters)."""
    reason: str | None
    """What is wrong with it."""

    def __init__(
        self,
        message: str,
        header: str | None = None,
        value: str | None = None,
        reason: str | None = None,
    ) -> None: ...

class PoolError(SeawallError):
    """Base class of the reasons a pool could not give a connection: ``PoolTimeout``,
    ``PoolOverloaded``, ``ConnectFailed``, ``DatabaseUnavailable``, ``PoolClosed``. (A caller's
    budget too short to wait raises ``BudgetExhausted``.) A fresh instance every time."""

    message: str
    """The full message."""

    def __init__(self, message: str) -> None: ...

class PoolTimeout(PoolError, TimeoutError):
    """No connection became free within the acquire timeout (also a ``TimeoutError``)."""

    waited: float | None
    """How long this caller waited, in seconds."""
    in_use: int | None
    """Connections checked out."""
    idle: int | None
    """Connections not checked out (being checked, say)."""
    waiting: int | None
    """Callers waiting, this one included."""
    oldest_checkout_age: float | None
    """How long the longest-held checkout had been out, in seconds (``None``: nothing out): a
    large one points at a leak or a slow query rather than at the database."""

    def __init__(
        self,
        message: str = "timed out waiting for a connection",
        waited: float | None = None,
        in_use: int | None = None,
        idle: int | None = None,
        waiting: int | None = None,
        oldest_checkout_age: float | None = None,
    ) -> None: ...

class PoolOverloaded(PoolError):
    """The wait queue is full (``max_waiters`` callers already waiting): failing at once beats
    piling up."""

    waiting: int | None
    """Callers waiting."""
    max_waiters: int | None
    """The limit."""

    def __init__(
        self,
        message: str = "pool overloaded",
        waiting: int | None = None,
        max_waiters: int | None = None,
    ) -> None: ...

class ConnectFailed(PoolError):
    """Connection attempts kept failing while the caller waited."""

    error: str | None
    """The last attempt's error, as text."""
    attempts: int | None
    """Failed attempts in a row."""
    cause: BaseException | None
    """The last attempt's exception (also the ``__cause__``), when the pool saw it."""

    def __init__(
        self,
        message: str = "could not connect",
        error: str | None = None,
        attempts: int | None = None,
        cause: BaseException | None = None,
    ) -> None: ...

class DatabaseUnavailable(PoolError):
    """The breaker guarding the pool's connection attempts is open: the pool fails at once and
    makes no attempt until the breaker lets a probe through."""

    retry_after: float | None
    """Seconds until the next probe, when known."""
    last_error: str | None
    """The last failed attempt's error, as text."""
    cause: BaseException | None
    """The last failed attempt's exception (also the ``__cause__``), when the pool saw it."""

    def __init__(
        self,
        message: str = "database unavailable",
        retry_after: float | None = None,
        last_error: str | None = None,
        cause: BaseException | None = None,
    ) -> None: ...

class PoolClosed(PoolError):
    """The pool is draining or closed."""

    def __init__(self, message: str = "pool is closed") -> None: ...

class ConnectionNotCheckedOut(SeawallError, ValueError):
    """``release`` was given a connection this pool does not have checked out (returned
    already, or never from this pool); nothing changed, and a checkout someone else holds was
    left with them."""

    message: str
    """The full message."""

    def __init__(self, message: str) -> None: ...

class StateChange(NamedTuple):
    """A state change, as passed to ``on_state_change`` listeners."""

    from_state: State
    """The state before."""
    to_state: State
    """The state after."""
    reason: TransitionReason
    """Why it changed."""

class Rejection(NamedTuple):
    """A rejected call, as passed to ``on_reject`` listeners."""

    reason: RejectionReason
    """Why the call was rejected."""
    retry_after: float | None
    """Seconds until calls are admitted again, when known."""

@dataclass(frozen=True)
class Metrics:
    """A point-in-time view of a breaker's numbers. Counters count since the breaker was
    built (across resets); ``permitted == successes + failures + ignored + in_flight``."""

    state: State
    """The state."""
    failure_rate: float
    """Percentage of failed calls among the calls judged now (the window, or the completed
    half-open probes); 0 when there are none."""
    slow_call_rate: float
    """Percentage of slow calls among the calls judged now; 0 when there are none."""
    calls_in_window: int
    """Calls judged now (the window's, or the completed half-open probes)."""
    failures_in_window: int
    """Failed calls among them."""
    slow_calls_in_window: int
    """Slow calls among them."""
    permitted: int
    """Calls admitted and counted (calls admitted while disabled are not counted)."""
    successes: int
    """Outcomes recorded as success."""
    failures: int
    """Outcomes recorded as failure."""
    ignored: int
    """Outcomes recorded as ignored, including permits released without an outcome."""
    slow_calls: int
    """Calls slower than ``slow_call_duration`` (successes and failures)."""
    rejected: int
    """Calls rejected."""
    in_flight: int
    """Permits admitted and not yet recorded."""
    times_opened: int
    """How many times the breaker opened (forced opens included)."""
    consecutive_failures: int
    """Failures in a row right now."""

    def as_dict(self) -> dict[str, Any]:
        """The metrics as a plain dict (for logging or JSON)."""

class Permit:
    """Permission to make one call, from ``CircuitBreaker.try_acquire()``.

    Record exactly one outcome with ``success()``, ``failure()`` or ``ignore()``; later calls
    do nothing. As a context manager it records the outcome of its block (classified like the
    breaker's other calls) unless one was recorded inside it. A permit garbage-collected
    without an outcome is released as ignored, so a half-open probe slot is never lost.
    """

    def __init__(self, breaker: CircuitBreaker, token: int, started: float) -> None: ...
    def success(self) -> None:
        """The call succeeded."""
    def failure(self) -> None:
        """The call failed."""
    def ignore(self) -> None:
        """The call counts neither as a success nor as a failure; frees its slot."""
    @property
    def recorded(self) -> bool:
        """Whether an outcome has been recorded."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def __del__(self) -> None:
        """Releases an unrecorded permit as ignored."""

class CircuitBreaker:
    """A circuit breaker: stops calling a failing or slow dependency, probes it now and then,
    and resumes when it has recovered.

    Guard calls with it as a decorator (``@breaker`` on sync or async functions), as
    ``with breaker:`` / ``async with breaker:``, with ``call`` / ``call_async``, or with explicit
    permits from ``try_acquire``. A rejected call raises ``CircuitOpenError`` without calling
    anything. Thread-safe and safe to share between asyncio tasks.

    Configuration (durations in seconds; out-of-range values raise ``InvalidConfigError``, a
    ``ValueError``; values of the wrong type raise ``TypeError``):

    - ``failure_rate_threshold``: percentage in (0, 100] of failed calls in the window at or
      above which the breaker opens. Default 50.
    - ``slow_call_rate_threshold``: percentage in (0, 100] of slow calls at or above which it
      opens. Default 100. Only applies when ``slow_call_duration`` is set.
    - ``slow_call_duration``: a call that takes longer than this is slow, whatever its
      outcome. Default ``None`` (slow calls not tracked).
    - ``window``: ``"count"`` (the last ``window_size`` calls, default 100) or ``"time"`` (the
      calls of the last ``window_duration`` seconds, required then, in ``window_buckets``
      slices, default 10).
    - ``minimum_calls``: calls needed in the window before a rate can open the breaker
      (capped at ``window_size``). Default 20.
    - ``consecutive_failures``: open after this many failures in a row, whatever the rates.
      Default ``None`` (off).
    - ``open_duration``: how long the breaker stays open before probing. Default 30.
    - ``backoff``: ``"fixed"`` or ``"exponential"``: the k-th re-open without a successful
      close in between lasts ``open_duration * backoff_multiplier**k`` (default multiplier 2),
      capped at ``max_open_duration`` (default 10 × ``open_duration``, at most 24 h), shortened
      at random by up to the fraction ``backoff_jitter`` (default 0).
    - ``half_open_calls``: probes admitted while half-open. Default 3.
    - ``max_half_open_duration``: a half-open trial not finished after this long reopens the
      breaker. Default 120; ``None`` waits for the probes for ever.
    - ``seed``: fixes the jitter's random generator (tests). Default ``None`` (random).

    Classification of outcomes: an exception is a failure unless it is excluded by
    ``exclude`` (exception types, or a predicate; ignored: neither success nor failure) or
    ``is_failure(exc)`` returns false (then it counts as a success). A ``BaseException`` that is
    not an ``Exception`` (``KeyboardInterrupt``, ``asyncio.CancelledError``, ``GeneratorExit``)
    is ignored. A returned value is a success unless ``is_result_failure(result)`` returns true.
    If a classifier raises, the call is recorded as ignored and the classifier's error
    propagates.

    ``clock`` is any zero-argument callable returning monotonic seconds (default
    ``time.monotonic``); tests pass a ``ManualClock``. ``name`` appears in errors and ``repr``.
    """

    def __init__(
        self,
        *,
        failure_rate_threshold: float = 50.0,
        slow_call_rate_threshold: float = 100.0,
        slow_call_duration: float | None = None,
        window: Literal["count", "time"] = "count",
        window_size: int = 100,
        window_duration: float | None = None,
        window_buckets: int = 10,
        minimum_calls: int = 20,
        consecutive_failures: int | None = None,
        open_duration: float = 30.0,
        backoff: Literal["fixed", "exponential"] = "fixed",
        backoff_multiplier: float = 2.0,
        max_open_duration: float | None = None,
        backoff_jitter: float = 0.0,
        half_open_calls: int = 3,
        max_half_open_duration: float | None = 120.0,
        seed: int | None = None,
        exclude: _ExceptionTypes | Callable[[BaseException], object] = (),
        is_failure: Callable[[BaseException], object] | None = None,
        is_result_failure: Callable[[Any], object] | None = None,
        clock: Callable[[], float] | None = None,
        name: str | None = None,
    ) -> None: ...
    def __call__(self, fn: _F) -> _F:
        """Decorates a sync or async function so that every call goes through the breaker
        (``functools.wraps`` metadata is kept). Generator functions are refused."""
    def call(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Calls ``fn(*args, **kwargs)`` through the breaker and returns its result; raises
        ``CircuitOpenError`` without calling ``fn`` when rejected."""
    async def call_async(
        self, fn: Callable[_P, Awaitable[_R]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        """Awaits ``fn(*args, **kwargs)`` through the breaker and returns its result; raises
        ``CircuitOpenError`` without calling ``fn`` when rejected."""
    def __enter__(self) -> Self:
        """Acquires a permit for the block (raises ``CircuitOpenError`` when rejected)."""
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Records the block's outcome; never suppresses its exception."""
    async def __aenter__(self) -> Self:
        """Acquires a permit for the block (raises ``CircuitOpenError`` when rejected). Each
        task records its own permit, so one breaker may guard many concurrent blocks."""
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Records the block's outcome; never suppresses its exception."""
    def try_acquire(self) -> Permit:
        """Admits one call and returns its ``Permit``, or raises ``CircuitOpenError``."""
    def on_state_change(
        self, callback: Callable[[StateChange], object]
    ) -> Callable[[StateChange], object]:
        """Calls ``callback(StateChange)`` after every state change, once the breaker's own
        work is done; returns ``callback`` so it can be used as a decorator. An exception in
        the callback is logged (logger ``seawall``) and does not affect the breaker."""
    def on_reject(self, callback: Callable[[Rejection], object]) -> Callable[[Rejection], object]:
        """Calls ``callback(Rejection)`` for every rejected call, before ``CircuitOpenError``
        is raised; returns ``callback`` so it can be used as a decorator. An exception in the
        callback is logged and does not affect the breaker."""
    @property
    def name(self) -> str | None:
        """The name given at construction."""
    @property
    def state(self) -> State:
        """The current state (an open breaker whose open duration has passed reads
        ``"half_open"``)."""
    def metrics(self) -> Metrics:
        """The current numbers."""
    def force_open(self) -> None:
        """Rejects every call (no ``retry_after``) until another manual change."""
    def disable(self) -> None:
        """Permits every call and records nothing, until another manual change."""
    def metrics_only(self) -> None:
        """Records outcomes but never rejects, until another manual change."""
    def reset(self) -> None:
        """Back to closed, with an empty window and the base open duration; counters are kept."""
    def snapshot(self) -> dict[str, Any]:
        """The state as a versioned, JSON-compatible dict: restorable here, in another process,
        or in the Rust or Node.js binding, with the same decisions."""
    def to_json(self) -> str:
        """The snapshot as a JSON string."""
    def restore(self, snapshot: dict[str, Any] | str) -> None:
        """Resumes from a snapshot (a dict from ``snapshot()`` or a str from ``to_json()``).
        Raises ``SnapshotError`` and changes nothing if it is not valid."""

class ManualClock:
    """A monotonic clock in seconds that moves only when ``advance`` or ``set`` is called.

    Pass it as ``clock=`` to a ``CircuitBreaker``, ``Budget`` or ``RetryBudget`` to move them
    through time in tests without sleeping.
    """

    def __init__(self, start: float = 0.0) -> None:
        """A clock reading ``start`` seconds."""
    def __call__(self) -> float:
        """The current reading, in seconds."""
    def advance(self, seconds: float) -> None:
        """Moves the clock forward by ``seconds`` (non-negative)."""
    def set(self, seconds: float) -> None:
        """Sets the clock to ``seconds`` (non-negative)."""

class TimeoutPolicy:
    """The rules every budget and every timeout derived from one obeys (seconds).

    - ``max_timeout``: no timeout may exceed it, whatever a caller asks for; between 1 ms and
      24 h. Default 15.
    - ``scale``: every configured timeout is multiplied by it, in (0, 1]; 0.5 halves every
      timeout during an incident. Default 1.
    - ``min_to_start``: a call is not started with less than this left (``BudgetExhausted``
      instead); between 0 and ``max_timeout``. Default 0.01.

    Out-of-range values raise ``InvalidConfigError`` (a ``ValueError``) naming the keyword;
    values of the wrong type raise ``TypeError``. Immutable; compares by value.
    """

    def __init__(
        self, max_timeout: float = 15.0, scale: float = 1.0, min_to_start: float = 0.01
    ) -> None: ...
    @property
    def max_timeout(self) -> float:
        """The longest timeout allowed, in seconds."""
    @property
    def scale(self) -> float:
        """The factor applied to every configured timeout."""
    @property
    def min_to_start(self) -> float:
        """The least time left, in seconds, for which a call is still started."""
    @staticmethod
    def get_global() -> TimeoutPolicy:
        """The process-wide policy: the one every budget created without a ``policy`` gets."""
    @staticmethod
    def set_global(policy: TimeoutPolicy) -> None:
        """Replaces the process-wide policy. Budgets created before keep theirs."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Budget:
    """A request's deadline: created from a total timeout, carried through the request and
    shared by everything it calls. Times are seconds.

    ``Budget(2.0)`` ends 2 s from now (scaled and capped by the policy, the process-wide one
    unless ``policy`` is given). ``timeout`` may be anything from 0 to 24 h; values above the
    policy maximum are clamped to it; negative, NaN, infinite or larger values raise
    ``InvalidConfigError`` (a ``ValueError``), a value that is not a number ``TypeError``.
    ``clock`` is a zero-argument callable returning monotonic seconds (default
    ``time.monotonic``).

    Use it as ``async with budget:`` (cancels the block at the deadline and raises
    ``DeadlineExceeded``, like ``asyncio.timeout``), ``await budget.run(work)``, or
    synchronously with ``check()`` / ``timeout_for()`` before each call. Immutable: share it
    between tasks and threads.
    """

    def __new__(
        cls,
        timeout: float,
        *,
        policy: TimeoutPolicy | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Self: ...
    @classmethod
    def from_header(
        cls,
        value: str,
        *,
        format: HeaderFormat = "grpc-timeout",
        policy: TimeoutPolicy | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Budget:
        """A budget from a header value received from a caller (``"100m"``, or ``"1500"`` with
        ``format="timeout-ms"``), capped at the policy maximum but not scaled. A malformed value
        raises ``InvalidHeaderError`` (a ``ValueError``); a non-``str`` raises ``TypeError``."""
    @property
    def remaining(self) -> float:
        """Seconds left (0 once the deadline has passed)."""
    @property
    def is_expired(self) -> bool:
        """Whether the deadline has passed."""
    @property
    def deadline(self) -> float:
        """The deadline, in seconds on the budget's clock."""
    @property
    def policy(self) -> TimeoutPolicy:
        """The policy the budget was created under."""
    def child(self, cap: float) -> Budget:
        """A budget ending at the earlier of this deadline and ``cap`` seconds from now (``cap``
        scaled and capped by the policy)."""
    def timeout_for(self, cap: float | None = None) -> float:
        """The timeout for one call: the least of the time left, ``cap`` (scaled) and the policy
        maximum. Raises ``BudgetExhausted`` when the call should not be started."""
    def check(self) -> float:
        """Raises ``BudgetExhausted`` when a call should not be started; otherwise returns the
        seconds left."""
    def to_header(self, format: HeaderFormat = "grpc-timeout") -> str:
        """The time left as a header value for a downstream call, rounded down."""
    async def __aenter__(self) -> Self:
        """Starts the block, cancelled at the deadline; raises ``BudgetExhausted`` without
        running it when the budget cannot fit a call."""
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stops the timer; turns the deadline's cancellation into ``DeadlineExceeded``."""
    @overload
    async def run(self, work: Awaitable[_R], /) -> _R: ...
    @overload
    async def run(
        self, work: Callable[_P, Awaitable[_R]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R: ...

class RetryDecision(NamedTuple):
    """What to do after a failed attempt (``RetryLoop.on_failure``)."""

    retry: bool
    """Whether to make another attempt."""
    delay: float | None
    """Seconds to wait before it (``None`` when giving up)."""
    reason: GiveUpReason | None
    """Why to give up (``None`` when retrying)."""

class RetryBudgetMetrics(NamedTuple):
    """A retry budget's numbers over its window."""

    requests: int
    """Requests (first attempts) in the window."""
    retries: int
    """Retries in the window."""
    allowed: int
    """Retries the window allows in all."""

class RetryBudget:
    """A retry budget shared by every caller of a dependency: retries may add at most
    ``percent`` % of the requests plus ``min_per_second`` a second, over the last ``ttl``
    seconds (defaults 20 %, 10/s, 10 s). Stops retry storms. ``percent`` in [0, 1000],
    ``min_per_second`` in [0, 100000], ``ttl`` between 1 s and 1 h. ``clock`` defaults to the
    core's monotonic clock. Thread-safe. Retries not given a budget draw from
    ``RetryBudget.get_global()``."""

    def __init__(
        self,
        *,
        percent: float = 20.0,
        min_per_second: float = 10.0,
        ttl: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None: ...
    @staticmethod
    def get_global() -> RetryBudget:
        """The process-wide retry budget (the core's), used whenever none is given."""
    @property
    def percent(self) -> float:
        """Retries allowed as a percentage of requests."""
    @property
    def min_per_second(self) -> float:
        """Retries always allowed per second."""
    @property
    def ttl(self) -> float:
        """How long a request or retry counts, in seconds."""
    def metrics(self) -> RetryBudgetMetrics:
        """The numbers now."""

class RetryPolicy:
    """How many attempts a call makes, how long it waits between them, and which failures are
    worth another attempt. Durations in seconds.

    - ``max_attempts``: attempts in all, the first included, in [1, 100]. Default 3.
    - ``backoff``: ``"decorrelated_jitter"`` (default; uniform between ``base`` and three times
      the previous wait, at most ``cap``), ``"exponential"`` (``base × multiplier**(n - 1)``, at
      most ``cap``) or ``"constant"`` (``delay``, required then). ``base`` 0.1, ``cap`` 5,
      ``multiplier`` 2 by default.
    - ``seed``: fixes the jitter (tests).
    - ``retry_on`` (default ``(Exception,)``) and ``is_retryable``: which failures are retried.
      ``BudgetExhausted``, ``RetryBudgetExhausted`` and non-``Exception`` ``BaseException``s never
      are.

    Waits never end past the budget's deadline; a server hint (a breaker's ``retry_after``, a
    ``retry_after`` attribute on the exception) replaces the computed wait when it fits.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        backoff: BackoffKind = "decorrelated_jitter",
        base: float = 0.1,
        cap: float = 5.0,
        delay: float | None = None,
        multiplier: float = 2.0,
        seed: int | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        is_retryable: Callable[[BaseException], object] | None = None,
    ) -> None: ...
    @property
    def max_attempts(self) -> int:
        """Attempts in all, the first included."""
    @property
    def backoff(self) -> BackoffKind:
        """The backoff's kind."""
    @property
    def base(self) -> float | None:
        """The first or shortest wait; ``None`` for ``constant``."""
    @property
    def cap(self) -> float | None:
        """The longest wait; ``None`` for ``constant``."""
    @property
    def delay(self) -> float | None:
        """The wait of a ``constant`` backoff; ``None`` otherwise."""
    @property
    def multiplier(self) -> float | None:
        """The growth per attempt of an ``exponential`` backoff; ``None`` otherwise."""
    @property
    def seed(self) -> int | None:
        """The jitter seed, if fixed."""
    @property
    def retry_on(self) -> tuple[type[BaseException], ...]:
        """The exception types worth a retry."""
    @property
    def is_retryable(self) -> Callable[[BaseException], object] | None:
        """The predicate given, if any."""
    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this policy."""
    def begin(
        self, budget: Budget | None = None, *, retry_budget: RetryBudget | None | bool = None
    ) -> RetryLoop:
        """A retry loop for one call: ``budget`` bounds it (default: the policy maximum);
        ``retry_budget`` is ``None`` for the process-wide one, ``False`` for none."""
    def call(
        self, fn: Callable[..., _R], /, *args: Any, budget: Budget | None = None, **kwargs: Any
    ) -> _R:
        """Calls ``fn(*args, **kwargs)`` with retries under ``budget`` (default: the policy
        maximum), drawing retries from the process-wide retry budget."""
    async def call_async(
        self,
        fn: Callable[..., Awaitable[_R]],
        /,
        *args: Any,
        budget: Budget | None = None,
        **kwargs: Any,
    ) -> _R:
        """Awaits ``fn(*args, **kwargs)`` with retries; the async form of ``call``."""

class RetryLoop:
    """One call's retry loop (from ``RetryPolicy.begin``): call ``start_attempt()`` before each
    attempt and ``on_failure()`` after each retryable failure."""

    def __init__(
        self, policy: RetryPolicy, budget: Budget, retry_budget: RetryBudget | None
    ) -> None: ...
    @property
    def policy(self) -> RetryPolicy:
        """The retry policy."""
    @property
    def budget(self) -> Budget:
        """The budget bounding the whole call."""
    @property
    def retry_budget(self) -> RetryBudget | None:
        """The shared retry budget, if any."""
    @property
    def attempts(self) -> int:
        """Attempts started so far."""
    def start_attempt(self, cap: float | None = None) -> float:
        """Starts an attempt and returns its timeout in seconds; raises ``BudgetExhausted`` when
        it should not be started."""
    def on_failure(self, retry_after: float | None = None) -> RetryDecision:
        """After a retryable failure: wait ``delay`` and retry, or give up."""

class CallPolicy:
    """Runs calls under a budget, with retries, a circuit breaker and a per-attempt timeout, in
    the right order: budget → retry → breaker → per-attempt timeout.

    - ``breaker``: every attempt goes through it; a rejection is a failed attempt whose
      ``retry_after`` is the hint; outcomes use the breaker's classification, except that an
      attempt cancelled at its timeout is always a failure.
    - ``retry``: a ``RetryPolicy`` (default: ``RetryPolicy()``; ``RetryPolicy(max_attempts=1)``
      for none). Its ``retry_on`` / ``is_retryable`` classify the function's own errors; the
      breaker's rejections and the attempts' timeouts always go to the retry loop.
    - ``retry_budget``: ``None`` for the process-wide one (default), ``False`` for none.
    - ``attempt_timeout``: the cap of each attempt in seconds.
    - ``timeout``: the budget of a call given none (default: the policy maximum).

    ``call`` / ``call_async`` take the call's ``Budget`` as ``budget=`` (not passed on to
    ``fn``). Async attempts are cancelled at their timeout (``DeadlineExceeded``).
    """

    def __init__(
        self,
        *,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy | None = None,
        retry_budget: RetryBudget | None | bool = None,
        attempt_timeout: float | None = None,
        timeout: float | None = None,
    ) -> None: ...
    @property
    def breaker(self) -> CircuitBreaker | None:
        """The breaker, if any."""
    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
    @property
    def retry_budget(self) -> RetryBudget | None:
        """The shared retry budget, if any."""
    @property
    def attempt_timeout(self) -> float | None:
        """The cap of each attempt, if any."""
    @property
    def timeout(self) -> float | None:
        """The budget of a call given none, if set."""
    def call(
        self, fn: Callable[..., _R], /, *args: Any, budget: Budget | None = None, **kwargs: Any
    ) -> _R:
        """Calls the sync function ``fn(*args, **kwargs)`` under the policy, with ``budget``
        (default: ``timeout``, or the policy maximum)."""
    async def call_async(
        self,
        fn: Callable[..., Awaitable[_R]],
        /,
        *args: Any,
        budget: Budget | None = None,
        **kwargs: Any,
    ) -> _R:
        """Awaits ``fn(*args, **kwargs)`` under the policy, each attempt cancelled at its
        timeout."""
    def __call__(self, fn: _F) -> _F:
        """Decorates a sync or async function so that every call runs under the policy."""

@overload
def retry(fn: _F, /) -> _F:
    """``@retry`` on a sync or async function: the default policy."""

@overload
def retry(
    fn: None = None,
    /,
    *,
    policy: RetryPolicy | None = None,
    retry_budget: RetryBudget | None | bool = None,
    attempt_timeout: float | None = None,
    timeout: float | None = None,
    max_attempts: int = 3,
    backoff: BackoffKind = "decorrelated_jitter",
    base: float = 0.1,
    cap: float = 5.0,
    delay: float | None = None,
    multiplier: float = 2.0,
    seed: int | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = ...,
    is_retryable: Callable[[BaseException], object] | None = None,
) -> CallPolicy:
    """``@retry(max_attempts=5, ...)`` or ``@retry(policy=RetryPolicy(...))``: a
    ``CallPolicy`` without a breaker, used as a decorator."""

def retry_call(
    fn: Callable[..., _R], /, *args: Any, budget: Budget | None = None, **kwargs: Any
) -> _R:
    """Calls ``fn(*args, **kwargs)`` with the default retry policy (3 attempts, decorrelated
    jitter) under ``budget`` (default: the policy maximum), drawing retries from the
    process-wide retry budget. Every other keyword goes to ``fn``; for other options use
    ``RetryPolicy(...).call`` or a ``CallPolicy``."""

async def retry_call_async(
    fn: Callable[..., Awaitable[_R]], /, *args: Any, budget: Budget | None = None, **kwargs: Any
) -> _R:
    """Awaits ``fn(*args, **kwargs)`` with the default retry policy (see ``retry_call``)."""

# -- connection pools ---------------------------------------------------------------------------

class Lease(NamedTuple):
    """One checkout of a connection (``PoolEngine``)."""

    slot: int
    """The connection's slot (an id never reused)."""
    checkout: int
    """The checkout number (unique within the pool)."""

class Waiter(NamedTuple):
    """A caller waiting for a connection (``PoolEngine``)."""

    id: int
    """The waiter's id."""

class CreateAction(NamedTuple):
    """Open a connection for ``slot``; the engine gives up on it at ``deadline``."""

    slot: int
    deadline: float

class ValidateAction(NamedTuple):
    """Check the connection of ``slot``, then call ``handle_validated``."""

    slot: int

class DestroyAction(NamedTuple):
    """Close the connection of ``slot`` (or abandon its create) and forget it."""

    slot: int
    reason: DestroyReason

class HandAction(NamedTuple):
    """Give the connection of ``lease.slot`` to ``waiter``."""

    waiter: int
    lease: Lease

class FailAction(NamedTuple):
    """Fail ``waiter`` with ``error``."""

    waiter: int
    error: SeawallError

PoolAction: TypeAlias = CreateAction | ValidateAction | DestroyAction | HandAction | FailAction
"""What the pool engine asks an adapter to do."""

class LeakSuspected(NamedTuple):
    """A checkout has been held longer than ``leak_threshold`` (reported once per checkout)."""

    slot: int
    held_for: float
    """Seconds it had been out."""
    stack: str | None = None
    """Where it was acquired (the adapters; ``None`` from ``PoolEngine``)."""

class LeakReturned(NamedTuple):
    """A checkout reported as a suspected leak came back."""

    slot: int
    held_for: float
    """Seconds it was out."""
    stack: str | None = None
    """Where it was acquired (the adapters; ``None`` from ``PoolEngine``)."""

class ConnectAttemptFailed(NamedTuple):
    """A connection attempt failed."""

    error: str
    """Its error, as text."""
    attempts: int
    """Failed attempts in a row."""
    cause: BaseException | None = None
    """The exception it raised (the adapters; ``None`` for an attempt abandoned at
    ``create_timeout``, and from ``PoolEngine``)."""

class Drained(NamedTuple):
    """A drain finished."""

    still_held: tuple[Any, ...]
    """What was checked out at its deadline and was closed: slot ids from ``PoolEngine``, the
    connection objects from the adapters."""

PoolEvent: TypeAlias = LeakSuspected | LeakReturned | StateChange | ConnectAttemptFailed | Drained
"""What a pool tells operators."""

@dataclass(frozen=True)
class Histogram:
    """A distribution of durations in seconds; quantiles are upper bounds within a factor of
    two, never above ``max``."""

    count: int
    sum: float
    max: float
    p50: float
    p90: float
    p99: float

@dataclass(frozen=True)
class PoolMetrics:
    """A pool's numbers, named after OpenTelemetry's ``db.client.connection.*`` metrics.
    Counters count since the pool was built; ``idle + used + creating <= max``."""

    idle: int
    """``db.client.connection.count{state=idle}``."""
    used: int
    """``db.client.connection.count{state=used}``: checked out, or being validated for a
    caller."""
    creating: int
    """Connections being opened."""
    max: int
    """``db.client.connection.max``."""
    idle_max: int
    """``db.client.connection.idle.max``."""
    idle_min: int
    """``db.client.connection.idle.min``."""
    pending_requests: int
    """``db.client.connection.pending_requests``."""
    timeouts: int
    """``db.client.connection.timeouts``: waits that ended at their deadline."""
    acquired: int
    """Checkouts handed out."""
    released: int
    """Checkouts returned."""
    overloaded: int
    """Acquires refused because the wait queue was full."""
    unavailable: int
    """Acquires failed because the breaker was open."""
    created: int
    """Connections opened."""
    create_failures: int
    """Connection attempts that failed or timed out."""
    destroyed: int
    """Connections closed."""
    leaks: int
    """Suspected leaks reported."""
    create_time: Histogram
    """``db.client.connection.create_time``."""
    wait_time: Histogram
    """``db.client.connection.wait_time``."""
    use_time: Histogram
    """``db.client.connection.use_time``."""
    breaker_state: State
    """The state of the breaker guarding connection attempts."""
    oldest_checkout_age: float | None
    """Seconds the longest-held checkout has been out."""

    def as_dict(self) -> dict[str, Any]:
        """The metrics as a plain dict (for logging or JSON)."""

class PoolEngine:
    """The connection pool's engine, sans-IO, for writing a pool adapter of your own and for
    replaying the conformance vectors. Every method takes ``now`` (seconds on your monotonic
    clock) and returns at once; after each call perform ``poll_action()`` until it returns
    ``None`` and call ``handle_timeout`` at ``poll_timeout()``. Keywords as for ``Pool``."""

    def __init__(
        self,
        *,
        max_size: int = 10,
        min_idle: int = 0,
        max_waiters: int = 1000,
        acquire_timeout: float = 5.0,
        create_timeout: float = 5.0,
        idle_timeout: float | None = 600.0,
        max_lifetime: float | None = 1800.0,
        lifetime_jitter: float = 0.1,
        validate_after: float | None = 0.5,
        idle_order: IdleOrder = "lifo",
        leak_threshold: float | None = None,
        create_backoff_base: float = 0.05,
        create_backoff_cap: float = 5.0,
        breaker: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None: ...
    def acquire(self, now: float, budget: Budget | None = None) -> Lease | Waiter:
        """A ``Lease`` when a connection is ready, else a ``Waiter`` served later by a
        ``HandAction`` or ``FailAction``. Raises ``PoolOverloaded``, ``DatabaseUnavailable``,
        ``BudgetExhausted`` or ``PoolClosed``."""
    def release(self, lease: Lease, broken: bool, now: float) -> bool:
        """Returns a checkout; ``False`` (nothing changes) for one already returned or
        closed."""
    def cancel(self, waiter: Waiter | int, now: float) -> bool:
        """The waiter gave up; ``False`` when it was already served or failed."""
    def handle_created(self, slot: int, now: float) -> None:
        """The create for ``slot`` succeeded."""
    def handle_create_failed(self, slot: int, error: str, now: float) -> None:
        """The create for ``slot`` failed with ``error``."""
    def handle_validated(self, slot: int, ok: bool, now: float) -> None:
        """The validation of ``slot`` finished."""
    def handle_broken(self, slot: int, now: float) -> bool:
        """The connection of ``slot`` is dead: closed at once if idle, failed if being
        validated, closed when it comes back if checked out."""
    def handle_timeout(self, now: float) -> None:
        """Applies every timer decision due at ``now`` (also once at start)."""
    def drain(self, now: float, deadline: float) -> None:
        """Stops handing out connections; closes what is still out at ``deadline``."""
    def resize(self, max_size: int, now: float) -> None:
        """Changes ``max_size``."""
    def poll_action(self) -> PoolAction | None:
        """What to do next (``None``: nothing)."""
    def poll_event(self) -> PoolEvent | None:
        """The next event (``None``: nothing)."""
    def poll_timeout(self) -> float | None:
        """When to call ``handle_timeout`` next."""
    def metrics(self, now: float) -> PoolMetrics:
        """The numbers at ``now``."""
    @property
    def is_closed(self) -> bool:
        """Whether the drain has finished."""

class Pool(Generic[_C]):
    """An asyncio connection pool whose decisions are made by Seawall's engine: hard limits, a
    bounded FIFO wait queue, fail-fast when the database is down (``DatabaseUnavailable`` at
    once, with ``retry_after``), no reconnect storm.

    ``create`` is an async function returning a new connection (the pool abandons it at
    ``create_timeout``, cancelling it); ``destroy(conn)`` closes one (default ``conn.close()``,
    awaited if it returns an awaitable); ``validate(conn)`` (sync or async) checks a connection
    idle longer than ``validate_after`` (an exception counts as no); ``is_broken(conn)`` is asked
    on every return whether to close the connection instead of reusing it.

    Configuration (durations in seconds; out-of-range values raise ``InvalidConfigError``, values
    of the wrong type ``TypeError``): ``max_size`` (10, in [1, 10000], creates included),
    ``min_idle`` (0), ``max_waiters`` (1000; beyond it ``PoolOverloaded``), ``acquire_timeout``
    (5, at most the timeout policy's maximum), ``create_timeout`` (5), ``idle_timeout`` (600;
    ``None`` off), ``max_lifetime`` (1800; ``None`` off) shortened at random by up to
    ``lifetime_jitter`` (0.1), ``validate_after`` (0.5; only with ``validate``; ``None``
    never), ``idle_order`` (``"lifo"``), ``leak_threshold`` (``None``; when set, the stack of
    every acquire is kept for the leak report), ``create_backoff_base`` / ``create_backoff_cap``
    (0.05 / 5: jittered back-off between failed attempts), ``breaker`` (a dict of
    ``CircuitBreaker`` keywords replacing the default whole; default: 5 failed attempts in a
    row open it for 5 s, then one probe), ``seed`` (tests).

    Binds to the running event loop (at construction, or first use); use it from that loop.
    """

    def __init__(
        self,
        create: Callable[[], Awaitable[_C]],
        *,
        destroy: Callable[[_C], Awaitable[object] | object] | None = None,
        validate: Callable[[_C], Awaitable[object] | object] | None = None,
        is_broken: Callable[[_C], object] | None = None,
        max_size: int = 10,
        min_idle: int = 0,
        max_waiters: int = 1000,
        acquire_timeout: float = 5.0,
        create_timeout: float = 5.0,
        idle_timeout: float | None = 600.0,
        max_lifetime: float | None = 1800.0,
        lifetime_jitter: float = 0.1,
        validate_after: float | None = 0.5,
        idle_order: IdleOrder = "lifo",
        leak_threshold: float | None = None,
        create_backoff_base: float = 0.05,
        create_backoff_cap: float = 5.0,
        breaker: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None: ...
    async def acquire(self, *, budget: Budget | None = None) -> _C:
        """A connection, waiting at most ``acquire_timeout`` (and no longer than ``budget``
        allows). Raises ``PoolTimeout``, ``PoolOverloaded``, ``ConnectFailed``,
        ``DatabaseUnavailable``, ``BudgetExhausted`` or ``PoolClosed``. A task cancelled while it
        waits leaves the queue; a connection handed to it meanwhile goes back."""
    def release(self, conn: _C, broken: bool = False) -> None:
        """Returns a connection from ``acquire`` (closed instead when ``broken`` or
        ``is_broken(conn)``). Raises ``ConnectionNotCheckedOut`` for one not checked out, and
        for a second release: when this task received an earlier checkout of the connection
        and a task still running holds the current one, that checkout is left with its holder.
        ``connection()`` blocks name their exact checkout."""
    def connection(self, *, budget: Budget | None = None) -> AbstractAsyncContextManager[_C]:
        """``async with pool.connection() as conn:``: a connection for the block."""
    async def drain(self, timeout: float = 10.0) -> list[_C]:
        """Closes the pool: waiting callers fail with ``PoolClosed``, idle connections close,
        checked-out ones as they come back, and after ``timeout`` whatever is still out is
        closed; returns those (the connections still held then)."""
    def resize(self, max_size: int) -> None:
        """Changes ``max_size`` at run time (from the pool's event loop): growing serves
        waiting callers at once, shrinking closes idle connections now and checked-out ones as
        they come back."""
    def metrics(self) -> PoolMetrics:
        """The pool's numbers now."""
    @property
    def closed(self) -> bool:
        """Whether a drain has finished."""
    def on_event(self, callback: Callable[[PoolEvent], object]) -> Callable[[PoolEvent], object]:
        """Calls ``callback`` for every event; usable as a decorator. Listener errors are
        logged, never raised."""
    def on_leak(
        self, callback: Callable[[LeakSuspected | LeakReturned], object]
    ) -> Callable[[LeakSuspected | LeakReturned], object]:
        """Calls ``callback`` for leak reports (with the stack where the connection was
        acquired)."""
    def on_breaker(
        self, callback: Callable[[StateChange], object]
    ) -> Callable[[StateChange], object]:
        """Calls ``callback`` when the breaker guarding connection attempts changes state."""
    def on_connect_failed(
        self, callback: Callable[[ConnectAttemptFailed], object]
    ) -> Callable[[ConnectAttemptFailed], object]:
        """Calls ``callback`` for every failed connection attempt."""
    def on_drained(self, callback: Callable[[Drained], object]) -> Callable[[Drained], object]:
        """Calls ``callback`` when a drain finishes."""
    async def __aenter__(self) -> Pool[_C]: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drains the pool."""

class SyncPool(Generic[_C]):
    """A thread-safe connection pool for threaded code: the same engine, configuration, errors,
    events and metrics as ``Pool``. Blocking waits release the GIL; ``create``, ``validate`` and
    ``destroy`` run on daemon threads and one daemon timer thread serves the engine's deadlines
    (none of them keeps the interpreter alive). A thread cannot be interrupted, so give
    ``create`` a connect timeout of its own: the pool stops waiting at ``create_timeout`` and
    closes what arrives late."""

    def __init__(
        self,
        create: Callable[[], _C],
        *,
        destroy: Callable[[_C], object] | None = None,
        validate: Callable[[_C], object] | None = None,
        is_broken: Callable[[_C], object] | None = None,
        max_size: int = 10,
        min_idle: int = 0,
        max_waiters: int = 1000,
        acquire_timeout: float = 5.0,
        create_timeout: float = 5.0,
        idle_timeout: float | None = 600.0,
        max_lifetime: float | None = 1800.0,
        lifetime_jitter: float = 0.1,
        validate_after: float | None = 0.5,
        idle_order: IdleOrder = "lifo",
        leak_threshold: float | None = None,
        create_backoff_base: float = 0.05,
        create_backoff_cap: float = 5.0,
        breaker: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None: ...
    def acquire(self, *, budget: Budget | None = None) -> _C:
        """A connection, blocking at most ``acquire_timeout`` (and no longer than ``budget``
        allows) without holding the GIL."""
    def release(self, conn: _C, broken: bool = False) -> None:
        """Returns a connection from ``acquire``. Raises ``ConnectionNotCheckedOut`` for one not
        checked out, and for a second release (as ``Pool.release``, by thread)."""
    def connection(self, *, budget: Budget | None = None) -> AbstractContextManager[_C]:
        """``with pool.connection() as conn:``: a connection for the block."""
    def drain(self, timeout: float = 10.0) -> list[_C]:
        """Closes the pool (see ``Pool.drain``), blocking until it is done."""
    def resize(self, max_size: int) -> None:
        """Changes ``max_size`` at run time."""
    def metrics(self) -> PoolMetrics:
        """The pool's numbers now."""
    @property
    def closed(self) -> bool:
        """Whether a drain has finished."""
    def on_event(self, callback: Callable[[PoolEvent], object]) -> Callable[[PoolEvent], object]:
        """Calls ``callback`` for every event (on the thread that caused it)."""
    def on_leak(
        self, callback: Callable[[LeakSuspected | LeakReturned], object]
    ) -> Callable[[LeakSuspected | LeakReturned], object]:
        """Calls ``callback`` for leak reports."""
    def on_breaker(
        self, callback: Callable[[StateChange], object]
    ) -> Callable[[StateChange], object]:
        """Calls ``callback`` when the breaker guarding connection attempts changes state."""
    def on_connect_failed(
        self, callback: Callable[[ConnectAttemptFailed], object]
    ) -> Callable[[ConnectAttemptFailed], object]:
        """Calls ``callback`` for every failed connection attempt."""
    def on_drained(self, callback: Callable[[Drained], object]) -> Callable[[Drained], object]:
        """Calls ``callback`` when a drain finishes."""
    def __enter__(self) -> SyncPool[_C]: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drains the pool."""
