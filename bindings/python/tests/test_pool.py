"""The asyncio ``Pool`` with in-memory connections, in real time with short timers: limits, FIFO
hand-off, cancellation, refused releases, validation, broken connections, leaks, outages, drain,
resize, and nothing left behind.

The engine's rules themselves are pinned by the conformance vectors (test_conformance_pool.py);
these tests check that the adapter performs the engine's decisions faithfully: the right user
callback runs, the right caller wakes, and no connection, task or timer is lost.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
from typing import Any, Callable, Coroutine, Dict, List, Optional

import pytest

import seawall
from seawall import (
    Budget,
    BudgetExhausted,
    ConnectAttemptFailed,
    ConnectFailed,
    ConnectionNotCheckedOut,
    DatabaseUnavailable,
    Drained,
    InvalidConfigError,
    LeakReturned,
    LeakSuspected,
    Pool,
    PoolClosed,
    PoolError,
    PoolOverloaded,
    PoolTimeout,
    SeawallError,
    StateChange,
)
from seawall import _native


class Conn:
    """A fake connection: counts what happens to it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.healthy = True
        self.uses = 0

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"Conn({self.n})"


class Database:
    """Makes fake connections; can go down, hang, and count attempts."""

    def __init__(self, delay: float = 0.001) -> None:
        self.delay = delay
        self.attempts = 0
        self.made: List[Conn] = []
        self.down = False
        self.hang = False
        self.cancelled = 0
        self.open_now = 0
        self.max_open = 0

    async def create(self) -> Conn:
        self.attempts += 1
        try:
            if self.hang:
                await asyncio.sleep(3600)
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.down:
            raise ConnectionRefusedError("connection refused (fake)")
        conn = Conn(len(self.made) + 1)
        self.made.append(conn)
        return conn

    def live(self) -> List[Conn]:
        return [c for c in self.made if not c.closed]


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Runs ``main`` in a fresh loop and checks that no task the pool started outlives it."""

    async def checked() -> Any:
        result = await main()
        # Closes started by a drain finish within a tick or two.
        for _ in range(20):
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if not others:
                break
            await asyncio.sleep(0.01)
        assert not others, f"tasks left behind: {others}"
        return result

    return asyncio.run(checked())


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Waits (generously, for a loaded machine) until ``check()`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


def test_limits_hold_under_load_and_everyone_is_served() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=4, validate_after=None)
        out = 0
        most = 0

        async def worker(i: int) -> None:
            nonlocal out, most
            for _ in range(5):
                async with pool.connection() as conn:
                    out += 1
                    most = max(most, out)
                    conn.uses += 1
                    await asyncio.sleep(0.001)
                    out -= 1

        await asyncio.gather(*(worker(i) for i in range(40)))
        m = pool.metrics()
        assert most == 4
        assert len(db.made) <= 4 and db.attempts <= 4
        assert sum(c.uses for c in db.made) == 200
        assert m.acquired == m.released == 200
        assert m.used == 0 and m.pending_requests == 0
        assert m.idle + m.used + m.creating <= m.max == 4
        assert m.wait_time.count == 200 and m.use_time.count == 200
        assert await pool.drain() == []
        assert all(c.closed for c in db.made)

    run(main)


def test_waiters_are_served_oldest_first() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=1, validate_after=None)
        first = await pool.acquire()
        order: List[str] = []

        async def wait(name: str) -> None:
            async with pool.connection():
                order.append(name)
                await asyncio.sleep(0)

        tasks = []
        for name in "abcde":
            tasks.append(asyncio.ensure_future(wait(name)))
            await until(lambda: pool.metrics().pending_requests == len(tasks))
        pool.release(first)
        await asyncio.gather(*tasks)
        assert order == list("abcde")
        # The releasing task itself does not jump the queue either.
        await pool.drain()

    run(main)


def test_a_cancelled_waiter_leaves_the_queue_and_loses_nothing() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=1, validate_after=None)
        held = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await until(lambda: pool.metrics().pending_requests == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.metrics().pending_requests == 0
        pool.release(held)
        m = pool.metrics()
        assert (m.idle, m.used) == (1, 0)
        # The connection is still there for the next caller, at once.
        again = await asyncio.wait_for(pool.acquire(), 1.0)
        assert again is held
        pool.release(again)
        await pool.drain()

    run(main)


def test_a_connection_handed_to_a_task_cancelled_before_it_ran_goes_back() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=1, validate_after=None)
        held = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await until(lambda: pool.metrics().pending_requests == 1)
        # The hand-off happens in release(); the task is cancelled before it can resume.
        pool.release(held)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        m = pool.metrics()
        assert (m.idle, m.used, m.acquired, m.released) == (1, 0, 2, 2)
        await pool.drain()

    run(main)


def test_double_unknown_and_stale_releases_are_refused() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=1, validate_after=None)
        conn = await pool.acquire()
        pool.release(conn)
        with pytest.raises(ConnectionNotCheckedOut, match="already returned"):
            pool.release(conn)
        with pytest.raises(ValueError, match="not checked out from this pool"):
            pool.release(Conn(99))

        # Task A returns its checkout; task B gets the same connection; A's second release
        # must not return B's checkout.
        a_done = asyncio.Event()
        b_holds = asyncio.Event()

        async def a() -> None:
            c = await pool.acquire()
            pool.release(c)
            a_done.set()
            await b_holds.wait()
            with pytest.raises(ConnectionNotCheckedOut, match="left with them"):
                pool.release(c)

        async def b() -> None:
            await a_done.wait()
            c = await pool.acquire()
            b_holds.set()
            await asyncio.sleep(0.01)
            assert pool.metrics().used == 1, "A's stale release returned B's checkout"
            pool.release(c)

        await asyncio.gather(a(), b())
        m = pool.metrics()
        assert (m.used, m.acquired, m.released) == (0, 3, 3)

        # A connection acquired by a helper task that has finished (``asyncio.wait_for`` on
        # 3.9 - 3.11) is released by its caller, although that caller returned the same
        # connection before.
        helped = await asyncio.ensure_future(pool.acquire())
        pool.release(helped)
        assert pool.metrics().used == 0

        # A connection passed to another task by a holder that keeps running is released by
        # the receiver.
        handoff: asyncio.Queue[Conn] = asyncio.Queue()
        release_done = asyncio.Event()

        async def giver() -> None:
            await handoff.put(await pool.acquire())
            await release_done.wait()

        async def receiver() -> None:
            pool.release(await handoff.get())
            release_done.set()

        await asyncio.gather(giver(), receiver())
        assert pool.metrics().used == 0

        # A block that already returned its connection by hand is refused at exit.
        with pytest.raises(ConnectionNotCheckedOut):
            async with pool.connection() as c:
                pool.release(c)
        await pool.drain()

    run(main)


def test_a_connection_idle_past_validate_after_is_checked_and_replaced_when_bad() -> None:
    async def main() -> None:
        db = Database()
        checked: List[int] = []

        async def validate(conn: Conn) -> bool:
            checked.append(conn.n)
            if conn.n == 2:
                raise ConnectionResetError("validation query failed")
            return conn.healthy

        pool = Pool(db.create, validate=validate, max_size=1, validate_after=0.05)
        conn = await pool.acquire()
        pool.release(conn)
        # Used again at once: no check.
        pool.release(await pool.acquire())
        assert checked == []
        await asyncio.sleep(0.1)
        conn.healthy = False
        fresh = await pool.acquire()
        assert checked == [1] and conn.closed and fresh.n == 2
        pool.release(fresh)
        await asyncio.sleep(0.1)
        # A validation that raises counts as failed.
        third = await pool.acquire()
        assert checked == [1, 2] and fresh.closed and third.n == 3
        pool.release(third)
        m = pool.metrics()
        assert (m.created, m.destroyed) == (3, 2)
        await pool.drain()

    run(main)


def test_broken_connections_are_closed_never_reused() -> None:
    async def main() -> None:
        db = Database()
        destroyed: List[Conn] = []

        async def destroy(conn: Conn) -> None:
            await asyncio.sleep(0)
            destroyed.append(conn)

        pool = Pool(
            db.create,
            destroy=destroy,
            is_broken=lambda c: not c.healthy,
            max_size=2,
            validate_after=None,
        )
        a = await pool.acquire()
        pool.release(a, broken=True)
        b = await pool.acquire()
        assert b is not a
        b.healthy = False
        pool.release(b)
        async with pool.connection() as c:
            assert c not in (a, b)
        await until(lambda: len(destroyed) == 2)
        assert destroyed == [a, b]
        await pool.drain()
        assert destroyed == [a, b, c]

    run(main)


def hold_a_connection_for_too_long() -> None:
    """Named so that the leak report's stack can be checked for it."""


