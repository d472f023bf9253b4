"""The Python face of the circuit breaker: decorators, context managers, permits, listeners.

Every decision (admit or reject, when to open, half-open or close) is one synchronous call into
``seawall._native``, which wraps the Rust core. This module only does what needs Python: reads
the clock, runs and awaits the user's function, turns its outcome into success / failure /
ignored, and calls listeners after the native call has returned. The sync hot paths
(``CircuitBreaker.call`` and sync decorated functions) are one native call each, on the native
base class ``BreakerBase``, which calls back into the methods here for classifiers and
listeners; the async paths admit and record with one native call each (``_admit``,
``_settle``).

Invariants kept here:
- every admitted call records exactly one outcome, whatever happens (an exception, a
  classifier that raises, a cancelled task, a permit garbage-collected unrecorded), so a
  half-open probe slot is never lost;
- the permit of a ``with`` / ``async with`` block lives in a context variable, never on the
  shared breaker, so concurrent tasks and threads each record their own call;
- no listener or classifier exception can leave the breaker half-updated.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import time
from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Literal, NamedTuple, Optional, Tuple, Union

from ._errors import CircuitOpenError, SnapshotError
from ._native import Breaker as _NativeBreaker
from ._native import BreakerBase as _BreakerBase
from ._native import Guarded as _NativeGuarded

__all__ = [
    "CircuitBreaker",
    "Metrics",
    "Permit",
    "Rejection",
    "RejectionReason",
    "State",
    "StateChange",
    "TransitionReason",
]

_log = logging.getLogger("seawall")

# Outcome codes understood by ``_native.Breaker.record``.
_SUCCESS = 0
_FAILURE = 1
_IGNORED = 2

# The permits of the ``with`` blocks open in the current context, innermost last, as
# (breaker, token, started). One variable for all breakers: a context keeps every variable it
# has seen alive, so one per breaker would never be freed. Tuples, because contexts are copied
# into new tasks and must not share a mutable stack.
_ACTIVE: ContextVar[Tuple[Tuple[CircuitBreaker, int, float], ...]] = ContextVar(
    "seawall_active_permits", default=()
)

State = Literal["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"]
RejectionReason = Literal["open", "half_open_full", "forced_open"]
TransitionReason = Literal[
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

_Exclude = Union[
    type[BaseException],
    Tuple[type[BaseException], ...],
    List[type[BaseException]],
    Callable[[BaseException], object],
]


class StateChange(NamedTuple):
    """A state change, as passed to ``on_state_change`` listeners."""

    from_state: str
    to_state: str
    reason: str


class Rejection(NamedTuple):
    """A rejected call, as passed to ``on_reject`` listeners."""

    reason: str
    retry_after: Optional[float]


@dataclasses.dataclass(frozen=True)
class Metrics:
    """A point-in-time view of a breaker's numbers (see ``CircuitBreaker.metrics``)."""

    state: str
    failure_rate: float
    slow_call_rate: float
    calls_in_window: int
    failures_in_window: int
    slow_calls_in_window: int
    permitted: int
    successes: int
    failures: int
    ignored: int
    slow_calls: int
    rejected: int
    in_flight: int
    times_opened: int
    consecutive_failures: int

    def as_dict(self) -> Dict[str, Any]:
        """The metrics as a plain dict (for logging or JSON)."""
        return dataclasses.asdict(self)


def _exclusions(
    exclude: Any,
) -> Tuple[Tuple[type, ...], Optional[Callable[[BaseException], object]]]:
    """Splits ``exclude`` into exception types and a predicate."""
    if isinstance(exclude, type):
        if issubclass(exclude, BaseException):
            return (exclude,), None
    elif isinstance(exclude, (tuple, list, set, frozenset)):
        types = tuple(exclude)
        for t in types:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise TypeError(f"exclude must contain exception types, got {t!r}")
        return types, None
    elif callable(exclude):
        return (), exclude
    raise TypeError(
        "exclude must be an exception type, a tuple of exception types or a predicate, "
        f"got {type(exclude).__name__}"
    )


def _optional_callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


