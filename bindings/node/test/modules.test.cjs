// CommonJS `require('seawall')`: the package's `require` condition.
'use strict'

const assert = require('node:assert/strict')
const { test } = require('node:test')

const { BreakerOpenError, Budget, CallPolicy, CircuitBreaker, ManualClock } = require('seawall')

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
