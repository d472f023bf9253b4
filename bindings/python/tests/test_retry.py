"""The Python API of retries: RetryPolicy, RetryBudget (and the process-wide one), the low-level
RetryLoop, and the helpers (``@retry``, ``retry_call``, ``retry_call_async``,
``RetryPolicy.call``) on sync and async functions.

Tests that are not about the process-wide retry budget pass their own (or none), so that the
order tests run in cannot change what the shared one allows.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest

from seawall import (
    Budget,
    BudgetExhausted,
    DeadlineExceeded,
    InvalidConfigError,
    ManualClock,
    RetryBudget,
    RetryBudgetExhausted,
    RetryBudgetMetrics,
    RetryDecision,
    RetryLoop,
    RetryPolicy,
    TimeoutPolicy,
    retry,
    retry_call,
    retry_call_async,
)
from seawall._native import retry_defaults

# No waiting between attempts: these tests are about decisions, not backoff.
FAST: Dict[str, Any] = {"backoff": "constant", "delay": 0.0}


@pytest.fixture(autouse=True)
def restore_global_policy() -> Iterator[None]:
    before = TimeoutPolicy.get_global()
    yield
    TimeoutPolicy.set_global(before)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``"ok"``; counts its calls."""

    def __init__(self, failures: int, error: Optional[BaseException] = None) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        self.args = (args, kwargs)
        if self.calls <= self.failures:
            raise self.error if self.error is not None else ConnectionError(self.calls)
        return "ok"

    async def run_async(self, *args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return self(*args, **kwargs)


class HintedError(Exception):
    def __init__(self, retry_after: Any) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


# -- RetryPolicy ---------------------------------------------------------------------------


def test_policy_defaults_are_the_cores() -> None:
    p = RetryPolicy()
    d = retry_defaults()
    assert (p.max_attempts, p.backoff, p.base, p.cap, p.seed) == (
        d["max_attempts"],
        d["backoff"],
        d["base"],
        d["cap"],
        d["seed"],
    )
    assert (p.max_attempts, p.backoff, p.base, p.cap) == (3, "decorrelated_jitter", 0.1, 5.0)
    assert p.delay is None and p.multiplier is None
    assert p.retry_on == (Exception,) and p.is_retryable is None
    rb = RetryBudget()
    assert (rb.percent, rb.min_per_second, rb.ttl) == (
        d["percent"],
        d["min_per_second"],
        d["ttl"],
    )
    assert (rb.percent, rb.min_per_second, rb.ttl) == (20.0, 10.0, 10.0)


def test_policy_attributes_per_backoff() -> None:
    c = RetryPolicy(backoff="constant", delay=0.25, max_attempts=5, seed=7)
    assert (c.backoff, c.delay, c.base, c.cap, c.multiplier, c.seed) == (
        "constant",
        0.25,
        None,
        None,
        None,
        7,
    )
    e = RetryPolicy(backoff="exponential", base=0.2, cap=1.0, multiplier=1.5)
    assert (e.base, e.cap, e.multiplier, e.delay) == (0.2, 1.0, 1.5, None)
    assert "exponential" in repr(e)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": float("nan")}, "max_attempts"),
        ({"max_attempts": 10**40}, "max_attempts"),
        ({"backoff": "linear"}, "backoff"),
        ({"backoff": "constant", "delay": -0.1}, "delay"),
        ({"backoff": "constant", "delay": float("nan")}, "delay"),
        ({"backoff": "constant", "delay": 86_401}, "delay"),
        ({"backoff": "exponential", "delay": 1.0}, "delay"),
        ({"delay": 1.0}, "delay"),
        ({"base": -1}, "base"),
        ({"cap": float("inf")}, "cap"),
        ({"base": 2.0, "cap": 1.0}, "cap"),
        ({"backoff": "exponential", "multiplier": 0.5}, "multiplier"),
        ({"backoff": "exponential", "multiplier": 101}, "multiplier"),
        ({"backoff": "exponential", "multiplier": float("nan")}, "multiplier"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
    ],
)
def test_policy_range_errors_name_the_keyword(kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        RetryPolicy(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field} must be "), str(info.value)


def test_max_attempts_messages_give_the_cores_range() -> None:
    with pytest.raises(InvalidConfigError) as info:
        RetryPolicy(max_attempts=2.5)
    assert str(info.value) == "max_attempts must be an integer in [1, 100], got 2.5"
    with pytest.raises(InvalidConfigError) as info:
        RetryPolicy(max_attempts=0)
    assert str(info.value) == "max_attempts must be an integer in [1, 100], got 0"


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": None}, "max_attempts"),
        ({"backoff": 1}, "backoff"),
        ({"backoff": "constant"}, "delay"),
        ({"backoff": "constant", "delay": "1"}, "delay"),
        ({"base": "0.1"}, "base"),
        ({"backoff": "exponential", "multiplier": "2"}, "multiplier"),
        ({"seed": "1"}, "seed"),
        ({"retry_on": "ValueError"}, "retry_on"),
        ({"retry_on": (ValueError, "KeyError")}, "retry_on"),
        ({"retry_on": (int,)}, "retry_on"),
        ({"is_retryable": True}, "is_retryable"),
    ],
)
def test_policy_type_errors_name_the_keyword(kwargs: Any, word: str) -> None:
    with pytest.raises(TypeError) as info:
        RetryPolicy(**kwargs)
    assert word in str(info.value)


