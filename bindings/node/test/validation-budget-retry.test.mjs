// Bad input to budgets, policies and retries: a RangeError or TypeError naming the option in
// JavaScript's spelling (with `code` and `field`), or an InvalidHeaderError; never a crash.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { Budget, CallPolicy, ManualClock, RetryBudget, RetryPolicy, TimeoutPolicy } from 'seawall'

const BAD_DURATIONS = [-1, -0.001, NaN, Infinity, -Infinity, 86_400_001, 1e300]

function expectError(build, Kind, field, { code = 'SEAWALL_INVALID_CONFIG', message } = {}) {
  let e
  try {
    build()
  } catch (error) {
    e = error
  }
  assert.ok(e, `accepted (expected ${Kind.name} on ${field})`)
  assert.ok(e instanceof Kind, `${Kind.name} expected on ${field}, got ${e.name}: ${e.message}`)
  assert.equal(e.code, code, e.message)
  assert.equal(e.field, field, e.message)
  assert.ok(e.message.startsWith(`${field} must be `), e.message)
  if (message !== undefined) assert.equal(e.message, message)
  return e
}

describe('TimeoutPolicy options', () => {
  test('maxTimeoutMs: 1 ms to 24 h', () => {
    for (const v of [0, 0.5, ...BAD_DURATIONS]) expectError(() => new TimeoutPolicy({ maxTimeoutMs: v }), RangeError, 'maxTimeoutMs')
    expectError(() => new TimeoutPolicy({ maxTimeoutMs: 0 }), RangeError, 'maxTimeoutMs', {
      message: 'maxTimeoutMs must be a duration between 1 ms and 24 h, got 0 ms',
    })
    expectError(() => new TimeoutPolicy({ maxTimeoutMs: Infinity }), RangeError, 'maxTimeoutMs', {
      message: 'maxTimeoutMs must be a duration between 1 ms and 24 h, got Infinity ms',
    })
    assert.equal(new TimeoutPolicy({ maxTimeoutMs: 86_400_000 }).maxTimeoutMs, 86_400_000)
    assert.equal(new TimeoutPolicy({ maxTimeoutMs: 1, minToStartMs: 0 }).maxTimeoutMs, 1)
  })

  test('scale: a factor in (0, 1]', () => {
    for (const v of [0, -0.5, 1.0001, 2, NaN, Infinity]) expectError(() => new TimeoutPolicy({ scale: v }), RangeError, 'scale')
    expectError(() => new TimeoutPolicy({ scale: 0 }), RangeError, 'scale', { message: 'scale must be a factor in (0, 1], got 0' })
    assert.equal(new TimeoutPolicy({ scale: Number.MIN_VALUE }).scale, Number.MIN_VALUE)
  })

  test('minToStartMs: 0 to maxTimeoutMs', () => {
    expectError(() => new TimeoutPolicy({ maxTimeoutMs: 100, minToStartMs: 101 }), RangeError, 'minToStartMs', {
      message: 'minToStartMs must be a duration between 0 and maxTimeoutMs, got 101 ms',
    })
    for (const v of [-1, NaN, Infinity]) expectError(() => new TimeoutPolicy({ minToStartMs: v }), RangeError, 'minToStartMs')
    // The default minimum (10 ms) must fit a maximum set lower.
    expectError(() => new TimeoutPolicy({ maxTimeoutMs: 5 }), RangeError, 'minToStartMs')
  })

  test('wrong types', () => {
    expectError(() => new TimeoutPolicy({ maxTimeoutMs: '15s' }), TypeError, 'maxTimeoutMs', {
      message: 'maxTimeoutMs must be a number, got string',
    })
    expectError(() => new TimeoutPolicy({ scale: null }), TypeError, 'scale')
    expectError(() => new TimeoutPolicy({ minToStartMs: 10n }), TypeError, 'minToStartMs')
    expectError(() => new TimeoutPolicy(5), TypeError, 'options')
    expectError(() => new TimeoutPolicy([]), TypeError, 'options')
    expectError(() => new TimeoutPolicy(null), TypeError, 'options')
  })
})