def test_leaks_are_reported_with_the_stack_where_the_connection_was_acquired() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, leak_threshold=0.05, validate_after=None)
        heard: List[Any] = []
        pool.on_leak(heard.append)

        async def hold_a_connection_for_too_long() -> Conn:
            return await pool.acquire()

        conn = await hold_a_connection_for_too_long()
        await until(lambda: bool(heard))
        suspected = heard[0]
        assert isinstance(suspected, LeakSuspected)
        assert suspected.held_for >= 0.05
        assert suspected.stack is not None
        assert "hold_a_connection_for_too_long" in suspected.stack, suspected.stack
        assert "seawall/_pool.py" not in suspected.stack
        assert pool.metrics().leaks == 1
        await asyncio.sleep(0.06)
        assert len(heard) == 1, "a leak is reported once per checkout"
        pool.release(conn)
        returned = heard[1]
        assert isinstance(returned, LeakReturned)
        assert returned.held_for >= 0.1 and returned.stack == suspected.stack
        await pool.drain()

    run(main)


def test_no_stack_is_captured_without_a_leak_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a stack was captured")

    monkeypatch.setattr(seawall._pool.traceback.StackSummary, "extract", fail)

    async def main() -> None:
        pool = Pool(Database().create)
        async with pool.connection():
            pass
        await pool.drain()

    run(main)


