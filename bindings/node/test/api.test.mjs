// The public API of `seawall` on a ManualClock: run(), tryAcquire(), classification, events,
// manual states, snapshots. No test sleeps: time moves only when a test moves the clock.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { BreakerOpenError, CircuitBreaker, ManualClock, Permit, SeawallError, SnapshotError } from 'seawall'

/** A breaker that opens once 4 calls in a window of 4 are half failures. */
function small(extra = {}) {
  const clock = new ManualClock()
  const breaker = new CircuitBreaker({
    window: { kind: 'count', size: 4 },
    minimumCalls: 4,
    openDurationMs: 1000,
    halfOpenCalls: 2,
    clock,
    ...extra,
  })
  return { clock, breaker }
}

const fail = () => {
  throw new Error('boom')
}

async function failTimes(breaker, n) {
  for (let i = 0; i < n; i++) await assert.rejects(breaker.run(fail), /boom/)
}

function recordEvents(breaker) {
  const events = []
  breaker.on('stateChange', (e) => events.push(`${e.from}->${e.to}:${e.reason}`))
  breaker.on('reject', (e) => events.push(`reject:${e.reason}:${e.retryAfterMs}`))
  return events
}

describe('run()', () => {
  test('resolves with what fn returns, passing the arguments, and records a success', async () => {
    const { breaker } = small()
    assert.equal(await breaker.run((a, b) => a + b, 2, 3), 5)
    assert.equal(await breaker.run(async (x) => x * 2, 21), 42)
    const m = breaker.metrics()
    assert.equal(m.successes, 2)
    assert.equal(m.permitted, 2)
    assert.equal(m.inFlight, 0)
  })

  test('a synchronous throw and a rejection both reject run() and count as failures', async () => {
    const { breaker } = small()
    const thrown = new Error('sync')
    await assert.rejects(
      breaker.run(() => {
        throw thrown
      }),
      (e) => e === thrown,
    )
    const rejected = new Error('async')
    await assert.rejects(
      breaker.run(async () => {
        throw rejected
      }),
      (e) => e === rejected,
    )
    const m = breaker.metrics()
    assert.equal(m.failures, 2)
    assert.equal(m.consecutiveFailures, 2)
    assert.equal(m.inFlight, 0)
  })

  test('opens on the failure rate and then rejects without calling fn', async () => {
    const { breaker } = small()
    await failTimes(breaker, 2)
    await breaker.run(() => 'ok')
    assert.equal(breaker.state, 'closed')
    await breaker.run(() => 'ok')
    assert.equal(breaker.state, 'open')
    let called = false
    const error = await breaker
      .run(() => {
        called = true
      })
      .then(
        () => assert.fail('expected a rejection'),
        (e) => e,
      )
    assert.equal(called, false)
    assert.ok(error instanceof BreakerOpenError)
    assert.ok(error instanceof SeawallError)
    assert.ok(error instanceof Error)
    assert.equal(error.code, 'SEAWALL_BREAKER_OPEN')
    assert.equal(error.reason, 'open')
    assert.equal(error.retryAfterMs, 1000)
    assert.equal(error.name, 'BreakerOpenError')
    assert.match(error.message, /retry after 1000 ms/)
    // Built without stack frames (capturing them was most of a rejection's cost); the stack
    // still names the error, as tools expect.
    assert.equal(error.stack.split('\n').length, 1)
    assert.match(error.stack, /^BreakerOpenError: /)
  })

  test('retryAfterMs counts down with the clock', async () => {
    const { clock, breaker } = small()
    await failTimes(breaker, 4)
    clock.advance(250.5)
    assert.throws(() => breaker.tryAcquire(), (e) => e.retryAfterMs === 749.5)
  })

  test('a call that outlasts slowCallDurationMs is slow, whatever its outcome', async () => {
    const { clock, breaker } = small({ slowCallDurationMs: 100, slowCallRateThreshold: 50 })
    const slow = () => {
      clock.advance(101)
      return 'late'
    }
    await breaker.run(slow)
    await breaker.run(slow)
    await breaker.run(() => 'fast')
    assert.equal(breaker.metrics().slowCalls, 2)
    await breaker.run(() => 'fast')
    assert.equal(breaker.state, 'open')
  })

  test('fn that is not a function is a TypeError and takes no permit', async () => {
    const { breaker } = small()
    await assert.rejects(breaker.run('nope'), TypeError)
    assert.equal(breaker.metrics().permitted, 0)
  })
})

