"""The memory watchdog: see a leak coming, capture evidence while it is safe, restart gracefully.

Defaults (the incident protocol written after services leaked until the kernel killed them):

========================== ============ ==================================================
keyword                    default      why
========================== ============ ==================================================
``interval``               300 s        the protocol's "monitor every 5 minutes"
``alert_interval``         10 s         at or above the warning, or during a spike (at most ``interval``)
``warn_percent``           70           time to look (tracemalloc starts here)
``act_percent``            80           the mandated restart point: a fifth of the memory
                                        is left to drain work and write evidence
``spike_percent_per_minute`` 10         growth per minute, in percent of the limit
``trend_window``           3600 s       how far back a leak trend is fitted
``trend_min_samples``      6            samples before a trend is fitted
``trend_horizon``          86400 s      a trend reaching the limit within this is a leak
``cooldown``               1800 s       the same condition fires at most this often
``snapshot_headroom_factor`` 2          a full snapshot only if free > 2 x traced heap
``act_mode``               "restart"    or "event_only"
``drain_timeout``          10 s         the drain hooks' total deadline
``exit_code``              75           ``EX_TEMPFAIL``: "temporary failure, retry"
``max_dump_files``         3            evidence files kept (oldest removed first)
``max_dump_bytes``         8 GiB        evidence bytes kept
``tracemalloc_for``        600 s        longest tracemalloc stays on after a warning
========================== ============ ==================================================
"""

import asyncio
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Sequence

from typing_extensions import Self, TypeAlias

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

RESTART_EXIT_CODE: int
"""Exit code of a watchdog restart: 75, ``EX_TEMPFAIL`` from sysexits.h ("temporary failure,
retry"). Any supervisor restarts on a non-zero exit; this one tells whoever reads the logs that
the process left on purpose, not by a crash (1) or the kernel's OOM killer (137)."""

DUMP_PREFIX: str
"""``"seawall-memory-"``: every evidence file starts with it, and rotation only ever deletes
files that do (the dump directory may hold other things)."""

@dataclass(frozen=True)
class MemoryReading:
    """One reading of the memory probe (``read_memory``)."""

    limit_bytes: int
    """The effective limit: the tightest of the cgroup limits, the configured limit and RAM."""
    limit_source: str
    """Which one: ``"cgroup_v2_max"``, ``"cgroup_v2_high"``, ``"cgroup_v1"``, ``"configured"``
    or ``"physical_ram"``."""
    usage_bytes: int
    """The memory counted against the limit: the cgroup working set, or the process RSS."""
    usage_source: str
    """``"cgroup_v2_working_set"``, ``"cgroup_v1_working_set"`` or ``"process_rss"``."""
    rss_bytes: int
    """The process's resident set size."""
    physical_ram_bytes: int
    """``MemTotal``."""
    cgroup: str
    """``"v1"``, ``"v2"`` or ``"none"``."""
    oom_kills: int | None
    """Processes the OOM killer killed in this cgroup, if the kernel counts them."""

def read_memory(
    limit_bytes: int | None = None, *, root: str | os.PathLike[str] | None = None
) -> MemoryReading:
    """Reads this process's memory situation (Linux).

    The effective limit is the tightest of cgroup v2 ``memory.max`` and ``memory.high``, cgroup
    v1 ``memory.limit_in_bytes`` (of the process's cgroup and its ancestors), ``limit_bytes``
    and physical RAM; the usage is the working set of the cgroup (``memory.current`` minus
    ``inactive_file``, as the kubelet computes it; v1 likewise), or the process RSS when there is
    no cgroup. Note that with a cgroup, the usage is the whole cgroup's, other processes in the
    container included. ``limit_bytes`` of 0 means none. ``root`` reads ``/proc`` and ``/sys``
    under another directory (fake trees in tests). Raises ``OSError`` when neither the RSS nor
    physical RAM can be read, ``InvalidConfigError`` / ``TypeError`` for a bad ``limit_bytes``.
    """

@dataclass(frozen=True)
class Trend:
    """A least-squares fit of the growth over ``trend_window``."""

    bytes_per_second: float
    """Growth rate of the measure."""
    r2: float
    """How well a straight line explains the samples (0 to 1); 0.8 or more is a steady leak."""
    time_to_limit: float | None
    """Seconds until the limit at this rate, ``None`` when not growing."""
    samples: int
    """Samples fitted."""

