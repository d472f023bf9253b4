"""Seawall's exceptions.

Defined in Python rather than in the native module because ``InvalidConfigError`` and
``SnapshotError`` subclass both ``SeawallError`` and the builtin ``ValueError``; the native
module imports them from here when it maps a core error.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["SeawallError", "CircuitOpenError", "InvalidConfigError", "SnapshotError"]


class SeawallError(Exception):
    """Base class of every exception Seawall raises on its own account."""


class CircuitOpenError(SeawallError):
    """The circuit breaker rejected the call; the guarded function was not called.

    A fresh instance is raised for every rejection (never a stored one), so tracebacks do not
    accumulate across raises.
    """

    reason: str
    retry_after: Optional[float]
    breaker_name: Optional[str]

    def __init__(
        self,
        reason: str,
        retry_after: Optional[float] = None,
        breaker_name: Optional[str] = None,
    ) -> None:
        # Passing every argument on keeps the exception picklable (``BaseException.__reduce__``
        # rebuilds it from ``args``).
        super().__init__(reason, retry_after, breaker_name)
        self.reason = reason
        self.retry_after = retry_after
        self.breaker_name = breaker_name

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
