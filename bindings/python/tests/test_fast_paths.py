"""The native fast paths: ``CircuitBreaker.call`` and sync decorated functions in one native
call, the async breaker paths' native admit / settle, ``CircuitOpenError`` made without its
``__init__``, ``Budget`` built by its native base, and the one shared deadline timer per loop.

Each test drives a path whose shortcut could drop part of the facade's semantics (listeners,
classifiers, permits released on every exit, cancellation bookkeeping) and checks that part."""

from __future__ import annotations

import asyncio
import gc
import pickle
import sys
import time
from typing import Any, Callable, Coroutine, List

import pytest

from seawall import (
    Budget,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceeded,
    ManualClock,
    Rejection,
    StateChange,
    TimeoutPolicy,
)
from seawall import _budget
from seawall._native import Ready


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


def boom() -> None:
    raise Boom("down")


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(boom)
    assert breaker.state == "open"


# -- the sync breaker in one native call --------------------------------------------------------


def test_call_is_the_native_method_and_counts_outcomes() -> None:
    breaker = CircuitBreaker()
    assert type(CircuitBreaker.__dict__.get("call", None)) is type(None)  # inherited
    assert breaker.call(lambda x, *, y: x + y, 1, y=2) == 3
    with pytest.raises(Boom):
        breaker.call(boom)
    m = breaker.metrics()
    assert (m.successes, m.failures, m.in_flight) == (1, 1, 0)


def test_a_rejection_is_a_fresh_complete_error() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, name="db")
    trip(breaker)
    clock.advance(4.0)
    errors = []
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(lambda: None)
        errors.append(info.value)
    assert len({id(e) for e in errors}) == 3
    e = errors[0]
    assert (e.reason, e.retry_after, e.breaker_name) == ("open", 6.0, "db")
    assert e.args == ("open", 6.0, "db")
    assert str(e) == "circuit breaker 'db' is open; retry after 6.000 s"
    again = pickle.loads(pickle.dumps(e))
    assert (again.reason, again.retry_after, again.breaker_name) == ("open", 6.0, "db")
    assert breaker.metrics().rejected == 3


def test_a_user_made_error_reads_the_same() -> None:
    e = CircuitOpenError("forced_open")
    assert (e.reason, e.retry_after, e.breaker_name) == ("forced_open", None, None)
    assert str(e) == "circuit breaker is forced open"


def test_reject_and_state_listeners_hear_the_native_path() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock)
    changes: List[StateChange] = []
    rejections: List[Rejection] = []
    breaker.on_state_change(changes.append)
    breaker.on_reject(rejections.append)
    guarded = breaker(lambda: "ok")
    with pytest.raises(Boom):
        breaker.call(boom)
    with pytest.raises(Boom):
        breaker(boom)()
    assert changes == [StateChange("closed", "open", "failure_rate")]
    with pytest.raises(CircuitOpenError):
        guarded()
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    assert rejections == [Rejection("open", 10.0), Rejection("open", 10.0)]
    clock.advance(10.0)
    # Admitted after the open duration: the half-open transition is reported first.
    assert guarded() == "ok"
    assert changes[-1] == StateChange("open", "half_open", "open_duration_elapsed")


def test_classifiers_run_on_the_native_path() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(
        clock,
        exclude=NotFound,
        is_failure=lambda e: not isinstance(e, KeyError),
        is_result_failure=lambda r: r == "bad",
    )

    def raise_(exc: BaseException) -> Callable[[], None]:
        def f() -> None:
            raise exc

        return f

    with pytest.raises(NotFound):
        breaker.call(raise_(NotFound()))
    with pytest.raises(KeyError):
        breaker.call(raise_(KeyError("k")))
    assert breaker.call(lambda: "bad") == "bad"
    assert breaker(lambda: "good")() == "good"
    m = breaker.metrics()
    assert (m.ignored, m.successes, m.failures, m.in_flight) == (1, 2, 1, 0)


