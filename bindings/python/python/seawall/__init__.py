"""Seawall: circuit breakers, deadline budgets and retries from one Rust core shared with Rust and
Node.js, so every service in a fleet makes the same decisions.

>>> from seawall import CircuitBreaker
>>> breaker = CircuitBreaker(failure_rate_threshold=50.0, window_size=20, open_duration=10.0)
>>> @breaker
... def fetch() -> str:
...     return "ok"
>>> fetch()
'ok'

>>> from seawall import Budget
>>> budget = Budget(2.0)
>>> 0 < budget.remaining <= 2.0
True
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
from ._budget import Budget, HeaderFormat, TimeoutPolicy
from ._call_policy import CallPolicy, retry, retry_call, retry_call_async
from ._clock import ManualClock
from ._errors import (
    BudgetExhausted,
    CircuitOpenError,
    DeadlineExceeded,
    InvalidConfigError,
    InvalidHeaderError,
    RetryBudgetExhausted,
    SeawallError,
    SnapshotError,
)
from ._retry import (
    BackoffKind,
    GiveUpReason,
    RetryBudget,
    RetryBudgetMetrics,
    RetryDecision,
    RetryLoop,
    RetryPolicy,
)

__all__ = [
    "BackoffKind",
    "Budget",
    "BudgetExhausted",
    "CallPolicy",
    "CircuitBreaker",
    "CircuitOpenError",
    "DeadlineExceeded",
    "GiveUpReason",
    "HeaderFormat",
    "InvalidConfigError",
    "InvalidHeaderError",
    "ManualClock",
    "Metrics",
    "Permit",
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
    "TimeoutPolicy",
    "TransitionReason",
    "retry",
    "retry_call",
    "retry_call_async",
]