def test_an_outage_fails_fast_without_a_storm_and_recovers() -> None:
    async def main() -> None:
        db = Database()
        db.down = True
        pool = Pool(
            db.create,
            max_size=4,
            validate_after=None,
            create_backoff_base=0.001,
            create_backoff_cap=0.002,
            breaker={"consecutive_failures": 3, "open_duration": 0.3, "half_open_calls": 1},
        )
        changes: List[StateChange] = []
        failures: List[ConnectAttemptFailed] = []
        pool.on_breaker(changes.append)
        pool.on_connect_failed(failures.append)

        errors = await asyncio.gather(
            *(pool.acquire() for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(e, (DatabaseUnavailable, ConnectFailed)) for e in errors), errors
        unavailable = [e for e in errors if isinstance(e, DatabaseUnavailable)]
        assert unavailable, errors
        e = unavailable[0]
        assert isinstance(e, PoolError) and isinstance(e, SeawallError)
        assert e.retry_after is not None and 0 < e.retry_after <= 0.3
        assert isinstance(e.cause, ConnectionRefusedError) and e.__cause__ is e.cause
        assert e.last_error is not None and "connection refused" in e.last_error
        # One attempt per slot at most (four started at once for the first callers), then the
        # breaker opened and nothing more was tried.
        assert db.attempts == 4
        assert [(c.to_state, c.reason) for c in changes] == [("open", "consecutive_failures")]
        assert [f.attempts for f in failures] == [1, 2, 3, 4]
        assert all(isinstance(f.cause, ConnectionRefusedError) for f in failures)

        # While open: immediate failures, and no attempt reaches the database.
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(50):
            with pytest.raises(DatabaseUnavailable):
                await pool.acquire()
        assert loop.time() - started < 0.25
        assert db.attempts == 4

        # Back up: after the open duration one probe goes through and the pool refills.
        db.down = False
        await asyncio.sleep(0.35)
        async with pool.connection() as conn:
            assert conn.n == 1
        assert db.attempts == 5
        assert changes[-1].to_state == "closed"
        results = await asyncio.gather(*(pool.acquire() for _ in range(4)))
        for c in results:
            pool.release(c)
        assert pool.metrics().breaker_state == "closed"
        await pool.drain()

    run(main)


def test_a_waiter_sees_the_connect_error_when_attempts_keep_failing() -> None:
    async def main() -> None:
        db = Database()
        db.down = True
        pool = Pool(
            db.create,
            acquire_timeout=0.1,
            validate_after=None,
            create_backoff_base=0.01,
            create_backoff_cap=0.02,
            breaker={"consecutive_failures": 1000, "minimum_calls": 1000, "window_size": 1000},
        )
        with pytest.raises(ConnectFailed) as info:
            await pool.acquire()
        assert info.value.attempts is not None and info.value.attempts >= 2
        assert isinstance(info.value.cause, ConnectionRefusedError)
        assert "connection refused" in str(info.value)
        await pool.drain()

    run(main)


def test_a_hung_create_is_abandoned_at_create_timeout_and_a_late_one_closed() -> None:
    async def main() -> None:
        db = Database()
        db.hang = True
        pool = Pool(
            db.create,
            create_timeout=0.05,
            acquire_timeout=2.0,
            validate_after=None,
            create_backoff_base=0.001,
            create_backoff_cap=0.002,
        )
        heard: List[ConnectAttemptFailed] = []
        pool.on_connect_failed(heard.append)
        waiter = asyncio.ensure_future(pool.acquire())
        await until(lambda: db.cancelled == 1)
        assert "timed out" in heard[0].error and heard[0].cause is None
        db.hang = False
        conn = await waiter
        assert conn.n == 1 and db.attempts >= 2
        pool.release(conn)

        # A create that ignores its cancellation and finishes late: its connection is closed.
        late: List[Conn] = []

        async def stubborn() -> Conn:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass
            c = Conn(100)
            late.append(c)
            return c

        pool2 = Pool(stubborn, create_timeout=0.05, acquire_timeout=0.2, validate_after=None)
        with pytest.raises((ConnectFailed, PoolTimeout)):
            await pool2.acquire()
        await until(lambda: bool(late) and late[0].closed)
        assert pool2.metrics().idle == 0
        await pool.drain()
        await pool2.drain()

    run(main)


def test_overload_timeout_and_budget_errors_carry_their_numbers() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=1, max_waiters=1, acquire_timeout=0.1, validate_after=None)
        held = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await until(lambda: pool.metrics().pending_requests == 1)
        with pytest.raises(PoolOverloaded) as over:
            await pool.acquire()
        assert (over.value.waiting, over.value.max_waiters) == (1, 1)
        with pytest.raises(PoolTimeout) as timed_out:
            await waiter
        e = timed_out.value
        assert isinstance(e, TimeoutError)
        assert (e.in_use, e.idle, e.waiting) == (1, 0, 1)
        assert e.waited is not None and e.waited >= 0.1
        assert e.oldest_checkout_age is not None and e.oldest_checkout_age >= 0.1
        assert "1 in use" in str(e)

        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(BudgetExhausted):
            await pool.acquire(budget=Budget(0.03))
        assert loop.time() - started < 0.09, "the budget, not acquire_timeout, ended the wait"
        with pytest.raises(TypeError, match="budget must be a Budget"):
            await pool.acquire(budget=0.5)  # type: ignore[arg-type]
        assert pool.metrics().timeouts == 2
        pool.release(held)
        await pool.drain()

    run(main)