describe('Budget options and arguments', () => {
  test('timeoutMs: 0 to 24 h, judged before scaling or capping', () => {
    for (const v of BAD_DURATIONS) expectError(() => new Budget({ timeoutMs: v }), RangeError, 'timeoutMs')
    expectError(() => new Budget({ timeoutMs: -1 }), RangeError, 'timeoutMs', {
      message: 'timeoutMs must be a duration between 0 and 24 h, got -1 ms',
    })
    const halving = new TimeoutPolicy({ scale: 0.5 })
    expectError(() => new Budget({ timeoutMs: 86_400_001, policy: halving }), RangeError, 'timeoutMs')
    const clock = new ManualClock()
    assert.equal(new Budget({ timeoutMs: 86_400_000, clock }).remainingMs, 15_000, 'valid, then capped')
    assert.equal(new Budget({ timeoutMs: 0, clock }).remainingMs, 0)
  })

  test('wrong types', () => {
    expectError(() => new Budget({ timeoutMs: '2000' }), TypeError, 'timeoutMs', {
      message: 'timeoutMs must be a number of milliseconds, got string',
    })
    expectError(() => new Budget({}), TypeError, 'timeoutMs')
    expectError(() => new Budget(), TypeError, 'options')
    expectError(() => new Budget(1000), TypeError, 'options')
    expectError(() => new Budget({ timeoutMs: 10, policy: { maxTimeoutMs: 5 } }), TypeError, 'policy')
    expectError(() => new Budget({ timeoutMs: 10, clock: 5 }), TypeError, 'clock')
    expectError(() => new Budget({ timeoutMs: 10, clock: { now: 5 } }), TypeError, 'clock')
  })

  test('caps of child() and timeoutFor()', () => {
    const b = new Budget({ timeoutMs: 1000, clock: new ManualClock() })
    for (const v of BAD_DURATIONS) {
      expectError(() => b.child(v), RangeError, 'capMs', { code: 'SEAWALL_INVALID_ARGUMENT' })
      expectError(() => b.timeoutFor(v), RangeError, 'capMs', { code: 'SEAWALL_INVALID_ARGUMENT' })
    }
    expectError(() => b.child(), TypeError, 'capMs', { code: 'SEAWALL_INVALID_ARGUMENT' })
    expectError(() => b.timeoutFor('5'), TypeError, 'capMs', { code: 'SEAWALL_INVALID_ARGUMENT' })
    expectError(() => b.timeoutFor(null), TypeError, 'capMs', { code: 'SEAWALL_INVALID_ARGUMENT' })
  })

  test('a clock that reads garbage is an error, not a crash', async () => {
    const readings = [NaN, -1, Infinity]
    for (const r of readings) {
      const clock = { now: () => r }
      assert.throws(() => new Budget({ timeoutMs: 10, clock }), { name: 'RangeError', code: 'SEAWALL_INVALID_CLOCK' })
    }
    let reading = 0
    const clock = { now: () => reading }
    const b = new Budget({ timeoutMs: 100, clock })
    reading = NaN
    assert.throws(() => b.remainingMs, { code: 'SEAWALL_INVALID_CLOCK' })
    await assert.rejects(b.run(() => 1), { code: 'SEAWALL_INVALID_CLOCK' })
    reading = 'late'
    assert.throws(() => b.check(), { name: 'TypeError', code: 'SEAWALL_INVALID_CLOCK' })
    const throwing = {
      now() {
        throw new Error('clock broke')
      },
    }
    assert.throws(() => new Budget({ timeoutMs: 10, clock: throwing }), /clock broke/)
  })
})

