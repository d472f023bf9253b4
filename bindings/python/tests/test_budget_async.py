"""``async with budget:`` and ``budget.run``: in real time, with short timers, the work is
cancelled at the deadline and actually stops, ``DeadlineExceeded`` is raised only for the
budget's own cancellation, and no task or timer is left behind.

Every test runs twice: with the Python 3.11+ mechanism (the task's cancellation count) when the
interpreter has it, and with the one used on 3.9 / 3.10 (a cancellation message of our own).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import warnings
from typing import Any, Callable, Coroutine, Iterator, List

import pytest

from seawall import Budget, BudgetExhausted, DeadlineExceeded, SeawallError, TimeoutPolicy
from seawall import _budget

MODES = ["3.9-3.10"] + (["3.11+"] if sys.version_info >= (3, 11) else [])


@pytest.fixture(params=MODES, autouse=True)
def cancellation_mode(request: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(_budget, "_COUNTS_CANCELS", request.param == "3.11+")
    yield request.param


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Runs ``main`` in a fresh loop that records every timer handle created on it, and checks
    that when ``main`` returns no other task is pending, no budget block is still registered on
    the loop's shared deadline timer, and every other handle has run or been cancelled (the
    shared timer's own handle may stay armed until its time: it then fires once, finds nothing
    and stops, see test_the_shared_timer_stops_when_nothing_is_left)."""
    handles: List[asyncio.TimerHandle] = []

    async def checked() -> Any:
        loop = asyncio.get_running_loop()
        call_at = loop.call_at

        def recording_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
            handle = call_at(when, callback, *args, **kw)
            handles.append(handle)
            return handle

        loop.call_at = recording_call_at  # type: ignore[method-assign]
        result = await main()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, f"tasks left behind: {others}"
        timer = _budget.loop_timer(loop)
        assert timer is None or timer.pending() == 0, "a budget block left registered"
        now = loop.time()
        pending = [
            h
            for h in handles
            if not h.cancelled()
            and h.when() > now
            and not (timer is not None and h is timer._handle)
        ]
        assert not pending, f"timer handles left scheduled: {pending}"
        return result

    return asyncio.run(checked())


def test_the_block_is_cancelled_at_the_deadline_and_the_work_stops() -> None:
    ticks: List[float] = []
    cleaned: List[bool] = []

    async def work() -> None:
        try:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)
        finally:
            cleaned.append(True)

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            async with Budget(0.05):
                await work()
        elapsed = time.monotonic() - started
        assert 0.045 <= elapsed < 0.5, elapsed
        assert cleaned == [True], "the work's finally block ran"
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, SeawallError)
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert info.value.timeout == pytest.approx(0.05, abs=0.002)
        count = len(ticks)
        await asyncio.sleep(0.03)
        assert len(ticks) == count, "the work goes on after the deadline"

    run(main)


def test_the_task_can_go_on_after_a_deadline() -> None:
    async def main() -> None:
        with pytest.raises(DeadlineExceeded):
            async with Budget(0.02):
                await asyncio.sleep(1)
        # The task is not left cancelled: it can await again, and its cancellation count
        # (3.11+) is back to what it was.
        await asyncio.sleep(0.001)
        task = asyncio.current_task()
        assert task is not None
        if sys.version_info >= (3, 11) and _budget._COUNTS_CANCELS:
            assert task.cancelling() == 0
        async with Budget(1.0):
            await asyncio.sleep(0.001)

    run(main)


def test_work_that_finishes_in_time_returns_normally() -> None:
    async def main() -> None:
        async with Budget(1.0) as b:
            assert isinstance(b, Budget)
            await asyncio.sleep(0.001)
        assert await Budget(1.0).run(asyncio.sleep(0.001, result="a")) == "a"
        assert await Budget(1.0).run(asyncio.sleep, 0.001, result="b") == "b"

        async def add(x: int, y: int = 0) -> int:
            await asyncio.sleep(0)
            return x + y

        assert await Budget(1.0).run(add, 1, y=2) == 3

    run(main)


def test_errors_of_the_block_propagate_untouched() -> None:
    async def main() -> None:
        with pytest.raises(KeyError):
            async with Budget(1.0):
                raise KeyError("k")

        async def fail() -> None:
            raise ConnectionError("down")

        with pytest.raises(ConnectionError):
            await Budget(1.0).run(fail)
        # A TimeoutError of the work's own is not the budget's.
        with pytest.raises(TimeoutError) as info:
            async with Budget(1.0):
                raise TimeoutError("socket")
        assert not isinstance(info.value, DeadlineExceeded)

    run(main)


def test_an_exhausted_budget_does_not_run_the_block() -> None:
    async def main() -> None:
        ran = []
        budget = Budget(0.005)  # under the 10 ms min_to_start
        with pytest.raises(BudgetExhausted):
            async with budget:
                ran.append(True)
        assert not ran

        async def work() -> None:
            ran.append(True)

        with pytest.raises(BudgetExhausted):
            await budget.run(work)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            coro = work()
            with pytest.raises(BudgetExhausted):
                await budget.run(coro)
            assert coro.cr_frame is None, "the coroutine was closed, never started"
            gc.collect()
        future = asyncio.get_running_loop().create_future()
        with pytest.raises(BudgetExhausted):
            await budget.run(future)
        assert future.cancelled()
        assert not ran

    run(main)


