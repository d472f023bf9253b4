"""The Python API of deadline budgets: TimeoutPolicy (and the process-wide one), Budget's
reading, nesting, timeouts, checks and headers, on a ManualClock; the exceptions. Cancellation
in real time is in test_budget_async.py."""

from __future__ import annotations

import pickle
from typing import Any, Iterator

import pytest

import seawall
from seawall import (
    Budget,
    BudgetExhausted,
    DeadlineExceeded,
    InvalidConfigError,
    InvalidHeaderError,
    ManualClock,
    RetryBudgetExhausted,
    SeawallError,
    TimeoutPolicy,
)
from seawall._native import budget_defaults


@pytest.fixture(autouse=True)
def restore_global_policy() -> Iterator[None]:
    before = TimeoutPolicy.get_global()
    yield
    TimeoutPolicy.set_global(before)


def approx(x: float) -> Any:
    return pytest.approx(x, abs=1e-9)


# -- TimeoutPolicy -------------------------------------------------------------------------


def test_policy_defaults_are_the_cores() -> None:
    p = TimeoutPolicy()
    assert budget_defaults() == {
        "max_timeout": p.max_timeout,
        "scale": p.scale,
        "min_to_start": p.min_to_start,
    }
    assert (p.max_timeout, p.scale, p.min_to_start) == (15.0, 1.0, 0.01)
    assert TimeoutPolicy.get_global() == p


def test_policy_attributes_equality_and_pickling() -> None:
    p = TimeoutPolicy(max_timeout=5.0, scale=0.5, min_to_start=0.0)
    assert (p.max_timeout, p.scale, p.min_to_start) == (5.0, 0.5, 0.0)
    assert p == TimeoutPolicy(5.0, 0.5, 0.0)
    assert p != TimeoutPolicy()
    assert hash(p) == hash(TimeoutPolicy(5.0, 0.5, 0.0))
    assert pickle.loads(pickle.dumps(p)) == p
    assert repr(p) == "TimeoutPolicy(max_timeout=5.0, scale=0.5, min_to_start=0.0)"
    assert p != "policy"


def test_the_global_policy_is_the_cores_and_applies_to_new_budgets_only() -> None:
    clock = ManualClock()
    before = Budget(10.0, clock=clock)
    TimeoutPolicy.set_global(TimeoutPolicy(max_timeout=15.0, scale=0.5))
    assert TimeoutPolicy.get_global().scale == 0.5
    after = Budget(10.0, clock=clock)
    assert after.remaining == approx(5.0)
    assert after.policy.scale == 0.5
    assert before.remaining == approx(10.0), "a budget keeps the policy it was made under"
    # The native module sees the same global: it is the core's, not a Python copy.
    assert seawall._native.TimeoutPolicy.get_global().scale == 0.5
    with pytest.raises(TypeError, match="TimeoutPolicy"):
        TimeoutPolicy.set_global("0.5")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_timeout": 0}, "max_timeout"),
        ({"max_timeout": 0.0005}, "max_timeout"),
        ({"max_timeout": 86_401}, "max_timeout"),
        ({"max_timeout": float("nan")}, "max_timeout"),
        ({"max_timeout": float("inf")}, "max_timeout"),
        ({"max_timeout": -1}, "max_timeout"),
        ({"scale": 0}, "scale"),
        ({"scale": 1.0001}, "scale"),
        ({"scale": -0.5}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": float("inf")}, "scale"),
        ({"min_to_start": -0.001}, "min_to_start"),
        ({"min_to_start": 16.0}, "min_to_start"),
        ({"max_timeout": 1.0, "min_to_start": 2.0}, "min_to_start"),
    ],
)
def test_policy_range_errors_name_the_keyword(kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        TimeoutPolicy(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field} must be ")


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_timeout": "15"}, "max_timeout"),
        ({"max_timeout": None}, "max_timeout"),
        ({"scale": True}, "scale"),
        ({"scale": "0.5"}, "scale"),
        ({"min_to_start": [0.01]}, "min_to_start"),
    ],
)
def test_policy_type_errors_name_the_keyword(kwargs: Any, field: str) -> None:
    with pytest.raises(TypeError) as info:
        TimeoutPolicy(**kwargs)
    assert str(info.value).startswith(f"{field} must be a number, got ")


def test_policy_limits_are_accepted() -> None:
    TimeoutPolicy(max_timeout=0.001, scale=1e-9, min_to_start=0.0)
    TimeoutPolicy(max_timeout=86_400, scale=1, min_to_start=86_400)


# -- Budget --------------------------------------------------------------------------------


def test_remaining_expiry_and_deadline_follow_the_clock() -> None:
    clock = ManualClock(100.0)
    b = Budget(2.0, clock=clock)
    assert b.deadline == approx(102.0)
    assert b.remaining == approx(2.0)
    clock.advance(0.5)
    assert b.remaining == approx(1.5)
    assert not b.is_expired
    clock.advance(1.5)
    assert b.is_expired
    assert b.remaining == 0.0
    clock.advance(10)
    assert b.remaining == 0.0, "never negative"
    assert "remaining=0.000s" in repr(b)


