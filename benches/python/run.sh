#!/usr/bin/env bash
# Runs the Python benchmark: Seawall against pybreaker, aiobreaker, purgatory,
# asyncio-connection-pool, generic-connection-pool and asyncio.timeout (issue 5).
#   1. creates or reuses the virtualenv <repo>/target/bench-venv and installs the pinned peers
#      (benches/python/requirements.txt, maturin included);
#   2. builds the Seawall wheel from bindings/python (maturin build --release) and installs it
#      there, so the bench measures exactly what ships;
#   3. runs benches/python/bench.py, which writes target/bench-results/python.json (the shape
#      of benches/README.md) and exits non-zero when a check fails.
# Extra arguments go to bench.py (--only SCENARIO..., --reps N, --out PATH, ...). PYTHON selects
# the interpreter that creates the venv (default python3; 3.11+ for asyncio.timeout).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/target/bench-venv"
py="$venv/bin/python"
base_python="${PYTHON:-python3}"

"$base_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "the Python bench needs Python 3.11+ (asyncio.timeout)")'

if [[ ! -x "$py" ]]; then
    "$base_python" -m venv "$venv"
fi
"$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

dist="$repo/target/bench-wheel"
rm -rf "$dist"
(cd "$repo/bindings/python" && "$venv/bin/maturin" build --release --quiet --interpreter "$py" --out "$dist")
wheels=("$dist"/seawall-*.whl)
if [[ ${#wheels[@]} -ne 1 || ! -f "${wheels[0]}" ]]; then
    echo "expected exactly one wheel in $dist, found: ${wheels[*]}" >&2
    exit 1
fi
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "${wheels[0]}"
(cd /tmp && "$py" -c 'import seawall, sys; assert seawall.__file__.startswith(sys.prefix), seawall.__file__')

# Run from the repo root, with the venv's interpreter only (nothing from the work tree on the path).
cd "$repo"
exec "$py" "$here/bench.py" "$@"