def test_drain_fails_waiters_closes_everything_and_reports_what_was_held() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=2, validate_after=None)
        drained: List[Drained] = []
        pool.on_drained(drained.append)
        kept = await pool.acquire()
        returned = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await until(lambda: pool.metrics().pending_requests == 1)

        draining = asyncio.ensure_future(pool.drain(timeout=0.1))
        with pytest.raises(PoolClosed):
            await waiter
        with pytest.raises(PoolClosed):
            await pool.acquire()
        pool.release(returned)
        assert returned.closed or await until(lambda: returned.closed) is None
        assert not kept.closed
        held = await draining
        assert held == [kept] and kept.closed
        assert drained == [Drained((kept,))]
        assert pool.closed
        # Returning what the drain closed is accepted quietly; a second drain returns the same.
        pool.release(kept)
        assert await pool.drain() == [kept]
        assert db.live() == []

    run(main)


def test_drain_with_everything_returned_finishes_at_once() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, min_idle=3, validate_after=None)
        await until(lambda: pool.metrics().idle == 3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await pool.drain(timeout=5.0) == []
        assert loop.time() - started < 1.0
        assert len(db.made) == 3 and db.live() == []

    run(main)


def test_resize_serves_waiters_when_growing_and_closes_when_shrinking() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, max_size=1, validate_after=None)
        first = await pool.acquire()
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(2)]
        await until(lambda: pool.metrics().pending_requests == 2)
        pool.resize(3)
        conns = await asyncio.gather(*waiters)
        assert pool.metrics().max == 3 and len(db.made) == 3
        for c in conns:
            pool.release(c)
        pool.resize(1)
        await until(lambda: len(db.live()) == 1)
        assert pool.metrics().idle == 0
        pool.release(first)
        assert not first.closed and pool.metrics().idle == 1
        with pytest.raises(InvalidConfigError, match="max_size"):
            pool.resize(0)
        await pool.drain()

    run(main)


