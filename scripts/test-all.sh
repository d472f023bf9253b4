#!/usr/bin/env bash
# Every test, from a fresh clone: Rust (fmt, clippy, tests, examples), then the Node and Python
# bindings (each script installs its own tools from the registries, builds the binding, runs its
# tests, type-checks its stubs and checks that its package installs into a clean place).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The pool's end-to-end tests use the machine's PostgreSQL on 127.0.0.1:5432 (through a fault
# proxy; the server itself is never stopped). Start it if it is down.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  step "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p seawall -p seawall-core --all-features --quiet

step "Rust examples"
cargo run --quiet --example demo >/dev/null
DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --quiet --example demo --features postgres >/dev/null
cargo run --quiet --example budget_and_retry >/dev/null
cargo run --quiet --example memory_watchdog >/dev/null

step "Node.js binding"
bash bindings/node/scripts/test.sh

step "Python binding"
bash bindings/python/scripts/test.sh

step "all tests passed"
