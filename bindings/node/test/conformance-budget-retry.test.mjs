// Replays every conformance vector in tests/conformance/budget/ and tests/conformance/retry/
// (format: tests/conformance/README.md, sections "Budgets" and "Retries") through the public API
// of the `seawall` package, on a ManualClock. Files in `pending/` are not replayed.
//
// Strict like the breaker replayer: an unknown op or key fails rather than being skipped, since
// a misspelt `expect` would otherwise be a check that cannot fail. Within a file, replay stops at
// the first disagreement.

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import {
  Budget,
  BudgetExhaustedError,
  InvalidHeaderError,
  ManualClock,
  RetryBudget,
  RetryPolicy,
  TimeoutPolicy,
} from 'seawall'

const ROOT = fileURLToPath(new URL('../../../tests/conformance/', import.meta.url))
const TOLERANCE_MS = 1e-6

// Core fields that are durations: JS spells them with `Ms`.
const DURATION_FIELDS = new Set([
  'max_timeout',
  'min_to_start',
  'timeout',
  'backoff.delay',
  'backoff.base',
  'backoff.cap',
  'retry_budget.ttl',
])

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

/** A core field name (`retry_budget.ttl`) as the Node binding spells it (`retryBudget.ttlMs`). */
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

/** A snake_case object from a vector as camelCase options; values pass through untouched. */
function camelObject(obj, allowed, what) {
  checkKeys(obj, allowed, what)
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [camel(k), v]))
}

const POLICY_KEYS = ['max_timeout_ms', 'scale', 'min_to_start_ms']
const RETRY_KEYS = ['max_attempts', 'backoff', 'seed']
const BACKOFF_KEYS = ['kind', 'delay_ms', 'base_ms', 'cap_ms', 'multiplier']
const RETRY_BUDGET_KEYS = ['percent', 'min_per_second', 'ttl_ms']

function retryOptions(retry) {
  const options = camelObject(retry, RETRY_KEYS, 'retry')
  if (retry.backoff !== null && typeof retry.backoff === 'object' && !Array.isArray(retry.backoff)) {
    options.backoff = camelObject(retry.backoff, BACKOFF_KEYS, 'retry.backoff')
  }
  return options
}

function near(actual, expected, what) {
  assert.equal(typeof actual, 'number', `${what}: expected a number, got ${typeof actual}`)
  assert.ok(Math.abs(actual - expected) <= TOLERANCE_MS, `${what}: expected ${expected} ms, got ${actual} ms`)
}

/** Moves the clock to the step's `t` (never backwards). */
function advance(state, step) {
  if (step.t === undefined) return
  assert.equal(typeof step.t, 'number', '`t` must be a number of milliseconds')
  assert.ok(step.t >= state.nowMs, `\`t\` went backwards, from ${state.nowMs} to ${step.t} ms`)
  state.clock.set(step.t)
  state.nowMs = step.t
}

function expectExhausted(f, what) {
  let error
  try {
    f()
  } catch (e) {
    error = e
  }
  assert.ok(error, `${what}: expected budget_exhausted, got a value`)
  assert.ok(error instanceof BudgetExhaustedError, `${what}: expected BudgetExhaustedError, got ${error}`)
  assert.equal(error.code, 'SEAWALL_BUDGET_EXHAUSTED')
}

/** Runs `build` and checks it fails as `expected` says (`{ field, kind }`). */
function checkConfigError(build, expected) {
  checkKeys(expected, ['field', 'kind'], 'expect_error')
  const { field, kind } = expected
  assert.ok(kind === 'range' || kind === 'type', 'expect_error.kind must be "range" or "type"')
  const js = jsField(field)
  let error
  try {
    build()
  } catch (e) {
    error = e
  }
  assert.ok(error, `expected a ${kind} error on ${js}, but everything was accepted`)
  assert.ok(
    error instanceof (kind === 'range' ? RangeError : TypeError),
    `expected a ${kind === 'range' ? 'RangeError' : 'TypeError'} on ${js}, got ${error.name}: ${error.message}`,
  )
  assert.equal(error.code, 'SEAWALL_INVALID_CONFIG')
  assert.equal(error.field, js, `error names field ${error.field}: ${error.message}`)
  assert.ok(error.message.includes(js), `the message does not name ${js}: ${error.message}`)
}

