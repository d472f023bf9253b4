#!/usr/bin/env bash
# Builds and tests the Node.js binding end to end, from any directory:
#   1. npm ci (the napi CLI and TypeScript, from package-lock.json);
#   2. the native addon, in release mode;
#   3. node --test (conformance vectors, API, bad input, process exit, CJS and ESM, and the pool
#      against the PostgreSQL on 127.0.0.1:5432 through an in-test fault proxy);
#   4. the examples in examples/node, which must run to the end and exit by themselves;
#   5. tsc --noEmit on a typed usage of index.d.ts / index.d.mts;
#   6. what `npm pack` produces, installed into a fresh project, loaded by require and import.
set -euo pipefail

pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"

step() { printf '\n==> %s\n' "$*"; }

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "napi build --release"
npx napi build --platform --release --js native.js --dts native.d.ts

step "node --test"
node --test test/*.test.mjs test/*.test.cjs

step "examples/node (each must run to the end and exit by itself)"
for example in ../../examples/node/*.mjs; do
  timeout 60 node "$example" >/dev/null || { echo "example failed: $example" >&2; exit 1; }
  echo "ok: $example"
done

step "tsc --noEmit (index.d.ts)"
npx tsc --noEmit -p test/types/tsconfig.json

step "npm pack, install into a fresh project, require and import"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/pack" "$tmp/app"
tarball="$(npm pack --silent --pack-destination "$tmp/pack" | tail -n 1)"
contents="$(tar -tzf "$tmp/pack/$tarball")"
for f in package/index.js package/index.mjs package/index.d.ts package/index.d.mts package/native.js \
  package/lib/errors.js package/lib/clock.js package/lib/breaker.js package/lib/deadlines.js \
  package/lib/budget.js package/lib/retry.js package/lib/call.js package/lib/pool.js \
  package/lib/pool-engine.js package/lib/pg.js package/lib/watchdog.js package/lib/listeners.js; do
  grep -qx "$f" <<<"$contents" || { echo "missing from the tarball: $f" >&2; exit 1; }
done
grep -q '^package/seawall\..*\.node$' <<<"$contents" || { echo "no .node binary in the tarball" >&2; exit 1; }
(
  cd "$tmp/app"
  printf '{ "name": "seawall-pack-check", "version": "1.0.0", "private": true }\n' > package.json
  npm install --no-audit --no-fund --silent "$tmp/pack/$tarball"
  node -e '
    const assert = require("node:assert/strict")
    const { CircuitBreaker, BreakerOpenError } = require("seawall")
    const breaker = new CircuitBreaker({ name: "pack-check" })
    breaker.run(async (x) => x + 1, 41).then((v) => {
      assert.equal(v, 42)
      breaker.forceOpen()
      return breaker.run(() => 0).then(() => assert.fail("not rejected"), (e) => assert.ok(e instanceof BreakerOpenError))
    }).then(() => console.log("require(\"seawall\") from the packed tarball: ok"))
  '
  node --input-type=module -e '
    import assert from "node:assert/strict"
    import { Budget, CallPolicy, CircuitBreaker, DeadlineExceededError, ManualClock, Pool } from "seawall"
    const breaker = new CircuitBreaker({ clock: new ManualClock() })
    assert.equal(await breaker.run(() => "esm"), "esm")
    assert.equal(breaker.metrics().successes, 1)
    assert.ok(Number(Budget.fromHeader("250m").toHeader("timeout-ms")) <= 250)
    const pool = new Pool({ create: async () => ({ ok: true }), maxSize: 2 })
    assert.equal(await pool.use((c) => c.ok), true)
    assert.deepEqual(await pool.drain(), [])
    const policy = new CallPolicy({ retry: { maxAttempts: 1 }, timeoutMs: 20 })
    const hang = ({ signal }) => new Promise((_, reject) => {
      const t = setTimeout(reject, 5000)
      signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason) })
    })
    await assert.rejects(policy.run(hang), DeadlineExceededError)
    console.log("import from the packed tarball: ok")
  '
)

step "node binding: all checks passed"
