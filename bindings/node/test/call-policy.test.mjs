// CallPolicy: budget → retry → breaker → per-attempt timeout, on real time with short timers.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import {
  BreakerOpenError,
  Budget,
  BudgetExhaustedError,
  CallPolicy,
  CircuitBreaker,
  DeadlineExceededError,
  RetryBudget,
  RetryBudgetExhaustedError,
  RetryPolicy,
  TimeoutPolicy,
} from 'seawall'

import deadlines from '../lib/deadlines.js'

const constant = (delayMs, maxAttempts = 3) => ({ maxAttempts, backoff: { kind: 'constant', delayMs } })

/** An attempt that hangs (on a timer of its own) until its signal aborts. */
function hang({ signal }) {
  return new Promise((_, reject) => {
    const t = setTimeout(() => reject(new Error('never')), 5000)
    signal.addEventListener('abort', () => {
      clearTimeout(t)
      reject(signal.reason)
    })
  })
}

async function failure(promise) {
  return promise.then(
    (v) => assert.fail(`resolved with ${v}`),
    (e) => e,
  )
}

describe('CallPolicy', () => {
  test('retries a flaky call through the breaker, which sees every attempt', async () => {
    const breaker = new CircuitBreaker()
    const policy = new CallPolicy({ breaker, retry: constant(1), retryBudget: null })
    let calls = 0
    const result = await policy.run(async ({ attempt }) => {
      calls++
      assert.equal(attempt, calls)
      if (attempt < 3) throw new Error(`down ${attempt}`)
      return 'up'
    })
    assert.equal(result, 'up')
    const m = breaker.metrics()
    assert.equal(m.failures, 2)
    assert.equal(m.successes, 1)
    assert.equal(m.inFlight, 0)
  })

  test('a timed-out attempt is a breaker failure whatever the breaker’s isFailure says', async () => {
    const breaker = new CircuitBreaker({ isFailure: () => false })
    const policy = new CallPolicy({ breaker, retry: constant(1, 2), attemptTimeoutMs: 20, retryBudget: null })
    const error = await failure(policy.run(hang))
    assert.ok(error instanceof DeadlineExceededError, `${error}`)
    const m = breaker.metrics()
    assert.equal(m.failures, 2, 'both timed-out attempts')
    assert.equal(m.successes, 0)
    assert.equal(deadlines.pending(), 0)
  })

  test('isRetryable judges the function’s errors; timeouts and rejections always go to the loop', async () => {
    let calls = 0
    const policy = new CallPolicy({ retry: { ...constant(1, 3), isRetryable: () => false }, attemptTimeoutMs: 20, retryBudget: null })
    // A timed-out attempt is retried even though isRetryable says no to everything.
    const timedOut = await failure(policy.run((ctx) => (calls++, hang(ctx))))
    assert.ok(timedOut instanceof DeadlineExceededError, `${timedOut}`)
    assert.equal(calls, 3)
    // An error from the function is not.
    calls = 0
    const own = await failure(policy.run(() => (calls++, Promise.reject(new Error('bad request')))))
    assert.equal(own.message, 'bad request')
    assert.equal(calls, 1)
  })

  test('other outcomes are classified by the breaker’s own callbacks', async () => {
    const breaker = new CircuitBreaker({
      isFailure: (e) => e.status !== 404,
      ignore: (e) => e.name === 'Ignored',
      isResultFailure: (r) => r === 503,
    })
    const policy = new CallPolicy({ breaker, retry: constant(1, 1), retryBudget: null })
    await assert.rejects(policy.run(() => Promise.reject(Object.assign(new Error('nf'), { status: 404 }))), /nf/)
    await assert.rejects(policy.run(() => Promise.reject(Object.assign(new Error('ig'), { name: 'Ignored' }))), /ig/)
    assert.equal(await policy.run(() => 503), 503, 'a result classified as a failure is still returned')
    await assert.rejects(policy.run(() => Promise.reject(new Error('real'))), /real/)
    const m = breaker.metrics()
    assert.deepEqual([m.successes, m.ignored, m.failures], [1, 1, 2])
  })

  test('an open breaker’s retry-after is honoured, and fn is not called while it is open', async () => {
    const breaker = new CircuitBreaker({ consecutiveFailures: 1, openDurationMs: 60, halfOpenCalls: 1 })
    const policy = new CallPolicy({ breaker, retry: constant(1, 4), retryBudget: null })
    const attempts = []
    const started = performance.now()
    const result = await policy.run(async ({ attempt }) => {
      attempts.push({ attempt, at: performance.now() - started })
      if (attempt === 1) throw new Error('down')
      return 'up'
    })
    assert.equal(result, 'up')
    // Attempt 1 fails (opens), attempt 2 is rejected without a call, attempt 3 after the wait.
    assert.deepEqual(
      attempts.map((a) => a.attempt),
      [1, 3],
    )
    assert.ok(attempts[1].at >= 55, `probe after ${attempts[1].at} ms`)
    const m = breaker.metrics()
    assert.equal(m.rejected, 1)
    assert.equal(m.state, 'closed')
  })

  test('a retry-after beyond the budget ends the call with the breaker’s rejection', async () => {
    const breaker = new CircuitBreaker({ consecutiveFailures: 1, openDurationMs: 60_000 })
    const policy = new CallPolicy({ breaker, retry: constant(1, 5), timeoutMs: 1000, retryBudget: null })
    let calls = 0
    const error = await failure(
      policy.run(async () => {
        calls++
        throw new Error('down')
      }),
    )
    assert.ok(error instanceof BreakerOpenError, `${error}`)
    assert.equal(calls, 1)
    assert.ok(error.retryAfterMs > 1000)
  })

  test('an attempt cancelled by the caller is ignored by the breaker and not retried', async () => {
    const breaker = new CircuitBreaker()
    const policy = new CallPolicy({ breaker, retry: constant(1), retryBudget: null })
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('client gone')), 20)
    await assert.rejects(policy.run(hang, { signal: controller.signal }), /client gone/)
    const m = breaker.metrics()
    assert.deepEqual([m.ignored, m.failures, m.inFlight], [1, 0, 0])
  })

  test('a breaker classifier that throws ends the call with its exception and frees the permit', async () => {
    const oops = new Error('classifier bug')
    const breaker = new CircuitBreaker({
      isFailure: () => {
        throw oops
      },
    })
    const policy = new CallPolicy({ breaker, retry: constant(1), retryBudget: null })
    let calls = 0
    await assert.rejects(
      policy.run(() => {
        calls++
        throw new Error('down')
      }),
      (e) => e === oops,
    )
    assert.equal(calls, 1)
    assert.equal(breaker.metrics().inFlight, 0)
  })

  test('timeoutMs is the budget of a call run without one; a given budget wins', async () => {
    const policy = new CallPolicy({ timeoutMs: 30, retry: constant(1, 1), retryBudget: null })
    const started = performance.now()
    await assert.rejects(policy.run(hang), DeadlineExceededError)
    assert.ok(performance.now() - started < 1000)
    const spent = new Budget({ timeoutMs: 0 })
    let called = false
    await assert.rejects(
      policy.run(
        () => {
          called = true
        },
        { budget: spent },
      ),
      BudgetExhaustedError,
    )
    assert.equal(called, false)
  })

  test('the policy maximum bounds every attempt, whatever the options ask for', async () => {
    const original = TimeoutPolicy.getGlobal()
    TimeoutPolicy.setGlobal(new TimeoutPolicy({ maxTimeoutMs: 40 }))
    try {
      const policy = new CallPolicy({ timeoutMs: 60_000, attemptTimeoutMs: 60_000, retry: constant(1, 1), retryBudget: null })
      const started = performance.now()
      const error = await failure(policy.run(hang))
      assert.ok(error instanceof DeadlineExceededError)
      assert.ok(error.timeoutMs <= 40, `${error.timeoutMs}`)
      assert.ok(performance.now() - started < 1000)
    } finally {
      TimeoutPolicy.setGlobal(original)
    }
  })

  test('the retry budget applies; by default the global one', async () => {
    const policy = new CallPolicy()
    assert.equal(policy.retryBudget, RetryBudget.getGlobal())
    const rb = new RetryBudget({ percent: 0, minPerSecond: 0 })
    const strict = new CallPolicy({ retryBudget: rb, retry: constant(1) })
    const error = await failure(
      strict.run(() => {
        throw new Error('down')
      }),
    )
    assert.ok(error instanceof RetryBudgetExhaustedError)
    assert.equal(error.cause.message, 'down')
  })

  test('reads its options back and checks them', () => {
    const breaker = new CircuitBreaker()
    const retry = new RetryPolicy(constant(5))
    const p = new CallPolicy({ breaker, retry, attemptTimeoutMs: 250, timeoutMs: 2000, retryBudget: null })
    assert.equal(p.breaker, breaker)
    assert.equal(p.retry, retry)
    assert.equal(p.retryBudget, null)
    assert.equal(p.attemptTimeoutMs, 250)
    assert.equal(p.timeoutMs, 2000)
    const defaults = new CallPolicy()
    assert.equal(defaults.breaker, undefined)
    assert.equal(defaults.retry.maxAttempts, 3)
    assert.equal(defaults.timeoutMs, undefined)
    assert.throws(() => new CallPolicy({ breaker: {} }), { name: 'TypeError', field: 'breaker' })
    assert.throws(() => new CallPolicy({ retry: 'twice' }), { name: 'TypeError', field: 'retry' })
    assert.throws(() => new CallPolicy({ retry: { maxAttempts: 101 } }), { name: 'RangeError', field: 'maxAttempts' })
    assert.throws(() => new CallPolicy({ retryBudget: 5 }), { name: 'TypeError', field: 'retryBudget' })
    assert.throws(() => new CallPolicy({ attemptTimeoutMs: Infinity }), { name: 'RangeError', field: 'attemptTimeoutMs' })
    assert.throws(() => new CallPolicy({ timeoutMs: 86_400_001 }), { name: 'RangeError', field: 'timeoutMs' })
    assert.throws(() => new CallPolicy({ timeoutMs: '2s' }), { name: 'TypeError', field: 'timeoutMs' })
    assert.throws(() => new CallPolicy([]), TypeError)
  })

  test('run() rejects bad arguments', async () => {
    const p = new CallPolicy()
    await assert.rejects(p.run(), TypeError)
    await assert.rejects(p.run(() => 1, { budget: {} }), { name: 'TypeError', field: 'budget' })
    await assert.rejects(p.run(() => 1, { signal: 'stop' }), { name: 'TypeError', field: 'signal' })
  })
})
