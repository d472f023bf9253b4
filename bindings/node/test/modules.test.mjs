// ESM `import` of the package: named exports, the default export, and the same classes as
// CommonJS `require` (one copy of the library, so `instanceof` works across both).

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { test } from 'node:test'

import seawall, {
  BreakerOpenError,
  Budget,
  BudgetExhaustedError,
  CallPolicy,
  CircuitBreaker,
  ConnectFailedError,
  DatabaseUnavailableError,
  DeadlineExceededError,
  InvalidHeaderError,
  ManualClock,
  Permit,
  Pool,
  PoolClosedError,
  PoolEngine,
  PoolOverloadedError,
  PoolReleaseError,
  PoolTimeoutError,
  RetryBudget,
  RetryBudgetExhaustedError,
  RetryLoop,
  RetryPolicy,
  SeawallError,
  SnapshotError,
  TimeoutPolicy,
  pgPoolOptions,
  retry,
} from 'seawall'

const require = createRequire(import.meta.url)

test('ESM named and default exports are the CommonJS objects', () => {
  const cjs = require('seawall')
  assert.equal(CircuitBreaker, cjs.CircuitBreaker)
  assert.equal(BreakerOpenError, cjs.BreakerOpenError)
  assert.equal(SnapshotError, cjs.SnapshotError)
  assert.equal(SeawallError, cjs.SeawallError)
  assert.equal(ManualClock, cjs.ManualClock)
  assert.equal(Permit, cjs.Permit)
  assert.equal(TimeoutPolicy, cjs.TimeoutPolicy)
  assert.equal(Budget, cjs.Budget)
  assert.equal(RetryPolicy, cjs.RetryPolicy)
  assert.equal(RetryLoop, cjs.RetryLoop)
  assert.equal(RetryBudget, cjs.RetryBudget)
  assert.equal(CallPolicy, cjs.CallPolicy)
  assert.equal(retry, cjs.retry)
  assert.equal(DeadlineExceededError, cjs.DeadlineExceededError)
  assert.equal(BudgetExhaustedError, cjs.BudgetExhaustedError)
  assert.equal(RetryBudgetExhaustedError, cjs.RetryBudgetExhaustedError)
  assert.equal(InvalidHeaderError, cjs.InvalidHeaderError)
  assert.equal(Pool, cjs.Pool)
  assert.equal(PoolEngine, cjs.PoolEngine)
  assert.equal(pgPoolOptions, cjs.pgPoolOptions)
  for (const E of [PoolTimeoutError, PoolOverloadedError, ConnectFailedError, DatabaseUnavailableError, PoolClosedError, PoolReleaseError]) {
    assert.equal(E, cjs[E.name])
  }
  assert.equal(seawall, cjs)
  assert.deepEqual(Object.keys(cjs).sort(), [
    'BreakerOpenError',
    'Budget',
    'BudgetExhaustedError',
    'CallPolicy',
    'CircuitBreaker',
    'ConnectFailedError',
    'DatabaseUnavailableError',
    'DeadlineExceededError',
    'InvalidHeaderError',
    'ManualClock',
    'MemoryWatchdog',
    'Permit',
    'Pool',
    'PoolClosedError',
    'PoolEngine',
    'PoolOverloadedError',
    'PoolReleaseError',
    'PoolTimeoutError',
    'RetryBudget',
    'RetryBudgetExhaustedError',
    'RetryLoop',
    'RetryPolicy',
    'SeawallError',
    'SnapshotError',
    'TimeoutPolicy',
    'WatchdogPolicy',
    'pgPoolOptions',
    'readMemory',
    'retry',
  ])
  for (const E of [
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
  ]) {
    assert.ok(E.prototype instanceof SeawallError, `${E.name} extends SeawallError`)
  }
})

test('an ESM program runs a call', async () => {
  const breaker = new CircuitBreaker({ clock: new ManualClock() })
  assert.equal(await breaker.run(() => 'esm'), 'esm')
})

test('an ESM program runs a call under a budget with retries', async () => {
  const budget = new Budget({ timeoutMs: 1000 })
  assert.equal(await budget.run(() => 'esm'), 'esm')
  assert.equal(await retry(() => 'esm', { budget, retryBudget: null }), 'esm')
})

test('an ESM program borrows a connection from a pool', async () => {
  const pool = new Pool({ create: async () => ({ answer: 42 }) })
  assert.equal(await pool.use((c) => c.answer), 42)
  assert.deepEqual(await pool.drain(), [])
})
