"""The memory watchdog: see a leak coming, capture evidence while it is safe, restart gracefully.

``WatchdogPolicy`` is the core's sans-IO policy (it takes the time and the figures as arguments
and says what to do); ``MemoryWatchdog`` is the adapter that samples this process, feeds the
policy and carries out what it asks: listeners, ``tracemalloc`` for a bounded time after a
warning, evidence files in a capped directory, drain hooks and the restart exit. ``read_memory``
is the core's Linux probe. Every decision (levels, spikes, trends, which evidence, when to
restart, when to look again, which old dump files to delete) is the core's; this module only
measures and acts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import inspect
import json
import logging
import os
import sys
import threading
import time
import tracemalloc
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._errors import InvalidConfigError
from ._native import WatchdogCore as _NativeWatchdog
from ._native import check_limit_bytes as _check_limit_bytes
from ._native import read_memory as _read_memory
from ._native import watchdog_defaults as _watchdog_defaults

__all__ = [
    "DUMP_PREFIX",
    "RESTART_EXIT_CODE",
    "Assessment",
    "DumpPlan",
    "MemoryReading",
    "MemoryWatchdog",
    "Trend",
    "WatchdogAction",
    "WatchdogCounts",
    "WatchdogEvent",
    "WatchdogMetrics",
    "WatchdogPolicy",
    "read_memory",
]

_log = logging.getLogger("seawall.watchdog")

_DEFAULTS = _watchdog_defaults()

#: Exit code of a watchdog restart: 75, ``EX_TEMPFAIL`` from sysexits.h ("temporary failure,
#: retry"). Any supervisor restarts on a non-zero exit; this one tells whoever reads the logs
#: that the process left on purpose, not by a crash (1) or the OOM killer (137).
RESTART_EXIT_CODE: int = int(_DEFAULTS["restart_exit_code"])

#: Every evidence file starts with this; rotation only ever deletes files that do.
DUMP_PREFIX: str = str(_DEFAULTS["dump_prefix"])

_GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class MemoryReading:
    """One reading of the probe (see ``read_memory``)."""

    limit_bytes: int
    limit_source: str
    usage_bytes: int
    usage_source: str
    rss_bytes: int
    physical_ram_bytes: int
    cgroup: str
    oom_kills: Optional[int]


def read_memory(
    limit_bytes: Optional[int] = None, *, root: Union[str, "os.PathLike[str]", None] = None
) -> MemoryReading:
    """Reads this process's memory situation (Linux): the effective limit is the tightest of the
    cgroup v2 ``memory.max`` / ``memory.high``, the cgroup v1 ``memory.limit_in_bytes``,
    ``limit_bytes`` and physical RAM; the usage is the working set of the cgroup owning that
    limit (``memory.current`` minus ``inactive_file``, as the kubelet computes it), or the process
    RSS without a cgroup. ``root`` reads ``/proc`` and ``/sys`` under another directory (fake trees
    in tests). Raises ``OSError`` when neither the RSS nor physical RAM can be read."""
    d = _read_memory(limit_bytes, None if root is None else os.fspath(root))
    return MemoryReading(**d)


@dataclasses.dataclass(frozen=True)
class Trend:
    """A least-squares fit of the growth over the trend window."""

    bytes_per_second: float
    r2: float
    time_to_limit: Optional[float]
    samples: int


@dataclasses.dataclass(frozen=True)
class WatchdogAction:
    """One thing the policy asks for; which fields are set depends on ``kind``."""

    kind: Literal["warn", "recovered", "spike", "leak_trend", "act", "evidence", "restart"]
    percent: Optional[float] = None
    basis: Optional[Literal["limit", "heap"]] = None
    percent_per_minute: Optional[float] = None
    trend: Optional[Trend] = None
    evidence: Optional[Literal["heap_snapshot", "profile"]] = None
    trigger: Optional[Literal["spike", "leak_trend", "act"]] = None
    free_bytes: Optional[int] = None
    needed_bytes: Optional[int] = None
    drain_timeout: Optional[float] = None
    exit_code: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Assessment:
    """The policy's answer to one sample."""

    level: Literal["normal", "warn", "act"]
    percent: float
    basis: Literal["limit", "heap"]
    growth_percent_per_minute: Optional[float]
    trend: Optional[Trend]
    next_sample: float
    actions: Tuple[WatchdogAction, ...]


@dataclasses.dataclass(frozen=True)
class WatchdogCounts:
    """Counters since the policy was built."""

    samples: int
    warnings: int
    acts: int
    spikes: int
    leak_trends: int
    heap_snapshots: int
    profiles: int
    restarts: int


