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
