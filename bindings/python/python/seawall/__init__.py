"""Seawall: circuit breakers (and, later, deadline budgets and pools) from one Rust core shared
with Rust and Node.js, so every service in a fleet makes the same decisions.

>>> from seawall import CircuitBreaker
>>> breaker = CircuitBreaker(failure_rate_threshold=50.0, window_size=20, open_duration=10.0)
>>> @breaker
... def fetch() -> str:
...     return "ok"
>>> fetch()
'ok'
"""

from ._breaker import (
    CircuitBreaker,
    Metrics,
    Permit,
    Rejection,
    RejectionReason,
    State,
    StateChange,
    TransitionReason,
)
from ._clock import ManualClock
from ._errors import CircuitOpenError, InvalidConfigError, SeawallError, SnapshotError

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