describe('classification', () => {
  test('isFailure returning false counts an error as a success', async () => {
    const notFound = Object.assign(new Error('404'), { status: 404 })
    const { breaker } = small({ isFailure: (e) => e.status !== 404 })
    await assert.rejects(
      breaker.run(() => {
        throw notFound
      }),
      (e) => e === notFound,
    )
    const m = breaker.metrics()
    assert.equal(m.successes, 1)
    assert.equal(m.failures, 0)
  })

  test('ignore is checked before isFailure, and an ignored error counts neither way', async () => {
    const seen = []
    const { breaker } = small({
      ignore: (e) => {
        seen.push('ignore')
        return e.name === 'AbortError'
      },
      isFailure: () => {
        seen.push('isFailure')
        return true
      },
    })
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' })
    await assert.rejects(
      breaker.run(() => Promise.reject(abort)),
      (e) => e === abort,
    )
    assert.deepEqual(seen, ['ignore'])
    const m = breaker.metrics()
    assert.equal(m.ignored, 1)
    assert.equal(m.failures, 0)
    assert.equal(m.callsInWindow, 0)
  })

  test('isResultFailure turns a returned value into a failure, and run() still returns it', async () => {
    const { breaker } = small({ isResultFailure: (r) => r.status >= 500 })
    const response = { status: 503 }
    assert.equal(await breaker.run(() => response), response)
    assert.equal(breaker.metrics().failures, 1)
    await breaker.run(() => ({ status: 200 }))
    assert.equal(breaker.metrics().successes, 1)
  })

  test('a classifier that throws settles the permit as ignored and surfaces its own error', async () => {
    const bug = new Error('classifier bug')
    const { breaker } = small({
      isFailure: () => {
        throw bug
      },
      isResultFailure: () => {
        throw bug
      },
    })
    await assert.rejects(breaker.run(fail), (e) => e === bug)
    await assert.rejects(
      breaker.run(() => 'value'),
      (e) => e === bug,
    )
    const m = breaker.metrics()
    assert.equal(m.ignored, 2)
    assert.equal(m.inFlight, 0)
    assert.equal(m.permitted, 2)
  })

  test('a throwing classifier cannot hold a half-open probe slot', async () => {
    let broken = false
    const { clock, breaker } = small({
      halfOpenCalls: 1,
      isFailure: () => {
        if (broken) throw new Error('classifier bug')
        return true
      },
    })
    await failTimes(breaker, 4)
    clock.advance(1000)
    broken = true
    await assert.rejects(breaker.run(fail), /classifier bug/)
    // The slot is free again: a probe is admitted, succeeds, and closes the breaker.
    await breaker.run(() => 'ok')
    assert.equal(breaker.state, 'closed')
  })
})