// ---- budgets ---------------------------------------------------------------------------------

const BUDGET_STEP_KEYS = {
  budget: ['id', 'timeout_ms'],
  child: ['budget', 'id', 'cap_ms'],
  remaining: ['budget', 'expect_ms'],
  expired: ['budget', 'expect'],
  timeout_for: ['budget', 'cap_ms', 'expect_ms', 'expect_error'],
  check: ['budget', 'expect_ms', 'expect_error'],
  encode: ['budget', 'format', 'expect'],
  decode: ['format', 'value', 'id', 'expect_error'],
}

function oneOf(step, a, b) {
  assert.ok((a in step) !== (b in step), `${step.op} needs exactly one of \`${a}\` and \`${b}\``)
}

class BudgetReplay {
  constructor(policy) {
    this.clock = new ManualClock(0)
    this.nowMs = 0
    this.policy = policy
    this.budgets = new Map()
  }

  keep(id, budget) {
    assert.equal(typeof id, 'string', 'an `id` must be a string')
    assert.ok(!this.budgets.has(id), `id ${id} is already used`)
    this.budgets.set(id, budget)
  }

  get(id) {
    const b = this.budgets.get(id)
    assert.ok(b, `no budget has id ${JSON.stringify(id)}`)
    return b
  }

  step(step) {
    assert.ok(step !== null && typeof step === 'object', 'a step must be an object')
    if (!Object.hasOwn(BUDGET_STEP_KEYS, step.op)) throw new Error(`unknown op ${JSON.stringify(step.op)}`)
    checkKeys(step, ['op', 't', ...BUDGET_STEP_KEYS[step.op]], step.op)
    advance(this, step)
    switch (step.op) {
      case 'budget':
        return this.keep(step.id, new Budget({ timeoutMs: step.timeout_ms, policy: this.policy, clock: this.clock }))
      case 'child':
        return this.keep(step.id, this.get(step.budget).child(step.cap_ms))
      case 'remaining':
        return near(this.get(step.budget).remainingMs, step.expect_ms, 'remaining')
      case 'expired':
        assert.equal(typeof step.expect, 'boolean', 'expired.expect must be a boolean')
        return assert.equal(this.get(step.budget).isExpired, step.expect, 'expired')
      case 'timeout_for': {
        assert.ok('cap_ms' in step, 'timeout_for needs `cap_ms` (a number or null)')
        const b = this.get(step.budget)
        const cap = step.cap_ms === null ? undefined : step.cap_ms
        oneOf(step, 'expect_ms', 'expect_error')
        if ('expect_error' in step) {
          assert.equal(step.expect_error, 'budget_exhausted', 'timeout_for.expect_error must be "budget_exhausted"')
          return expectExhausted(() => b.timeoutFor(cap), 'timeout_for')
        }
        return near(b.timeoutFor(cap), step.expect_ms, 'timeout_for')
      }
      case 'check': {
        const b = this.get(step.budget)
        oneOf(step, 'expect_ms', 'expect_error')
        if ('expect_error' in step) {
          assert.equal(step.expect_error, 'budget_exhausted', 'check.expect_error must be "budget_exhausted"')
          return expectExhausted(() => b.check(), 'check')
        }
        return near(b.check(), step.expect_ms, 'check')
      }
      case 'encode':
        assert.equal(typeof step.expect, 'string', 'encode.expect must be a string')
        return assert.equal(this.get(step.budget).toHeader(step.format), step.expect, `encode ${step.format}`)
      case 'decode':
        return this.decode(step)
    }
  }

  decode(step) {
    oneOf(step, 'id', 'expect_error')
    const decode = () => Budget.fromHeader(step.value, { format: step.format, policy: this.policy, clock: this.clock })
    if ('id' in step) return this.keep(step.id, decode())
    assert.equal(step.expect_error, 'invalid_header', 'decode.expect_error must be "invalid_header"')
    let error
    try {
      decode()
    } catch (e) {
      error = e
    }
    assert.ok(error, `${JSON.stringify(step.value)} was accepted as ${step.format}`)
    assert.ok(error instanceof InvalidHeaderError, `expected InvalidHeaderError, got ${error}`)
    assert.equal(error.code, 'SEAWALL_INVALID_HEADER')
    assert.equal(error.header, step.format)
    // The error quotes the value (at most its first 64 characters).
    assert.equal(error.value, [...step.value].slice(0, 64).join(''))
    assert.ok(error.message.includes('"'), `the message does not quote the value: ${error.message}`)
  }
}

