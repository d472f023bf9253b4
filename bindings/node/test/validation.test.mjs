// Bad input gets a RangeError or TypeError that names the option in JavaScript's spelling, with
// `code` and `field`, and never crashes the process.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { CircuitBreaker, ManualClock } from 'seawall'

function configError(options) {
  try {
    new CircuitBreaker(options)
  } catch (e) {
    return e
  }
  return assert.fail(`accepted ${JSON.stringify(options)}`)
}

function expectError(options, Kind, field, message) {
  const e = configError(options)
  assert.ok(e instanceof Kind, `${Kind.name} expected for ${String(JSON.stringify(options))}, got ${e}`)
  assert.equal(e.code, 'SEAWALL_INVALID_CONFIG')
  assert.equal(e.field, field, e.message)
  assert.ok(e.message.startsWith(`${field} must be `), e.message)
  if (message !== undefined) assert.equal(e.message, message)
  return e
}

describe('messages', () => {
  test('a wrong type names the option and the type', () => {
    expectError({ failureRateThreshold: '50' }, TypeError, 'failureRateThreshold', 'failureRateThreshold must be a number, got string')
  })

  test('a range error is the core message re-spelled for JavaScript', () => {
    expectError({ openDurationMs: 0 }, RangeError, 'openDurationMs', 'openDurationMs must be a duration between 1 ms and 24 h, got 0 ms')
    expectError(
      { failureRateThreshold: 150 },
      RangeError,
      'failureRateThreshold',
      'failureRateThreshold must be a percentage in (0, 100], got 150',
    )
    expectError(
      { window: { kind: 'time', durationMs: 5, buckets: 10 } },
      RangeError,
      'window.buckets',
      'window.buckets must be at most window.durationMs (each bucket spans at least 1 ms), got 10',
    )
    expectError(
      { window: { kind: 'time', durationMs: 0, buckets: 1 } },
      RangeError,
      'window.durationMs',
      'window.durationMs must be a duration between 1 ms and 24 h, got 0 ms',
    )
    expectError(
      { openDurationMs: 2000, backoff: { kind: 'exponential', multiplier: 2, maxOpenDurationMs: 1500, jitter: 0 } },
      RangeError,
      'backoff.maxOpenDurationMs',
      'backoff.maxOpenDurationMs must be at least openDurationMs, got 1500 ms',
    )
    expectError({ slowCallDurationMs: 0.5 }, RangeError, 'slowCallDurationMs', 'slowCallDurationMs must be a duration between 1 ms and 24 h, got 0.5 ms')
    expectError({ maxHalfOpenDurationMs: 86_400_001 }, RangeError, 'maxHalfOpenDurationMs')
    expectError({ halfOpenCalls: 0 }, RangeError, 'halfOpenCalls', 'halfOpenCalls must be an integer in [1, 10000], got 0')
    expectError({ window: { kind: 'count', size: 0 } }, RangeError, 'window.size')
    expectError({ backoff: { kind: 'exponential', multiplier: 0.5, maxOpenDurationMs: 60_000, jitter: 0 } }, RangeError, 'backoff.multiplier')
    expectError({ backoff: { kind: 'exponential', multiplier: 2, maxOpenDurationMs: 60_000, jitter: 2 } }, RangeError, 'backoff.jitter')
  })

  test('NaN, infinities, negatives and fractions are range errors, spelled as JavaScript spells them', () => {
    expectError({ failureRateThreshold: Number.NaN }, RangeError, 'failureRateThreshold', 'failureRateThreshold must be a percentage in (0, 100], got NaN')
    expectError(
      { openDurationMs: Number.POSITIVE_INFINITY },
      RangeError,
      'openDurationMs',
      'openDurationMs must be a duration between 1 ms and 24 h, got Infinity ms',
    )
    expectError({ openDurationMs: -5 }, RangeError, 'openDurationMs')
    expectError({ minimumCalls: 1.5 }, RangeError, 'minimumCalls')
    expectError({ minimumCalls: -1 }, RangeError, 'minimumCalls')
    expectError({ consecutiveFailures: Number.NaN }, RangeError, 'consecutiveFailures')
    expectError({ seed: -1 }, RangeError, 'seed')
    expectError({ seed: 0.5 }, RangeError, 'seed')
    expectError({ seed: 2 ** 60 }, RangeError, 'seed')
  })

  test('null is refused where it means nothing and accepted where it means "off"', () => {
    for (const key of ['failureRateThreshold', 'slowCallRateThreshold', 'minimumCalls', 'openDurationMs', 'halfOpenCalls']) {
      expectError({ [key]: null }, TypeError, key, `${key} must be a number, got null`)
    }
    expectError({ window: null }, TypeError, 'window', 'window must be an object, got null')
    expectError({ backoff: null }, TypeError, 'backoff')
    const breaker = new CircuitBreaker({
      slowCallDurationMs: null,
      consecutiveFailures: null,
      maxHalfOpenDurationMs: null,
      seed: null,
    })
    assert.equal(breaker.state, 'closed')
  })

  test('window and backoff kinds', () => {
    expectError({ window: { kind: 'sliding', size: 5 } }, RangeError, 'window.kind', "window.kind must be 'count' or 'time', got 'sliding'")
    expectError({ backoff: { kind: 'linear' } }, RangeError, 'backoff.kind')
    expectError({ window: { size: 5 } }, TypeError, 'window.kind')
    expectError({ window: { kind: 1 } }, TypeError, 'window.kind')
    expectError({ window: 'count' }, TypeError, 'window', 'window must be an object, got string')
    expectError({ window: { kind: 'count' } }, TypeError, 'window.size', 'window.size must be a number, got undefined')
    expectError({ window: { kind: 'time', durationMs: 1000 } }, TypeError, 'window.buckets')
    expectError({ backoff: { kind: 'exponential', multiplier: '2' } }, TypeError, 'backoff.multiplier')
    expectError({ backoff: { kind: 'exponential', jitter: null } }, TypeError, 'backoff.jitter')
  })

  test('options handled by the facade', () => {
    expectError({ isFailure: true }, TypeError, 'isFailure', 'isFailure must be a function, got boolean')
    expectError({ ignore: 'x' }, TypeError, 'ignore')
    expectError({ isResultFailure: null }, TypeError, 'isResultFailure')
    expectError({ clock: {} }, TypeError, 'clock')
    expectError({ clock: null }, TypeError, 'clock')
    expectError({ name: 5 }, TypeError, 'name')
    for (const bad of [null, 5, 'x', [], () => {}]) {
      expectError(bad, TypeError, 'options')
    }
  })

  test('unknown keys are ignored', () => {
    const breaker = new CircuitBreaker({ failureRateTreshold: 'typo', timeout: 5, window: { kind: 'count', size: 3, extra: true } })
    assert.equal(breaker.state, 'closed')
  })

  test('a throwing getter in the options propagates as itself', () => {
    const options = {
      get openDurationMs() {
        throw new Error('getter failed')
      },
    }
    assert.throws(() => new CircuitBreaker(options), /getter failed/)
  })
})

