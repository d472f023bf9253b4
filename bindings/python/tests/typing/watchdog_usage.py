"""Type-checked (mypy --strict), not run: the memory watchdog's public API as a user would write
it, so that the shipped stubs (seawall/_watchdog.pyi) are checked for what they promise."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal, Optional

from typing_extensions import assert_type

import seawall
from seawall import (
    DUMP_PREFIX,
    RESTART_EXIT_CODE,
    Assessment,
    DumpPlan,
    MemoryReading,
    MemoryWatchdog,
    Trend,
    WatchdogAction,
    WatchdogCounts,
    WatchdogEvent,
    WatchdogMetrics,
    WatchdogPolicy,
    read_memory,
)

assert_type(RESTART_EXIT_CODE, int)
assert_type(DUMP_PREFIX, str)

reading = read_memory(512 << 20)
assert_type(reading, MemoryReading)
assert_type(reading.oom_kills, Optional[int])
assert_type(read_memory(root=Path("/tmp/fake")), MemoryReading)


def on_warn(event: WatchdogEvent) -> None:
    assert_type(event.kind, Literal[
        "sample",
        "warn",
        "recovered",
        "spike",
        "leak_trend",
        "act",
        "evidence",
        "restart",
        "drained",
        "tracing_started",
        "tracing_stopped",
        "error",
    ])
    assert_type(event.path, Optional[str])
    if event.action is not None:
        assert_type(event.action, WatchdogAction)
        assert_type(event.action.evidence, Optional[Literal["heap_snapshot", "profile"]])


async def drain_pool() -> None:
    pass


watchdog = MemoryWatchdog(
    interval=300.0,
    warn_percent=70,
    act_percent=80,
    limit_bytes=1 << 30,
    dump_dir=Path("/var/tmp"),
    on_warn=on_warn,
    on_act=lambda e: None,
    drain=[lambda: None, drain_pool],
    act_mode="event_only",
    tracemalloc_for=120.0,
    top_n=10,
)
assert_type(watchdog.start(), MemoryWatchdog)
watchdog.add_listener(print)
watchdog.remove_listener(print)
assert_type(watchdog.sample_now(), Assessment)
m = watchdog.metrics()
assert_type(m, WatchdogMetrics)
assert_type(m.counts, WatchdogCounts)
assert_type(m.time_to_limit, Optional[float])
assert_type(watchdog.policy, WatchdogPolicy)
assert_type(watchdog.running, bool)
watchdog.stop(timeout=1.0)
with MemoryWatchdog(probe=lambda: reading) as w:
    assert_type(w, MemoryWatchdog)


async def main() -> None:
    task = MemoryWatchdog(drain=drain_pool).start_async()
    assert_type(task, "asyncio.Task[None]")


policy = WatchdogPolicy(interval=60.0, alert_interval=5.0, snapshot_headroom_factor=1.5)
a = policy.observe(0.0, 700, 1000, heap_used=100, heap_limit=None)
assert_type(a.level, Literal["normal", "warn", "act"])
assert_type(a.trend, Optional[Trend])
assert_type(a.actions, tuple[WatchdogAction, ...])
assert_type(policy.counts().profiles, int)
plan = policy.plan_dump_rotation([("seawall-memory-a.json", 10, 1)], 10)
assert_type(plan, DumpPlan)
assert_type(plan.delete, tuple[str, ...])
assert seawall.MemoryWatchdog is MemoryWatchdog

# Mistakes the stubs catch:
MemoryWatchdog(act_mode="reboot")  # type: ignore[arg-type]
MemoryWatchdog(interval="5m")  # type: ignore[arg-type]
policy.observe(0.0, "700", 1000)  # type: ignore[arg-type]