def test_run_cancels_a_coroutine_and_a_task_at_the_deadline() -> None:
    async def main() -> None:
        with pytest.raises(DeadlineExceeded):
            await Budget(0.02).run(asyncio.sleep(10))

        inner = asyncio.ensure_future(asyncio.sleep(10))
        with pytest.raises(DeadlineExceeded):
            await Budget(0.02).run(inner)
        assert inner.cancelled(), "the awaited task is cancelled with the block"

    run(main)


def test_an_outside_cancellation_is_not_a_deadline() -> None:
    async def main() -> None:
        async def guarded() -> None:
            async with Budget(5.0):
                await asyncio.sleep(10)

        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        task = asyncio.ensure_future(Budget(5.0).run(asyncio.sleep(10)))
        await asyncio.sleep(0.01)
        task.cancel("shutting down")
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)


def test_an_outside_cancellation_with_its_own_message_wins_over_the_deadline() -> None:
    # The deadline fires, and in the same loop iteration someone else cancels the task with a
    # message: the task must end cancelled, not with DeadlineExceeded.
    async def main() -> None:
        async def guarded() -> None:
            async with Budget(5.0):
                loop = asyncio.get_running_loop()
                timer, task = _budget._here()
                block = timer._blocks[task]

                def both() -> None:
                    # Fire the deadline by hand, right after the other cancellation.
                    task.cancel("shutting down")
                    _budget._expire(task, block)

                loop.call_soon(both)
                await asyncio.sleep(10)

        task = asyncio.ensure_future(guarded())
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="cancellation counts are 3.11+")
def test_with_counts_any_other_cancellation_wins_over_the_deadline(cancellation_mode: str) -> None:
    if cancellation_mode != "3.11+":
        pytest.skip("3.9 / 3.10 cannot tell a cancellation without a message from ours")

    async def main() -> None:
        async def guarded() -> None:
            async with Budget(5.0):
                timer, task = _budget._here()
                block = timer._blocks[task]

                def both() -> None:
                    # Fire the deadline by hand, then cancel from outside in the same iteration.
                    _budget._expire(task, block)
                    task.cancel()

                asyncio.get_running_loop().call_soon(both)
                await asyncio.sleep(10)

        task = asyncio.ensure_future(guarded())
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_it_composes_with_asyncio_timeout() -> None:
    async def main() -> None:
        # The outer asyncio timeout fires first: its TimeoutError, not ours.
        with pytest.raises(TimeoutError) as info:
            async with asyncio.timeout(0.02):  # type: ignore[attr-defined]
                async with Budget(5.0):
                    await asyncio.sleep(10)
        assert not isinstance(info.value, DeadlineExceeded)
        # The budget fires first: ours, and the outer timeout is left in a sane state.
        async with asyncio.timeout(5.0):  # type: ignore[attr-defined]
            with pytest.raises(DeadlineExceeded):
                async with Budget(0.02):
                    await asyncio.sleep(10)
            await asyncio.sleep(0.001)

    run(main)


def test_nested_budgets_each_raise_for_their_own_deadline() -> None:
    async def main() -> None:
        outer = Budget(1.0)
        reached = []
        async with outer:
            with pytest.raises(DeadlineExceeded):
                async with outer.child(0.02):
                    await asyncio.sleep(10)
            reached.append("after inner")
            await asyncio.sleep(0.001)
        assert reached == ["after inner"]

        # The outer one fires while the inner is open: the inner passes it on, the outer
        # raises.
        with pytest.raises(DeadlineExceeded) as info:
            async with Budget(0.02):
                async with Budget(5.0):
                    await asyncio.sleep(10)
        assert info.value.timeout == pytest.approx(0.02, abs=0.002)

        # A child ending with its parent: both timers fire in the same iteration; one
        # DeadlineExceeded comes out, and the task is not left with a pending cancellation.
        parent = Budget(0.03)
        with pytest.raises(DeadlineExceeded):
            async with parent:
                async with parent.child(5.0):
                    await asyncio.sleep(10)
        await asyncio.sleep(0.001)

        # One budget entered twice in the same task, and in several tasks at once.
        shared = Budget(0.03)

        async def worker() -> str:
            async with shared:
                async with shared:
                    await asyncio.sleep(10)
            return "unreachable"

        results = await asyncio.gather(*(worker() for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, DeadlineExceeded) for r in results), results

    run(main)


def test_misuse_is_reported() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match="awaitable or an async function"):
            await Budget(1.0).run(42)
        coro = asyncio.sleep(0)
        with pytest.raises(TypeError, match="arguments"):
            await Budget(1.0).run(coro, 1)
        with pytest.raises(RuntimeError, match="without a matching"):
            await Budget(1.0).__aexit__(None, None, None)

    run(main)
    # Outside a running loop there is no task to cancel.
    enter = Budget(1.0).__aenter__()
    with pytest.raises(RuntimeError):
        enter.send(None)
    enter.close()


def test_the_policy_maximum_bounds_the_block() -> None:
    before = TimeoutPolicy.get_global()
    TimeoutPolicy.set_global(TimeoutPolicy(max_timeout=0.03))
    try:

        async def main() -> None:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                async with Budget(86_400):
                    await asyncio.sleep(10)
            assert time.monotonic() - started < 0.5

        run(main)
    finally:
        TimeoutPolicy.set_global(before)
