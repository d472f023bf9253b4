"""Replays every pool conformance vector (tests/conformance/pool/*.json at the repository root)
through the public ``PoolEngine``, driven the way an adapter drives it, one test per file.

The format is in tests/conformance/README.md ("Pools"). The Rust and Node suites replay the same
files; a disagreement here means Python decides differently from the other languages. As in the
other replayers, an unknown key or op is an error rather than a step that cannot fail.

Slots are named by the files: a name is bound to the engine's slot id the first time an expected
action mentions it and must match afterwards (one slot never gets two names). Callers are named
by the ``id`` given to ``acquire``; a caller's lease is kept under its id, also after it is
released, so that a repeated or stale release can be tried.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from test_conformance import config_kwargs as breaker_kwargs

from seawall import (
    Budget,
    BudgetExhausted,
    ConnectAttemptFailed,
    ConnectFailed,
    CreateAction,
    DatabaseUnavailable,
    DestroyAction,
    Drained,
    FailAction,
    HandAction,
    InvalidConfigError,
    LeakReturned,
    LeakSuspected,
    Lease,
    ManualClock,
    PoolAction,
    PoolClosed,
    PoolEngine,
    PoolOverloaded,
    PoolTimeout,
    StateChange,
    TimeoutPolicy,
    ValidateAction,
    Waiter,
)

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "conformance" / "pool"
FILES = sorted(VECTORS.glob("*.json"))

# Times are compared to a nanosecond (the README's 1e-6 ms).
TOLERANCE_MS = 1e-6

ERRORS = {
    "timeout": PoolTimeout,
    "overloaded": PoolOverloaded,
    "connect_failed": ConnectFailed,
    "database_unavailable": DatabaseUnavailable,
    "budget_exhausted": BudgetExhausted,
    "closed": PoolClosed,
}
REASONS = {
    "broken",
    "invalid",
    "idle_timeout",
    "expired",
    "resized",
    "closed",
    "create_timed_out",
    "stale",
}
CONFIG_KEYS = {
    "max_size",
    "min_idle",
    "max_waiters",
    "acquire_timeout_ms",
    "create_timeout_ms",
    "idle_timeout_ms",
    "max_lifetime_ms",
    "lifetime_jitter",
    "validate_after_ms",
    "idle_order",
    "leak_threshold_ms",
    "create_backoff",
    "breaker",
    "seed",
}
STEP_KEYS = {
    "acquire": {"id", "budget_ms", "expect"},
    "actions": {"expect"},
    "created": {"slot"},
    "create_failed": {"slot", "error"},
    "validated": {"slot", "ok"},
    "release": {"id", "broken", "expect"},
    "cancel": {"id", "expect"},
    "timeout": set(),
    "next_timeout": {"expect_ms", "expect_ms_between"},
    "resize": {"max_size"},
    "drain": {"deadline_ms"},
    "metrics": {"expect"},
    "events": {"expect"},
}
METRICS = {
    "idle",
    "used",
    "creating",
    "max",
    "idle_max",
    "idle_min",
    "pending_requests",
    "timeouts",
    "acquired",
    "released",
    "overloaded",
    "unavailable",
    "created",
    "create_failures",
    "destroyed",
    "leaks",
    "breaker_state",
}


def check_keys(obj: Dict[str, Any], allowed: Any, what: str) -> None:
    # A misspelt key would silently turn a check into a step that cannot fail.
    unknown = set(obj) - set(allowed)
    assert not unknown, f"{what}: unknown keys {sorted(unknown)}: fix the vector or the replayer"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def seconds(v: Any) -> Any:
    """Milliseconds to seconds; anything else (``None``, a wrong type) is passed on untouched so
    that validation vectors reach the engine as written."""
    return v / 1000 if is_number(v) else v


def engine_kwargs(config: Dict[str, Any]) -> Dict[str, Any]:
    """The vector's config as ``PoolEngine`` keyword arguments (absent keys: the defaults)."""
    check_keys(config, CONFIG_KEYS, "config")
    kw: Dict[str, Any] = {}
    for key, value in config.items():
        if key == "create_backoff":
            if not isinstance(value, dict):
                kw["create_backoff_base"] = value
                continue
            check_keys(value, {"base_ms", "cap_ms"}, "config.create_backoff")
            # A missing part reaches the engine as None, which it refuses as a wrong type.
            kw["create_backoff_base"] = seconds(value.get("base_ms"))
            kw["create_backoff_cap"] = seconds(value.get("cap_ms"))
        elif key == "breaker":
            # A given breaker replaces the default whole: keys it leaves out take
            # CircuitBreaker's defaults, which is what PoolEngine does with a dict.
            kw["breaker"] = breaker_kwargs(value) if isinstance(value, dict) else value
        elif key.endswith("_ms"):
            kw[key[: -len("_ms")]] = seconds(value)
        else:
            kw[key] = value
    return kw


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    # acquire_timeout is checked against the process-wide policy's maximum: the vectors assume
    # the default one, whatever another test set.
    saved = TimeoutPolicy.get_global()
    TimeoutPolicy.set_global(TimeoutPolicy())
    try:
        yield
    finally:
        TimeoutPolicy.set_global(saved)