class Permit:
    """Permission to make one call, from ``CircuitBreaker.try_acquire()``.

    Record exactly one outcome with ``success()``, ``failure()`` or ``ignore()``; later calls do
    nothing. As a context manager it records the outcome of its block (classified like the
    breaker's other calls) unless one was recorded inside it. A permit garbage-collected
    without an outcome is released as ignored.
    """

    __slots__ = ("_breaker", "_cell", "_started")

    def __init__(self, breaker: CircuitBreaker, token: int, started: float) -> None:
        self._breaker = breaker
        # ``list.pop`` is atomic, so two threads racing to record cannot both succeed.
        self._cell = [token]
        self._started = started

    def _take(self) -> Optional[int]:
        try:
            return self._cell.pop()
        except IndexError:
            return None

    def success(self) -> None:
        """The call succeeded."""
        token = self._take()
        if token is not None:
            self._breaker._record(token, self._started, _SUCCESS)

    def failure(self) -> None:
        """The call failed."""
        token = self._take()
        if token is not None:
            self._breaker._record(token, self._started, _FAILURE)

    def ignore(self) -> None:
        """The call counts neither as a success nor as a failure; frees its slot."""
        token = self._take()
        if token is not None:
            self._breaker._record(token, self._started, _IGNORED)

    @property
    def recorded(self) -> bool:
        """Whether an outcome has been recorded."""
        return not self._cell

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        token = self._take()
        if token is None:
            return
        if exc is None:
            self._breaker._record(token, self._started, _SUCCESS)
        else:
            self._breaker._record_exception(token, self._started, exc)

    def __del__(self) -> None:
        # A finalizer must never raise and should not run user code: record at the start time
        # (an ignored call's duration counts for nothing) without calling the clock or
        # listeners; transitions it causes are reported by the breaker's next call. The outcome
        # is spelled as a literal because module globals may already be gone at shutdown.
        try:
            cell = self._cell
            if cell:
                self._breaker._native.record(cell.pop(), self._started, 2, self._started)
        except BaseException:  # noqa: BLE001 - nothing may escape a finalizer
            pass

    def __repr__(self) -> str:
        return f"<Permit recorded={self.recorded}>"


class _Guarded(_NativeGuarded):
    """A sync function decorated with ``@breaker``: each call is one native call (see
    ``CircuitBreaker.call``). A Python subclass only for its ``__dict__``, which
    ``functools.wraps`` fills in."""


