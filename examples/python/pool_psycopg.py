"""Seawall's connection pools with psycopg 3: an asyncio ``Pool`` of ``AsyncConnection``s and a
threaded ``SyncPool`` of ``Connection``s, against a real PostgreSQL.

Run it (after `bash bindings/python/scripts/test.sh`, which installs `seawall` and psycopg into
.venv), with PostgreSQL on 127.0.0.1:5432 or `DATABASE_URL` pointing elsewhere:

    .venv/bin/python examples/python/pool_psycopg.py

Fifty concurrent requests share five connections; each gets its connection within a 2 s budget
(a request never waits longer than it has left), and a query error marks its connection broken
so it is closed rather than reused. Leaks (a checkout held over 10 s) are reported with the stack
where the connection was acquired. If the database goes away, the pool's breaker opens after
five failed connection attempts in a row and callers get ``DatabaseUnavailable`` at once, with
``retry_after``, instead of piling up. The run takes well under a second.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import psycopg

from seawall import (
    Budget,
    DatabaseUnavailable,
    LeakSuspected,
    Pool,
    PoolError,
    PoolEvent,
    SyncPool,
)

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)


async def check(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Run only for a connection idle longer than ``validate_after``."""
    await conn.execute("SELECT 1")
    return True


async def close(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.close()


def report(event: PoolEvent) -> None:
    if isinstance(event, LeakSuspected):
        print(f"connection held for {event.held_for:.1f} s, acquired at:\n{event.stack}")
    else:
        print(f"pool event: {event}")


async def main() -> None:
    pool = Pool(
        # The handshake is bounded by the pool's create_timeout (it cancels the connect).
        lambda: psycopg.AsyncConnection.connect(
            DATABASE_URL, autocommit=True, application_name="seawall-example"
        ),
        destroy=close,
        validate=check,
        is_broken=lambda conn: conn.closed or conn.broken,
        max_size=5,
        min_idle=1,
        acquire_timeout=2.0,
        create_timeout=3.0,
        leak_threshold=10.0,
    )
    pool.on_event(report)

    async def request(i: int) -> int:
        # The request's budget bounds the wait for a connection (and can bound the query).
        async with pool.connection(budget=Budget(2.0)) as conn:
            cur = await conn.execute("SELECT %s::int * 2", (i,))
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

    try:
        results = await asyncio.gather(*(request(i) for i in range(50)))
    except DatabaseUnavailable as e:
        print(f"database down: retry in {e.retry_after} s ({e.last_error})")
        raise
    except PoolError as e:
        print(f"no connection: {e}")
        raise
    m = pool.metrics()
    print(
        f"asyncio: {len(results)} queries (sum {sum(results)}) on {m.created} connections; "
        f"wait p99 {m.wait_time.p99 * 1000:.1f} ms, use p99 {m.use_time.p99 * 1000:.1f} ms, "
        f"breaker {m.breaker_state}"
    )
    held = await pool.drain(timeout=5.0)
    print(f"asyncio pool drained ({len(held)} connections were still out)")


def threaded() -> None:
    # psycopg's own connect_timeout bounds the connect: a thread cannot be cancelled.
    with SyncPool(
        lambda: psycopg.connect(
            DATABASE_URL, autocommit=True, connect_timeout=5, application_name="seawall-example"
        ),
        validate=lambda conn: conn.execute("SELECT 1") is not None,
        is_broken=lambda conn: conn.closed or conn.broken,
        max_size=3,
    ) as pool:
        answers = []

        def work(i: int) -> None:
            with pool.connection() as conn:
                row = conn.execute("SELECT %s::int + 1", (i,)).fetchone()
                assert row is not None
                answers.append(row[0])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        m = pool.metrics()
        print(f"threads: {len(answers)} queries on {m.created} connections, {m.max} at most")


if __name__ == "__main__":
    asyncio.run(main())
    threaded()
