// RetryPolicy, RetryLoop, RetryBudget and retry() through the public API. Decisions are checked
// on a ManualClock through RetryLoop; retry() runs on real time with short waits.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import {
  BreakerOpenError,
  Budget,
  BudgetExhaustedError,
  CircuitBreaker,
  DeadlineExceededError,
  ManualClock,
  RetryBudget,
  RetryBudgetExhaustedError,
  RetryLoop,
  RetryPolicy,
  SeawallError,
  TimeoutPolicy,
  retry,
} from 'seawall'

import deadlines from '../lib/deadlines.js'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const constant = (delayMs, maxAttempts = 3) => new RetryPolicy({ maxAttempts, backoff: { kind: 'constant', delayMs } })

/** A function failing its first `n` calls with `error(i)`, then returning 'ok'. */
function flaky(n, error = (i) => new Error(`failure ${i}`)) {
  const calls = []
  const fn = async (ctx) => {
    calls.push(ctx.attempt)
    if (calls.length <= n) throw error(calls.length)
    return 'ok'
  }
  return { fn, calls }
}

describe('RetryPolicy', () => {
  test('defaults: 3 attempts, decorrelated jitter between 100 ms and 5 s, random seed', () => {
    const p = new RetryPolicy()
    assert.equal(p.maxAttempts, 3)
    assert.deepEqual(p.backoff, { kind: 'decorrelated_jitter', baseMs: 100, capMs: 5000 })
    assert.equal(p.seed, null)
    assert.equal(p.isRetryable, undefined)
  })

  test('reads every backoff kind, with the documented defaults', () => {
    assert.deepEqual(new RetryPolicy({ backoff: { kind: 'constant', delayMs: 250 } }).backoff, { kind: 'constant', delayMs: 250 })
    assert.deepEqual(new RetryPolicy({ backoff: { kind: 'exponential', baseMs: 10, capMs: 80 } }).backoff, {
      kind: 'exponential',
      baseMs: 10,
      capMs: 80,
      multiplier: 2,
    })
    assert.deepEqual(new RetryPolicy({ backoff: { kind: 'exponential', baseMs: 10, capMs: 80, multiplier: 1.5 } }).backoff.multiplier, 1.5)
    assert.deepEqual(new RetryPolicy({ backoff: { kind: 'decorrelated_jitter' } }).backoff, {
      kind: 'decorrelated_jitter',
      baseMs: 100,
      capMs: 5000,
    })
    assert.deepEqual(new RetryPolicy({ backoff: { kind: 'decorrelated_jitter', baseMs: 5, capMs: 50 } }).backoff, {
      kind: 'decorrelated_jitter',
      baseMs: 5,
      capMs: 50,
    })
    const isRetryable = () => true
    const p = new RetryPolicy({ maxAttempts: 7, seed: 42, isRetryable })
    assert.equal(p.maxAttempts, 7)
    assert.equal(p.seed, 42)
    assert.equal(p.isRetryable, isRetryable)
  })

  test('the same seed gives the same jitter', () => {
    const delays = (seed) => {
      const clock = new ManualClock()
      const p = new RetryPolicy({ maxAttempts: 6, backoff: { kind: 'decorrelated_jitter', baseMs: 10, capMs: 1000 }, seed })
      const loop = p.begin(new Budget({ timeoutMs: 15_000, clock }), { retryBudget: null })
      const out = []
      for (let i = 0; i < 5; i++) {
        loop.startAttempt()
        out.push(loop.onFailure().delayMs)
      }
      return out
    }
    assert.deepEqual(delays(7), delays(7))
    assert.notDeepEqual(delays(7), delays(8))
    for (const d of delays(7)) assert.ok(d >= 10 && d <= 1000, `${d}`)
  })
})

