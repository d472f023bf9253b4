"""``PoolEngine`` beyond the conformance vectors: random sequences of everything an adapter (or a
buggy one) can do keep the limits and the bookkeeping, and bad arguments are refused with a clear
error rather than reaching the core.
"""

from __future__ import annotations

import random
from typing import Dict, List, Set

import pytest

from seawall import (
    Budget,
    BudgetExhausted,
    CreateAction,
    DestroyAction,
    FailAction,
    HandAction,
    InvalidConfigError,
    Lease,
    ManualClock,
    PoolEngine,
    PoolError,
    ValidateAction,
    Waiter,
)


@pytest.mark.parametrize("seed", range(8))
def test_random_operations_keep_the_limits_and_lose_nothing(seed: int) -> None:
    rng = random.Random(seed)
    max_size = rng.randint(1, 4)
    engine = PoolEngine(
        max_size=max_size,
        min_idle=rng.randint(0, max_size),
        max_waiters=rng.randint(0, 5),
        acquire_timeout=0.5,
        create_timeout=0.2,
        idle_timeout=rng.choice([None, 0.3]),
        max_lifetime=rng.choice([None, 1.0]),
        validate_after=rng.choice([None, 0.0, 0.05]),
        leak_threshold=rng.choice([None, 0.1]),
        idle_order=rng.choice(["lifo", "fifo"]),
        create_backoff_base=0.01,
        create_backoff_cap=0.05,
        breaker={"consecutive_failures": 3, "open_duration": 0.2, "half_open_calls": 1},
        seed=seed,
    )
    clock = ManualClock()
    engine.handle_timeout(0.0)
    creating: Set[int] = set()
    validating: Set[int] = set()
    leases: List[Lease] = []
    waiting: Dict[int, Waiter] = {}
    ended: Set[int] = set()

    def perform() -> None:
        while True:
            a = engine.poll_action()
            if a is None:
                return
            if isinstance(a, CreateAction):
                assert a.slot not in creating
                creating.add(a.slot)
            elif isinstance(a, ValidateAction):
                validating.add(a.slot)
            elif isinstance(a, DestroyAction):
                creating.discard(a.slot)
                validating.discard(a.slot)
            elif isinstance(a, HandAction):
                assert a.waiter in waiting and a.waiter not in ended, "a waiter ended twice"
                ended.add(a.waiter)
                leases.append(a.lease)
            else:
                assert isinstance(a, FailAction)
                assert a.waiter in waiting and a.waiter not in ended, "a waiter ended twice"
                assert isinstance(a.error, (PoolError, BudgetExhausted))
                ended.add(a.waiter)

    for _ in range(400):
        clock.advance(rng.choice([0.0, 0.001, 0.01, 0.05, 0.2]))
        now = clock()
        op = rng.randrange(10)
        try:
            if op == 0:
                budget = Budget(rng.choice([0.02, 1.0]), clock=clock) if rng.random() < 0.3 else None
                got = engine.acquire(now, budget)
                if isinstance(got, Lease):
                    leases.append(got)
                else:
                    waiting[got.id] = got
            elif op == 1 and leases:
                lease = leases.pop(rng.randrange(len(leases)))
                assert engine.release(lease, rng.random() < 0.2, now)
                if rng.random() < 0.2:
                    # A second release of the same checkout is always refused.
                    assert not engine.release(lease, False, now)
            elif op == 2 and creating:
                slot = rng.choice(sorted(creating))
                creating.discard(slot)
                if rng.random() < 0.6:
                    engine.handle_created(slot, now)
                else:
                    engine.handle_create_failed(slot, "refused", now)
            elif op == 3 and validating:
                slot = rng.choice(sorted(validating))
                validating.discard(slot)
                engine.handle_validated(slot, rng.random() < 0.7, now)
            elif op == 4 and waiting:
                wid = rng.choice(sorted(waiting))
                if engine.cancel(waiting[wid], now):
                    assert wid not in ended
                    ended.add(wid)
            elif op == 5:
                engine.handle_timeout(now)
            elif op == 6:
                # Late or bogus reports, as a buggy adapter might send: ignored or closed.
                engine.handle_created(10_000 + rng.randrange(5), now)
                engine.handle_validated(10_000 + rng.randrange(5), True, now)
                engine.handle_create_failed(10_000 + rng.randrange(5), "late", now)
                assert not engine.release(Lease(10_000, 1), False, now)
                assert not engine.cancel(10_000, now)
            elif op == 7 and rng.random() < 0.1:
                engine.resize(rng.randint(1, 4), now)
            else:
                at = engine.poll_timeout()
                if at is not None and at > now:
                    clock.set(at)
                    engine.handle_timeout(at)
        except (PoolError, BudgetExhausted):
            pass
        perform()
        m = engine.metrics(clock())
        assert m.idle + m.used + m.creating <= m.max
        # Before a drain only the holder ends a checkout: every lease handed out is held here.
        assert m.acquired - m.released == len(leases)
        assert m.used >= len(leases)
        assert m.pending_requests == len(set(waiting) - ended)
    # Drain: every waiter ends, everything closes once the checkouts come back.
    engine.drain(clock(), clock() + 1.0)
    perform()
    for lease in leases:
        engine.release(lease, False, clock())
    for slot in sorted(creating):
        engine.handle_create_failed(slot, "closing", clock())
    for slot in sorted(validating):
        engine.handle_validated(slot, True, clock())
    clock.advance(1.0)
    engine.handle_timeout(clock())
    perform()
    assert engine.is_closed
    m = engine.metrics(clock())
    assert (m.idle, m.used, m.creating, m.pending_requests) == (0, 0, 0, 0)
    assert set(waiting) <= ended


