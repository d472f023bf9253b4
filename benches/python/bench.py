"""Seawall (Python) against its peers: pybreaker, aiobreaker, purgatory, asyncio-connection-pool,
generic-connection-pool and the standard library (asyncio.timeout, asyncio.wait_for).

Run it with `bash benches/python/run.sh` (which makes target/bench-venv with the pinned peers and
the Seawall wheel built from bindings/python). Writes target/bench-results/python.json in the
shape described in benches/README.md.

Method (issue 5): in every scenario the plain call (no wrapper) runs in the same process as a
baseline; the cases are interleaved round-robin (the order rotates every repetition), each
repetition times one batch sized to take about BATCH_SECONDS, and the median ns/op (ops/s for the
contended pool) over REPS repetitions is reported. A warm-up batch of every case runs first. The
timed loops contain only what a user writes; whether each library really did what the scenario
says is checked outside them (a check run with full accounting before timing, and the breakers'
and pools' state after timing), and any failed check raises, so the script exits non-zero.

Peers: pybreaker (sync breaker), aiobreaker (asyncio breaker) and purgatory (both; its sync
factory too) for the breaker scenarios; for the asyncio pool, two peers: asyncio-connection-pool
(lean and lock-free, an asyncio.Queue of idle connections: the hardest bar for cost per checkout)
and generic-connection-pool (full-featured: acquire/idle/lifetime timeouts, min idle; closest to
Seawall's Pool in what it does), plus a hand-written asyncio.Semaphore + list for reference;
asyncio.timeout (and asyncio.wait_for) for the deadline. Targets are set against both pools.

Scenario ids: the six of benches/README.md for the sync breaker and the rest; the asyncio
breaker variants are `breaker_closed_async`, `breaker_open_async`, `breaker_10pct_async` (with
`group` naming the README id and `variant` "async").

Memory: for every Seawall case, GC-tracked objects (len(gc.get_objects()) after gc.collect()) and
tracemalloc's traced bytes are read before and after MEM_CALLS calls; the difference divided by
the number of calls is reported as retained per call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from importlib import metadata
from itertools import repeat
from typing import Any, Callable, Dict, List, Optional

import aiobreaker
import asyncio_connection_pool as acp
import purgatory
import pybreaker
from purgatory.domain.model import OpenedState
from generic_connection_pool import asyncio as gcp

import seawall
import seawall._budget
from seawall import Budget, CircuitBreaker, CircuitOpenError, Pool

pc = time.perf_counter_ns

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "target", "bench-results", "python.json")


def version(dist: str) -> str:
    return metadata.version(dist)


class CheckFailed(AssertionError):
    pass


def check(ok: bool, what: str, checks: List[Dict[str, Any]]) -> None:
    """Records a check; raises at once when it failed (the bench must fail loudly)."""
    checks.append({"what": what, "ok": bool(ok)})
    if not ok:
        raise CheckFailed(what)


class Boom(Exception):
    """The error the failing operations raise."""


# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------


def op() -> int:
    return 1


async def aop() -> int:
    return 1


class Leak:
    """Counts calls that reached the guarded function while the breaker should reject all."""

    calls = 0


def op_open() -> int:
    Leak.calls += 1
    return 1


async def aop_open() -> int:
    Leak.calls += 1
    return 1


def tenth_failing() -> Callable[[], int]:
    """An operation that raises Boom on every tenth call (10 % failures), deterministically."""
    cyc = itertools.cycle((False,) * 9 + (True,)).__next__

    def op10() -> int:
        if cyc():
            raise Boom()
        return 1

    return op10


def atenth_failing() -> Callable[[], Any]:
    cyc = itertools.cycle((False,) * 9 + (True,)).__next__

    async def aop10() -> int:
        if cyc():
            raise Boom()
        return 1

    return aop10


# ---------------------------------------------------------------------------------------------
# Timed loops: exactly what a user writes, nothing else
# ---------------------------------------------------------------------------------------------


def loop_plain(f: Callable[[], Any]) -> Callable[[int], int]:
    def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            f()
        return pc() - t0

    return run


def loop_call(call: Callable[..., Any], f: Callable[[], Any]) -> Callable[[int], int]:
    def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            call(f)
        return pc() - t0

    return run


def loop_with(cm: Any, f: Callable[[], Any]) -> Callable[[int], int]:
    def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            with cm:
                f()
        return pc() - t0

    return run


def loop_plain_exc(f: Callable[[], Any], exc: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            try:
                f()
            except exc:
                pass
        return pc() - t0

    return run


def loop_call_exc(call: Callable[..., Any], f: Callable[[], Any], exc: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            try:
                call(f)
            except exc:
                pass
        return pc() - t0

    return run


def loop_with_exc(cm: Any, f: Callable[[], Any], exc: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            try:
                with cm:
                    f()
            except exc:
                pass
        return pc() - t0

    return run


def aloop_plain(f: Callable[[], Any]) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            await f()
        return pc() - t0

    return run


def aloop_call(call: Callable[..., Any], f: Callable[[], Any]) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            await call(f)
        return pc() - t0

    return run


def aloop_with(cm: Any, f: Callable[[], Any]) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            async with cm:
                await f()
        return pc() - t0

    return run


def aloop_plain_exc(f: Callable[[], Any], exc: Any) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            try:
                await f()
            except exc:
                pass
        return pc() - t0

    return run


def aloop_call_exc(call: Callable[..., Any], f: Callable[[], Any], exc: Any) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            try:
                await call(f)
            except exc:
                pass
        return pc() - t0

    return run


def aloop_with_exc(cm: Any, f: Callable[[], Any], exc: Any) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        t0 = pc()
        for _ in repeat(None, n):
            try:
                async with cm:
                    await f()
            except exc:
                pass
        return pc() - t0

    return run


# ---------------------------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------------------------


class Case:
    def __init__(
        self,
        name: str,
        role: str,
        run: Callable[[int], Any],
        version: Optional[str] = None,
        is_async: bool = False,
    ) -> None:
        self.name = name
        self.role = role
        self.run = run
        self.version = version
        self.is_async = is_async
        self.n = 1000
        self.ops = 0
        self.samples: List[float] = []


class Settings:
    batch_seconds = 0.03
    reps = 9
    mem_calls = 1_000_000
    peer_mem_calls = 20_000
    # "time": checks and timing only; "memory": checks and the memory runs only.
    mode = "time"
    # In memory mode: which Seawall case of the scenario (0 or 1) this process measures; the
    # peers' retention is measured alongside case 0.
    mem_case = 0


async def _call(case: Case, n: int) -> int:
    if case.is_async:
        return await case.run(n)
    return case.run(n)


async def measure(cases: List[Case]) -> None:
    """Warm-up and calibration, then REPS interleaved round-robin repetitions (ns/op).

    Between batches the event loop gets one turn (asyncio.sleep(0)), as any real program gives
    it: the ops themselves never yield, so without it cancelled timers would pile up in the
    loop's heap across batches."""
    if Settings.mode == "memory":
        return
    t0 = time.monotonic()
    for case in cases:
        # Warm-up, and size the batch so that it takes about batch_seconds.
        n = 200
        while True:
            dt = await _call(case, n)
            await asyncio.sleep(0)
            if dt >= 10_000_000 or n >= 5_000_000:
                break
            n *= 4
        per_op = dt / n
        case.n = max(100, int(Settings.batch_seconds * 1e9 / per_op))
    for rep in range(Settings.reps):
        gc.collect()
        shift = rep % len(cases)
        for case in cases[shift:] + cases[:shift]:
            dt = await _call(case, case.n)
            await asyncio.sleep(0)
            case.samples.append(dt / case.n)
            case.ops += case.n
    log(f"    timing: {time.monotonic() - t0:.1f} s")


