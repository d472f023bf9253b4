// Replays every conformance vector in tests/conformance/breaker/ (format:
// tests/conformance/README.md) through the public API of the `seawall` package, on a
// ManualClock. The vectors are shared with the Rust and Python suites; a new file is picked up
// here without any change.
//
// Like the Rust replayer, this one is strict about the files: an unknown op or key fails
// rather than being skipped, since a misspelt `expect` would otherwise be a check that cannot
// fail. Within a file, replay stops at the first disagreement (later steps assume it).

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { BreakerOpenError, CircuitBreaker, ManualClock, SnapshotError } from 'seawall'

const VECTORS = fileURLToPath(new URL('../../../tests/conformance/breaker/', import.meta.url))
const RATE_TOLERANCE = 1e-9

// Core fields that are durations: JS spells them with `Ms` (open_duration → openDurationMs).
const DURATION_FIELDS = new Set([
  'slow_call_duration',
  'window.duration',
  'open_duration',
  'backoff.max_open_duration',
  'max_half_open_duration',
])

const METRICS = {
  state: 'state',
  failure_rate: 'failureRate',
  slow_call_rate: 'slowCallRate',
  calls_in_window: 'callsInWindow',
  failures_in_window: 'failuresInWindow',
  slow_calls_in_window: 'slowCallsInWindow',
  permitted: 'permitted',
  successes: 'successes',
  failures: 'failures',
  ignored: 'ignored',
  slow_calls: 'slowCalls',
  rejected: 'rejected',
  in_flight: 'inFlight',
  times_opened: 'timesOpened',
  consecutive_failures: 'consecutiveFailures',
}

const STEP_KEYS = {
  acquire: ['id', 'expect', 'reason', 'retry_after_ms', 'retry_after_ms_between'],
  record: ['id', 'outcome'],
  release: ['id'],
  call: ['outcome', 'count', 'expect'],
  state: ['expect'],
  metrics: ['expect'],
  events: ['expect'],
  force_open: [],
  disable: [],
  metrics_only: [],
  reset: [],
  snapshot: ['expect', 'save_as'],
  restore: ['snapshot', 'from', 'fresh', 'expect_error'],
}

const CONFIG_KEYS = [
  'failure_rate_threshold',
  'slow_call_rate_threshold',
  'slow_call_duration_ms',
  'window',
  'minimum_calls',
  'consecutive_failures',
  'open_duration_ms',
  'backoff',
  'half_open_calls',
  'max_half_open_duration_ms',
  'seed',
]

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

/** A core field name (`backoff.max_open_duration`) as the Node binding spells it. */
function jsField(field) {
  const js = field.split('.').map(camel).join('.')
  return DURATION_FIELDS.has(field) ? `${js}Ms` : js
}

function checkKeys(obj, allowed, what) {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new Error(`unknown key ${JSON.stringify(key)} in ${what} (allowed: ${allowed.join(', ')})`)
    }
  }
}

/** A vector's snake_case config as CircuitBreaker options; values pass through untouched. */
function toOptions(config) {
  assert.ok(config !== null && typeof config === 'object' && !Array.isArray(config), 'config must be an object')
  checkKeys(config, CONFIG_KEYS, 'config')
  const options = {}
  for (const [key, value] of Object.entries(config)) {
    if ((key === 'window' || key === 'backoff') && value !== null && typeof value === 'object') {
      options[camel(key)] = Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), v]))
    } else {
      options[camel(key)] = value
    }
  }
  return options
}

// Thrown by calls whose outcome is `ignored`; the breaker's `ignore` option recognises it.
const IGNORE_ME = new Error('ignored outcome')

class Replay {
  constructor(options) {
    this.clock = new ManualClock(0)
    this.options = { ...options, clock: this.clock, ignore: (e) => e === IGNORE_ME }
    this.permits = new Map()
    this.saved = new Map()
    this.nowMs = 0
    this.build()
  }

  // Each breaker has its own event log, as each listener only hears its own breaker.
  build() {
    const log = []
    this.breaker = new CircuitBreaker(this.options)
    this.breaker.on('stateChange', (e) => log.push(`${e.from}->${e.to} (${e.reason})`))
    this.log = log
  }