def test_which_failures_are_retried() -> None:
    p = RetryPolicy()
    assert p.should_retry(ConnectionError())
    assert p.should_retry(DeadlineExceeded())
    assert not p.should_retry(BudgetExhausted())
    assert not p.should_retry(RetryBudgetExhausted())
    assert not p.should_retry(KeyboardInterrupt())
    assert not p.should_retry(asyncio.CancelledError())
    narrow = RetryPolicy(retry_on=(ConnectionError, TimeoutError))
    assert narrow.should_retry(ConnectionResetError())
    assert not narrow.should_retry(ValueError())
    picky = RetryPolicy(retry_on=OSError, is_retryable=lambda e: "transient" in str(e))
    assert picky.should_retry(OSError("transient"))
    assert not picky.should_retry(OSError("fatal"))
    assert not picky.should_retry(ValueError("transient"))
    everything = RetryPolicy(retry_on=BaseException)
    assert not everything.should_retry(KeyboardInterrupt()), "BaseExceptions never"
    assert not everything.should_retry(BudgetExhausted())


# -- RetryBudget ---------------------------------------------------------------------------


def test_retry_budget_validation() -> None:
    for kwargs, field in [
        ({"percent": -1}, "percent"),
        ({"percent": 1001}, "percent"),
        ({"percent": float("nan")}, "percent"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"min_per_second": 100_001}, "min_per_second"),
        ({"ttl": 0.5}, "ttl"),
        ({"ttl": 3601}, "ttl"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
    ]:
        with pytest.raises(InvalidConfigError) as info:
            RetryBudget(**kwargs)
        assert info.value.field == field, kwargs
        assert str(info.value).startswith(f"{field} must be "), str(info.value)
    for kwargs in [{"percent": "20"}, {"ttl": None}, {"clock": 5}, {"min_per_second": True}]:
        with pytest.raises(TypeError):
            RetryBudget(**kwargs)


def test_retry_budget_counts_requests_and_retries_over_its_window() -> None:
    clock = ManualClock()
    rb = RetryBudget(percent=50, min_per_second=0, ttl=10, clock=clock)
    policy = RetryPolicy(max_attempts=2, **FAST)
    decisions = []
    for _ in range(4):
        loop = policy.begin(Budget(1.0, clock=clock), retry_budget=rb)
        loop.start_attempt()
        decisions.append(loop.on_failure())
    assert [d.retry for d in decisions] == [False, True, False, True]
    assert decisions[0].reason == "retry_budget_exhausted"
    assert rb.metrics() == RetryBudgetMetrics(requests=4, retries=2, allowed=2)
    clock.advance(10)
    assert rb.metrics() == (0, 0, 0)
    assert "requests=0" in repr(rb)


def test_the_global_retry_budget_is_one_object_with_the_defaults() -> None:
    g = RetryBudget.get_global()
    assert g is RetryBudget.get_global()
    assert (g.percent, g.min_per_second, g.ttl) == (20.0, 10.0, 10.0)
    before = g.metrics().requests
    loop = RetryPolicy().begin(Budget(1.0))
    assert loop.retry_budget is g, "the default"
    loop.start_attempt()
    assert g.metrics().requests == before + 1
    assert RetryPolicy().begin(retry_budget=False).retry_budget is None
    with pytest.raises(TypeError, match="retry_budget"):
        RetryPolicy().begin(retry_budget=True)


