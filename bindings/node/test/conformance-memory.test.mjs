// Replays every conformance vector in tests/conformance/memory/ (format: tests/conformance/README.md,
// section "Memory watchdog") through the public `WatchdogPolicy` of the `seawall` package, the
// sans-IO policy `MemoryWatchdog` drives. The vectors are shared with the Rust and Python suites.
//
// Strict like the other replayers: an unknown op, key, action kind or counter fails rather than
// being skipped, since a misspelt `expect` would otherwise be a check that cannot fail. Within a
// file, replay stops at the first disagreement (later steps assume it).

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { WatchdogPolicy } from 'seawall'

const VECTORS = fileURLToPath(new URL('../../../tests/conformance/memory/', import.meta.url))
/** Relative tolerance of computed numbers (the README's). */
const TOLERANCE = 1e-9

const CONFIG_KEYS = [
  'interval_ms',
  'alert_interval_ms',
  'warn_percent',
  'act_percent',
  'spike_percent_per_minute',
  'trend_window_ms',
  'trend_min_samples',
  'trend_horizon_ms',
  'cooldown_ms',
  'snapshot_headroom_factor',
  'act_mode',
  'drain_timeout_ms',
  'exit_code',
  'max_dump_files',
  'max_dump_bytes',
]

// Core fields that are durations: JS spells them with `Ms`.
const DURATION_FIELDS = new Set(['interval', 'alert_interval', 'trend_window', 'trend_horizon', 'cooldown', 'drain_timeout'])

const STEP_KEYS = {
  sample: ['op', 't', 'usage', 'limit', 'heap_used', 'heap_limit', 'expect'],
  rotate_dumps: ['op', 'existing', 'incoming_bytes', 'expect'],
  counts: ['op', 'expect'],
}

const EXPECT_KEYS = ['level', 'percent', 'basis', 'growth_percent_per_minute', 'trend', 'next_sample_ms', 'actions']
const TREND_KEYS = ['bytes_per_second', 'r2', 'time_to_limit_ms', 'samples']
const ACTION_KEYS = {
  warn: ['kind', 'percent', 'basis'],
  recovered: ['kind', 'percent', 'basis'],
  act: ['kind', 'percent', 'basis'],
  spike: ['kind', 'percent_per_minute', 'basis'],
  leak_trend: ['kind', 'trend'],
  evidence: ['kind', 'evidence', 'trigger', 'free_bytes', 'needed_bytes'],
  restart: ['kind', 'drain_timeout_ms', 'exit_code'],
}
const COUNTERS = {
  samples: 'samples',
  warnings: 'warnings',
  acts: 'acts',
  spikes: 'spikes',
  leak_trends: 'leakTrends',
  heap_snapshots: 'heapSnapshots',
  profiles: 'profiles',
  restarts: 'restarts',
}

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())

/** A core field name (`alert_interval`) as the Node binding spells it (`alertIntervalMs`). */
function jsField(field) {
  return DURATION_FIELDS.has(field) ? `${camel(field)}Ms` : camel(field)
}

function checkKeys(obj, allowed, what) {
  assert.ok(obj !== null && typeof obj === 'object' && !Array.isArray(obj), `${what} must be an object`)
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new Error(`unknown key ${JSON.stringify(key)} in ${what} (allowed: ${allowed.join(', ')})`)
    }
  }
}

/** A vector's snake_case config as WatchdogPolicy options; values untouched, but the act mode's. */
function toOptions(config) {
  checkKeys(config, CONFIG_KEYS, 'config')
  const options = Object.fromEntries(Object.entries(config).map(([k, v]) => [camel(k), v]))
  // The vectors spell the mode as the core does; JavaScript options say 'eventOnly'. Anything
  // else goes through unchanged so that a bad mode reaches the library as written.
  if (config.act_mode === 'event_only') options.actMode = 'eventOnly'
  return options
}

