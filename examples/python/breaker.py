"""A circuit breaker protecting a flaky dependency, in simulated time.

Run it (after `bash bindings/python/scripts/test.sh`, which installs `seawall` into .venv):

    .venv/bin/python examples/python/breaker.py

A simulated service fails every call between t=2 s and t=9 s. The breaker opens on the failure
rate, rejects calls at once while open (with `retry_after`), probes the service after
`open_duration`, and closes again once the probes succeed. Time is a ManualClock, so the whole
timeline runs instantly; with the default clock the same code runs on real time.
"""

from __future__ import annotations

import asyncio

from seawall import CircuitBreaker, CircuitOpenError, ManualClock, Rejection, StateChange

clock = ManualClock()


class ServiceDown(Exception):
    pass


class NotFound(Exception):
    """A client error: says nothing about the service's health, so it is excluded."""


breaker = CircuitBreaker(
    name="inventory",
    window_size=10,
    minimum_calls=5,
    failure_rate_threshold=50.0,
    slow_call_duration=0.5,
    open_duration=3.0,
    half_open_calls=2,
    exclude=(NotFound,),
    clock=clock,
)


@breaker.on_state_change
def log_change(change: StateChange) -> None:
    # Listeners run after the breaker's decision, during the call that caused the change.
    print(f"           state: {change.from_state} -> {change.to_state} ({change.reason})")


rejections: list[Rejection] = []
breaker.on_reject(rejections.append)


@breaker
async def fetch_stock(item: str) -> int:
    """Calls the (simulated) inventory service."""
    await asyncio.sleep(0)  # a real client would await the network here
    latency = 0.05
    clock.advance(latency)
    if 2.0 <= clock() < 9.0:
        raise ServiceDown(f"inventory unavailable at t={clock():.1f}s")
    if item == "unknown":
        raise NotFound(item)
    return 42


async def main() -> None:
    print("timeline (one request every 0.5 s of simulated time):")
    for _ in range(28):
        t = clock()
        try:
            stock = await fetch_stock("widget")
            print(f"  t={t:4.1f}s  ok: {stock} in stock")
        except ServiceDown:
            print(f"  t={t:4.1f}s  failed: service down")
        except CircuitOpenError as e:
            wait = "?" if e.retry_after is None else f"{e.retry_after:.2f}s"
            print(f"  t={t:4.1f}s  rejected at once ({e.reason}), retry after {wait}")
        clock.set(t + 0.5)

    # A client error is excluded: neither a success nor a failure.
    try:
        await fetch_stock("unknown")
    except NotFound:
        pass

    print(f"\n{len(rejections)} calls were rejected without touching the service")
    m = breaker.metrics()
    print("metrics:")
    for key, value in m.as_dict().items():
        print(f"  {key:22} {value}")


if __name__ == "__main__":
    asyncio.run(main())