test('no value of any type in any option crashes the process', () => {
  const values = [
    undefined,
    null,
    true,
    0,
    -0,
    1,
    -1,
    0.5,
    1e300,
    -1e300,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MAX_SAFE_INTEGER,
    2 ** 32,
    '',
    '5',
    {},
    [],
    [5],
    () => 5,
    Symbol('s'),
    10n,
    new Date(0),
  ]
  const paths = [
    ['failureRateThreshold'],
    ['slowCallRateThreshold'],
    ['slowCallDurationMs'],
    ['window'],
    ['window', 'kind'],
    ['window', 'size'],
    ['window', 'durationMs'],
    ['window', 'buckets'],
    ['minimumCalls'],
    ['consecutiveFailures'],
    ['openDurationMs'],
    ['backoff'],
    ['backoff', 'kind'],
    ['backoff', 'multiplier'],
    ['backoff', 'maxOpenDurationMs'],
    ['backoff', 'jitter'],
    ['halfOpenCalls'],
    ['maxHalfOpenDurationMs'],
    ['seed'],
    ['isFailure'],
    ['clock'],
    ['name'],
  ]
  const bases = {
    window: [
      { kind: 'count', size: 10 },
      { kind: 'time', durationMs: 1000, buckets: 10 },
    ],
    backoff: [{ kind: 'exponential', multiplier: 2, maxOpenDurationMs: 60_000, jitter: 0.1 }],
  }
  let tried = 0
  for (const path of paths) {
    const variants = path.length === 2 ? bases[path[0]] : [undefined]
    for (const base of variants) {
      for (const value of values) {
        const options = path.length === 2 ? { [path[0]]: { ...base, [path[1]]: value } } : { [path[0]]: value }
        tried++
        try {
          const breaker = new CircuitBreaker(options)
          breaker.tryAcquire().success()
        } catch (e) {
          assert.ok(
            (e instanceof RangeError || e instanceof TypeError) && e.code === 'SEAWALL_INVALID_CONFIG' && typeof e.field === 'string',
            `${path.join('.')} = ${String(value)}: ${e}`,
          )
          assert.ok(e.message.includes(e.field), e.message)
        }
      }
    }
  }
  assert.ok(tried > 500)
})

describe('clock readings', () => {
  test('a clock returning NaN, a negative or a non-number is an error, and the breaker stays usable', () => {
    let reading = 0
    const breaker = new CircuitBreaker({ clock: { now: () => reading } })
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      reading = bad
      assert.throws(
        () => breaker.tryAcquire(),
        (e) => e instanceof RangeError && e.code === 'SEAWALL_INVALID_CLOCK' && e.message.includes('clock.now()'),
      )
    }
    reading = '5'
    assert.throws(() => breaker.tryAcquire(), (e) => e instanceof TypeError && e.code === 'SEAWALL_INVALID_CLOCK')
    reading = 10
    breaker.tryAcquire().success()
    assert.equal(breaker.metrics().successes, 1)
    assert.equal(breaker.metrics().permitted, 1)
  })

  test('a clock failing when a call ends still settles the permit, as ignored', async () => {
    let reading = 0
    const breaker = new CircuitBreaker({ clock: { now: () => reading }, halfOpenCalls: 1 })
    const permit = breaker.tryAcquire()
    reading = Number.NaN
    assert.throws(() => permit.success(), (e) => e.code === 'SEAWALL_INVALID_CLOCK')
    assert.equal(permit.settled, true)
    reading = 5
    await assert.rejects(
      breaker.run(() => {
        reading = 'broken'
        return 1
      }),
      (e) => e instanceof TypeError && e.code === 'SEAWALL_INVALID_CLOCK',
    )
    reading = 1
    const m = breaker.metrics()
    assert.equal(m.inFlight, 0)
    assert.equal(m.ignored, 2)
    assert.equal(m.successes, 0)
    assert.equal(m.permitted, 2)
  })

  test('ManualClock rejects bad times with TypeError/RangeError', () => {
    const clock = new ManualClock()
    assert.throws(() => clock.advance(-1), RangeError)
    assert.throws(() => clock.advance('1'), TypeError)
  })
})