class CircuitBreaker(_BreakerBase):
    """A circuit breaker: stops calling a failing or slow dependency, probes it now and then,
    and resumes when it has recovered.

    Use it as a decorator on sync or async functions, as ``with breaker:`` /
    ``async with breaker:``, through ``call`` / ``call_async``, or with explicit permits from
    ``try_acquire``. Durations are in seconds. A rejected call raises ``CircuitOpenError``.
    """

    __slots__ = (
        "_native",
        "_clock",
        "_name",
        "_exclude_types",
        "_exclude_predicate",
        "_is_failure",
        "_is_result_failure",
        "_state_listeners",
        "_reject_listeners",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        failure_rate_threshold: float = 50.0,
        slow_call_rate_threshold: float = 100.0,
        slow_call_duration: Optional[float] = None,
        window: str = "count",
        window_size: int = 100,
        window_duration: Optional[float] = None,
        window_buckets: int = 10,
        minimum_calls: int = 20,
        consecutive_failures: Optional[int] = None,
        open_duration: float = 30.0,
        backoff: str = "fixed",
        backoff_multiplier: float = 2.0,
        max_open_duration: Optional[float] = None,
        backoff_jitter: float = 0.0,
        half_open_calls: int = 3,
        max_half_open_duration: Optional[float] = 120.0,
        seed: Optional[int] = None,
        exclude: _Exclude = (),
        is_failure: Optional[Callable[[BaseException], object]] = None,
        is_result_failure: Optional[Callable[[Any], object]] = None,
        clock: Optional[Callable[[], float]] = None,
        name: Optional[str] = None,
    ) -> None:
        self._native = _NativeBreaker(
            failure_rate_threshold=failure_rate_threshold,
            slow_call_rate_threshold=slow_call_rate_threshold,
            slow_call_duration=slow_call_duration,
            window=window,
            window_size=window_size,
            window_duration=window_duration,
            window_buckets=window_buckets,
            minimum_calls=minimum_calls,
            consecutive_failures=consecutive_failures,
            open_duration=open_duration,
            backoff=backoff,
            backoff_multiplier=backoff_multiplier,
            max_open_duration=max_open_duration,
            backoff_jitter=backoff_jitter,
            half_open_calls=half_open_calls,
            max_half_open_duration=max_half_open_duration,
            seed=seed,
        )
        self._exclude_types, self._exclude_predicate = _exclusions(exclude)
        self._is_failure = _optional_callable("is_failure", is_failure)
        self._is_result_failure = _optional_callable("is_result_failure", is_result_failure)
        if clock is None:
            clock = time.monotonic
        elif not callable(clock):
            raise TypeError(
                f"clock must be a callable returning seconds, got {type(clock).__name__}"
            )
        else:
            # Read once now so that a clock of the wrong kind fails here, not mid-call.
            reading = clock()
            if isinstance(reading, bool) or not isinstance(reading, (int, float)):
                raise TypeError(
                    f"clock must return a number of seconds, got {type(reading).__name__}"
                )
        self._clock: Callable[[], float] = clock
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        self._name = name
        self._state_listeners: List[Callable[[StateChange], object]] = []
        self._reject_listeners: List[Callable[[Rejection], object]] = []
        # The native base runs ``call`` and sync decorated functions in one native call; it
        # calls back into the methods below only for what needs Python (classifying an
        # exception or a result, listeners).
        self._bind(self._native, clock, CircuitOpenError, name, is_result_failure is None)

    # -- the hot path ----------------------------------------------------------------------

    def _acquire(self) -> Tuple[int, float]:
        """Admits a call and returns ``(token, started)``, or raises ``CircuitOpenError``."""
        now = self._clock()
        r = self._native.acquire(now)
        if isinstance(r, int):
            if r & 1:
                try:
                    self._emit_transitions()
                except BaseException:
                    self._native.record(r >> 1, now, _IGNORED, now)
                    raise
            return r >> 1, now
        raise self._rejected(r)

    def _rejected(self, r: Tuple[str, Optional[float], bool]) -> CircuitOpenError:
        reason, retry_after, pending = r
        if pending:
            self._emit_transitions()
        if self._reject_listeners:
            rejection = Rejection(reason, retry_after)
            for listener in tuple(self._reject_listeners):
                try:
                    listener(rejection)
                except Exception:
                    _log.exception("seawall: on_reject listener %r raised", listener)
        # A fresh instance per rejection: re-raising a stored one grows its traceback forever.
        return CircuitOpenError(reason, retry_after, self._name)

    def _record(self, token: int, started: float, outcome: int) -> None:
        try:
            pending = self._native.record(token, started, outcome, self._clock())
        except BaseException:
            # A clock that raises or returns nonsense must not leak the permit (it may hold a
            # half-open probe slot): release it as ignored at its start time, where the
            # duration of an ignored call does not matter.
            self._native.record(token, started, _IGNORED, started)
            raise
        if pending:
            self._emit_transitions()

    def _outcome_of(self, exc: BaseException) -> int:
        # KeyboardInterrupt, SystemExit, GeneratorExit and asyncio.CancelledError say nothing
        # about the dependency's health.
        if not isinstance(exc, Exception):
            return _IGNORED
        if self._exclude_types and isinstance(exc, self._exclude_types):
            return _IGNORED
        if self._exclude_predicate is not None and self._exclude_predicate(exc):
            return _IGNORED
        if self._is_failure is not None and not self._is_failure(exc):
            return _SUCCESS
        return _FAILURE

    def _record_exception(self, token: int, started: float, exc: BaseException) -> None:
        try:
            outcome = self._outcome_of(exc)
        except BaseException:
            # The classifier itself failed: release the permit and let its error propagate.
            self._record(token, started, _IGNORED)
            raise
        self._record(token, started, outcome)

    def _record_result(self, token: int, started: float, result: Any) -> None:
        classify = self._is_result_failure
        if classify is None:
            self._record(token, started, _SUCCESS)
            return
        try:
            failed = classify(result)
        except BaseException:
            self._record(token, started, _IGNORED)
            raise
        self._record(token, started, _FAILURE if failed else _SUCCESS)

    def _emit_transitions(self) -> None:
        changes = self._native.take_transitions()
        if not self._state_listeners:
            return
        for from_state, to_state, reason in changes:
            change = StateChange(from_state, to_state, reason)
            for listener in tuple(self._state_listeners):
                try:
                    listener(change)
                except Exception:
                    _log.exception("seawall: on_state_change listener %r raised", listener)

    def _drain(self) -> None:
        if self._native.has_transitions():
            self._emit_transitions()

    # -- ways to guard a call --------------------------------------------------------------

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorates a sync or async function so that every call goes through the breaker."""
        if not callable(fn):
            raise TypeError(f"a CircuitBreaker decorates callables, got {type(fn).__name__}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                "a CircuitBreaker cannot decorate a generator function: its body runs after the "
                "call returns; guard the code that consumes it with `with breaker:` instead"
            )
        if inspect.iscoroutinefunction(fn):
            admit = self._admit
            settle = self._settle
            record_exception = self._record_exception

            @functools.wraps(fn)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                token, started = admit()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    record_exception(token, started, exc)
                    raise
                settle(token, started, result)
                return result

            return async_guarded

        return functools.wraps(fn)(_Guarded(self, fn))

    async def call_async(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Awaits ``fn(*args, **kwargs)`` through the breaker and returns its result."""
        # Admitting and recording a success are one native call each (``_admit``, ``_settle``).
        token, started = self._admit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._record_exception(token, started, exc)
            raise
        self._settle(token, started, result)
        return result

    def _enter(self) -> None:
        token, started = self._acquire()
        _ACTIVE.set(_ACTIVE.get() + ((self, token, started),))

    def _exit(self, exc: Optional[BaseException]) -> None:
        stack = _ACTIVE.get()
        i = len(stack) - 1
        while i >= 0 and stack[i][0] is not self:
            i -= 1
        if i < 0:
            raise RuntimeError("CircuitBreaker exited without a matching enter in this context")
        _, token, started = stack[i]
        _ACTIVE.set(stack[:i] + stack[i + 1 :])
        if exc is None:
            self._record(token, started, _SUCCESS)
        else:
            self._record_exception(token, started, exc)

    def __enter__(self) -> CircuitBreaker:
        self._enter()
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self._exit(exc)

    async def __aenter__(self) -> CircuitBreaker:
        self._enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self._exit(exc)

    def try_acquire(self) -> Permit:
        """Admits one call and returns its ``Permit``, or raises ``CircuitOpenError``."""
        token, started = self._acquire()
        return Permit(self, token, started)

    # -- listeners -------------------------------------------------------------------------

    def on_state_change(
        self, callback: Callable[[StateChange], object]
    ) -> Callable[[StateChange], object]:
        """Calls ``callback(StateChange)`` after every state change; usable as a decorator."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._state_listeners.append(callback)
        return callback

    def on_reject(self, callback: Callable[[Rejection], object]) -> Callable[[Rejection], object]:
        """Calls ``callback(Rejection)`` for every rejected call; usable as a decorator."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._reject_listeners.append(callback)
        return callback

    # -- reading and steering --------------------------------------------------------------

    @property
    def name(self) -> Optional[str]:
        """The name given at construction (shown in errors and ``repr``)."""
        return self._name

    @property
    def state(self) -> str:
        """The current state: closed, open, half_open, forced_open, disabled, metrics_only."""
        state = self._native.state(self._clock())
        self._drain()
        return state

    def metrics(self) -> Metrics:
        """The current numbers."""
        metrics = Metrics(**self._native.metrics(self._clock()))
        self._drain()
        return metrics

    def force_open(self) -> None:
        """Rejects every call until another manual change (``reset`` to undo)."""
        self._native.force_open(self._clock())
        self._drain()

    def disable(self) -> None:
        """Permits every call and records nothing, until another manual change."""
        self._native.disable(self._clock())
        self._drain()

    def metrics_only(self) -> None:
        """Records outcomes but never rejects, until another manual change."""
        self._native.metrics_only(self._clock())
        self._drain()

    def reset(self) -> None:
        """Back to closed, with an empty window and the base open duration."""
        self._native.reset(self._clock())
        self._drain()

    def snapshot(self) -> Dict[str, Any]:
        """The state as a JSON-compatible dict, for ``restore`` here or in another process or
        language."""
        snapshot: Dict[str, Any] = json.loads(self.to_json())
        return snapshot

    def to_json(self) -> str:
        """The state as a JSON string (see ``snapshot``)."""
        text = self._native.snapshot(self._clock())
        self._drain()
        return text

    def restore(self, snapshot: Union[Dict[str, Any], str]) -> None:
        """Resumes from a snapshot (a dict from ``snapshot()`` or a str from ``to_json()``).

        Raises ``SnapshotError`` and changes nothing if the snapshot is not valid.
        """
        if isinstance(snapshot, str):
            text = snapshot
        elif isinstance(snapshot, dict):
            try:
                text = json.dumps(snapshot, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise SnapshotError(f"breaker snapshot is not valid: {e}") from None
        else:
            raise TypeError(
                f"snapshot must be a dict or a JSON str, got {type(snapshot).__name__}"
            )
        self._native.restore(text, self._clock())
        self._drain()

    def __repr__(self) -> str:
        return f"<CircuitBreaker name={self._name!r} state={self.state!r}>"
