"""Replays every conformance vector (tests/conformance/breaker/*.json at the repository root)
through the public Python API on a ManualClock, one test per file.

The format is documented in tests/conformance/README.md. The Rust and Node suites replay the
same files; a disagreement here means Python decides differently from the other languages.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from seawall import (
    CircuitBreaker,
    CircuitOpenError,
    InvalidConfigError,
    ManualClock,
    Permit,
    SnapshotError,
    StateChange,
)

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "conformance" / "breaker"
FILES = sorted(VECTORS.glob("*.json"))

# The core's field names as Python keyword arguments (the vectors use the core's names).
PY_FIELDS = {
    "window": "window",
    "window.kind": "window",
    "window.size": "window_size",
    "window.duration": "window_duration",
    "window.buckets": "window_buckets",
    "backoff": "backoff",
    "backoff.kind": "backoff",
    "backoff.multiplier": "backoff_multiplier",
    "backoff.max_open_duration": "max_open_duration",
    "backoff.jitter": "backoff_jitter",
}

METRIC_RATES = {"failure_rate", "slow_call_rate"}


class VectorFailure(Exception):
    """What the replayed function raises to record a failure."""


class VectorIgnored(Exception):
    """What the replayed function raises to record an ignored outcome (excluded)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _seconds(v: Any) -> Any:
    """Milliseconds to seconds; anything that is not a number is passed on untouched so that
    type-error vectors reach the breaker as written."""
    return v / 1000 if _is_number(v) else v


CONFIG_KEYS = {
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration_ms",
    "window",
    "minimum_calls",
    "consecutive_failures",
    "open_duration_ms",
    "backoff",
    "half_open_calls",
    "max_half_open_duration_ms",
    "seed",
}
WINDOW_KEYS = {"count": {"size"}, "time": {"duration_ms", "buckets"}}
BACKOFF_KEYS = {"fixed": set(), "exponential": {"multiplier", "max_open_duration_ms", "jitter"}}

STEP_KEYS = {
    "acquire": {"id", "expect", "reason", "retry_after_ms", "retry_after_ms_between"},
    "record": {"id", "outcome"},
    "release": {"id"},
    "call": {"outcome", "count", "expect"},
    "state": {"expect"},
    "metrics": {"expect"},
    "events": {"expect"},
    "force_open": set(),
    "disable": set(),
    "metrics_only": set(),
    "reset": set(),
    "snapshot": {"expect", "save_as"},
    "restore": {"snapshot", "from", "fresh", "expect_error"},
}


def check_keys(obj: Dict[str, Any], allowed: Any, what: str) -> None:
    # A misspelt key would silently turn a check into a step that cannot fail.
    unknown = set(obj) - set(allowed)
    assert not unknown, f"{what}: unknown keys {sorted(unknown)}: fix the vector or the replayer"


def config_kwargs(config: Dict[str, Any]) -> Dict[str, Any]:
    """The vector's config as CircuitBreaker keyword arguments.

    Keys the vector leaves out take the library defaults, except inside ``window`` and
    ``backoff`` where the format requires them: a missing one is passed as ``None``, which the
    breaker rejects with a TypeError as it would a missing argument.
    """
    check_keys(config, CONFIG_KEYS, "config")
    kw: Dict[str, Any] = {}
    for key, value in config.items():
        if key.endswith("_ms"):
            kw[key[: -len("_ms")]] = _seconds(value)
        elif key == "window":
            if not isinstance(value, dict):
                kw["window"] = value
                continue
            kind = value.get("kind")
            kw["window"] = kind
            if kind in WINDOW_KEYS:
                check_keys(value, WINDOW_KEYS[kind] | {"kind"}, f"config.window ({kind})")
            if kind == "count":
                kw["window_size"] = value.get("size")
            elif kind == "time":
                kw["window_duration"] = _seconds(value.get("duration_ms"))
                kw["window_buckets"] = value.get("buckets")
        elif key == "backoff":
            if not isinstance(value, dict):
                kw["backoff"] = value
                continue
            kind = value.get("kind")
            kw["backoff"] = kind
            if kind in BACKOFF_KEYS:
                check_keys(value, BACKOFF_KEYS[kind] | {"kind"}, f"config.backoff ({kind})")
            if kind == "exponential":
                kw["backoff_multiplier"] = value.get("multiplier")
                if "max_open_duration_ms" in value:
                    kw["max_open_duration"] = _seconds(value["max_open_duration_ms"])
                kw["backoff_jitter"] = value.get("jitter")
        else:
            kw[key] = value
    return kw