@dataclasses.dataclass(frozen=True)
class DumpPlan:
    """Which evidence files to delete (oldest first) before writing a new one, and whether the
    new one fits the byte cap at all."""

    delete: Tuple[str, ...]
    fits: bool


def _trend(d: Optional[Mapping[str, Any]]) -> Optional[Trend]:
    return None if d is None else Trend(**d)


def _action(d: Dict[str, Any]) -> WatchdogAction:
    if "trend" in d:
        d = dict(d, trend=_trend(d["trend"]))
    return WatchdogAction(**d)


def _assessment(d: Dict[str, Any]) -> Assessment:
    return Assessment(
        level=d["level"],
        percent=d["percent"],
        basis=d["basis"],
        growth_percent_per_minute=d["growth_percent_per_minute"],
        trend=_trend(d["trend"]),
        next_sample=d["next_sample"],
        actions=tuple(_action(a) for a in d["actions"]),
    )


class WatchdogPolicy:
    """The memory watchdog's decisions, sans-IO (the core's ``WatchdogCore``).

    Feed it samples with ``observe``; it returns an ``Assessment``: the level, the actions to
    carry out, in order, and when to sample again. ``MemoryWatchdog`` drives one; use this class
    directly to drive it from your own loop or to replay scripted samples. Keywords and defaults
    are ``MemoryWatchdog``'s (durations in seconds).
    """

    __slots__ = ("_core",)

    def __init__(
        self,
        *,
        interval: float = 300.0,
        alert_interval: Optional[float] = None,
        warn_percent: float = 70.0,
        act_percent: float = 80.0,
        spike_percent_per_minute: float = 10.0,
        trend_window: float = 3600.0,
        trend_min_samples: int = 6,
        trend_horizon: float = 86400.0,
        cooldown: float = 1800.0,
        snapshot_headroom_factor: float = 2.0,
        act_mode: Literal["restart", "event_only"] = "restart",
        drain_timeout: float = 10.0,
        exit_code: int = RESTART_EXIT_CODE,
        max_dump_files: int = 3,
        max_dump_bytes: int = 8 * _GIB,
    ) -> None:
        # Absent, the core's default (10 s) follows a shorter `interval` down; given, it is
        # checked against it.
        given: Dict[str, object] = {} if alert_interval is None else {"alert_interval": alert_interval}
        self._core = _NativeWatchdog(
            interval=interval,
            **given,
            warn_percent=warn_percent,
            act_percent=act_percent,
            spike_percent_per_minute=spike_percent_per_minute,
            trend_window=trend_window,
            trend_min_samples=trend_min_samples,
            trend_horizon=trend_horizon,
            cooldown=cooldown,
            snapshot_headroom_factor=snapshot_headroom_factor,
            act_mode=act_mode,
            drain_timeout=drain_timeout,
            exit_code=exit_code,
            max_dump_files=max_dump_files,
            max_dump_bytes=max_dump_bytes,
        )

    @property
    def config(self) -> Dict[str, Any]:
        """The validated configuration, keyed by keyword (durations in seconds)."""
        return self._core.config()

    def observe(
        self,
        now: float,
        usage: int,
        limit: int,
        heap_used: Optional[int] = None,
        heap_limit: Optional[int] = None,
    ) -> Assessment:
        """Judges one sample taken at ``now`` (monotonic seconds): ``usage`` and ``limit`` in
        bytes, and the runtime's heap in use and its own limit if known."""
        return _assessment(self._core.observe(now, usage, limit, heap_used, heap_limit))

    def counts(self) -> WatchdogCounts:
        """Counters since the start."""
        return WatchdogCounts(**self._core.counts())

    def plan_dump_rotation(
        self, existing: Iterable[Tuple[str, int, int]], incoming_bytes: int
    ) -> DumpPlan:
        """Which of ``existing`` (``(name, bytes, created)``; ``created`` in any unit that orders
        them) to delete before writing a file of ``incoming_bytes``, within ``max_dump_files``
        and ``max_dump_bytes``. Only names starting with ``DUMP_PREFIX`` are considered."""
        delete, fits = self._core.plan_dump_rotation(list(existing), incoming_bytes)
        return DumpPlan(tuple(delete), fits)


_EventKind = Literal[
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
]


