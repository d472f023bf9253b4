"""Type-checked (mypy --strict), not run: the public API as a user would write it, so that the
shipped stubs are checked for what they promise, and mistakes are caught as errors."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Literal, Optional

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


# -- budgets, retries, CallPolicy -------------------------------------------------------------

from seawall import (  # noqa: E402
    Budget,
    BudgetExhausted,
    CallPolicy,
    DeadlineExceeded,
    InvalidHeaderError,
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

policy = TimeoutPolicy(max_timeout=15.0, scale=0.5, min_to_start=0.01)
TimeoutPolicy(10.0)
TimeoutPolicy.set_global(policy)
assert_type(TimeoutPolicy.get_global(), TimeoutPolicy)
assert_type(policy.max_timeout, float)

budget = Budget(2.0, policy=policy, clock=clock)
Budget(1)
assert_type(budget.remaining, float)
assert_type(budget.is_expired, bool)
assert_type(budget.deadline, float)
assert_type(budget.policy, TimeoutPolicy)
assert_type(budget.child(0.5), Budget)
assert_type(budget.timeout_for(), float)
assert_type(budget.timeout_for(1.0), float)
assert_type(budget.check(), float)
assert_type(budget.to_header(), str)
assert_type(budget.to_header("timeout-ms"), str)
assert_type(Budget.from_header("100m"), Budget)
assert_type(Budget.from_header("1500", format="timeout-ms", policy=policy, clock=clock), Budget)


async def budgets() -> None:
    async with Budget(1.0) as b:
        assert_type(b, Budget)
    assert_type(await budget.run(asyncio.sleep(0.1, result=3)), int)
    assert_type(await budget.run(fetch_async, "k"), bytes)
    try:
        await budget.run(fetch_async("k"))
    except DeadlineExceeded as e:
        assert_type(e.timeout, Optional[float])
    except BudgetExhausted as e:
        assert_type(e.remaining, Optional[float])


try:
    Budget.from_header("x")
except InvalidHeaderError as e:
    assert_type(e.reason, Optional[str])

retry_policy = RetryPolicy(
    max_attempts=5,
    backoff="exponential",
    base=0.1,
    cap=2.0,
    multiplier=1.5,
    seed=1,
    retry_on=(ConnectionError, TimeoutError),
    is_retryable=lambda exc: True,
)
RetryPolicy(backoff="constant", delay=0.2, retry_on=ConnectionError)
rb = RetryBudget(percent=20.0, min_per_second=10.0, ttl=10.0, clock=clock)
assert_type(RetryBudget.get_global(), RetryBudget)
assert_type(rb.metrics(), RetryBudgetMetrics)
assert_type(rb.metrics().retries, int)
loop = retry_policy.begin(budget, retry_budget=rb)
retry_policy.begin()
retry_policy.begin(retry_budget=False)
assert_type(loop, RetryLoop)
assert_type(loop.start_attempt(), float)
assert_type(loop.start_attempt(0.5), float)
decision = loop.on_failure(retry_after=1.0)
assert_type(decision, RetryDecision)
assert_type(decision.retry, bool)
assert_type(decision.delay, Optional[float])
assert_type(decision.reason, Optional[seawall.GiveUpReason])
assert_type(retry_policy.should_retry(ValueError()), bool)


@retry
def plain(x: int) -> int:
    return x


@retry(max_attempts=5, backoff="constant", delay=0.1, attempt_timeout=1.0, retry_budget=False)
def configured(x: int) -> str:
    return str(x)


@retry(policy=retry_policy, timeout=5.0)
async def configured_async(x: int) -> bytes:
    return b""


assert_type(plain(1), int)
assert_type(configured(1), str)
assert_type(retry_call(fetch, "a", default=1), str)
assert_type(retry_call(len, "abc", budget=budget), int)
assert_type(retry_policy.call(len, "abc"), int)

call_policy = CallPolicy(
    breaker=breaker,
    retry=retry_policy,
    retry_budget=rb,
    attempt_timeout=0.5,
    timeout=5.0,
)
CallPolicy(retry_budget=False)
assert_type(call_policy.call(fetch, "a", budget=budget), str)


@call_policy
async def guarded(x: int) -> float:
    return 1.0


async def composed() -> None:
    assert_type(await configured_async(1), bytes)
    assert_type(await guarded(1), float)
    assert_type(await call_policy.call_async(fetch_async, "k", budget=budget), bytes)
    assert_type(await retry_call_async(fetch_async, "k"), bytes)
    assert_type(await retry_policy.call_async(fetch_async, "k"), bytes)
    try:
        await guarded(2)
    except RetryBudgetExhausted as e:
        assert_type(e.attempts, Optional[int])


# -- connection pools ---------------------------------------------------------------------------

from seawall import (  # noqa: E402
    ConnectAttemptFailed,
    ConnectFailed,
    ConnectionNotCheckedOut,
    CreateAction,
    DatabaseUnavailable,
    DestroyAction,
    Drained,
    FailAction,
    HandAction,
    Histogram,
    IdleOrder,
    LeakReturned,
    LeakSuspected,
    Lease,
    Pool,
    PoolAction,
    PoolClosed,
    PoolEngine,
    PoolError,
    PoolEvent,
    PoolMetrics,
    PoolOverloaded,
    PoolTimeout,
    SyncPool,
    ValidateAction,
    Waiter,
)


class Connection:
    async def execute(self, query: str) -> None: ...
    def close(self) -> None: ...


async def connect() -> Connection:
    return Connection()


async def check(conn: Connection) -> bool:
    await conn.execute("SELECT 1")
    return True


order: IdleOrder = "fifo"
pool = Pool(
    connect,
    validate=check,
    destroy=lambda c: c.close(),
    is_broken=lambda c: False,
    max_size=20,
    min_idle=2,
    max_waiters=100,
    acquire_timeout=2.0,
    create_timeout=3.0,
    idle_timeout=None,
    max_lifetime=3600.0,
    lifetime_jitter=0.2,
    validate_after=1.0,
    idle_order=order,
    leak_threshold=30.0,
    create_backoff_base=0.1,
    create_backoff_cap=10.0,
    breaker={"consecutive_failures": 3, "open_duration": 10.0, "half_open_calls": 1},
    seed=7,
)
assert_type(pool, Pool[Connection])


@pool.on_leak
def report_leak(event: LeakSuspected | LeakReturned) -> None:
    assert_type(event.stack, Optional[str])


@pool.on_event
def report(event: PoolEvent) -> None:
    if isinstance(event, ConnectAttemptFailed):
        assert_type(event.cause, Optional[BaseException])
    elif isinstance(event, Drained):
        assert_type(event.still_held, tuple[Any, ...])


pool.on_breaker(lambda change: print(change.to_state))
pool.on_connect_failed(lambda failure: print(failure.attempts))
pool.on_drained(lambda drained: print(drained.still_held))


async def use_pool() -> None:
    async with pool.connection(budget=Budget(1.0)) as conn:
        assert_type(conn, Connection)
        await conn.execute("SELECT 1")
    conn = await pool.acquire()
    pool.release(conn, broken=True)
    try:
        await pool.acquire()
    except DatabaseUnavailable as e:
        assert_type(e.retry_after, Optional[float])
        assert_type(e.cause, Optional[BaseException])
    except PoolTimeout as e:
        assert_type(e.oldest_checkout_age, Optional[float])
        assert_type(e.in_use, Optional[int])
    except PoolOverloaded as e:
        assert_type(e.max_waiters, Optional[int])
    except ConnectFailed as e:
        assert_type(e.attempts, Optional[int])
    except PoolClosed:
        pass
    except PoolError as e:
        assert_type(e.message, str)
    try:
        pool.release(conn)
    except ConnectionNotCheckedOut as e:
        assert isinstance(e, ValueError)
    pool.resize(5)
    metrics = pool.metrics()
    assert_type(metrics, PoolMetrics)
    assert_type(metrics.wait_time, Histogram)
    assert_type(metrics.wait_time.p99, float)
    assert_type(metrics.oldest_checkout_age, Optional[float])
    held = await pool.drain(timeout=2.0)
    assert_type(held, list[Connection])
    assert_type(pool.closed, bool)
    async with Pool(connect) as other:
        assert_type(other, Pool[Connection])


sync_pool = SyncPool(lambda: Connection(), max_size=4, validate=lambda c: True)
assert_type(sync_pool, SyncPool[Connection])
with sync_pool.connection() as sync_conn:
    assert_type(sync_conn, Connection)
assert_type(sync_pool.acquire(budget=Budget(1.0)), Connection)
assert_type(sync_pool.drain(), list[Connection])
with SyncPool(lambda: Connection()) as sp:
    assert_type(sp, SyncPool[Connection])

engine = PoolEngine(max_size=2, seed=1)
engine.handle_timeout(0.0)
got = engine.acquire(0.0, Budget(1.0))
if isinstance(got, Lease):
    assert_type(engine.release(got, False, 0.1), bool)
else:
    assert_type(got, Waiter)
    assert_type(engine.cancel(got, 0.1), bool)
action: Optional[PoolAction] = engine.poll_action()
if isinstance(action, CreateAction):
    engine.handle_created(action.slot, 0.2)
elif isinstance(action, ValidateAction):
    engine.handle_validated(action.slot, True, 0.2)
elif isinstance(action, DestroyAction):
    assert_type(action.reason, Literal[
        "broken", "invalid", "idle_timeout", "expired", "resized", "closed",
        "create_timed_out", "stale",
    ])
elif isinstance(action, HandAction):
    assert_type(action.lease, Lease)
elif isinstance(action, FailAction):
    assert_type(action.error, SeawallError)
assert_type(engine.poll_timeout(), Optional[float])
assert_type(engine.poll_event(), Optional[PoolEvent])
assert_type(engine.metrics(0.3), PoolMetrics)
engine.drain(0.3, 1.0)
assert_type(engine.is_closed, bool)