class Replay:
    def __init__(self, config: Dict[str, Any]) -> None:
        self.engine = PoolEngine(**engine_kwargs(config))
        self.clock = ManualClock()
        self.t_ms = 0.0
        self.slot_ids: Dict[str, int] = {}
        self.slot_names: Dict[int, str] = {}
        self.callers: Dict[int, str] = {}
        self.waiters: Dict[str, Waiter] = {}
        self.leases: Dict[str, Lease] = {}
        # Every scenario starts with a timer at 0, which opens the `min_idle` connections.
        self.engine.handle_timeout(0.0)

    @property
    def now(self) -> float:
        return self.clock()

    def run(self, i: int, step: Dict[str, Any]) -> None:
        op = step.get("op")
        where = f"step {i} ({op})"
        assert op in STEP_KEYS, f"{where}: unknown op {op!r}: teach the replayer"
        check_keys(step, STEP_KEYS[op] | {"op", "t"}, where)
        if "t" in step:
            t = float(step["t"])
            assert t >= self.t_ms, f"{where}: time goes backwards: {t} < {self.t_ms}"
            self.t_ms = t
            self.clock.set(t / 1000)
        getattr(self, "op_" + op)(step, f"{where} at t={self.t_ms:g} ms")

    # -- names ------------------------------------------------------------------------------

    def bound(self, name: str, where: str) -> int:
        assert name in self.slot_ids, f"{where}: slot {name!r} is not bound yet"
        return self.slot_ids[name]

    def bind(self, name: str, slot: int) -> bool:
        if name in self.slot_ids:
            return self.slot_ids[name] == slot
        if slot in self.slot_names:
            return False
        self.slot_ids[name] = slot
        self.slot_names[slot] = name
        return True

    def slot_name(self, slot: int) -> str:
        return self.slot_names.get(slot, f"<unnamed slot {slot}>")

    # -- ops --------------------------------------------------------------------------------

    def op_acquire(self, step: Dict[str, Any], where: str) -> None:
        caller = step["id"]
        expect = step["expect"]
        budget = None
        if "budget_ms" in step:
            budget = Budget(step["budget_ms"] / 1000, policy=TimeoutPolicy(), clock=self.clock)
        if isinstance(expect, dict):
            check_keys(expect, {"error"}, f"{where}: expect")
            kind = expect["error"]
            assert kind in ERRORS, f"{where}: unknown error kind {kind!r}"
            with pytest.raises(ERRORS[kind]):
                self.engine.acquire(self.now, budget)
            return
        assert expect in ("ready", "wait"), f"{where}: unknown expectation {expect!r}"
        got = self.engine.acquire(self.now, budget)
        if expect == "ready":
            assert isinstance(got, Lease), f"{where}: expected ready, got {got}"
            self.leases[caller] = got
        else:
            assert isinstance(got, Waiter), f"{where}: expected wait, got {got}"
            self.callers[got.id] = caller
            self.waiters[caller] = got

    def show(self, a: PoolAction) -> str:
        if isinstance(a, CreateAction):
            return f"create {self.slot_name(a.slot)}"
        if isinstance(a, ValidateAction):
            return f"validate {self.slot_name(a.slot)}"
        if isinstance(a, DestroyAction):
            return f"destroy {self.slot_name(a.slot)} ({a.reason})"
        if isinstance(a, HandAction):
            return f"hand {self.callers.get(a.waiter)} {self.slot_name(a.lease.slot)}"
        return f"fail {self.callers.get(a.waiter)} ({type(a.error).__name__}: {a.error})"

    def matches(self, want: Dict[str, Any], got: PoolAction, where: str) -> bool:
        if "create" in want:
            check_keys(want, {"create"}, where)
            return isinstance(got, CreateAction) and self.bind(want["create"], got.slot)
        if "validate" in want:
            check_keys(want, {"validate"}, where)
            return isinstance(got, ValidateAction) and self.bind(want["validate"], got.slot)
        if "destroy" in want:
            check_keys(want, {"destroy", "reason"}, where)
            assert want["reason"] in REASONS, f"{where}: unknown reason {want['reason']!r}"
            return (
                isinstance(got, DestroyAction)
                and got.reason == want["reason"]
                and self.bind(want["destroy"], got.slot)
            )
        if "hand" in want:
            check_keys(want, {"hand", "slot"}, where)
            if not (
                isinstance(got, HandAction)
                and self.callers.get(got.waiter) == want["hand"]
                and self.bind(want["slot"], got.lease.slot)
            ):
                return False
            self.leases[want["hand"]] = got.lease
            return True
        if "fail" in want:
            check_keys(want, {"fail", "error"}, where)
            kind = want["error"]
            assert kind in ERRORS, f"{where}: unknown error kind {kind!r}"
            return (
                isinstance(got, FailAction)
                and self.callers.get(got.waiter) == want["fail"]
                and type(got.error) is ERRORS[kind]
            )
        raise AssertionError(f"{where}: unknown action {want}")

    def op_actions(self, step: Dict[str, Any], where: str) -> None:
        wanted: List[Dict[str, Any]] = step["expect"]
        got: List[PoolAction] = []
        while True:
            a = self.engine.poll_action()
            if a is None:
                break
            got.append(a)
        ok = len(wanted) == len(got) and all(
            self.matches(w, g, where) for w, g in zip(wanted, got)
        )
        assert ok, f"{where}: expected actions {wanted}, got {[self.show(g) for g in got]}"

    def op_created(self, step: Dict[str, Any], where: str) -> None:
        self.engine.handle_created(self.bound(step["slot"], where), self.now)

    def op_create_failed(self, step: Dict[str, Any], where: str) -> None:
        self.engine.handle_create_failed(self.bound(step["slot"], where), step["error"], self.now)

    def op_validated(self, step: Dict[str, Any], where: str) -> None:
        assert isinstance(step["ok"], bool), f"{where}: ok must be a boolean"
        self.engine.handle_validated(self.bound(step["slot"], where), step["ok"], self.now)

    def op_release(self, step: Dict[str, Any], where: str) -> None:
        caller = step["id"]
        assert caller in self.leases, f"{where}: no lease was ever given to {caller!r}"
        accepted = self.engine.release(self.leases[caller], step.get("broken", False), self.now)
        want = step.get("expect", True)
        assert accepted == want, f"{where}: release accepted={accepted}, expected {want}"

    def op_cancel(self, step: Dict[str, Any], where: str) -> None:
        caller = step["id"]
        assert caller in self.waiters, f"{where}: {caller!r} never waited"
        cancelled = self.engine.cancel(self.waiters[caller], self.now)
        want = step.get("expect", True)
        assert cancelled == want, f"{where}: cancel accepted={cancelled}, expected {want}"

    def op_timeout(self, step: Dict[str, Any], where: str) -> None:
        self.engine.handle_timeout(self.now)

    def op_next_timeout(self, step: Dict[str, Any], where: str) -> None:
        at = self.engine.poll_timeout()
        got_ms: Optional[float] = None if at is None else at * 1000
        if "expect_ms" in step:
            assert "expect_ms_between" not in step, f"{where}: give one expectation"
            want = step["expect_ms"]
            if want is None:
                assert got_ms is None, f"{where}: expected no timeout, got {got_ms} ms"
            else:
                assert got_ms is not None and math.isclose(
                    got_ms, want, rel_tol=0, abs_tol=TOLERANCE_MS
                ), f"{where}: expected a timeout at {want} ms, got {got_ms}"
        else:
            lo, hi = step["expect_ms_between"]
            assert got_ms is not None and lo - TOLERANCE_MS <= got_ms <= hi + TOLERANCE_MS, (
                f"{where}: expected a timeout in [{lo}, {hi}] ms, got {got_ms}"
            )

    def op_resize(self, step: Dict[str, Any], where: str) -> None:
        self.engine.resize(step["max_size"], self.now)

    def op_drain(self, step: Dict[str, Any], where: str) -> None:
        self.engine.drain(self.now, step["deadline_ms"] / 1000)

    def op_metrics(self, step: Dict[str, Any], where: str) -> None:
        got = self.engine.metrics(self.now).as_dict()
        for key, want in step["expect"].items():
            assert key in METRICS, f"{where}: unknown metric {key!r}"
            assert got[key] == want, f"{where}: {key} = {got[key]!r}, expected {want!r}"

    def event_text(self, e: Any) -> Any:
        if isinstance(e, (LeakSuspected, LeakReturned)):
            kind = "leak_suspected" if isinstance(e, LeakSuspected) else "leak_returned"
            return (kind, self.slot_name(e.slot), round(e.held_for * 1000, 6))
        if isinstance(e, StateChange):
            return ("breaker", e.from_state, e.to_state, e.reason)
        if isinstance(e, ConnectAttemptFailed):
            return ("connect_failed", e.error, e.attempts)
        assert isinstance(e, Drained), f"unknown event {e!r}"
        return ("drained", sorted(self.slot_name(s) for s in e.still_held))

    def wanted_event(self, w: Dict[str, Any], where: str) -> Any:
        for kind in ("leak_suspected", "leak_returned"):
            if kind in w:
                check_keys(w, {kind, "held_ms"}, where)
                self.bound(w[kind], where)
                return (kind, w[kind], round(float(w["held_ms"]), 6))
        if "breaker" in w:
            check_keys(w, {"breaker"}, where)
            t = w["breaker"]
            check_keys(t, {"from", "to", "reason"}, where)
            return ("breaker", t["from"], t["to"], t["reason"])
        if "connect_failed" in w:
            check_keys(w, {"connect_failed", "attempts"}, where)
            return ("connect_failed", w["connect_failed"], w["attempts"])
        if "drained" in w:
            check_keys(w, {"drained"}, where)
            for name in w["drained"]:
                self.bound(name, where)
            return ("drained", sorted(w["drained"]))
        raise AssertionError(f"{where}: unknown event {w}")

    def op_events(self, step: Dict[str, Any], where: str) -> None:
        wanted = [self.wanted_event(w, where) for w in step["expect"]]
        got = []
        while True:
            e = self.engine.poll_event()
            if e is None:
                break
            got.append(self.event_text(e))
        assert got == wanted, f"{where}: expected events {wanted}, got {got}"