@dataclasses.dataclass(frozen=True)
class WatchdogEvent:
    """What a listener, ``on_warn`` or ``on_act`` receives.

    ``kind`` is ``"sample"`` once per sample, one of the policy's action kinds for each action
    carried out, ``"drained"`` when the drain hooks are done (``detail`` says whether they met the
    deadline), ``"tracing_started"`` / ``"tracing_stopped"`` for tracemalloc, and ``"error"`` when
    a probe, evidence write or hook failed (``error`` holds the exception). ``path`` is the
    evidence file written, for ``"evidence"``.
    """

    kind: _EventKind
    reading: Optional[MemoryReading] = None
    assessment: Optional[Assessment] = None
    action: Optional[WatchdogAction] = None
    path: Optional[str] = None
    detail: Optional[str] = None
    error: Optional[BaseException] = None


@dataclasses.dataclass(frozen=True)
class WatchdogMetrics:
    """Where memory stood at the last sample, and what the watchdog has done since it started."""

    running: bool
    samples: int
    level: Optional[str]
    percent: Optional[float]
    basis: Optional[str]
    usage_bytes: Optional[int]
    limit_bytes: Optional[int]
    limit_source: Optional[str]
    usage_source: Optional[str]
    rss_bytes: Optional[int]
    oom_kills: Optional[int]
    heap_used_bytes: Optional[int]
    growth_percent_per_minute: Optional[float]
    trend_bytes_per_second: Optional[float]
    time_to_limit: Optional[float]
    next_sample: Optional[float]
    tracing: bool
    counts: WatchdogCounts
    evidence_files: Tuple[str, ...]
    errors: int


_Listener = Callable[[WatchdogEvent], Any]
_DrainHook = Callable[[], Any]


def _type_error(keyword: str, expected: str, got: object) -> TypeError:
    return TypeError(f"{keyword} must be {expected}, got {type(got).__qualname__}")


def _range_error(keyword: str, expected: str, got: object) -> InvalidConfigError:
    return InvalidConfigError(
        f"{keyword} must be {expected}, got {got!r}", field=keyword, expected=expected, got=repr(got)
    )


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _callable_or_none(keyword: str, v: object) -> None:
    if v is not None and not callable(v):
        raise _type_error(keyword, "a callable or None", v)


def _drain_hooks(v: object) -> Tuple[_DrainHook, ...]:
    if v is None:
        return ()
    if callable(v):
        return (v,)
    if isinstance(v, (list, tuple)):
        for hook in v:
            if not callable(hook):
                raise _type_error("drain", "a callable or a sequence of callables", hook)
        return tuple(v)
    raise _type_error("drain", "a callable or a sequence of callables", v)


# Allocation sites that are the measurement itself, not the application.
_TRACE_FILTERS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, __file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


