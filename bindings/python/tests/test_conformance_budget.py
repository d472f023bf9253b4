"""Replays every budget conformance vector (tests/conformance/budget/*.json at the repository
root) through the public Python API on a ManualClock, one test per file.

The format is in tests/conformance/README.md ("Budgets"). The Rust and Node suites replay the
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
    InvalidHeaderError,
    ManualClock,
    TimeoutPolicy,
)

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "conformance" / "budget"
FILES = sorted(VECTORS.glob("*.json"))

# Times are compared to a nanosecond (the README's 1e-6 ms).
TOLERANCE_MS = 1e-6

POLICY_KEYS = {"max_timeout_ms", "scale", "min_to_start_ms"}
STEP_KEYS = {
    "budget": {"id", "timeout_ms"},
    "child": {"budget", "id", "cap_ms"},
    "remaining": {"budget", "expect_ms"},
    "expired": {"budget", "expect"},
    "timeout_for": {"budget", "cap_ms", "expect_ms", "expect_error"},
    "check": {"budget", "expect_ms", "expect_error"},
    "encode": {"budget", "format", "expect"},
    "decode": {"format", "value", "id", "expect_error"},
}


def check_keys(obj: Dict[str, Any], allowed: Any, what: str) -> None:
    # A misspelt key would silently turn a check into a step that cannot fail.
    unknown = set(obj) - set(allowed)
    assert not unknown, f"{what}: unknown keys {sorted(unknown)}: fix the vector or the replayer"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def seconds(v: Any) -> Any:
    """Milliseconds to seconds; anything else is passed on untouched so that type-error vectors
    reach the API as written."""
    return v / 1000 if is_number(v) else v


def build_policy(spec: Optional[Dict[str, Any]]) -> TimeoutPolicy:
    """The vector's policy through the public constructor (absent keys: the defaults)."""
    spec = spec or {}
    check_keys(spec, POLICY_KEYS, "policy")
    kw: Dict[str, Any] = {}
    if "max_timeout_ms" in spec:
        kw["max_timeout"] = seconds(spec["max_timeout_ms"])
    if "scale" in spec:
        kw["scale"] = spec["scale"]
    if "min_to_start_ms" in spec:
        kw["min_to_start"] = seconds(spec["min_to_start_ms"])
    return TimeoutPolicy(**kw)


def close_ms(got_seconds: float, want_ms: float) -> bool:
    return math.isclose(got_seconds * 1000, want_ms, rel_tol=0, abs_tol=TOLERANCE_MS)


