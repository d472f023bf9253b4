// CommonJS `require('seawall')`: the package's `require` condition.
'use strict'

const assert = require('node:assert/strict')
const { test } = require('node:test')

const { BreakerOpenError, Budget, CallPolicy, CircuitBreaker, ManualClock, Pool, PoolClosedError } = require('seawall')

test('a CommonJS program runs a call and sees a rejection', async () => {
  const breaker = new CircuitBreaker({ clock: new ManualClock() })
  assert.equal(await breaker.run(() => 'cjs'), 'cjs')
  breaker.forceOpen()
  await assert.rejects(breaker.run(() => 'never'), BreakerOpenError)
})

test('a CommonJS program runs a call through a CallPolicy', async () => {
  const policy = new CallPolicy({ breaker: new CircuitBreaker(), retryBudget: null })
  assert.equal(await policy.run(() => 'cjs', { budget: new Budget({ timeoutMs: 1000 }) }), 'cjs')
})

test('a CommonJS program borrows a connection from a pool and drains it', async () => {
  const pool = new Pool({ create: async () => ({ answer: 42 }) })
  assert.equal(await pool.use((c) => c.answer), 42)
  assert.deepEqual(await pool.drain(), [])
  await assert.rejects(pool.acquire(), PoolClosedError)
})