def check_expected_error(config: Dict[str, Any], expected: Dict[str, Any]) -> None:
    check_keys(expected, {"field", "kind"}, "expect_error")
    # The vectors name fields as the core does; Python spells them as keywords.
    field = expected["field"].replace("create_backoff.", "create_backoff_")
    kind = expected["kind"]
    with pytest.raises((TypeError, ValueError)) as info:
        PoolEngine(**engine_kwargs(config))
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
    assert FILES, f"no pool conformance vectors in {VECTORS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    check_keys(vector, {"name", "description", "config", "steps", "expect_error"}, "the file")
    assert isinstance(vector.get("name"), str), "the file needs a string name"
    config = vector.get("config", {})
    if "expect_error" in vector:
        assert "steps" not in vector, "a validation vector has no steps"
        check_expected_error(config, vector["expect_error"])
        return
    replay = Replay(config)
    for i, step in enumerate(vector["steps"]):
        replay.run(i, step)


def test_replayer_detects_a_disagreement() -> None:
    # The replayer itself must be able to fail: wrong expectations are refused.
    replay = Replay({"max_size": 1, "seed": 1})
    replay.run(0, {"t": 0, "op": "acquire", "id": "a", "expect": "wait"})
    with pytest.raises(AssertionError, match="expected actions"):
        replay.run(1, {"op": "actions", "expect": [{"validate": "c1"}]})
    with pytest.raises(AssertionError, match="unknown keys"):
        replay.run(2, {"op": "metrics", "expcet": {}})
    with pytest.raises(AssertionError, match="unknown op"):
        replay.run(3, {"op": "acquier", "id": "b", "expect": "wait"})
    with pytest.raises(AssertionError, match="pending_requests = 1"):
        replay.run(4, {"op": "metrics", "expect": {"pending_requests": 0}})
