// TimeoutPolicy and Budget through the public API. Arithmetic runs on a ManualClock; the tests
// of run() and signal that need real deadlines use short real timers and work that holds a
// timer of its own (as real work holds a socket), so that the test observes the work stopping.

import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'

import {
  Budget,
  BudgetExhaustedError,
  DeadlineExceededError,
  InvalidHeaderError,
  ManualClock,
  SeawallError,
  TimeoutPolicy,
} from 'seawall'

import deadlines from '../lib/deadlines.js'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Work that runs `ms` on a timer of its own and stops (clears it) when `signal` aborts. */
function cancellableWork(ms, signal, log) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      log.push('finished')
      resolve('done')
    }, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      log.push('stopped')
      reject(signal.reason)
    })
  })
}

function onManualClock(timeoutMs, policyOptions) {
  const clock = new ManualClock(1000)
  const policy = new TimeoutPolicy(policyOptions)
  return { clock, policy, budget: new Budget({ timeoutMs, policy, clock }) }
}

describe('TimeoutPolicy', () => {
  test('defaults: 15 s maximum, no scaling, 10 ms to start', () => {
    const p = new TimeoutPolicy()
    assert.equal(p.maxTimeoutMs, 15_000)
    assert.equal(p.scale, 1)
    assert.equal(p.minToStartMs, 10)
    assert.deepEqual(p.toJSON(), { maxTimeoutMs: 15_000, scale: 1, minToStartMs: 10 })
    assert.deepEqual(new TimeoutPolicy({}).toJSON(), p.toJSON())
  })

  test('keeps the values given, to the nanosecond', () => {
    const p = new TimeoutPolicy({ maxTimeoutMs: 2500.5, scale: 0.25, minToStartMs: 0.001 })
    assert.equal(p.maxTimeoutMs, 2500.5)
    assert.equal(p.scale, 0.25)
    assert.equal(p.minToStartMs, 0.001)
  })

  test('the global policy is the core default until replaced, and replacing it applies to new budgets only', () => {
    const original = TimeoutPolicy.getGlobal()
    after(() => TimeoutPolicy.setGlobal(original))
    assert.deepEqual(original.toJSON(), new TimeoutPolicy().toJSON())
    const clock = new ManualClock()
    const before = new Budget({ timeoutMs: 60_000, clock })
    assert.equal(before.remainingMs, 15_000, 'capped by the default maximum')
    TimeoutPolicy.setGlobal(new TimeoutPolicy({ maxTimeoutMs: 8000, scale: 0.5 }))
    assert.deepEqual(TimeoutPolicy.getGlobal().toJSON(), { maxTimeoutMs: 8000, scale: 0.5, minToStartMs: 10 })
    const during = new Budget({ timeoutMs: 60_000, clock })
    assert.equal(during.remainingMs, 8000)
    assert.equal(new Budget({ timeoutMs: 4000, clock }).remainingMs, 2000, 'halved')
    assert.equal(during.policy.maxTimeoutMs, 8000)
    assert.equal(before.remainingMs, 15_000, 'a budget keeps the policy it was made under')
    assert.equal(before.policy.maxTimeoutMs, 15_000)
  })

  test('setGlobal takes only a TimeoutPolicy', () => {
    for (const bad of [undefined, null, { maxTimeoutMs: 1000 }, 5]) {
      assert.throws(() => TimeoutPolicy.setGlobal(bad), TypeError)
    }
  })
})