def test_the_default_clock_is_monotonic_time() -> None:
    import time

    b = Budget(1.0)
    assert 0.9 < b.remaining <= 1.0
    assert abs(b.deadline - (time.monotonic() + b.remaining)) < 0.01


def test_budgets_are_scaled_then_capped_by_their_policy() -> None:
    clock = ManualClock()
    half = TimeoutPolicy(max_timeout=15.0, scale=0.5)
    assert Budget(4.0, policy=half, clock=clock).remaining == approx(2.0)
    assert Budget(60.0, policy=half, clock=clock).remaining == approx(15.0)
    assert Budget(3600.0, clock=clock).remaining == approx(15.0), "the global maximum"
    assert Budget(86_400, clock=clock).remaining == approx(15.0)
    assert Budget(0, clock=clock).is_expired


def test_child_ends_at_the_earlier_deadline_and_is_scaled() -> None:
    clock = ManualClock()
    b = Budget(2.0, clock=clock, policy=TimeoutPolicy(scale=0.5))  # 1 s
    clock.advance(0.25)
    assert b.child(10.0).deadline == approx(b.deadline)
    c = b.child(0.2)  # 0.1 s after scaling
    assert c.remaining == approx(0.1)
    assert c.policy == b.policy
    clock.advance(0.1)
    assert c.is_expired and not b.is_expired
    # A child shares the parent's clock.
    assert c.child(1.0).is_expired


def test_timeout_for_is_the_least_of_remaining_cap_and_maximum() -> None:
    clock = ManualClock()
    b = Budget(10.0, clock=clock, policy=TimeoutPolicy(max_timeout=5.0))
    assert b.timeout_for() == approx(5.0)
    assert b.timeout_for(1.0) == approx(1.0)
    assert b.timeout_for(100.0) == approx(5.0)
    clock.advance(4.5)
    assert b.timeout_for(1.0) == approx(0.5)
    assert b.timeout_for(None) == approx(0.5)


def test_check_and_timeout_for_fail_fast_under_min_to_start() -> None:
    clock = ManualClock()
    b = Budget(1.0, clock=clock)
    assert b.check() == approx(1.0)
    clock.advance(0.995)
    for call in (b.check, b.timeout_for, lambda: b.timeout_for(0.5)):
        with pytest.raises(BudgetExhausted) as info:
            call()
        e = info.value
        assert isinstance(e, SeawallError) and not isinstance(e, TimeoutError)
        assert e.remaining == pytest.approx(0.005)
        assert e.min_to_start == 0.01
        assert "budget exhausted" in str(e)
    zero = Budget(1.0, clock=clock, policy=TimeoutPolicy(min_to_start=0.0))
    clock.advance(1.0)
    with pytest.raises(BudgetExhausted):
        zero.check()


def test_each_exhaustion_raises_a_fresh_exception() -> None:
    clock = ManualClock()
    b = Budget(0, clock=clock)
    seen = []
    for _ in range(3):
        try:
            b.check()
        except BudgetExhausted as e:
            seen.append(e)
    assert len({id(e) for e in seen}) == 3


def test_headers_round_trip_and_clamp_to_the_maximum() -> None:
    clock = ManualClock()
    b = Budget(1.5, clock=clock)
    assert b.to_header() == "1500000u"
    assert b.to_header("grpc-timeout") == "1500000u"
    assert b.to_header("timeout-ms") == "1500"
    clock.advance(0.0005)
    assert b.to_header("timeout-ms") == "1499", "rounded down"
    for fmt in ("grpc-timeout", "timeout-ms"):
        header = b.to_header(fmt)  # type: ignore[arg-type]
        got = Budget.from_header(header, format=fmt, clock=clock)  # type: ignore[arg-type]
        assert got.remaining <= b.remaining
        assert got.remaining == pytest.approx(b.remaining, abs=0.001)
    assert Budget.from_header("2S", clock=clock).remaining == approx(2.0)
    assert Budget.from_header("100m", clock=clock).remaining == approx(0.1)
    assert Budget.from_header(" 250 ", format="timeout-ms", clock=clock).remaining == approx(0.25)
    # A caller's deadline is capped at the maximum but never scaled.
    policy = TimeoutPolicy(max_timeout=10.0, scale=0.5)
    assert Budget.from_header("1H", policy=policy, clock=clock).remaining == approx(10.0)
    assert Budget.from_header("4S", policy=policy, clock=clock).remaining == approx(4.0)
    assert Budget.from_header("99999999H", clock=clock).remaining == approx(15.0)
    assert Budget.from_header("0n", clock=clock).is_expired


