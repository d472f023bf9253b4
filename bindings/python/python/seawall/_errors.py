"""Seawall's exceptions.

Defined in Python rather than in the native module because several subclass both
``SeawallError`` and a builtin (``ValueError``, ``TimeoutError``); the native module imports them
from here when it maps a core error. Every raise builds a fresh instance (never a stored one), so
tracebacks do not accumulate across raises.
"""

from __future__ import annotations

from typing import Any, Optional, cast

__all__ = [
    "SeawallError",
    "CircuitOpenError",
    "InvalidConfigError",
    "SnapshotError",
    "DeadlineExceeded",
    "BudgetExhausted",
    "RetryBudgetExhausted",
    "InvalidHeaderError",
    "PoolError",
    "PoolTimeout",
    "PoolOverloaded",
    "ConnectFailed",
    "DatabaseUnavailable",
    "PoolClosed",
    "ConnectionNotCheckedOut",
]


class SeawallError(Exception):
    """Base class of every exception Seawall raises on its own account."""


class CircuitOpenError(SeawallError):
    """The circuit breaker rejected the call; the guarded function was not called.

    A fresh instance is raised for every rejection (never a stored one), so tracebacks do not
    accumulate across raises.
    """

    def __init__(
        self,
        reason: str,
        retry_after: Optional[float] = None,
        breaker_name: Optional[str] = None,
    ) -> None:
        # Passing every argument on keeps the exception picklable (``BaseException.__reduce__``
        # rebuilds it from ``args``).
        super().__init__(reason, retry_after, breaker_name)

    # The attributes read ``args``: the breaker's native rejection path then makes the
    # exception with ``BaseException.__new__`` alone (its ``__init__`` and an instance dict
    # were most of the cost of a rejection).

    @property
    def reason(self) -> str:
        """``"open"``, ``"half_open_full"`` or ``"forced_open"``."""
        return cast(str, self.args[0])

    @property
    def retry_after(self) -> Optional[float]:
        """Seconds until the breaker admits calls again, when it knows."""
        return cast(Optional[float], self.args[1] if len(self.args) > 1 else None)

    @property
    def breaker_name(self) -> Optional[str]:
        """The ``name`` of the breaker that rejected the call."""
        return cast(Optional[str], self.args[2] if len(self.args) > 2 else None)

    def __str__(self) -> str:
        # Built on demand: most rejections are counted or retried, never printed.
        who = "circuit breaker"
        if self.breaker_name is not None:
            who = f"{who} {self.breaker_name!r}"
        if self.reason == "forced_open":
            what = f"{who} is forced open"
        elif self.reason == "half_open_full":
            what = f"{who} is half-open and all its probe slots are taken"
        else:
            what = f"{who} is open"
        if self.retry_after is None:
            return what
        return f"{what}; retry after {self.retry_after:.3f} s"


class InvalidConfigError(SeawallError, ValueError):
    """A configuration value is out of its allowed range.

    ``field`` is the keyword argument of ``CircuitBreaker`` that was rejected; the message names
    it, the allowed range and the value given.
    """

    field: str
    expected: Optional[str]
    got: Optional[str]

    def __init__(
        self,
        message: str,
        field: str = "",
        expected: Optional[str] = None,
        got: Optional[str] = None,
    ) -> None:
        super().__init__(message, field, expected, got)
        self.message = message
        self.field = field
        self.expected = expected
        self.got = got

    def __str__(self) -> str:
        return self.message


class SnapshotError(SeawallError, ValueError):
    """A snapshot cannot be restored (not JSON, not a snapshot, or from a newer Seawall)."""


class DeadlineExceeded(SeawallError, TimeoutError):
    """The deadline passed while the work ran, and the work was cancelled.

    Also a builtin ``TimeoutError``, so code that already handles timeouts handles this one.
    ``timeout`` is how long the work was given, in seconds.
    """

    message: str
    timeout: Optional[float]

    def __init__(self, message: str = "deadline exceeded", timeout: Optional[float] = None) -> None:
        # One argument only: ``OSError`` reads two as ``(errno, strerror)``.
        super().__init__(message)
        self.message = message
        self.timeout = timeout

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        # ``OSError.__reduce__`` would rebuild from ``args`` alone and lose ``timeout``.
        return (type(self), (self.message, self.timeout))


class BudgetExhausted(SeawallError):
    """Too little of the budget is left to start the call, so it was not started.

    ``remaining`` is the time that was left and ``min_to_start`` the policy's minimum to start a
    call, both in seconds.
    """

    message: str
    remaining: Optional[float]
    min_to_start: Optional[float]

    def __init__(
        self,
        message: str = "budget exhausted",
        remaining: Optional[float] = None,
        min_to_start: Optional[float] = None,
    ) -> None:
        super().__init__(message, remaining, min_to_start)
        self.message = message
        self.remaining = remaining
        self.min_to_start = min_to_start

    def __str__(self) -> str:
        return self.message


