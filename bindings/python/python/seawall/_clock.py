"""A clock that moves only when told to, for tests that drive breakers through time."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

__all__ = ["ManualClock"]


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return seconds


def resolve_clock(clock: Optional[Callable[[], float]]) -> Callable[[], float]:
    """``clock``, checked (``time.monotonic`` when ``None``): a zero-argument callable returning
    seconds. It is read once here so that a clock of the wrong kind fails at construction, not in
    the middle of a call."""
    if clock is None:
        return time.monotonic
    if not callable(clock):
        raise TypeError(f"clock must be a callable returning seconds, got {type(clock).__name__}")
    reading: Any = clock()
    if isinstance(reading, bool) or not isinstance(reading, (int, float)):
        raise TypeError(f"clock must return a number of seconds, got {type(reading).__name__}")
    return clock


class ManualClock:
    """A monotonic clock in seconds that only moves when ``advance`` or ``set`` is called.

    Pass it as ``clock=`` to a ``CircuitBreaker``, ``Budget`` or ``RetryBudget`` to move them
    through time without sleeping.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = _seconds("start", start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Moves the clock forward by ``seconds`` (non-negative)."""
        self._now += _seconds("seconds", seconds)

    def set(self, seconds: float) -> None:
        """Sets the clock to ``seconds`` since its origin (non-negative)."""
        self._now = _seconds("seconds", seconds)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"
