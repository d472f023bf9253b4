"""Replays every memory watchdog conformance vector (tests/conformance/memory/*.json at the
repository root) through the public Python API (``seawall.WatchdogPolicy``), one test per file.

The format is in tests/conformance/README.md ("Memory watchdog"); the Rust replayer
(tests/conformance_memory.rs) and the Node one replay the same files, so a disagreement here
means Python decides differently from the other languages. Strict like the other replayers: an
unknown key in a vector fails the test (a misspelt key would make a check that cannot fail), and
every expected action list is compared whole, in order.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from seawall import InvalidConfigError, Trend, WatchdogAction, WatchdogPolicy

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "conformance" / "memory"
FILES = sorted(VECTORS.glob("*.json"))

REL_TOL = 1e-9
# Seconds from the core become milliseconds here: allow the float conversion's last bits.
ABS_TOL_MS = 1e-6

DURATION_KEYS = {
    "interval_ms",
    "alert_interval_ms",
    "trend_window_ms",
    "trend_horizon_ms",
    "cooldown_ms",
    "drain_timeout_ms",
}
PLAIN_KEYS = {
    "warn_percent",
    "act_percent",
    "spike_percent_per_minute",
    "trend_min_samples",
    "snapshot_headroom_factor",
    "act_mode",
    "exit_code",
    "max_dump_files",
    "max_dump_bytes",
}
FILE_KEYS = {"name", "description", "config", "steps", "expect_error"}
SAMPLE_KEYS = {"t", "op", "usage", "limit", "heap_used", "heap_limit", "expect"}
EXPECT_KEYS = {
    "level",
    "actions",
    "percent",
    "basis",
    "growth_percent_per_minute",
    "trend",
    "next_sample_ms",
}
TREND_KEYS = {"bytes_per_second", "r2", "time_to_limit_ms", "samples"}
ACTION_KEYS = {
    "warn": {"percent", "basis"},
    "recovered": {"percent", "basis"},
    "act": {"percent", "basis"},
    "spike": {"percent_per_minute", "basis"},
    "leak_trend": {"trend"},
    "evidence": {"evidence", "trigger", "free_bytes", "needed_bytes"},
    "restart": {"drain_timeout_ms", "exit_code"},
}
COUNTERS = {
    "samples",
    "warnings",
    "acts",
    "spikes",
    "leak_trends",
    "heap_snapshots",
    "profiles",
    "restarts",
}


def check_keys(obj: Dict[str, Any], allowed: Any, what: str) -> None:
    unknown = set(obj) - set(allowed)
    assert not unknown, f"{what}: unknown keys {sorted(unknown)}: fix the vector or the replayer"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def kwargs_of(config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The vector's config as WatchdogPolicy keywords: `<name>_ms` becomes `<name>` in seconds;
    a value that is not a number is passed on as written, for type-error vectors."""
    config = config or {}
    check_keys(config, DURATION_KEYS | PLAIN_KEYS, "config")
    kw: Dict[str, Any] = {}
    for key, value in config.items():
        if key in DURATION_KEYS:
            kw[key[: -len("_ms")]] = value / 1000 if is_number(value) else value
        else:
            kw[key] = value
    return kw


def close(got: float, want: float, what: str) -> None:
    assert math.isclose(got, want, rel_tol=REL_TOL), f"{what}: expected {want}, got {got}"


def close_ms(got_seconds: Optional[float], want_ms: Optional[float], what: str) -> None:
    if want_ms is None or got_seconds is None:
        assert got_seconds is None and want_ms is None, f"{what}: {want_ms} ms != {got_seconds} s"
        return
    assert math.isclose(got_seconds * 1000, want_ms, rel_tol=REL_TOL, abs_tol=ABS_TOL_MS), (
        f"{what}: expected {want_ms} ms, got {got_seconds * 1000} ms"
    )


def check_trend(got: Optional[Trend], want: Optional[Dict[str, Any]], what: str) -> None:
    if want is None:
        assert got is None, f"{what}: expected no trend, got {got}"
        return
    check_keys(want, TREND_KEYS, what)
    assert got is not None, f"{what}: expected a trend {want}, got none"
    for key, value in want.items():
        if key == "time_to_limit_ms":
            close_ms(got.time_to_limit, value, f"{what}.time_to_limit")
        elif key == "samples":
            assert got.samples == value, f"{what}.samples: expected {value}, got {got.samples}"
        else:
            close(getattr(got, key), value, f"{what}.{key}")


def check_action(got: WatchdogAction, want: Dict[str, Any], what: str) -> None:
    kind = want.get("kind")
    assert kind in ACTION_KEYS, f"{what}: unknown action kind {kind!r}"
    check_keys(want, ACTION_KEYS[kind] | {"kind"}, what)
    assert got.kind == kind, f"{what}: expected {kind}, got {got}"
    # Fields the kind does not carry stay unset.
    carried = {f.name for f in dataclasses.fields(got) if getattr(got, f.name) is not None}
    allowed = {k[: -len("_ms")] if k.endswith("_ms") else k for k in ACTION_KEYS[kind]}
    assert carried <= allowed | {"kind"}, f"{what}: unexpected fields {carried - allowed}"
    for key, value in want.items():
        if key == "kind":
            continue
        if key == "trend":
            check_trend(got.trend, value, f"{what}.trend")
        elif key == "drain_timeout_ms":
            close_ms(got.drain_timeout, value, f"{what}.drain_timeout")
        elif key in ("percent", "percent_per_minute"):
            close(getattr(got, key), value, f"{what}.{key}")
        else:
            assert getattr(got, key) == value, f"{what}.{key}: expected {value!r}, got {got}"