function replayBudgetFile(doc) {
  checkKeys(doc, ['name', 'description', 'policy', 'budget_timeout_ms', 'steps', 'expect_error'], 'the file')
  assert.equal(typeof doc.name, 'string', 'the file needs a string `name`')
  const policyOptions = doc.policy === undefined ? undefined : camelObject(doc.policy, POLICY_KEYS, 'policy')
  if ('expect_error' in doc) {
    assert.ok(!('steps' in doc), 'a file has either `steps` or `expect_error`, not both')
    return checkConfigError(() => {
      const policy = new TimeoutPolicy(policyOptions)
      if ('budget_timeout_ms' in doc) new Budget({ timeoutMs: doc.budget_timeout_ms, policy, clock: new ManualClock() })
    }, doc.expect_error)
  }
  assert.ok(!('budget_timeout_ms' in doc), '`budget_timeout_ms` appears only in validation scenarios')
  assert.ok(Array.isArray(doc.steps), 'the file needs `steps` (a list) or `expect_error`')
  const replay = new BudgetReplay(new TimeoutPolicy(policyOptions))
  return doc.steps.map((step) => () => replay.step(step))
}

// ---- retries ---------------------------------------------------------------------------------

const RETRY_STEP_KEYS = {
  begin: [],
  start_attempt: ['cap_ms', 'expect_timeout_ms', 'expect_error'],
  failure: ['retry_after_ms', 'expect_delay_ms', 'expect_delay_ms_between', 'expect_give_up'],
  retry_budget: ['expect'],
}

const GIVE_UP = ['attempts_exhausted', 'budget_exhausted', 'retry_after_beyond_budget', 'retry_budget_exhausted']

class RetryReplay {
  constructor(doc) {
    this.clock = new ManualClock(0)
    this.nowMs = 0
    this.policy = new TimeoutPolicy(doc.policy === undefined ? undefined : camelObject(doc.policy, POLICY_KEYS, 'policy'))
    this.timeoutMs = doc.budget_timeout_ms
    this.retry = new RetryPolicy(retryOptions(doc.retry))
    this.retryBudget =
      doc.retry_budget === null
        ? null
        : new RetryBudget({ ...camelObject(doc.retry_budget ?? {}, RETRY_BUDGET_KEYS, 'retry_budget'), clock: this.clock })
    this.begin()
  }

  begin() {
    const budget = new Budget({ timeoutMs: this.timeoutMs, policy: this.policy, clock: this.clock })
    this.loop = this.retry.begin(budget, { retryBudget: this.retryBudget })
  }

  step(step) {
    assert.ok(step !== null && typeof step === 'object', 'a step must be an object')
    if (!Object.hasOwn(RETRY_STEP_KEYS, step.op)) throw new Error(`unknown op ${JSON.stringify(step.op)}`)
    checkKeys(step, ['op', 't', ...RETRY_STEP_KEYS[step.op]], step.op)
    advance(this, step)
    switch (step.op) {
      case 'begin':
        return this.begin()
      case 'start_attempt': {
        const cap = step.cap_ms ?? undefined
        oneOf(step, 'expect_timeout_ms', 'expect_error')
        if ('expect_error' in step) {
          assert.equal(step.expect_error, 'budget_exhausted', 'start_attempt.expect_error must be "budget_exhausted"')
          return expectExhausted(() => this.loop.startAttempt(cap), 'start_attempt')
        }
        return near(this.loop.startAttempt(cap), step.expect_timeout_ms, 'start_attempt timeout')
      }
      case 'failure':
        return this.failure(step)
      case 'retry_budget': {
        assert.ok(this.retryBudget !== null, 'retry_budget: this file has no retry budget')
        checkKeys(step.expect, ['requests', 'retries', 'allowed'], 'retry_budget.expect')
        const m = this.retryBudget.metrics()
        for (const [key, want] of Object.entries(step.expect)) assert.equal(m[key], want, `retry budget ${key}`)
        return
      }
    }
  }