def test_min_idle_is_kept_warm_and_idle_connections_time_out() -> None:
    async def main() -> None:
        db = Database()
        pool = Pool(db.create, min_idle=1, idle_timeout=0.05, validate_after=None)
        await until(lambda: pool.metrics().idle == 1)
        extra = [await pool.acquire() for _ in range(3)]
        for c in extra:
            pool.release(c)
        assert pool.metrics().idle >= 3
        # The timer closes idle connections past idle_timeout, down to min_idle, with no
        # caller around.
        await until(lambda: pool.metrics().idle == 1 and len(db.live()) == 1)
        await pool.drain()

    run(main)


def test_a_pool_built_outside_a_loop_binds_at_first_use() -> None:
    db = Database()
    pool = Pool(db.create, min_idle=1, validate_after=None)

    async def main() -> None:
        async with pool:
            await until(lambda: pool.metrics().idle == 1)
            async with pool.connection() as conn:
                assert conn.n == 1
        assert pool.closed

    run(main)

    async def elsewhere() -> None:
        with pytest.raises(RuntimeError, match="another event loop"):
            await pool.acquire()

    asyncio.run(elsewhere())


def test_listener_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        pool = Pool(Database().create, leak_threshold=0.01, validate_after=None)
        every: List[Any] = []

        @pool.on_event
        def boom(event: Any) -> None:
            raise RuntimeError("listener bug")

        pool.on_event(every.append)
        conn = await pool.acquire()
        await until(lambda: bool(every))
        pool.release(conn)
        await pool.drain()
        assert [type(e) for e in every] == [LeakSuspected, LeakReturned, Drained]

    with caplog.at_level(logging.ERROR, logger="seawall"):
        run(main)
    assert "listener bug" in caplog.text


def test_configuration_errors_name_the_keyword() -> None:
    create = Database().create
    with pytest.raises(InvalidConfigError) as info:
        Pool(create, max_size=0)
    assert info.value.field == "max_size"
    with pytest.raises(InvalidConfigError, match="^acquire_timeout "):
        Pool(create, acquire_timeout=60.0)
    with pytest.raises(InvalidConfigError, match="^create_backoff_cap must be at least "):
        Pool(create, create_backoff_base=1.0, create_backoff_cap=0.5)
    with pytest.raises(InvalidConfigError, match="^idle_order "):
        Pool(create, idle_order="random")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^max_waiters must be a number, got str"):
        Pool(create, max_waiters="10")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError) as info:
        Pool(create, breaker={"window_size": 0})
    assert info.value.field == "breaker.window_size"
    assert str(info.value).startswith("breaker.window_size must be")
    with pytest.raises(TypeError, match="unexpected keyword 'windowsize'"):
        Pool(create, breaker={"windowsize": 10})
    with pytest.raises(TypeError, match="^breaker must be a dict"):
        Pool(create, breaker=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^create must be callable"):
        Pool(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^validate must be callable"):
        Pool(create, validate=True)  # type: ignore[arg-type]


def test_signature_defaults_are_the_cores() -> None:
    core = _native.pool_defaults()
    for cls in (Pool, seawall.SyncPool, seawall.PoolEngine):
        params = inspect.signature(cls).parameters
        for key, value in core.items():
            if key == "breaker":
                # `None` stands for the core's own default breaker.
                assert params[key].default is None
                continue
            assert params[key].default == value, (cls.__name__, key)
    # The default pool breaker: five failed connects in a row open it for 5 s, one probe.
    breaker: Dict[str, Optional[Any]] = core["breaker"]
    assert breaker["consecutive_failures"] == 5
    assert breaker["open_duration"] == 5.0
    assert breaker["half_open_calls"] == 1


def test_pools_are_garbage_collected_once_closed() -> None:
    import weakref

    async def main() -> weakref.ref[Any]:
        pool = Pool(Database().create, min_idle=2, validate_after=None)
        await until(lambda: pool.metrics().idle == 2)
        await pool.drain()
        return weakref.ref(pool)

    ref = run(main)
    gc.collect()
    assert ref() is None