def test_a_classifier_that_raises_releases_the_permit_and_chains_the_error() -> None:
    def bad_classifier(exc: BaseException) -> bool:
        raise RuntimeError("classifier broke")

    breaker = CircuitBreaker(is_failure=bad_classifier)
    with pytest.raises(RuntimeError, match="classifier broke") as info:
        breaker.call(boom)
    assert isinstance(info.value.__context__, Boom)
    m = breaker.metrics()
    assert (m.ignored, m.in_flight) == (1, 0)


def test_an_async_function_on_the_sync_path_is_refused_and_released() -> None:
    breaker = CircuitBreaker()

    async def f() -> int:
        return 1

    with pytest.raises(TypeError, match="call_async"):
        breaker.call(f)
    with pytest.raises(TypeError, match="call_async"):
        breaker(lambda: f())()
    m = breaker.metrics()
    assert (m.ignored, m.in_flight) == (2, 0)


def test_a_clock_that_fails_after_the_call_releases_the_permit() -> None:
    readings = iter([0.0, 0.0])

    def clock() -> float:
        try:
            return next(readings)
        except StopIteration:
            raise OSError("clock gone") from None

    breaker = CircuitBreaker(clock=clock, half_open_calls=1)
    # The first reading was taken at construction; the second admits; the third raises.
    with pytest.raises(OSError, match="clock gone"):
        breaker.call(lambda: 1)
    assert breaker._native.metrics(0.0)["in_flight"] == 0


def test_base_exceptions_pass_through_as_ignored() -> None:
    breaker = CircuitBreaker()

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupt)
    m = breaker.metrics()
    assert (m.ignored, m.failures, m.in_flight) == (1, 0, 0)


def test_decorated_functions_and_methods_bind_like_functions() -> None:
    breaker = CircuitBreaker()

    @breaker
    def get(x: int) -> int:
        """Gets x."""
        return x

    class Client:
        @breaker
        def double(self, x: int) -> int:
            return 2 * x

    assert (get.__name__, get.__doc__, get(5)) == ("get", "Gets x.", 5)
    assert get.__wrapped__ is not None  # type: ignore[attr-defined]
    c = Client()
    assert c.double(4) == 8
    assert Client.double(c, 5) == 10  # unbound through the class
    assert Client.__dict__["double"].__get__(None, Client) is Client.__dict__["double"]
    assert breaker.metrics().successes == 3


def test_a_subclass_that_skips_init_gets_a_clear_error() -> None:
    class Broken(CircuitBreaker):
        def __init__(self) -> None:
            pass

    with pytest.raises(RuntimeError, match="__init__ was not called"):
        Broken().call(lambda: None)


def test_the_native_clock_reads_time_monotonic() -> None:
    breaker = CircuitBreaker()
    for _ in range(10_000):
        before = time.monotonic()
        token, started = breaker._admit()
        after = time.monotonic()
        breaker._settle(token, started, None)
        assert before <= started <= after


def test_breakers_and_decorated_functions_are_collected() -> None:
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(200):
        b = CircuitBreaker(clock=ManualClock())

        @b
        def f() -> CircuitBreaker:
            return b  # a cycle: f -> b (closure), b's listeners -> f

        b.on_state_change(lambda change: f)
        assert f() is b
    del b, f
    gc.collect()
    assert len(gc.get_objects()) - before < 50


# -- the async breaker paths ---------------------------------------------------------------------


def test_async_paths_record_through_admit_and_settle() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, is_result_failure=lambda r: r is None)
    rejections: List[Rejection] = []
    breaker.on_reject(rejections.append)

    @breaker
    async def get(x: Any) -> Any:
        await asyncio.sleep(0)
        return x

    async def main() -> None:
        assert await get(1) == 1
        assert await breaker.call_async(get.__wrapped__, 2) == 2  # type: ignore[attr-defined]
        assert await get(None) is None
        assert await breaker.call_async(get.__wrapped__, None) is None  # type: ignore[attr-defined]
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await get(3)
        with pytest.raises(CircuitOpenError):
            await breaker.call_async(get.__wrapped__, 3)  # type: ignore[attr-defined]

    asyncio.run(main())
    m = breaker.metrics()
    assert (m.successes, m.failures, m.rejected, m.in_flight) == (2, 2, 2, 0)
    assert len(rejections) == 2


