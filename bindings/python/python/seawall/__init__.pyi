"""Seawall: circuit breakers from one Rust core shared with Rust and Node.js, so every service
in a fleet makes the same decisions about when to stop calling a sick dependency.

Durations are seconds as floats. Every rule (when to open, half-open, close) is decided by the
native core; this package adds decorators, context managers, permits and listeners.
"""

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Awaitable, Callable, Literal, NamedTuple, TypeVar

from typing_extensions import ParamSpec, Self, TypeAlias

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "InvalidConfigError",
    "ManualClock",
    "Metrics",
    "Permit",
    "Rejection",
    "RejectionReason",
    "SeawallError",
    "SnapshotError",
    "State",
    "StateChange",
    "TransitionReason",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_F = TypeVar("_F", bound=Callable[..., Any])

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

_ExceptionTypes: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | list[type[BaseException]]
)

class SeawallError(Exception):
    """Base class of every exception Seawall raises on its own account."""

class CircuitOpenError(SeawallError):
    """The circuit breaker rejected the call; the guarded function was not called.

    A fresh instance is raised for every rejection.
    """

    reason: RejectionReason
    """``"open"``, ``"half_open_full"`` (all half-open probe slots taken) or ``"forced_open"``."""
    retry_after: float | None
    """Seconds until the breaker admits calls again, when it knows (it does while open)."""
    breaker_name: str | None
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
    """The rejected keyword argument of ``CircuitBreaker`` (``"window_size"``)."""
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

    Pass it as ``CircuitBreaker(clock=ManualClock())`` to move a breaker through its states in
    tests without sleeping.
    """

    def __init__(self, start: float = 0.0) -> None:
        """A clock reading ``start`` seconds."""
    def __call__(self) -> float:
        """The current reading, in seconds."""
    def advance(self, seconds: float) -> None:
        """Moves the clock forward by ``seconds`` (non-negative)."""
    def set(self, seconds: float) -> None:
        """Sets the clock to ``seconds`` (non-negative)."""