class RetryBudgetExhausted(SeawallError):
    """The shared retry budget allows no more retries now, so the call gave up; the last
    attempt's error is the ``__cause__``. ``attempts`` is how many attempts were made."""

    message: str
    attempts: Optional[int]

    def __init__(
        self, message: str = "retry budget exhausted", attempts: Optional[int] = None
    ) -> None:
        super().__init__(message, attempts)
        self.message = message
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class InvalidHeaderError(SeawallError, ValueError):
    """A received header value is not a timeout (a ``ValueError``).

    ``header`` is the format expected (``"grpc-timeout"`` or ``"timeout-ms"``), ``value`` the
    value received (at most 64 characters) and ``reason`` what is wrong with it.
    """

    message: str
    header: Optional[str]
    value: Optional[str]
    reason: Optional[str]

    def __init__(
        self,
        message: str,
        header: Optional[str] = None,
        value: Optional[str] = None,
        reason: Optional[str] = None,
    ) -> None:
        super().__init__(message, header, value, reason)
        self.message = message
        self.header = header
        self.value = value
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class PoolError(SeawallError):
    """Base class of the reasons a pool could not give a connection: ``PoolTimeout``,
    ``PoolOverloaded``, ``ConnectFailed``, ``DatabaseUnavailable``, ``PoolClosed``. (A caller's
    budget too short to wait raises ``BudgetExhausted``, as everywhere else.)"""

    message: str

    def __init__(self, message: str) -> None:
        # One argument only: ``PoolTimeout`` is also an ``OSError``, which reads two as
        # ``(errno, strerror)``.
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PoolTimeout(PoolError, TimeoutError):
    """No connection became free within the acquire timeout (also a builtin ``TimeoutError``).

    The numbers say why: ``in_use`` connections checked out, ``idle`` ones not (being checked,
    say), ``waiting`` callers waiting (this one included), and ``oldest_checkout_age``, how long
    the longest-held checkout had been out (seconds; ``None`` when nothing was out): a large one
    points at a leak or a slow query rather than at the database. ``waited`` is how long this
    caller waited.
    """

    waited: Optional[float]
    in_use: Optional[int]
    idle: Optional[int]
    waiting: Optional[int]
    oldest_checkout_age: Optional[float]

    def __init__(
        self,
        message: str = "timed out waiting for a connection",
        waited: Optional[float] = None,
        in_use: Optional[int] = None,
        idle: Optional[int] = None,
        waiting: Optional[int] = None,
        oldest_checkout_age: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.waited = waited
        self.in_use = in_use
        self.idle = idle
        self.waiting = waiting
        self.oldest_checkout_age = oldest_checkout_age

    def __reduce__(self) -> Any:
        # ``OSError.__reduce__`` would rebuild from ``args`` alone and lose the numbers.
        return (
            type(self),
            (
                self.message,
                self.waited,
                self.in_use,
                self.idle,
                self.waiting,
                self.oldest_checkout_age,
            ),
        )


class PoolOverloaded(PoolError):
    """The pool's wait queue is full (``max_waiters`` callers already waiting): failing at once
    beats piling up. ``waiting`` and ``max_waiters`` are the numbers."""

    waiting: Optional[int]
    max_waiters: Optional[int]

    def __init__(
        self,
        message: str = "pool overloaded",
        waiting: Optional[int] = None,
        max_waiters: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.waiting = waiting
        self.max_waiters = max_waiters

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.waiting, self.max_waiters))


class ConnectFailed(PoolError):
    """Connection attempts kept failing while the caller waited, until its wait ended.

    ``cause`` is the last attempt's exception (also the ``__cause__``) when the pool saw it,
    ``error`` its text and ``attempts`` the failed attempts in a row.
    """

    error: Optional[str]
    attempts: Optional[int]
    cause: Optional[BaseException]

    def __init__(
        self,
        message: str = "could not connect",
        error: Optional[str] = None,
        attempts: Optional[int] = None,
        cause: Optional[BaseException] = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.attempts = attempts
        self.cause = cause

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.error, self.attempts, None))


class DatabaseUnavailable(PoolError):
    """The breaker guarding the pool's connection attempts is open: the database is known to be
    down, so the pool fails at once instead of making the caller wait, and makes no connection
    attempt until the breaker lets a probe through.

    ``retry_after`` is the time in seconds until the next probe, when known; ``last_error`` the
    text of the last failed attempt and ``cause`` its exception (also the ``__cause__``) when the
    pool saw it.
    """

    retry_after: Optional[float]
    last_error: Optional[str]
    cause: Optional[BaseException]

    def __init__(
        self,
        message: str = "database unavailable",
        retry_after: Optional[float] = None,
        last_error: Optional[str] = None,
        cause: Optional[BaseException] = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.last_error = last_error
        self.cause = cause

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.retry_after, self.last_error, None))


class PoolClosed(PoolError):
    """The pool is draining or closed: it hands out no more connections."""

    def __init__(self, message: str = "pool is closed") -> None:
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (type(self), (self.message,))


class ConnectionNotCheckedOut(SeawallError, ValueError):
    """``release`` was given a connection this pool does not have checked out: it was already
    returned (a second release), or it never came from this pool. Nothing was changed, and in
    particular a checkout someone else now holds was left with them (a ``ValueError``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
