"""A memory watchdog seeing a (deliberate) leak coming, capturing evidence, and what a restart
would do. Runs for a few seconds and exits by itself.

Run it (after `bash bindings/python/scripts/test.sh`, which installs `seawall` into .venv):

    .venv/bin/python examples/python/watchdog.py

In production, the defaults are the incident protocol: a sample every 5 minutes (faster near
the limit or while memory grows fast), a warning at 70 % of the effective limit (the tightest of
the cgroup limits, `limit_bytes` and RAM), and at 80 % evidence, the drain hooks, and exit code
75 so that the supervisor starts a fresh process:

    watchdog = MemoryWatchdog(dump_dir="/var/lib/app/dumps", drain=close_pools)
    watchdog.start()            # a daemon thread: never keeps the interpreter alive
    # or, in asyncio code:      watchdog.start_async()   (drain hooks may be coroutines)

Here the limit is set just above what is in use now, samples come every 50 ms, and the act mode
is "event_only" so that the example reports instead of exiting with 75.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from typing import List

from seawall import MemoryWatchdog, WatchdogEvent, read_memory

MIB = 1 << 20


def show(e: WatchdogEvent) -> None:
    if e.kind in ("tracing_started", "tracing_stopped"):
        print(f"  {e.kind}: {e.detail}")
    if e.kind == "sample" or e.reading is None:
        return
    used = f"{e.reading.usage_bytes / MIB:.0f}/{e.reading.limit_bytes / MIB:.0f} MiB"
    print(f"  {e.kind:<9} at {used}", end="")
    if e.kind == "evidence" and e.action is not None and e.path is not None:
        with open(e.path) as f:
            report = json.load(f)
        where = report["top"][0]["site"] if report["top"] else "(figures only)"
        print(f": {report['kind']} ({e.action.trigger}), top site {where}", end="")
    print()


def leak_until_act(watchdog: MemoryWatchdog, limit: int) -> List[bytes]:
    leaked: List[bytes] = []
    deadline = time.monotonic() + 10
    while watchdog.metrics().counts.acts == 0 and time.monotonic() < deadline:
        leaked.append(b"x" * MIB)  # the leak the evidence points at
        time.sleep(0.01)
        if len(leaked) * MIB > limit:
            break
    return leaked


def main() -> None:
    now = read_memory()
    print(
        f"probe: limit {now.limit_bytes / MIB:.0f} MiB ({now.limit_source}), "
        f"usage {now.usage_bytes / MIB:.0f} MiB ({now.usage_source}), cgroup {now.cgroup}"
    )
    # Usage is now 60 % of this limit: warn at 70 %, act at 80 %.
    limit = int(now.usage_bytes / 0.6)
    with tempfile.TemporaryDirectory() as dumps:
        watchdog = MemoryWatchdog(
            interval=0.05,
            alert_interval=0.05,
            limit_bytes=limit,
            dump_dir=dumps,
            act_mode="event_only",
            on_act=lambda e: print("  on_act: here a restart would drain and exit(75)"),
        )
        watchdog.add_listener(show)
        with watchdog:
            leaked = leak_until_act(watchdog, limit)
        m = watchdog.metrics()
        print(
            f"after {m.samples} samples: {m.level} at {m.percent:.0f} % of the limit, "
            f"{len(m.evidence_files)} evidence file(s), {len(leaked)} MiB leaked"
        )
        del leaked

    async def briefly() -> int:
        # The asyncio form: a task of the running loop, cancelled by stop().
        with tempfile.TemporaryDirectory() as dumps:
            wd = MemoryWatchdog(interval=0.05, alert_interval=0.05, dump_dir=dumps)
            wd.start_async()
            await asyncio.sleep(0.2)
            wd.stop()
            return wd.metrics().samples

    print(f"asyncio task: {asyncio.run(briefly())} samples, then stopped")


if __name__ == "__main__":
    main()