class Replay:
    def __init__(self, policy: TimeoutPolicy) -> None:
        self.policy = policy
        self.clock = ManualClock()
        self.t_ms = 0.0
        self.budgets: Dict[str, Budget] = {}

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

    def budget(self, step: Dict[str, Any], where: str) -> Budget:
        assert step["budget"] in self.budgets, f"{where}: no budget {step['budget']!r}"
        return self.budgets[step["budget"]]

    def keep(self, step: Dict[str, Any], where: str, budget: Budget) -> None:
        assert step["id"] not in self.budgets, f"{where}: id {step['id']!r} is already taken"
        self.budgets[step["id"]] = budget

    def op_budget(self, step: Dict[str, Any], where: str) -> None:
        budget = Budget(seconds(step["timeout_ms"]), policy=self.policy, clock=self.clock)
        self.keep(step, where, budget)

    def op_child(self, step: Dict[str, Any], where: str) -> None:
        self.keep(step, where, self.budget(step, where).child(seconds(step["cap_ms"])))

    def op_remaining(self, step: Dict[str, Any], where: str) -> None:
        got = self.budget(step, where).remaining
        assert close_ms(got, step["expect_ms"]), (
            f"{where}: remaining {got * 1000} ms, want {step['expect_ms']} ms"
        )

    def op_expired(self, step: Dict[str, Any], where: str) -> None:
        got = self.budget(step, where).is_expired
        assert got is step["expect"], f"{where}: expired {got}"

    def expect_ms_or_exhausted(self, step: Dict[str, Any], where: str, call: Any) -> None:
        assert ("expect_ms" in step) != ("expect_error" in step), (
            f"{where}: give exactly one of expect_ms and expect_error"
        )
        if "expect_error" in step:
            assert step["expect_error"] == "budget_exhausted", f"{where}: unknown expect_error"
            with pytest.raises(BudgetExhausted):
                call()
            return
        try:
            got = call()
        except BudgetExhausted as e:
            raise AssertionError(f"{where}: budget exhausted ({e}), want {step['expect_ms']} ms")
        assert close_ms(got, step["expect_ms"]), (
            f"{where}: {got * 1000} ms, want {step['expect_ms']} ms"
        )

    def op_timeout_for(self, step: Dict[str, Any], where: str) -> None:
        budget = self.budget(step, where)
        assert "cap_ms" in step, f"{where}: timeout_for needs cap_ms (a number or null)"
        cap = step["cap_ms"]
        self.expect_ms_or_exhausted(
            step, where, lambda: budget.timeout_for(None if cap is None else seconds(cap))
        )

    def op_check(self, step: Dict[str, Any], where: str) -> None:
        self.expect_ms_or_exhausted(step, where, self.budget(step, where).check)

    def op_encode(self, step: Dict[str, Any], where: str) -> None:
        got = self.budget(step, where).to_header(step["format"])
        assert got == step["expect"], f"{where}: header {got!r}, want {step['expect']!r}"

    def op_decode(self, step: Dict[str, Any], where: str) -> None:
        assert ("id" in step) != ("expect_error" in step), (
            f"{where}: give exactly one of id and expect_error"
        )

        def decode() -> Budget:
            return Budget.from_header(
                step["value"], format=step["format"], policy=self.policy, clock=self.clock
            )

        if "expect_error" in step:
            assert step["expect_error"] == "invalid_header", f"{where}: unknown expect_error"
            with pytest.raises(InvalidHeaderError) as info:
                decode()
            assert isinstance(info.value, ValueError)
            assert info.value.header == step["format"], f"{where}: header {info.value.header!r}"
            return
        try:
            budget = decode()
        except InvalidHeaderError as e:
            raise AssertionError(f"{where}: {step['value']!r} refused: {e}")
        self.keep(step, where, budget)


def check_expected_error(vector: Dict[str, Any]) -> None:
    expected = vector["expect_error"]
    check_keys(expected, {"field", "kind"}, "expect_error")
    field, kind = expected["field"], expected["kind"]

    def build() -> None:
        policy = build_policy(vector.get("policy"))
        if "budget_timeout_ms" in vector:
            Budget(seconds(vector["budget_timeout_ms"]), policy=policy, clock=ManualClock())

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
    # Python spells the budget fields as the core does.
    assert str(err).startswith(field + " "), f"message does not name {field!r}: {err}"


def test_vectors_exist() -> None:
    # An empty directory would make the parametrized test below vanish silently.
    assert FILES, f"no conformance vectors in {VECTORS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    check_keys(
        vector,
        {"name", "description", "policy", "budget_timeout_ms", "steps", "expect_error"},
        "the file",
    )
    assert isinstance(vector.get("name"), str), "the file needs a string name"
    if "expect_error" in vector:
        assert "steps" not in vector, "a validation vector has no steps"
        check_expected_error(vector)
        return
    assert "budget_timeout_ms" not in vector, "budget_timeout_ms is for validation vectors here"
    replay = Replay(build_policy(vector.get("policy")))
    for i, step in enumerate(vector["steps"]):
        replay.run(i, step)


def test_replayer_detects_a_disagreement() -> None:
    # The replayer itself must be able to fail: wrong expectations and misspelt keys are refused.
    replay = Replay(TimeoutPolicy())
    replay.run(0, {"t": 0, "op": "budget", "id": "b", "timeout_ms": 1000})
    with pytest.raises(AssertionError, match="remaining"):
        replay.run(1, {"op": "remaining", "budget": "b", "expect_ms": 999})
    with pytest.raises(AssertionError, match="unknown keys"):
        replay.run(2, {"op": "remaining", "budget": "b", "expcet_ms": 1000})
    with pytest.raises(AssertionError, match="unknown op"):
        replay.run(3, {"op": "deadline", "budget": "b"})
    with pytest.raises(AssertionError, match="budget exhausted"):
        replay.run(4, {"t": 995, "op": "check", "budget": "b", "expect_ms": 5})
    with pytest.raises(AssertionError, match="refused"):
        replay.run(5, {"op": "decode", "format": "grpc-timeout", "value": "1x", "id": "c"})