class Replay:
    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self.clock = ManualClock()
        self.t_ms = 0.0
        self.events: List[StateChange] = []
        self.permits: Dict[str, Permit] = {}
        self.saved: Dict[str, Dict[str, Any]] = {}
        self.breaker = self.build()

    def build(self) -> CircuitBreaker:
        breaker = CircuitBreaker(
            **config_kwargs(self.config), exclude=(VectorIgnored,), clock=self.clock
        )
        # Events are per breaker: after a fresh restore, the old breaker's (permits recorded
        # late, say) must not show up in the new one's list.
        self.events = []
        breaker.on_state_change(self.events.append)
        return breaker

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

    def op_acquire(self, step: Dict[str, Any], where: str) -> None:
        expect = step["expect"]
        try:
            permit = self.breaker.try_acquire()
        except CircuitOpenError as e:
            assert expect == "rejected", f"{where}: rejected ({e.reason}), expected permitted"
            if "reason" in step:
                assert e.reason == step["reason"], f"{where}: reason {e.reason!r}"
            if "retry_after_ms" in step:
                want = step["retry_after_ms"]
                if want is None:
                    assert e.retry_after is None, f"{where}: retry_after {e.retry_after}"
                else:
                    assert e.retry_after is not None, f"{where}: no retry_after, want {want} ms"
                    assert math.isclose(e.retry_after * 1000, want, rel_tol=1e-12, abs_tol=1e-6), (
                        f"{where}: retry_after {e.retry_after * 1000} ms, want {want} ms"
                    )
            if "retry_after_ms_between" in step:
                lo, hi = step["retry_after_ms_between"]
                assert e.retry_after is not None, f"{where}: no retry_after"
                ms = e.retry_after * 1000
                assert lo - 1e-6 <= ms <= hi + 1e-6, f"{where}: retry_after {ms} ms"
            return
        assert expect == "permitted", f"{where}: permitted, expected {expect}"
        for key in ("reason", "retry_after_ms", "retry_after_ms_between"):
            assert key not in step, f"{where}: {key!r} only applies to a rejection"
        assert "id" in step, f"{where}: a permitted acquire needs an id to keep the permit under"
        assert step["id"] not in self.permits, f"{where}: id {step['id']!r} is already held"
        self.permits[step["id"]] = permit

    def op_record(self, step: Dict[str, Any], where: str) -> None:
        assert step["id"] in self.permits, f"{where}: no permit is held under {step['id']!r}"
        permit = self.permits.pop(step["id"])
        outcome = step["outcome"]
        if outcome == "success":
            permit.success()
        elif outcome == "failure":
            permit.failure()
        elif outcome == "ignored":
            permit.ignore()
        else:
            raise AssertionError(f"{where}: unknown outcome {outcome!r}")

    def op_release(self, step: Dict[str, Any], where: str) -> None:
        assert step["id"] in self.permits, f"{where}: no permit is held under {step['id']!r}"
        self.permits.pop(step["id"]).ignore()

    def op_call(self, step: Dict[str, Any], where: str) -> None:
        outcome = step["outcome"]
        expect = step.get("expect", "permitted")
        for n in range(step.get("count", 1)):
            ran = []

            def fn() -> str:
                ran.append(True)
                if outcome == "failure":
                    raise VectorFailure()
                if outcome == "ignored":
                    raise VectorIgnored()
                assert outcome == "success", f"{where}: unknown outcome {outcome!r}"
                return "ok"

            try:
                self.breaker.call(fn)
            except CircuitOpenError as e:
                assert expect == "rejected", f"{where}: call {n + 1} rejected ({e.reason})"
                assert not ran, f"{where}: a rejected call ran the function"
                continue
            except (VectorFailure, VectorIgnored):
                pass
            assert expect == "permitted", f"{where}: call {n + 1} permitted, expected rejected"
            assert ran, f"{where}: a permitted call did not run the function"

    def op_state(self, step: Dict[str, Any], where: str) -> None:
        assert self.breaker.state == step["expect"], f"{where}: state {self.breaker.state!r}"

    def op_metrics(self, step: Dict[str, Any], where: str) -> None:
        got = self.breaker.metrics().as_dict()
        for key, want in step["expect"].items():
            assert key in got, f"{where}: unknown metric {key!r}"
            if key in METRIC_RATES:
                assert math.isclose(got[key], want, rel_tol=0, abs_tol=1e-9), (
                    f"{where}: {key} = {got[key]}, want {want}"
                )
            else:
                assert got[key] == want, f"{where}: {key} = {got[key]!r}, want {want!r}"

    def op_events(self, step: Dict[str, Any], where: str) -> None:
        got = [{"from": e.from_state, "to": e.to_state, "reason": e.reason} for e in self.events]
        self.events.clear()
        assert got == step["expect"], f"{where}: events {got}"

    def op_force_open(self, step: Dict[str, Any], where: str) -> None:
        self.breaker.force_open()

    def op_disable(self, step: Dict[str, Any], where: str) -> None:
        self.breaker.disable()

    def op_metrics_only(self, step: Dict[str, Any], where: str) -> None:
        self.breaker.metrics_only()

    def op_reset(self, step: Dict[str, Any], where: str) -> None:
        self.breaker.reset()

    def op_snapshot(self, step: Dict[str, Any], where: str) -> None:
        snapshot = self.breaker.snapshot()
        if "expect" in step:
            assert snapshot == step["expect"], f"{where}: snapshot {snapshot}"
        if "save_as" in step:
            self.saved[step["save_as"]] = snapshot

    def op_restore(self, step: Dict[str, Any], where: str) -> None:
        snapshot: Optional[Dict[str, Any]] = (
            self.saved[step["from"]] if "from" in step else step["snapshot"]
        )
        if step.get("fresh"):
            self.breaker = self.build()
        if step.get("expect_error"):
            before = self.breaker.snapshot()
            events_before = list(self.events)
            with pytest.raises(SnapshotError):
                self.breaker.restore(snapshot)  # type: ignore[arg-type]
            assert self.breaker.snapshot() == before, f"{where}: a failed restore changed state"
            assert self.events == events_before, f"{where}: a failed restore emitted events"
        else:
            self.breaker.restore(snapshot)  # type: ignore[arg-type]


