"""Retries in Python: the policy, the shared retry budget and the low-level retry loop.

Every decision (does another attempt fit the budget, how long to wait, when to give up, may the
retry budget spare one more retry) is one synchronous call into ``seawall._native``. This module
holds what needs Python: which exceptions are worth a retry, the clocks, and the process-wide
default retry budget's Python face. The loops that run the user's function, sleep and raise live
in ``_call_policy.py``.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Literal, NamedTuple, Optional, Tuple, Union

from ._budget import Budget, TimeoutPolicy
from ._clock import resolve_clock
from ._errors import BudgetExhausted, RetryBudgetExhausted
from ._native import RetryBudget as _NativeRetryBudget
from ._native import RetryConfig as _NativeRetryConfig
from ._native import RetryLoop as _NativeRetryLoop

__all__ = [
    "BackoffKind",
    "GiveUpReason",
    "RetryBudget",
    "RetryBudgetMetrics",
    "RetryDecision",
    "RetryLoop",
    "RetryPolicy",
]

BackoffKind = Literal["constant", "exponential", "decorrelated_jitter"]
GiveUpReason = Literal[
    "attempts_exhausted", "budget_exhausted", "retry_after_beyond_budget", "retry_budget_exhausted"
]

_ExceptionTypes = Union[type, Tuple[type, ...]]


class RetryDecision(NamedTuple):
    """What to do after a failed attempt (``RetryLoop.on_failure``)."""

    retry: bool
    """Whether to make another attempt."""
    delay: Optional[float]
    """Seconds to wait before it (``None`` when giving up)."""
    reason: Optional[str]
    """Why to give up (``None`` when retrying): ``attempts_exhausted``, ``budget_exhausted``,
    ``retry_after_beyond_budget`` or ``retry_budget_exhausted``."""


class RetryBudgetMetrics(NamedTuple):
    """A retry budget's numbers over its window (``RetryBudget.metrics``)."""

    requests: int
    """Requests (first attempts) in the window."""
    retries: int
    """Retries in the window."""
    allowed: int
    """Retries the window allows in all."""


_GLOBAL_LOCK = threading.Lock()
_GLOBAL: Optional[RetryBudget] = None