# -- Budget's native base and the shared deadline timer --------------------------------------


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(main())


def test_a_budget_is_one_native_object_with_the_facade_around_it() -> None:
    clock = ManualClock()
    policy = TimeoutPolicy(max_timeout=5.0, scale=0.5)
    b = Budget(4.0, policy=policy, clock=clock)
    assert (b.remaining, b.policy, b._clock) == (2.0, policy, clock)
    child = b.child(10.0)
    assert (child.remaining, child._clock) == (2.0, clock)
    assert isinstance(child, Budget)
    header = Budget.from_header("100m", clock=clock)
    assert (header.remaining, type(header)) == (0.1, Budget)
    with pytest.raises(TypeError, match="policy"):
        Budget(1.0, policy="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        Budget(1.0, clock=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Budget("1")  # type: ignore[arg-type]


def test_ready_awaitables() -> None:
    async def main() -> None:
        assert await Ready(5) == 5
        assert await Ready(None) is None
        assert await Ready((1, 2)) == (1, 2)

    run(main)


def _counting_call_at(loop: asyncio.AbstractEventLoop, calls: List[Any]) -> None:
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
        calls.append(callback)
        return call_at(when, callback, *args, **kw)

    loop.call_at = counting  # type: ignore[method-assign]


def test_blocks_that_finish_in_time_schedule_nothing_in_steady_state() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        calls: List[Any] = []
        _counting_call_at(loop, calls)
        for _ in range(1000):
            async with Budget(10.0):
                await asyncio.sleep(0)
            await Budget(10.0).run(asyncio.sleep, 0)
        # One handle for the first block; every later deadline is later than it.
        assert len(calls) == 1
        timer = _budget.loop_timer(loop)
        assert timer is not None and timer.pending() == 0 and timer.is_armed()

    run(main)


def test_the_shared_timer_stops_when_nothing_is_left() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with Budget(0.02):
            pass
        timer = _budget.loop_timer(loop)
        assert timer is not None and timer.is_armed()
        await asyncio.sleep(0.05)
        # It fired once, found no block and did not re-arm.
        assert not timer.is_armed()
        assert not [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    run(main)


def test_a_shorter_deadline_rearms_and_each_block_gets_its_own() -> None:
    async def main() -> None:
        order: List[str] = []

        async def guarded(name: str, timeout: float) -> None:
            try:
                async with Budget(timeout):
                    await asyncio.sleep(5)
            except DeadlineExceeded as e:
                order.append(name)
                assert e.timeout == pytest.approx(timeout, abs=0.005)

        await asyncio.gather(guarded("slow", 0.08), guarded("fast", 0.02), guarded("mid", 0.05))
        assert order == ["fast", "mid", "slow"]
        timer = _budget.loop_timer(asyncio.get_running_loop())
        assert timer is not None and timer.pending() == 0

    run(main)


def test_nested_blocks_fire_inner_then_outer() -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        outer = Budget(0.08)
        with pytest.raises(DeadlineExceeded):
            async with outer:
                with pytest.raises(DeadlineExceeded):
                    async with Budget(0.02):
                        await asyncio.sleep(5)
                if sys.version_info >= (3, 11):
                    assert task.cancelling() == 0
                await asyncio.sleep(5)
        if sys.version_info >= (3, 11):
            assert task.cancelling() == 0
        timer = _budget.loop_timer(asyncio.get_running_loop())
        assert timer is not None and timer.pending() == 0

    run(main)


def test_blocks_left_out_of_order_by_hand() -> None:
    async def main() -> None:
        a, b = Budget(5.0), Budget(5.0)
        await a.__aenter__()
        await b.__aenter__()
        await a.__aexit__(None, None, None)
        timer = _budget.loop_timer(asyncio.get_running_loop())
        assert timer is not None and timer.pending() == 1
        await b.__aexit__(None, None, None)
        assert timer.pending() == 0
        with pytest.raises(RuntimeError, match="without a matching"):
            await b.__aexit__(None, None, None)

    run(main)


def test_a_deadline_in_another_task_is_that_tasks_own() -> None:
    async def main() -> None:
        async def child() -> str:
            async with Budget(0.02):
                await asyncio.sleep(5)
            return "no"

        async with Budget(1.0):
            with pytest.raises(DeadlineExceeded):
                await asyncio.ensure_future(child())
            await asyncio.sleep(0.03)  # the outer block is not cancelled
        timer = _budget.loop_timer(asyncio.get_running_loop())
        assert timer is not None and timer.pending() == 0

    run(main)


def test_each_loop_has_its_own_timer() -> None:
    timers = []

    async def main() -> None:
        async with Budget(1.0):
            pass
        timers.append(_budget.loop_timer(asyncio.get_running_loop()))

    run(main)
    run(main)
    assert timers[0] is not None and timers[1] is not None and timers[0] is not timers[1]


# -- the core's fast path (admissions and no-op successes counted without the core) ------------


def test_metrics_add_up_across_the_fast_path() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock=clock, window_size=4, minimum_calls=4)
    for _ in range(10):  # the window fills with successes: later successes skip the core
        assert breaker.call(lambda: 1) == 1
    with breaker.try_acquire() as permit:
        assert breaker.metrics().in_flight == 1
    assert permit.recorded
    m = breaker.metrics()
    assert (m.permitted, m.successes, m.failures, m.in_flight) == (11, 11, 0, 0)
    assert (m.calls_in_window, m.failures_in_window) == (4, 0)
    # A failure goes to the core and counts in the window at once.
    with pytest.raises(Boom):
        breaker.call(boom)
    m = breaker.metrics()
    assert (m.permitted, m.successes, m.failures, m.failures_in_window) == (12, 11, 1, 1)


def test_fast_rejections_count_and_half_open_goes_to_the_core() -> None:
    clock = ManualClock()
    breaker = tripping_breaker(clock, half_open_calls=1)
    changes: List[StateChange] = []
    breaker.on_state_change(changes.append)
    trip(breaker)
    for step in range(5):
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(lambda: None)
        assert info.value.retry_after == pytest.approx(10.0 - step)
        clock.advance(1.0)
    assert breaker.metrics().rejected == 5
    clock.advance(5.0)
    # Half-open: one probe; a second concurrent call is rejected by the core.
    with breaker.try_acquire():
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(lambda: None)
        assert info.value.reason == "half_open_full"
    assert breaker.state == "closed"
    assert [c.to_state for c in changes] == ["open", "half_open", "closed"]


def test_forced_open_and_disabled_on_the_fast_path() -> None:
    breaker = CircuitBreaker()
    breaker.force_open()
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(lambda: None)
        assert (info.value.reason, info.value.retry_after) == ("forced_open", None)
    assert breaker.metrics().rejected == 3
    breaker.disable()
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(boom)
    m = breaker.metrics()
    assert (m.state, m.failures, m.in_flight) == ("disabled", 0, 0)
    breaker.reset()
    assert breaker.call(lambda: 2) == 2
    assert breaker.metrics().successes == 1


def test_a_success_from_an_older_state_goes_to_the_core() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock=clock, window_size=2, minimum_calls=2)
    for _ in range(3):
        breaker.call(lambda: None)
    token, started = breaker._admit()
    breaker.force_open()
    breaker.reset()
    # Admitted before the state changed twice: the core decides what it counts for.
    breaker._settle(token, started, None)
    m = breaker.metrics()
    assert m.in_flight == 0
    assert m.state == "closed"