@dataclass(frozen=True)
class WatchdogAction:
    """One thing the policy asks for; the fields set depend on ``kind``:

    - ``"warn"``, ``"recovered"``, ``"act"``: ``percent``, ``basis``;
    - ``"spike"``: ``percent_per_minute``, ``basis``;
    - ``"leak_trend"``: ``trend``;
    - ``"evidence"``: ``evidence`` (``"heap_snapshot"`` with headroom, else ``"profile"``),
      ``trigger``, ``free_bytes`` (limit minus usage) and ``needed_bytes`` (what a full snapshot
      needs: ``snapshot_headroom_factor`` x the heap in use);
    - ``"restart"``: ``drain_timeout`` (seconds) and ``exit_code``.
    """

    kind: Literal["warn", "recovered", "spike", "leak_trend", "act", "evidence", "restart"]
    percent: float | None = None
    basis: Literal["limit", "heap"] | None = None
    percent_per_minute: float | None = None
    trend: Trend | None = None
    evidence: Literal["heap_snapshot", "profile"] | None = None
    trigger: Literal["spike", "leak_trend", "act"] | None = None
    free_bytes: int | None = None
    needed_bytes: int | None = None
    drain_timeout: float | None = None
    exit_code: int | None = None

@dataclass(frozen=True)
class Assessment:
    """The policy's answer to one sample."""

    level: Literal["normal", "warn", "act"]
    """Where memory stands."""
    percent: float
    """Percent of the limit on ``basis``."""
    basis: Literal["limit", "heap"]
    """``"limit"`` (usage against the effective limit) or ``"heap"`` (the runtime's heap
    against its own limit, when given and closer)."""
    growth_percent_per_minute: float | None
    """Growth since the previous sample, percent of the limit per minute (``None`` at first)."""
    trend: Trend | None
    """The fitted trend, once there are enough samples."""
    next_sample: float
    """Seconds until the next sample should be taken."""
    actions: tuple[WatchdogAction, ...]
    """What to do, in order."""

@dataclass(frozen=True)
class WatchdogCounts:
    """Counters since the policy was built."""

    samples: int
    warnings: int
    acts: int
    spikes: int
    leak_trends: int
    heap_snapshots: int
    """Evidence asked for as a full snapshot (there was headroom)."""
    profiles: int
    """Evidence asked for as a cheap profile (no headroom for a snapshot)."""
    restarts: int

@dataclass(frozen=True)
class DumpPlan:
    """What to do before writing an evidence file."""

    delete: tuple[str, ...]
    """Names to delete first, oldest first."""
    fits: bool
    """Whether the new file fits ``max_dump_bytes`` at all."""

class WatchdogPolicy:
    """The memory watchdog's decisions, sans-IO (the Rust core's ``WatchdogCore``, shared with
    the Rust and Node.js watchdogs and held to the same conformance vectors).

    Feed it samples with ``observe``; it returns an ``Assessment``: the level, the actions in
    order, and when to sample again. ``MemoryWatchdog`` drives one; use it directly to drive it
    from a loop of your own or to replay scripted samples. Keywords and defaults are
    ``MemoryWatchdog``'s (durations in seconds); a value of the wrong type raises ``TypeError``,
    one out of range ``InvalidConfigError`` (a ``ValueError``), both naming the keyword.
    """

    def __init__(
        self,
        *,
        interval: float = 300.0,
        alert_interval: float | None = None,
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
        exit_code: int = ...,
        max_dump_files: int = 3,
        max_dump_bytes: int = ...,
    ) -> None: ...
    @property
    def config(self) -> dict[str, Any]:
        """The validated configuration, keyed by keyword (durations in seconds)."""
    def observe(
        self,
        now: float,
        usage: int,
        limit: int,
        heap_used: int | None = None,
        heap_limit: int | None = None,
    ) -> Assessment:
        """Judges one sample taken at ``now`` (monotonic seconds, never going back): ``usage``
        and ``limit`` in bytes, the runtime's heap in use and its own limit if known."""
    def counts(self) -> WatchdogCounts:
        """Counters since the start."""
    def plan_dump_rotation(
        self, existing: Iterable[tuple[str, int, int]], incoming_bytes: int
    ) -> DumpPlan:
        """Which of ``existing`` (``(name, bytes, created)``; ``created`` in any unit that orders
        them, such as milliseconds since the epoch) to delete before writing a file of
        ``incoming_bytes``, within ``max_dump_files`` and ``max_dump_bytes``, oldest first.
        Only names starting with ``DUMP_PREFIX`` are counted or deleted."""

