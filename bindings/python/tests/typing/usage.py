"""Type-checked (mypy --strict), not run: the public API as a user would write it, so that the
shipped stubs are checked for what they promise, and mistakes are caught as errors."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional

from typing_extensions import assert_type

import seawall
from seawall import (
    CircuitBreaker,
    CircuitOpenError,
    InvalidConfigError,
    ManualClock,
    Metrics,
    Permit,
    Rejection,
    SeawallError,
    SnapshotError,
    StateChange,
)

clock = ManualClock(0.0)
breaker = CircuitBreaker(
    failure_rate_threshold=50.0,
    slow_call_duration=2.0,
    window="time",
    window_duration=60.0,
    window_buckets=12,
    minimum_calls=10,
    consecutive_failures=5,
    open_duration=30.0,
    backoff="exponential",
    backoff_multiplier=2.0,
    max_open_duration=600.0,
    backoff_jitter=0.1,
    half_open_calls=3,
    max_half_open_duration=None,
    seed=1,
    exclude=(KeyError, LookupError),
    is_failure=lambda exc: not isinstance(exc, ValueError),
    is_result_failure=lambda result: result is None,
    clock=clock,
    name="db",
)
CircuitBreaker(exclude=ValueError)
CircuitBreaker(exclude=lambda exc: isinstance(exc, TimeoutError))
CircuitBreaker(clock=lambda: 1.0)


@breaker
def fetch(key: str, *, default: int = 0) -> str:
    return key * default


@breaker
async def fetch_async(key: str) -> bytes:
    await asyncio.sleep(0)
    return key.encode()


assert_type(fetch("a", default=2), str)
assert_type(breaker.call(fetch, "a", default=1), str)
assert_type(breaker.call(len, "abc"), int)


async def main() -> None:
    assert_type(await fetch_async("a"), bytes)
    assert_type(await breaker.call_async(fetch_async, "b"), bytes)
    async with breaker as b:
        assert_type(b, CircuitBreaker)
    with breaker:
        pass


permit = breaker.try_acquire()
assert_type(permit, Permit)
permit.success()
permit.failure()
permit.ignore()
assert_type(permit.recorded, bool)
with breaker.try_acquire() as p:
    assert_type(p, Permit)

try:
    fetch("x")
except CircuitOpenError as e:
    assert_type(e.retry_after, Optional[float])
    assert_type(e.reason, seawall.RejectionReason)
except InvalidConfigError as e:
    assert_type(e.field, str)
except (SnapshotError, SeawallError):
    pass


@breaker.on_state_change
def on_change(change: StateChange) -> None:
    assert_type(change.from_state, seawall.State)
    assert_type(change.reason, seawall.TransitionReason)


@breaker.on_reject
def on_reject(rejection: Rejection) -> None:
    assert_type(rejection.retry_after, Optional[float])


assert_type(breaker.state, seawall.State)
m = breaker.metrics()
assert_type(m, Metrics)
assert_type(m.failure_rate, float)
assert_type(m.in_flight, int)
assert_type(m.as_dict(), Dict[str, Any])
breaker.force_open()
breaker.disable()
breaker.metrics_only()
breaker.reset()
snapshot = breaker.snapshot()
assert_type(snapshot, Dict[str, Any])
breaker.restore(snapshot)
breaker.restore(breaker.to_json())
clock.advance(1.5)
clock.set(10.0)
assert_type(clock(), float)
assert_type(breaker.name, Optional[str])
