"""Replays every retry conformance vector (tests/conformance/retry/*.json at the repository root)
through the public Python API (RetryPolicy.begin, RetryLoop, RetryBudget) on a ManualClock, one
test per file.

The format is in tests/conformance/README.md ("Retries"). The Rust and Node suites replay the
same files; a disagreement here means Python decides differently from the other languages.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from seawall import (
    Budget,
    BudgetExhausted,
    InvalidConfigError,
    ManualClock,
    RetryBudget,
    RetryLoop,
    RetryPolicy,
)

from test_conformance_budget import build_policy, check_keys, close_ms, seconds

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "conformance" / "retry"
FILES = sorted(VECTORS.glob("*.json"))

# The core's field names as the keywords of RetryPolicy / RetryBudget.
PY_FIELDS = {
    "backoff.kind": "backoff",
    "backoff.delay": "delay",
    "backoff.base": "base",
    "backoff.cap": "cap",
    "backoff.multiplier": "multiplier",
    "retry_budget.percent": "percent",
    "retry_budget.min_per_second": "min_per_second",
    "retry_budget.ttl": "ttl",
}

RETRY_KEYS = {"max_attempts", "backoff", "seed"}
BACKOFF_KEYS = {
    "constant": {"delay_ms"},
    "exponential": {"base_ms", "cap_ms", "multiplier"},
    "decorrelated_jitter": {"base_ms", "cap_ms"},
}
RETRY_BUDGET_KEYS = {"percent", "min_per_second", "ttl_ms"}
STEP_KEYS = {
    "begin": set(),
    "start_attempt": {"cap_ms", "expect_timeout_ms", "expect_error"},
    "failure": {"retry_after_ms", "expect_delay_ms", "expect_delay_ms_between", "expect_give_up"},
    "retry_budget": {"expect"},
}
GIVE_UP_REASONS = {
    "attempts_exhausted",
    "budget_exhausted",
    "retry_after_beyond_budget",
    "retry_budget_exhausted",
}


def build_retry(spec: Optional[Dict[str, Any]]) -> RetryPolicy:
    """The vector's retry policy through the public constructor. Keys the vector leaves out take
    the library defaults; a backoff of an unknown kind is passed on for the policy to refuse."""
    spec = spec or {}
    check_keys(spec, RETRY_KEYS, "retry")
    kw: Dict[str, Any] = {}
    if "max_attempts" in spec:
        kw["max_attempts"] = spec["max_attempts"]
    if "seed" in spec:
        kw["seed"] = spec["seed"]
    backoff = spec.get("backoff")
    if backoff is not None:
        kind = backoff.get("kind")
        kw["backoff"] = kind
        if kind in BACKOFF_KEYS:
            check_keys(backoff, BACKOFF_KEYS[kind] | {"kind"}, f"retry.backoff ({kind})")
        for key in ("delay_ms", "base_ms", "cap_ms"):
            if key in backoff:
                kw[key[: -len("_ms")]] = seconds(backoff[key])
        if "multiplier" in backoff:
            kw["multiplier"] = backoff["multiplier"]
    return RetryPolicy(**kw)


def build_retry_budget(vector: Dict[str, Any], clock: ManualClock) -> Optional[RetryBudget]:
    """``retry_budget``: absent means the defaults, ``null`` none."""
    if "retry_budget" not in vector:
        return RetryBudget(clock=clock)
    spec = vector["retry_budget"]
    if spec is None:
        return None
    check_keys(spec, RETRY_BUDGET_KEYS, "retry_budget")
    kw: Dict[str, Any] = {}
    if "percent" in spec:
        kw["percent"] = spec["percent"]
    if "min_per_second" in spec:
        kw["min_per_second"] = spec["min_per_second"]
    if "ttl_ms" in spec:
        kw["ttl"] = seconds(spec["ttl_ms"])
    return RetryBudget(**kw, clock=clock)


class Replay:
    def __init__(self, vector: Dict[str, Any]) -> None:
        self.clock = ManualClock()
        self.t_ms = 0.0
        self.policy = build_policy(vector.get("policy"))
        self.retry = build_retry(vector.get("retry"))
        self.retry_budget = build_retry_budget(vector, self.clock)
        assert "budget_timeout_ms" in vector, "a retry scenario needs budget_timeout_ms"
        self.timeout = seconds(vector["budget_timeout_ms"])
        self.loop = self.begin()

    def begin(self) -> RetryLoop:
        budget = Budget(self.timeout, policy=self.policy, clock=self.clock)
        retry_budget = False if self.retry_budget is None else self.retry_budget
        return self.retry.begin(budget, retry_budget=retry_budget)

    def at(self, step: Dict[str, Any]) -> None:
        if "t" in step:
            t = float(step["t"])
            assert t >= self.t_ms, f"time goes backwards in the vector: {t} < {self.t_ms}"
            self.t_ms = t
            self.clock.set(t / 1000)

    def run(self, i: int, step: Dict[str, Any]) -> None:
        self.at(step)
        op = step["op"]
        where = f"step {i} ({op}) at t={self.t_ms:g} ms"
        assert op in STEP_KEYS, f"{where}: unknown op {op!r}: teach the replayer"
        check_keys(step, STEP_KEYS[op] | {"op", "t"}, where)
        getattr(self, "op_" + op)(step, where)

    def op_begin(self, step: Dict[str, Any], where: str) -> None:
        self.loop = self.begin()

    def op_start_attempt(self, step: Dict[str, Any], where: str) -> None:
        assert ("expect_timeout_ms" in step) != ("expect_error" in step), (
            f"{where}: give exactly one of expect_timeout_ms and expect_error"
        )
        cap = step.get("cap_ms")
        cap_s = None if cap is None else seconds(cap)
        if "expect_error" in step:
            assert step["expect_error"] == "budget_exhausted", f"{where}: unknown expect_error"
            with pytest.raises(BudgetExhausted):
                self.loop.start_attempt(cap_s)
            return
        try:
            got = self.loop.start_attempt(cap_s)
        except BudgetExhausted as e:
            raise AssertionError(f"{where}: budget exhausted ({e})")
        want = step["expect_timeout_ms"]
        assert close_ms(got, want), f"{where}: timeout {got * 1000} ms, want {want} ms"

    def op_failure(self, step: Dict[str, Any], where: str) -> None:
        kinds = ("expect_delay_ms", "expect_delay_ms_between", "expect_give_up")
        expects = [k for k in kinds if k in step]
        assert len(expects) == 1, f"{where}: give exactly one expectation, got {expects}"
        hint = step.get("retry_after_ms")
        decision = self.loop.on_failure(None if hint is None else seconds(hint))
        if "expect_give_up" in step:
            reason = step["expect_give_up"]
            assert reason in GIVE_UP_REASONS, f"{where}: unknown reason {reason!r}"
            assert not decision.retry, f"{where}: retries after {decision.delay} s, want {reason}"
            assert decision.delay is None
            assert decision.reason == reason, f"{where}: gives up with {decision.reason!r}"
            return
        assert decision.retry, f"{where}: gives up with {decision.reason!r}"
        assert decision.reason is None and decision.delay is not None
        if "expect_delay_ms" in step:
            want = step["expect_delay_ms"]
            assert close_ms(decision.delay, want), (
                f"{where}: delay {decision.delay * 1000} ms, want {want} ms"
            )
        else:
            lo, hi = step["expect_delay_ms_between"]
            ms = decision.delay * 1000
            assert lo - 1e-6 <= ms <= hi + 1e-6, f"{where}: delay {ms} ms not in [{lo}, {hi}]"

    def op_retry_budget(self, step: Dict[str, Any], where: str) -> None:
        assert self.retry_budget is not None, f"{where}: the scenario has no retry budget"
        got = self.retry_budget.metrics()._asdict()
        expect = step["expect"]
        check_keys(expect, got.keys(), f"{where}: expect")
        for key, want in expect.items():
            assert got[key] == want, f"{where}: {key} = {got[key]}, want {want}"


def check_expected_error(vector: Dict[str, Any]) -> None:
    expected = vector["expect_error"]
    check_keys(expected, {"field", "kind"}, "expect_error")
    field = PY_FIELDS.get(expected["field"], expected["field"])
    kind = expected["kind"]

    def build() -> None:
        clock = ManualClock()
        policy = build_policy(vector.get("policy"))
        build_retry(vector.get("retry"))
        build_retry_budget(vector, clock)
        if "budget_timeout_ms" in vector:
            Budget(seconds(vector["budget_timeout_ms"]), policy=policy, clock=clock)

    with pytest.raises((TypeError, ValueError)) as info:
        build()
    err = info.value
    if kind == "range":
        assert isinstance(err, InvalidConfigError), f"expected InvalidConfigError, got {err!r}"
        assert err.field == field, f"field {err.field!r}, expected {field!r}"
    elif kind == "type":
        assert isinstance(err, TypeError), f"expected TypeError, got {err!r}"
    else:
        raise AssertionError(f"unknown expect_error kind {kind!r}")
    assert str(err).startswith(field + " "), f"message does not name {field!r}: {err}"


def test_vectors_exist() -> None:
    # An empty directory would make the parametrized test below vanish silently.
    assert FILES, f"no conformance vectors in {VECTORS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    check_keys(
        vector,
        {
            "name",
            "description",
            "policy",
            "budget_timeout_ms",
            "retry",
            "retry_budget",
            "steps",
            "expect_error",
        },
        "the file",
    )
    assert isinstance(vector.get("name"), str), "the file needs a string name"
    if "expect_error" in vector:
        assert "steps" not in vector, "a validation vector has no steps"
        check_expected_error(vector)
        return
    replay = Replay(vector)
    for i, step in enumerate(vector["steps"]):
        replay.run(i, step)


def test_replayer_detects_a_disagreement() -> None:
    # The replayer itself must be able to fail: wrong expectations and misspelt keys are refused.
    vector = {
        "name": "wrong on purpose",
        "budget_timeout_ms": 1000,
        "retry": {"max_attempts": 2, "backoff": {"kind": "constant", "delay_ms": 100}},
        "retry_budget": None,
    }
    replay = Replay(vector)
    replay.run(0, {"t": 0, "op": "start_attempt", "expect_timeout_ms": 1000})
    with pytest.raises(AssertionError, match="delay 100"):
        replay.run(1, {"op": "failure", "expect_delay_ms": 50})
    with pytest.raises(AssertionError, match="unknown keys"):
        replay.run(2, {"op": "failure", "expect_dealy_ms": 100})
    with pytest.raises(AssertionError, match="no retry budget"):
        replay.run(3, {"op": "retry_budget", "expect": {"requests": 1}})
    replay.run(4, {"t": 100, "op": "start_attempt", "expect_timeout_ms": 900})
    with pytest.raises(AssertionError, match="gives up with 'attempts_exhausted'"):
        replay.run(5, {"op": "failure", "expect_delay_ms": 100})