class MemoryWatchdog:
    """Samples this process's memory, warns, captures evidence and restarts before the kernel's
    OOM killer does.

    Defaults (the incident protocol written after services leaked until the kernel killed them):
    a sample every ``interval`` = 300 s (5 minutes), a warning at ``warn_percent`` = 70 % of the
    effective limit and the restart at ``act_percent`` = 80 %, leaving a fifth of the memory to
    drain in-flight work and write evidence. Near the limit, during a spike, or when the growth
    since the last sample would reach the act level sooner, the policy samples faster (down to
    ``alert_interval``, 10 s, and earlier still for a fast leak), so a leak cannot jump from below
    the warning to the kill between two samples.

    Each sample reads the probe (``read_memory(limit_bytes)``, or ``probe()``), adds the bytes
    traced by ``tracemalloc`` when it is on, asks the policy, carries out its actions and waits
    for the next sample:

    - ``warn``: calls ``on_warn`` and the listeners, and starts ``tracemalloc`` (with
      ``tracemalloc_frames`` frames per trace) for at most ``tracemalloc_for`` seconds, taking a
      baseline snapshot. tracemalloc is expensive (it can double the memory of a program with
      many small objects), so it is never on before a warning, and it is stopped when memory
      recovers or the time is up (unless it was on before the watchdog started it).
    - ``evidence``: writes a JSON report ``seawall-memory-<pid>-<time>-<trigger>.json`` in
      ``dump_dir`` (default: the working directory at construction, where
      ``v8.writeHeapSnapshot`` writes too), after deleting the oldest files as the policy's
      rotation plan says (within ``max_dump_files`` and ``max_dump_bytes``). With headroom (``heap_snapshot``), the report is
      the top ``top_n`` allocation sites (``file:line``) by growth between the warning's baseline
      and a new full snapshot, and the full snapshot is dumped beside it
      (``...-<trigger>.tracemalloc``, loadable with ``tracemalloc.Snapshot.load``). Without
      headroom (``profile``), the baseline is dropped first and only the top sites of the traces
      (all allocated since the warning) are kept: no second full snapshot, no diff, no dump; the
      report says why (free versus needed bytes). Without tracemalloc (no warning came first),
      the report holds the figures only.
    - ``act``: calls ``on_act`` and the listeners.
    - ``restart`` (``act_mode="restart"``): runs the ``drain`` hooks, in order, within
      ``drain_timeout`` seconds in all, flushes ``sys.stdout``, ``sys.stderr`` and the logging
      handlers, then ends the process with ``os._exit(exit_code)`` (75 by default,
      ``EX_TEMPFAIL``) so that the supervisor starts a fresh one. ``os._exit`` because the
      watchdog runs on its own thread, where ``sys.exit`` would only end that thread; and a
      process near its memory limit should not run arbitrary ``atexit`` handlers and finalizers.
      With ``act_mode="event_only"`` the watchdog only notifies (again after each ``cooldown``).

    ``start()`` runs it on a daemon thread (it never keeps the interpreter alive; drain hooks must
    then be plain callables). ``start_async()`` runs it as a task of the running asyncio loop:
    samples and evidence run in the loop (a sample is about ten small file reads; evidence
    capture blocks for as long as tracemalloc needs), and drain hooks may be coroutine functions
    (``Pool.drain``). ``sample_now()`` takes one sample from the calling thread.
    """

    def __init__(
        self,
        *,
        interval: float = 300.0,
        warn_percent: float = 70.0,
        act_percent: float = 80.0,
        limit_bytes: Optional[int] = None,
        dump_dir: Union[str, "os.PathLike[str]", None] = None,
        on_warn: Optional[_Listener] = None,
        on_act: Optional[_Listener] = None,
        drain: Union[_DrainHook, Sequence[_DrainHook], None] = None,
        alert_interval: Optional[float] = None,
        spike_percent_per_minute: float = 10.0,
        trend_window: float = 3600.0,
        trend_min_samples: int = 6,
        trend_horizon: float = 86400.0,
        cooldown: float = 1800.0,
        snapshot_headroom_factor: float = 2.0,
        act_mode: Literal["restart", "event_only"] = "restart",
        drain_timeout: float = 10.0,
        exit_code: int = RESTART_EXIT_CODE,
        max_dump_files: int = 3,
        max_dump_bytes: int = 8 * _GIB,
        tracemalloc_for: float = 600.0,
        tracemalloc_frames: int = 1,
        top_n: int = 20,
        probe: Optional[Callable[[], MemoryReading]] = None,
    ) -> None:
        self._policy = WatchdogPolicy(
            interval=interval,
            alert_interval=alert_interval,
            warn_percent=warn_percent,
            act_percent=act_percent,
            spike_percent_per_minute=spike_percent_per_minute,
            trend_window=trend_window,
            trend_min_samples=trend_min_samples,
            trend_horizon=trend_horizon,
            cooldown=cooldown,
            snapshot_headroom_factor=snapshot_headroom_factor,
            act_mode=act_mode,
            drain_timeout=drain_timeout,
            exit_code=exit_code,
            max_dump_files=max_dump_files,
            max_dump_bytes=max_dump_bytes,
        )
        # The probe's limit goes through the core's integer conversion, like every other count.
        self._limit_bytes = None if limit_bytes is None else _check_limit_bytes(limit_bytes)
        if dump_dir is None:
            # Where `v8.writeHeapSnapshot` writes too: the working directory, read once now.
            self._dump_dir = os.getcwd()
        elif isinstance(dump_dir, (str, os.PathLike)):
            self._dump_dir = os.fspath(dump_dir)
        else:
            raise _type_error("dump_dir", "a path or None", dump_dir)
        _callable_or_none("on_warn", on_warn)
        _callable_or_none("on_act", on_act)
        _callable_or_none("probe", probe)
        self._drain = _drain_hooks(drain)
        if not _is_number(tracemalloc_for):
            raise _type_error("tracemalloc_for", "a number", tracemalloc_for)
        if not 0.0 < tracemalloc_for <= 86400.0:
            raise _range_error(
                "tracemalloc_for", "a duration in (0, 24 h] in seconds", tracemalloc_for
            )
        for keyword, value, high in (
            ("tracemalloc_frames", tracemalloc_frames, 100),
            ("top_n", top_n, 1000),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise _type_error(keyword, "an int", value)
            if not 1 <= value <= high:
                raise _range_error(keyword, f"an integer in [1, {high}]", value)
        self._on_warn = on_warn
        self._on_act = on_act
        self._probe: Callable[[], MemoryReading] = probe or (
            lambda: read_memory(self._limit_bytes)
        )
        self._tracemalloc_for = float(tracemalloc_for)
        self._tracemalloc_frames = tracemalloc_frames
        self._top_n = top_n
        self._act_mode = act_mode
        self._listeners: List[_Listener] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._task: Optional["asyncio.Task[None]"] = None
        # tracemalloc state: whether this watchdog started it, until when, and the baseline.
        self._tracing_ours = False
        self._tracing_since = 0.0
        self._tracing_until = 0.0
        self._baseline: Optional[tracemalloc.Snapshot] = None
        self._last_reading: Optional[MemoryReading] = None
        self._last_assessment: Optional[Assessment] = None
        self._last_heap: Optional[int] = None
        self._evidence: List[str] = []
        self._errors = 0
        self._restarting = False
        # How the process ends; a test replaces it to watch a restart without dying.
        self._exit: Callable[[int], Any] = os._exit

    # -- listeners ------------------------------------------------------------------------------

    def add_listener(self, listener: _Listener) -> None:
        """Calls ``listener(event)`` for every ``WatchdogEvent``, from the thread or task that
        samples. An exception in a listener is logged (``seawall.watchdog``) and ignored."""
        _callable_or_none("listener", listener)
        self._listeners.append(listener)

    def remove_listener(self, listener: _Listener) -> None:
        """Stops calling ``listener``; unknown listeners are ignored."""
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    def _emit(self, event: WatchdogEvent) -> None:
        targets: List[_Listener] = list(self._listeners)
        if event.kind == "warn" and self._on_warn is not None:
            targets.insert(0, self._on_warn)
        if event.kind == "act" and self._on_act is not None:
            targets.insert(0, self._on_act)
        for listener in targets:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener must not stop the watchdog
                self._errors += 1
                _log.exception("memory watchdog listener %r failed", listener)

    def _error(self, what: str, e: BaseException) -> None:
        self._errors += 1
        _log.error("memory watchdog: %s: %s", what, e)
        self._emit(WatchdogEvent("error", detail=what, error=e))

    # -- running ---------------------------------------------------------------------------------

    @property
    def policy(self) -> WatchdogPolicy:
        """The policy this watchdog feeds."""
        return self._policy

    @property
    def running(self) -> bool:
        """Whether the thread or the task is running."""
        thread, task = self._thread, self._task
        return (thread is not None and thread.is_alive()) or (task is not None and not task.done())

    def start(self) -> "MemoryWatchdog":
        """Starts sampling on a daemon thread (the first sample at once) and returns ``self``.
        Raises ``RuntimeError`` if it is already running."""
        with self._lock:
            if self.running:
                raise RuntimeError("the memory watchdog is already running")
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run_thread, name="seawall-memory-watchdog", daemon=True
            )
            self._thread.start()
        return self

    def start_async(self) -> "asyncio.Task[None]":
        """Starts sampling as a task of the running asyncio loop (the first sample at once) and
        returns the task; cancelling it, or ``stop()``, ends it. Must be called with a loop
        running (in a coroutine). Raises ``RuntimeError`` if it is already running."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.running:
                raise RuntimeError("the memory watchdog is already running")
            self._stop.clear()
            self._task = loop.create_task(self._run_async())
        return self._task

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stops sampling: the thread ends after the sample in progress (waited for up to
        ``timeout`` seconds, unless called from the watchdog itself), the task is cancelled.
        tracemalloc, if the watchdog started it, is stopped."""
        self._stop.set()
        thread, task = self._thread, self._task
        if task is not None and not task.done():
            task.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            self._stop_tracing("the watchdog stopped")

    def __enter__(self) -> "MemoryWatchdog":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_thread(self) -> None:
        while not self._stop.is_set():
            delay = self._sample_and_act()
            if self._stop.wait(delay):
                return

    async def _run_async(self) -> None:
        while not self._stop.is_set():
            assessment = self._sample()
            if assessment is not None and self._wants_restart(assessment):
                await self._restart_async(assessment)
                return
            await asyncio.sleep(self._delay(assessment))

    def _delay(self, assessment: Optional[Assessment]) -> float:
        if assessment is None:
            # The probe failed: try again after the normal interval.
            return float(self._policy.config["interval"])
        return assessment.next_sample

    def sample_now(self) -> Assessment:
        """Takes one sample now, from the calling thread, and carries out the actions (a restart
        included: drain hooks, then ``os._exit``). Raises ``OSError`` if the probe fails, and
        ``RuntimeError`` once a restart has begun."""
        assessment = self._sample(raise_probe_errors=True)
        if assessment is None:
            raise RuntimeError("the memory watchdog is restarting: no more samples")
        if self._wants_restart(assessment):
            self._restart_sync(assessment)
        return assessment

    def _sample_and_act(self) -> float:
        assessment = self._sample()
        if assessment is not None and self._wants_restart(assessment):
            self._restart_sync(assessment)
        return self._delay(assessment)

    @staticmethod
    def _wants_restart(assessment: Assessment) -> bool:
        return any(a.kind == "restart" for a in assessment.actions)

    # -- one sample ------------------------------------------------------------------------------

    def _sample(self, *, raise_probe_errors: bool = False) -> Optional[Assessment]:
        with self._lock:
            if self._restarting:
                return None
            try:
                reading = self._probe()
            except Exception as e:  # noqa: BLE001 - reported, then the next sample tries again
                if raise_probe_errors:
                    raise
                self._error("memory probe failed", e)
                return None
            now = time.monotonic()
            if self._tracing_ours and now >= self._tracing_until:
                self._stop_tracing(f"tracemalloc_for ({self._tracemalloc_for:g} s) elapsed")
            heap_used = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
            assessment = self._policy.observe(now, reading.usage_bytes, reading.limit_bytes, heap_used)
            self._last_reading, self._last_assessment, self._last_heap = (
                reading,
                assessment,
                heap_used,
            )
            self._emit(WatchdogEvent("sample", reading=reading, assessment=assessment))
            for action in assessment.actions:
                if action.kind == "restart":
                    # Carried out by the caller, after every other action of this sample.
                    self._restarting = True
                    continue
                self._carry_out(action, reading, assessment, now)
            return assessment

    def _carry_out(
        self, action: WatchdogAction, reading: MemoryReading, assessment: Assessment, now: float
    ) -> None:
        if action.kind == "warn":
            # Before the event, so that on_warn finds tracemalloc on.
            self._start_tracing(now)
        if action.kind == "evidence":
            try:
                path = self._write_evidence(action, reading, assessment, now)
            except Exception as e:  # noqa: BLE001 - evidence is best effort; the restart is not
                self._error("writing evidence failed", e)
                return
            self._emit(
                WatchdogEvent(
                    "evidence", reading=reading, assessment=assessment, action=action, path=path
                )
            )
            return
        self._emit(WatchdogEvent(action.kind, reading=reading, assessment=assessment, action=action))
        if action.kind == "recovered":
            self._stop_tracing("memory recovered below the warn level")

    # -- tracemalloc -----------------------------------------------------------------------------

    def _start_tracing(self, now: float) -> None:
        if tracemalloc.is_tracing():
            if self._tracing_ours:
                # A new warning (after the cooldown) extends the bounded time.
                self._tracing_until = now + self._tracemalloc_for
            return
        tracemalloc.start(self._tracemalloc_frames)
        self._tracing_ours = True
        self._tracing_since = now
        self._tracing_until = now + self._tracemalloc_for
        # Taken at once, so it holds next to nothing; what grows from here on is the evidence.
        self._baseline = tracemalloc.take_snapshot()
        self._emit(
            WatchdogEvent(
                "tracing_started",
                detail=f"tracemalloc on for at most {self._tracemalloc_for:g} s",
            )
        )

    def _stop_tracing(self, why: str) -> None:
        self._baseline = None
        if self._tracing_ours:
            self._tracing_ours = False
            if tracemalloc.is_tracing():
                tracemalloc.stop()
            self._emit(WatchdogEvent("tracing_stopped", detail=why))

    # -- evidence --------------------------------------------------------------------------------

    def _write_evidence(
        self, action: WatchdogAction, reading: MemoryReading, assessment: Assessment, now: float
    ) -> str:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        base = f"{DUMP_PREFIX}{os.getpid()}-{stamp}-{action.trigger}"
        report: Dict[str, Any] = {
            "format": "seawall-memory-report/1",
            "pid": os.getpid(),
            "time": stamp,
            "trigger": action.trigger,
            "requested": action.evidence,
            "free_bytes": action.free_bytes,
            "needed_bytes": action.needed_bytes,
            "reading": dataclasses.asdict(reading),
            "assessment": {
                "level": assessment.level,
                "percent": assessment.percent,
                "basis": assessment.basis,
                "growth_percent_per_minute": assessment.growth_percent_per_minute,
                "trend": None
                if assessment.trend is None
                else dataclasses.asdict(assessment.trend),
            },
            "python_allocated_blocks": sys.getallocatedblocks(),
        }
        snapshot_dump: Optional[tracemalloc.Snapshot] = None
        if not tracemalloc.is_tracing() or (self._tracing_ours and self._tracing_since >= now):
            report["kind"] = "figures"
            report["reason"] = (
                "tracemalloc was off (it is switched on only at the warn level, and no warning "
                "came before this sample): the figures only, no allocation sites"
            )
            report["top"] = []
        elif action.evidence == "heap_snapshot" and self._baseline is not None:
            current = tracemalloc.take_snapshot().filter_traces(_TRACE_FILTERS)
            diff = current.compare_to(self._baseline.filter_traces(_TRACE_FILTERS), "lineno")
            report["kind"] = "snapshot_diff"
            report["reason"] = (
                f"free memory ({action.free_bytes} bytes) exceeds what a full snapshot needs "
                f"({action.needed_bytes} bytes): top allocation sites by growth since the "
                "warning, between the baseline snapshot and a full snapshot dumped beside it"
            )
            report["top"] = [_stat(s, diff=True) for s in diff[: self._top_n]]
            snapshot_dump = current
        else:
            # The cheap form: free the baseline first, then reduce one snapshot to its top sites
            # at once; every trace was allocated since the warning, so these are the growth.
            self._baseline = None
            stats = tracemalloc.take_snapshot().filter_traces(_TRACE_FILTERS).statistics("lineno")
            report["kind"] = "profile"
            if action.evidence == "heap_snapshot":
                why = "the tracemalloc baseline was not this watchdog's (tracing was already on)"
            else:
                why = (
                    f"free memory ({action.free_bytes} bytes) is not more than what a full "
                    f"snapshot needs ({action.needed_bytes} bytes)"
                )
            report["reason"] = (
                f"no full snapshot: {why}; top allocation sites of the memory traced since "
                "tracing began, no second snapshot kept, no diff, no dump"
            )
            report["top"] = [_stat(s, diff=False) for s in stats[: self._top_n]]
            del stats
        traced, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
        report["traced_bytes"] = traced
        report["traced_peak_bytes"] = peak
        report["tracemalloc_frames"] = tracemalloc.get_traceback_limit()
        data = json.dumps(report, indent=1).encode()
        os.makedirs(self._dump_dir, exist_ok=True)
        path = self._write_rotated(base + ".json", data)
        if snapshot_dump is not None:
            # About 100 bytes per trace pickled; the plan decides whether it fits at all.
            estimate = 4096 + 100 * len(snapshot_dump.traces)
            plan = self._plan(estimate)
            if plan.fits:
                self._delete(plan.delete)
                dump_path = os.path.join(self._dump_dir, base + ".tracemalloc")
                tmp = os.path.join(self._dump_dir, "." + base + ".tracemalloc.tmp")
                snapshot_dump.dump(tmp)
                os.replace(tmp, dump_path)
                self._evidence.append(dump_path)
            del snapshot_dump
        return path

    def _existing(self) -> List[Tuple[str, int, int]]:
        out = []
        with os.scandir(self._dump_dir) as entries:
            for entry in entries:
                if entry.name.startswith(DUMP_PREFIX) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out.append((entry.name, st.st_size, st.st_mtime_ns // 1_000_000))
        return out

    def _plan(self, incoming: int) -> DumpPlan:
        return self._policy.plan_dump_rotation(self._existing(), incoming)

    def _delete(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                os.remove(os.path.join(self._dump_dir, name))
            except FileNotFoundError:
                pass

    def _write_rotated(self, name: str, data: bytes) -> str:
        plan = self._plan(len(data))
        if not plan.fits:
            raise OSError(
                f"the evidence report ({len(data)} bytes) exceeds max_dump_bytes; not written"
            )
        self._delete(plan.delete)
        path = os.path.join(self._dump_dir, name)
        # Written beside under a name rotation ignores, then renamed: no half-written evidence.
        tmp = os.path.join(self._dump_dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        self._evidence.append(path)
        return path

    # -- restart ---------------------------------------------------------------------------------

    def _restart_event(self, assessment: Assessment) -> WatchdogAction:
        action = next(a for a in assessment.actions if a.kind == "restart")
        self._emit(
            WatchdogEvent(
                "restart", reading=self._last_reading, assessment=assessment, action=action
            )
        )
        return action

    def _restart_sync(self, assessment: Assessment) -> None:
        action = self._restart_event(assessment)
        timeout = float(action.drain_timeout or 0.0)
        hooks = self._drain
        errors: List[BaseException] = []

        def run_hooks() -> None:
            for hook in hooks:
                try:
                    result = hook()
                    if inspect.isawaitable(result):
                        if inspect.iscoroutine(result):
                            result.close()
                        raise TypeError(
                            f"drain hook {hook!r} returned an awaitable: on a thread the "
                            "watchdog can only call plain functions; use start_async()"
                        )
                except BaseException as e:  # noqa: BLE001 - the next hook still runs
                    errors.append(e)

        # On a thread of its own, so that a hook that hangs cannot hold the exit past the
        # deadline; daemon, so that it cannot hold it after either.
        runner = threading.Thread(target=run_hooks, name="seawall-memory-drain", daemon=True)
        runner.start()
        runner.join(timeout)
        self._finish(action, not runner.is_alive(), errors)

    async def _restart_async(self, assessment: Assessment) -> None:
        action = self._restart_event(assessment)
        timeout = float(action.drain_timeout or 0.0)
        errors: List[BaseException] = []
        loop = asyncio.get_running_loop()

        async def run_hooks() -> None:
            for hook in self._drain:
                try:
                    if inspect.iscoroutinefunction(hook):
                        await hook()
                    else:
                        # Plain hooks run on a worker thread so the deadline holds even if one
                        # blocks; an awaitable they return is awaited here.
                        result = await loop.run_in_executor(None, hook)
                        if inspect.isawaitable(result):
                            await result
                except asyncio.CancelledError:
                    raise
                except BaseException as e:  # noqa: BLE001 - the next hook still runs
                    errors.append(e)

        try:
            await asyncio.wait_for(run_hooks(), timeout)
            in_time = True
        except asyncio.TimeoutError:
            in_time = False
        self._finish(action, in_time, errors)

    def _finish(self, action: WatchdogAction, in_time: bool, errors: List[BaseException]) -> None:
        for e in errors:
            self._error("a drain hook failed", e)
        self._emit(
            WatchdogEvent(
                "drained",
                action=action,
                detail="drain hooks finished" if in_time else "drain_timeout reached",
            )
        )
        code = int(action.exit_code if action.exit_code is not None else RESTART_EXIT_CODE)
        _log.warning(
            "memory watchdog: restarting (exit code %d) at %.1f %% of the limit",
            code,
            self._last_assessment.percent if self._last_assessment else float("nan"),
        )
        _flush()
        self._exit(code)

    # -- metrics ---------------------------------------------------------------------------------

    def metrics(self) -> WatchdogMetrics:
        """The last sample's figures, the policy's counters and the evidence written."""
        r, a = self._last_reading, self._last_assessment
        trend = a.trend if a is not None else None
        return WatchdogMetrics(
            running=self.running,
            samples=self._policy.counts().samples,
            level=a.level if a else None,
            percent=a.percent if a else None,
            basis=a.basis if a else None,
            usage_bytes=r.usage_bytes if r else None,
            limit_bytes=r.limit_bytes if r else None,
            limit_source=r.limit_source if r else None,
            usage_source=r.usage_source if r else None,
            rss_bytes=r.rss_bytes if r else None,
            oom_kills=r.oom_kills if r else None,
            heap_used_bytes=self._last_heap,
            growth_percent_per_minute=a.growth_percent_per_minute if a else None,
            trend_bytes_per_second=trend.bytes_per_second if trend else None,
            time_to_limit=trend.time_to_limit if trend else None,
            next_sample=a.next_sample if a else None,
            tracing=self._tracing_ours,
            counts=self._policy.counts(),
            evidence_files=tuple(self._evidence),
            errors=self._errors,
        )


def _stat(s: Any, *, diff: bool) -> Dict[str, Any]:
    frame = s.traceback[0]
    out: Dict[str, Any] = {
        "site": f"{frame.filename}:{frame.lineno}",
        "file": frame.filename,
        "line": frame.lineno,
        "size": s.size,
        "count": s.count,
    }
    if diff:
        out["size_diff"] = s.size_diff
        out["count_diff"] = s.count_diff
    return out


def _flush() -> None:
    """Flushes what ``os._exit`` would lose: the standard streams and the logging handlers."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not block the exit
            pass
    for ref in list(getattr(logging, "_handlerList", [])):
        handler = ref() if callable(ref) else None
        try:
            if handler is not None:
                handler.flush()
        except Exception:  # noqa: BLE001
            pass

