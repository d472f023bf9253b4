"""Bad configuration gives a clear TypeError or ValueError naming the keyword, never a crash.

Wrong types raise TypeError; values of the right type outside their range raise
InvalidConfigError (a ValueError) with ``field`` set to the keyword.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import pytest

from seawall import CircuitBreaker, InvalidConfigError

NAN = float("nan")
INF = float("inf")

NUMBERS = [
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "window_size",
    "minimum_calls",
    "open_duration",
    "half_open_calls",
]
OPTIONAL_NUMBERS = ["slow_call_duration", "consecutive_failures", "max_half_open_duration"]

TYPE_ERRORS = (
    [(name, {name: "10"}) for name in NUMBERS + OPTIONAL_NUMBERS]
    + [(name, {name: True}) for name in NUMBERS + OPTIONAL_NUMBERS]
    + [(name, {name: [1]}) for name in NUMBERS]
    + [(name, {name: None}) for name in NUMBERS]
    + [
        ("window_duration", {"window": "time", "window_duration": "60"}),
        ("window_duration", {"window": "time"}),
        ("window_buckets", {"window": "time", "window_duration": 60, "window_buckets": "10"}),
        ("backoff_multiplier", {"backoff": "exponential", "backoff_multiplier": "2"}),
        ("backoff_jitter", {"backoff": "exponential", "backoff_jitter": None}),
        ("max_open_duration", {"backoff": "exponential", "max_open_duration": b"60"}),
        ("window", {"window": 1}),
        ("window", {"window": None}),
        ("backoff", {"backoff": ["exponential"]}),
        ("seed", {"seed": "42"}),
        ("seed", {"seed": False}),
        ("exclude", {"exclude": "ValueError"}),
        ("exclude", {"exclude": (ValueError, "KeyError")}),
        ("exclude", {"exclude": (int,)}),
        ("is_failure", {"is_failure": True}),
        ("is_result_failure", {"is_result_failure": "yes"}),
        ("clock", {"clock": 12.0}),
        ("clock", {"clock": lambda: "now"}),
        ("name", {"name": 7}),
    ]
)

RANGE_ERRORS = [
    ("failure_rate_threshold", {"failure_rate_threshold": 0}),
    ("failure_rate_threshold", {"failure_rate_threshold": 100.5}),
    ("failure_rate_threshold", {"failure_rate_threshold": -1}),
    ("failure_rate_threshold", {"failure_rate_threshold": NAN}),
    ("failure_rate_threshold", {"failure_rate_threshold": INF}),
    ("slow_call_rate_threshold", {"slow_call_rate_threshold": 150}),
    ("slow_call_duration", {"slow_call_duration": 0}),
    ("slow_call_duration", {"slow_call_duration": -0.5}),
    ("slow_call_duration", {"slow_call_duration": NAN}),
    ("slow_call_duration", {"slow_call_duration": 86_401}),
    ("window", {"window": "sliding"}),
    ("window", {"window": "COUNT"}),
    ("window_size", {"window_size": 0}),
    ("window_size", {"window_size": -5}),
    ("window_size", {"window_size": 2.5}),
    ("window_size", {"window_size": NAN}),
    ("window_size", {"window_size": 1_000_001}),
    ("window_size", {"window_size": 10**40}),
    ("window_duration", {"window": "time", "window_duration": 0}),
    ("window_duration", {"window": "time", "window_duration": INF}),
    ("window_duration", {"window": "time", "window_duration": -60}),
    ("window_duration", {"window_duration": 60}),
    ("window_buckets", {"window": "time", "window_duration": 60, "window_buckets": 0}),
    ("window_buckets", {"window": "time", "window_duration": 0.005, "window_buckets": 10}),
    ("window_buckets", {"window": "time", "window_duration": 60, "window_buckets": 1.5}),
    ("minimum_calls", {"minimum_calls": 0}),
    ("minimum_calls", {"minimum_calls": 3.25}),
    ("consecutive_failures", {"consecutive_failures": 0}),
    ("consecutive_failures", {"consecutive_failures": -1}),
    ("open_duration", {"open_duration": 0}),
    ("open_duration", {"open_duration": NAN}),
    ("open_duration", {"open_duration": -INF}),
    ("open_duration", {"open_duration": 1e300}),
    ("backoff", {"backoff": "linear"}),
    ("backoff_multiplier", {"backoff": "exponential", "backoff_multiplier": 0.5}),
    ("backoff_multiplier", {"backoff": "exponential", "backoff_multiplier": NAN}),
    ("max_open_duration", {"backoff": "exponential", "open_duration": 10, "max_open_duration": 5}),
    ("max_open_duration", {"max_open_duration": 60}),
    ("backoff_jitter", {"backoff": "exponential", "backoff_jitter": 1.5}),
    ("backoff_jitter", {"backoff": "exponential", "backoff_jitter": -0.1}),
    ("half_open_calls", {"half_open_calls": 0}),
    ("half_open_calls", {"half_open_calls": 10_001}),
    ("max_half_open_duration", {"max_half_open_duration": 0}),
    ("seed", {"seed": -1}),
    ("seed", {"seed": 2**64}),
    ("seed", {"seed": 1.5}),
]


@pytest.mark.parametrize(
    "keyword,kwargs", TYPE_ERRORS, ids=[f"{k}={v!r}"[:60] for k, v in TYPE_ERRORS]
)
def test_wrong_types_raise_type_error_naming_the_keyword(
    keyword: str, kwargs: Dict[str, Any]
) -> None:
    with pytest.raises(TypeError) as info:
        CircuitBreaker(**kwargs)
    assert not isinstance(info.value, ValueError)
    assert keyword in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "keyword,kwargs", RANGE_ERRORS, ids=[f"{k}={v!r}"[:60] for k, v in RANGE_ERRORS]
)
def test_out_of_range_values_raise_value_error_naming_the_keyword(
    keyword: str, kwargs: Dict[str, Any]
) -> None:
    with pytest.raises(InvalidConfigError) as info:
        CircuitBreaker(**kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == keyword
    assert str(err).startswith(f"{keyword} must be "), str(err)
    assert err.got is not None and err.got in str(err)


def test_messages_give_the_range_and_the_value() -> None:
    with pytest.raises(ValueError) as info:
        CircuitBreaker(failure_rate_threshold=150)
    assert str(info.value) == "failure_rate_threshold must be a percentage in (0, 100], got 150"
    with pytest.raises(ValueError) as info:
        CircuitBreaker(open_duration=-1.5)
    assert "open_duration" in str(info.value) and "-1.5" in str(info.value)
    with pytest.raises(TypeError) as info:
        CircuitBreaker(failure_rate_threshold="50")  # type: ignore[arg-type]
    assert str(info.value) == "failure_rate_threshold must be a number, got str"
    with pytest.raises(TypeError) as info:
        CircuitBreaker(failure_rate_threshold=True)
    assert str(info.value) == "failure_rate_threshold must be a number, got bool"


def test_limits_themselves_are_accepted() -> None:
    CircuitBreaker(
        failure_rate_threshold=100,
        slow_call_rate_threshold=0.001,
        slow_call_duration=0.001,
        window_size=1_000_000,
        minimum_calls=1,
        open_duration=86_400,
        half_open_calls=10_000,
        seed=2**64 - 1,
    )
    CircuitBreaker(window="time", window_duration=0.01, window_buckets=10)
    CircuitBreaker(window_size=10.0, minimum_calls=5.0)
    CircuitBreaker(
        backoff="exponential",
        backoff_multiplier=100,
        backoff_jitter=1,
        open_duration=3 * 3600,  # 10× would pass 24 h: the default cap keeps it valid
        max_half_open_duration=None,
        consecutive_failures=1,
        seed=7.0,
    )


def test_bad_values_never_crash_the_process() -> None:
    # A sweep of odd values through every numeric keyword: each must be accepted or rejected
    # with TypeError / ValueError, nothing else.
    odd: list[Any] = [
        NAN, INF, -INF, -0.0, 0, 1e-12, 2**63, -(2**63), 10**100, 1.7976931348623157e308,
        object(), (), {}, "", complex(1, 1),
    ]
    keywords = NUMBERS + OPTIONAL_NUMBERS + [
        "window_duration", "window_buckets", "backoff_multiplier", "max_open_duration",
        "backoff_jitter", "seed",
    ]
    for keyword in keywords:
        for value in odd:
            extra: Dict[str, Any] = {}
            if keyword in ("window_duration", "window_buckets"):
                extra = {"window": "time", "window_duration": 60}
            if keyword in ("backoff_multiplier", "max_open_duration", "backoff_jitter"):
                extra = {"backoff": "exponential"}
            try:
                CircuitBreaker(**{**extra, keyword: value})
            except (TypeError, ValueError) as e:
                assert keyword in str(e), f"{keyword}={value!r}: {e}"
            else:
                assert not (isinstance(value, float) and math.isnan(value)), keyword
