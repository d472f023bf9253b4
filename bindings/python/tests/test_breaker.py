"""The Python API of the circuit breaker: every way to guard a call, classification, listeners,
manual states, snapshots and permits. Time moves only through a ManualClock."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import pickle
import threading
from typing import Any, List

import pytest

import seawall
from seawall import (
    CircuitBreaker,
    CircuitOpenError,
    InvalidConfigError,
    ManualClock,
    Metrics,
    Rejection,
    SeawallError,
    SnapshotError,
    StateChange,
)
from seawall._native import defaults as native_defaults


class Boom(Exception):
    pass


class NotFound(Exception):
    pass


def tripping_breaker(clock: ManualClock, **kw: Any) -> CircuitBreaker:
    """A breaker that opens on 2 failures out of the last 2 calls."""
    options: dict[str, Any] = dict(
        window_size=2, minimum_calls=2, failure_rate_threshold=100.0, open_duration=10.0
    )
    options.update(kw)
    return CircuitBreaker(clock=clock, **options)


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(_raise_boom)


def _raise_boom() -> None:
    raise Boom("down")


# -- configuration -------------------------------------------------------------------------


def test_signature_defaults_are_the_cores() -> None:
    params = inspect.signature(CircuitBreaker).parameters
    core = native_defaults()
    assert core, "the native module reported no defaults"
    for key, value in core.items():
        assert key in params, f"the core has {key!r} but CircuitBreaker does not"
        assert params[key].default == value, f"{key}: {params[key].default!r} != core {value!r}"
    # Keyword-only, as documented.
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_public_names() -> None:
    for name in seawall.__all__:
        assert hasattr(seawall, name), name


def test_exception_hierarchy() -> None:
    assert issubclass(SeawallError, Exception)
    assert issubclass(CircuitOpenError, SeawallError)
    assert issubclass(InvalidConfigError, SeawallError)
    assert issubclass(InvalidConfigError, ValueError)
    assert issubclass(SnapshotError, SeawallError)
    assert issubclass(SnapshotError, ValueError)
    with pytest.raises(InvalidConfigError) as info:
        CircuitBreaker(window_size=0)
    assert info.value.field == "window_size"
    assert info.value.got == "0"
    assert "window_size" in str(info.value)


def test_time_window_and_exponential_backoff_are_accepted() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        window="time",
        window_duration=10.0,
        window_buckets=5,
        minimum_calls=2,
        backoff="exponential",
        open_duration=1.0,
        half_open_calls=1,
        clock=clock,
    )
    fail(breaker, 2)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: None)
    assert info.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    fail(breaker)  # the probe fails: reopen for twice as long
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: None)
    assert info.value.retry_after == pytest.approx(2.0)


def test_default_max_open_duration_is_ten_open_durations() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(
        clock,
        backoff="exponential",
        backoff_multiplier=100.0,
        open_duration=1.0,
        half_open_calls=1,
    )
    fail(breaker, 2)
    clock.advance(1.0)
    fail(breaker)  # 1 s × 100 is capped at 10 s
    with pytest.raises(CircuitOpenError) as info:
        breaker.try_acquire()
    assert info.value.retry_after == pytest.approx(10.0)


# -- ways to guard a call ------------------------------------------------------------------


def test_sync_decorator_keeps_metadata_and_counts_outcomes() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)

    @breaker
    def fetch(key: str, *, default: int = 0) -> str:
        """Fetches a key."""
        if key == "bad":
            raise Boom(key)
        return f"{key}:{default}"

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetches a key."
    assert fetch.__wrapped__ is not None  # type: ignore[attr-defined]
    assert fetch("a", default=2) == "a:2"
    with pytest.raises(Boom):
        fetch("bad")
    m = breaker.metrics()
    assert (m.successes, m.failures, m.in_flight) == (1, 1, 0)
    with pytest.raises(Boom):
        fetch("bad")
    assert breaker.state == "open"
    called: List[str] = []
    with pytest.raises(CircuitOpenError):
        breaker(lambda: called.append("x"))()
    assert called == []


def test_async_decorator() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)

    @breaker
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise Boom()
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch"

    async def main() -> None:
        assert await fetch(21) == 42
        for _ in range(2):
            with pytest.raises(Boom):
                await fetch(-1)
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError) as info:
            await fetch(1)
        assert info.value.retry_after == pytest.approx(10.0)

    asyncio.run(main())
    m = breaker.metrics()
    assert (m.successes, m.failures, m.rejected, m.in_flight) == (1, 2, 1, 0)


def test_decorating_a_generator_function_is_refused() -> None:
    breaker = CircuitBreaker()

    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError):
        breaker(gen)
    with pytest.raises(TypeError):
        breaker(agen)
    with pytest.raises(TypeError):
        breaker(42)  # type: ignore[type-var]


def test_with_block_records_and_never_suppresses() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    with breaker as b:
        assert b is breaker
    with pytest.raises(Boom):
        with breaker:
            raise Boom()
    m = breaker.metrics()
    assert (m.successes, m.failures, m.in_flight) == (1, 1, 0)
    with pytest.raises(Boom):
        with breaker:
            raise Boom()
    with pytest.raises(CircuitOpenError):
        with breaker:
            raise AssertionError("the block must not run")


def test_nested_with_blocks_of_one_breaker() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(slow_call_duration=5.0, clock=clock)
    with breaker:
        clock.advance(1)
        with breaker:
            clock.advance(6)  # inner: 6 s, slow
        clock.advance(1)  # outer: 8 s, slow
    with breaker:
        pass
    m = breaker.metrics()
    assert (m.successes, m.slow_calls, m.in_flight) == (3, 2, 0)


def test_async_with_keeps_each_tasks_permit() -> None:
    # Task A enters at t=0 and fails at t=10; task B enters at t=5 and succeeds at t=10. With
    # slow_call_duration 7, A's call is a slow failure and B's a fast success. If the permits
    # were shared on the breaker, B would record A's start time and the window would read
    # [fast failure, slow success] instead.
    clock = ManualClock()
    breaker = CircuitBreaker(slow_call_duration=7.0, clock=clock, window_size=10)

    async def task(enter_at: float, fails: bool, entered: asyncio.Event, go: asyncio.Event) -> None:
        while clock() < enter_at:
            await asyncio.sleep(0)
        async with breaker:
            entered.set()
            await go.wait()
            if fails:
                raise Boom()

    async def main() -> None:
        a_in, b_in, a_go, b_go = (asyncio.Event() for _ in range(4))
        a = asyncio.create_task(task(0.0, True, a_in, a_go))
        await a_in.wait()
        clock.set(5.0)
        b = asyncio.create_task(task(5.0, False, b_in, b_go))
        await b_in.wait()
        clock.set(10.0)
        a_go.set()
        with pytest.raises(Boom):
            await a
        b_go.set()
        await b

    asyncio.run(main())
    assert breaker.snapshot()["window"]["calls"] == [3, 0]
    m = breaker.metrics()
    assert (m.failures, m.successes, m.slow_calls, m.in_flight) == (1, 1, 1, 0)


def test_many_concurrent_tasks_all_record() -> None:
    breaker = CircuitBreaker(window_size=1000, minimum_calls=1000)

    async def one(i: int) -> None:
        async with breaker:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if i % 3 == 0:
                raise Boom()

    async def main() -> None:
        results = await asyncio.gather(*(one(i) for i in range(300)), return_exceptions=True)
        assert sum(isinstance(r, Boom) for r in results) == 100

    asyncio.run(main())
    m = breaker.metrics()
    assert (m.permitted, m.successes, m.failures, m.in_flight) == (300, 200, 100, 0)


def test_threads_share_one_breaker() -> None:
    breaker = CircuitBreaker(window_size=10_000, minimum_calls=10_000)
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(500):
            try:
                with breaker:
                    if (i + n) % 5 == 0:
                        raise Boom()
            except Boom:
                pass

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = breaker.metrics()
    assert m.permitted == 4000
    assert m.failures == 800
    assert m.successes == 3200
    assert m.in_flight == 0


def test_exit_without_enter_is_an_error() -> None:
    breaker = CircuitBreaker()
    with pytest.raises(RuntimeError):
        breaker.__exit__(None, None, None)


def test_call_and_call_async() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    assert breaker.call(lambda a, b=0: a + b, 1, b=2) == 3

    async def add(a: int, b: int = 0) -> int:
        await asyncio.sleep(0)
        return a + b

    assert asyncio.run(breaker.call_async(add, 1, b=3)) == 4
    with pytest.raises(TypeError):
        breaker.call(add, 1)  # type: ignore[arg-type]
    fail(breaker, 2)
    ran: List[int] = []

    async def never() -> None:
        ran.append(1)

    with pytest.raises(CircuitOpenError):
        asyncio.run(breaker.call_async(never))
    assert ran == []
    m = breaker.metrics()
    assert (m.successes, m.failures, m.rejected) == (2, 2, 1)


# -- classification ------------------------------------------------------------------------


def test_exclude_types_are_ignored() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, exclude=(NotFound, KeyError))
    for exc in (NotFound(), KeyError("k"), NotFound()):
        with pytest.raises(type(exc)):
            with breaker:
                raise exc
    m = breaker.metrics()
    assert (m.ignored, m.failures, m.calls_in_window) == (3, 0, 0)
    assert breaker.state == "closed"


def test_exclude_single_type_and_predicate() -> None:
    breaker = CircuitBreaker(exclude=NotFound)
    with pytest.raises(NotFound):
        breaker.call(_raise(NotFound()))
    assert breaker.metrics().ignored == 1

    breaker = CircuitBreaker(exclude=lambda e: "404" in str(e))
    with pytest.raises(Boom):
        breaker.call(_raise(Boom("404")))
    with pytest.raises(Boom):
        breaker.call(_raise(Boom("500")))
    m = breaker.metrics()
    assert (m.ignored, m.failures) == (1, 1)


def _raise(exc: BaseException) -> Any:
    def f() -> None:
        raise exc

    return f


def test_is_failure_false_counts_as_success() -> None:
    breaker = CircuitBreaker(is_failure=lambda e: not isinstance(e, NotFound))
    with pytest.raises(NotFound):
        breaker.call(_raise(NotFound()))
    with pytest.raises(Boom):
        breaker.call(_raise(Boom()))
    m = breaker.metrics()
    assert (m.successes, m.failures) == (1, 1)


def test_is_result_failure() -> None:
    breaker = CircuitBreaker(is_result_failure=lambda r: r is None)
    assert breaker.call(lambda: 1) == 1
    assert breaker.call(lambda: None) is None

    @breaker
    async def empty() -> None:
        return None

    asyncio.run(empty())
    m = breaker.metrics()
    assert (m.successes, m.failures) == (1, 2)


def test_base_exceptions_are_ignored() -> None:
    breaker = CircuitBreaker()
    with pytest.raises(KeyboardInterrupt):
        breaker.call(_raise(KeyboardInterrupt()))
    with pytest.raises(SystemExit):
        with breaker:
            raise SystemExit(1)

    async def cancelled() -> None:
        raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(breaker.call_async(cancelled))
    m = breaker.metrics()
    assert (m.ignored, m.failures, m.successes, m.in_flight) == (3, 0, 0, 0)


def test_cancelled_task_releases_its_permit() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, half_open_calls=1)
    fail(breaker, 2)
    clock.advance(10)

    async def main() -> None:
        started = asyncio.Event()

        async def probe() -> None:
            async with breaker:
                started.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(probe())
        await started.wait()
        with pytest.raises(CircuitOpenError):
            breaker.try_acquire()  # the single probe slot is taken
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        breaker.try_acquire().success()  # freed by the cancellation

    asyncio.run(main())
    assert breaker.state == "closed"


def test_a_raising_classifier_releases_the_permit_and_propagates() -> None:
    def bad_classifier(exc: BaseException) -> bool:
        raise RuntimeError("classifier bug")

    breaker = CircuitBreaker(is_failure=bad_classifier, is_result_failure=bad_classifier)
    with pytest.raises(RuntimeError, match="classifier bug"):
        breaker.call(_raise(Boom()))
    with pytest.raises(RuntimeError, match="classifier bug"):
        breaker.call(lambda: 1)
    with pytest.raises(RuntimeError, match="classifier bug"):
        with breaker:
            raise Boom()
    m = breaker.metrics()
    assert (m.ignored, m.in_flight) == (3, 0)


# -- permits -------------------------------------------------------------------------------


def test_permit_records_exactly_one_outcome() -> None:
    breaker = CircuitBreaker()
    permit = breaker.try_acquire()
    assert not permit.recorded
    permit.success()
    permit.failure()
    permit.ignore()
    assert permit.recorded
    m = breaker.metrics()
    assert (m.successes, m.failures, m.ignored, m.in_flight) == (1, 0, 0, 0)


def test_permit_as_context_manager() -> None:
    breaker = CircuitBreaker()
    with breaker.try_acquire():
        pass
    with pytest.raises(Boom):
        with breaker.try_acquire():
            raise Boom()
    with breaker.try_acquire() as permit:
        permit.ignore()
    m = breaker.metrics()
    assert (m.successes, m.failures, m.ignored, m.in_flight) == (1, 1, 1, 0)


def test_garbage_collected_permit_frees_the_probe_slot() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, half_open_calls=1)
    fail(breaker, 2)
    clock.advance(10)
    permit = breaker.try_acquire()
    with pytest.raises(CircuitOpenError) as info:
        breaker.try_acquire()
    assert info.value.reason == "half_open_full"
    assert info.value.retry_after is None
    del permit
    gc.collect()
    m = breaker.metrics()
    assert (m.ignored, m.in_flight) == (1, 0)
    breaker.try_acquire().success()
    assert breaker.state == "closed"


def test_rejection_raises_a_fresh_picklable_error() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, name="payments")
    fail(breaker, 2)
    clock.advance(4)
    errors = []
    for _ in range(3):
        try:
            breaker.try_acquire()
        except CircuitOpenError as e:
            errors.append(e)
    assert len({id(e) for e in errors}) == 3
    e = errors[0]
    assert (e.reason, e.retry_after, e.breaker_name) == ("open", pytest.approx(6.0), "payments")
    assert "payments" in str(e) and "6.000 s" in str(e)
    copy = pickle.loads(pickle.dumps(e))
    assert (copy.reason, copy.retry_after, copy.breaker_name) == (
        e.reason,
        e.retry_after,
        e.breaker_name,
    )
    # A fresh instance's traceback holds only its own raise.
    depth = 0
    tb = errors[-1].__traceback__
    while tb is not None:
        depth += 1
        tb = tb.tb_next
    assert depth <= 3


# -- listeners -----------------------------------------------------------------------------


def test_listeners_hear_transitions_and_rejections() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, half_open_calls=1)
    changes: List[StateChange] = []
    rejections: List[Rejection] = []

    @breaker.on_state_change
    def on_change(change: StateChange) -> None:
        changes.append(change)

    assert on_change is not None
    breaker.on_reject(rejections.append)
    fail(breaker, 2)
    clock.advance(3)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    clock.advance(7)
    breaker.call(lambda: None)
    assert changes == [
        StateChange("closed", "open", "failure_rate"),
        StateChange("open", "half_open", "open_duration_elapsed"),
        StateChange("half_open", "closed", "probes_succeeded"),
    ]
    assert rejections == [Rejection("open", pytest.approx(7.0))]


def test_a_listener_that_raises_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    heard: List[StateChange] = []

    def broken(change: StateChange) -> None:
        raise RuntimeError("listener bug")

    def broken_reject(rejection: Rejection) -> None:
        raise RuntimeError("reject listener bug")

    breaker.on_state_change(broken)
    breaker.on_state_change(heard.append)
    breaker.on_reject(broken_reject)
    with caplog.at_level(logging.ERROR, logger="seawall"):
        fail(breaker, 2)
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    assert heard == [StateChange("closed", "open", "failure_rate")]
    messages = [r.getMessage() for r in caplog.records]
    assert any("on_state_change listener" in m for m in messages)
    assert any("on_reject listener" in m for m in messages)
    m = breaker.metrics()
    assert (m.state, m.failures, m.rejected, m.in_flight) == ("open", 2, 1, 0)


def test_a_listener_may_use_the_breaker() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    seen: List[Metrics] = []
    breaker.on_state_change(lambda change: seen.append(breaker.metrics()))
    fail(breaker, 2)
    assert [m.state for m in seen] == ["open"]


def test_transition_on_acquire_is_heard() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    changes: List[StateChange] = []
    fail(breaker, 2)
    breaker.on_state_change(changes.append)
    clock.advance(10)
    permit = breaker.try_acquire()
    assert changes == [StateChange("open", "half_open", "open_duration_elapsed")]
    permit.ignore()


# -- manual states -------------------------------------------------------------------------


def test_manual_states() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    changes: List[StateChange] = []
    breaker.on_state_change(changes.append)

    breaker.force_open()
    assert breaker.state == "forced_open"
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: None)
    assert (info.value.reason, info.value.retry_after) == ("forced_open", None)

    breaker.disable()
    fail(breaker, 5)
    assert breaker.state == "disabled"
    assert breaker.metrics().failures == 0  # disabled records nothing

    breaker.metrics_only()
    fail(breaker, 5)
    assert breaker.state == "metrics_only"
    assert breaker.metrics().failures == 5

    breaker.reset()
    assert breaker.state == "closed"
    assert [c.to_state for c in changes] == ["forced_open", "disabled", "metrics_only", "closed"]
    assert changes[-1].reason == "reset"


# -- snapshots -----------------------------------------------------------------------------


def test_snapshot_round_trip_into_another_breaker() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    fail(breaker, 2)
    clock.advance(4)
    snapshot = breaker.snapshot()
    assert snapshot["state"] == "open"
    assert json.loads(breaker.to_json()) == snapshot

    other_clock = ManualClock(1000.0)
    other = tripping_breaker(other_clock)
    changes: List[StateChange] = []
    other.on_state_change(changes.append)
    other.restore(snapshot)
    assert other.state == "open"
    assert changes == [StateChange("closed", "open", "restored")]
    with pytest.raises(CircuitOpenError) as info:
        other.try_acquire()
    assert info.value.retry_after == pytest.approx(6.0)
    assert other.snapshot() == snapshot

    third = tripping_breaker(ManualClock())
    third.restore(breaker.to_json())
    assert third.state == "open"


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "{}",
        {"version": 99, "state": "closed"},
        {"version": 1, "state": "sideways", "consecutive_failures": 0, "consecutive_opens": 0,
         "window": {"kind": "count", "calls": []}},
        {"version": 1, "state": "closed", "consecutive_failures": 0, "consecutive_opens": 0,
         "window": {"kind": "count", "calls": [7]}},
        {"version": 1, "state": "closed", "consecutive_failures": 0, "consecutive_opens": 0,
         "window": {"kind": "time", "buckets": []}},
        {"version": 1, "state": "open", "consecutive_failures": 0, "consecutive_opens": 0,
         "window": {"kind": "count", "calls": []}},
        {"version": float("nan")},
        {"version": {1, 2}},
        {"version": True, "state": "closed"},
    ],
)
def test_bad_snapshots_raise_snapshot_error_and_change_nothing(bad: Any) -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    fail(breaker)
    before = breaker.snapshot()
    with pytest.raises(SnapshotError):
        breaker.restore(bad)
    assert breaker.snapshot() == before


def test_restore_of_the_wrong_type() -> None:
    with pytest.raises(TypeError):
        CircuitBreaker().restore(42)  # type: ignore[arg-type]


# -- clocks --------------------------------------------------------------------------------


def test_manual_clock() -> None:
    clock = ManualClock()
    assert clock() == 0.0
    clock.advance(1.5)
    clock.advance(2)
    assert clock() == 3.5
    clock.set(10)
    assert clock() == 10.0
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError):
            clock.advance(bad)
        with pytest.raises(ValueError):
            clock.set(bad)
    with pytest.raises(TypeError):
        clock.advance("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        clock.set(True)


def test_any_callable_is_a_clock() -> None:
    now = [100.0]
    breaker = tripping_breaker(lambda: now[0])  # type: ignore[arg-type]
    fail(breaker, 2)
    now[0] += 10
    assert breaker.state == "half_open"


def test_a_clock_that_goes_bad_raises_without_leaking_a_permit() -> None:
    now: List[Any] = [1.0]
    breaker = CircuitBreaker(clock=lambda: now[0])
    permit = breaker.try_acquire()
    now[0] = float("nan")
    with pytest.raises(ValueError, match="clock"):
        permit.success()
    now[0] = 2.0
    m = breaker.metrics()
    assert (m.in_flight, m.ignored) == (0, 1)


def test_repr() -> None:
    breaker = CircuitBreaker(name="db")
    assert repr(breaker) == "<CircuitBreaker name='db' state='closed'>"


def test_metrics_as_dict() -> None:
    m = CircuitBreaker().metrics()
    d = m.as_dict()
    assert set(d) == {
        "state", "failure_rate", "slow_call_rate", "calls_in_window", "failures_in_window",
        "slow_calls_in_window", "permitted", "successes", "failures", "ignored", "slow_calls",
        "rejected", "in_flight", "times_opened", "consecutive_failures",
    }
    assert d["state"] == m.state == "closed"


def test_decorated_method_shares_the_breaker() -> None:
    breaker = CircuitBreaker()

    class Client:
        @breaker
        def get(self, x: int) -> int:
            return x

    assert Client().get(3) == 3
    assert Client().get(4) == 4
    assert breaker.metrics().successes == 2