  failure(step) {
    const expectations = ['expect_delay_ms', 'expect_delay_ms_between', 'expect_give_up'].filter((k) => k in step)
    assert.equal(expectations.length, 1, 'failure needs exactly one expectation')
    const hint = step.retry_after_ms
    assert.ok(hint === undefined || typeof hint === 'number', 'failure.retry_after_ms must be a number')
    const d = this.loop.onFailure(hint)
    if ('expect_give_up' in step) {
      assert.ok(GIVE_UP.includes(step.expect_give_up), `unknown give-up reason ${step.expect_give_up}`)
      assert.deepEqual(d, { retry: false, reason: step.expect_give_up }, 'decision')
      return
    }
    assert.equal(d.retry, true, `expected a retry, gave up: ${d.reason}`)
    if ('expect_delay_ms' in step) {
      // Exact to the nanosecond.
      assert.equal(Math.round(d.delayMs * 1e6), Math.round(step.expect_delay_ms * 1e6), `delay: got ${d.delayMs} ms`)
    } else {
      const [lo, hi] = step.expect_delay_ms_between
      assert.ok(lo <= d.delayMs && d.delayMs <= hi, `delay ${d.delayMs} ms not in [${lo}, ${hi}]`)
    }
  }
}

function replayRetryFile(doc) {
  checkKeys(
    doc,
    ['name', 'description', 'policy', 'budget_timeout_ms', 'retry', 'retry_budget', 'steps', 'expect_error'],
    'the file',
  )
  assert.equal(typeof doc.name, 'string', 'the file needs a string `name`')
  if ('expect_error' in doc) {
    assert.ok(!('steps' in doc), 'a file has either `steps` or `expect_error`, not both')
    // Built in the order a program would: policy, the call's budget, the retry policy, the
    // shared retry budget; the first refusal is the one checked.
    return checkConfigError(() => {
      const clock = new ManualClock()
      const policy = new TimeoutPolicy(doc.policy === undefined ? undefined : camelObject(doc.policy, POLICY_KEYS, 'policy'))
      if ('budget_timeout_ms' in doc) new Budget({ timeoutMs: doc.budget_timeout_ms, policy, clock })
      if ('retry' in doc) new RetryPolicy(retryOptions(doc.retry))
      if (doc.retry_budget !== undefined && doc.retry_budget !== null) {
        new RetryBudget({ ...camelObject(doc.retry_budget, RETRY_BUDGET_KEYS, 'retry_budget'), clock })
      }
    }, doc.expect_error)
  }
  assert.equal(typeof doc.budget_timeout_ms, 'number', 'a retry scenario needs `budget_timeout_ms`')
  assert.ok(doc.retry !== undefined, 'a retry scenario needs `retry`')
  assert.ok(Array.isArray(doc.steps), 'the file needs `steps` (a list) or `expect_error`')
  const replay = new RetryReplay(doc)
  return doc.steps.map((step) => () => replay.step(step))
}

// ---- files -----------------------------------------------------------------------------------

function vectors(dir) {
  try {
    return readdirSync(ROOT + dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
  } catch {
    return []
  }
}

for (const [dir, replayFile] of [
  ['budget', replayBudgetFile],
  ['retry', replayRetryFile],
]) {
  const files = vectors(dir)

  test(`the ${dir} conformance directory holds vectors`, () => {
    assert.ok(files.length > 0, `no conformance vectors in ${ROOT}${dir}/: an empty directory must not pass`)
  })

  for (const file of files) {
    test(`conformance ${dir}: ${file}`, () => {
      const doc = JSON.parse(readFileSync(`${ROOT}${dir}/${file}`, 'utf8'))
      const steps = replayFile(doc)
      for (const [i, run] of (steps ?? []).entries()) {
        try {
          run()
        } catch (e) {
          e.message = `step ${i} (${doc.steps[i]?.op}): ${e.message}`
          throw e
        }
      }
    })
  }
}