def check_expected_error(config: Dict[str, Any], expected: Dict[str, Any]) -> None:
    field = PY_FIELDS.get(expected["field"], expected["field"])
    kind = expected["kind"]
    with pytest.raises((TypeError, ValueError)) as info:
        CircuitBreaker(**config_kwargs(config))
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
    check_keys(vector, {"name", "description", "config", "steps", "expect_error"}, "the file")
    assert isinstance(vector.get("name"), str), "the file needs a string name"
    config = vector["config"]
    if "expect_error" in vector:
        assert "steps" not in vector, "a validation vector has no steps"
        check_expected_error(config, vector["expect_error"])
        return
    replay = Replay(config)
    for i, step in enumerate(vector["steps"]):
        replay.run(i, step)


def test_replayer_detects_a_disagreement() -> None:
    # The replayer itself must be able to fail: a vector with a wrong expectation is refused.
    wrong = {
        "name": "wrong on purpose",
        "config": {"window": {"kind": "count", "size": 2}, "minimum_calls": 2},
        "steps": [
            {"t": 0, "op": "call", "outcome": "failure", "count": 2},
            {"op": "state", "expect": "closed"},
        ],
    }
    replay = Replay(wrong["config"])  # type: ignore[arg-type]
    replay.run(0, wrong["steps"][0])  # type: ignore[index]
    with pytest.raises(AssertionError, match="state 'open'"):
        replay.run(1, wrong["steps"][1])  # type: ignore[index]
    with pytest.raises(AssertionError, match="unknown keys"):
        replay.run(2, {"op": "state", "expcet": "open"})