describe('RetryPolicy options', () => {
  test('maxAttempts: an integer in [1, 100]', () => {
    for (const v of [0, 101, -1, 2.5, NaN, Infinity, 2 ** 32]) {
      expectError(() => new RetryPolicy({ maxAttempts: v }), RangeError, 'maxAttempts')
    }
    expectError(() => new RetryPolicy({ maxAttempts: 2.5 }), RangeError, 'maxAttempts', {
      message: 'maxAttempts must be an integer in [1, 100], got 2.5',
    })
    expectError(() => new RetryPolicy({ maxAttempts: '3' }), TypeError, 'maxAttempts')
  })

  test('backoff durations: 0 to 24 h, cap at least base', () => {
    for (const v of BAD_DURATIONS) {
      expectError(() => new RetryPolicy({ backoff: { kind: 'constant', delayMs: v } }), RangeError, 'backoff.delayMs')
      expectError(() => new RetryPolicy({ backoff: { kind: 'exponential', baseMs: v, capMs: 100 } }), RangeError, 'backoff.baseMs')
      expectError(() => new RetryPolicy({ backoff: { kind: 'decorrelated_jitter', baseMs: 10, capMs: v } }), RangeError, 'backoff.capMs')
    }
    expectError(() => new RetryPolicy({ backoff: { kind: 'exponential', baseMs: 100, capMs: 10 } }), RangeError, 'backoff.capMs', {
      message: 'backoff.capMs must be at least backoff.baseMs, got 10 ms',
    })
    expectError(() => new RetryPolicy({ backoff: { kind: 'decorrelated_jitter', baseMs: 6000 } }), RangeError, 'backoff.capMs')
    assert.equal(new RetryPolicy({ backoff: { kind: 'constant', delayMs: 0 } }).backoff.delayMs, 0)
  })

  test('backoff kind, multiplier and required keys', () => {
    expectError(() => new RetryPolicy({ backoff: { kind: 'linear' } }), RangeError, 'backoff.kind', {
      message: "backoff.kind must be 'constant', 'exponential' or 'decorrelated_jitter', got 'linear'",
    })
    expectError(() => new RetryPolicy({ backoff: {} }), TypeError, 'backoff.kind')
    expectError(() => new RetryPolicy({ backoff: 'constant' }), TypeError, 'backoff')
    expectError(() => new RetryPolicy({ backoff: { kind: 'constant' } }), TypeError, 'backoff.delayMs')
    expectError(() => new RetryPolicy({ backoff: { kind: 'exponential', capMs: 5 } }), TypeError, 'backoff.baseMs')
    for (const m of [0.99, 100.5, NaN, -2]) {
      expectError(
        () => new RetryPolicy({ backoff: { kind: 'exponential', baseMs: 1, capMs: 5, multiplier: m } }),
        RangeError,
        'backoff.multiplier',
      )
    }
    expectError(
      () => new RetryPolicy({ backoff: { kind: 'exponential', baseMs: 1, capMs: 5, multiplier: '2' } }),
      TypeError,
      'backoff.multiplier',
    )
  })

  test('seed: a safe integer; isRetryable: a function', () => {
    for (const s of [-1, 1.5, 2 ** 53, NaN]) expectError(() => new RetryPolicy({ seed: s }), RangeError, 'seed')
    assert.equal(new RetryPolicy({ seed: null }).seed, null)
    expectError(() => new RetryPolicy({ isRetryable: 'yes' }), TypeError, 'isRetryable')
    expectError(() => new RetryPolicy('3'), TypeError, 'options')
  })
})

describe('RetryBudget options', () => {
  test('percent in [0, 1000], minPerSecond in [0, 100000], ttlMs 1 s to 1 h', () => {
    for (const v of [-1, 1000.5, NaN, Infinity]) {
      expectError(() => new RetryBudget({ percent: v }), RangeError, 'retryBudget.percent')
    }
    for (const v of [-0.1, 100_001, NaN]) {
      expectError(() => new RetryBudget({ minPerSecond: v }), RangeError, 'retryBudget.minPerSecond')
    }
    for (const v of [999, 3_600_001, -1, NaN, Infinity, 1e300]) {
      expectError(() => new RetryBudget({ ttlMs: v }), RangeError, 'retryBudget.ttlMs')
    }
    expectError(() => new RetryBudget({ ttlMs: NaN }), RangeError, 'retryBudget.ttlMs', {
      message: 'retryBudget.ttlMs must be a duration between 1 s and 1 h, got NaN ms',
    })
    expectError(() => new RetryBudget({ ttlMs: 10 }), RangeError, 'retryBudget.ttlMs', {
      message: 'retryBudget.ttlMs must be a duration between 1 s and 1 h, got 10 ms',
    })
    expectError(() => new RetryBudget({ percent: '20' }), TypeError, 'retryBudget.percent')
    expectError(() => new RetryBudget({ clock: {} }), TypeError, 'clock')
    assert.equal(new RetryBudget({ percent: 0, minPerSecond: 0 }).metrics().allowed, 0)
  })
})

describe('CallPolicy and retry() timeouts', () => {
  test('attemptTimeoutMs and timeoutMs: 0 to 24 h', () => {
    for (const v of BAD_DURATIONS) {
      expectError(() => new CallPolicy({ attemptTimeoutMs: v }), RangeError, 'attemptTimeoutMs')
      expectError(() => new CallPolicy({ timeoutMs: v }), RangeError, 'timeoutMs')
    }
    expectError(() => new CallPolicy({ attemptTimeoutMs: -5 }), RangeError, 'attemptTimeoutMs', {
      message: 'attemptTimeoutMs must be a duration between 0 and 24 h, got -5 ms',
    })
  })
})
