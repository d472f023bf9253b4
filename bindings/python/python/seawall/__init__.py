"""Seawall: circuit breakers, deadline budgets, retries and connection pools from one Rust core
shared with Rust and Node.js, so every service in a fleet makes the same decisions.

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
    ConnectFailed,
    ConnectionNotCheckedOut,
    DatabaseUnavailable,
    DeadlineExceeded,
    InvalidConfigError,
    InvalidHeaderError,
    PoolClosed,
    PoolError,
    PoolOverloaded,
    PoolTimeout,
    RetryBudgetExhausted,
    SeawallError,
    SnapshotError,
)
from ._pool import Pool
from ._pool_engine import (
    ConnectAttemptFailed,
    CreateAction,
    DestroyAction,
    DestroyReason,
    Drained,
    FailAction,
    HandAction,
    Histogram,
    IdleOrder,
    LeakReturned,
    LeakSuspected,
    Lease,
    PoolAction,
    PoolEngine,
    PoolEvent,
    PoolMetrics,
    ValidateAction,
    Waiter,
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
from ._sync_pool import SyncPool
from ._watchdog import (
    DUMP_PREFIX,
    RESTART_EXIT_CODE,
    Assessment,
    DumpPlan,
    MemoryReading,
    MemoryWatchdog,
    Trend,
    WatchdogAction,
    WatchdogCounts,
    WatchdogEvent,
    WatchdogMetrics,
    WatchdogPolicy,
    read_memory,
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
    # The memory watchdog (_watchdog.py).
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