# -- RetryLoop -----------------------------------------------------------------------------


def test_the_loop_on_a_manual_clock() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=3, backoff="exponential", base=0.1, cap=1.0)
    loop = policy.begin(Budget(1.0, clock=clock), retry_budget=False)
    assert isinstance(loop, RetryLoop) and loop.policy is policy and loop.attempts == 0
    assert loop.start_attempt() == pytest.approx(1.0)
    assert loop.start_attempt(0.25) == pytest.approx(0.25)
    assert loop.attempts == 2
    assert loop.on_failure() == RetryDecision(True, pytest.approx(0.2), None)
    clock.advance(0.2)
    loop.start_attempt()
    assert loop.on_failure() == RetryDecision(False, None, "attempts_exhausted")


def test_the_loop_honours_hints_and_the_deadline() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=5, **FAST)
    loop = policy.begin(Budget(1.0, clock=clock), retry_budget=False)
    loop.start_attempt()
    assert loop.on_failure(retry_after=0.5) == (True, 0.5, None)
    clock.advance(0.5)
    loop.start_attempt()
    assert loop.on_failure(retry_after=0.5) == (False, None, "retry_after_beyond_budget")
    clock.advance(0.495)
    with pytest.raises(BudgetExhausted):
        loop.start_attempt()
    with pytest.raises(InvalidConfigError, match="retry_after"):
        loop.on_failure(retry_after=-1)
    with pytest.raises(TypeError, match="retry_after"):
        loop.on_failure(retry_after="soon")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="cap"):
        loop.start_attempt(float("nan"))


def test_the_loop_works_across_clocks() -> None:
    # A manual-clock budget with a retry budget on another clock: decisions use each one's.
    budget_clock = ManualClock(5.0)
    rb = RetryBudget(percent=0, min_per_second=1, ttl=1, clock=ManualClock(1000.0))
    loop = RetryPolicy(max_attempts=3, **FAST).begin(
        Budget(1.0, clock=budget_clock), retry_budget=rb
    )
    assert loop.start_attempt() == pytest.approx(1.0)
    assert loop.on_failure().retry
    budget_clock.advance(0.9)
    assert loop.start_attempt() == pytest.approx(0.1)
    assert loop.on_failure() == (False, None, "retry_budget_exhausted")
    assert rb.metrics() == (1, 1, 1)
    # And with the default retry budget (the core's clock) under a manual-clock budget.
    loop = RetryPolicy(**FAST).begin(Budget(1.0, clock=budget_clock))
    assert loop.start_attempt() == pytest.approx(1.0)
    budget_clock.advance(0.995)
    assert loop.on_failure() == (False, None, "budget_exhausted")


def test_jitter_is_reproducible_with_a_seed() -> None:
    def delays(seed: int) -> List[float]:
        loop = RetryPolicy(max_attempts=10, seed=seed).begin(
            Budget(15.0, clock=ManualClock()), retry_budget=False
        )
        out = []
        for _ in range(9):
            loop.start_attempt()
            d = loop.on_failure()
            assert d.delay is not None and 0.1 <= d.delay <= 5.0
            out.append(d.delay)
        return out

    assert delays(3) == delays(3)
    assert delays(3) != delays(4)


# -- the helpers ---------------------------------------------------------------------------


def test_retry_decorator_on_sync_functions() -> None:
    flaky = Flaky(2)

    @retry(max_attempts=3, retry_budget=False, **FAST)
    def fetch(x: int, *, y: int = 0) -> str:
        """Doc."""
        return flaky(x, y=y)

    assert fetch(1, y=2) == "ok"
    assert flaky.calls == 3 and flaky.args == ((1,), {"y": 2})
    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Doc."

    always = Flaky(100)
    with pytest.raises(ConnectionError) as info:
        retry(policy=RetryPolicy(max_attempts=4, **FAST), retry_budget=False)(always)()
    assert always.calls == 4
    assert str(info.value) == "4", "the last failure is raised"


