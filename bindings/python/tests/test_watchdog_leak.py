"""Real leaks: a child process (tests/fixtures/leak_child.py) leaks on purpose under a limit it is
given, with a short interval, and its MemoryWatchdog must warn, then act, write evidence that
names the leaking line, run the drain hook and exit with the restart code before the limit is
reached. The child reports every watchdog event as a JSON line on stdout.

1. ``snapshot``: a steady leak with room for a full snapshot: a tracemalloc diff report (and the
   full snapshot dumped beside it).
2. ``profile``: a fast leak with little headroom: no full snapshot is attempted (no comparison,
   no dump), the cheap profile is written instead, and the child still exits with 75.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from seawall import RESTART_EXIT_CODE

if not sys.platform.startswith("linux"):
    pytest.skip("the memory probe reads Linux's /proc", allow_module_level=True)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "leak_child.py"
LEAK_LINE = next(
    i for i, line in enumerate(FIXTURE.read_text().splitlines(), 1) if "# LEAK" in line
)


def run_child(tmp_path: Path, mode: str) -> Tuple[int, List[Dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, str(FIXTURE), str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=25,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, events, proc.stderr


def kinds(events: List[Dict[str, Any]]) -> List[str]:
    return [e["event"] for e in events]


def first(events: List[Dict[str, Any]], kind: str, **match: Any) -> Dict[str, Any]:
    for e in events:
        if e["event"] == kind and all(e.get(k) == v for k, v in match.items()):
            return e
    raise AssertionError(f"no {kind} event matching {match} in {kinds(events)}")


def check_common(
    dump_dir: Path, code: int, events: List[Dict[str, Any]], stderr: str
) -> Dict[str, Any]:
    """Warn, then act, then the restart, the drain hook and exit 75, all below the limit.
    Returns the act's evidence report."""
    k = kinds(events)
    assert "gave_up" not in k, f"the watchdog never restarted the child: {k}\n{stderr}"
    assert code == RESTART_EXIT_CODE == 75, f"exit code {code}: {k}\n{stderr}"
    assert k.index("warn") < k.index("act") < k.index("restart") < k.index("drain"), k
    assert k.index("drain") < k.index("drained"), k
    assert "error" not in k, [e for e in events if e["event"] == "error"]
    limit = first(events, "started")["limit"]
    act = first(events, "act")
    # Before the limit was reached: at the act, and still when the drain hook ran.
    assert act["usage"] < limit, act
    assert first(events, "drain")["rss"] < limit, events
    evidence = first(events, "evidence", trigger="act")
    assert first(events, "restart")["exit_code"] == 75
    path = Path(evidence["path"])
    assert path.parent == dump_dir, path
    assert path.name.startswith("seawall-memory-") and path.suffix == ".json", path
    assert path.is_file(), path
    report: Dict[str, Any] = json.loads(path.read_text())
    assert report["trigger"] == "act"
    assert report["requested"] == evidence["evidence"]
    # The report names the leaking statement, file:line, as its top allocation site.
    top = report["top"][0]
    assert os.path.samefile(top["file"], FIXTURE), top
    assert top["line"] == LEAK_LINE, (top, LEAK_LINE)
    assert top["site"] == f"{top['file']}:{LEAK_LINE}"
    assert top["size"] > 10 << 20, top
    return report


def test_steady_leak_snapshot_diff_then_restart(tmp_path: Path) -> None:
    code, events, stderr = run_child(tmp_path, "snapshot")
    report = check_common(tmp_path, code, events, stderr)
    evidence = first(events, "evidence", trigger="act")
    assert evidence["evidence"] == "heap_snapshot", evidence
    assert evidence["free_bytes"] > evidence["needed_bytes"], evidence
    assert report["kind"] == "snapshot_diff", report["reason"]
    assert report["top"][0]["size_diff"] == report["top"][0]["size"] > 0
    assert "compare_to_called" in kinds(events)
    # The full snapshot is dumped beside the report and loads as one.
    dump = Path(str(evidence["path"])[: -len(".json")] + ".tracemalloc")
    assert dump.is_file(), sorted(os.listdir(tmp_path))
    snapshot = tracemalloc.Snapshot.load(str(dump))
    lines = {s.traceback[0].lineno for s in snapshot.statistics("lineno")}
    assert LEAK_LINE in lines, lines


def test_fast_leak_without_headroom_writes_a_profile_and_still_restarts(tmp_path: Path) -> None:
    code, events, stderr = run_child(tmp_path, "profile")
    report = check_common(tmp_path, code, events, stderr)
    evidence = first(events, "evidence", trigger="act")
    assert evidence["evidence"] == "profile", evidence
    assert evidence["free_bytes"] <= evidence["needed_bytes"], evidence
    assert report["kind"] == "profile", report
    # It says why: the free and needed bytes.
    assert "no full snapshot" in report["reason"], report["reason"]
    assert str(evidence["free_bytes"]) in report["reason"], report["reason"]
    assert str(evidence["needed_bytes"]) in report["reason"], report["reason"]
    # No full snapshot attempted: nothing compared, nothing dumped.
    assert "compare_to_called" not in kinds(events)
    assert "snapshot_dump_called" not in kinds(events)
    assert not list(tmp_path.glob("*.tracemalloc"))