  async step(step) {
    assert.ok(step !== null && typeof step === 'object', 'a step must be an object')
    const { op } = step
    if (!(op in STEP_KEYS)) throw new Error(`unknown op ${JSON.stringify(op)}`)
    checkKeys(step, ['op', 't', ...STEP_KEYS[op]], op)
    if (step.t !== undefined) {
      assert.equal(typeof step.t, 'number', '`t` must be a number of milliseconds')
      assert.ok(step.t >= this.nowMs, `\`t\` went backwards, from ${this.nowMs} to ${step.t} ms`)
      this.clock.set(step.t)
      this.nowMs = step.t
    }
    switch (op) {
      case 'acquire':
        return this.acquire(step)
      case 'record':
        return this.settle(this.takePermit(step.id), step.outcome)
      case 'release':
        return this.takePermit(step.id).ignore()
      case 'call':
        return this.call(step)
      case 'state':
        return assert.equal(this.breaker.state, step.expect, 'state')
      case 'metrics':
        return this.metrics(step.expect)
      case 'events': {
        assert.ok(Array.isArray(step.expect), 'events.expect must be a list')
        const wanted = step.expect.map((e) => {
          checkKeys(e, ['from', 'to', 'reason'], 'an expected event')
          return `${e.from}->${e.to} (${e.reason})`
        })
        const heard = this.log.splice(0)
        return assert.deepEqual(heard, wanted, 'events')
      }
      case 'force_open':
        return this.breaker.forceOpen()
      case 'disable':
        return this.breaker.disable()
      case 'metrics_only':
        return this.breaker.metricsOnly()
      case 'reset':
        return this.breaker.reset()
      case 'snapshot':
        return this.snapshot(step)
      case 'restore':
        return this.restore(step)
    }
  }

  acquire(step) {
    let permit
    let rejection
    try {
      permit = this.breaker.tryAcquire()
    } catch (e) {
      if (!(e instanceof BreakerOpenError)) throw e
      rejection = e
    }
    if (step.expect === 'permitted') {
      if (rejection) {
        assert.fail(`expected permitted, got rejected (${rejection.reason}, retry after ${rejection.retryAfterMs})`)
      }
      for (const key of ['reason', 'retry_after_ms', 'retry_after_ms_between']) {
        assert.ok(!(key in step), `\`${key}\` only applies to a rejection`)
      }
      assert.equal(typeof step.id, 'string', 'a permitted acquire needs an `id`')
      assert.ok(!this.permits.has(step.id), `id ${step.id} is already held`)
      this.permits.set(step.id, permit)
      return
    }
    assert.equal(step.expect, 'rejected', 'acquire.expect must be "permitted" or "rejected"')
    if (permit) assert.fail('expected rejected, got permitted')
    assert.equal(rejection.code, 'SEAWALL_BREAKER_OPEN')
    if ('reason' in step) assert.equal(rejection.reason, step.reason, 'rejection reason')
    if ('retry_after_ms' in step) {
      if (step.retry_after_ms === null) {
        assert.equal(rejection.retryAfterMs, null, 'retry_after_ms')
      } else {
        assert.equal(typeof rejection.retryAfterMs, 'number', `expected retry_after_ms ${step.retry_after_ms}, got null`)
        // Exact to the nanosecond: whole milliseconds are exact in both representations.
        assert.equal(
          Math.round(rejection.retryAfterMs * 1e6),
          Math.round(step.retry_after_ms * 1e6),
          `expected retry_after_ms ${step.retry_after_ms}, got ${rejection.retryAfterMs}`,
        )
      }
    }
    if ('retry_after_ms_between' in step) {
      const [lo, hi] = step.retry_after_ms_between
      const ms = rejection.retryAfterMs
      assert.ok(ms !== null && lo <= ms && ms <= hi, `expected retry_after_ms in [${lo}, ${hi}], got ${ms}`)
    }
  }

  takePermit(id) {
    const permit = this.permits.get(id)
    assert.ok(permit, `no permit is held under id ${JSON.stringify(id)}`)
    this.permits.delete(id)
    return permit
  }

  settle(permit, outcome) {
    if (outcome === 'success') permit.success()
    else if (outcome === 'failure') permit.failure()
    else if (outcome === 'ignored') permit.ignore()
    else assert.fail(`outcome must be success, failure or ignored, not ${JSON.stringify(outcome)}`)
  }

  // Calls go through run(), so classification (a thrown error is a failure, `ignore`) is
  // replayed too. The manual clock does not move while run() awaits: duration 0.
  async call(step) {
    const outcomes = {
      success: () => 'ok',
      failure: () => {
        throw new Error('call failed')
      },
      ignored: () => {
        throw IGNORE_ME
      },
    }
    const fn = outcomes[step.outcome]
    assert.ok(fn, `outcome must be success, failure or ignored, not ${JSON.stringify(step.outcome)}`)
    const count = step.count ?? 1
    assert.ok(Number.isInteger(count) && count >= 0, 'call.count must be a non-negative integer')
    const expected = step.expect ?? 'permitted'
    assert.ok(expected === 'permitted' || expected === 'rejected', 'call.expect must be "permitted" or "rejected"')
    for (let i = 1; i <= count; i++) {
      let ran = false
      try {
        await this.breaker.run(() => {
          ran = true
          return fn()
        })
      } catch (e) {
        if (e instanceof BreakerOpenError) {
          if (expected === 'permitted') assert.fail(`call ${i} of ${count}: expected permitted, got rejected (${e.reason})`)
          continue
        }
        if (!ran) throw e
      }
      if (expected === 'rejected') assert.fail(`call ${i} of ${count}: expected rejected, got permitted`)
    }
  }