@pytest.mark.parametrize(
    "value,fmt",
    [
        ("", "grpc-timeout"),
        ("100", "grpc-timeout"),
        ("100x", "grpc-timeout"),
        ("-1S", "grpc-timeout"),
        ("1.5S", "grpc-timeout"),
        ("123456789m", "grpc-timeout"),
        ("1 m", "grpc-timeout"),
        ("\u0661m", "grpc-timeout"),
        ("x" * 10_000, "grpc-timeout"),
        ("", "timeout-ms"),
        ("-5", "timeout-ms"),
        ("1.5", "timeout-ms"),
        ("10ms", "timeout-ms"),
        ("1e3", "timeout-ms"),
        ("9" * 16, "timeout-ms"),
    ],
)
def test_malformed_headers_raise_invalid_header_error(value: str, fmt: str) -> None:
    with pytest.raises(InvalidHeaderError) as info:
        Budget.from_header(value, format=fmt)  # type: ignore[arg-type]
    e = info.value
    assert isinstance(e, ValueError) and isinstance(e, SeawallError)
    assert e.header == fmt
    assert e.value == value[:64]
    assert e.reason and e.reason in str(e)


def test_header_arguments_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="value must be a str, got bytes"):
        Budget.from_header(b"100m")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be a str, got NoneType"):
        Budget.from_header(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="format must be one of") as info:
        Budget.from_header("100m", format="grpc")  # type: ignore[arg-type]
    assert info.value.field == "format"
    with pytest.raises(InvalidConfigError, match="format"):
        Budget(1.0).to_header("seconds")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="format must be a str"):
        Budget(1.0).to_header(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policy must be a TimeoutPolicy"):
        Budget.from_header("1S", policy=15.0)  # type: ignore[arg-type]


def test_the_policy_maximum_holds_everywhere() -> None:
    clock = ManualClock()
    policy = TimeoutPolicy(max_timeout=2.0)
    TimeoutPolicy.set_global(policy)
    b = Budget(86_400, clock=clock)
    assert b.remaining == approx(2.0)
    assert b.check() <= 2.0
    assert b.timeout_for(86_400) <= 2.0
    assert b.child(86_400).remaining <= 2.0
    assert Budget.from_header("99999999H", clock=clock).remaining <= 2.0
    assert Budget.from_header("9" * 15, format="timeout-ms", clock=clock).remaining <= 2.0
    assert Budget.from_header("3S", clock=clock).to_header("timeout-ms") == "2000"


def test_clock_and_policy_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="clock must be a callable"):
        Budget(1.0, clock=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must return a number"):
        Budget(1.0, clock=lambda: "now")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="clock must return finite"):
        Budget(1.0, clock=lambda: float("nan"))
    with pytest.raises(ValueError, match="clock must return finite"):
        Budget(1.0, clock=lambda: -1.0)
    with pytest.raises(TypeError, match="policy must be a TimeoutPolicy or None, got dict"):
        Budget(1.0, policy={"max_timeout": 1})  # type: ignore[arg-type]
    # Read once to check the kind of clock, once to start the budget.
    readings = iter([0.0, 1.0, 2.0, float("inf")])
    b = Budget(5.0, clock=lambda: next(readings))
    assert b.remaining == approx(4.0)
    with pytest.raises(ValueError, match="clock"):
        b.remaining


# -- exceptions ----------------------------------------------------------------------------


def test_exception_hierarchy() -> None:
    assert issubclass(DeadlineExceeded, SeawallError)
    assert issubclass(DeadlineExceeded, TimeoutError)
    assert issubclass(BudgetExhausted, SeawallError)
    assert not issubclass(BudgetExhausted, TimeoutError)
    assert issubclass(RetryBudgetExhausted, SeawallError)
    assert issubclass(InvalidHeaderError, SeawallError)
    assert issubclass(InvalidHeaderError, ValueError)


@pytest.mark.parametrize(
    "error",
    [
        DeadlineExceeded("deadline exceeded after 0.1 s", 0.1),
        BudgetExhausted("budget exhausted", 0.001, 0.01),
        RetryBudgetExhausted("retry budget exhausted", 3),
        InvalidHeaderError("bad", "grpc-timeout", "1x", "no unit"),
    ],
)
def test_exceptions_pickle_with_their_attributes(error: BaseException) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_deadline_exceeded_is_not_an_oserror_with_an_errno() -> None:
    e = DeadlineExceeded("deadline exceeded", 0.5)
    assert e.errno is None and e.timeout == 0.5
    assert str(e) == "deadline exceeded"
    assert DeadlineExceeded().timeout is None


def test_the_header_format_alias_lists_every_format() -> None:
    import typing

    formats = typing.get_args(seawall.HeaderFormat)
    assert set(formats) == {"grpc-timeout", "timeout-ms"}
    for fmt in formats:
        Budget(1.0).to_header(fmt)
