"""Composition: budget → retry → breaker → per-attempt timeout, in that order, for one call.

The order is easy to get wrong by hand, so it lives here once:
- the budget bounds everything, the waits between attempts included;
- the retry loop sees every failure, including the breaker's rejections, whose ``retry_after``
  becomes its hint;
- the breaker sees every attempt (not only the last) and classifies each outcome its own way,
  except that an attempt cancelled at its timeout is always a failure;
- each attempt's timeout is derived from what is left of the budget when it starts.

As in the Rust core's ``CallPolicy``, a rejection by the policy's own breaker and the expiry of
an attempt's own timeout are always handed to the retry loop (they say nothing about which
errors of the function are worth a retry); the ``RetryPolicy``'s ``retry_on`` /
``is_retryable`` classify what the function itself raises.

Every decision is the core's (through ``RetryLoop`` and ``CircuitBreaker``); this module runs
the function, sleeps (``asyncio.sleep`` / ``time.sleep``) and raises.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import time
from typing import Any, Callable, Optional, Tuple, Union

from ._breaker import _FAILURE, _IGNORED, CircuitBreaker
from ._budget import Budget, _Deadline
from ._errors import BudgetExhausted, CircuitOpenError, RetryBudgetExhausted
from ._native import check_timeout as _check_timeout
from ._retry import RetryBudget, RetryLoop, RetryPolicy, _resolve_retry_budget, default_budget

__all__ = ["CallPolicy", "retry", "retry_call", "retry_call_async"]

# What a CallPolicy given no RetryPolicy retries with: the core's defaults, as in Rust.
_DEFAULT_RETRY = RetryPolicy()

# How an attempt ended: the function's result, a failure of the policy's own making (its
# breaker's rejection, its attempt timeout: always retryable), or the function's own exception
# (retryable if the RetryPolicy says so).
_OK = 0
_OWN = 1
_RAISED = 2


def _hint(exc: BaseException) -> Optional[float]:
    """The server's hint carried by a failure: an open breaker's ``retry_after``, or a
    ``retry_after`` number of seconds on the user's exception. Anything else (a missing, negative,
    NaN or non-numeric attribute) is no hint."""
    try:
        value = getattr(exc, "retry_after", None)
    except Exception:  # noqa: BLE001 - a broken property is no hint, not a new failure
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        # An integer beyond any float: beyond any budget too, unless it is negative. The core
        # saturates infinite hints and gives up with ``retry_after_beyond_budget``.
        return math.inf if value > 0 else None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _attempt(
    breaker: Optional[CircuitBreaker], fn: Callable[..., Any], args: Any, kwargs: Any
) -> Tuple[int, Any]:
    """One sync attempt through the breaker: ``(_OK, result)``, ``(_OWN, rejection)`` or
    ``(_RAISED, exception)``. BaseExceptions that are not Exceptions propagate."""
    if breaker is None:
        try:
            return _OK, fn(*args, **kwargs)
        except Exception as exc:
            return _RAISED, exc
    try:
        token, started = breaker._acquire()
    except CircuitOpenError as rejection:
        return _OWN, rejection
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        breaker._record_exception(token, started, exc)
        if not isinstance(exc, Exception):
            raise
        return _RAISED, exc
    breaker._record_result(token, started, result)
    return _OK, result


async def _attempt_async(
    breaker: Optional[CircuitBreaker],
    timeout: float,
    fn: Callable[..., Any],
    args: Any,
    kwargs: Any,
) -> Tuple[int, Any]:
    """One async attempt through the breaker, cancelled after ``timeout`` seconds (then a
    ``DeadlineExceeded`` of the policy's own making, recorded by the breaker as a failure)."""
    token, started = 0, 0.0
    if breaker is not None:
        try:
            token, started = breaker._acquire()
        except CircuitOpenError as rejection:
            return _OWN, rejection
    deadline = _Deadline(timeout)
    try:
        deadline.start()
    except BaseException:
        if breaker is not None:
            breaker._record(token, started, _IGNORED)
        raise
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        timed_out = deadline.finish(exc)
        if timed_out is not None:
            timed_out.__cause__ = exc
            if breaker is not None:
                breaker._record(token, started, _FAILURE)
            return _OWN, timed_out
        if breaker is not None:
            breaker._record_exception(token, started, exc)
        if not isinstance(exc, Exception):
            raise
        return _RAISED, exc
    deadline.finish(None)
    if breaker is not None:
        breaker._record_result(token, started, result)
    return _OK, result


def _give_up(loop: RetryLoop, reason: Optional[str], last: BaseException) -> BaseException:
    """The exception that ends a call whose retry loop gave up after ``last``."""
    if reason == "retry_budget_exhausted":
        error = RetryBudgetExhausted(
            f"the retry budget allows no more retries now; gave up after {loop.attempts} "
            f"attempt(s), the last failing with {type(last).__name__}",
            loop.attempts,
        )
        error.__cause__ = last
        return error
    return last


class CallPolicy:
    """Runs calls under a budget, with retries, a circuit breaker and a per-attempt timeout, in
    the right order: budget → retry → breaker → per-attempt timeout.

    - ``breaker``: a ``CircuitBreaker`` every attempt goes through (default: none). A rejection
      is a failed attempt whose ``retry_after`` is the hint for the wait; outcomes are recorded
      with the breaker's own classification, and an attempt cancelled at its timeout is a
      failure.
    - ``retry``: a ``RetryPolicy`` (default: ``RetryPolicy()``, 3 attempts with decorrelated
      jitter; ``RetryPolicy(max_attempts=1)`` for none). Its ``retry_on`` / ``is_retryable``
      decide which errors of the function are retried; the breaker's rejections and the
      attempts' timeouts always go to the retry loop, which decides on time and budgets.
    - ``retry_budget``: the shared budget retries are taken from: a ``RetryBudget``, ``None``
      for the process-wide one (the default: retries are always bounded), ``False`` for none.
    - ``attempt_timeout``: the cap of each attempt in seconds (scaled by the budget's policy and
      never beyond what is left). Default: only the budget bounds an attempt.
    - ``timeout``: the budget each call gets when it is not given one (default: the
      process-wide policy's maximum, so that every call has a timeout).

    Use ``policy.call(fn, *args, budget=None, **kwargs)`` for sync functions,
    ``await policy.call_async(fn, ...)`` for async ones, or ``@policy`` on either. Async
    attempts are cancelled at their timeout (``DeadlineExceeded``); sync ones cannot be
    interrupted, but no attempt is started once the budget cannot fit one.

    A call returns the first successful result. It raises the last failure when it is not
    retryable or the retries end (attempts used up, the budget cannot fit another attempt or
    the hint); ``RetryBudgetExhausted`` (its ``__cause__`` the last failure) when the retry
    budget refused a retry; ``BudgetExhausted`` when not even the first attempt fitted.
    """

    __slots__ = ("_breaker", "_retry", "_retry_budget", "_attempt_timeout", "_timeout")

    def __init__(
        self,
        *,
        breaker: Optional[CircuitBreaker] = None,
        retry: Optional[RetryPolicy] = None,
        retry_budget: Union[RetryBudget, None, bool] = None,
        attempt_timeout: Optional[float] = None,
        timeout: Optional[float] = None,
    ) -> None:
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise TypeError(
                f"breaker must be a CircuitBreaker or None, got {type(breaker).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        self._breaker = breaker
        self._retry = _DEFAULT_RETRY if retry is None else retry
        self._retry_budget = _resolve_retry_budget(retry_budget)
        self._attempt_timeout = (
            None if attempt_timeout is None else _check_timeout("attempt_timeout", attempt_timeout)
        )
        self._timeout = None if timeout is None else _check_timeout("timeout", timeout)

    @property
    def breaker(self) -> Optional[CircuitBreaker]:
        """The breaker every attempt goes through, if any."""
        return self._breaker

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._retry

    @property
    def retry_budget(self) -> Optional[RetryBudget]:
        """The shared retry budget, if any."""
        return self._retry_budget

    @property
    def attempt_timeout(self) -> Optional[float]:
        """The cap of each attempt, in seconds, if any."""
        return self._attempt_timeout

    @property
    def timeout(self) -> Optional[float]:
        """The budget of a call given none, in seconds (``None``: the policy maximum)."""
        return self._timeout

    def _begin(self, budget: Optional[Budget]) -> RetryLoop:
        if budget is None:
            budget = default_budget() if self._timeout is None else Budget(self._timeout)
        elif not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget or None, got {type(budget).__name__}")
        return RetryLoop(self._retry, budget, self._retry_budget)

    def call(
        self, fn: Callable[..., Any], /, *args: Any, budget: Optional[Budget] = None, **kwargs: Any
    ) -> Any:
        """Calls the sync function ``fn(*args, **kwargs)`` under the policy and returns its
        result (see the class for what it raises)."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError("call() runs sync functions; use `await policy.call_async(fn)`")
        loop = self._begin(budget)
        policy = loop.policy
        breaker = self._breaker
        cap = self._attempt_timeout
        last: Optional[BaseException] = None
        while True:
            try:
                loop.start_attempt(cap)
            except BudgetExhausted:
                if last is None:
                    raise
                failure = last
                break
            outcome, value = _attempt(breaker, fn, args, kwargs)
            if outcome == _OK:
                return value
            last = value
            if outcome == _RAISED and not policy.should_retry(value):
                failure = value
                break
            decision = loop.on_failure(_hint(value))
            if not decision.retry:
                failure = _give_up(loop, decision.reason, value)
                break
            time.sleep(decision.delay or 0.0)
        try:
            raise failure
        finally:
            # The exception's traceback will hold this frame: do not keep it alive from here.
            del failure, last, value

    async def call_async(
        self, fn: Callable[..., Any], /, *args: Any, budget: Optional[Budget] = None, **kwargs: Any
    ) -> Any:
        """Awaits ``fn(*args, **kwargs)`` under the policy, each attempt cancelled at its
        timeout, and returns its result (see the class for what it raises)."""
        loop = self._begin(budget)
        policy = loop.policy
        breaker = self._breaker
        cap = self._attempt_timeout
        last: Optional[BaseException] = None
        while True:
            try:
                timeout = loop.start_attempt(cap)
            except BudgetExhausted:
                if last is None:
                    raise
                failure = last
                break
            outcome, value = await _attempt_async(breaker, timeout, fn, args, kwargs)
            if outcome == _OK:
                return value
            last = value
            if outcome == _RAISED and not policy.should_retry(value):
                failure = value
                break
            decision = loop.on_failure(_hint(value))
            if not decision.retry:
                failure = _give_up(loop, decision.reason, value)
                break
            await asyncio.sleep(decision.delay or 0.0)
        try:
            raise failure
        finally:
            del failure, last, value

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorates a sync or async function so that every call runs under the policy (with a
        budget of ``timeout``, or the policy maximum)."""
        if not callable(fn):
            raise TypeError(f"a CallPolicy decorates callables, got {type(fn).__name__}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                "a CallPolicy cannot decorate a generator function: its body runs after the "
                "call returns"
            )
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(fn, *args, **kwargs)

            return async_guarded

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return (
            f"<CallPolicy breaker={self._breaker!r} retry={self._retry!r} "
            f"attempt_timeout={self._attempt_timeout!r} timeout={self._timeout!r}>"
        )


def retry(
    fn: Optional[Callable[..., Any]] = None,
    /,
    *,
    policy: Optional[RetryPolicy] = None,
    retry_budget: Union[RetryBudget, None, bool] = None,
    attempt_timeout: Optional[float] = None,
    timeout: Optional[float] = None,
    **options: Any,
) -> Any:
    """Retries a sync or async function: ``@retry``, ``@retry(max_attempts=5, ...)`` (any
    ``RetryPolicy`` keyword) or ``@retry(policy=RetryPolicy(...))``.

    ``retry_budget``, ``attempt_timeout`` and ``timeout`` are as for ``CallPolicy``: each call
    gets a budget of ``timeout`` (default: the policy maximum), retries are drawn from the
    process-wide retry budget unless told otherwise, and async attempts are cancelled at
    ``attempt_timeout``. It is ``CallPolicy(retry=...)`` without a breaker.
    """
    if policy is not None and options:
        raise TypeError(
            "retry() takes either policy= or RetryPolicy keywords, not both: "
            f"got policy and {sorted(options)}"
        )
    if policy is None:
        policy = RetryPolicy(**options)
    elif not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy or None, got {type(policy).__name__}")
    call_policy = CallPolicy(
        retry=policy,
        retry_budget=retry_budget,
        attempt_timeout=attempt_timeout,
        timeout=timeout,
    )
    if fn is None:
        return call_policy
    return call_policy(fn)


_RETRY_CALL = CallPolicy(retry=_DEFAULT_RETRY)


def retry_call(
    fn: Callable[..., Any], /, *args: Any, budget: Optional[Budget] = None, **kwargs: Any
) -> Any:
    """Calls the sync function ``fn(*args, **kwargs)`` with the default retry policy (3
    attempts, decorrelated jitter) under ``budget`` (default: the policy maximum), drawing
    retries from the process-wide retry budget.

    Every other keyword goes to ``fn``. To choose the options, use ``RetryPolicy(...).call(fn,
    ...)``, or a ``CallPolicy`` for the retry budget, a breaker and attempt timeouts.
    """
    return _RETRY_CALL.call(fn, *args, budget=budget, **kwargs)


async def retry_call_async(
    fn: Callable[..., Any], /, *args: Any, budget: Optional[Budget] = None, **kwargs: Any
) -> Any:
    """Awaits ``fn(*args, **kwargs)`` with the default retry policy; the async form of
    ``retry_call`` (options through ``RetryPolicy(...).call_async`` or a ``CallPolicy``)."""
    return await _RETRY_CALL.call_async(fn, *args, budget=budget, **kwargs)