  metrics(expected) {
    assert.ok(expected !== null && typeof expected === 'object', 'metrics.expect must be an object')
    const m = this.breaker.metrics()
    const wrong = []
    for (const [key, want] of Object.entries(expected)) {
      const jsKey = METRICS[key]
      if (jsKey === undefined) throw new Error(`unknown metric ${JSON.stringify(key)}`)
      const got = m[jsKey]
      const same =
        key === 'failure_rate' || key === 'slow_call_rate' ? Math.abs(got - want) <= RATE_TOLERANCE : got === want
      if (!same) wrong.push(`${key}: expected ${want}, got ${got}`)
    }
    assert.deepEqual(wrong, [], `metrics differ: ${wrong.join('; ')}`)
  }

  snapshot(step) {
    const actual = this.breaker.toJSON()
    if ('expect' in step) assert.deepEqual(actual, step.expect, 'snapshot')
    if ('save_as' in step) {
      assert.equal(typeof step.save_as, 'string', 'snapshot.save_as must be a string')
      this.saved.set(step.save_as, actual)
    }
  }

  restore(step) {
    let source
    if ('snapshot' in step && !('from' in step)) {
      source = step.snapshot
    } else if ('from' in step && !('snapshot' in step)) {
      source = this.saved.get(step.from)
      assert.ok(source, `no snapshot was saved as ${JSON.stringify(step.from)}`)
    } else {
      assert.fail('restore needs `snapshot` (an object) or `from` (a name)')
    }
    assert.ok(source !== null && typeof source === 'object', 'restore.snapshot must be an object')
    if (step.fresh === true) {
      this.build()
    } else {
      assert.ok(step.fresh === undefined || step.fresh === false, 'restore.fresh must be a boolean')
    }
    if (step.expect_error === true) {
      const before = this.breaker.toJSON()
      assert.throws(() => this.breaker.restore(source), SnapshotError)
      assert.deepEqual(this.breaker.toJSON(), before, 'a failed restore changed the breaker')
    } else {
      assert.ok(step.expect_error === undefined || step.expect_error === false, 'restore.expect_error must be a boolean')
      this.breaker.restore(source)
    }
  }
}

function checkConfigError(options, expected) {
  checkKeys(expected, ['field', 'kind'], 'expect_error')
  const { field, kind } = expected
  assert.ok(kind === 'range' || kind === 'type', 'expect_error.kind must be "range" or "type"')
  const js = jsField(field)
  let error
  try {
    new CircuitBreaker(options)
  } catch (e) {
    error = e
  }
  assert.ok(error, `expected a ${kind} error on ${js}, but the config was accepted`)
  assert.ok(
    error instanceof (kind === 'range' ? RangeError : TypeError),
    `expected a ${kind === 'range' ? 'RangeError' : 'TypeError'} on ${js}, got ${error.name}: ${error.message}`,
  )
  assert.equal(error.code, 'SEAWALL_INVALID_CONFIG')
  assert.equal(error.field, js, `error names field ${error.field}: ${error.message}`)
  assert.ok(error.message.includes(js), `the message does not name ${js}: ${error.message}`)
}

const files = (() => {
  try {
    return readdirSync(VECTORS)
      .filter((f) => f.endsWith('.json'))
      .sort()
  } catch {
    return []
  }
})()

test('the conformance directory holds vectors', () => {
  assert.ok(files.length > 0, `no conformance vectors in ${VECTORS}: an empty directory must not pass`)
})

for (const file of files) {
  test(`conformance: ${file}`, async () => {
    const doc = JSON.parse(readFileSync(VECTORS + file, 'utf8'))
    checkKeys(doc, ['name', 'description', 'config', 'steps', 'expect_error'], 'the file')
    assert.equal(typeof doc.name, 'string', 'the file needs a string `name`')
    const options = toOptions(doc.config)
    if ('expect_error' in doc) {
      assert.ok(!('steps' in doc), 'a file has either `steps` or `expect_error`, not both')
      checkConfigError(options, doc.expect_error)
      return
    }
    assert.ok(Array.isArray(doc.steps), 'the file needs `steps` (a list) or `expect_error`')
    const replay = new Replay(options)
    for (const [i, step] of doc.steps.entries()) {
      try {
        await replay.step(step)
      } catch (e) {
        e.message = `step ${i} (${step?.op}): ${e.message}`
        throw e
      }
    }
  })
}
