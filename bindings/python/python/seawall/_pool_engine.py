"""The connection pool's engine and the values it speaks in.

``PoolEngine`` is the sans-IO engine (the core's ``PoolCore``) for people writing an adapter of
their own and for the conformance replayer: it takes the time as an argument, never waits and
never touches a connection; it says what to do (``poll_action``) and when to call it again
(``poll_timeout``). ``Pool`` and ``SyncPool`` (``_pool.py``, ``_sync_pool.py``) are two such
adapters. The configuration keywords, their defaults and their checks are shared by all three
and live here.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections import deque
from typing import Any, Deque, Dict, Literal, Mapping, NamedTuple, Optional, Tuple, Union

from ._breaker import CircuitBreaker, StateChange
from ._budget import Budget
from ._errors import SeawallError
from ._native import PoolCore as _NativePool

__all__ = [
    "ConnectAttemptFailed",
    "CreateAction",
    "DestroyAction",
    "DestroyReason",
    "Drained",
    "FailAction",
    "HandAction",
    "Histogram",
    "IdleOrder",
    "LeakReturned",
    "LeakSuspected",
    "Lease",
    "PoolAction",
    "PoolEngine",
    "PoolEvent",
    "PoolMetrics",
    "ValidateAction",
    "Waiter",
]

IdleOrder = Literal["lifo", "fifo"]
DestroyReason = Literal[
    "broken",
    "invalid",
    "idle_timeout",
    "expired",
    "resized",
    "closed",
    "create_timed_out",
    "stale",
]

# `acquire`'s result codes from the native engine.
READY = 0
WAIT = 1


class Lease(NamedTuple):
    """One checkout of a connection: its slot and which checkout of it this is. Release it once;
    a lease released twice, or after its connection was closed, is refused."""

    slot: int
    """The connection's slot (an id never reused)."""
    checkout: int
    """The checkout number (unique within the pool)."""


class Waiter(NamedTuple):
    """A caller waiting for a connection: wait for a ``HandAction`` or ``FailAction`` naming
    it."""

    id: int
    """The waiter's id (never reused)."""


class CreateAction(NamedTuple):
    """Open a connection for ``slot``, then call ``handle_created`` or ``handle_create_failed``.
    The engine gives up on it at ``deadline`` (it then asks to destroy the slot, reason
    ``create_timed_out``); give up then too."""

    slot: int
    deadline: float


class ValidateAction(NamedTuple):
    """Check the connection of ``slot``, then call ``handle_validated``."""

    slot: int


class DestroyAction(NamedTuple):
    """Close the connection of ``slot`` (or abandon its create) and forget it."""

    slot: int
    reason: str
    """``broken``, ``invalid``, ``idle_timeout``, ``expired``, ``resized``, ``closed``,
    ``create_timed_out`` or ``stale``."""


class HandAction(NamedTuple):
    """Give the connection of ``lease.slot`` to ``waiter`` (if it gave up meanwhile, release
    the lease instead)."""

    waiter: int
    lease: Lease


class FailAction(NamedTuple):
    """Fail ``waiter`` with ``error`` (a fresh exception: ``PoolTimeout``, ``ConnectFailed``,
    ``DatabaseUnavailable``, ``BudgetExhausted`` or ``PoolClosed``)."""

    waiter: int
    error: SeawallError


PoolAction = Union[CreateAction, ValidateAction, DestroyAction, HandAction, FailAction]


class LeakSuspected(NamedTuple):
    """A checkout has been held longer than ``leak_threshold`` (reported once per checkout).
    The adapters give ``stack``, where the connection was acquired (``None`` from
    ``PoolEngine``)."""

    slot: int
    held_for: float
    stack: Optional[str] = None


class LeakReturned(NamedTuple):
    """A checkout reported as a suspected leak came back after ``held_for`` seconds."""

    slot: int
    held_for: float
    stack: Optional[str] = None


class ConnectAttemptFailed(NamedTuple):
    """A connection attempt failed (``attempts`` in a row). The adapters give ``cause``, the
    exception it raised (``None`` from ``PoolEngine``, and for an attempt abandoned at
    ``create_timeout``)."""

    error: str
    attempts: int
    cause: Optional[BaseException] = None


class Drained(NamedTuple):
    """The drain finished; ``still_held`` were checked out at its deadline and were closed:
    slot ids from ``PoolEngine``, the connection objects from the adapters."""

    still_held: Tuple[Any, ...]


PoolEvent = Union[LeakSuspected, LeakReturned, StateChange, ConnectAttemptFailed, Drained]


@dataclasses.dataclass(frozen=True)
class Histogram:
    """A distribution of durations in seconds. Quantiles are upper bounds within a factor of two
    (power-of-two buckets), never above ``max``; all zero when nothing was recorded."""

    count: int
    sum: float
    max: float
    p50: float
    p90: float
    p99: float


