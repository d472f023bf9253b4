"""``SyncPool`` with in-memory connections and real threads: limits under many threads, FIFO
hand-off, blocking waits that release the GIL, refused releases, the timer thread, leaks, outages,
drain, and processes that use pools exiting promptly and cleanly.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, List

import pytest

from seawall import (
    Budget,
    BudgetExhausted,
    ConnectionNotCheckedOut,
    DatabaseUnavailable,
    LeakReturned,
    LeakSuspected,
    PoolClosed,
    PoolTimeout,
    SyncPool,
)


class Conn:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.healthy = True

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"Conn({self.n})"


class Database:
    """Makes fake connections (thread-safe); can go down and count attempts."""

    def __init__(self, delay: float = 0.001) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.attempts = 0
        self.made: List[Conn] = []
        self.down = False

    def create(self) -> Conn:
        with self.lock:
            self.attempts += 1
        time.sleep(self.delay)
        if self.down:
            raise ConnectionRefusedError("connection refused (fake)")
        with self.lock:
            conn = Conn(len(self.made) + 1)
            self.made.append(conn)
        return conn

    def live(self) -> List[Conn]:
        with self.lock:
            return [c for c in self.made if not c.closed]


def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.005)


def start(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_threads_hammering_the_pool_never_exceed_its_limits() -> None:
    db = Database()
    pool: SyncPool[Conn] = SyncPool(db.create, max_size=4, validate_after=None)
    lock = threading.Lock()
    out: List[int] = [0, 0]  # now, most
    errors: List[BaseException] = []
    uses = [0]

    def worker() -> None:
        try:
            for _ in range(100):
                with pool.connection() as conn:
                    assert not conn.closed
                    with lock:
                        out[0] += 1
                        out[1] = max(out[1], out[0])
                        uses[0] += 1
                    time.sleep(0)
                    with lock:
                        out[0] -= 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [start(worker) for _ in range(16)]
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert out[1] <= 4 and uses[0] == 1600
    assert len(db.made) <= 4
    m = pool.metrics()
    assert m.acquired == m.released == 1600
    assert (m.used, m.pending_requests) == (0, 0)
    assert pool.drain() == []
    assert db.live() == []


def test_blocked_callers_are_served_oldest_first_and_do_not_hold_the_gil() -> None:
    db = Database()
    pool: SyncPool[Conn] = SyncPool(db.create, max_size=1, validate_after=None)
    first = pool.acquire()
    order: List[str] = []

    def waiter(name: str) -> Callable[[], None]:
        def run() -> None:
            with pool.connection():
                order.append(name)

        return run

    threads = []
    for i, name in enumerate("abcd"):
        threads.append(start(waiter(name)))
        until(lambda: pool.metrics().pending_requests == i + 1)
    # Four threads are blocked in acquire: this thread still runs Python at full speed.
    started = time.monotonic()
    total = sum(i * i for i in range(200_000))
    assert total > 0 and time.monotonic() - started < 2.0
    pool.release(first)
    for t in threads:
        t.join(10)
    assert order == list("abcd")
    pool.drain()


def test_a_wait_ends_with_the_engine_s_error() -> None:
    db = Database()
    pool: SyncPool[Conn] = SyncPool(db.create, max_size=1, acquire_timeout=0.1)
    held = pool.acquire()
    started = time.monotonic()
    with pytest.raises(PoolTimeout) as info:
        pool.acquire()
    assert 0.09 <= time.monotonic() - started < 2.0
    assert (info.value.in_use, info.value.waiting) == (1, 1)
    with pytest.raises(BudgetExhausted):
        pool.acquire(budget=Budget(0.02))
    pool.release(held)
    assert pool.metrics().timeouts == 2
    pool.drain()


def test_second_and_stale_releases_are_refused() -> None:
    db = Database()
    pool: SyncPool[Conn] = SyncPool(db.create, max_size=1, validate_after=None)
    conn = pool.acquire()
    pool.release(conn)
    with pytest.raises(ConnectionNotCheckedOut):
        pool.release(conn)

    # This thread returned its checkout; another thread holds the connection now.
    other_has_it = threading.Event()
    done = threading.Event()

    def other() -> None:
        c = pool.acquire()
        other_has_it.set()
        done.wait(10)
        pool.release(c)

    t = start(other)
    other_has_it.wait(10)
    with pytest.raises(ConnectionNotCheckedOut, match="left with them"):
        pool.release(conn)
    assert pool.metrics().used == 1
    done.set()
    t.join(10)
    assert pool.metrics().used == 0
    pool.drain()


def test_the_timer_thread_closes_idle_connections_with_no_caller_around() -> None:
    db = Database()
    pool: SyncPool[Conn] = SyncPool(
        db.create, min_idle=1, idle_timeout=0.05, validate_after=None
    )
    until(lambda: pool.metrics().idle == 1)
    conns = [pool.acquire() for _ in range(3)]
    for c in conns:
        pool.release(c)
    until(lambda: len(db.live()) == 1)
    assert pool.metrics().idle == 1
    pool.drain()


def test_validation_and_broken_connections() -> None:
    db = Database()
    checked: List[int] = []

    def validate(conn: Conn) -> bool:
        checked.append(conn.n)
        return conn.healthy

    pool: SyncPool[Conn] = SyncPool(
        db.create,
        validate=validate,
        is_broken=lambda c: c.n == 2,
        max_size=1,
        validate_after=0.03,
    )
    a = pool.acquire()
    pool.release(a)
    time.sleep(0.06)
    a.healthy = False
    b = pool.acquire()
    assert checked == [1] and b.n == 2
    until(lambda: a.closed)
    pool.release(b)  # is_broken says so
    c = pool.acquire()
    assert c.n == 3
    until(lambda: b.closed)
    pool.release(c)
    pool.drain()


def where_the_leak_starts(pool: SyncPool[Conn]) -> Conn:
    return pool.acquire()


def test_leak_reports_carry_the_stack_where_the_connection_was_acquired() -> None:
    pool: SyncPool[Conn] = SyncPool(Database().create, leak_threshold=0.03)
    heard: List[Any] = []
    pool.on_leak(heard.append)
    conn = where_the_leak_starts(pool)
    until(lambda: bool(heard))
    assert isinstance(heard[0], LeakSuspected)
    assert heard[0].stack is not None and "where_the_leak_starts" in heard[0].stack
    pool.release(conn)
    assert isinstance(heard[1], LeakReturned) and heard[1].stack == heard[0].stack
    pool.drain()


def test_an_outage_fails_fast_and_recovers() -> None:
    db = Database()
    db.down = True
    pool: SyncPool[Conn] = SyncPool(
        db.create,
        max_size=2,
        validate_after=None,
        create_backoff_base=0.001,
        create_backoff_cap=0.002,
        breaker={"consecutive_failures": 2, "open_duration": 0.3},
    )
    errors: List[BaseException] = []

    def caller() -> None:
        try:
            pool.release(pool.acquire())
        except Exception as e:  # noqa: BLE001 - checked below
            errors.append(e)

    threads = [start(caller) for _ in range(8)]
    for t in threads:
        t.join(10)
    assert len(errors) == 8 and any(isinstance(e, DatabaseUnavailable) for e in errors)
    attempts = db.attempts
    # Attempts go on (at most max_size at once, spaced by the back-off) until the second failure
    # in a row opens the breaker: at most consecutive_failures + max_size - 1 of them.
    assert 2 <= attempts <= 3
    started = time.monotonic()
    for _ in range(50):
        with pytest.raises(DatabaseUnavailable):
            pool.acquire()
    assert time.monotonic() - started < 0.25 and db.attempts == attempts
    db.down = False
    time.sleep(0.35)
    with pool.connection() as conn:
        assert conn.n == 1
    pool.drain()


def test_drain_closes_everything_and_reports_what_was_held() -> None:
    db = Database()
    pool: SyncPool[Conn] = SyncPool(db.create, max_size=2, validate_after=None)
    kept = pool.acquire()
    idle = pool.acquire()
    pool.release(idle)
    blocked_error: List[BaseException] = []
    third = pool.acquire()

    def blocked() -> None:
        try:
            pool.release(pool.acquire())
        except BaseException as e:  # noqa: BLE001 - checked below
            blocked_error.append(e)

    t = start(blocked)
    until(lambda: pool.metrics().pending_requests == 1)
    pool.release(third)
    t.join(10)
    assert not blocked_error  # served by the release
    started = time.monotonic()
    held = pool.drain(timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 3.0
    assert held == [kept] and pool.closed
    assert db.live() == []
    with pytest.raises(PoolClosed):
        pool.acquire()
    pool.release(kept)  # closed by the drain: accepted quietly


SCRIPT = textwrap.dedent(
    """
    import asyncio, threading, time
    from seawall import Pool, SyncPool, DatabaseUnavailable, ConnectFailed

    class Conn:
        def close(self):
            pass

    def slow_create():
        time.sleep(30)  # a connect that hangs: the pool abandons it, the thread stays behind
        return Conn()

    sync_pool = SyncPool(lambda: Conn(), min_idle=2, leak_threshold=60.0)
    hung = SyncPool(slow_create, create_timeout=0.05, acquire_timeout=0.2)
    try:
        hung.acquire()
    except ConnectFailed:
        pass
    held = sync_pool.acquire()  # never returned: the process exits anyway

    async def create():
        await asyncio.sleep(0)
        return Conn()

    async def main():
        pool = Pool(create, min_idle=2, idle_timeout=600.0, leak_threshold=60.0)
        async with pool.connection():
            pass
        kept = await pool.acquire()  # left out, and the pool left undrained

    asyncio.run(main())
    print("done")
    """
)


def test_processes_using_pools_exit_promptly_and_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "pools.py"
    script.write_text(SCRIPT, encoding="utf-8")
    failures = []
    for run in range(5):
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-X", "dev", str(script)], capture_output=True, text=True, timeout=60
        )
        elapsed = time.monotonic() - started
        if proc.returncode != 0 or proc.stdout.strip() != "done" or proc.stderr:
            failures.append(f"run {run}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
        # The hung create sleeps for 30 s on a daemon thread: it must not hold the exit.
        elif elapsed > 10:
            failures.append(f"run {run}: took {elapsed:.1f} s to exit")
    assert not failures, "\n".join(failures)
