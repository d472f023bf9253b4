"""The pools with psycopg 3 against the real PostgreSQL on 127.0.0.1:5432, through a TCP fault
proxy written here (asyncio streams on a thread of its own): normal load with many more callers
than connections, an outage (new connections black-holed or refused, open ones cut) during which
callers fail fast and no connection attempt reaches the network, recovery, and nothing left on
the server after the drain.

The server is never stopped: faults are the proxy's. Backends are counted in
``pg_stat_activity`` by a unique ``application_name``, queried directly, not through the proxy.
Bounds are generous so a loaded two-core machine passes; the whole file takes a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
import uuid
from typing import Any, List, Optional, Set

import pytest

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed here (scripts/test.sh installs it in the main venv)"
)

from seawall import (  # noqa: E402
    DatabaseUnavailable,
    Pool,
    PoolError,
    StateChange,
    SyncPool,
)

SERVER_PORT = 5432
OPEN_DURATION = 1.0
CREATE_TIMEOUT = 0.5


class FaultProxy:
    """A TCP proxy to 127.0.0.1:5432 on a thread of its own. Modes for new connections:
    ``pass`` (forwarded), ``refuse`` (reset at once), ``blackhole`` (accepted, never answered);
    ``cut_existing()`` closes every forwarded connection. ``attempts`` counts connections
    accepted."""

    def __init__(self) -> None:
        self.mode = "pass"
        self.attempts = 0
        self._open: Set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
        mode = self.mode
        if mode == "refuse":
            reset(writer)
            return
        if mode == "blackhole":
            self._open.add(writer)
            try:
                # Say nothing; wait for the client to give up.
                while await reader.read(65536):
                    pass
            except OSError:
                pass
            finally:
                self._open.discard(writer)
                writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", SERVER_PORT)
        except OSError:
            reset(writer)
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.close()

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "refuse", "blackhole")
        self.mode = mode

    def cut_existing(self) -> None:
        done = threading.Event()

        def cut() -> None:
            for w in list(self._open):
                reset(w)
            done.set()

        self._loop.call_soon_threadsafe(cut)
        done.wait(5)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for w in list(self._open):
                reset(w)
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP reset, as a dead route or a refused connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def conninfo(port: int, app: str) -> str:
    return f"host=127.0.0.1 port={port} user=postgres dbname=test application_name={app}"


def server_connections(app: str) -> int:
    """Backends of this test on the server, asked directly (not through the proxy)."""
    with psycopg.connect(conninfo(SERVER_PORT, "seawall-e2e-observer"), connect_timeout=5) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for_no_connections(app: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        left = server_connections(app)
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} connections of {app} left on the server"
        time.sleep(0.05)


@pytest.fixture
def proxy() -> Any:
    try:
        server_connections("seawall-e2e-probe")
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL must run on 127.0.0.1:5432 (user postgres, database test): {e}")
    p = FaultProxy()
    try:
        yield p
    finally:
        p.close()


def unique_app(kind: str) -> str:
    return f"seawall-e2e-python-{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def test_asyncio_pool_load_outage_recovery_and_no_leaks(proxy: FaultProxy) -> None:
    app = unique_app("async")

    async def create() -> Any:
        return await psycopg.AsyncConnection.connect(conninfo(proxy.port, app), autocommit=True)

    async def validate(conn: Any) -> bool:
        await conn.execute("SELECT 1")
        return True

    async def destroy(conn: Any) -> None:
        await conn.close()

    async def main() -> None:
        pool = Pool(
            create,
            destroy=destroy,
            validate=validate,
            is_broken=lambda c: c.closed or c.broken,
            max_size=8,
            acquire_timeout=3.0,
            create_timeout=CREATE_TIMEOUT,
            validate_after=0.05,
            create_backoff_base=0.01,
            create_backoff_cap=0.1,
            breaker={
                "consecutive_failures": 3,
                "open_duration": OPEN_DURATION,
                "half_open_calls": 1,
            },
        )
        changes: List[StateChange] = []
        pool.on_breaker(changes.append)

        async def select_one() -> int:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT 1")
                row = await cur.fetchone()
                return int(row[0])

        # (1) Normal load: 64 tasks on 8 connections, every query answered.
        async def worker() -> int:
            return sum([await select_one() for _ in range(5)])

        results = await asyncio.gather(*(worker() for _ in range(64)))
        assert sum(results) == 320
        assert proxy.attempts <= 8, f"{proxy.attempts} connects for 8 slots"
        assert 1 <= await asyncio.to_thread(server_connections, app) <= 8

        # (2) Outage: new connections are black-holed and the open ones cut.
        proxy.set_mode("blackhole")
        proxy.cut_existing()
        loop = asyncio.get_running_loop()
        started = loop.time()
        unavailable: Optional[DatabaseUnavailable] = None
        while loop.time() - started < 15:
            try:
                await select_one()
            except DatabaseUnavailable as e:
                unavailable = e
                break
            except (PoolError, psycopg.Error):
                await asyncio.sleep(0.005)
        assert unavailable is not None, "the breaker never opened"
        assert unavailable.retry_after is not None and unavailable.retry_after <= OPEN_DURATION
        assert pool.metrics().breaker_state == "open"
        # While it is open, callers fail in milliseconds and nothing reaches the network.
        attempts = proxy.attempts
        burst_started = loop.time()

        async def timed_acquire() -> float:
            t = loop.time()
            with pytest.raises(DatabaseUnavailable) as info:
                await pool.acquire()
            assert info.value.retry_after is not None
            return loop.time() - t

        took = await asyncio.gather(*(timed_acquire() for _ in range(200)))
        assert max(took) < 0.1, f"a caller waited {max(took):.3f} s"
        assert loop.time() - burst_started < OPEN_DURATION
        assert proxy.attempts == attempts, "no connection storm while the breaker is open"

        # (3) Recovery: once traffic passes again, within the open duration and one probe.
        proxy.set_mode("pass")
        recovering = loop.time()
        while True:
            try:
                assert await select_one() == 1
                break
            except (PoolError, psycopg.Error):
                elapsed = loop.time() - recovering
                assert elapsed < OPEN_DURATION + CREATE_TIMEOUT + 2.0, "no recovery"
                await asyncio.sleep(0.02)
        assert changes[-1].to_state == "closed"
        results = await asyncio.gather(*(worker() for _ in range(16)))
        assert sum(results) == 80

        # (4) Nothing leaked: after the drain the server has none of this test's connections.
        assert await pool.drain(timeout=2.0) == []

    asyncio.run(main())
    wait_for_no_connections(app)


def test_sync_pool_load_outage_recovery_and_no_leaks(proxy: FaultProxy) -> None:
    app = unique_app("sync")
    pool = SyncPool(
        lambda: psycopg.connect(conninfo(proxy.port, app), autocommit=True, connect_timeout=2),
        validate=lambda c: c.execute("SELECT 1") is not None,
        is_broken=lambda c: c.closed or c.broken,
        max_size=4,
        acquire_timeout=3.0,
        create_timeout=CREATE_TIMEOUT,
        validate_after=0.05,
        create_backoff_base=0.01,
        create_backoff_cap=0.1,
        breaker={"consecutive_failures": 3, "open_duration": OPEN_DURATION, "half_open_calls": 1},
    )

    def select_one() -> int:
        with pool.connection() as conn:
            row = conn.execute("SELECT 1").fetchone()
            return int(row[0])

    # (1) 16 threads on 4 connections.
    totals: List[int] = []
    errors: List[BaseException] = []

    def worker() -> None:
        try:
            totals.append(sum(select_one() for _ in range(5)))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sum(totals) == 80
    assert proxy.attempts <= 4
    assert 1 <= server_connections(app) <= 4

    # (2) Outage: new connections refused, open ones cut.
    proxy.set_mode("refuse")
    proxy.cut_existing()
    started = time.monotonic()
    opened = False
    while time.monotonic() - started < 15:
        try:
            select_one()
        except DatabaseUnavailable:
            opened = True
            break
        except (PoolError, psycopg.Error):
            time.sleep(0.005)
    assert opened, "the breaker never opened"
    attempts = proxy.attempts
    burst = time.monotonic()
    for _ in range(100):
        t = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            pool.acquire()
        assert time.monotonic() - t < 0.1
    assert time.monotonic() - burst < OPEN_DURATION
    assert proxy.attempts == attempts, "no connection storm while the breaker is open"

    # (3) Recovery.
    proxy.set_mode("pass")
    recovering = time.monotonic()
    while True:
        try:
            assert select_one() == 1
            break
        except (PoolError, psycopg.Error):
            assert time.monotonic() - recovering < OPEN_DURATION + CREATE_TIMEOUT + 2.0
            time.sleep(0.02)

    # (4) Drain, and nothing left on the server.
    assert pool.drain(timeout=2.0) == []
    wait_for_no_connections(app)
