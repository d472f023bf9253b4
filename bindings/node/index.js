'use strict'

// The `seawall` package: a hand-written facade over the native core (`native.js`, built by
// napi-rs). Promises, timers, AbortSignals, events, classification callbacks and clocks live in
// `lib/`; every decision is a synchronous call into the Rust core, the same one Rust and Python
// use. One module per concept:
// - lib/breaker.js   CircuitBreaker, Permit
// - lib/budget.js    TimeoutPolicy, Budget (deadlines, headers, run under a deadline)
// - lib/deadlines.js the one shared, unref'd timer behind every deadline
// - lib/retry.js     RetryPolicy, RetryLoop, RetryBudget
// - lib/call.js      retry(), CallPolicy (budget → retry → breaker → attempt timeout)
// - lib/pool.js      Pool, the connection pool adapter (Promises, AbortSignals, events)
// - lib/pool-engine.js PoolEngine, the pool's sans-IO engine for other adapters
// - lib/pg.js        pgPoolOptions, for pools of `pg.Client` connections
// - lib/errors.js    SeawallError and its subclasses, each with a stable `code`
// - lib/listeners.js the on / once / off listeners of CircuitBreaker and Pool
// - lib/clock.js     ManualClock
// - lib/watchdog.js  MemoryWatchdog, WatchdogPolicy, readMemory (the memory watchdog)

const { CircuitBreaker, Permit } = require('./lib/breaker.js')
const { TimeoutPolicy, Budget } = require('./lib/budget.js')
const { RetryPolicy, RetryLoop, RetryBudget } = require('./lib/retry.js')
const { retry, CallPolicy } = require('./lib/call.js')
const { Pool } = require('./lib/pool.js')
const { PoolEngine } = require('./lib/pool-engine.js')
const { pgPoolOptions } = require('./lib/pg.js')
const { ManualClock } = require('./lib/clock.js')
const { MemoryWatchdog, WatchdogPolicy, readMemory } = require('./lib/watchdog.js')
const {
  SeawallError,
  BreakerOpenError,
  SnapshotError,
  DeadlineExceededError,
  BudgetExhaustedError,
  RetryBudgetExhaustedError,
  InvalidHeaderError,
  PoolTimeoutError,
  PoolOverloadedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  PoolClosedError,
  PoolReleaseError,
} = require('./lib/errors.js')

module.exports = {
  CircuitBreaker,
  Permit,
  TimeoutPolicy,
  Budget,
  RetryPolicy,
  RetryLoop,
  RetryBudget,
  retry,
  CallPolicy,
  Pool,
  PoolEngine,
  pgPoolOptions,
  ManualClock,
  MemoryWatchdog,
  WatchdogPolicy,
  readMemory,
  SeawallError,
  BreakerOpenError,
  SnapshotError,
  DeadlineExceededError,
  BudgetExhaustedError,
  RetryBudgetExhaustedError,
  InvalidHeaderError,
  PoolTimeoutError,
  PoolOverloadedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  PoolClosedError,
  PoolReleaseError,
}