@dataclass(frozen=True)
class WatchdogEvent:
    """What a listener, ``on_warn`` or ``on_act`` receives.

    ``kind`` is ``"sample"`` once per sample; an action's kind for each action carried out
    (``"warn"``, ``"recovered"``, ``"spike"``, ``"leak_trend"``, ``"act"``, ``"evidence"`` with
    ``path`` set to the report written, ``"restart"`` before the drain hooks run);
    ``"drained"`` when they are done (``detail`` says whether within ``drain_timeout``), just
    before the exit; ``"tracing_started"`` / ``"tracing_stopped"`` for tracemalloc; ``"error"``
    when the probe, an evidence write or a drain hook failed (``error`` holds the exception).
    """

    kind: Literal[
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
    reading: MemoryReading | None = None
    assessment: Assessment | None = None
    action: WatchdogAction | None = None
    path: str | None = None
    detail: str | None = None
    error: BaseException | None = None

@dataclass(frozen=True)
class WatchdogMetrics:
    """Where memory stood at the last sample, and what the watchdog has done since it started."""

    running: bool
    samples: int
    level: str | None
    percent: float | None
    basis: str | None
    usage_bytes: int | None
    limit_bytes: int | None
    limit_source: str | None
    usage_source: str | None
    rss_bytes: int | None
    oom_kills: int | None
    heap_used_bytes: int | None
    """Bytes traced by tracemalloc at the last sample, ``None`` when it was off."""
    growth_percent_per_minute: float | None
    trend_bytes_per_second: float | None
    time_to_limit: float | None
    """Projected seconds to the limit at the fitted rate."""
    next_sample: float | None
    tracing: bool
    """Whether tracemalloc is on because of this watchdog."""
    counts: WatchdogCounts
    evidence_files: tuple[str, ...]
    """Every evidence file written (some may since have been rotated away)."""
    errors: int
    """Failures of the probe, evidence writes, listeners and drain hooks."""

_Listener: TypeAlias = Callable[[WatchdogEvent], Any]
_DrainHook: TypeAlias = Callable[[], Any]

class MemoryWatchdog:
    """Samples this process's memory, warns, captures evidence and restarts before the kernel's
    OOM killer does.

    Defaults (the incident protocol): a sample every ``interval`` = 300 s (5 minutes), a warning
    at ``warn_percent`` = 70 % of the effective limit, the restart at ``act_percent`` = 80 %,
    which leaves a fifth of the memory to drain in-flight work and write evidence. Near the limit,
    during a spike, or when the growth since the last sample would reach the act level sooner,
    the policy samples faster (``alert_interval``, 10 s, and earlier still for a fast leak), so a
    leak cannot jump from below the warning to the kill between two samples.

    Each sample reads the probe (``read_memory(limit_bytes)``, or ``probe()``) and the bytes
    traced by tracemalloc when it is on, asks the policy, carries out its actions, and waits:

    - ``warn``: ``on_warn`` and the listeners are called, and tracemalloc is started (with
      ``tracemalloc_frames`` frames per trace, default 1) for at most ``tracemalloc_for`` seconds
      (default 600), with a baseline snapshot. tracemalloc is expensive (it can double the memory
      of a program of many small objects), so it is never on before a warning, and it is stopped
      when memory recovers, when the time is up or by ``stop()`` (unless it was already on).
    - ``evidence``: a JSON report ``seawall-memory-<pid>-<time>-<trigger>.json`` is written to
      ``dump_dir`` (default: the working directory), after deleting the oldest evidence files as
      the policy's rotation plan says (``max_dump_files``, ``max_dump_bytes``). Its ``kind``:
      ``"snapshot_diff"`` with headroom (the top ``top_n`` allocation sites, ``file:line``, by
      growth between the warning's baseline and a new full snapshot, which is dumped beside it as
      ``...-<trigger>.tracemalloc``, loadable with ``tracemalloc.Snapshot.load``);
      ``"profile"`` without (the baseline is dropped first, and one snapshot is reduced at once
      to its top sites, all allocated since the warning: no second full snapshot, no diff, no
      dump; ``reason`` gives the free and needed bytes); ``"figures"`` when tracemalloc was not
      on yet (a spike below the warning, or a jump straight to the act level).
    - ``act``: ``on_act`` and the listeners are called.
    - ``restart`` (``act_mode="restart"``): the ``drain`` hooks run, in order, within
      ``drain_timeout`` seconds in all; ``sys.stdout``, ``sys.stderr`` and the logging handlers
      are flushed; then the process ends with ``os._exit(exit_code)`` (75 by default,
      ``RESTART_EXIT_CODE``) so that the supervisor (Kubernetes, systemd, PM2) starts a fresh
      one. ``os._exit`` because the watchdog runs on its own thread, where ``sys.exit`` would
      only end that thread, and because a process near its memory limit should not run
      arbitrary ``atexit`` handlers and finalizers. With ``act_mode="event_only"`` the watchdog
      only notifies (again after each ``cooldown``) and the application decides.

    ``start()`` runs it on a daemon thread: it never keeps the interpreter alive, and drain
    hooks must be plain callables. ``start_async()`` runs it as a task of the running asyncio
    loop instead: samples and evidence capture run on the loop (a sample is about ten small file
    reads), and drain hooks may be coroutine functions such as ``Pool.drain`` bound with its
    arguments. Listener and hook exceptions are logged (logger ``seawall.watchdog``) and counted,
    never raised.

    Configuration errors: ``TypeError`` for a wrong type, ``InvalidConfigError`` (a
    ``ValueError``) for a value out of range, both naming the keyword.
    """

    def __init__(
        self,
        *,
        interval: float = 300.0,
        warn_percent: float = 70.0,
        act_percent: float = 80.0,
        limit_bytes: int | None = None,
        dump_dir: str | os.PathLike[str] | None = None,
        on_warn: _Listener | None = None,
        on_act: _Listener | None = None,
        drain: _DrainHook | Sequence[_DrainHook] | None = None,
        alert_interval: float | None = None,
        spike_percent_per_minute: float = 10.0,
        trend_window: float = 3600.0,
        trend_min_samples: int = 6,
        trend_horizon: float = 86400.0,
        cooldown: float = 1800.0,
        snapshot_headroom_factor: float = 2.0,
        act_mode: Literal["restart", "event_only"] = "restart",
        drain_timeout: float = 10.0,
        exit_code: int = ...,
        max_dump_files: int = 3,
        max_dump_bytes: int = ...,
        tracemalloc_for: float = 600.0,
        tracemalloc_frames: int = 1,
        top_n: int = 20,
        probe: Callable[[], MemoryReading] | None = None,
    ) -> None:
        """See the class. ``limit_bytes`` competes with the cgroup limits and RAM in the probe;
        ``probe`` replaces the probe altogether (a callable returning a ``MemoryReading``)."""
    @property
    def policy(self) -> WatchdogPolicy:
        """The policy this watchdog feeds."""
    @property
    def running(self) -> bool:
        """Whether the thread or the task is running."""
    def add_listener(self, listener: _Listener) -> None:
        """Calls ``listener(event)`` for every ``WatchdogEvent``, on the thread or task that
        samples."""
    def remove_listener(self, listener: _Listener) -> None:
        """Stops calling ``listener``; an unknown listener is ignored."""
    def start(self) -> Self:
        """Starts sampling on a daemon thread, the first sample at once; returns ``self``.
        ``RuntimeError`` if it is already running."""
    def start_async(self) -> asyncio.Task[None]:
        """Starts sampling as a task of the running loop (call it in a coroutine), the first
        sample at once; returns the task. ``RuntimeError`` if it is already running."""
    def stop(self, timeout: float | None = None) -> None:
        """Stops sampling (the thread after the sample in progress, waited for up to
        ``timeout`` seconds; the task is cancelled) and stops tracemalloc if the watchdog
        started it."""
    def sample_now(self) -> Assessment:
        """Takes one sample now, on the calling thread, and carries out its actions (a restart
        included). ``OSError`` if the probe fails, ``RuntimeError`` once a restart has begun."""
    def metrics(self) -> WatchdogMetrics:
        """The last sample's figures, the counters and the evidence written."""
    def __enter__(self) -> Self:
        """``start()``."""
    def __exit__(self, *exc: object) -> None:
        """``stop()``."""
