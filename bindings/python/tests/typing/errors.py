"""Type-checked, not run: every call below is a mistake the stubs must reject. Each carries a
`type: ignore[code]`; mypy --strict (warn_unused_ignores) fails if a stub change stops
rejecting one of them."""

from seawall import CircuitBreaker

breaker = CircuitBreaker()
CircuitBreaker(window="sliding")  # type: ignore[arg-type]
CircuitBreaker(failure_rate_threshold="50")  # type: ignore[arg-type]
CircuitBreaker(50.0)  # type: ignore[call-arg]
breaker.restore(42)  # type: ignore[arg-type]
breaker.on_state_change(42)  # type: ignore[arg-type]


@breaker
def f(x: int) -> int:
    return x


f("1")  # type: ignore[arg-type]
breaker.call(f, "1")  # type: ignore[arg-type]

from seawall import Budget, CallPolicy, RetryPolicy, TimeoutPolicy, retry  # noqa: E402

Budget("2")  # type: ignore[arg-type]
Budget(2.0, policy=15.0)  # type: ignore[arg-type]
Budget(2.0).to_header("seconds")  # type: ignore[arg-type]
Budget.from_header(b"100m")  # type: ignore[arg-type]
TimeoutPolicy(scale="0.5")  # type: ignore[arg-type]
RetryPolicy(backoff="linear")  # type: ignore[arg-type]
RetryPolicy(3)  # type: ignore[call-arg]
retry(max_atempts=3)  # type: ignore[call-overload]
CallPolicy(retry=3)  # type: ignore[arg-type]
TimeoutPolicy.set_global(None)  # type: ignore[arg-type]

from seawall import Lease, Pool, PoolEngine, SyncPool  # noqa: E402


def make() -> int:
    return 1


async def amake() -> str:
    return ""


Pool(make)  # type: ignore[arg-type]
Pool(amake, idle_order="random")  # type: ignore[arg-type]
Pool(amake, max_size="10")  # type: ignore[arg-type]
Pool(amake, max_waiters=None)  # type: ignore[arg-type]
SyncPool(make, breaker=5)  # type: ignore[arg-type]
SyncPool(make).release("not an int")  # type: ignore[arg-type]
PoolEngine(max_size=2).acquire(now=0.0, budget=1.0)  # type: ignore[arg-type]
PoolEngine().release(Lease(1, 2), now=0.0)  # type: ignore[call-arg]
