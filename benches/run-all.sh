#!/usr/bin/env bash
# Runs every benchmark on this machine and regenerates BENCHMARKS.md from the results.
# Rust (criterion, peers in the same run), then Node.js and Python (each a script running the
# peers in the same process), then the renderer. Takes several minutes; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench-results

step() { printf '\n==> %s\n' "$*"; }

step "Rust"
cargo bench --bench peers
cargo bench --bench memory
cargo bench --bench report

step "Node.js"
if [ ! -f bindings/node/native.js ]; then
  (cd bindings/node && npm ci --no-audit --no-fund && npx napi build --platform --release --js native.js --dts native.d.ts)
fi
npm ci --prefix benches/node --no-audit --no-fund
node --expose-gc benches/node/bench.mjs

step "Python"
bash benches/python/run.sh

step "BENCHMARKS.md"
python3 benches/render.py