describe('tryAcquire() and permits', () => {
  test('a permit records exactly one outcome; later calls do nothing', () => {
    const { breaker } = small()
    const permit = breaker.tryAcquire()
    assert.ok(permit instanceof Permit)
    assert.equal(permit.settled, false)
    assert.equal(breaker.metrics().inFlight, 1)
    permit.failure()
    permit.success()
    permit.ignore()
    permit.failure()
    assert.equal(permit.settled, true)
    const m = breaker.metrics()
    assert.equal(m.failures, 1)
    assert.equal(m.successes, 0)
    assert.equal(m.ignored, 0)
    assert.equal(m.inFlight, 0)
    assert.equal(m.permitted, m.successes + m.failures + m.ignored + m.inFlight)
  })

  test('the outcome duration is measured from acquisition to settlement', () => {
    const { clock, breaker } = small({ slowCallDurationMs: 50 })
    const permit = breaker.tryAcquire()
    clock.advance(50)
    permit.success()
    assert.equal(breaker.metrics().slowCalls, 0)
    const late = breaker.tryAcquire()
    clock.advance(51)
    late.success()
    assert.equal(breaker.metrics().slowCalls, 1)
  })

  test('half-open admits halfOpenCalls probes; ignoring one frees its slot', async () => {
    const { clock, breaker } = small()
    await failTimes(breaker, 4)
    clock.advance(1000)
    const a = breaker.tryAcquire()
    const b = breaker.tryAcquire()
    assert.throws(
      () => breaker.tryAcquire(),
      (e) => e instanceof BreakerOpenError && e.reason === 'half_open_full' && e.retryAfterMs === null,
    )
    a.ignore()
    const c = breaker.tryAcquire()
    b.success()
    c.success()
    assert.equal(breaker.state, 'closed')
  })

  test('force-open rejections carry no retry-after and name the breaker', () => {
    const { breaker } = small({ name: 'payments' })
    breaker.forceOpen()
    assert.throws(
      () => breaker.tryAcquire(),
      (e) =>
        e instanceof BreakerOpenError &&
        e.reason === 'forced_open' &&
        e.retryAfterMs === null &&
        e.message.includes('"payments"'),
    )
    assert.equal(breaker.name, 'payments')
  })
})

describe('events', () => {
  test('stateChange and reject are emitted in order through a full cycle', async () => {
    const { clock, breaker } = small()
    const events = recordEvents(breaker)
    await failTimes(breaker, 4)
    assert.throws(() => breaker.tryAcquire(), BreakerOpenError)
    clock.advance(1000)
    await breaker.run(() => 1)
    await breaker.run(() => 2)
    assert.deepEqual(events, [
      'closed->open:failure_rate',
      'reject:open:1000',
      'open->half_open:open_duration_elapsed',
      'half_open->closed:probes_succeeded',
    ])
  })

  test('a transition caused by reading the state is emitted too', async () => {
    const { clock, breaker } = small()
    await failTimes(breaker, 4)
    const events = recordEvents(breaker)
    clock.advance(1000)
    assert.equal(breaker.state, 'half_open')
    assert.deepEqual(events, ['open->half_open:open_duration_elapsed'])
  })

  test('once() fires once; off() removes a listener', async () => {
    const { breaker } = small()
    let onceCalls = 0
    let onCalls = 0
    const listener = () => onCalls++
    breaker.once('stateChange', () => onceCalls++)
    breaker.on('stateChange', listener)
    breaker.forceOpen()
    breaker.reset()
    assert.equal(onceCalls, 1)
    assert.equal(onCalls, 2)
    breaker.off('stateChange', listener)
    breaker.forceOpen()
    assert.equal(onCalls, 2)
  })

  test('a listener may use the breaker it listens to', async () => {
    const { breaker } = small()
    const seen = []
    breaker.on('stateChange', ({ to }) => {
      seen.push([to, breaker.state, breaker.metrics().state])
      if (to === 'open') breaker.reset()
    })
    await failTimes(breaker, 4)
    assert.deepEqual(seen, [
      ['open', 'open', 'open'],
      ['closed', 'closed', 'closed'],
    ])
    assert.equal(breaker.state, 'closed')
  })

  test('on() returns the breaker and refuses unknown events and non-functions', () => {
    const { breaker } = small()
    assert.equal(
      breaker.on('reject', () => {}),
      breaker,
    )
    assert.throws(() => breaker.on('statechange', () => {}), RangeError)
    assert.throws(() => breaker.on('stateChange', 'nope'), TypeError)
  })
})