function checkConfigError(options, expected) {
  checkKeys(expected, ['field', 'kind'], 'expect_error')
  const { field, kind } = expected
  assert.ok(kind === 'range' || kind === 'type', 'expect_error.kind must be "range" or "type"')
  const js = jsField(field)
  let error
  try {
    new WatchdogPolicy(options)
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
  assert.ok(error.message.startsWith(js), `the message does not start with ${js}: ${error.message}`)
}

function close(what, expected, actual) {
  assert.equal(typeof expected, 'number', `expected ${what} must be a number`)
  assert.equal(typeof actual, 'number', `${what}: got ${actual}`)
  assert.ok(
    Math.abs(expected - actual) <= TOLERANCE * Math.max(Math.abs(expected), 1),
    `expected ${what} ${expected}, got ${actual}`,
  )
}

function nullableNumber(what, expected, actual) {
  if (expected === null) {
    assert.equal(actual, null, `expected no ${what}, got ${actual}`)
  } else {
    assert.notEqual(actual, null, `expected ${what} ${expected}, got none`)
    close(what, expected, actual)
  }
}

function checkTrend(expected, actual) {
  if (expected === null) {
    assert.equal(actual, null, `expected no trend, got ${JSON.stringify(actual)}`)
    return
  }
  assert.notEqual(actual, null, `expected trend ${JSON.stringify(expected)}, got none`)
  checkKeys(expected, TREND_KEYS, 'trend')
  assert.deepEqual(Object.keys(actual).sort(), ['bytesPerSecond', 'r2', 'samples', 'timeToLimitMs'])
  if ('bytes_per_second' in expected) close('trend.bytes_per_second', expected.bytes_per_second, actual.bytesPerSecond)
  if ('r2' in expected) close('trend.r2', expected.r2, actual.r2)
  if ('time_to_limit_ms' in expected) nullableNumber('trend.time_to_limit_ms', expected.time_to_limit_ms, actual.timeToLimitMs)
  if ('samples' in expected) close('trend.samples', expected.samples, actual.samples)
}

function checkAction(expected, actual) {
  assert.ok(expected !== null && typeof expected === 'object', 'an action must be an object')
  const allowed = ACTION_KEYS[expected.kind]
  assert.ok(allowed, `unknown action kind ${JSON.stringify(expected.kind)}`)
  checkKeys(expected, allowed, `a ${expected.kind} action`)
  assert.equal(actual.kind, expected.kind, `expected a ${expected.kind} action, got ${JSON.stringify(actual)}`)
  // The action carries exactly the fields of its kind, camel-cased.
  assert.deepEqual(Object.keys(actual).sort(), allowed.map(camel).sort(), `fields of ${JSON.stringify(actual)}`)
  for (const key of allowed) {
    if (key === 'kind' || !(key in expected)) continue
    const got = actual[camel(key)]
    if (key === 'trend') checkTrend(expected.trend, got)
    else if (typeof expected[key] === 'string') assert.equal(got, expected[key], `${key}`)
    else close(key, expected[key], got)
  }
}

function checkAssessment(expected, a) {
  checkKeys(expected, EXPECT_KEYS, 'expect')
  assert.ok('level' in expected && 'actions' in expected, 'a sample expect needs `level` and `actions`')
  assert.equal(a.level, expected.level, 'level')
  if ('percent' in expected) close('percent', expected.percent, a.percent)
  if ('basis' in expected) assert.equal(a.basis, expected.basis, 'basis')
  if ('growth_percent_per_minute' in expected) {
    nullableNumber('growth_percent_per_minute', expected.growth_percent_per_minute, a.growthPercentPerMinute)
  }
  if ('trend' in expected) checkTrend(expected.trend, a.trend)
  if ('next_sample_ms' in expected) close('next_sample_ms', expected.next_sample_ms, a.nextSampleMs)
  assert.ok(Array.isArray(expected.actions), '`actions` must be a list')
  assert.equal(
    a.actions.length,
    expected.actions.length,
    `expected actions ${JSON.stringify(expected.actions)}, got ${JSON.stringify(a.actions)}`,
  )
  expected.actions.forEach((want, i) => {
    try {
      checkAction(want, a.actions[i])
    } catch (e) {
      e.message = `action ${i}: ${e.message}`
      throw e
    }
  })
}

class Replay {
  #policy
  #nowMs = 0

  constructor(options) {
    this.#policy = new WatchdogPolicy(options)
  }

  step(step) {
    assert.ok(step !== null && typeof step === 'object', 'a step must be an object')
    const keys = STEP_KEYS[step.op]
    assert.ok(keys, `unknown op ${JSON.stringify(step.op)}`)
    checkKeys(step, keys, `a ${step.op} step`)
    this[step.op](step)
  }

  sample(step) {
    assert.equal(typeof step.t, 'number', '`t` must be a number of milliseconds')
    assert.ok(step.t >= this.#nowMs, `\`t\` went backwards, from ${this.#nowMs} to ${step.t} ms`)
    this.#nowMs = step.t
    for (const key of ['usage', 'limit']) assert.ok(Number.isInteger(step[key]), `a sample step needs a whole \`${key}\``)
    const a = this.#policy.observe({
      nowMs: step.t,
      usageBytes: step.usage,
      limitBytes: step.limit,
      heapUsedBytes: step.heap_used,
      heapLimitBytes: step.heap_limit,
    })
    assert.ok('expect' in step, 'a sample step needs `expect`')
    checkAssessment(step.expect, a)
  }

  rotate_dumps(step) {
    assert.ok(Array.isArray(step.existing), '`existing` must be a list')
    const existing = step.existing.map((f) => {
      checkKeys(f, ['name', 'bytes', 'created'], 'a dump file')
      return f
    })
    const plan = this.#policy.planDumpRotation(existing, step.incoming_bytes)
    checkKeys(step.expect, ['delete', 'fits'], 'expect')
    assert.deepEqual(plan.delete, step.expect.delete, 'files deleted')
    assert.equal(plan.fits, step.expect.fits, 'fits')
  }

  counts(step) {
    checkKeys(step.expect, Object.keys(COUNTERS), 'expect')
    const counts = this.#policy.counts()
    for (const [key, want] of Object.entries(step.expect)) {
      assert.equal(counts[COUNTERS[key]], want, `counter ${key}`)
    }
  }
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

test('the memory conformance directory holds at least 20 vectors', () => {
  assert.ok(files.length >= 20, `${files.length} conformance vectors in ${VECTORS}`)
})

for (const file of files) {
  test(`memory conformance: ${file}`, () => {
    const doc = JSON.parse(readFileSync(VECTORS + file, 'utf8'))
    checkKeys(doc, ['name', 'description', 'config', 'steps', 'expect_error'], 'the file')
    assert.equal(typeof doc.name, 'string', 'the file needs a string `name`')
    const options = toOptions(doc.config ?? {})
    if ('expect_error' in doc) {
      assert.ok(!('steps' in doc), 'a file has either `steps` or `expect_error`, not both')
      checkConfigError(options, doc.expect_error)
      return
    }
    assert.ok(Array.isArray(doc.steps), 'the file needs `steps` (a list) or `expect_error`')
    const replay = new Replay(options)
    for (const [i, step] of doc.steps.entries()) {
      try {
        replay.step(step)
      } catch (e) {
        e.message = `step ${i} (${step?.op}): ${e.message}`
        throw e
      }
    }
  })
}