class RetryBudget:
    """A retry budget shared by every caller of a dependency (Finagle and Envoy's design):
    retries may add at most ``percent`` % of the requests plus ``min_per_second`` retries a
    second, counted over the last ``ttl`` seconds. It is what stops a retry storm: however many
    callers retry, the extra load on a failing dependency stays bounded.

    Defaults: 20 %, 10 a second, 10 s. ``percent`` in [0, 1000], ``min_per_second`` in
    [0, 100000], ``ttl`` between 1 s and 1 h; out-of-range values raise ``InvalidConfigError``.
    ``clock`` is a zero-argument callable returning monotonic seconds (default: the core's
    monotonic clock). Thread-safe.

    Every retry that is not given a budget draws from ``RetryBudget.get_global()``; make one per
    dependency to keep one sick dependency from using up the retries of the others.
    """

    __slots__ = ("_native", "_clock")

    def __init__(
        self,
        *,
        percent: float = 20.0,
        min_per_second: float = 10.0,
        ttl: float = 10.0,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self._native = _NativeRetryBudget(percent=percent, min_per_second=min_per_second, ttl=ttl)
        # ``None`` lets the core read its own monotonic clock: one call fewer per decision.
        self._clock: Optional[Callable[[], float]] = (
            None if clock is None else resolve_clock(clock)
        )

    @staticmethod
    def get_global() -> RetryBudget:
        """The process-wide retry budget (the core's): used by every retry loop, ``retry``
        decorator, ``retry_call`` and ``CallPolicy`` not given one. Always the same object."""
        global _GLOBAL
        with _GLOBAL_LOCK:
            if _GLOBAL is None:
                budget = object.__new__(RetryBudget)
                budget._native = _NativeRetryBudget.get_global()
                budget._clock = None
                _GLOBAL = budget
            return _GLOBAL

    @property
    def percent(self) -> float:
        """Retries allowed as a percentage of requests."""
        return self._native.percent

    @property
    def min_per_second(self) -> float:
        """Retries always allowed per second."""
        return self._native.min_per_second

    @property
    def ttl(self) -> float:
        """How long a request or retry counts, in seconds."""
        return self._native.ttl

    def _now(self) -> Optional[float]:
        clock = self._clock
        return None if clock is None else clock()

    def metrics(self) -> RetryBudgetMetrics:
        """The numbers now."""
        return RetryBudgetMetrics(*self._native.metrics(self._now()))

    def __repr__(self) -> str:
        m = self.metrics()
        return (
            f"<RetryBudget percent={self.percent!r} min_per_second={self.min_per_second!r} "
            f"ttl={self.ttl!r} requests={m.requests} retries={m.retries} allowed={m.allowed}>"
        )


def _resolve_retry_budget(retry_budget: Any) -> Optional[RetryBudget]:
    """``None``: the process-wide budget; ``False``: none; a ``RetryBudget``: that one."""
    if retry_budget is None:
        return RetryBudget.get_global()
    if retry_budget is False:
        return None
    if isinstance(retry_budget, RetryBudget):
        return retry_budget
    raise TypeError(
        "retry_budget must be a RetryBudget, None (the process-wide one) or False (none), "
        f"got {type(retry_budget).__name__}"
    )


def default_budget() -> Budget:
    """A budget of the process-wide policy's maximum: what a call gets when it is given none,
    so that every call has a timeout."""
    return Budget(TimeoutPolicy.get_global().max_timeout)


class RetryPolicy:
    """How many attempts a call makes, how long it waits between them, and which failures are
    worth another attempt. Durations in seconds.

    - ``max_attempts``: attempts in all, the first included, in [1, 100]. Default 3.
    - ``backoff``: the wait before attempt n + 1:
      ``"decorrelated_jitter"`` (default; uniform between ``base`` and three times the previous
      wait, at most ``cap``: spreads a crowd of retrying callers), ``"exponential"``
      (``base × multiplier**(n - 1)``, at most ``cap``) or ``"constant"`` (always ``delay``,
      required then and refused otherwise). ``base`` default 0.1, ``cap`` default 5 (at least
      ``base``), ``multiplier`` default 2 in [1, 100]; each wait at most 24 h.
    - ``seed``: fixes the jitter (tests). Default ``None`` (random).
    - ``retry_on``: the exception types worth a retry (default ``(Exception,)``), and
      ``is_retryable``: an optional predicate that must also return true. ``BudgetExhausted``
      and ``RetryBudgetExhausted`` are never retried, nor are ``BaseException``s that are not
      ``Exception``s (``KeyboardInterrupt``, ``asyncio.CancelledError``).

    A wait never ends past the budget's deadline, and a server's hint (an open breaker's
    ``retry_after``, or a ``retry_after`` attribute on the exception) replaces the computed
    wait when it fits the budget and ends the retries when it does not.

    Out-of-range values raise ``InvalidConfigError`` (a ``ValueError``) naming the keyword;
    values of the wrong type raise ``TypeError``. Use the policy with ``retry(policy=...)``,
    ``policy.call(fn, ...)``, ``CallPolicy(retry=policy)``, or drive ``policy.begin()``
    yourself.
    """

    __slots__ = ("_native", "_retry_on", "_is_retryable")

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        backoff: BackoffKind = "decorrelated_jitter",
        base: float = 0.1,
        cap: float = 5.0,
        delay: Optional[float] = None,
        multiplier: float = 2.0,
        seed: Optional[int] = None,
        retry_on: _ExceptionTypes = (Exception,),
        is_retryable: Optional[Callable[[BaseException], object]] = None,
    ) -> None:
        self._native = _NativeRetryConfig(
            max_attempts=max_attempts,
            backoff=backoff,
            base=base,
            cap=cap,
            delay=delay,
            multiplier=multiplier,
            seed=seed,
        )
        self._retry_on = _exception_types(retry_on)
        if is_retryable is not None and not callable(is_retryable):
            raise TypeError(
                f"is_retryable must be callable or None, got {type(is_retryable).__name__}"
            )
        self._is_retryable = is_retryable

    @property
    def max_attempts(self) -> int:
        """Attempts in all, the first included."""
        return self._native.max_attempts

    @property
    def backoff(self) -> str:
        """The backoff's kind."""
        return self._native.backoff

    @property
    def base(self) -> Optional[float]:
        """The first (exponential) or shortest (jitter) wait; ``None`` for ``constant``."""
        return self._native.base

    @property
    def cap(self) -> Optional[float]:
        """The longest wait; ``None`` for ``constant``."""
        return self._native.cap

    @property
    def delay(self) -> Optional[float]:
        """The wait of a ``constant`` backoff; ``None`` otherwise."""
        return self._native.delay

    @property
    def multiplier(self) -> Optional[float]:
        """The growth per attempt of an ``exponential`` backoff; ``None`` otherwise."""
        return self._native.multiplier

    @property
    def seed(self) -> Optional[int]:
        """The jitter seed, if fixed."""
        return self._native.seed

    @property
    def retry_on(self) -> Tuple[type, ...]:
        """The exception types worth a retry."""
        return self._retry_on

    @property
    def is_retryable(self) -> Optional[Callable[[BaseException], object]]:
        """The predicate given, if any."""
        return self._is_retryable

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this policy (the decision on time
        and budgets is ``RetryLoop.on_failure``'s)."""
        if not isinstance(exc, Exception):
            return False
        if isinstance(exc, (BudgetExhausted, RetryBudgetExhausted)):
            return False
        if not isinstance(exc, self._retry_on):
            return False
        predicate = self._is_retryable
        return predicate is None or bool(predicate(exc))

    def begin(
        self,
        budget: Optional[Budget] = None,
        *,
        retry_budget: Union[RetryBudget, None, bool] = None,
    ) -> RetryLoop:
        """A retry loop for one call, for code that runs its own attempts (see ``RetryLoop``).

        ``budget`` bounds the whole call, waits included (default: a new budget of the
        process-wide policy's maximum). ``retry_budget`` is the shared budget retries are taken
        from: ``None`` for the process-wide one, ``False`` for none.
        """
        if budget is None:
            budget = default_budget()
        elif not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget or None, got {type(budget).__name__}")
        return RetryLoop(self, budget, _resolve_retry_budget(retry_budget))

    def call(
        self, fn: Callable[..., Any], /, *args: Any, budget: Optional[Budget] = None, **kwargs: Any
    ) -> Any:
        """Calls ``fn(*args, **kwargs)`` with retries under ``budget`` (default: the policy
        maximum), drawing retries from the process-wide retry budget. See ``retry_call``."""
        # Imported here: the composition module builds on this one.
        from ._call_policy import CallPolicy

        return CallPolicy(retry=self).call(fn, *args, budget=budget, **kwargs)

    async def call_async(
        self, fn: Callable[..., Any], /, *args: Any, budget: Optional[Budget] = None, **kwargs: Any
    ) -> Any:
        """Awaits ``fn(*args, **kwargs)`` with retries; the async form of ``call``."""
        from ._call_policy import CallPolicy

        return await CallPolicy(retry=self).call_async(fn, *args, budget=budget, **kwargs)

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts!r}, backoff={self.backoff!r}, "
            f"base={self.base!r}, cap={self.cap!r}, delay={self.delay!r}, "
            f"multiplier={self.multiplier!r}, seed={self.seed!r})"
        )