describe('manual states', () => {
  test('forceOpen, disable, metricsOnly and reset, with their events', async () => {
    const { breaker } = small()
    const events = recordEvents(breaker)
    breaker.forceOpen()
    assert.equal(breaker.state, 'forced_open')
    breaker.disable()
    assert.equal(breaker.state, 'disabled')
    await failTimes(breaker, 10)
    assert.equal(breaker.state, 'disabled')
    assert.equal(breaker.metrics().failures, 0, 'a disabled breaker records nothing')
    breaker.metricsOnly()
    await failTimes(breaker, 10)
    assert.equal(breaker.state, 'metrics_only')
    assert.equal(breaker.metrics().failures, 10, 'metrics-only records')
    breaker.reset()
    assert.equal(breaker.state, 'closed')
    assert.equal(breaker.metrics().timesOpened, 1)
    assert.deepEqual(events, [
      'closed->forced_open:forced_open',
      'forced_open->disabled:disabled',
      'disabled->metrics_only:metrics_only',
      'metrics_only->closed:reset',
    ])
  })

  test('metrics() has exactly the documented fields', () => {
    const { breaker } = small()
    assert.deepEqual(Object.keys(breaker.metrics()).sort(), [
      'callsInWindow',
      'consecutiveFailures',
      'failureRate',
      'failures',
      'failuresInWindow',
      'ignored',
      'inFlight',
      'permitted',
      'rejected',
      'slowCallRate',
      'slowCalls',
      'slowCallsInWindow',
      'state',
      'successes',
      'timesOpened',
    ])
  })
})

describe('snapshots', () => {
  test('toJSON → JSON → fromJSON resumes the same decisions in a new breaker', async () => {
    const { clock, breaker } = small()
    await failTimes(breaker, 4)
    clock.advance(400)
    const json = JSON.stringify(breaker)
    const parsed = JSON.parse(json)
    assert.equal(parsed.version, 1)
    assert.equal(parsed.state, 'open')
    assert.equal(parsed.open_remaining_ns, 600e6)

    const clock2 = new ManualClock(5_000_000)
    const copy = CircuitBreaker.fromJSON(json, {
      window: { kind: 'count', size: 4 },
      minimumCalls: 4,
      openDurationMs: 1000,
      clock: clock2,
    })
    assert.equal(copy.state, 'open')
    assert.throws(() => copy.tryAcquire(), (e) => e.retryAfterMs === 600)
    clock2.advance(600)
    assert.equal(copy.state, 'half_open')
    assert.deepEqual(copy.toJSON().window, parsed.window)
  })

  test('restore() accepts the object, emits restored, and returns the breaker', () => {
    const { breaker } = small()
    breaker.forceOpen()
    const snapshot = breaker.toJSON()
    const { breaker: other } = small()
    const events = recordEvents(other)
    assert.equal(other.restore(snapshot), other)
    assert.equal(other.state, 'forced_open')
    assert.deepEqual(events, ['closed->forced_open:restored'])
  })

  test('a bad snapshot throws SnapshotError and changes nothing', async () => {
    const { breaker } = small()
    await failTimes(breaker, 2)
    const before = breaker.toJSON()
    const bad = [
      '{not json',
      '{}',
      { ...before, window: { kind: 'time', buckets: [] } },
      { ...before, window: { kind: 'count', calls: [7] } },
      { ...before, state: 'sideways' },
    ]
    for (const snapshot of bad) {
      assert.throws(
        () => breaker.restore(snapshot),
        (e) => e instanceof SnapshotError && e.code === 'SEAWALL_INVALID_SNAPSHOT' && e.reason === 'malformed',
        JSON.stringify(snapshot),
      )
    }
    assert.throws(
      () => breaker.restore({ ...before, version: 99 }),
      (e) => e instanceof SnapshotError && e.reason === 'unsupported_version' && /version 99/.test(e.message),
    )
    const cyclic = { ...before }
    cyclic.self = cyclic
    assert.throws(() => breaker.restore(cyclic), SnapshotError)
    for (const wrong of [null, 42, undefined, true]) {
      assert.throws(() => breaker.restore(wrong), (e) => e instanceof TypeError && e.code === 'SEAWALL_INVALID_SNAPSHOT')
    }
    assert.deepEqual(breaker.toJSON(), before)
    assert.throws(() => CircuitBreaker.fromJSON('{}'), SnapshotError)
  })
})

