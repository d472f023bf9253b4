// Replays every conformance vector in tests/conformance/pool/ (format: tests/conformance/README.md,
// section "Pools") through the public `PoolEngine` of the `seawall` package, driven the way an
// adapter drives it. The vectors are shared with the Rust and Python suites.
//
// Strict like the other replayers: an unknown op, key, action, event or error kind fails rather
// than being skipped, since a misspelt `expect` would otherwise be a check that cannot fail.
// Within a file, replay stops at the first disagreement (later steps assume it).
//
// Slots are named by the files: a name is bound to the engine's slot id the first time an
// expected action mentions it, and must match afterwards (one slot never gets two names).
// Callers are named by the `id` given to `acquire`; a caller's lease stays under its id after
// it is released, so that a repeated or stale release can be tried.

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import {
  Budget,
  BudgetExhaustedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  ManualClock,
  PoolClosedError,
  PoolEngine,
  PoolOverloadedError,
  PoolTimeoutError,
  TimeoutPolicy,
} from 'seawall'

const VECTORS = fileURLToPath(new URL('../../../tests/conformance/pool/', import.meta.url))
const TOLERANCE_MS = 1e-6

// Core fields that are durations: JS spells them with `Ms`.
const DURATION_FIELDS = new Set([
  'acquire_timeout',
  'create_timeout',
  'idle_timeout',
  'max_lifetime',
  'validate_after',
  'leak_threshold',
  'create_backoff.base',
  'create_backoff.cap',
])

const CONFIG_KEYS = [
  'max_size',
  'min_idle',
  'max_waiters',
  'acquire_timeout_ms',
  'create_timeout_ms',
  'idle_timeout_ms',
  'max_lifetime_ms',
  'lifetime_jitter',
  'validate_after_ms',
  'idle_order',
  'leak_threshold_ms',
  'create_backoff',
  'breaker',
  'seed',
]

// The pool's breaker takes the keys of a breaker vector's config.
const BREAKER_KEYS = [
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

const STEP_KEYS = {
  acquire: ['id', 'budget_ms', 'expect'],
  actions: ['expect'],
  created: ['slot'],
  create_failed: ['slot', 'error'],
  validated: ['slot', 'ok'],
  release: ['id', 'broken', 'expect'],
  cancel: ['id', 'expect'],
  timeout: [],
  next_timeout: ['expect_ms', 'expect_ms_between'],
  resize: ['max_size'],
  drain: ['deadline_ms'],
  metrics: ['expect'],
  events: ['expect'],
}

const ERROR_KINDS = ['timeout', 'overloaded', 'connect_failed', 'database_unavailable', 'budget_exhausted', 'closed']
const DESTROY_REASONS = ['broken', 'invalid', 'idle_timeout', 'expired', 'resized', 'closed', 'create_timed_out', 'stale']

const METRICS = {
  idle: 'idle',
  used: 'used',
  creating: 'creating',
  max: 'max',
  idle_max: 'idleMax',
  idle_min: 'idleMin',
  pending_requests: 'pendingRequests',
  timeouts: 'timeouts',
  acquired: 'acquired',
  released: 'released',
  overloaded: 'overloaded',
  unavailable: 'unavailable',
  created: 'created',
  create_failures: 'createFailures',
  destroyed: 'destroyed',
  leaks: 'leaks',
  breaker_state: 'breakerState',
}

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

/** A core field name (`create_backoff.base`) as the Node binding spells it (`createBackoff.baseMs`). */
function jsField(field) {
  const js = field.split('.').map(camel).join('.')
  return DURATION_FIELDS.has(field) ? `${js}Ms` : js
}

function checkKeys(obj, allowed, what) {
  assert.ok(obj !== null && typeof obj === 'object' && !Array.isArray(obj), `${what} must be an object`)
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new Error(`unknown key ${JSON.stringify(key)} in ${what} (allowed: ${allowed.join(', ')})`)
    }
  }
}