@dataclasses.dataclass(frozen=True)
class PoolMetrics:
    """A pool's numbers, named after OpenTelemetry's ``db.client.connection.*`` metrics.
    Counters count since the pool was built. ``idle + used + creating <= max``."""

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
    """``db.client.connection.pending_requests``: callers waiting."""
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
    breaker_state: str
    """The state of the breaker guarding connection attempts."""
    oldest_checkout_age: Optional[float]
    """How long the longest-held checkout has been out, in seconds."""

    def as_dict(self) -> Dict[str, Any]:
        """The metrics as a plain dict (for logging or JSON)."""
        return dataclasses.asdict(self)


_HISTOGRAMS = ("create_time", "wait_time", "use_time")


def metrics_from(d: Dict[str, Any]) -> PoolMetrics:
    for key in _HISTOGRAMS:
        d[key] = Histogram(*d[key])
    return PoolMetrics(**d)


# `CircuitBreaker`'s configuration keywords and defaults: a pool's `breaker` dict is read as
# `CircuitBreaker(**breaker)` would read it.
_BREAKER_DEFAULTS: Dict[str, Any] = {
    name: p.default
    for name, p in inspect.signature(CircuitBreaker.__init__).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
    and name not in ("exclude", "is_failure", "is_result_failure", "clock", "name")
}


