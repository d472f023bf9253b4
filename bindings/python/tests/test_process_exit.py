"""Short-lived processes that use the breaker from asyncio exit cleanly, every time.

A native extension that runs its own threads or runtime can abort CPython at interpreter exit
(see BINDINGS-NOTES: 30 of 40 short scripts with pyo3-async-runtimes). pytest's own long-lived
process never shows it, so this runs a short script many times in fresh interpreters.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

RUNS = 20

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from seawall import CircuitBreaker, CircuitOpenError

    breaker = CircuitBreaker(window_size=5, minimum_calls=5, open_duration=60.0)
    heard = []
    breaker.on_state_change(heard.append)

    @breaker
    async def flaky(i):
        await asyncio.sleep(0)
        if i % 2:
            raise ConnectionError(i)
        return i

    async def main():
        outcomes = {"ok": 0, "failed": 0, "rejected": 0}
        for i in range(20):
            try:
                await flaky(i)
                outcomes["ok"] += 1
            except ConnectionError:
                outcomes["failed"] += 1
            except CircuitOpenError:
                outcomes["rejected"] += 1
        permit = breaker.try_acquire() if breaker.state == "closed" else None
        assert permit is None, "the breaker should be open"
        assert outcomes == {"ok": 3, "failed": 3, "rejected": 14}, outcomes
        assert [c.to_state for c in heard] == ["open"], heard

    asyncio.run(main())
    print("done")
    """
)


def test_short_async_scripts_always_exit_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "short.py"
    script.write_text(SCRIPT, encoding="utf-8")
    failures = []
    for run in range(RUNS):
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60
        )
        if proc.returncode != 0 or proc.stdout.strip() != "done":
            failures.append(f"run {run}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    assert not failures, "\n".join(failures)