describe('Budget', () => {
  test('remainingMs, isExpired and deadlineMs follow the clock', () => {
    const { clock, budget } = onManualClock(2000)
    assert.equal(budget.deadlineMs, 3000)
    assert.equal(budget.remainingMs, 2000)
    assert.equal(budget.isExpired, false)
    clock.advance(1500)
    assert.equal(budget.remainingMs, 500)
    clock.advance(499.5)
    assert.equal(budget.remainingMs, 0.5)
    assert.equal(budget.isExpired, false)
    clock.advance(0.5)
    assert.equal(budget.remainingMs, 0)
    assert.equal(budget.isExpired, true, 'expired from the deadline itself on')
    clock.advance(10_000)
    assert.equal(budget.remainingMs, 0)
  })

  test('the policy scales then caps the timeout', () => {
    assert.equal(onManualClock(4000, { scale: 0.5 }).budget.remainingMs, 2000)
    assert.equal(onManualClock(60_000, { scale: 0.5 }).budget.remainingMs, 15_000)
    assert.equal(onManualClock(60_000, { maxTimeoutMs: 100 }).budget.remainingMs, 100)
  })

  test('child() ends at the earlier deadline, its cap scaled', () => {
    const { clock, budget } = onManualClock(2000, { scale: 0.5 })
    const short = budget.child(400)
    assert.equal(short.remainingMs, 200)
    assert.equal(short.deadlineMs, 1200)
    const long = budget.child(10_000)
    assert.equal(long.deadlineMs, budget.deadlineMs)
    assert.equal(long.policy, budget.policy, 'same policy')
    clock.advance(200)
    assert.equal(short.isExpired, true)
    assert.equal(budget.isExpired, false)
    assert.ok(long instanceof Budget)
  })

  test('timeoutFor() is min(remaining, cap × scale, maximum) and refuses when too little is left', () => {
    const { clock, budget } = onManualClock(10_000, { maxTimeoutMs: 5000, scale: 0.5, minToStartMs: 20 })
    assert.equal(budget.remainingMs, 5000)
    assert.equal(budget.timeoutFor(), 5000)
    assert.equal(budget.timeoutFor(600), 300)
    assert.equal(budget.timeoutFor(100_000), 5000)
    clock.advance(4900)
    assert.equal(budget.timeoutFor(), 100)
    assert.equal(budget.timeoutFor(400), 100)
    clock.advance(80)
    assert.equal(budget.timeoutFor(), 20, 'exactly minToStartMs left is enough')
    clock.advance(1)
    const e = assert.throws(() => budget.timeoutFor(), BudgetExhaustedError)
    void e
    try {
      budget.timeoutFor(5)
      assert.fail('not refused')
    } catch (error) {
      assert.ok(error instanceof BudgetExhaustedError)
      assert.ok(error instanceof SeawallError)
      assert.equal(error.code, 'SEAWALL_BUDGET_EXHAUSTED')
      assert.equal(error.remainingMs, 19)
      assert.equal(error.minToStartMs, 20)
      assert.equal(error.message, 'budget exhausted: 19 ms left, a call needs at least 20 ms to start')
      assert.ok(error.stack.includes('budget.test.mjs'), 'a synchronous throw keeps its stack')
    }
  })

  test('check() gives the time left or refuses', () => {
    const { clock, budget } = onManualClock(100)
    assert.equal(budget.check(), 100)
    clock.advance(95)
    assert.throws(() => budget.check(), BudgetExhaustedError)
    const zero = onManualClock(0, { minToStartMs: 0 }).budget
    assert.throws(() => zero.check(), BudgetExhaustedError, 'a zero budget is exhausted even with no minimum')
  })

  test('toHeader() writes grpc-timeout (default) or milliseconds, rounded down', () => {
    const { clock, budget } = onManualClock(2000)
    clock.advance(350.0004)
    assert.equal(budget.toHeader(), '1649999u')
    assert.equal(budget.toHeader('grpc-timeout'), '1649999u')
    assert.equal(budget.toHeader('timeout-ms'), '1649')
    clock.advance(10_000)
    assert.equal(budget.toHeader(), '0n')
    assert.equal(budget.toHeader('timeout-ms'), '0')
  })

  test('fromHeader() decodes, caps at the policy maximum without scaling, and round-trips', () => {
    const clock = new ManualClock(500)
    const policy = new TimeoutPolicy({ maxTimeoutMs: 10_000, scale: 0.5 })
    const b = Budget.fromHeader('1500m', { clock, policy })
    assert.equal(b.remainingMs, 1500, 'the caller’s deadline is not scaled')
    assert.equal(b.deadlineMs, 2000)
    assert.equal(b.policy, policy)
    assert.equal(Budget.fromHeader('1H', { clock, policy }).remainingMs, 10_000, 'capped')
    assert.equal(Budget.fromHeader(' 250 ', { format: 'timeout-ms', clock, policy }).remainingMs, 250)
    assert.equal(Budget.fromHeader('2S', { clock }).remainingMs, 2000, 'global policy by default')
    const again = Budget.fromHeader(b.toHeader(), { clock, policy })
    assert.equal(again.remainingMs, b.remainingMs)
    // Caps applied under a decoded budget still scale.
    assert.equal(b.timeoutFor(1000), 500)
  })

  test('fromHeader() refuses garbage with InvalidHeaderError, and non-strings with TypeError', () => {
    for (const [value, format] of [
      ['', 'grpc-timeout'],
      ['soon', 'grpc-timeout'],
      ['10', 'grpc-timeout'],
      ['-5m', 'grpc-timeout'],
      ['1.5S', 'grpc-timeout'],
      ['123456789m', 'grpc-timeout'],
      ['1 m', 'grpc-timeout'],
      ['5ms', 'timeout-ms'],
      ['1e3', 'timeout-ms'],
      ['9999999999999999', 'timeout-ms'],
      ['x'.repeat(10_000), 'timeout-ms'],
    ]) {
      let error
      try {
        Budget.fromHeader(value, { format })
      } catch (e) {
        error = e
      }
      assert.ok(error instanceof InvalidHeaderError, `${JSON.stringify(value.slice(0, 20))}: ${error}`)
      assert.ok(error instanceof SeawallError)
      assert.equal(error.name, 'InvalidHeaderError')
      assert.equal(error.code, 'SEAWALL_INVALID_HEADER')
      assert.equal(error.header, format)
      assert.equal(error.value, value.slice(0, 64))
      assert.equal(typeof error.reason, 'string')
      assert.ok(error.message.startsWith(`invalid ${format} header value`), error.message)
    }
    for (const value of [undefined, null, 100, ['1S'], Buffer.from('1S')]) {
      const e = assert.throws(() => Budget.fromHeader(value), TypeError)
      void e
    }
    assert.throws(() => Budget.fromHeader('1S', { format: 'grpc' }), RangeError)
    assert.throws(() => Budget.fromHeader('1S', { format: 'toString' }), RangeError)
    assert.throws(() => Budget.fromHeader('1S', { format: 5 }), TypeError)
    assert.throws(() => Budget.fromHeader('1S', { policy: {} }), TypeError)
    assert.throws(() => Budget.fromHeader('1S', 'grpc-timeout'), TypeError)
  })

  test('toHeader() refuses an unknown format', () => {
    const { budget } = onManualClock(100)
    assert.throws(() => budget.toHeader('grpc'), { name: 'RangeError', code: 'SEAWALL_INVALID_ARGUMENT', field: 'format' })
    assert.throws(() => budget.toHeader(null), TypeError)
  })

  test('a budget on the default clock reads performance.now()', async () => {
    const b = new Budget({ timeoutMs: 1000 })
    const first = b.remainingMs
    assert.ok(first <= 1000 && first > 900, `${first}`)
    assert.ok(Math.abs(b.deadlineMs - (performance.now() + first)) < 50)
    await sleep(20)
    assert.ok(b.remainingMs <= first - 15, 'time passes')
  })
})

