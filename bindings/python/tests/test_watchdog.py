"""MemoryWatchdog, WatchdogPolicy and read_memory in this process: defaults, bad arguments,
the probe against fake cgroup v1, v2 and no-cgroup trees, the actions carried out on scripted
readings (listeners, tracemalloc on and off, evidence files and their rotation), the restart
(drain hooks within their deadline, the exit code) with the exit replaced, the thread and the
asyncio task, and that neither keeps an interpreter alive.

The real leaks in child processes are in test_watchdog_leak.py; the policy's decisions are
replayed from the shared vectors in test_conformance_memory.py.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import seawall
from seawall import (
    DUMP_PREFIX,
    RESTART_EXIT_CODE,
    InvalidConfigError,
    MemoryReading,
    MemoryWatchdog,
    WatchdogEvent,
    WatchdogPolicy,
    read_memory,
)
from seawall._native import watchdog_defaults

MIB = 1 << 20
GIB = 1 << 30
LIMIT = 100 * MIB


@pytest.fixture(autouse=True)
def no_tracing_left() -> Iterator[None]:
    # A watchdog under test may start tracemalloc; it must never outlive the test.
    was = tracemalloc.is_tracing()
    yield
    if not was and tracemalloc.is_tracing():
        tracemalloc.stop()
        pytest.fail("a watchdog left tracemalloc on")


def reading(usage: int, limit: int = LIMIT) -> MemoryReading:
    return MemoryReading(
        limit_bytes=limit,
        limit_source="configured",
        usage_bytes=usage,
        usage_source="process_rss",
        rss_bytes=usage,
        physical_ram_bytes=16 * GIB,
        cgroup="none",
        oom_kills=None,
    )


class Script:
    """A probe returning scripted usages (percent of LIMIT); the last one repeats."""

    def __init__(self, *percents: float) -> None:
        self.percents = list(percents)
        self.calls = 0

    def __call__(self) -> MemoryReading:
        p = self.percents[min(self.calls, len(self.percents) - 1)]
        self.calls += 1
        return reading(int(LIMIT * p / 100))


class Recorder:
    def __init__(self) -> None:
        self.events: List[WatchdogEvent] = []

    def __call__(self, e: WatchdogEvent) -> None:
        self.events.append(e)

    def kinds(self, skip_samples: bool = True) -> List[str]:
        return [e.kind for e in self.events if not (skip_samples and e.kind == "sample")]


def watchdog(tmp_path: Path, probe: Callable[[], MemoryReading], **kw: Any) -> MemoryWatchdog:
    kw.setdefault("dump_dir", tmp_path)
    return MemoryWatchdog(probe=probe, **kw)


# -- defaults ----------------------------------------------------------------------------------


def test_signatures_carry_the_core_defaults() -> None:
    core = dict(watchdog_defaults())
    assert core.pop("restart_exit_code") == RESTART_EXIT_CODE == 75
    assert core.pop("dump_prefix") == DUMP_PREFIX == "seawall-memory-"
    # The incident protocol: every 5 minutes, restart at 80 %.
    assert (core["interval"], core["warn_percent"], core["act_percent"]) == (300.0, 70.0, 80.0)
    for cls in (MemoryWatchdog, WatchdogPolicy):
        params = inspect.signature(cls).parameters
        for key, value in core.items():
            # Absent, the alert interval is the core's 10 s, or the interval when shorter.
            expected = None if key == "alert_interval" else value
            assert params[key].default == expected, (cls.__name__, key)
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert WatchdogPolicy().config == core
    assert WatchdogPolicy(interval=1.0).config["alert_interval"] == 1.0


def test_public_names() -> None:
    for name in (
        "MemoryWatchdog",
        "WatchdogPolicy",
        "read_memory",
        "MemoryReading",
        "Assessment",
        "WatchdogEvent",
        "WatchdogMetrics",
    ):
        assert name in seawall.__all__ and hasattr(seawall, name)


# -- bad arguments -----------------------------------------------------------------------------

CORE_TYPE_ERRORS = [
    ("interval", "5m"),
    ("interval", None),
    ("alert_interval", [1]),
    ("warn_percent", True),
    ("act_percent", "80"),
    ("spike_percent_per_minute", None),
    ("trend_window", b"1"),
    ("trend_min_samples", "6"),
    ("trend_horizon", object()),
    ("cooldown", "1"),
    ("snapshot_headroom_factor", None),
    ("act_mode", 1),
    ("drain_timeout", "10"),
    ("exit_code", "75"),
    ("max_dump_files", 3j),
    ("max_dump_bytes", "1G"),
]

CORE_RANGE_ERRORS = [
    ("interval", 0.0),
    ("interval", -1.0),
    ("interval", float("nan")),
    ("interval", float("inf")),
    ("interval", 86401.0),
    ("alert_interval", 301.0),
    ("alert_interval", 0.001),
    ("warn_percent", 0.0),
    ("warn_percent", 100.0),
    ("warn_percent", float("nan")),
    ("act_percent", 60.0),
    ("act_percent", 100.5),
    ("spike_percent_per_minute", 0.0),
    ("spike_percent_per_minute", 101.0),
    ("trend_window", 0.0),
    ("trend_min_samples", 2),
    ("trend_min_samples", 1001),
    ("trend_min_samples", 6.5),
    ("trend_min_samples", -6),
    ("trend_horizon", 1e9),
    ("cooldown", -1.0),
    ("cooldown", 86401.0),
    ("snapshot_headroom_factor", 0.5),
    ("snapshot_headroom_factor", 101.0),
    ("act_mode", "reboot"),
    ("act_mode", "RESTART"),
    ("drain_timeout", 3601.0),
    ("drain_timeout", -0.5),
    ("exit_code", 0),
    ("exit_code", 256),
    ("exit_code", 2**70),
    ("exit_code", 75.5),
    ("max_dump_files", 0),
    ("max_dump_files", 1001),
    ("max_dump_bytes", 1000),
    ("max_dump_bytes", -1),
    ("max_dump_bytes", 2**64),
]


@pytest.mark.parametrize("cls", [WatchdogPolicy, MemoryWatchdog])
@pytest.mark.parametrize("keyword,value", CORE_TYPE_ERRORS)
def test_core_keyword_of_the_wrong_type(cls: Any, keyword: str, value: Any) -> None:
    with pytest.raises(TypeError) as info:
        cls(**{keyword: value})
    assert not isinstance(info.value, InvalidConfigError)
    assert str(info.value).startswith(f"{keyword} must be "), str(info.value)


@pytest.mark.parametrize("cls", [WatchdogPolicy, MemoryWatchdog])
@pytest.mark.parametrize("keyword,value", CORE_RANGE_ERRORS)
def test_core_keyword_out_of_range(cls: Any, keyword: str, value: Any) -> None:
    with pytest.raises(InvalidConfigError) as info:
        cls(**{keyword: value})
    assert isinstance(info.value, ValueError)
    assert info.value.field == keyword
    assert str(info.value).startswith(f"{keyword} must be "), str(info.value)


@pytest.mark.parametrize(
    "keyword,value,error",
    [
        ("limit_bytes", "1G", TypeError),
        ("limit_bytes", True, TypeError),
        ("limit_bytes", -1, InvalidConfigError),
        ("limit_bytes", 1.5, InvalidConfigError),
        ("limit_bytes", 2**60, InvalidConfigError),
        ("dump_dir", 3, TypeError),
        ("on_warn", "print", TypeError),
        ("on_act", 1, TypeError),
        ("drain", "close", TypeError),
        ("drain", [print, None], TypeError),
        ("probe", 1, TypeError),
        ("tracemalloc_for", "1", TypeError),
        ("tracemalloc_for", 0.0, InvalidConfigError),
        ("tracemalloc_for", float("nan"), InvalidConfigError),
        ("tracemalloc_for", 86401.0, InvalidConfigError),
        ("tracemalloc_frames", 0, InvalidConfigError),
        ("tracemalloc_frames", 1.0, TypeError),
        ("tracemalloc_frames", 101, InvalidConfigError),
        ("top_n", 0, InvalidConfigError),
        ("top_n", True, TypeError),
    ],
)
def test_watchdog_keyword(keyword: str, value: Any, error: type) -> None:
    with pytest.raises(error) as info:
        MemoryWatchdog(**{keyword: value})
    message = str(info.value)
    assert message.startswith(f"{keyword} must be "), message
    if isinstance(info.value, InvalidConfigError):
        assert info.value.field == keyword
    else:
        assert not isinstance(info.value, InvalidConfigError)


def test_unknown_keyword() -> None:
    with pytest.raises(TypeError):
        MemoryWatchdog(intervl=1.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        WatchdogPolicy(intervl=1.0)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "args,error,name",
    [
        ((0.0, "1", 10), TypeError, "usage"),
        ((0.0, 1, 10.0), TypeError, "limit"),
        ((0.0, -1, 10), ValueError, "usage"),
        ((0.0, 1, 10, True), TypeError, "heap_used"),
        ((0.0, 1, 10, None, -5), ValueError, "heap_limit"),
        ((float("nan"), 1, 10), ValueError, "clock"),
        ((-1.0, 1, 10), ValueError, "clock"),
    ],
)
def test_observe_bad_arguments(args: Any, error: type, name: str) -> None:
    with pytest.raises(error) as info:
        WatchdogPolicy().observe(*args)
    assert name in str(info.value)


def test_plan_dump_rotation_bad_arguments() -> None:
    policy = WatchdogPolicy()
    with pytest.raises(TypeError):
        policy.plan_dump_rotation([("a", 1)], 10)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        policy.plan_dump_rotation([("seawall-memory-a", "1", 2)], 10)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        policy.plan_dump_rotation([("seawall-memory-a", 1, 2)], -10)
    with pytest.raises(TypeError):
        policy.plan_dump_rotation(5, 10)  # type: ignore[arg-type]


# -- the probe on fake trees -------------------------------------------------------------------


def tree(root: Path, files: Dict[str, str]) -> Path:
    base = {
        "/proc/meminfo": f"MemTotal:       {16 * GIB // 1024} kB\nMemFree:  1000 kB\n",
        "/proc/self/status": f"Name:\tpython\nVmRSS:\t   {50 * MIB // 1024} kB\n",
    }
    for path, text in {**base, **files}.items():
        full = root / path.lstrip("/")
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)
    return root


def test_probe_cgroup_v2(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "/proc/self/cgroup": "0::/app\n",
            "/sys/fs/cgroup/cgroup.controllers": "cpu io memory pids\n",
            "/sys/fs/cgroup/app/memory.current": f"{300 * MIB}\n",
            "/sys/fs/cgroup/app/memory.stat": f"anon 1\ninactive_file {100 * MIB}\n",
            "/sys/fs/cgroup/app/memory.max": f"{GIB}\n",
            "/sys/fs/cgroup/app/memory.high": "max\n",
            "/sys/fs/cgroup/app/memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        },
    )
    r = read_memory(root=root)
    assert r == MemoryReading(
        limit_bytes=GIB,
        limit_source="cgroup_v2_max",
        usage_bytes=200 * MIB,
        usage_source="cgroup_v2_working_set",
        rss_bytes=50 * MIB,
        physical_ram_bytes=16 * GIB,
        cgroup="v2",
        oom_kills=2,
    )
    # A tighter configured limit wins, and is named.
    r = read_memory(512 * MIB, root=str(root))
    assert (r.limit_bytes, r.limit_source) == (512 * MIB, "configured")


def test_probe_cgroup_v1(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "/proc/self/cgroup": "4:memory:/job\n1:name=systemd:/\n",
            "/sys/fs/cgroup/memory/job/memory.usage_in_bytes": f"{400 * MIB}\n",
            "/sys/fs/cgroup/memory/job/memory.stat": f"total_inactive_file {100 * MIB}\n",
            "/sys/fs/cgroup/memory/job/memory.limit_in_bytes": f"{2 * GIB}\n",
        },
    )
    r = read_memory(root=root)
    assert (r.limit_bytes, r.limit_source, r.cgroup) == (2 * GIB, "cgroup_v1", "v1")
    assert (r.usage_bytes, r.usage_source) == (300 * MIB, "cgroup_v1_working_set")


def test_probe_without_cgroup(tmp_path: Path) -> None:
    root = tree(tmp_path, {})
    r = read_memory(root=root)
    assert (r.limit_bytes, r.limit_source) == (16 * GIB, "physical_ram")
    assert (r.usage_bytes, r.usage_source, r.cgroup, r.oom_kills) == (
        50 * MIB,
        "process_rss",
        "none",
        None,
    )
    r = read_memory(256 * MIB, root=root)
    assert (r.limit_bytes, r.limit_source) == (256 * MIB, "configured")
    # 0 is no limit, as in the core.
    assert read_memory(0, root=root).limit_source == "physical_ram"


def test_probe_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="physical RAM"):
        read_memory(root=tmp_path)
    with pytest.raises(InvalidConfigError):
        read_memory(-1, root=tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_probe_of_this_process() -> None:
    r = read_memory()
    assert 0 < r.rss_bytes <= r.physical_ram_bytes
    assert 0 < r.limit_bytes <= r.physical_ram_bytes


# -- carrying out the actions ------------------------------------------------------------------


def test_warn_traces_then_act_writes_evidence_and_recovery_stops_tracing(tmp_path: Path) -> None:
    warned: List[WatchdogEvent] = []
    acted: List[WatchdogEvent] = []
    rec = Recorder()
    probe = Script(10, 72, 90, 10)
    wd = watchdog(
        tmp_path,
        probe,
        act_mode="event_only",
        on_warn=warned.append,
        on_act=acted.append,
        snapshot_headroom_factor=1.0,
    )
    wd.add_listener(rec)
    assert wd.sample_now().level == "normal"
    assert not tracemalloc.is_tracing()

    # Samples microseconds apart: the growth is a spike too, and its evidence comes before
    # tracemalloc has seen anything, so it holds the figures only.
    a = wd.sample_now()
    assert a.level == "warn" and [x.kind for x in a.actions] == ["warn", "spike", "evidence"]
    assert tracemalloc.is_tracing() and wd.metrics().tracing
    assert len(warned) == 1 and warned[0].action is not None
    spike_report = json.loads(Path(str(rec.events[-1].path)).read_text())
    assert (spike_report["trigger"], spike_report["kind"]) == ("spike", "figures")
    keep = [bytearray(1000) for _ in range(100)]  # something to trace

    a = wd.sample_now()
    assert a.level == "act"
    assert [x.kind for x in a.actions] == ["act", "evidence"]
    assert len(acted) == 1
    evidence = [e for e in rec.events if e.kind == "evidence"][-1]
    assert evidence.path is not None and Path(evidence.path).parent == tmp_path
    report = json.loads(Path(evidence.path).read_text())
    assert report["trigger"] == "act" and report["kind"] in ("snapshot_diff", "profile")
    assert report["top"], report
    m = wd.metrics()
    assert m.heap_used_bytes is not None and m.heap_used_bytes > 0
    assert evidence.path in m.evidence_files and m.counts.acts == 1

    a = wd.sample_now()
    assert [x.kind for x in a.actions] == ["recovered"]
    assert not tracemalloc.is_tracing() and not wd.metrics().tracing
    assert rec.kinds() == [
        "tracing_started",
        "warn",
        "spike",
        "evidence",
        "act",
        "evidence",
        "recovered",
        "tracing_stopped",
    ]
    del keep


def test_evidence_without_tracing_holds_the_figures(tmp_path: Path) -> None:
    rec = Recorder()
    wd = watchdog(tmp_path, Script(95), act_mode="event_only")
    wd.add_listener(rec)
    wd.sample_now()  # straight to act: tracemalloc is only switched on at this very sample
    evidence = next(e for e in rec.events if e.kind == "evidence")
    report = json.loads(Path(str(evidence.path)).read_text())
    assert report["kind"] == "figures" and report["top"] == []
    assert report["reading"]["usage_bytes"] == int(LIMIT * 0.95)
    wd.stop()


def test_tracemalloc_is_bounded_in_time(tmp_path: Path) -> None:
    rec = Recorder()
    wd = watchdog(tmp_path, Script(75), tracemalloc_for=0.05)
    wd.add_listener(rec)
    wd.sample_now()
    assert tracemalloc.is_tracing()
    time.sleep(0.1)
    wd.sample_now()
    assert not tracemalloc.is_tracing()
    stopped = [e for e in rec.events if e.kind == "tracing_stopped"]
    assert stopped and "tracemalloc_for" in str(stopped[0].detail)


def test_tracing_started_elsewhere_is_left_alone(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        wd = watchdog(tmp_path, Script(75, 10))
        wd.sample_now()
        wd.sample_now()
        wd.stop()
        assert tracemalloc.is_tracing()
        assert wd.metrics().heap_used_bytes is not None
    finally:
        tracemalloc.stop()


def test_rotation_keeps_the_caps_and_leaves_other_files(tmp_path: Path) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        f = tmp_path / f"{DUMP_PREFIX}old-{name}.json"
        f.write_text("{}")
        os.utime(f, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    (tmp_path / "unrelated.txt").write_text("keep me")
    wd = watchdog(tmp_path, Script(95), act_mode="event_only", max_dump_files=2)
    wd.sample_now()
    wd.stop()
    names = sorted(os.listdir(tmp_path))
    assert "unrelated.txt" in names
    ours = [n for n in names if n.startswith(DUMP_PREFIX)]
    assert len(ours) == 2, names
    assert f"{DUMP_PREFIX}old-c.json" in ours  # the newest old one stays, the two oldest went
    assert not any(n.startswith(".") for n in names), names  # no temporary file left


def test_listener_and_probe_failures_are_reported_not_raised(tmp_path: Path) -> None:
    def bad_listener(e: WatchdogEvent) -> None:
        raise RuntimeError("listener bug")

    calls = [0]

    def flaky_probe() -> MemoryReading:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("no /proc")
        return reading(10)

    rec = Recorder()
    wd = watchdog(tmp_path, flaky_probe, interval=0.02, alert_interval=0.01)
    wd.add_listener(bad_listener)
    wd.add_listener(rec)
    with pytest.raises(OSError):
        wd.sample_now()
    wd.start()
    deadline = time.monotonic() + 5
    while wd.metrics().samples < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    wd.stop(timeout=5)
    assert wd.metrics().samples >= 2
    assert wd.metrics().errors >= 2  # the listener, at every sample
    wd.remove_listener(bad_listener)
    wd.remove_listener(bad_listener)  # unknown now: ignored


# -- restart -----------------------------------------------------------------------------------


class Exit:
    def __init__(self) -> None:
        self.codes: List[int] = []
        self.done = threading.Event()
        self.at: Optional[float] = None

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.at = time.monotonic()
        self.done.set()


def test_restart_runs_the_drain_hooks_in_order_then_exits(tmp_path: Path) -> None:
    order: List[str] = []

    def failing() -> None:
        order.append("failing")
        raise ConnectionError("pool already gone")

    rec = Recorder()
    wd = watchdog(
        tmp_path,
        Script(85),
        drain=[lambda: order.append("first"), failing, lambda: order.append("last")],
        exit_code=3,
    )
    wd.add_listener(rec)
    exit_ = Exit()
    wd._exit = exit_  # type: ignore[attr-defined]
    a = wd.sample_now()
    assert [x.kind for x in a.actions] == ["warn", "act", "evidence", "restart"]
    assert order == ["first", "failing", "last"]
    assert exit_.codes == [3]
    kinds = rec.kinds()
    assert kinds.index("evidence") < kinds.index("restart") < kinds.index("drained")
    assert any(e.kind == "error" and isinstance(e.error, ConnectionError) for e in rec.events)
    drained = next(e for e in rec.events if e.kind == "drained")
    assert drained.detail == "drain hooks finished"
    with pytest.raises(RuntimeError):
        wd.sample_now()
    wd.stop()


def test_a_hanging_drain_hook_cannot_hold_the_exit(tmp_path: Path) -> None:
    release = threading.Event()
    rec = Recorder()
    wd = watchdog(tmp_path, Script(85), drain=lambda: release.wait(10), drain_timeout=0.2)
    wd.add_listener(rec)
    exit_ = Exit()
    wd._exit = exit_  # type: ignore[attr-defined]
    start = time.monotonic()
    wd.sample_now()
    elapsed = time.monotonic() - start
    release.set()
    assert exit_.codes == [RESTART_EXIT_CODE]
    assert 0.15 <= elapsed < 5, elapsed
    assert next(e for e in rec.events if e.kind == "drained").detail == "drain_timeout reached"
    wd.stop()


def test_a_coroutine_drain_hook_on_the_thread_is_an_error_not_a_hang(tmp_path: Path) -> None:
    async def drain_pool() -> None:
        raise AssertionError("never awaited on a thread")

    rec = Recorder()
    wd = watchdog(tmp_path, Script(85), drain=drain_pool)
    wd.add_listener(rec)
    exit_ = Exit()
    wd._exit = exit_  # type: ignore[attr-defined]
    wd.sample_now()
    assert exit_.codes == [75]
    errors = [e.error for e in rec.events if e.kind == "error"]
    assert len(errors) == 1 and "start_async" in str(errors[0]), errors
    wd.stop()


def test_event_only_never_exits(tmp_path: Path) -> None:
    drained: List[int] = []
    wd = watchdog(tmp_path, Script(95), act_mode="event_only", drain=lambda: drained.append(1))
    exit_ = Exit()
    wd._exit = exit_  # type: ignore[attr-defined]
    for _ in range(3):
        wd.sample_now()
    assert exit_.codes == [] and drained == []
    assert wd.metrics().counts.acts == 1  # again only after the cooldown
    wd.stop()


# -- thread and task ---------------------------------------------------------------------------


def test_thread_samples_until_stopped_then_restarts(tmp_path: Path) -> None:
    probe = Script(10, 10, 10, 85)
    drained = threading.Event()
    wd = watchdog(
        tmp_path, probe, interval=0.02, alert_interval=0.01, drain=lambda: drained.set()
    )
    exit_ = Exit()
    wd._exit = exit_  # type: ignore[attr-defined]
    assert wd.start() is wd
    assert wd.running
    with pytest.raises(RuntimeError):
        wd.start()
    names = {t.name: t for t in threading.enumerate()}
    assert names["seawall-memory-watchdog"].daemon
    assert exit_.done.wait(10), "the thread never reached the restart"
    assert drained.is_set() and exit_.codes == [75]
    # The thread ended with the (replaced) exit; stop() is harmless after it.
    wd.stop(timeout=5)
    assert not wd.running


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with watchdog(tmp_path, Script(10), interval=0.02, alert_interval=0.01) as wd:
        deadline = time.monotonic() + 5
        while wd.metrics().samples < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wd.running
    assert not wd.running and wd.metrics().samples >= 2


def test_async_task_awaits_coroutine_drain_hooks(tmp_path: Path) -> None:
    order: List[str] = []

    async def drain_pool() -> None:
        await asyncio.sleep(0.01)
        order.append("pool")

    def sync_hook() -> None:
        order.append("sync")

    async def main() -> List[int]:
        wd = watchdog(
            tmp_path,
            Script(10, 85),
            interval=0.02,
            alert_interval=0.01,
            drain=[drain_pool, sync_hook],
        )
        exit_ = Exit()
        wd._exit = exit_  # type: ignore[attr-defined]
        task = wd.start_async()
        with pytest.raises(RuntimeError):
            wd.start_async()
        await asyncio.wait_for(task, 10)
        assert not wd.running
        wd.stop()
        return exit_.codes

    assert asyncio.run(main()) == [75]
    assert order == ["pool", "sync"]


def test_async_task_stops(tmp_path: Path) -> None:
    async def main() -> int:
        wd = watchdog(tmp_path, Script(10), interval=0.02, alert_interval=0.01)
        task = wd.start_async()
        await asyncio.sleep(0.1)
        wd.stop()
        with pytest.raises(asyncio.CancelledError):
            await task
        return wd.metrics().samples

    assert asyncio.run(main()) >= 2


def test_async_drain_timeout(tmp_path: Path) -> None:
    async def hang() -> None:
        await asyncio.sleep(30)

    async def main() -> Optional[str]:
        rec = Recorder()
        wd = watchdog(tmp_path, Script(85), drain=hang, drain_timeout=0.1)
        wd.add_listener(rec)
        wd._exit = Exit()  # type: ignore[attr-defined]
        await asyncio.wait_for(wd.start_async(), 10)
        wd.stop()
        return next(e for e in rec.events if e.kind == "drained").detail

    assert asyncio.run(main()) == "drain_timeout reached"


# -- the interpreter exits ---------------------------------------------------------------------

EXIT_SCRIPTS = {
    "thread": """
        from seawall import MemoryWatchdog
        wd = MemoryWatchdog(dump_dir={dump!r}).start()
        assert wd.running
        print("done")
    """,
    "asyncio": """
        import asyncio
        from seawall import MemoryWatchdog

        async def main():
            wd = MemoryWatchdog(dump_dir={dump!r}, interval=0.05, alert_interval=0.05)
            wd.start_async()
            await asyncio.sleep(0.2)
            assert wd.metrics().samples >= 2

        asyncio.run(main())
        print("done")
    """,
    "restart": """
        import sys
        from seawall import MemoryWatchdog, MemoryReading
        r = MemoryReading(100, "configured", 90, "process_rss", 90, 1000, "none", None)
        print("buffered, flushed before os._exit", end="")
        wd = MemoryWatchdog(dump_dir={dump!r}, probe=lambda: r, drain=lambda: print(" drained"))
        wd.start()
        wd._thread.join(10)
        sys.exit(1)  # not reached: the watchdog ends the process with 75
    """,
}


@pytest.mark.parametrize("mode", sorted(EXIT_SCRIPTS))
def test_the_watchdog_never_keeps_the_interpreter_alive(tmp_path: Path, mode: str) -> None:
    script = textwrap.dedent(EXIT_SCRIPTS[mode]).format(dump=str(tmp_path))
    for _ in range(5):
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=20
        )
        assert time.monotonic() - start < 15
        if mode == "restart":
            assert proc.returncode == 75, proc.stderr
            assert proc.stdout == "buffered, flushed before os._exit drained\n", proc.stdout
        else:
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == "done\n"
            assert "Fatal Python error" not in proc.stderr