def run_sample(policy: WatchdogPolicy, step: Dict[str, Any], last_t: List[float]) -> None:
    check_keys(step, SAMPLE_KEYS, "a sample step")
    t = step["t"]
    assert is_number(t) and t >= last_t[0], f"`t` must be a number not going back, got {t}"
    last_t[0] = t
    assessment = policy.observe(
        t / 1000, step["usage"], step["limit"], step.get("heap_used"), step.get("heap_limit")
    )
    want = step["expect"]
    check_keys(want, EXPECT_KEYS, "expect")
    assert "level" in want and "actions" in want, "a sample's expect needs level and actions"
    assert assessment.level == want["level"], f"level: expected {want['level']}, got {assessment}"
    got_kinds = [a.kind for a in assessment.actions]
    want_kinds = [a.get("kind") for a in want["actions"]]
    assert got_kinds == want_kinds, f"actions: expected {want_kinds}, got {got_kinds}"
    for i, (got, expected) in enumerate(zip(assessment.actions, want["actions"])):
        check_action(got, expected, f"actions[{i}]")
    if "percent" in want:
        close(assessment.percent, want["percent"], "percent")
    if "basis" in want:
        assert assessment.basis == want["basis"], f"basis: expected {want['basis']}"
    if "growth_percent_per_minute" in want:
        g = want["growth_percent_per_minute"]
        if g is None:
            assert assessment.growth_percent_per_minute is None
        else:
            assert assessment.growth_percent_per_minute is not None
            close(assessment.growth_percent_per_minute, g, "growth_percent_per_minute")
    if "trend" in want:
        check_trend(assessment.trend, want["trend"], "trend")
    if "next_sample_ms" in want:
        close_ms(assessment.next_sample, want["next_sample_ms"], "next_sample")


def run_rotation(policy: WatchdogPolicy, step: Dict[str, Any]) -> None:
    check_keys(step, {"op", "existing", "incoming_bytes", "expect"}, "a rotate_dumps step")
    existing = []
    for f in step["existing"]:
        check_keys(f, {"name", "bytes", "created"}, "a dump file")
        existing.append((f["name"], f["bytes"], f["created"]))
    plan = policy.plan_dump_rotation(existing, step["incoming_bytes"])
    want = step["expect"]
    check_keys(want, {"delete", "fits"}, "expect")
    assert list(plan.delete) == want["delete"], f"delete: expected {want['delete']}, got {plan}"
    assert plan.fits is want["fits"], f"fits: expected {want['fits']}, got {plan}"


def run_counts(policy: WatchdogPolicy, step: Dict[str, Any]) -> None:
    check_keys(step, {"op", "expect"}, "a counts step")
    check_keys(step["expect"], COUNTERS, "counts")
    counts = dataclasses.asdict(policy.counts())
    for key, value in step["expect"].items():
        assert counts[key] == value, f"counter {key}: expected {value}, got {counts[key]}"


def test_there_are_vectors() -> None:
    # The issue asks for at least 20 policy vectors; an empty glob must not pass quietly.
    assert len(FILES) >= 20, f"found {len(FILES)} vectors in {VECTORS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path: Path) -> None:
    doc = json.loads(path.read_text())
    check_keys(doc, FILE_KEYS, "the file")
    assert isinstance(doc.get("name"), str), "the file needs a string `name`"
    kw = kwargs_of(doc.get("config"))
    if "expect_error" in doc:
        assert "steps" not in doc, "a validation vector has no steps"
        want = doc["expect_error"]
        check_keys(want, {"field", "kind"}, "expect_error")
        if want["kind"] == "type":
            with pytest.raises(TypeError) as type_info:
                WatchdogPolicy(**kw)
            assert not isinstance(type_info.value, InvalidConfigError)
            assert str(type_info.value).startswith(want["field"] + " "), str(type_info.value)
        else:
            assert want["kind"] == "range", f"unknown error kind {want['kind']!r}"
            with pytest.raises(InvalidConfigError) as range_info:
                WatchdogPolicy(**kw)
            assert range_info.value.field == want["field"], str(range_info.value)
            assert str(range_info.value).startswith(want["field"] + " "), str(range_info.value)
        return
    policy = WatchdogPolicy(**kw)
    steps = doc.get("steps")
    assert isinstance(steps, list) and steps, "a scenario needs steps"
    last_t = [0.0]
    for i, step in enumerate(steps):
        op = step.get("op")
        try:
            if op == "sample":
                run_sample(policy, step, last_t)
            elif op == "rotate_dumps":
                run_rotation(policy, step)
            elif op == "counts":
                run_counts(policy, step)
            else:
                raise AssertionError(f"unknown op {op!r}")
        except AssertionError as e:
            raise AssertionError(f"step {i} ({op}): {e}") from None
