"""Short-lived processes that use Seawall from asyncio exit cleanly and promptly, every time.

A native extension that runs its own threads or runtime can abort CPython at interpreter exit
(see BINDINGS-NOTES: 30 of 40 short scripts with pyo3-async-runtimes), and a timer or task left
behind by a deadline keeps a loop busy or warns at exit. pytest's own long-lived process never
shows either, so these run short scripts many times in fresh interpreters.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
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


BUDGET_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import warnings
    from seawall import (
        Budget, CallPolicy, CircuitBreaker, DeadlineExceeded, RetryPolicy, retry,
    )

    warnings.simplefilter("error")
    breaker = CircuitBreaker(consecutive_failures=2, open_duration=0.02, half_open_calls=1)
    calls = 0

    async def flaky():
        global calls
        calls += 1
        if calls <= 2:
            await asyncio.sleep(10)  # hangs: cancelled at the attempt timeout
        return "ok"

    policy = CallPolicy(
        breaker=breaker,
        retry=RetryPolicy(max_attempts=5, backoff="constant", delay=0.0),
        attempt_timeout=0.01,
        timeout=2.0,
    )

    @retry(max_attempts=2, backoff="constant", delay=0.0, attempt_timeout=0.01)
    async def hangs():
        await asyncio.sleep(10)

    async def main():
        assert await policy.call_async(flaky) == "ok"
        try:
            async with Budget(0.03):
                await asyncio.sleep(10)
            raise SystemExit("the block should have been cancelled")
        except DeadlineExceeded:
            pass
        try:
            await Budget(0.03).run(asyncio.sleep(10))
            raise SystemExit("run should have been cancelled")
        except DeadlineExceeded:
            pass
        try:
            await hangs()
            raise SystemExit("hangs should have timed out")
        except DeadlineExceeded:
            pass
        # The work outlives nothing: a long sleep is still pending somewhere only if a task
        # or timer leaked, and the loop would then wait for it or warn at close.
        assert asyncio.all_tasks() == {asyncio.current_task()}
        header = Budget(1.5).to_header()
        assert 0 < Budget.from_header(header).remaining <= 1.5

    asyncio.run(main())
    print("done")
    """
)


def test_short_budget_and_retry_scripts_exit_promptly_and_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "budgets.py"
    script.write_text(BUDGET_SCRIPT, encoding="utf-8")
    failures = []
    for run in range(RUNS):
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-X", "dev", str(script)], capture_output=True, text=True, timeout=60
        )
        elapsed = time.monotonic() - started
        if proc.returncode != 0 or proc.stdout.strip() != "done" or proc.stderr:
            failures.append(f"run {run}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
        # The script's own waits add up to well under a second; 10 s of sleeping work would
        # show here if a cancelled attempt were still awaited at exit.
        elif elapsed > 5:
            failures.append(f"run {run}: took {elapsed:.1f} s to exit")
    assert not failures, "\n".join(failures)