def breaker_settings(breaker: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """A pool's ``breaker`` keyword with ``CircuitBreaker``'s defaults filled in (the native
    engine checks the keys and values)."""
    if breaker is None:
        return None
    if not isinstance(breaker, Mapping):
        raise TypeError(
            "breaker must be a dict of CircuitBreaker keyword arguments or None, "
            f"got {type(breaker).__name__}"
        )
    settings = dict(_BREAKER_DEFAULTS)
    settings.update(breaker)
    return settings


def native_pool(
    *,
    max_size: int,
    min_idle: int,
    max_waiters: int,
    acquire_timeout: float,
    create_timeout: float,
    idle_timeout: Optional[float],
    max_lifetime: Optional[float],
    lifetime_jitter: float,
    validate_after: Optional[float],
    idle_order: str,
    leak_threshold: Optional[float],
    create_backoff_base: float,
    create_backoff_cap: float,
    breaker: Optional[Mapping[str, Any]],
    seed: Optional[int],
) -> _NativePool:
    """Validates a pool configuration and builds the native engine."""
    return _NativePool(
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
        breaker=breaker_settings(breaker),
        seed=seed,
    )


def native_budget(budget: Optional[Budget]) -> Tuple[Any, Optional[float]]:
    """The native budget and its clock's reading, for the engine's ``acquire``."""
    if budget is None:
        return None, None
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget or None, got {type(budget).__name__}")
    return budget._native, budget._clock()


def action_of(t: Tuple[Any, ...]) -> PoolAction:
    kind = t[0]
    if kind == "create":
        return CreateAction(t[1], t[2])
    if kind == "validate":
        return ValidateAction(t[1])
    if kind == "destroy":
        return DestroyAction(t[1], t[2])
    if kind == "hand":
        return HandAction(t[1], Lease(t[2], t[3]))
    return FailAction(t[1], t[2])


def event_of(t: Tuple[Any, ...]) -> PoolEvent:
    kind = t[0]
    if kind == "leak_suspected":
        return LeakSuspected(t[1], t[2])
    if kind == "leak_returned":
        return LeakReturned(t[1], t[2])
    if kind == "breaker":
        return StateChange(t[1], t[2], t[3])
    if kind == "connect_failed":
        return ConnectAttemptFailed(t[1], t[2])
    return Drained(tuple(t[1]))


def _time(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    return float(value)


class PoolEngine:
    """The connection pool's engine, sans-IO: for writing a pool adapter of your own (``Pool``
    and ``SyncPool`` are two), and for replaying the cross-language conformance vectors.

    It owns the slots, the limits, the FIFO wait queue, the breaker guarding connection attempts
    and every timer decision; you own the connections (keyed by slot id) and the clock. Every
    method takes ``now``, seconds on your monotonic clock, and returns at once. After each call,
    perform what ``poll_action`` returns until it returns ``None``, report the outcomes through
    the ``handle_*`` methods, and call ``handle_timeout`` at ``poll_timeout()``. Events for
    operators come from ``poll_event``.

    The configuration keywords are ``Pool``'s (see there). Not thread-safe by itself beyond
    each call being atomic: an adapter serialises its use.
    """

    __slots__ = ("_native", "_actions", "_events")

    def __init__(
        self,
        *,
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
        self._native = native_pool(
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
        self._actions: Deque[Tuple[Any, ...]] = deque()
        self._events: Deque[Tuple[Any, ...]] = deque()

    def _keep(self, actions: Any, events: Any) -> None:
        if actions:
            self._actions.extend(actions)
        if events:
            self._events.extend(events)

    def _reply(self, r: Tuple[Any, Any, Any, Any]) -> Any:
        self._keep(r[1], r[2])
        return r[0]

    def acquire(self, now: float, budget: Optional[Budget] = None) -> Union[Lease, Waiter]:
        """Asks for a connection at ``now``. Returns a ``Lease`` when one is ready, or a
        ``Waiter`` to be served later by a ``HandAction`` or ``FailAction``; the wait ends at
        the earlier of ``acquire_timeout`` and ``budget``'s deadline. Raises ``PoolOverloaded``
        (queue full), ``DatabaseUnavailable`` (breaker open and nothing idle),
        ``BudgetExhausted`` (too little budget left) or ``PoolClosed``."""
        native, budget_now = native_budget(budget)
        code, a, b, actions, events, _ = self._native.acquire(_time("now", now), native, budget_now)
        self._keep(actions, events)
        if code == READY:
            return Lease(a, b)
        if code == WAIT:
            return Waiter(a)
        raise a

    def release(self, lease: Lease, broken: bool, now: float) -> bool:
        """Returns a checkout; a ``broken`` connection is destroyed, never reused. Returns
        ``False`` (and changes nothing) for a lease already returned or whose connection was
        closed."""
        slot, checkout = lease
        return bool(
            self._reply(self._native.release(slot, checkout, bool(broken), _time("now", now)))
        )

    def cancel(self, waiter: Union[Waiter, int], now: float) -> bool:
        """The waiter gave up. Returns ``False`` when it had already been served or failed (a
        ``HandAction`` for it then still has to be released)."""
        wid = waiter.id if isinstance(waiter, Waiter) else waiter
        return bool(self._reply(self._native.cancel(wid, _time("now", now))))

    def handle_created(self, slot: int, now: float) -> None:
        """The create for ``slot`` succeeded."""
        self._reply(self._native.handle_created(slot, _time("now", now)))

    def handle_create_failed(self, slot: int, error: str, now: float) -> None:
        """The create for ``slot`` failed with ``error`` (its text)."""
        self._reply(self._native.handle_create_failed(slot, str(error), _time("now", now)))

    def handle_validated(self, slot: int, ok: bool, now: float) -> None:
        """The validation of ``slot`` finished."""
        self._reply(self._native.handle_validated(slot, bool(ok), _time("now", now)))

    def handle_broken(self, slot: int, now: float) -> bool:
        """The connection of ``slot`` is dead (its client reported an error): closed at once if
        idle, failed if being validated, closed when it comes back if checked out. Returns
        whether the engine knew the slot."""
        return bool(self._reply(self._native.handle_broken(slot, _time("now", now))))

    def handle_timeout(self, now: float) -> None:
        """Applies every timer decision due at ``now`` (call it at ``poll_timeout()``, and once
        at start to open the ``min_idle`` connections)."""
        self._reply(self._native.handle_timeout(_time("now", now)))

    def drain(self, now: float, deadline: float) -> None:
        """Stops handing out connections: waiters fail with ``PoolClosed``, idle connections
        close, checked-out ones close when returned, and at ``deadline`` whatever is still out
        is closed and reported in a ``Drained`` event."""
        self._reply(self._native.drain(_time("now", now), _time("deadline", deadline)))

    def resize(self, max_size: int, now: float) -> None:
        """Changes ``max_size``; shrinking closes idle connections at once and checked-out ones
        as they come back. Raises ``InvalidConfigError`` for a size outside [1, 10000]."""
        self._reply(self._native.resize(max_size, _time("now", now)))

    def poll_action(self) -> Optional[PoolAction]:
        """What to do next, oldest first (``None``: nothing)."""
        return action_of(self._actions.popleft()) if self._actions else None

    def poll_event(self) -> Optional[PoolEvent]:
        """The next event for operators (``None``: nothing)."""
        return event_of(self._events.popleft()) if self._events else None

    def poll_timeout(self) -> Optional[float]:
        """When to call ``handle_timeout`` next (``None``: not until something else happens)."""
        return self._native.poll_timeout()

    def metrics(self, now: float) -> PoolMetrics:
        """The numbers at ``now``."""
        r = self._native.metrics(_time("now", now))
        self._keep(r[1], r[2])
        return metrics_from(r[0])

    @property
    def is_closed(self) -> bool:
        """Whether the drain has finished."""
        return self._native.is_closed()

    def __repr__(self) -> str:
        return f"<PoolEngine closed={self.is_closed}>"
