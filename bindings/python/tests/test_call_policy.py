"""CallPolicy: budget → retry → breaker → per-attempt timeout, in real time with short timers.
The breaker sees every attempt, its rejections are retried after their ``retry_after``, a
timed-out attempt is a failure, and the policy maximum bounds everything."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator, List

import pytest

from seawall import (
    Budget,
    BudgetExhausted,
    CallPolicy,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceeded,
    InvalidConfigError,
    RetryBudget,
    RetryBudgetExhausted,
    RetryPolicy,
    TimeoutPolicy,
)

FAST = RetryPolicy(max_attempts=3, backoff="constant", delay=0.0)


@pytest.fixture(autouse=True)
def restore_global_policy() -> Iterator[None]:
    before = TimeoutPolicy.get_global()
    yield
    TimeoutPolicy.set_global(before)


def one_strike_breaker(open_duration: float) -> CircuitBreaker:
    """Opens after one failure; one probe when half-open."""
    return CircuitBreaker(
        consecutive_failures=1, open_duration=open_duration, half_open_calls=1
    )


def test_a_rejection_is_retried_after_the_breakers_retry_after() -> None:
    breaker = one_strike_breaker(0.05)
    calls: List[float] = []

    def dependency() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ConnectionError("down")
        return "up"

    policy = CallPolicy(breaker=breaker, retry=FAST, retry_budget=False)
    started = time.monotonic()
    assert policy.call(dependency) == "up"
    # Attempt 1 fails and opens the breaker; attempt 2 is rejected (the function is not
    # called) with retry_after ~50 ms, which replaces the 0 s backoff; attempt 3 is the probe.
    assert len(calls) == 2
    assert calls[1] - started >= 0.045, "waited for the breaker, not the backoff"
    m = breaker.metrics()
    assert (m.failures, m.rejected, m.successes) == (1, 1, 1)
    assert breaker.state == "closed"


def test_a_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    breaker = one_strike_breaker(30.0)
    calls = []

    def dependency() -> None:
        calls.append(1)
        raise ConnectionError("down")

    policy = CallPolicy(breaker=breaker, retry=FAST, retry_budget=False, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(CircuitOpenError) as info:
        policy.call(dependency)
    assert time.monotonic() - started < 0.2
    assert len(calls) == 1
    assert info.value.retry_after is not None and info.value.retry_after > 29


def test_async_rejections_and_timeouts_go_through_the_breaker() -> None:
    breaker = CircuitBreaker(consecutive_failures=2, open_duration=0.04, half_open_calls=1)
    attempts: List[str] = []

    async def dependency() -> str:
        attempts.append("run")
        if len(attempts) <= 2:
            await asyncio.sleep(10)  # hangs: cancelled at the attempt timeout
        return "up"

    policy = CallPolicy(
        breaker=breaker,
        retry=RetryPolicy(max_attempts=5, backoff="constant", delay=0.0),
        retry_budget=False,
        attempt_timeout=0.02,
    )

    async def main() -> str:
        result = str(await policy.call_async(dependency))
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return result

    assert asyncio.run(main()) == "up"
    # Two timed-out attempts are two failures (the breaker opens), one rejection, one probe.
    m = breaker.metrics()
    assert (m.failures, m.rejected, m.successes, m.in_flight) == (2, 1, 1, 0)
    assert len(attempts) == 3


def test_the_breakers_own_classification_is_used() -> None:
    breaker = CircuitBreaker(exclude=(KeyError,), consecutive_failures=1)
    errors: List[BaseException] = [KeyError("cache miss"), KeyError("again")]

    def dependency() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    assert CallPolicy(breaker=breaker, retry=FAST, retry_budget=False).call(dependency) == "ok"
    m = breaker.metrics()
    assert (m.ignored, m.failures, m.successes) == (2, 0, 1)
    assert breaker.state == "closed"


def test_rejections_and_attempt_timeouts_are_always_retried() -> None:
    # retry_on classifies the function's own errors; the policy's own breaker rejections and
    # attempt timeouts always go to the retry loop (as in the Rust core's CallPolicy).
    narrow = RetryPolicy(max_attempts=3, backoff="constant", delay=0.0, retry_on=KeyError)
    breaker = one_strike_breaker(0.01)
    breaker.force_open()
    with pytest.raises(CircuitOpenError):
        CallPolicy(breaker=breaker, retry=narrow, retry_budget=False).call(lambda: "never")
    assert breaker.metrics().rejected == 3

    attempts = []

    async def hangs() -> None:
        attempts.append(1)
        await asyncio.sleep(10)

    with pytest.raises(DeadlineExceeded) as info:
        asyncio.run(
            CallPolicy(retry=narrow, retry_budget=False, attempt_timeout=0.02).call_async(hangs)
        )
    assert len(attempts) == 3
    assert isinstance(info.value.__cause__, asyncio.CancelledError)

    # The function's own errors follow retry_on, a CircuitOpenError of another breaker too.
    inner = one_strike_breaker(30.0)
    inner.force_open()
    calls = []

    def uses_another_breaker() -> None:
        calls.append(1)
        inner.call(lambda: None)

    with pytest.raises(CircuitOpenError):
        CallPolicy(retry=narrow, retry_budget=False).call(uses_another_breaker)
    assert calls == [1]


def test_a_timed_out_attempt_is_a_failure_whatever_the_breaker_excludes() -> None:
    breaker = CircuitBreaker(exclude=(TimeoutError,), consecutive_failures=10)

    async def hangs() -> None:
        await asyncio.sleep(10)

    async def times_out_by_itself() -> None:
        raise TimeoutError("the function's own timeout")

    policy = CallPolicy(
        breaker=breaker,
        retry=RetryPolicy(max_attempts=2, backoff="constant", delay=0.0),
        retry_budget=False,
        attempt_timeout=0.02,
    )
    with pytest.raises(DeadlineExceeded):
        asyncio.run(policy.call_async(hangs))
    with pytest.raises(TimeoutError):
        asyncio.run(policy.call_async(times_out_by_itself))
    m = breaker.metrics()
    assert (m.failures, m.ignored, m.in_flight) == (2, 2, 0)


def test_a_cancelled_call_releases_its_permit_and_is_not_retried() -> None:
    breaker = CircuitBreaker()
    attempts = []

    async def slow() -> None:
        attempts.append(1)
        await asyncio.sleep(10)

    async def main() -> None:
        call = CallPolicy(breaker=breaker, retry_budget=False).call_async(slow)
        task = asyncio.ensure_future(call)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert attempts == [1]
    m = breaker.metrics()
    assert (m.ignored, m.in_flight) == (1, 0)


def test_without_a_retry_policy_the_default_one_is_used() -> None:
    calls = []

    def dependency() -> None:
        calls.append(1)
        raise ConnectionError()

    rb = RetryBudget()
    policy = CallPolicy(retry_budget=rb)
    assert policy.breaker is None
    assert policy.retry.max_attempts == 3 and policy.retry.backoff == "decorrelated_jitter"
    with pytest.raises(ConnectionError):
        policy.call(dependency)
    assert len(calls) == 3
    assert rb.metrics().requests == 1 and rb.metrics().retries == 2
    once = CallPolicy(retry=RetryPolicy(max_attempts=1), retry_budget=False)
    calls.clear()
    with pytest.raises(ConnectionError):
        once.call(dependency)
    assert calls == [1]


def test_decorator_budget_and_timeout() -> None:
    policy = CallPolicy(retry=FAST, retry_budget=False, timeout=0.5)
    seen: List[float] = []

    @policy
    def sync_fn(x: int) -> int:
        return x * 2

    @policy
    async def async_fn(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    assert sync_fn(2) == 4 and sync_fn.__name__ == "sync_fn"
    assert asyncio.run(async_fn(2)) == 6

    def hangs() -> None:
        seen.append(time.monotonic())
        time.sleep(0.03)
        raise ConnectionError()

    started = time.monotonic()
    with pytest.raises(ConnectionError):
        CallPolicy(
            retry=RetryPolicy(max_attempts=100, backoff="constant", delay=0.0),
            retry_budget=False,
            timeout=0.1,
        ).call(hangs)
    assert time.monotonic() - started < 0.2
    # A budget given to the call wins over `timeout`.
    with pytest.raises(BudgetExhausted):
        policy.call(lambda: None, budget=Budget(0.001))
    with pytest.raises(TypeError, match="budget must be a Budget"):
        policy.call(lambda: None, budget=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="call_async"):
        policy.call(async_fn)


def test_the_retry_budget_refusal_through_the_policy() -> None:
    rb = RetryBudget(percent=0, min_per_second=0)

    async def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(RetryBudgetExhausted) as info:
        asyncio.run(CallPolicy(retry=FAST, retry_budget=rb).call_async(down))
    assert isinstance(info.value.__cause__, ConnectionError)


def test_the_policy_maximum_bounds_every_attempt() -> None:
    TimeoutPolicy.set_global(TimeoutPolicy(max_timeout=0.05))
    policy = CallPolicy(timeout=3600, attempt_timeout=3600, retry_budget=False)
    assert policy.timeout == 3600 and policy.attempt_timeout == 3600

    async def hangs() -> None:
        await asyncio.sleep(10)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        asyncio.run(policy.call_async(hangs))
    assert time.monotonic() - started < 0.5
    assert info.value.timeout is not None and info.value.timeout <= 0.05


@pytest.mark.parametrize(
    "kwargs,error,word",
    [
        ({"breaker": "b"}, TypeError, "breaker"),
        ({"retry": 3}, TypeError, "retry"),
        ({"retry_budget": 0.2}, TypeError, "retry_budget"),
        ({"attempt_timeout": "1"}, TypeError, "attempt_timeout"),
        ({"attempt_timeout": -1}, InvalidConfigError, "attempt_timeout"),
        ({"attempt_timeout": float("nan")}, InvalidConfigError, "attempt_timeout"),
        ({"timeout": float("inf")}, InvalidConfigError, "timeout"),
        ({"timeout": 86_401}, InvalidConfigError, "timeout"),
    ],
)
def test_bad_settings(kwargs: Any, error: type, word: str) -> None:
    with pytest.raises(error) as info:
        CallPolicy(**kwargs)
    assert str(info.value).startswith(word), str(info.value)
    if isinstance(info.value, InvalidConfigError):
        assert info.value.field == word
