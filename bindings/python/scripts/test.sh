#!/usr/bin/env bash
# Builds and tests the Python binding (the pip package `seawall`):
#   1. creates or reuses the virtualenv <repo>/.venv with maturin, pytest, mypy and psycopg 3
#      (the pools' end-to-end tests and example use it, against PostgreSQL on 127.0.0.1:5432);
#   2. builds the wheel once (maturin build --release) and installs it into that venv, so the
#      tests run against exactly what ships;
#   3. runs pytest (conformance vectors, API, bad input, real-time cancellation, the pools with
#      in-memory connections and with psycopg through a fault proxy, process-exit checks);
#   4. runs the same tests with the same (abi3) wheel on the oldest interpreters the package
#      supports, Python 3.9 and 3.10, where asyncio has no cancellation counts and budgets
#      cancel differently (venvs cached under <repo>/.venv/old/; psycopg is not installed
#      there, so the PostgreSQL tests are skipped, with the reason shown);
#   5. type-checks the stubs: a typed usage file with mypy --strict, stubtest against the
#      runtime, and the facade's own sources;
#   6. runs the Python examples (examples/python/*.py; pool_psycopg.py needs PostgreSQL on
#      127.0.0.1:5432, or DATABASE_URL);
#   7. installs the same wheel into a fresh temporary venv, imports it and makes a call.
# Works from any directory and can be run repeatedly. PYTHON selects the interpreter that
# creates the venvs (default: python3). OLD_PYTHONS lists the interpreters for step 4
# (default: python3.9 and python3.10 from PATH or pyenv); set it to "none" to skip the step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$(cd "$here/.." && pwd)"
repo="$(cd "$pkg/../.." && pwd)"
venv="$repo/.venv"
base_python="${PYTHON:-python3}"
py="$venv/bin/python"

step() { printf '\n==> %s\n' "$*"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/seawall-python.XXXXXX")"
trap 'rm -rf "$work"' EXIT

step "virtualenv $venv"
if [[ ! -x "$py" ]]; then
    "$base_python" -m venv "$venv"
fi
"$py" -m pip install --quiet --disable-pip-version-check \
    "maturin==1.16.*" "pytest==9.*" "mypy==2.*" "psycopg[binary]==3.2.13"

step "build the wheel (maturin build --release)"
(cd "$pkg" && "$venv/bin/maturin" build --release --interpreter "$py" --out "$work/dist")
wheels=("$work"/dist/seawall-*.whl)
if [[ ${#wheels[@]} -ne 1 || ! -f "${wheels[0]}" ]]; then
    echo "expected exactly one wheel in $work/dist, found: ${wheels[*]}" >&2
    exit 1
fi
wheel="${wheels[0]}"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

step "pytest"
(cd "$pkg" && "$py" -m pytest tests -q -p no:cacheprovider -rs)

step "older interpreters: the same wheel on Python 3.9 and 3.10"
find_python() {
    # A pyenv shim is on PATH even when its version is not selected: only accept an
    # interpreter that actually runs.
    local minor="$1" candidate
    for candidate in "$(command -v "python$minor" 2>/dev/null || true)" \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$minor".*/bin/"python$minor"; do
        if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" -c pass >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
}
old_pythons=()
if [[ -n "${OLD_PYTHONS:-}" ]]; then
    [[ "$OLD_PYTHONS" == "none" ]] || read -r -a old_pythons <<<"$OLD_PYTHONS"
else
    for minor in 3.9 3.10; do
        found="$(find_python "$minor")"
        if [[ -n "$found" ]]; then
            old_pythons+=("$found")
        else
            echo "WARNING: no python$minor found (PATH, pyenv): not tested on $minor" >&2
        fi
    done
fi
for old in "${old_pythons[@]}"; do
    version="$("$old" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    old_venv="$venv/old/$version"
    if [[ ! -x "$old_venv/bin/python" ]]; then
        "$old" -m venv "$old_venv"
    fi
    "$old_venv/bin/python" -m pip install --quiet --disable-pip-version-check "pytest>=8,<10"
    "$old_venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
        --no-deps "$wheel"
    echo "-- Python $version ($old)"
    (cd "$pkg" && "$old_venv/bin/python" -m pytest tests -q -p no:cacheprovider -rs)
done

step "type check: stubs as used (mypy --strict), stubs against the runtime (stubtest), facade"
# The cache lives in the venv so that repeated runs are fast and the work tree stays clean.
export MYPY_CACHE_DIR="$venv/.mypy_cache"
(cd "$pkg" && "$venv/bin/mypy" --strict tests/typing)
# stubtest keeps its cache in the working directory whatever it is told: run it in the temp dir.
(cd "$work" && "$py" -m mypy.stubtest seawall \
    --allowlist "$pkg/tests/typing/stubtest-allowlist.txt")
(cd "$pkg/python" && MYPY_CACHE_DIR="$MYPY_CACHE_DIR/facade" "$venv/bin/mypy" --strict -p seawall)

step "examples: every Python example runs and exits 0"
for example in "$repo"/examples/python/*.py; do
    echo "-- $example"
    "$py" "$example" >/dev/null
done

step "packaging: the wheel in a fresh virtualenv"
"$base_python" -m venv "$work/clean"
"$work/clean/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
    --no-deps "$wheel"
# Run from the temporary directory so nothing from the work tree can be imported instead.
(cd "$work" && "$work/clean/bin/python" - <<'EOF'
import seawall
from seawall import CircuitBreaker, CircuitOpenError, ManualClock

assert seawall.__file__.startswith(__import__("sys").prefix), seawall.__file__
clock = ManualClock()
breaker = CircuitBreaker(window_size=2, minimum_calls=2, open_duration=5.0, clock=clock)
for _ in range(2):
    try:
        breaker.call(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
try:
    breaker.call(lambda: None)
    raise SystemExit("the breaker should have rejected the call")
except CircuitOpenError as e:
    assert e.retry_after == 5.0, e.retry_after
import asyncio
from seawall import Budget, DeadlineExceeded, RetryPolicy

async def cancelled():
    try:
        async with Budget(0.02):
            await asyncio.sleep(5)
    except DeadlineExceeded:
        return True
    return False

assert asyncio.run(cancelled())
calls = []

def flaky():
    calls.append(1)
    if len(calls) < 2:
        raise ConnectionError("first call fails")
    return "ok"

assert RetryPolicy(backoff="constant", delay=0.0).call(flaky) == "ok"
assert len(calls) == 2
from seawall import Pool, PoolEngine, SyncPool

class Conn:
    def close(self):
        pass

async def pooled():
    pool = Pool(lambda: asyncio.sleep(0, Conn()), max_size=2)
    async with pool.connection() as conn:
        assert isinstance(conn, Conn)
    return await pool.drain(timeout=1.0)

assert asyncio.run(pooled()) == []
with SyncPool(Conn, max_size=1) as sync_pool:
    sync_pool.release(sync_pool.acquire())
engine = PoolEngine(max_size=1, seed=1)
engine.handle_timeout(0.0)
assert engine.poll_action() is None
print(f"installed wheel OK: {seawall.__file__} ({breaker.state})")
EOF
)

step "python binding: all checks passed"
