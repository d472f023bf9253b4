// ESM `import` of the package: named exports, the default export, and the same classes as
// CommonJS `require` (one copy of the library, so `instanceof` works across both).

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { test } from 'node:test'

import seawall, { BreakerOpenError, CircuitBreaker, ManualClock, Permit, SeawallError, SnapshotError } from 'seawall'

const require = createRequire(import.meta.url)

test('ESM named and default exports are the CommonJS objects', () => {
  const cjs = require('seawall')
  assert.equal(CircuitBreaker, cjs.CircuitBreaker)
  assert.equal(BreakerOpenError, cjs.BreakerOpenError)
  assert.equal(SnapshotError, cjs.SnapshotError)
  assert.equal(SeawallError, cjs.SeawallError)
  assert.equal(ManualClock, cjs.ManualClock)
  assert.equal(Permit, cjs.Permit)
  assert.equal(seawall, cjs)
  assert.deepEqual(Object.keys(cjs).sort(), [
    'BreakerOpenError',
    'CircuitBreaker',
    'ManualClock',
    'Permit',
    'SeawallError',
    'SnapshotError',
  ])
})

test('an ESM program runs a call', async () => {
  const breaker = new CircuitBreaker({ clock: new ManualClock() })
  assert.equal(await breaker.run(() => 'esm'), 'esm')
})
