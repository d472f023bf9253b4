"""Deadline budgets, header propagation and a CallPolicy (budget → retry → breaker → per-attempt
timeout) against a simulated flaky service, in real time with short timers.

Run it (after `bash bindings/python/scripts/test.sh`, which installs `seawall` into .venv):

    .venv/bin/python examples/python/budget.py

A gateway gives each request a 0.5 s budget and passes what is left to a backend in a
`grpc-timeout` header; the backend rebuilds the deadline from the header and calls a flaky
dependency through a CallPolicy: each attempt gets at most 150 ms, failures are retried with
jittered backoff while the budget allows, and a circuit breaker stops calling the dependency
once it is clearly down, its `retry_after` telling the retry loop how long to wait. The whole
run takes about two seconds.
"""

from __future__ import annotations

import asyncio
import random
import time

from seawall import (
    Budget,
    BudgetExhausted,
    CallPolicy,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceeded,
    RetryBudget,
    RetryPolicy,
    StateChange,
    TimeoutPolicy,
)

random.seed(7)
started = time.monotonic()


def now() -> str:
    return f"{time.monotonic() - started:5.2f}s"


class Unavailable(Exception):
    """The dependency answered with an error (a 503, say)."""


class FlakyDependency:
    """Healthy, then hanging or failing for a while (an "outage"), then healthy again."""

    def __init__(self) -> None:
        self.calls = 0
        self.outage = False

    async def get(self, key: str) -> str:
        self.calls += 1
        if self.outage:
            if random.random() < 0.3:
                await asyncio.sleep(10)  # hangs: only a deadline gets the caller out
            raise Unavailable(key)
        await asyncio.sleep(0.01)
        if random.random() < 0.1:
            raise Unavailable(key)  # the odd transient error, worth a retry
        return f"value of {key}"


dependency = FlakyDependency()
breaker = CircuitBreaker(
    name="dependency",
    window_size=10,
    minimum_calls=6,
    failure_rate_threshold=50.0,
    open_duration=0.2,
    half_open_calls=1,
)


@breaker.on_state_change
def log_change(change: StateChange) -> None:
    print(f"  [{now()}] breaker: {change.from_state} -> {change.to_state} ({change.reason})")


# One retry budget per dependency: retries may add 20 % of the requests (plus a small floor)
# however many requests retry at once.
dependency_retries = RetryBudget(percent=20.0, min_per_second=5.0, ttl=10.0)
call_dependency = CallPolicy(
    breaker=breaker,
    retry=RetryPolicy(max_attempts=4, backoff="decorrelated_jitter", base=0.02, cap=0.2),
    retry_budget=dependency_retries,
    attempt_timeout=0.15,
)


async def backend(key: str, headers: dict[str, str]) -> str:
    """The backend: its deadline is the caller's, read from the header."""
    budget = Budget.from_header(headers["grpc-timeout"])
    return await call_dependency.call_async(dependency.get, key, budget=budget)


async def gateway(key: str) -> str:
    """The gateway: 0.5 s for the whole request, passed downstream."""
    budget = Budget(0.5)
    headers = {"grpc-timeout": budget.to_header()}
    try:
        async with budget:  # the gateway's own work is cancelled at the deadline too
            return await backend(key, headers)
    except DeadlineExceeded:
        return "timed out"
    except CircuitOpenError as e:
        return f"rejected: dependency down, retry after {e.retry_after or 0:.2f}s"
    except BudgetExhausted:
        return "no time left to try"
    except Unavailable:
        return "failed after retries"


async def main() -> None:
    print("1. a budget and its derived timeouts")
    b = Budget(2.0)
    print(f"   remaining {b.remaining:.3f}s, a call capped at 0.5s gets {b.timeout_for(0.5):.3f}s")
    print(f"   headers: grpc-timeout={b.to_header()!r} timeout-ms={b.to_header('timeout-ms')!r}")
    print(f"   a 1 h request is capped by the policy: {Budget(3600).remaining:.1f}s")
    received = Budget.from_header("250m")
    print(f"   decoded '250m' downstream: {received.remaining:.3f}s left")

    print("\n2. requests through gateway -> backend -> CallPolicy -> dependency")
    for i in range(12):
        if i == 4:
            dependency.outage = True
            print(f"  [{now()}] --- the dependency goes down ---")
        if i == 8:
            dependency.outage = False
            print(f"  [{now()}] --- the dependency recovers ---")
        result = await gateway(f"k{i}")
        print(f"  [{now()}] request {i:2}: {result}")

    print("\n3. incident mode: every timeout halved at run time")
    TimeoutPolicy.set_global(TimeoutPolicy(max_timeout=15.0, scale=0.5))
    print(f"   Budget(1.0) now lasts {Budget(1.0).remaining:.2f}s")
    TimeoutPolicy.set_global(TimeoutPolicy())

    m = breaker.metrics()
    r = dependency_retries.metrics()
    print(
        f"\ndependency called {dependency.calls} times; breaker: {m.successes} ok, "
        f"{m.failures} failed, {m.rejected} rejected; retry budget: {r.retries} retries "
        f"of {r.allowed} allowed for {r.requests} requests"
    )
    assert asyncio.all_tasks() == {asyncio.current_task()}, "nothing left running"


if __name__ == "__main__":
    asyncio.run(main())