describe('ManualClock', () => {
  test('starts where told, advances and sets', () => {
    const clock = new ManualClock(5)
    assert.equal(clock.now(), 5)
    assert.equal(clock.advance(10), 15)
    clock.set(3)
    assert.equal(clock.now(), 3)
    assert.equal(new ManualClock().now(), 0)
  })

  test('refuses NaN, negatives, infinities and non-numbers', () => {
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new ManualClock(bad), RangeError)
      assert.throws(() => new ManualClock().advance(bad), RangeError)
      assert.throws(() => new ManualClock().set(bad), RangeError)
    }
    assert.throws(() => new ManualClock('1'), TypeError)
    assert.throws(() => new ManualClock().advance(null), TypeError)
  })
})

test('exponential backoff defaults: multiplier 2, capped at 10 × openDurationMs, no jitter', async () => {
  const clock = new ManualClock()
  const breaker = new CircuitBreaker({
    window: { kind: 'count', size: 1 },
    minimumCalls: 1,
    halfOpenCalls: 1,
    openDurationMs: 1000,
    backoff: { kind: 'exponential' },
    clock,
  })
  await failTimes(breaker, 1)
  const opens = []
  for (let k = 0; k < 6; k++) {
    try {
      breaker.tryAcquire()
      assert.fail('expected a rejection')
    } catch (e) {
      assert.ok(e instanceof BreakerOpenError, String(e))
      opens.push(e.retryAfterMs)
      clock.advance(e.retryAfterMs)
    }
    await failTimes(breaker, 1)
  }
  assert.deepEqual(opens, [1000, 2000, 4000, 8000, 10_000, 10_000])
})

test('without a clock option the breaker runs on performance.now()', async () => {
  const breaker = new CircuitBreaker()
  assert.equal(await breaker.run(() => 'real clock'), 'real clock')
  assert.equal(breaker.state, 'closed')
})

test('exponential backoff with a seed is reproducible and within its jitter', async () => {
  const options = {
    window: { kind: 'count', size: 1 },
    minimumCalls: 1,
    halfOpenCalls: 1,
    openDurationMs: 1000,
    backoff: { kind: 'exponential', multiplier: 2, maxOpenDurationMs: 10_000, jitter: 0.5 },
    seed: 42,
  }
  const retryAfter = (breaker) => {
    try {
      breaker.tryAcquire()
    } catch (e) {
      assert.ok(e instanceof BreakerOpenError)
      return e.retryAfterMs
    }
    return assert.fail('expected a rejection')
  }
  const retryAfters = async () => {
    const clock = new ManualClock()
    const breaker = new CircuitBreaker({ ...options, clock })
    const out = []
    await failTimes(breaker, 1)
    for (let k = 0; k < 3; k++) {
      out.push(retryAfter(breaker))
      clock.advance(out.at(-1))
      await failTimes(breaker, 1) // the probe fails: open again, for longer
    }
    return out
  }
  const a = await retryAfters()
  const b = await retryAfters()
  assert.deepEqual(a, b)
  a.forEach((ms, k) => {
    const full = 1000 * 2 ** k
    assert.ok(ms > full * 0.5 - 1e-9 && ms <= full, `open duration ${ms} for re-open ${k}`)
  })
})