def test_bare_retry_decorator_and_conflicting_options() -> None:
    flaky = Flaky(1)

    @retry
    def fetch() -> str:
        return flaky()

    assert fetch() == "ok" and flaky.calls == 2
    with pytest.raises(TypeError, match="either policy= or RetryPolicy keywords"):
        retry(policy=RetryPolicy(), max_attempts=2)
    with pytest.raises(TypeError, match="max_atempts"):
        retry(max_atempts=2)
    with pytest.raises(TypeError, match="policy must be a RetryPolicy"):
        retry(policy=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):

        @retry
        def gen() -> Iterator[int]:
            yield 1


def test_retry_decorator_on_async_functions() -> None:
    flaky = Flaky(2)

    @retry(max_attempts=3, retry_budget=False, **FAST)
    async def fetch(x: int) -> str:
        return await flaky.run_async(x)

    assert asyncio.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(5)) == "ok"
    assert flaky.calls == 3


def test_not_retryable_failures_are_raised_at_once() -> None:
    for error in (ValueError("bad request"), BudgetExhausted("x")):
        flaky = Flaky(5, error)
        with pytest.raises(type(error)):
            RetryPolicy(retry_on=(ConnectionError, BudgetExhausted), **FAST).call(flaky)
        assert flaky.calls == 1, error
    interrupted = Flaky(5, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        retry_call(interrupted)
    assert interrupted.calls == 1


def test_retry_call_and_retry_call_async() -> None:
    flaky = Flaky(1)
    assert retry_call(flaky, 1, key="v") == "ok"
    assert flaky.args == ((1,), {"key": "v"})
    flaky = Flaky(1)
    assert asyncio.run(retry_call_async(flaky.run_async, 2)) == "ok"
    assert flaky.calls == 2
    with pytest.raises(TypeError, match="call_async"):
        retry_call(flaky.run_async)
    flaky = Flaky(2)
    assert RetryPolicy(max_attempts=3, **FAST).call(flaky) == "ok"
    flaky = Flaky(2)
    policy = RetryPolicy(max_attempts=3, **FAST)
    assert asyncio.run(policy.call_async(flaky.run_async)) == "ok"


def test_the_last_error_is_raised_when_the_budget_runs_out() -> None:
    # Sync attempts cannot be interrupted, but none starts once the budget cannot fit it.
    calls: List[float] = []

    def slow() -> None:
        calls.append(time.monotonic())
        time.sleep(0.03)
        raise ConnectionError(len(calls))

    started = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        RetryPolicy(max_attempts=100, **FAST).call(slow, budget=Budget(0.1))
    elapsed = time.monotonic() - started
    assert 2 <= len(calls) <= 4, calls
    assert elapsed < 0.2, elapsed
    assert str(info.value) == str(len(calls))
    # A budget too small for even one attempt: BudgetExhausted, and the function never runs.
    never = Flaky(0)
    with pytest.raises(BudgetExhausted):
        retry_call(never, budget=Budget(0.001))
    assert never.calls == 0


def test_async_attempts_are_cancelled_at_the_attempt_timeout_and_retried() -> None:
    attempts: List[str] = []

    async def hangs_then_answers() -> str:
        attempts.append("started")
        if len(attempts) < 3:
            await asyncio.sleep(10)
        return "answer"

    async def main() -> str:
        started = time.monotonic()
        result = await retry(
            max_attempts=3, attempt_timeout=0.02, retry_budget=False, **FAST
        )(hangs_then_answers)()
        assert time.monotonic() - started < 0.5
        return str(result)

    assert asyncio.run(main()) == "answer"
    assert len(attempts) == 3

    async def always_hangs() -> None:
        await asyncio.sleep(10)

    with pytest.raises(DeadlineExceeded):
        asyncio.run(
            retry(max_attempts=2, attempt_timeout=0.02, retry_budget=False, **FAST)(always_hangs)()
        )


def test_hints_from_the_exception_replace_the_backoff() -> None:
    flaky = Flaky(1, HintedError(0.05))
    started = time.monotonic()
    assert RetryPolicy(backoff="constant", delay=0.0).call(flaky) == "ok"
    assert time.monotonic() - started >= 0.045, "waited for the hint, not the 0 s backoff"
    # A hint that does not fit the budget ends the retries with the last error.
    flaky = Flaky(5, HintedError(5.0))
    with pytest.raises(HintedError):
        RetryPolicy(**FAST).call(flaky, budget=Budget(1.0))
    assert flaky.calls == 1
    # Hints that are not a number of seconds are ignored: the backoff applies.
    for odd in (-1, float("nan"), float("inf"), "5", True, None):
        flaky = Flaky(1, HintedError(odd))
        assert RetryPolicy(**FAST).call(flaky) == "ok", odd


def test_a_hint_beyond_24_hours_is_beyond_any_budget() -> None:
    for huge in (10**6, 1e300, 10**400):
        flaky = Flaky(5, HintedError(huge))
        with pytest.raises(HintedError):
            RetryPolicy(**FAST).call(flaky)
        assert flaky.calls == 1, huge


def test_the_retry_budget_refusal_is_its_own_error() -> None:
    clock = ManualClock()
    rb = RetryBudget(percent=0, min_per_second=0, clock=clock)
    always = Flaky(100)
    with pytest.raises(RetryBudgetExhausted) as info:
        retry(retry_budget=rb, **FAST)(always)()
    assert always.calls == 1
    assert isinstance(info.value.__cause__, ConnectionError)
    assert info.value.attempts == 1
    assert "retry budget" in str(info.value)


def test_the_default_budget_is_the_policy_maximum() -> None:
    TimeoutPolicy.set_global(TimeoutPolicy(max_timeout=0.1))
    calls: List[float] = []

    def slow() -> None:
        calls.append(time.monotonic())
        time.sleep(0.02)
        raise ConnectionError()

    started = time.monotonic()
    with pytest.raises(ConnectionError):
        RetryPolicy(max_attempts=100, **FAST).call(slow)
    assert time.monotonic() - started < 0.2
    assert 3 <= len(calls) <= 6, len(calls)
    loop = RetryPolicy().begin(retry_budget=False)
    assert loop.budget.remaining <= 0.1
    assert loop.start_attempt(3600) <= 0.1, "no attempt timeout above the maximum"


STORM = textwrap.dedent(
    """
    import asyncio
    from seawall import RetryBudget, RetryPolicy, retry

    calls = 0

    @retry(max_attempts=5, backoff="constant", delay=0.0)
    async def always_fails():
        global calls
        calls += 1
        raise ConnectionError("down")

    async def main():
        failures = 0
        for _ in range(1000):
            try:
                await always_fails()
            except Exception:
                failures += 1
        m = RetryBudget.get_global().metrics()
        print(calls, failures, m.requests, m.retries, m.allowed)

    asyncio.run(main())
    """
)


def test_the_default_retry_budget_stops_a_storm(tmp_path: Any) -> None:
    # In a fresh process, so the shared budget starts empty and this test does not drain it
    # for the others. 1000 calls that always fail, 5 attempts each: without a retry budget
    # that is 5000 calls; the default allows 20 % of 1000 plus 10/s over 10 s = 300 retries.
    script = tmp_path / "storm.py"
    script.write_text(STORM, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    calls, failures, requests, retries, allowed = map(int, proc.stdout.split())
    assert failures == 1000
    assert requests == 1000
    assert allowed == 300
    assert retries == 300
    assert calls == 1300, "every call made at most its share of retries"


def test_the_literal_aliases_list_every_value() -> None:
    import typing

    import seawall

    assert set(typing.get_args(seawall.BackoffKind)) == {
        RetryPolicy(backoff=kind, delay=0.1 if kind == "constant" else None).backoff
        for kind in ("constant", "exponential", "decorrelated_jitter")
    }
    reasons = set()
    clock = ManualClock()
    for kwargs, hint, advance, rb in [
        ({"max_attempts": 1}, None, 0.0, False),
        ({}, None, 0.995, False),
        ({}, 5.0, 0.0, False),
        ({}, None, 0.0, RetryBudget(percent=0, min_per_second=0, clock=clock)),
    ]:
        loop = RetryPolicy(**kwargs).begin(Budget(1.0, clock=clock), retry_budget=rb)
        loop.start_attempt()
        clock.advance(advance)
        reasons.add(loop.on_failure(hint).reason)
    assert reasons == set(typing.get_args(seawall.GiveUpReason))