describe('RetryLoop', () => {
  test('startAttempt gives min(remaining, cap × scale, maximum) and onFailure the backoff', () => {
    const clock = new ManualClock()
    const policy = new TimeoutPolicy({ scale: 0.5 })
    const budget = new Budget({ timeoutMs: 2000, policy, clock })
    const loop = new RetryPolicy({ maxAttempts: 3, backoff: { kind: 'exponential', baseMs: 100, capMs: 150 } }).begin(budget, {
      retryBudget: null,
    })
    assert.ok(loop instanceof RetryLoop)
    assert.equal(loop.budget, budget)
    assert.equal(loop.attempts, 0)
    assert.equal(loop.startAttempt(), 1000)
    assert.equal(loop.attempts, 1)
    assert.deepEqual(loop.onFailure(), { retry: true, delayMs: 100 }, 'waits are not scaled')
    clock.advance(100)
    assert.equal(loop.startAttempt(400), 200, 'the cap is scaled')
    assert.deepEqual(loop.onFailure(), { retry: true, delayMs: 150 }, 'capped')
    clock.advance(150)
    assert.equal(loop.startAttempt(), 750)
    assert.deepEqual(loop.onFailure(), { retry: false, reason: 'attempts_exhausted' })
  })

  test('a hint replaces the backoff when it fits and ends the retries when it does not', () => {
    const clock = new ManualClock()
    const budget = new Budget({ timeoutMs: 1000, clock })
    const loop = constant(10, 5).begin(budget, { retryBudget: null })
    loop.startAttempt()
    assert.deepEqual(loop.onFailure(300), { retry: true, delayMs: 300 })
    clock.advance(300)
    loop.startAttempt()
    assert.deepEqual(loop.onFailure(null), { retry: true, delayMs: 10 }, 'null is no hint')
    clock.advance(10)
    loop.startAttempt()
    assert.deepEqual(loop.onFailure(Infinity), { retry: false, reason: 'retry_after_beyond_budget' })
    assert.deepEqual(loop.onFailure(1e12), { retry: false, reason: 'retry_after_beyond_budget' })
    clock.advance(685)
    assert.deepEqual(loop.onFailure(), { retry: false, reason: 'budget_exhausted' })
    assert.throws(() => loop.startAttempt(), BudgetExhaustedError)
  })

  test('retries are drawn from the retry budget, which is shared', () => {
    const clock = new ManualClock()
    const rb = new RetryBudget({ percent: 50, minPerSecond: 0, ttlMs: 1000, clock })
    const policy = constant(1, 2)
    const decisions = []
    for (let i = 0; i < 6; i++) {
      const loop = policy.begin(new Budget({ timeoutMs: 1000, clock }), { retryBudget: rb })
      loop.startAttempt()
      decisions.push(loop.onFailure().retry)
    }
    // floor(requests × 50 %) retries: 0, 1, 1, 2, 2, 3 allowed after 1..6 requests.
    assert.deepEqual(decisions, [false, true, false, true, false, true])
    assert.deepEqual(rb.metrics(), { requests: 6, retries: 3, allowed: 3 })
    clock.advance(1000)
    assert.deepEqual(rb.metrics(), { requests: 0, retries: 0, allowed: 0 }, 'forgotten after the TTL')
  })

  test('a budget and a retry budget on different clocks agree on the time left', () => {
    // The budget on a manual clock far from the retry budget's (the core's monotonic clock).
    const budget = new Budget({ timeoutMs: 1000, clock: new ManualClock(1e9) })
    const rb = new RetryBudget({ percent: 100, minPerSecond: 0 })
    const loop = constant(100).begin(budget, { retryBudget: rb })
    assert.equal(loop.startAttempt(), 1000)
    assert.deepEqual(loop.onFailure(), { retry: true, delayMs: 100 })
    assert.deepEqual(rb.metrics(), { requests: 1, retries: 1, allowed: 1 })
  })

  test('begin() checks its arguments', () => {
    const p = new RetryPolicy()
    assert.throws(() => p.begin(), TypeError)
    assert.throws(() => p.begin({ remainingMs: 5 }), TypeError)
    const b = new Budget({ timeoutMs: 100, clock: new ManualClock() })
    assert.throws(() => p.begin(b, { retryBudget: {} }), { name: 'TypeError', field: 'retryBudget' })
    assert.throws(() => new RetryLoop(), TypeError)
    const loop = p.begin(b, { retryBudget: null })
    assert.throws(() => loop.startAttempt('100'), TypeError)
    assert.throws(() => loop.startAttempt(-1), { name: 'RangeError', code: 'SEAWALL_INVALID_ARGUMENT', field: 'capMs' })
    loop.startAttempt()
    assert.throws(() => loop.onFailure('1s'), TypeError)
    assert.throws(() => loop.onFailure(-1), { name: 'RangeError', field: 'retryAfterMs' })
    assert.throws(() => loop.onFailure(NaN), RangeError)
  })
})