describe('Budget#run', () => {
  test('resolves with what the work gives, sync or async, and passes a signal only when asked for', async () => {
    const { budget } = onManualClock(1000)
    assert.equal(await budget.run(() => 1), 1)
    assert.equal(await budget.run(async () => 2), 2)
    let args
    await budget.run((...a) => {
      args = a
    })
    assert.deepEqual(args, [], 'no parameter declared, no signal made')
    let signal
    assert.equal(
      await budget.run(async (s) => {
        signal = s
        return 3
      }),
      3,
    )
    assert.ok(signal instanceof AbortSignal)
    assert.equal(signal.aborted, false)
    // A thenable that is not a Promise counts as async work; one that cannot even be read is
    // a rejection, not a throw.
    assert.equal(await budget.run(() => ({ then: (resolve) => resolve(4) })), 4)
    const hostile = new Error('no then for you')
    const result = budget.run(() => ({
      get then() {
        throw hostile
      },
    }))
    await assert.rejects(result, (e) => e === hostile)
  })

  test('rejects with the work’s own error, sync or async', async () => {
    const { budget } = onManualClock(1000)
    const e1 = new Error('sync')
    await assert.rejects(
      budget.run(() => {
        throw e1
      }),
      (e) => e === e1,
    )
    const e2 = new Error('async')
    await assert.rejects(
      budget.run(async () => {
        throw e2
      }),
      (e) => e === e2,
    )
    assert.equal(deadlines.pending(), 0, 'finished work leaves nothing queued')
  })

  test('an exhausted budget rejects with BudgetExhaustedError without calling the work', async () => {
    const { clock, budget } = onManualClock(100)
    clock.advance(95)
    let called = false
    const error = await budget
      .run(() => {
        called = true
      })
      .then(
        () => assert.fail('not rejected'),
        (e) => e,
      )
    assert.equal(called, false)
    assert.ok(error instanceof BudgetExhaustedError)
    assert.equal(error.code, 'SEAWALL_BUDGET_EXHAUSTED')
    assert.equal(error.remainingMs, 5)
    assert.equal(typeof error.stack, 'string')
  })

  test('rejects with DeadlineExceededError at the deadline, aborting the work’s signal, and the work stops', async () => {
    const budget = new Budget({ timeoutMs: 40 })
    const log = []
    let seen
    const started = performance.now()
    const error = await budget
      .run((signal) => {
        seen = signal
        return cancellableWork(5000, signal, log)
      })
      .then(
        () => assert.fail('not rejected'),
        (e) => e,
      )
    const took = performance.now() - started
    assert.ok(error instanceof DeadlineExceededError, `${error}`)
    assert.ok(error instanceof SeawallError)
    assert.equal(error.code, 'SEAWALL_DEADLINE_EXCEEDED')
    assert.ok(error.timeoutMs > 30 && error.timeoutMs <= 40, `${error.timeoutMs}`)
    assert.ok(took >= 35 && took < 1000, `rejected after ${took} ms`)
    assert.equal(seen.aborted, true)
    assert.equal(seen.reason, error, 'the signal aborts with the same error')
    assert.deepEqual(log, ['stopped'], 'the work heard the abort and stopped')
    await sleep(20)
    assert.deepEqual(log, ['stopped'], 'and never finished')
    assert.equal(deadlines.pending(), 0)
  })

  test('cancelled work is observed to stop: a ticking worker makes no progress after the deadline', async () => {
    const budget = new Budget({ timeoutMs: 40 })
    let ticks = 0
    await assert.rejects(
      budget.run(
        (signal) =>
          new Promise((_, reject) => {
            const interval = setInterval(() => ticks++, 2)
            signal.addEventListener('abort', () => {
              clearInterval(interval)
              reject(signal.reason)
            })
          }),
      ),
      DeadlineExceededError,
    )
    const atDeadline = ticks
    assert.ok(atDeadline > 0, 'the work ran until the deadline')
    await sleep(40)
    assert.equal(ticks, atDeadline, 'no tick after the deadline')
  })

  test('work that finishes first clears its deadline', async () => {
    const budget = new Budget({ timeoutMs: 60 })
    const log = []
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => budget.run((signal) => cancellableWork(1 + (i % 5), signal, log))),
    )
    assert.equal(results.length, 50)
    assert.equal(deadlines.pending(), 0, 'nothing left in the queue')
    await sleep(80)
    assert.ok(!log.includes('stopped'), 'no late abort after the work finished')
  })

  test('many concurrent deadlines fire in order and none early', async () => {
    const timeouts = Array.from({ length: 40 }, (_, i) => 20 + ((i * 37) % 60))
    const fired = []
    await Promise.all(
      timeouts.map((t) => {
        const budget = new Budget({ timeoutMs: t })
        return budget.run((signal) => cancellableWork(5000, signal, [])).catch((e) => {
          assert.ok(e instanceof DeadlineExceededError, `${e}`)
          fired.push({ deadline: budget.deadlineMs, at: performance.now() })
        })
      }),
    )
    assert.equal(fired.length, timeouts.length)
    for (const f of fired) assert.ok(f.at >= f.deadline, `fired ${f.deadline - f.at} ms early`)
    const order = fired.map((f) => f.deadline)
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'earliest deadline first')
    assert.equal(deadlines.pending(), 0)
  })

  test('the policy maximum bounds run() even when the budget was asked for more', async () => {
    const policy = new TimeoutPolicy({ maxTimeoutMs: 30 })
    const budget = new Budget({ timeoutMs: 60_000, policy })
    const started = performance.now()
    await assert.rejects(
      budget.run((signal) => cancellableWork(5000, signal, [])),
      DeadlineExceededError,
    )
    assert.ok(performance.now() - started < 1000)
  })

  test('a non-function is a rejection, not a throw', async () => {
    const { budget } = onManualClock(1000)
    await assert.rejects(budget.run('nope'), TypeError)
  })
})

describe('Budget#signal', () => {
  test('is created once and aborts with DeadlineExceededError at the deadline', async () => {
    const budget = new Budget({ timeoutMs: 30 })
    const signal = budget.signal
    assert.equal(budget.signal, signal, 'the same signal every time')
    assert.equal(signal.aborted, false)
    const reason = await new Promise((resolve) => {
      const keepAlive = setTimeout(() => resolve('never aborted'), 2000)
      signal.addEventListener('abort', () => {
        clearTimeout(keepAlive)
        resolve(signal.reason)
      })
    })
    assert.ok(reason instanceof DeadlineExceededError, `${reason}`)
    assert.equal(budget.isExpired, true)
  })

  test('is already aborted for an expired budget', () => {
    const { clock, budget } = onManualClock(10)
    clock.advance(10)
    assert.equal(budget.signal.aborted, true)
    assert.ok(budget.signal.reason instanceof DeadlineExceededError)
  })
})