def test_bad_arguments_are_refused_before_the_core() -> None:
    engine = PoolEngine(max_size=1)
    with pytest.raises(TypeError, match="now must be a number"):
        engine.acquire("0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now must be a number"):
        engine.handle_timeout(True)
    with pytest.raises(ValueError, match="clock"):
        engine.handle_timeout(-1.0)
    with pytest.raises(ValueError, match="clock"):
        engine.handle_timeout(float("nan"))
    with pytest.raises(TypeError, match="budget must be a Budget"):
        engine.acquire(0.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="^max_size "):
        engine.resize(0, 0.0)
    with pytest.raises(TypeError, match="^max_size must be a number"):
        engine.resize("2", 0.0)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        engine.handle_created(-1, 0.0)


def test_handle_broken_closes_an_idle_connection_and_flags_a_checked_out_one() -> None:
    engine = PoolEngine(max_size=2, validate_after=None, seed=1)
    engine.handle_timeout(0.0)
    first = engine.acquire(0.0)
    second = engine.acquire(0.0)
    creates = [a for a in _drain_actions(engine) if type(a).__name__ == "CreateAction"]
    assert len(creates) == 2
    for a in creates:
        engine.handle_created(a.slot, 0.001)
    hands = [a for a in _drain_actions(engine) if type(a).__name__ == "HandAction"]
    assert len(hands) == 2
    engine.release(hands[0].lease, False, 0.002)
    _drain_actions(engine)
    # Idle and reported dead: closed at once.
    assert engine.handle_broken(hands[0].lease.slot, 0.003) is True
    destroyed = [a for a in _drain_actions(engine) if type(a).__name__ == "DestroyAction"]
    assert [(a.slot, a.reason) for a in destroyed] == [(hands[0].lease.slot, "broken")]
    # Checked out and reported dead: closed when it comes back, even released as fine.
    assert engine.handle_broken(hands[1].lease.slot, 0.004) is True
    assert _drain_actions(engine) == []
    engine.release(hands[1].lease, False, 0.005)
    destroyed = [a for a in _drain_actions(engine) if type(a).__name__ == "DestroyAction"]
    assert [(a.slot, a.reason) for a in destroyed] == [(hands[1].lease.slot, "broken")]
    assert engine.handle_broken(hands[1].lease.slot, 0.006) is False
    del first, second


def _drain_actions(engine: PoolEngine) -> List[object]:
    out: List[object] = []
    while True:
        a = engine.poll_action()
        if a is None:
            return out
        out.append(a)