async def retained(run: Callable[[int], Any], is_async: bool, calls: int) -> Dict[str, Any]:
    """Objects and bytes retained per call after a full GC, over `calls` calls."""

    async def go(n: int) -> None:
        # In chunks of 10,000 calls, giving the event loop a turn between them (as in timing).
        while n > 0:
            k = min(n, 10_000)
            if is_async:
                await run(k)
            else:
                run(k)
            await asyncio.sleep(0)
            n -= k

    await go(10_000)  # warm: caches, free lists, lazily created state
    gc.collect()
    tracemalloc.start()
    try:
        await go(10_000)
        gc.collect()
        objs0 = len(gc.get_objects())
        mem0 = tracemalloc.get_traced_memory()[0]
        await go(calls)
        gc.collect()
        objs1 = len(gc.get_objects())
        mem1 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {
        "what": "retained per call after a full GC (tracemalloc traced bytes; GC-tracked objects)",
        "bytes_per_call": round((mem1 - mem0) / calls, 4),
        "objects_per_call": round((objs1 - objs0) / calls, 6),
        "bytes_retained": mem1 - mem0,
        "objects_retained": objs1 - objs0,
        "calls": calls,
    }


def result_rows(cases: List[Case], unit: str) -> List[Dict[str, Any]]:
    rows = []
    for c in cases:
        med = statistics.median(c.samples)
        value = 1e9 / med if unit == "ops/s" else med
        row: Dict[str, Any] = {"name": c.name, "role": c.role, "value": round(value, 1)}
        if c.version:
            row["version"] = c.version
        row["samples"] = len(c.samples)
        rows.append(row)
    return rows


def value_of(rows: List[Dict[str, Any]], name: str) -> float:
    for r in rows:
        if r["name"] == name:
            return float(r["value"])
    raise KeyError(name)


def target(rows: List[Dict[str, Any]], seawall_name: str, peer: str, ratio: float, unit: str) -> Dict[str, Any]:
    t: Dict[str, Any] = {
        "seawall": value_of(rows, seawall_name),
        "seawall_name": seawall_name,
        "peer": peer,
    }
    if unit == "ops/s":
        t["what"] = f"{seawall_name}: at least {ratio}x {peer}'s throughput"
        t["min_ratio"] = ratio
    else:
        t["what"] = f"{seawall_name}: at most {ratio}x {peer}"
        t["max_ratio"] = ratio
    t["peer_value"] = value_of(rows, peer)
    t["ratio"] = round(t["seawall"] / t["peer_value"], 3)
    t["met"] = t["ratio"] >= ratio if unit == "ops/s" else t["ratio"] <= ratio
    return t


async def peer_memory(cases: List[Case], is_async: bool) -> List[Dict[str, Any]]:
    """What the peers retain per call (fewer calls: only to show a leak such as purgatory's)."""
    out: List[Dict[str, Any]] = []
    if Settings.mode != "memory" or Settings.mem_case != 0:
        return out
    for c in cases:
        if c.role == "peer":
            pm = await retained(c.run, is_async, Settings.peer_mem_calls)
            pm["name"] = c.name
            out.append(pm)
            log(f"    memory {c.name}: {pm['bytes_per_call']} B/call")
    return out


async def memory_of(cases: List[Case], calls: int) -> Optional[Dict[str, Any]]:
    """Memory for every Seawall case of a scenario; the scenario's `memory` is the worst one."""
    if Settings.mode != "memory":
        return None
    per_case = []
    for c in [c for c in cases if c.role == "seawall"][Settings.mem_case:Settings.mem_case + 1]:
        t0 = time.monotonic()
        m = await retained(c.run, c.is_async, calls)
        m["name"] = c.name
        m["seconds"] = round(time.monotonic() - t0, 1)
        per_case.append(m)
        log(f"    memory {c.name}: {m['bytes_per_call']} B/call, {m['objects_per_call']} objects/call ({m['seconds']} s)")
    worst = max(per_case, key=lambda m: m["bytes_per_call"])
    out = dict(worst)
    out["cases"] = per_case
    return out


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def scenario(
    sid: str,
    title: str,
    unit: str,
    cases: List[Case],
    checks: List[Dict[str, Any]],
    targets: List[tuple],
    memory: Optional[Dict[str, Any]],
    **extra: Any,
) -> Dict[str, Any]:
    if Settings.mode == "memory":
        out: Dict[str, Any] = {"id": sid, "checks": checks, "memory": memory}
        if "peer_memory" in extra:
            out["peer_memory"] = extra["peer_memory"]
        return out
    rows = result_rows(cases, unit)
    s: Dict[str, Any] = {
        "id": sid,
        "title": title,
        "unit": unit,
        "results": rows,
        "checks": checks,
        "targets": [target(rows, sw, peer, ratio, unit) for sw, peer, ratio in targets],
    }
    if memory is not None:
        s["memory"] = memory
    s.update({k: v for k, v in extra.items() if v != []})
    log(f"== {sid}: {title}")
    for r in rows:
        log(f"    {r['name']:<44} {r['value']:>14,.1f} {unit}")
    for t in s["targets"]:
        log(f"    target {t['what']}: ratio {t['ratio']} -> {'met' if t['met'] else 'MISSED'}")
    return s


# ---------------------------------------------------------------------------------------------
# Breakers
# ---------------------------------------------------------------------------------------------

V_PB = version("pybreaker")
V_AB = version("aiobreaker")
V_PG = version("purgatory")
V_ACP = version("asyncio-connection-pool")
V_GCP = version("generic-connection-pool")


def trip_sync(call: Callable[[], Any], times: int) -> None:
    for _ in range(times):
        try:
            call()
        except Exception:
            pass


