"""Bad input to budgets, retries and CallPolicy gives a clear TypeError or ValueError naming the
keyword, never a crash: negative, NaN, infinite and huge timeouts, scale outside (0, 1],
malformed headers, values of the wrong type."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List

import pytest

from seawall import (
    Budget,
    CallPolicy,
    InvalidConfigError,
    InvalidHeaderError,
    ManualClock,
    RetryBudget,
    RetryPolicy,
    TimeoutPolicy,
)

NAN = float("nan")
INF = float("inf")

ODD: List[Any] = [
    NAN, INF, -INF, -0.0, -1, -1e-12, 0, 1e-12, 86_400, 86_400.000001, 2**63, -(2**63),
    10**100, 1.7976931348623157e308, True, None, "1", b"1", object(), (), {}, complex(1, 1),
]


@pytest.mark.parametrize("timeout", [-1, -0.001, NAN, INF, -INF, 86_401, 1e300, 10**40])
def test_budget_timeouts_out_of_range(timeout: float) -> None:
    with pytest.raises(InvalidConfigError) as info:
        Budget(timeout)
    assert info.value.field == "timeout"
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("timeout must be a duration between 0 and 24 h, got ")


@pytest.mark.parametrize("timeout", ["2", b"2", None, True, [2], object()])
def test_budget_timeouts_of_the_wrong_type(timeout: Any) -> None:
    with pytest.raises(TypeError) as info:
        Budget(timeout)
    assert str(info.value).startswith("timeout must be a number, got ")


@pytest.mark.parametrize("scale", [0, -0.5, 1.0000001, 2, NAN, INF, -INF])
def test_scale_outside_zero_one(scale: float) -> None:
    with pytest.raises(InvalidConfigError) as info:
        TimeoutPolicy(scale=scale)
    assert info.value.field == "scale"
    assert str(info.value).startswith("scale must be a factor in (0, 1], got ")


@pytest.mark.parametrize(
    "value",
    ["", " ", "S", "1", "1s", "1h", "1.0S", "+1S", "-1S", "0x10S", "1_000m", "1 S", "\u0665S",
     "123456789S", "1S1", "\x00", "😀", "1\nS", "S1"],
)
def test_malformed_grpc_timeouts(value: str) -> None:
    with pytest.raises(InvalidHeaderError) as info:
        Budget.from_header(value)
    assert isinstance(info.value, ValueError)
    assert "grpc-timeout" in str(info.value)


@pytest.mark.parametrize(
    "value", ["", " ", "1.0", "-1", "+1", "1e3", "1000ms", "0x10", "1 000", "\u0665", "9" * 16]
)
def test_malformed_millisecond_timeouts(value: str) -> None:
    with pytest.raises(InvalidHeaderError) as info:
        Budget.from_header(value, format="timeout-ms")
    assert "timeout-ms" in str(info.value)


def sweep(keyword: str, build: Callable[[Any], Any]) -> None:
    """Every odd value is accepted or refused with TypeError / ValueError naming ``keyword``."""
    for value in ODD:
        try:
            build(value)
        except (TypeError, ValueError) as e:
            assert keyword in str(e), f"{keyword}={value!r}: {e}"
        else:
            assert not (isinstance(value, float) and math.isnan(value)), keyword
            assert value is not None or keyword in OPTIONAL, keyword


OPTIONAL = {"cap", "retry_after", "attempt_timeout", "seed"}

SWEEPS: Dict[str, Callable[[Any], Any]] = {
    "max_timeout": lambda v: TimeoutPolicy(max_timeout=v),
    "scale": lambda v: TimeoutPolicy(scale=v),
    "min_to_start": lambda v: TimeoutPolicy(min_to_start=v),
    "timeout": lambda v: Budget(v),
    "max_attempts": lambda v: RetryPolicy(max_attempts=v),
    "base": lambda v: RetryPolicy(base=v, cap=86_400),
    "cap": lambda v: RetryPolicy(base=0, cap=v),
    "delay": lambda v: RetryPolicy(backoff="constant", delay=v),
    "multiplier": lambda v: RetryPolicy(backoff="exponential", multiplier=v),
    "seed": lambda v: RetryPolicy(seed=v),
    "percent": lambda v: RetryBudget(percent=v),
    "min_per_second": lambda v: RetryBudget(min_per_second=v),
    "ttl": lambda v: RetryBudget(ttl=v),
    "attempt_timeout": lambda v: CallPolicy(attempt_timeout=v),
}


@pytest.mark.parametrize("keyword", sorted(SWEEPS))
def test_odd_values_never_crash(keyword: str) -> None:
    sweep(keyword, SWEEPS[keyword])


def test_odd_values_at_call_time_never_crash() -> None:
    clock = ManualClock()
    budget = Budget(1.0, clock=clock)
    sweep("cap", lambda v: budget.child(v) if v is not None else budget.child(0))
    sweep("cap", lambda v: budget.timeout_for(v))
    loop = RetryPolicy().begin(Budget(1.0, clock=clock), retry_budget=False)
    sweep("cap", lambda v: loop.start_attempt(v))
    sweep("retry_after", lambda v: loop.on_failure(v))
    for value in ODD:
        with pytest.raises((TypeError, ValueError)):
            Budget.from_header(value)
        if not isinstance(value, str):
            with pytest.raises(TypeError):
                Budget.from_header(value, format="timeout-ms")


def test_huge_header_values_are_clamped_not_refused() -> None:
    clock = ManualClock()
    assert Budget.from_header("99999999H", clock=clock).remaining == 15.0
    assert Budget.from_header("999999999999999", format="timeout-ms", clock=clock).remaining == 15.0