def _exception_types(retry_on: Any) -> Tuple[type, ...]:
    if isinstance(retry_on, type):
        types: Tuple[Any, ...] = (retry_on,)
    elif isinstance(retry_on, (tuple, list, set, frozenset)):
        types = tuple(retry_on)
    else:
        raise TypeError(
            "retry_on must be an exception type or a tuple of exception types, "
            f"got {type(retry_on).__name__}"
        )
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"retry_on must contain exception types, got {t!r}")
    return types


class RetryLoop:
    """One call's retry loop, from ``RetryPolicy.begin()``: the decisions without the running.

    Before each attempt call ``start_attempt()`` (it raises ``BudgetExhausted`` when the
    attempt does not fit what is left, and otherwise returns the attempt's timeout); after a
    retryable failure call ``on_failure()`` and wait ``decision.delay`` seconds if
    ``decision.retry``, or stop. The first attempt counts as a request in the retry budget.
    """

    __slots__ = ("_native", "_policy", "_budget", "_retry_budget")

    def __init__(
        self, policy: RetryPolicy, budget: Budget, retry_budget: Optional[RetryBudget]
    ) -> None:
        self._policy = policy
        self._budget = budget
        self._retry_budget = retry_budget
        self._native = _NativeRetryLoop(
            policy._native, budget._native, None if retry_budget is None else retry_budget._native
        )

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy."""
        return self._policy

    @property
    def budget(self) -> Budget:
        """The budget bounding the whole call."""
        return self._budget

    @property
    def retry_budget(self) -> Optional[RetryBudget]:
        """The shared retry budget retries are taken from, if any."""
        return self._retry_budget

    @property
    def attempts(self) -> int:
        """Attempts started so far."""
        return self._native.attempts

    def _rb_now(self) -> Optional[float]:
        rb = self._retry_budget
        return None if rb is None else rb._now()

    def start_attempt(self, cap: Optional[float] = None) -> float:
        """Starts an attempt and returns its timeout in seconds: the least of the time left,
        ``cap`` (scaled by the policy) and the policy maximum. Raises ``BudgetExhausted`` when
        the attempt should not be started."""
        return self._native.start_attempt(self._budget._clock(), self._rb_now(), cap)

    def on_failure(self, retry_after: Optional[float] = None) -> RetryDecision:
        """After a retryable failure: wait and retry, or give up (see ``RetryDecision``).
        ``retry_after`` is a server's hint in seconds (an open breaker's, a ``Retry-After``
        header's); it replaces the computed wait when it fits the budget."""
        retry, delay, reason = self._native.on_failure(
            self._budget._clock(), self._rb_now(), retry_after
        )
        return RetryDecision(retry, delay, reason)

    def __repr__(self) -> str:
        return f"<RetryLoop attempts={self.attempts} budget={self._budget!r}>"