async def trip_async(call: Callable[[], Any], times: int) -> None:
    for _ in range(times):
        try:
            await call()
        except Exception:
            pass


def boom() -> int:
    raise Boom()


async def aboom() -> int:
    raise Boom()


async def breaker_closed_sync() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    sw = CircuitBreaker(name="bench")
    sw_dec = CircuitBreaker(name="bench-dec")
    sw_op = sw_dec(op)
    pb = pybreaker.CircuitBreaker()
    pb_dec_b = pybreaker.CircuitBreaker()
    pb_op = pb_dec_b(op)
    pgf = purgatory.SyncCircuitBreakerFactory()
    pg = pgf.get_breaker("bench")

    # Check run: every call passed through to the op and returned its value.
    n = 2000
    check(all(sw.call(op) == 1 for _ in range(n)), "seawall call: every call passed", checks)
    check(all(sw_op() == 1 for _ in range(n)), "seawall decorator: every call passed", checks)
    check(all(pb.call(op) == 1 for _ in range(n)), "pybreaker call: every call passed", checks)
    check(all(pb_op() == 1 for _ in range(n)), "pybreaker decorator: every call passed", checks)
    got = []
    for _ in range(n):
        with pg:
            got.append(op())
    check(got == [1] * n, "purgatory (sync): every call passed", checks)

    cases = [
        Case("plain call", "baseline", loop_plain(op)),
        Case("seawall breaker.call(op)", "seawall", loop_call(sw.call, op)),
        Case("seawall @breaker", "seawall", loop_plain(sw_op)),
        Case("pybreaker breaker.call(op)", "peer", loop_call(pb.call, op), V_PB),
        Case("pybreaker @breaker", "peer", loop_plain(pb_op), V_PB),
        Case("purgatory (sync) with breaker", "peer", loop_with(pg, op), V_PG),
    ]
    before = sw.metrics().successes
    await measure(cases)
    m = sw.metrics()
    check(
        m.state == "closed" and m.failures == 0 and m.rejected == 0 and m.successes - before >= cases[1].ops,
        "after timing: seawall stayed closed, no failure or rejection recorded",
        checks,
    )
    check(pb.current_state == "closed" and pb.fail_counter == 0, "after timing: pybreaker closed", checks)
    check(pg.context.state == "closed", "after timing: purgatory closed", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    check(sw.state == "closed" and sw_dec.state == "closed", "after the memory run: seawall closed", checks)
    return scenario(
        "breaker_closed",
        "breaker closed path, op succeeds at once (sync)",
        "ns/op",
        cases,
        checks,
        [
            ("seawall breaker.call(op)", "pybreaker breaker.call(op)", 0.2),
            ("seawall @breaker", "pybreaker @breaker", 0.2),
        ],
        mem,
        variant="sync",
    )


async def breaker_closed_async() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    sw = CircuitBreaker(name="bench")
    sw_dec = CircuitBreaker(name="bench-dec")
    sw_aop = sw_dec(aop)
    ab = aiobreaker.CircuitBreaker()
    ab_dec_b = aiobreaker.CircuitBreaker()
    ab_aop = ab_dec_b(aop)
    pgf = purgatory.AsyncCircuitBreakerFactory()
    pg = await pgf.get_breaker("bench")
    pg_aop = pgf("bench-dec")(aop)

    n = 2000
    got = [await sw.call_async(aop) for _ in range(n)]
    check(got == [1] * n, "seawall call_async: every call passed", checks)
    got = [await sw_aop() for _ in range(n)]
    check(got == [1] * n, "seawall async decorator: every call passed", checks)
    got = [await ab.call_async(aop) for _ in range(n)]
    check(got == [1] * n, "aiobreaker call_async: every call passed", checks)
    got = [await ab_aop() for _ in range(n)]
    check(got == [1] * n, "aiobreaker decorator: every call passed", checks)
    got = []
    for _ in range(n):
        async with pg:
            got.append(await aop())
    check(got == [1] * n, "purgatory async with breaker: every call passed", checks)
    got = [await pg_aop() for _ in range(n)]
    check(got == [1] * n, "purgatory decorator: every call passed", checks)

    cases = [
        Case("plain await", "baseline", aloop_plain(aop), is_async=True),
        Case("seawall @breaker (async)", "seawall", aloop_plain(sw_aop), is_async=True),
        Case("seawall await breaker.call_async(op)", "seawall", aloop_call(sw.call_async, aop), is_async=True),
        Case("aiobreaker @breaker", "peer", aloop_plain(ab_aop), V_AB, is_async=True),
        Case("aiobreaker await breaker.call_async(op)", "peer", aloop_call(ab.call_async, aop), V_AB, is_async=True),
        Case("purgatory async with breaker", "peer", aloop_with(pg, aop), V_PG, is_async=True),
        Case("purgatory @factory(name)", "peer", aloop_plain(pg_aop), V_PG, is_async=True),
    ]
    await measure(cases)
    m = sw.metrics()
    check(m.state == "closed" and m.failures == 0 and m.rejected == 0, "after timing: seawall closed, nothing failed or rejected", checks)
    check(sw_dec.metrics().rejected == 0 and sw_dec.state == "closed", "after timing: seawall (decorator) closed", checks)
    check(ab.current_state == aiobreaker.CircuitBreakerState.CLOSED and ab.fail_counter == 0, "after timing: aiobreaker closed", checks)
    check(pg.context.state == "closed", "after timing: purgatory closed", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    return scenario(
        "breaker_closed_async",
        "breaker closed path, op succeeds at once (asyncio)",
        "ns/op",
        cases,
        checks,
        [
            ("seawall @breaker (async)", "aiobreaker @breaker", 0.4),
            ("seawall await breaker.call_async(op)", "aiobreaker await breaker.call_async(op)", 0.4),
        ],
        mem,
        variant="async",
        group="breaker_closed",
    )


async def breaker_open_sync() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    sw = CircuitBreaker(name="bench", open_duration=3600.0)
    sw_dec = CircuitBreaker(name="bench-dec", open_duration=3600.0)
    sw_op = sw_dec(op_open)
    pb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)
    pb_dec_b = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)
    pb_op = pb_dec_b(op_open)
    pgf = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=3600)
    pg = pgf.get_breaker("bench")

    def pg_fail() -> None:
        with pg:
            boom()

    trip_sync(lambda: sw.call(boom), 20)
    trip_sync(lambda: sw_dec.call(boom), 20)
    trip_sync(lambda: pb.call(boom), 5)
    trip_sync(lambda: pb_dec_b.call(boom), 5)
    trip_sync(pg_fail, 5)
    check(sw.state == "open" and sw_dec.state == "open", "seawall tripped open by 20 failures", checks)
    check(pb.current_state == "open" and pb_dec_b.current_state == "open", "pybreaker tripped open", checks)
    check(pg.context.state == "opened", "purgatory tripped open", checks)

    # Check run: every call rejected with the library's error, the op never called.
    def rejected(f: Callable[[], Any], exc: Any, n: int = 2000) -> int:
        count = 0
        for _ in range(n):
            try:
                f()
            except exc:
                count += 1
        return count

    Leak.calls = 0
    errs = []
    for _ in range(100):
        try:
            sw.call(op_open)
        except CircuitOpenError as e:
            errs.append(e)
    check(len(errs) == 100 and all(e.reason == "open" and e.retry_after and e.retry_after > 3000 for e in errs),
          "seawall raises CircuitOpenError(reason='open', retry_after) for each rejection", checks)
    check(len({id(e) for e in errs}) == 100, "seawall raises a fresh error per rejection", checks)
    del errs
    check(rejected(lambda: sw.call(op_open), CircuitOpenError) == 2000, "seawall call: every call rejected", checks)
    check(rejected(sw_op, CircuitOpenError) == 2000, "seawall decorator: every call rejected", checks)
    check(rejected(lambda: pb.call(op_open), pybreaker.CircuitBreakerError) == 2000, "pybreaker call: every call rejected", checks)
    check(rejected(pb_op, pybreaker.CircuitBreakerError) == 2000, "pybreaker decorator: every call rejected", checks)

    def pg_call() -> None:
        with pg:
            op_open()

    check(rejected(pg_call, OpenedState) == 2000, "purgatory (sync): every call rejected", checks)
    check(Leak.calls == 0, "no rejected call reached the op", checks)

    cases = [
        Case("plain call", "baseline", loop_plain_exc(op, Boom)),
        Case("seawall breaker.call(op)", "seawall", loop_call_exc(sw.call, op_open, CircuitOpenError)),
        Case("seawall @breaker", "seawall", loop_plain_exc(sw_op, CircuitOpenError)),
        Case("pybreaker breaker.call(op)", "peer", loop_call_exc(pb.call, op_open, pybreaker.CircuitBreakerError), V_PB),
        Case("pybreaker @breaker", "peer", loop_plain_exc(pb_op, pybreaker.CircuitBreakerError), V_PB),
        Case("purgatory (sync) with breaker", "peer", loop_with_exc(pg, op_open, OpenedState), V_PG),
    ]
    rej0 = sw.metrics().rejected
    await measure(cases)
    check(Leak.calls == 0, "after timing: no rejected call reached the op (every call rejected)", checks)
    m = sw.metrics()
    total = cases[1].ops
    check(m.state == "open" and m.rejected - rej0 >= total, "after timing: seawall open, counted every rejection", checks)
    check(pb.current_state == "open" and pg.context.state == "opened", "after timing: peers still open", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    check(Leak.calls == 0, "after the memory run: no call reached the op", checks)

    # What the peers retain per rejection (purgatory re-raises one exception object, whose
    # traceback grows with every rejection).
    peer_mem = await peer_memory(cases, False)
    return scenario(
        "breaker_open",
        "rejection while open: every call rejected, the raised error caught (sync)",
        "ns/op",
        cases,
        checks,
        [
            ("seawall breaker.call(op)", "pybreaker breaker.call(op)", 0.3),
            ("seawall @breaker", "pybreaker @breaker", 0.3),
        ],
        mem,
        variant="sync",
        peer_memory=peer_mem,
    )


async def breaker_open_async() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    sw = CircuitBreaker(name="bench", open_duration=3600.0)
    sw_dec = CircuitBreaker(name="bench-dec", open_duration=3600.0)
    sw_aop = sw_dec(aop_open)
    ab = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(hours=1))
    ab_dec_b = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(hours=1))
    ab_aop = ab_dec_b(aop_open)
    pgf = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=3600)
    pg = await pgf.get_breaker("bench")

    async def pg_fail() -> None:
        async with pg:
            await aboom()

    await trip_async(lambda: sw.call_async(aboom), 20)
    await trip_async(lambda: sw_dec.call_async(aboom), 20)
    await trip_async(lambda: ab.call_async(aboom), 5)
    await trip_async(lambda: ab_dec_b.call_async(aboom), 5)
    await trip_async(pg_fail, 5)
    check(sw.state == "open" and sw_dec.state == "open", "seawall tripped open", checks)
    check(ab.current_state == aiobreaker.CircuitBreakerState.OPEN and ab_dec_b.current_state == aiobreaker.CircuitBreakerState.OPEN,
          "aiobreaker tripped open", checks)
    check(pg.context.state == "opened", "purgatory tripped open", checks)

    async def rejected(f: Callable[[], Any], exc: Any, n: int = 2000) -> int:
        count = 0
        for _ in range(n):
            try:
                await f()
            except exc:
                count += 1
        return count

    async def pg_call() -> None:
        async with pg:
            await aop_open()

    Leak.calls = 0
    check(await rejected(lambda: sw.call_async(aop_open), CircuitOpenError) == 2000, "seawall call_async: every call rejected", checks)
    check(await rejected(sw_aop, CircuitOpenError) == 2000, "seawall async decorator: every call rejected", checks)
    check(await rejected(lambda: ab.call_async(aop_open), aiobreaker.CircuitBreakerError) == 2000, "aiobreaker call_async: every call rejected", checks)
    check(await rejected(ab_aop, aiobreaker.CircuitBreakerError) == 2000, "aiobreaker decorator: every call rejected", checks)
    check(await rejected(pg_call, OpenedState) == 2000, "purgatory: every call rejected", checks)
    check(Leak.calls == 0, "no rejected call reached the op", checks)

    cases = [
        Case("plain await", "baseline", aloop_plain_exc(aop, Boom), is_async=True),
        Case("seawall @breaker (async)", "seawall", aloop_plain_exc(sw_aop, CircuitOpenError), is_async=True),
        Case("seawall await breaker.call_async(op)", "seawall", aloop_call_exc(sw.call_async, aop_open, CircuitOpenError), is_async=True),
        Case("aiobreaker @breaker", "peer", aloop_plain_exc(ab_aop, aiobreaker.CircuitBreakerError), V_AB, is_async=True),
        Case("aiobreaker await breaker.call_async(op)", "peer", aloop_call_exc(ab.call_async, aop_open, aiobreaker.CircuitBreakerError), V_AB, is_async=True),
        Case("purgatory async with breaker", "peer", aloop_with_exc(pg, aop_open, OpenedState), V_PG, is_async=True),
    ]
    await measure(cases)
    check(Leak.calls == 0, "after timing: no rejected call reached the op (every call rejected)", checks)
    check(sw.state == "open" and sw_dec.state == "open", "after timing: seawall open", checks)
    check(ab.current_state == aiobreaker.CircuitBreakerState.OPEN and pg.context.state == "opened", "after timing: peers open", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    check(Leak.calls == 0, "after the memory run: no call reached the op", checks)
    peer_mem = await peer_memory(cases, True)
    return scenario(
        "breaker_open_async",
        "rejection while open: every call rejected, the raised error caught (asyncio)",
        "ns/op",
        cases,
        checks,
        [],
        mem,
        variant="async",
        group="breaker_open",
        peer_memory=peer_mem,
    )


async def breaker_10pct_sync() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    sw = CircuitBreaker(name="bench")
    sw_dec = CircuitBreaker(name="bench-dec")
    sw_op = sw_dec(tenth_failing())
    pb = pybreaker.CircuitBreaker()
    pb_dec_b = pybreaker.CircuitBreaker()
    pb_op = pb_dec_b(tenth_failing())
    pgf = purgatory.SyncCircuitBreakerFactory()
    pg = pgf.get_breaker("bench")
    ops = {k: tenth_failing() for k in ("plain", "sw", "pb", "pg")}

    def outcomes(f: Callable[[], Any], n: int = 2000) -> tuple:
        ok = failed = 0
        for _ in range(n):
            try:
                f()
                ok += 1
            except Boom:
                failed += 1
        return ok, failed

    # Any rejection (CircuitOpenError, CircuitBreakerError, OpenedState) escapes and fails loudly.
    check(outcomes(lambda: sw.call(ops["sw"])) == (1800, 200), "seawall call: 90 % passed, 10 % failed, none rejected", checks)
    check(outcomes(sw_op) == (1800, 200), "seawall decorator: 90 % passed, 10 % failed, none rejected", checks)
    check(outcomes(lambda: pb.call(ops["pb"])) == (1800, 200), "pybreaker call: 90 % passed, 10 % failed, none rejected", checks)
    check(outcomes(pb_op) == (1800, 200), "pybreaker decorator: 90 % passed, 10 % failed", checks)

    def pg_call() -> Any:
        with pg:
            return ops["pg"]()

    check(outcomes(pg_call) == (1800, 200), "purgatory (sync): 90 % passed, 10 % failed", checks)

    cases = [
        Case("plain call", "baseline", loop_plain_exc(ops["plain"], Boom)),
        Case("seawall breaker.call(op)", "seawall", loop_call_exc(sw.call, ops["sw"], Boom)),
        Case("seawall @breaker", "seawall", loop_plain_exc(sw_op, Boom)),
        Case("pybreaker breaker.call(op)", "peer", loop_call_exc(pb.call, ops["pb"], Boom), V_PB),
        Case("pybreaker @breaker", "peer", loop_plain_exc(pb_op, Boom), V_PB),
        Case("purgatory (sync) with breaker", "peer", loop_with_exc(pg, ops["pg"], Boom), V_PG),
    ]
    await measure(cases)
    m = sw.metrics()
    check(m.state == "closed" and m.rejected == 0 and m.times_opened == 0, "after timing: seawall stayed closed, nothing rejected", checks)
    check(9 * m.failures <= m.successes + 20 and m.failures * 9 >= m.successes - 20,
          f"after timing: seawall recorded 10 % failures ({m.failures} of {m.successes + m.failures})", checks)
    check(sw_dec.state == "closed" and sw_dec.metrics().times_opened == 0, "after timing: seawall (decorator) stayed closed", checks)
    check(pb.current_state == "closed" and pb_dec_b.current_state == "closed", "after timing: pybreaker stayed closed", checks)
    check(pg.context.state == "closed", "after timing: purgatory stayed closed", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    check(sw.state == "closed" and sw.metrics().times_opened == 0, "after the memory run: seawall stayed closed", checks)
    return scenario(
        "breaker_10pct",
        "10 % failures, the breaker stays closed (sync)",
        "ns/op",
        cases,
        checks,
        [],
        mem,
        variant="sync",
    )


async def breaker_10pct_async() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    sw = CircuitBreaker(name="bench")
    sw_dec = CircuitBreaker(name="bench-dec")
    sw_aop = sw_dec(atenth_failing())
    ab = aiobreaker.CircuitBreaker()
    ab_dec_b = aiobreaker.CircuitBreaker()
    ab_aop = ab_dec_b(atenth_failing())
    pgf = purgatory.AsyncCircuitBreakerFactory()
    pg = await pgf.get_breaker("bench")
    ops = {k: atenth_failing() for k in ("plain", "sw", "ab", "pg")}

    async def outcomes(f: Callable[[], Any], n: int = 2000) -> tuple:
        ok = failed = 0
        for _ in range(n):
            try:
                await f()
                ok += 1
            except Boom:
                failed += 1
        return ok, failed

    async def pg_call() -> Any:
        async with pg:
            return await ops["pg"]()

    check(await outcomes(lambda: sw.call_async(ops["sw"])) == (1800, 200), "seawall call_async: 90 % passed, 10 % failed, none rejected", checks)
    check(await outcomes(sw_aop) == (1800, 200), "seawall async decorator: 90 % passed, 10 % failed", checks)
    check(await outcomes(lambda: ab.call_async(ops["ab"])) == (1800, 200), "aiobreaker call_async: 90 % passed, 10 % failed", checks)
    check(await outcomes(ab_aop) == (1800, 200), "aiobreaker decorator: 90 % passed, 10 % failed", checks)
    check(await outcomes(pg_call) == (1800, 200), "purgatory: 90 % passed, 10 % failed", checks)

    cases = [
        Case("plain await", "baseline", aloop_plain_exc(ops["plain"], Boom), is_async=True),
        Case("seawall @breaker (async)", "seawall", aloop_plain_exc(sw_aop, Boom), is_async=True),
        Case("seawall await breaker.call_async(op)", "seawall", aloop_call_exc(sw.call_async, ops["sw"], Boom), is_async=True),
        Case("aiobreaker @breaker", "peer", aloop_plain_exc(ab_aop, Boom), V_AB, is_async=True),
        Case("aiobreaker await breaker.call_async(op)", "peer", aloop_call_exc(ab.call_async, ops["ab"], Boom), V_AB, is_async=True),
        Case("purgatory async with breaker", "peer", aloop_with_exc(pg, ops["pg"], Boom), V_PG, is_async=True),
    ]
    await measure(cases)
    m = sw.metrics()
    check(m.state == "closed" and m.rejected == 0 and m.times_opened == 0, "after timing: seawall stayed closed, nothing rejected", checks)
    check(sw_dec.state == "closed" and sw_dec.metrics().times_opened == 0, "after timing: seawall (decorator) stayed closed", checks)
    check(ab.current_state == aiobreaker.CircuitBreakerState.CLOSED and ab_dec_b.current_state == aiobreaker.CircuitBreakerState.CLOSED,
          "after timing: aiobreaker stayed closed", checks)
    check(pg.context.state == "closed", "after timing: purgatory stayed closed", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    check(sw.metrics().times_opened == 0 and sw_dec.metrics().times_opened == 0, "after the memory run: seawall never opened", checks)
    return scenario(
        "breaker_10pct_async",
        "10 % failures, the breaker stays closed (asyncio)",
        "ns/op",
        cases,
        checks,
        [],
        mem,
        variant="async",
        group="breaker_10pct",
    )


# ---------------------------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------------------------


class Conn:
    """A trivial in-memory connection."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Created:
    def __init__(self) -> None:
        self.count = 0

    async def create(self) -> Conn:
        self.count += 1
        return Conn()


class AcpStrategy(acp.ConnectionStrategy[Conn]):
    def __init__(self) -> None:
        self.created = 0

    async def make_connection(self) -> Conn:
        self.created += 1
        return Conn()

    def connection_is_closed(self, conn: Conn) -> bool:
        return conn.closed

    async def close_connection(self, conn: Conn) -> None:
        conn.close()


class GcpManager(gcp.BaseConnectionManager[str, Conn]):
    def __init__(self) -> None:
        self.created = 0

    async def create(self, endpoint: str) -> Conn:
        self.created += 1
        return Conn()

    async def dispose(self, endpoint: str, conn: Conn) -> None:
        conn.close()


class Holders:
    """Tracks how many tasks hold a connection at once (check runs only)."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0
        self.conns: set = set()

    def enter(self, conn: Any) -> None:
        self.now += 1
        if self.now > self.max:
            self.max = self.now
        self.conns.add(id(conn))

    def exit(self) -> None:
        self.now -= 1


def make_pools(size: int) -> Dict[str, Any]:
    sw_created = Created()
    sw = Pool(sw_created.create, max_size=size)
    acp_strategy = AcpStrategy()
    acp_pool = acp.ConnectionPool(strategy=acp_strategy, max_size=size)
    gcp_manager = GcpManager()
    gcp_pool = gcp.ConnectionPool(gcp_manager, min_idle=size, max_size=size)
    return {
        "sw": sw,
        "sw_created": sw_created,
        "acp": acp_pool,
        "acp_strategy": acp_strategy,
        "gcp": gcp_pool,
        "gcp_manager": gcp_manager,
    }


def pool_bodies(p: Dict[str, Any], hold: Callable[[], Any], limited_plain: bool = True) -> Dict[str, Callable[[], Any]]:
    """One acquire + hold + release, per library, as a user writes it. The plain baseline pops
    and pushes a list (one task), or with limited_plain=False just holds one shared connection
    (no pool, no limit: what the contended work costs without a pool)."""
    sw, acp_pool, gcp_pool = p["sw"], p["acp"], p["gcp"]
    sw_connection = sw.connection
    sw_acquire, sw_release = sw.acquire, sw.release
    acp_get = acp_pool.get_connection
    gcp_connection = gcp_pool.connection
    idle = [Conn() for _ in range(8)]
    sem = asyncio.Semaphore(8)

    async def plain() -> None:
        conn = idle.pop()
        await hold(conn)
        idle.append(conn)

    shared = Conn()

    async def unlimited() -> None:
        await hold(shared)

    async def semaphore() -> None:
        async with sem:
            conn = idle.pop()
            await hold(conn)
            idle.append(conn)

    async def sw_cm() -> None:
        async with sw_connection() as conn:
            await hold(conn)

    async def sw_ar() -> None:
        conn = await sw_acquire()
        try:
            await hold(conn)
        finally:
            sw_release(conn)

    async def acp_cm() -> None:
        async with acp_get() as conn:
            await hold(conn)

    async def gcp_cm() -> None:
        async with gcp_connection("db") as conn:
            await hold(conn)

    return {
        "plain": plain if limited_plain else unlimited,
        "semaphore": semaphore,
        "sw_cm": sw_cm,
        "sw_ar": sw_ar,
        "acp": acp_cm,
        "gcp": gcp_cm,
    }


NAMES = {
    "plain": ("plain (list pop/append, no pool)", "baseline", None),
    "semaphore": ("hand-written asyncio.Semaphore(8) + list", "peer", "stdlib"),
    "sw_cm": ("seawall async with pool.connection()", "seawall", None),
    "sw_ar": ("seawall await pool.acquire() / pool.release()", "seawall", None),
    "acp": ("asyncio-connection-pool async with get_connection()", "peer", V_ACP),
    "gcp": ("generic-connection-pool async with connection()", "peer", V_GCP),
}


def pool_targets(ratio: float) -> List[tuple]:
    """Each way of using Seawall's pool against each peer pool, with the same bound."""
    return [(NAMES[sw][0], NAMES[peer][0], ratio) for sw in ("sw_cm", "sw_ar") for peer in ("acp", "gcp")]


async def nothing(conn: Any) -> None:
    return None


async def pool_single() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    p = make_pools(8)
    holders = Holders()

    async def counted(conn: Any) -> None:
        holders.enter(conn)
        holders.exit()

    # Check run (one task): every acquire got a connection, one connection reused throughout
    # for the pools (nothing created per call), the counters balance.
    for key, body in pool_bodies(p, counted).items():
        holders.__init__()
        for _ in range(2000):
            await body()
        check(holders.max == 1 and holders.now == 0, f"{NAMES[key][0]}: one connection out at a time", checks)
        if key not in ("plain", "semaphore"):
            check(len(holders.conns) == 1, f"{NAMES[key][0]}: one task reuses one connection", checks)
    check(p["sw_created"].count == 1 and p["acp_strategy"].created == 1 and p["gcp_manager"].created == 1,
          "each pool opened exactly one connection", checks)

    bodies = pool_bodies(p, nothing)
    cases = [Case(NAMES[k][0], NAMES[k][1], aloop_plain(bodies[k]), NAMES[k][2], is_async=True) for k in bodies]
    await measure(cases)
    m = p["sw"].metrics()
    check(m.used == 0 and m.created == 1 and m.acquired == m.released and m.timeouts == 0,
          "after timing: seawall pool balanced (acquired == released), one connection", checks)
    check(p["acp"].in_use == 0 and p["acp_strategy"].created == 1, "after timing: asyncio-connection-pool balanced", checks)
    check(p["gcp_manager"].created == 1, "after timing: generic-connection-pool opened one connection", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    m = p["sw"].metrics()
    check(m.used == 0 and m.created == 1 and m.acquired == m.released, "after the memory run: seawall pool balanced", checks)
    await p["sw"].drain(timeout=1.0)
    await p["gcp"].close()
    return scenario(
        "pool_single",
        "asyncio pool acquire + release with one task (trivial in-memory connections)",
        "ns/op",
        cases,
        checks,
        pool_targets(0.3),
        mem,
    )


TASKS = 64
POOL_SIZE = 8


def contended_runner(body: Callable[[], Any]) -> Callable[[int], Any]:
    """Runs `n` ops split over 64 tasks; returns the elapsed ns (so median ns/op -> ops/s)."""

    async def worker(k: int) -> None:
        for _ in repeat(None, k):
            await body()

    async def run(n: int) -> int:
        k = max(1, n // TASKS)
        t0 = pc()
        await asyncio.gather(*[worker(k) for _ in range(TASKS)])
        dt = pc() - t0
        # Scale so that dt / n is the time per op actually done (TASKS * k ops).
        return dt * n // (TASKS * k)

    return run


async def pool_contended() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    notes: List[str] = []
    p = make_pools(POOL_SIZE)
    holders = Holders()

    async def counted(conn: Any) -> None:
        holders.enter(conn)
        await asyncio.sleep(0)
        holders.exit()

    # Check run: 64 tasks, 8 connections, each task yields once while holding. The limit held
    # (never more than 8 holders), all 8 were used, and every op completed.
    for key, body in pool_bodies(p, counted, limited_plain=False).items():
        holders.__init__()
        await contended_runner(body)(TASKS * 200)
        if key == "plain":
            check(holders.max > POOL_SIZE, "plain (no pool): more than 8 tasks held at once (no limit)", checks)
            continue
        check(holders.max <= POOL_SIZE and holders.now == 0,
              f"{NAMES[key][0]}: pool limit held (at most {POOL_SIZE} holders; max seen {holders.max})", checks)
        if NAMES[key][1] == "seawall":
            check(holders.max == POOL_SIZE, f"{NAMES[key][0]}: all {POOL_SIZE} connections in use under contention", checks)
        else:
            notes.append(f"{NAMES[key][0]}: at most {holders.max} of {POOL_SIZE} connections held at once under contention")
        if key not in ("plain", "semaphore"):
            check(len(holders.conns) == POOL_SIZE, f"{NAMES[key][0]}: exactly {POOL_SIZE} distinct connections", checks)
    check(p["sw_created"].count == POOL_SIZE and p["acp_strategy"].created == POOL_SIZE and p["gcp_manager"].created == POOL_SIZE,
          f"each pool opened exactly {POOL_SIZE} connections", checks)

    async def yield_once(conn: Any) -> None:
        await asyncio.sleep(0)

    bodies = pool_bodies(p, yield_once, limited_plain=False)
    # The plain baseline has no limit: 64 tasks, no pool (what the work costs without one).
    cases = [Case(NAMES[k][0], NAMES[k][1], contended_runner(bodies[k]), NAMES[k][2], is_async=True) for k in bodies]
    cases[0].name = "plain (no pool, no limit)"
    await measure(cases)
    m = p["sw"].metrics()
    check(m.used == 0 and m.created == POOL_SIZE and m.acquired == m.released and m.timeouts == 0 and m.overloaded == 0,
          "after timing: seawall pool balanced, 8 connections, no timeout or overload", checks)
    check(p["acp"].in_use == 0 and p["acp_strategy"].created == POOL_SIZE, "after timing: asyncio-connection-pool balanced, 8 connections", checks)
    check(p["gcp_manager"].created == POOL_SIZE, "after timing: generic-connection-pool 8 connections", checks)
    mem = await memory_of(cases, Settings.mem_calls)
    m = p["sw"].metrics()
    check(m.used == 0 and m.created == POOL_SIZE and m.acquired == m.released, "after the memory run: seawall pool balanced", checks)
    await p["sw"].drain(timeout=1.0)
    await p["gcp"].close()
    return scenario(
        "pool_contended",
        f"asyncio pool, {TASKS} concurrent tasks on {POOL_SIZE} connections, each yielding once while holding",
        "ops/s",
        cases,
        checks,
        pool_targets(2.0),
        mem,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# Deadline
# ---------------------------------------------------------------------------------------------


def live_timers() -> int:
    """Deadlines left armed on the running loop: timers scheduled and not cancelled, plus the
    budget blocks still registered on Seawall's shared per-loop deadline timer. That timer's
    own handle is not a leak and is not counted: the loop holds at most one, armed for the
    earliest deadline it was set for, which then fires once, finds no block and stops (the
    binding's tests check that); a budget that forgot to unregister would be counted here."""
    loop = asyncio.get_running_loop()
    timer = seawall._budget.loop_timer(loop)
    shared = timer._handle if timer is not None else None
    armed = sum(not h.cancelled() and h is not shared for h in loop._scheduled)  # type: ignore[attr-defined]
    return armed + (timer.pending() if timer is not None else 0)


async def deadline() -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    if not hasattr(asyncio, "timeout"):
        raise CheckFailed("asyncio.timeout needs Python 3.11+")

    async def sw_with() -> int:
        async with Budget(10.0):
            return await aop()

    async def sw_run() -> int:
        return await Budget(10.0).run(aop)

    async def std_timeout() -> int:
        async with asyncio.timeout(10.0):
            return await aop()

    async def std_wait_for() -> int:
        return await asyncio.wait_for(aop(), 10.0)

    n = 2000
    for name, f in (("seawall async with Budget", sw_with), ("seawall Budget.run", sw_run),
                    ("asyncio.timeout", std_timeout), ("asyncio.wait_for", std_wait_for)):
        got = []
        for _ in range(n):
            got.append(await f())  # a DeadlineExceeded / TimeoutError would escape and fail
        check(got == [1] * n, f"{name}: every call returned, the deadline never fired", checks)
    check(live_timers() == 0, "no live timer left on the loop after the check run", checks)

    cases = [
        Case("plain await", "baseline", aloop_plain(aop), is_async=True),
        Case("seawall async with Budget(10)", "seawall", aloop_plain(sw_with), is_async=True),
        Case("seawall await Budget(10).run(op)", "seawall", aloop_plain(sw_run), is_async=True),
        Case("async with asyncio.timeout(10)", "peer", aloop_plain(std_timeout), f"CPython {platform.python_version()}", is_async=True),
        Case("await asyncio.wait_for(op(), 10)", "peer", aloop_plain(std_wait_for), f"CPython {platform.python_version()}", is_async=True),
    ]
    await measure(cases)
    mem = await memory_of(cases, Settings.mem_calls)
    check(live_timers() == 0, "after timing and the memory run: no live timer left on the loop", checks)
    return scenario(
        "deadline",
        "deadline wrapper around an op that finishes at once (the deadline never fires)",
        "ns/op",
        cases,
        checks,
        [
            ("seawall async with Budget(10)", "async with asyncio.timeout(10)", 0.5),
            ("seawall await Budget(10).run(op)", "async with asyncio.timeout(10)", 0.5),
        ],
        mem,
    )


SCENARIOS = {
    "breaker_closed": breaker_closed_sync,
    "breaker_closed_async": breaker_closed_async,
    "breaker_open": breaker_open_sync,
    "breaker_open_async": breaker_open_async,
    "breaker_10pct": breaker_10pct_sync,
    "breaker_10pct_async": breaker_10pct_async,
    "pool_single": pool_single,
    "pool_contended": pool_contended,
    "deadline": deadline,
}


# Longest memory phases first, so that two workers finish close together.
MEMORY_ORDER = [
    "pool_contended", "deadline", "pool_single", "breaker_open_async", "breaker_open",
    "breaker_closed_async", "breaker_10pct_async", "breaker_10pct", "breaker_closed",
]


def run_memory_phase(sids: List[str], workers: int) -> Dict[str, Dict[str, Any]]:
    """Runs the memory measurements in `workers` child processes (one scenario each, at most
    `workers` at a time) once all timing is done: tracemalloc slows every allocation several
    times, and 1,000,000 calls per Seawall case would otherwise take most of the time budget.
    Each child rebuilds its scenario, repeats the scenario's checks, and measures."""
    import subprocess
    import tempfile

    pending = [(sid, k) for sid in MEMORY_ORDER if sid in sids for k in (0, 1)]
    running: List[tuple] = []
    out: Dict[str, Dict[str, Any]] = {}
    tmp = tempfile.mkdtemp(prefix="seawall-bench-mem-")
    failed = []
    while pending or running:
        while pending and len(running) < workers:
            sid, k = pending.pop(0)
            path = os.path.join(tmp, f"{sid}-{k}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--mode", "memory", "--only", sid,
                   "--mem-case", str(k), "--mem-calls", str(Settings.mem_calls), "--out", path]
            running.append((sid, path, subprocess.Popen(cmd)))
        time.sleep(0.05)
        for item in list(running):
            sid, path, proc = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0:
                failed.append(sid)
                continue
            with open(path) as f:
                got = json.load(f)["scenarios"][0]
            if sid not in out:
                out[sid] = {"checks": [], "cases": [], "peer_memory": []}
            out[sid]["checks"].extend(got["checks"])
            out[sid]["cases"].extend(got["memory"]["cases"])
            out[sid]["peer_memory"].extend(got.get("peer_memory") or [])
    if failed:
        raise CheckFailed(f"memory phase failed for {failed}")
    for sid, got in out.items():
        worst = dict(max(got["cases"], key=lambda m: m["bytes_per_call"]))
        worst["cases"] = got["cases"]
        got["memory"] = worst
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    ap.add_argument("--reps", type=int, default=Settings.reps)
    ap.add_argument("--batch-seconds", type=float, default=Settings.batch_seconds)
    ap.add_argument("--mem-calls", type=int, default=Settings.mem_calls)
    ap.add_argument("--mem-workers", type=int, default=2)
    ap.add_argument("--mem-case", type=int, default=0, choices=[0, 1])
    ap.add_argument("--mode", choices=["all", "time", "memory"], default="all",
                    help="all: timing here, then the memory runs in child processes")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--command", default="bash benches/python/run.sh")
    args = ap.parse_args()
    Settings.reps = args.reps
    Settings.batch_seconds = args.batch_seconds
    Settings.mem_calls = args.mem_calls
    if Settings.mem_calls < 1_000_000 and os.path.abspath(args.out) == OUT:
        raise SystemExit("the memory measurement needs at least 1,000,000 calls for the result file")
    Settings.mode = "memory" if args.mode == "memory" else "time"
    Settings.mem_case = args.mem_case

    t0 = time.monotonic()
    results = []
    sids = [sid for sid in SCENARIOS if not args.only or sid in args.only]
    for sid in sids:
        s0 = time.monotonic()
        # One event loop per scenario: pools bind to the loop they are made on.
        results.append(asyncio.run(SCENARIOS[sid]()))
        log(f"   ({sid}: {time.monotonic() - s0:.1f} s)")
    timing_seconds = time.monotonic() - t0

    if args.mode == "all":
        log(f"== memory: {Settings.mem_calls:,} calls per Seawall case, {args.mem_workers} worker processes")
        m0 = time.monotonic()
        mem = run_memory_phase(sids, args.mem_workers)
        for s in results:
            got = mem[s["id"]]
            s["memory"] = got["memory"]
            seen = set()
            for c in got["checks"]:
                # The memory runs repeat the scenario's checks (no timing there, so the
                # "after timing" ones say nothing and are left out).
                if c["what"].startswith("after timing") or c["what"] in seen:
                    continue
                seen.add(c["what"])
                s["checks"].append(dict(c, what=c["what"] + " (memory run)"))
            if got.get("peer_memory"):
                s["peer_memory"] = got["peer_memory"]
        log(f"   (memory: {time.monotonic() - m0:.1f} s)")

    doc = {
        "language": "python",
        "command": args.command,
        "runtime": f"CPython {platform.python_version()} ({platform.machine()}, {os.cpu_count()} cores)",
        "seawall_version": version("seawall"),
        "peers": {
            "pybreaker": V_PB,
            "aiobreaker": V_AB,
            "purgatory": V_PG,
            "asyncio-connection-pool": V_ACP,
            "generic-connection-pool": V_GCP,
        },
        "method": (
            f"median of {Settings.reps} interleaved round-robin repetitions, batches of about "
            f"{Settings.batch_seconds * 1000:.0f} ms, after a warm-up batch; memory over "
            f"{Settings.mem_calls:,} calls per Seawall case after gc.collect() (tracemalloc "
            f"traced bytes and len(gc.get_objects())), in child processes after the timing"
        ),
        "timing_seconds": round(timing_seconds, 1),
        "elapsed_seconds": round(time.monotonic() - t0, 1),
        "scenarios": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    if args.mode == "all":
        summary(doc)
    log(f"wrote {args.out} in {doc['elapsed_seconds']} s")


def summary(doc: Dict[str, Any]) -> None:
    log("== targets (ratio = seawall / peer, measured in this run)")
    for s in doc["scenarios"]:
        for t in s["targets"]:
            log(f"  {s['id']:<22} {t['what']:<110} {t['ratio']:>7}  {'met' if t['met'] else 'MISSED'}")
    log("== memory retained per call (worst Seawall case per scenario)")
    for s in doc["scenarios"]:
        m = s.get("memory")
        if m:
            log(f"  {s['id']:<22} {m['bytes_per_call']:>10} B/call  {m['objects_per_call']:>10} objects/call  ({m['name']}, {m['calls']:,} calls)")


if __name__ == "__main__":
    main()