/** Camel-cased keys, values untouched (wrong types must reach the library as written). */
function camelObject(obj) {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [camel(k), v]))
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** A vector's snake_case config as PoolEngine options. */
function toOptions(config) {
  checkKeys(config, CONFIG_KEYS, 'config')
  const options = camelObject(config)
  if (isObject(config.create_backoff)) {
    checkKeys(config.create_backoff, ['base_ms', 'cap_ms'], 'config.create_backoff')
    options.createBackoff = camelObject(config.create_backoff)
  }
  if (isObject(config.breaker)) {
    checkKeys(config.breaker, BREAKER_KEYS, 'config.breaker')
    const breaker = camelObject(config.breaker)
    for (const key of ['window', 'backoff']) {
      if (isObject(config.breaker[key])) breaker[key] = camelObject(config.breaker[key])
    }
    options.breaker = breaker
  }
  return options
}

function checkConfigError(options, expected) {
  checkKeys(expected, ['field', 'kind'], 'expect_error')
  const { field, kind } = expected
  assert.ok(kind === 'range' || kind === 'type', 'expect_error.kind must be "range" or "type"')
  const js = jsField(field)
  let error
  try {
    new PoolEngine(options)
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

/** The conformance name of a pool error. */
function errorKind(e) {
  if (e instanceof PoolTimeoutError) return 'timeout'
  if (e instanceof PoolOverloadedError) return 'overloaded'
  if (e instanceof ConnectFailedError) return 'connect_failed'
  if (e instanceof DatabaseUnavailableError) return 'database_unavailable'
  if (e instanceof BudgetExhaustedError) return 'budget_exhausted'
  if (e instanceof PoolClosedError) return 'closed'
  return `not a pool error (${e})`
}

function known(value, set, what) {
  assert.ok(set.includes(value), `unknown ${what} ${JSON.stringify(value)} (one of: ${set.join(', ')})`)
}

function bool(step, key, fallback) {
  if (!(key in step)) return fallback
  assert.equal(typeof step[key], 'boolean', `${step.op}.${key} must be a boolean`)
  return step[key]
}

class Replay {
  constructor(options) {
    this.engine = new PoolEngine(options)
    this.clock = new ManualClock(0)
    this.nowMs = 0
    /** Slot names and engine ids, both ways. */
    this.slotIds = new Map()
    this.slotNames = new Map()
    /** The caller behind each waiter, and each caller's latest waiter and lease. */
    this.callers = new Map()
    this.waiters = new Map()
    this.leases = new Map()
    // Every scenario starts with a timer at 0, which opens the `minIdle` connections.
    this.engine.handleTimeout(0)
  }

  step(step) {
    assert.ok(isObject(step), 'a step must be an object')
    const { op } = step
    if (!(op in STEP_KEYS)) throw new Error(`unknown op ${JSON.stringify(op)}`)
    checkKeys(step, ['op', 't', ...STEP_KEYS[op]], op)
    if (step.t !== undefined) {
      assert.equal(typeof step.t, 'number', '`t` must be a number of milliseconds')
      assert.ok(step.t >= this.nowMs, `\`t\` went backwards, from ${this.nowMs} to ${step.t} ms`)
      this.clock.set(step.t)
      this.nowMs = step.t
    }
    const now = this.nowMs
    switch (op) {
      case 'acquire':
        return this.acquire(step)
      case 'actions':
        return this.actions(step.expect)
      case 'created':
        return this.engine.handleCreated(this.bound(step.slot), now)
      case 'create_failed':
        assert.equal(typeof step.error, 'string', 'create_failed needs `error` (a string)')
        return this.engine.handleCreateFailed(this.bound(step.slot), step.error, now)
      case 'validated':
        assert.equal(typeof step.ok, 'boolean', 'validated needs `ok` (a boolean)')
        return this.engine.handleValidated(this.bound(step.slot), step.ok, now)
      case 'release': {
        const lease = this.leases.get(step.id)
        assert.ok(lease, `no lease was ever given to ${JSON.stringify(step.id)}`)
        const accepted = this.engine.release(lease, { broken: bool(step, 'broken', false), nowMs: now })
        return assert.equal(accepted, bool(step, 'expect', true), 'release accepted')
      }
      case 'cancel': {
        const waiter = this.waiters.get(step.id)
        assert.ok(waiter !== undefined, `${JSON.stringify(step.id)} never waited`)
        return assert.equal(this.engine.cancel(waiter, now), bool(step, 'expect', true), 'cancel accepted')
      }
      case 'timeout':
        return this.engine.handleTimeout(now)
      case 'next_timeout':
        return this.nextTimeout(step)
      case 'resize':
        assert.ok(Number.isInteger(step.max_size), 'resize.max_size must be an integer')
        return this.engine.resize(step.max_size, now)
      case 'drain':
        assert.equal(typeof step.deadline_ms, 'number', 'drain.deadline_ms must be a time in ms')
        return this.engine.drain(now, step.deadline_ms)
      case 'metrics':
        return this.metrics(step.expect)
      case 'events':
        return this.events(step.expect)
    }
  }

  /** The engine id of a slot name an expected action already bound. */
  bound(name) {
    assert.equal(typeof name, 'string', 'a slot name must be a string')
    const id = this.slotIds.get(name)
    assert.ok(id !== undefined, `slot ${JSON.stringify(name)} is not bound yet (no expected action has named it)`)
    return id
  }

  /** Matches `name` with the engine's slot `id`, binding a fresh name to a fresh slot. */
  bind(name, id) {
    const known = this.slotIds.get(name)
    if (known !== undefined) return known === id
    if (this.slotNames.has(id)) return false
    this.slotIds.set(name, id)
    this.slotNames.set(id, name)
    return true
  }

  slotName(id) {
    return this.slotNames.get(id) ?? `<unnamed slot ${id}>`
  }

  acquire(step) {
    assert.equal(typeof step.id, 'string', 'acquire needs an `id`')
    const expected = step.expect
    let expectedError
    if (isObject(expected)) {
      checkKeys(expected, ['error'], 'acquire.expect')
      known(expected.error, ERROR_KINDS, 'error kind')
      expectedError = expected.error
    } else {
      assert.ok(expected === 'ready' || expected === 'wait', 'acquire.expect must be "ready", "wait" or {"error": kind}')
    }
    let budget
    if ('budget_ms' in step) {
      assert.equal(typeof step.budget_ms, 'number', 'acquire.budget_ms must be a number')
      // The default timeout policy, explicitly: a process-wide one set elsewhere cannot change a vector.
      budget = new Budget({ timeoutMs: step.budget_ms, policy: new TimeoutPolicy(), clock: this.clock })
    }
    let result
    let error
    try {
      result = this.engine.acquire({ nowMs: this.nowMs, budget })
    } catch (e) {
      error = e
    }
    const got = error
      ? `error ${errorKind(error)} (${error.message})`
      : result.kind === 'ready'
        ? `ready (slot ${this.slotName(result.lease.slot)})`
        : 'wait'
    const mismatch = `expected ${JSON.stringify(expected)}, got ${got}`
    if (expectedError !== undefined) {
      assert.ok(error && errorKind(error) === expectedError, mismatch)
      return
    }
    assert.ok(!error && result.kind === expected, mismatch)
    if (result.kind === 'ready') {
      this.leases.set(step.id, result.lease)
    } else {
      this.callers.set(result.waiter, step.id)
      this.waiters.set(step.id, result.waiter)
    }
  }

  actions(expected) {
    assert.ok(Array.isArray(expected), 'actions.expect must be a list')
    const wanted = expected.map(parseAction)
    const actual = []
    for (let a = this.engine.pollAction(); a !== null; a = this.engine.pollAction()) actual.push(a)
    let ok = wanted.length === actual.length
    for (let i = 0; ok && i < wanted.length; i++) ok = this.matchAction(wanted[i], actual[i])
    assert.ok(ok, `expected actions ${JSON.stringify(expected)}, got [${actual.map((a) => this.showAction(a)).join(', ')}]`)
  }

  matchAction(w, a) {
    if (w.kind !== a.kind) return false
    switch (a.kind) {
      case 'create':
      case 'validate':
        return this.bind(w.slot, a.slot)
      case 'destroy':
        return w.reason === a.reason && this.bind(w.slot, a.slot)
      case 'hand':
        if (this.callers.get(a.waiter) !== w.caller || !this.bind(w.slot, a.lease.slot)) return false
        this.leases.set(w.caller, a.lease)
        return true
      case 'fail':
        return this.callers.get(a.waiter) === w.caller && errorKind(a.error) === w.error
    }
    return false
  }

  showAction(a) {
    const caller = (w) => this.callers.get(w) ?? `<unknown waiter ${w}>`
    switch (a.kind) {
      case 'create':
      case 'validate':
        return `{${a.kind}: ${this.slotName(a.slot)}}`
      case 'destroy':
        return `{destroy: ${this.slotName(a.slot)}, reason: ${a.reason}}`
      case 'hand':
        return `{hand: ${caller(a.waiter)}, slot: ${this.slotName(a.lease.slot)}}`
      default:
        return `{fail: ${caller(a.waiter)}, error: ${errorKind(a.error)} (${a.error.message})}`
    }
  }

  nextTimeout(step) {
    const actual = this.engine.pollTimeout()
    const shown = actual === null ? 'null' : `${actual} ms`
    const hasExact = 'expect_ms' in step
    assert.ok(hasExact !== 'expect_ms_between' in step, 'next_timeout needs exactly one of `expect_ms` and `expect_ms_between`')
    if (hasExact) {
      if (step.expect_ms === null) return assert.equal(actual, null, `expected no timeout, got ${shown}`)
      assert.equal(typeof step.expect_ms, 'number', 'next_timeout.expect_ms must be a number or null')
      return assert.ok(
        actual !== null && Math.abs(actual - step.expect_ms) <= TOLERANCE_MS,
        `expected a timeout at ${step.expect_ms} ms, got ${shown}`,
      )
    }
    const bounds = step.expect_ms_between
    assert.ok(
      Array.isArray(bounds) && bounds.length === 2 && bounds.every((b) => typeof b === 'number'),
      'next_timeout.expect_ms_between must be [lo, hi]',
    )
    const [lo, hi] = bounds
    assert.ok(actual !== null && lo <= actual && actual <= hi, `expected a timeout in [${lo}, ${hi}] ms, got ${shown}`)
  }

  metrics(expected) {
    assert.ok(isObject(expected), 'metrics.expect must be an object')
    const m = this.engine.metrics(this.nowMs)
    const wrong = []
    for (const [key, want] of Object.entries(expected)) {
      const jsKey = METRICS[key]
      if (jsKey === undefined) throw new Error(`unknown metric ${JSON.stringify(key)}`)
      if (m[jsKey] !== want) wrong.push(`${key}: expected ${want}, got ${m[jsKey]}`)
    }
    assert.deepEqual(wrong, [], `metrics differ: ${wrong.join('; ')}`)
  }

  events(expected) {
    assert.ok(Array.isArray(expected), 'events.expect must be a list')
    const wanted = expected.map((e) => this.parseEvent(e))
    const heard = []
    for (let e = this.engine.pollEvent(); e !== null; e = this.engine.pollEvent()) heard.push(this.showEvent(e))
    assert.deepEqual(heard, wanted, 'events')
  }

  /** An expected event in the text `showEvent` gives the engine's; its slots must be bound. */
  parseEvent(e) {
    assert.ok(isObject(e), 'an expected event must be an object')
    if ('leak_suspected' in e || 'leak_returned' in e) {
      const kind = 'leak_suspected' in e ? 'leak_suspected' : 'leak_returned'
      checkKeys(e, [kind, 'held_ms'], kind)
      this.bound(e[kind])
      assert.equal(typeof e.held_ms, 'number', `${kind}.held_ms must be a number`)
      return `${kind} ${e[kind]} held ${e.held_ms} ms`
    }
    if ('breaker' in e) {
      checkKeys(e, ['breaker'], 'breaker')
      checkKeys(e.breaker, ['from', 'to', 'reason'], 'a breaker event')
      return `breaker ${e.breaker.from}->${e.breaker.to} (${e.breaker.reason})`
    }
    if ('connect_failed' in e) {
      checkKeys(e, ['connect_failed', 'attempts'], 'connect_failed')
      assert.equal(typeof e.connect_failed, 'string', 'connect_failed must be the error text')
      assert.ok(Number.isInteger(e.attempts), 'connect_failed.attempts must be a count')
      return `connect_failed ${JSON.stringify(e.connect_failed)} after ${e.attempts} attempts`
    }
    if ('drained' in e) {
      checkKeys(e, ['drained'], 'drained')
      assert.ok(Array.isArray(e.drained), 'drained must be a list of slots')
      for (const name of e.drained) this.bound(name)
      return `drained ${JSON.stringify([...e.drained].sort())}`
    }
    throw new Error(`unknown event ${JSON.stringify(e)}`)
  }

  showEvent(e) {
    switch (e.kind) {
      case 'leak':
        return `leak_suspected ${this.slotName(e.slot)} held ${e.heldForMs} ms`
      case 'leakReturned':
        return `leak_returned ${this.slotName(e.slot)} held ${e.heldForMs} ms`
      case 'breaker':
        return `breaker ${e.from}->${e.to} (${e.reason})`
      case 'connectFailed':
        return `connect_failed ${JSON.stringify(e.error)} after ${e.attempts} attempts`
      case 'drained':
        // The slots still held, in any order.
        return `drained ${JSON.stringify(e.stillHeld.map((s) => this.slotName(s)).sort())}`
    }
    return `unknown event ${JSON.stringify(e)}`
  }
}

function parseAction(v) {
  assert.ok(isObject(v), 'an expected action must be an object')
  const text = (key) => {
    assert.equal(typeof v[key], 'string', `${key} must be a string in ${JSON.stringify(v)}`)
    return v[key]
  }
  if ('create' in v) {
    checkKeys(v, ['create'], 'a create action')
    return { kind: 'create', slot: text('create') }
  }
  if ('validate' in v) {
    checkKeys(v, ['validate'], 'a validate action')
    return { kind: 'validate', slot: text('validate') }
  }
  if ('destroy' in v) {
    checkKeys(v, ['destroy', 'reason'], 'a destroy action')
    known(v.reason, DESTROY_REASONS, 'destroy reason')
    return { kind: 'destroy', slot: text('destroy'), reason: v.reason }
  }
  if ('hand' in v) {
    checkKeys(v, ['hand', 'slot'], 'a hand action')
    return { kind: 'hand', caller: text('hand'), slot: text('slot') }
  }
  if ('fail' in v) {
    checkKeys(v, ['fail', 'error'], 'a fail action')
    known(v.error, ERROR_KINDS, 'error kind')
    return { kind: 'fail', caller: text('fail'), error: v.error }
  }
  throw new Error(`unknown action ${JSON.stringify(v)}`)
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

test('the pool conformance directory holds vectors', () => {
  assert.ok(files.length > 0, `no conformance vectors in ${VECTORS}: an empty directory must not pass`)
})

for (const file of files) {
  test(`pool conformance: ${file}`, () => {
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