describe('RetryBudget', () => {
  test('defaults 20 %, 10/s, 10 s; reads its options back', () => {
    const rb = new RetryBudget()
    assert.equal(rb.percent, 20)
    assert.equal(rb.minPerSecond, 10)
    assert.equal(rb.ttlMs, 10_000)
    assert.deepEqual(rb.metrics(), { requests: 0, retries: 0, allowed: 100 })
    const custom = new RetryBudget({ percent: 5, minPerSecond: 0.5, ttlMs: 2000 })
    assert.deepEqual([custom.percent, custom.minPerSecond, custom.ttlMs], [5, 0.5, 2000])
  })

  test('the global retry budget is one object with the core defaults', () => {
    const g = RetryBudget.getGlobal()
    assert.equal(RetryBudget.getGlobal(), g)
    assert.deepEqual([g.percent, g.minPerSecond, g.ttlMs], [20, 10, 10_000])
  })
})

describe('retry()', () => {
  test('retries until success; fn gets the attempt number and a signal', async () => {
    const { fn, calls } = flaky(2)
    let signal
    const result = await retry(
      async (ctx) => {
        signal = ctx.signal
        return fn(ctx)
      },
      { policy: constant(1), retryBudget: null },
    )
    assert.equal(result, 'ok')
    assert.deepEqual(calls, [1, 2, 3])
    assert.ok(signal instanceof AbortSignal)
    assert.equal(signal.aborted, false)
  })

  test('a policy given as options works like a RetryPolicy', async () => {
    const { fn, calls } = flaky(1)
    assert.equal(await retry(fn, { policy: { maxAttempts: 2, backoff: { kind: 'constant', delayMs: 1 } }, retryBudget: null }), 'ok')
    assert.equal(calls.length, 2)
  })

  test('gives up with the last error once the attempts are spent', async () => {
    const { fn, calls } = flaky(10)
    await assert.rejects(retry(fn, { policy: constant(1, 3), retryBudget: null }), /failure 3/)
    assert.equal(calls.length, 3)
  })

  test('an error that is not retryable is thrown at once', async () => {
    const bad = Object.assign(new Error('bad request'), { status: 400 })
    const { fn, calls } = flaky(10, () => bad)
    const isRetryable = (e) => e.status !== 400
    await assert.rejects(retry(fn, { policy: constant(1), isRetryable, retryBudget: null }), (e) => e === bad)
    assert.equal(calls.length, 1)
    // The policy's predicate applies when the call gives none; the call's wins otherwise.
    const p = new RetryPolicy({ maxAttempts: 3, backoff: { kind: 'constant', delayMs: 1 }, isRetryable })
    const second = flaky(10, () => bad)
    await assert.rejects(retry(second.fn, { policy: p, retryBudget: null }), (e) => e === bad)
    assert.equal(second.calls.length, 1)
    const third = flaky(2, () => bad)
    assert.equal(await retry(third.fn, { policy: p, isRetryable: () => true, retryBudget: null }), 'ok')
  })

  test('Seawall’s own refusals are not retried by default', async () => {
    const exhausted = new BudgetExhaustedError(1, 10)
    const first = flaky(10, () => exhausted)
    await assert.rejects(retry(first.fn, { policy: constant(1), retryBudget: null }), (e) => e === exhausted)
    assert.equal(first.calls.length, 1)
    const refused = new RetryBudgetExhaustedError(new Error('x'))
    const second = flaky(10, () => refused)
    await assert.rejects(retry(second.fn, { policy: constant(1), retryBudget: null }), (e) => e === refused)
    assert.equal(second.calls.length, 1)
  })

  test('an exhausted budget fails with BudgetExhaustedError and never calls fn', async () => {
    let called = false
    const budget = new Budget({ timeoutMs: 5 })
    const error = await retry(
      () => {
        called = true
      },
      { budget },
    ).then(
      () => assert.fail('resolved'),
      (e) => e,
    )
    assert.ok(error instanceof BudgetExhaustedError)
    assert.equal(error.code, 'SEAWALL_BUDGET_EXHAUSTED')
    assert.equal(called, false)
  })

  test('when the budget runs out after a failure, the last failure is what the caller sees', async () => {
    // Attempts of up to 30 ms each under a 100 ms budget, every one timing out.
    const started = performance.now()
    const aborted = []
    const error = await retry(
      ({ signal }) =>
        new Promise((_, reject) => {
          const t = setTimeout(() => reject(new Error('never')), 5000)
          signal.addEventListener('abort', () => {
            clearTimeout(t)
            aborted.push(signal.reason)
            reject(signal.reason)
          })
        }),
      { policy: constant(1, 100), budget: new Budget({ timeoutMs: 100 }), attemptTimeoutMs: 30, retryBudget: null },
    ).then(
      () => assert.fail('resolved'),
      (e) => e,
    )
    const took = performance.now() - started
    assert.ok(error instanceof DeadlineExceededError, `${error}`)
    assert.ok(aborted.length >= 3, `${aborted.length} attempts`)
    for (const r of aborted) assert.ok(r instanceof DeadlineExceededError)
    assert.ok(took >= 90 && took < 1000, `gave up after ${took} ms`)
    assert.equal(deadlines.pending(), 0)
  })

  test('honours a retryAfterMs hint carried by the error', async () => {
    const hinted = Object.assign(new Error('busy'), { retryAfterMs: 60 })
    const { fn } = flaky(1, () => hinted)
    const started = performance.now()
    assert.equal(await retry(fn, { policy: constant(1), retryBudget: null }), 'ok')
    const took = performance.now() - started
    assert.ok(took >= 59, `the retry came after ${took} ms, before the hint`)
    // A hint that does not fit the budget ends the retries with that error.
    const far = Object.assign(new Error('come back tomorrow'), { retryAfterMs: 86_400_000 })
    const second = flaky(10, () => far)
    await assert.rejects(retry(second.fn, { policy: constant(1), retryBudget: null }), (e) => e === far)
    assert.equal(second.calls.length, 1)
    // Something that is not a number of ms is no hint.
    const junk = Object.assign(new Error('junk'), { retryAfterMs: 'soon' })
    const third = flaky(1, () => junk)
    assert.equal(await retry(third.fn, { policy: constant(1), retryBudget: null }), 'ok')
  })

  test('honours a breaker’s retry-after when fn goes through an open breaker', async () => {
    const breaker = new CircuitBreaker({ consecutiveFailures: 1, openDurationMs: 80 })
    let calls = 0
    const started = performance.now()
    const result = await retry(
      () =>
        breaker.run(async () => {
          calls++
          if (calls === 1) throw new Error('down')
          return 'up'
        }),
      { policy: constant(1, 5), retryBudget: null },
    )
    // Attempt 1 fails and opens the breaker; attempt 2 is rejected with retry_after ≈ 80 ms;
    // attempt 3 comes after that wait, when the breaker admits a probe.
    assert.equal(result, 'up')
    assert.equal(calls, 2)
    assert.ok(performance.now() - started >= 75, 'waited for the breaker')
    assert.equal(breaker.metrics().rejected, 1)
  })

  test('the retry budget refusing a retry gives RetryBudgetExhaustedError with the last error as cause', async () => {
    const rb = new RetryBudget({ percent: 0, minPerSecond: 0 })
    const { fn, calls } = flaky(10)
    const error = await retry(fn, { policy: constant(1), retryBudget: rb }).then(
      () => assert.fail('resolved'),
      (e) => e,
    )
    assert.ok(error instanceof RetryBudgetExhaustedError)
    assert.ok(error instanceof SeawallError)
    assert.equal(error.code, 'SEAWALL_RETRY_BUDGET_EXHAUSTED')
    assert.equal(error.cause.message, 'failure 1')
    assert.equal(calls.length, 1)
    assert.deepEqual(rb.metrics(), { requests: 1, retries: 0, allowed: 0 })
  })

  test('the default retry budget is the global one and stops a storm', async () => {
    const before = RetryBudget.getGlobal().metrics()
    // 300 callers of a dead dependency, each allowed 3 attempts: without a retry budget that
    // is 900 calls; the global budget allows 20 % of the requests plus 10/s over 10 s.
    let calls = 0
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, () =>
        retry(
          async () => {
            calls++
            throw new Error('down')
          },
          { policy: constant(1) },
        ),
      ),
    )
    const after = RetryBudget.getGlobal().metrics()
    const retries = after.retries - before.retries
    assert.equal(after.requests - before.requests, 300)
    assert.equal(calls, 300 + retries)
    assert.ok(retries <= after.allowed, `${retries} retries, ${after.allowed} allowed`)
    assert.ok(calls < 500, `${calls} calls reached the dependency`)
    const refused = results.filter((r) => r.reason instanceof RetryBudgetExhaustedError).length
    assert.ok(refused > 0, 'some retries were refused')
  })

  test('the caller’s signal cancels an attempt in flight, which is not retried', async () => {
    const controller = new AbortController()
    const seen = []
    const promise = retry(
      ({ signal }) =>
        new Promise((_, reject) => {
          const t = setTimeout(() => reject(new Error('never')), 5000)
          signal.addEventListener('abort', () => {
            clearTimeout(t)
            seen.push(signal.reason)
            reject(new Error('stopped'))
          })
        }),
      { policy: constant(1), signal: controller.signal, retryBudget: null },
    )
    setTimeout(() => controller.abort(new Error('user left')), 20)
    await assert.rejects(promise, /user left/)
    assert.equal(seen.length, 1, 'one attempt, stopped')
    assert.equal(seen[0].message, 'user left')
    assert.equal(deadlines.pending(), 0)
  })

  test('the caller’s signal ends a wait between attempts early', async () => {
    const controller = new AbortController()
    let calls = 0
    const started = performance.now()
    const promise = retry(
      async () => {
        calls++
        throw new Error('down')
      },
      { policy: constant(5000), signal: controller.signal, retryBudget: null },
    )
    setTimeout(() => controller.abort(new Error('user left')), 20)
    await assert.rejects(promise, /user left/)
    assert.equal(calls, 1)
    assert.ok(performance.now() - started < 1000, 'did not wait 5 s')
  })

  test('an already aborted signal means no call at all', async () => {
    let called = false
    await assert.rejects(
      retry(
        () => {
          called = true
        },
        { signal: AbortSignal.abort(new Error('too late')) },
      ),
      /too late/,
    )
    assert.equal(called, false)
  })

  test('without a budget, every call still has one: the policy maximum', async () => {
    const original = TimeoutPolicy.getGlobal()
    TimeoutPolicy.setGlobal(new TimeoutPolicy({ maxTimeoutMs: 40 }))
    try {
      const started = performance.now()
      const error = await retry(
        ({ signal }) =>
          new Promise((_, reject) => {
            const t = setTimeout(() => reject(new Error('never')), 5000)
            signal.addEventListener('abort', () => {
              clearTimeout(t)
              reject(signal.reason)
            })
          }),
        { policy: constant(1, 1), retryBudget: null },
      ).then(
        () => assert.fail('resolved'),
        (e) => e,
      )
      assert.ok(error instanceof DeadlineExceededError)
      assert.ok(performance.now() - started < 1000)
    } finally {
      TimeoutPolicy.setGlobal(original)
    }
  })

  test('bad options are rejections naming the option', async () => {
    await assert.rejects(retry('fn'), TypeError)
    await assert.rejects(retry(() => 1, null), TypeError)
    await assert.rejects(retry(() => 1, { policy: 3 }), { name: 'TypeError', field: 'policy' })
    await assert.rejects(retry(() => 1, { policy: { maxAttempts: 0 } }), { name: 'RangeError', field: 'maxAttempts' })
    await assert.rejects(retry(() => 1, { budget: 100 }), { name: 'TypeError', field: 'budget' })
    await assert.rejects(retry(() => 1, { retryBudget: 'global' }), { name: 'TypeError', field: 'retryBudget' })
    await assert.rejects(retry(() => 1, { attemptTimeoutMs: '1s' }), { name: 'TypeError', field: 'attemptTimeoutMs' })
    await assert.rejects(retry(() => 1, { attemptTimeoutMs: -1 }), { name: 'RangeError', field: 'attemptTimeoutMs' })
    await assert.rejects(retry(() => 1, { attemptTimeoutMs: NaN }), { name: 'RangeError', field: 'attemptTimeoutMs' })
    await assert.rejects(retry(() => 1, { isRetryable: true }), { name: 'TypeError', field: 'isRetryable' })
    await assert.rejects(retry(() => 1, { signal: {} }), { name: 'TypeError', field: 'signal' })
    await sleep(0)
  })

  test('a breaker rejection is an error like any other for retry() (honoured, then given up)', async () => {
    const breaker = new CircuitBreaker()
    breaker.forceOpen()
    let calls = 0
    const error = await retry(() => breaker.run(() => calls++), { policy: constant(1, 3), retryBudget: null }).then(
      () => assert.fail('resolved'),
      (e) => e,
    )
    assert.ok(error instanceof BreakerOpenError)
    assert.equal(calls, 0)
    assert.equal(breaker.metrics().rejected, 3, 'forced open gives no hint: the backoff applies, 3 attempts')
  })
})
