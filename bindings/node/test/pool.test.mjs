// The Pool adapter with in-memory fake connections: limits, fairness, cancellation, release
// rules, validation, broken connections, leaks, drain, resize, the breaker guarding connection
// attempts, budgets, events and metrics. Time is a ManualClock wherever a test depends on it,
// so nothing here sleeps on a timer: only promises settle (`settle()`).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import {
  Budget,
  BudgetExhaustedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  DeadlineExceededError,
  ManualClock,
  Pool,
  PoolClosedError,
  PoolOverloadedError,
  PoolReleaseError,
  PoolTimeoutError,
  SeawallError,
  TimeoutPolicy,
} from 'seawall'

/** Lets every pending promise callback run (creates, validations and closes are promises). */
const settle = () => new Promise((resolve) => setImmediate(resolve))

/** A promise and the functions that settle it. */
function deferred() {
  let resolve
  let reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * An in-memory database: connections are plain objects; it can refuse connections, hold them
 * (a create that never answers until told), and records what the pool asked of it.
 */
class FakeDb {
  created = 0
  attempts = 0
  closed = []
  validated = []
  /** 'up', 'down' (creates reject) or 'hold' (creates wait for `release()`). */
  mode = 'up'
  held = []
  contexts = []
  /** What validate answers. */
  valid = true

  options() {
    return {
      create: async (context) => {
        this.attempts++
        this.contexts.push(context)
        if (this.mode === 'down') throw new Error('connection refused')
        if (this.mode === 'hold') {
          const d = deferred()
          this.held.push(d)
          await d.promise
        }
        this.created++
        return { id: this.created, closed: false, query: (sql) => `${sql} on ${this.created}` }
      },
      destroy: async (conn) => {
        conn.closed = true
        this.closed.push(conn.id)
      },
      validate: async (conn) => {
        this.validated.push(conn.id)
        return this.valid
      },
    }
  }
}

function pool(db, extra = {}) {
  return new Pool({ ...db.options(), validateAfterMs: null, ...extra })
}

describe('limits and fairness', () => {
  test('never opens more than maxSize connections; the rest wait and are served as connections come back', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 3 })
    const pending = Array.from({ length: 10 }, () => p.acquire())
    await settle()
    assert.equal(db.attempts, 3)
    const first = await Promise.all(pending.slice(0, 3))
    assert.deepEqual(first.map((c) => c.id).sort(), [1, 2, 3])
    assert.equal(p.metrics().pendingRequests, 7)
    assert.equal(p.metrics().used, 3)
    // Serve everyone: release each connection as soon as it is handed out.
    const served = []
    for (const c of first) p.release(c)
    for (const promise of pending.slice(3)) {
      const c = await promise
      served.push(c.id)
      p.release(c)
    }
    assert.equal(served.length, 7)
    assert.equal(db.attempts, 3, 'connections were reused, not reopened')
    const m = p.metrics()
    assert.deepEqual([m.idle, m.used, m.max, m.acquired, m.released], [3, 0, 3, 10, 10])
  })

  test('waiters are served oldest first', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const holder = await p.acquire()
    const order = []
    const waits = ['a', 'b', 'c', 'd'].map((name) =>
      p.acquire().then((c) => {
        order.push(name)
        p.release(c)
      }),
    )
    await settle()
    p.release(holder)
    await Promise.all(waits)
    assert.deepEqual(order, ['a', 'b', 'c', 'd'])
  })

  test('past maxWaiters an acquire fails at once with PoolOverloadedError, without a stack capture', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, maxWaiters: 2 })
    const holder = await p.acquire()
    const queued = [p.acquire(), p.acquire()]
    const error = await p.acquire().then(
      () => assert.fail('queued beyond maxWaiters'),
      (e) => e,
    )
    assert.ok(error instanceof PoolOverloadedError)
    assert.ok(error instanceof SeawallError)
    assert.equal(error.code, 'SEAWALL_POOL_OVERLOADED')
    assert.equal(error.name, 'PoolOverloadedError')
    assert.equal(error.maxWaiters, 2)
    assert.equal(error.waiting, 2)
    assert.equal(error.stack.split('\n').length, 1, 'a flood of refusals must not pay for stacks')
    assert.equal(p.metrics().overloaded, 1)
    p.release(holder)
    for (const q of queued) p.release(await q)
  })

  test('a wait ends at acquireTimeoutMs with PoolTimeoutError and the numbers of the moment', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, acquireTimeoutMs: 100, clock })
    const holder = await p.acquire()
    const waiting = p.acquire()
    clock.advance(99)
    await settle()
    clock.advance(1)
    const error = await waiting.then(
      () => assert.fail('served'),
      (e) => e,
    )
    assert.ok(error instanceof PoolTimeoutError)
    assert.equal(error.code, 'SEAWALL_POOL_TIMEOUT')
    assert.equal(error.waitedMs, 100)
    assert.equal(error.inUse, 1)
    assert.equal(error.idle, 0)
    assert.equal(error.waiting, 1)
    assert.equal(error.oldestCheckoutAgeMs, 100)
    assert.match(error.message, /timed out after 100 ms waiting for a connection \(1 in use, 0 idle, 1 waiting/)
    assert.equal(p.metrics().timeouts, 1)
    p.release(holder)
  })

  test('a budget that ends before acquireTimeoutMs bounds the wait; an exhausted one fails at once', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, acquireTimeoutMs: 5000, clock })
    const holder = await p.acquire()
    const policy = new TimeoutPolicy()
    const waiting = p.acquire({ budget: new Budget({ timeoutMs: 200, policy, clock }) })
    clock.advance(200)
    await assert.rejects(waiting, (e) => e instanceof BudgetExhaustedError && e.code === 'SEAWALL_BUDGET_EXHAUSTED')
    await assert.rejects(p.acquire({ budget: new Budget({ timeoutMs: 5, policy, clock }) }), BudgetExhaustedError)
    assert.equal(p.metrics().pendingRequests, 0)
    p.release(holder)
  })

  test('a budget on another clock keeps its time left on the pool clock', async () => {
    const poolClock = new ManualClock(1_000_000)
    const budgetClock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, clock: poolClock })
    const holder = await p.acquire()
    const waiting = p.acquire({ budget: new Budget({ timeoutMs: 300, policy: new TimeoutPolicy(), clock: budgetClock }) })
    poolClock.advance(299)
    await settle()
    assert.equal(p.metrics().pendingRequests, 1)
    poolClock.advance(1)
    await assert.rejects(waiting, BudgetExhaustedError)
    p.release(holder)
  })
})

describe('cancellation', () => {
  test('an aborted signal ends the wait with its reason, and the connection goes to the next waiter', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const holder = await p.acquire()
    const holderId = holder.id
    const controller = new AbortController()
    const cancelled = p.acquire({ signal: controller.signal })
    const next = p.acquire()
    await settle()
    const reason = new Error('client went away')
    controller.abort(reason)
    await assert.rejects(cancelled, (e) => e === reason)
    assert.equal(p.metrics().pendingRequests, 1)
    p.release(holder)
    const c = await next
    assert.equal(c.id, holderId)
    p.release(c)
  })

  test('an already aborted signal rejects at once and queues nothing', async () => {
    const db = new FakeDb()
    const p = pool(db)
    await assert.rejects(p.acquire({ signal: AbortSignal.abort(new Error('too late')) }), /too late/)
    assert.equal(db.attempts, 0)
    assert.equal(p.metrics().pendingRequests, 0)
  })

  test('a connection being validated for a caller who gives up goes back to the pool', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const checks = []
    const p = new Pool({
      ...db.options(),
      validate: () => {
        const d = deferred()
        checks.push(d)
        return d.promise
      },
      validateAfterMs: 10,
      maxSize: 1,
      clock,
    })
    p.release(await p.acquire())
    clock.advance(11)
    const controller = new AbortController()
    const giving = p.acquire({ signal: controller.signal })
    await settle()
    assert.equal(checks.length, 1, 'the idle connection is being validated for this caller')
    controller.abort(new Error('gave up'))
    await assert.rejects(giving, /gave up/)
    checks[0].resolve(true)
    await settle()
    const m = p.metrics()
    assert.deepEqual([m.idle, m.used, m.pendingRequests], [1, 0, 0])
    // Still idle since its release at 0, so it is validated again, for this caller.
    const next = p.acquire()
    await settle()
    assert.equal(checks.length, 2)
    checks[1].resolve(true)
    const again = await next
    assert.equal(again.id, 1, 'the same connection, not a new one')
    assert.equal(db.attempts, 1)
    p.release(again)
  })
  test('a connection the engine handed to a caller who gave up in the meantime goes back to the pool', async () => {
    // FIFO order: the older connection (1) is validated and fails, the newer one (2) is handed
    // over in the same engine decision. The caller gives up while connection 1 is being closed,
    // after that decision and before its hand-off is performed.
    const clock = new ManualClock(0)
    const controller = new AbortController()
    let closed = 0
    let opened = 0
    const p = new Pool({
      create: async () => ({ id: ++opened }),
      destroy: () => {
        closed++
        controller.abort(new Error('gave up'))
      },
      validate: async () => false,
      validateAfterMs: 150,
      idleOrder: 'fifo',
      maxSize: 2,
      clock,
    })
    const [a, b] = await Promise.all([p.acquire(), p.acquire()])
    p.release(a)
    clock.advance(100)
    p.release(b)
    clock.advance(100)
    await assert.rejects(p.acquire({ signal: controller.signal }), /gave up/)
    assert.equal(closed, 1)
    const m = p.metrics()
    assert.deepEqual([m.idle, m.used, m.pendingRequests, m.acquired, m.released], [1, 0, 0, 3, 3])
    const again = await p.acquire()
    assert.equal(again.id, 2, 'the connection handed to the caller who gave up is there for the next one')
    p.release(again)
  })
})

describe('release', () => {
  test('a connection released twice is refused, and a stale handle never returns the next holder\'s checkout', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const first = await p.acquire()
    p.release(first)
    assert.throws(
      () => p.release(first),
      (e) => e instanceof PoolReleaseError && e.code === 'SEAWALL_POOL_RELEASE' && e.reason === 'already_released',
    )
    const second = await p.acquire()
    // The same connection is now someone else's: the old handle can neither release nor use it.
    assert.throws(() => p.release(first), (e) => e.reason === 'already_released')
    assert.throws(() => first.query('SELECT 1'), (e) => e instanceof PoolReleaseError && e.reason === 'used_after_release')
    assert.equal(p.metrics().used, 1, 'the second checkout is still out')
    assert.equal(second.query('SELECT 1'), 'SELECT 1 on 1')
    p.release(second)
  })

  test('the released connection handed synchronously to a waiter cannot be released again by its old holder', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const a = await p.acquire()
    const waiting = p.acquire()
    await settle()
    p.release(a) // handed to the waiter inside this call
    assert.throws(() => p.release(a), PoolReleaseError)
    const b = await waiting
    assert.equal(p.metrics().used, 1)
    p.release(b)
  })

  test('a connection that was not acquired from this pool is refused', async () => {
    const db = new FakeDb()
    const p = pool(db)
    const other = pool(new FakeDb())
    const theirs = await other.acquire()
    for (const bad of [theirs, {}, null, 42]) {
      assert.throws(() => p.release(bad), (e) => e instanceof PoolReleaseError && e.reason === 'unknown')
    }
    assert.throws(() => p.release(theirs, { broken: 'yes' }), TypeError)
    other.release(theirs)
  })

  test('a checkout is the connection itself: properties, methods (bound to it) and instanceof', async () => {
    class Conn {
      #secret = 41
      state = 'fresh'
      answer() {
        return this.#secret + 1
      }
    }
    const p = new Pool({ create: async () => new Conn() })
    const c = await p.acquire()
    assert.ok(c instanceof Conn)
    assert.equal(c.answer(), 42, 'methods reach #private fields')
    c.state = 'used'
    assert.equal(c.constructor, Conn)
    p.release(c)
    const again = await p.acquire()
    assert.equal(again.state, 'used', 'writes went to the connection')
    p.release(again)
  })
})

describe('use()', () => {
  test('returns what fn returns and always releases, also when fn throws', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    assert.equal(await p.use((c) => c.query('SELECT 1')), 'SELECT 1 on 1')
    await assert.rejects(
      p.use(async () => {
        throw new Error('query failed')
      }),
      /query failed/,
    )
    const m = p.metrics()
    assert.deepEqual([m.acquired, m.released, m.used, m.idle], [2, 2, 0, 1])
    assert.deepEqual(db.closed, [], 'an error says nothing about the connection unless isBroken says so')
  })

  test('an error that isBroken calls fatal closes the connection; others keep it', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, isBroken: (e) => e.message === 'socket hang up' })
    await assert.rejects(
      p.use(() => {
        throw new Error('syntax error')
      }),
    )
    assert.deepEqual(db.closed, [])
    await assert.rejects(
      p.use(() => {
        throw new Error('socket hang up')
      }),
    )
    await settle()
    assert.deepEqual(db.closed, [1])
    assert.equal(await p.use((c) => c.id), 2, 'a new connection replaced it')
  })

  test('a throwing isBroken closes the connection and its own error is what the caller sees', async () => {
    const db = new FakeDb()
    const bug = new Error('classifier bug')
    const p = pool(db, {
      isBroken: () => {
        throw bug
      },
    })
    await assert.rejects(
      p.use(() => {
        throw new Error('query failed')
      }),
      (e) => e === bug,
    )
    await settle()
    assert.deepEqual(db.closed, [1])
  })

  test('fn may release the connection itself; use() does not release it twice', async () => {
    const db = new FakeDb()
    const p = pool(db)
    await p.use((c) => p.release(c))
    assert.equal(p.metrics().released, 1)
  })
})

describe('broken connections and validation', () => {
  test('a connection released as broken is closed, never reused', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const c = await p.acquire()
    p.release(c, { broken: true })
    await settle()
    assert.deepEqual(db.closed, [1])
    const next = await p.acquire()
    assert.equal(next.id, 2)
    p.release(next)
  })

  test('markBroken (from an error listener) makes the next release a broken one', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const c = await p.acquire()
    // Detached from its context, as an event listener would hold it.
    const { markBroken } = db.contexts[0]
    markBroken()
    p.release(c)
    await settle()
    assert.deepEqual(db.closed, [1])
  })

  test('an idle connection marked broken is closed at once and never handed out', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, validateAfterMs: null })
    p.release(await p.acquire())
    // The client's socket dies while it sits idle (pg emits 'error').
    db.contexts[0].markBroken()
    await settle()
    assert.deepEqual(db.closed, [1])
    const c = await p.acquire()
    assert.equal(db.contexts.length, 2, 'a fresh connection, not the dead one')
    p.release(c)
  })

  test('a connection idle longer than validateAfterMs is validated; a failed one is replaced', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, validateAfterMs: 100, clock })
    p.release(await p.acquire())
    clock.advance(50)
    p.release(await p.acquire())
    assert.deepEqual(db.validated, [], 'used within the window: not validated')
    clock.advance(101)
    const c = await p.acquire()
    assert.deepEqual(db.validated, [1])
    assert.equal(c.id, 1)
    p.release(c)
    clock.advance(101)
    db.valid = false
    const replaced = await p.acquire()
    await settle()
    assert.deepEqual(db.closed, [1])
    assert.equal(replaced.id, 2)
    p.release(replaced)
  })

  test('a validation that throws counts as failed; one that resolves to undefined counts as passed', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    let answer = () => undefined
    const p = new Pool({ ...db.options(), validate: async () => answer(), validateAfterMs: 0, maxSize: 1, clock })
    p.release(await p.acquire())
    clock.advance(1)
    const kept = await p.acquire()
    assert.equal(kept.id, 1)
    p.release(kept)
    clock.advance(1)
    answer = () => {
      throw new Error('validation query failed')
    }
    const replaced = await p.acquire()
    assert.equal(replaced.id, 2)
    p.release(replaced)
  })

  test('a connection marked broken while idle fails its validation without calling validate', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1, validateAfterMs: 10, clock })
    p.release(await p.acquire())
    db.contexts[0].markBroken()
    clock.advance(11)
    const c = await p.acquire()
    assert.deepEqual(db.validated, [])
    assert.equal(c.id, 2)
    p.release(c)
  })
})

describe('connection attempts', () => {
  test('a create that outlives createTimeoutMs is abandoned (its signal aborts) and its late connection is closed', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    db.mode = 'hold'
    const p = pool(db, { maxSize: 1, createTimeoutMs: 100, acquireTimeoutMs: 1000, clock })
    const waiting = p.acquire()
    await settle()
    const { signal } = db.contexts[0]
    assert.equal(signal.aborted, false)
    clock.advance(100)
    assert.equal(signal.aborted, true)
    assert.ok(signal.reason instanceof DeadlineExceededError)
    assert.equal(p.metrics().createFailures, 1)
    // The late connection arrives: the pool closes it rather than use or leak it.
    db.mode = 'up'
    db.held[0].resolve()
    await settle()
    assert.deepEqual(db.closed, [1])
    // Meanwhile the waiter got a connection from the next attempt (after the back-off).
    clock.advance(200)
    const c = await waiting
    assert.equal(c.id, 2)
    p.release(c)
  })

  test('failed creates back off, then open the breaker: callers fail fast with DatabaseUnavailableError and no attempt is made', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    db.mode = 'down'
    const p = pool(db, {
      maxSize: 4,
      acquireTimeoutMs: 5000,
      createBackoff: { baseMs: 10, capMs: 10 },
      breaker: { consecutiveFailures: 3, openDurationMs: 1000, halfOpenCalls: 1 },
      clock,
    })
    const transitions = []
    const failures = []
    p.on('breaker', (e) => transitions.push(`${e.from}->${e.to}:${e.reason}`))
    p.on('connectFailed', (e) => failures.push([e.error, e.attempts, e.cause?.message]))
    const outcome = p.acquire().then(
      () => assert.fail('served'),
      (e) => e,
    )
    await settle()
    assert.equal(db.attempts, 1)
    clock.advance(10)
    await settle()
    clock.advance(10)
    await settle()
    const error = await outcome
    assert.equal(db.attempts, 3, 'one attempt per back-off, not a storm')
    assert.ok(error instanceof DatabaseUnavailableError)
    assert.equal(error.code, 'SEAWALL_DATABASE_UNAVAILABLE')
    assert.equal(error.retryAfterMs, 1000)
    assert.equal(error.lastError, 'connection refused')
    assert.equal(error.cause?.message, 'connection refused')
    assert.deepEqual(transitions, ['closed->open:consecutive_failures'])
    assert.deepEqual(failures, [
      ['connection refused', 1, 'connection refused'],
      ['connection refused', 2, 'connection refused'],
      ['connection refused', 3, 'connection refused'],
    ])
    // While open: every caller fails at once and nothing reaches the database.
    clock.advance(500)
    const refusals = await Promise.allSettled(Array.from({ length: 50 }, () => p.acquire()))
    assert.ok(refusals.every((r) => r.status === 'rejected' && r.reason instanceof DatabaseUnavailableError))
    assert.equal(refusals[0].reason.retryAfterMs, 500)
    assert.equal(db.attempts, 3)
    // Half-open: one probe; it succeeds and the pool serves again.
    db.mode = 'up'
    clock.advance(500)
    const c = await p.acquire()
    assert.equal(db.attempts, 4)
    assert.deepEqual(transitions.slice(1), ['open->half_open:open_duration_elapsed', 'half_open->closed:probes_succeeded'])
    p.release(c)
    assert.equal(p.metrics().breakerState, 'closed')
  })

  test('a wait that ends while attempts keep failing is a ConnectFailedError with the last error as cause', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    db.mode = 'down'
    const p = pool(db, {
      acquireTimeoutMs: 100,
      createBackoff: { baseMs: 1000, capMs: 1000 },
      breaker: { consecutiveFailures: 100 },
      clock,
    })
    const waiting = p.acquire()
    await settle()
    clock.advance(100)
    const error = await waiting.then(
      () => assert.fail('served'),
      (e) => e,
    )
    assert.ok(error instanceof ConnectFailedError)
    assert.equal(error.code, 'SEAWALL_CONNECT_FAILED')
    assert.equal(error.attempts, 1)
    assert.equal(error.lastError, 'connection refused')
    assert.equal(error.cause.message, 'connection refused')
  })

  test('create() resolving to something that is not an object is a failed attempt', async () => {
    const clock = new ManualClock(0)
    const p = new Pool({ create: async () => 7, acquireTimeoutMs: 50, clock })
    const reasons = []
    p.on('connectFailed', (e) => reasons.push(e.error))
    const waiting = p.acquire()
    await settle()
    clock.advance(50)
    await assert.rejects(waiting, ConnectFailedError)
    assert.deepEqual(reasons, ['create() must resolve to the connection (an object), got number'])
  })

  test('minIdle connections are opened at start and kept warm after checkouts', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 4, minIdle: 2 })
    await settle()
    assert.equal(p.metrics().idle, 2)
    const c = await p.acquire()
    await settle()
    assert.equal(p.metrics().idle, 2, 'refilled after a checkout took one')
    p.release(c)
  })
})

describe('leaks', () => {
  test('a checkout held past leakThresholdMs is reported once with where it was acquired, and again when returned', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { leakThresholdMs: 1000, clock })
    const leaks = []
    const returns = []
    p.on('leak', (e) => leaks.push(e))
    p.on('leakReturned', (e) => returns.push(e))
    const c = await (async function forgetfulHandler() {
      return p.acquire()
    })()
    clock.advance(999)
    assert.equal(leaks.length, 0)
    clock.advance(1)
    clock.advance(5000)
    assert.equal(leaks.length, 1, 'reported once')
    assert.equal(leaks[0].heldForMs, 1000)
    assert.match(leaks[0].stack, /forgetfulHandler/)
    assert.match(leaks[0].stack, /pool\.test\.mjs/)
    assert.doesNotMatch(leaks[0].stack, /lib[\\/]pool\.js/, 'the stack starts at the caller')
    assert.equal(p.metrics().leaks, 1)
    p.release(c)
    assert.equal(returns.length, 1)
    assert.equal(returns[0].heldForMs, 6000)
    assert.equal(returns[0].stack, leaks[0].stack)
  })

  test('without leakThresholdMs no stack is captured', async () => {
    const clock = new ManualClock(0)
    const p = pool(new FakeDb(), { clock })
    const c = await p.acquire()
    const [held] = await Promise.all([p.drain({ timeoutMs: 10 }), Promise.resolve(clock.advance(10))])
    assert.equal(held.length, 1)
    assert.equal(held[0].stack, undefined)
    void c
  })
})

describe('drain, resize and metrics', () => {
  test('drain closes idle connections at once and late returns as they come, and reports what is still held', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 3, leakThresholdMs: 60_000, clock })
    const kept = await (async function longRunningJob() {
      return p.acquire()
    })()
    const returned = await p.acquire()
    const returnedId = returned.id
    const idle = await p.acquire()
    const idleId = idle.id
    p.release(idle)
    const drained = []
    p.on('drained', (e) => drained.push(e))
    const done = p.drain({ timeoutMs: 1000 })
    await settle()
    assert.deepEqual(db.closed, [idleId], 'the idle connection closes at once')
    await assert.rejects(p.acquire(), (e) => e instanceof PoolClosedError && e.code === 'SEAWALL_POOL_CLOSED')
    p.release(returned)
    await settle()
    assert.deepEqual(db.closed, [idleId, returnedId], 'a checkout returned during the drain is closed')
    clock.advance(999)
    assert.equal(drained.length, 0)
    clock.advance(1)
    const held = await done
    assert.equal(held.length, 1)
    assert.equal(held[0].heldForMs, 1000)
    assert.match(held[0].stack, /longRunningJob/)
    assert.equal(drained.length, 1)
    assert.deepEqual(drained[0].stillHeld, held)
    assert.deepEqual(db.closed.sort(), [1, 2, 3])
    assert.equal(p.isClosed, true)
    // Its holder's late release is quietly accepted: the pool closed it, there is nothing to give back.
    p.release(kept)
    assert.throws(() => p.release(kept), PoolReleaseError)
  })

  test('drain fails the callers still waiting with PoolClosedError', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const holder = await p.acquire()
    const waiting = [p.acquire(), p.acquire()]
    await settle()
    const done = p.drain()
    for (const w of waiting) await assert.rejects(w, PoolClosedError)
    p.release(holder)
    assert.deepEqual(await done, [])
  })

  test('drain resolves at once when nothing is out, after every close has finished', async () => {
    let closing = 0
    let closed = 0
    const p = new Pool({
      create: async () => ({}),
      destroy: async () => {
        closing++
        await new Promise((resolve) => setTimeout(resolve, 20))
        closed++
      },
      maxSize: 3,
    })
    const cs = await Promise.all([p.acquire(), p.acquire(), p.acquire()])
    for (const c of cs) p.release(c)
    const held = await p.drain()
    assert.deepEqual(held, [])
    assert.deepEqual([closing, closed], [3, 3])
    assert.equal(await p.drain(), held, 'a second drain is the same drain')
  })

  test('drain aborts creates under way and closes what they produce', async () => {
    const db = new FakeDb()
    db.mode = 'hold'
    const p = pool(db, { maxSize: 1 })
    const waiting = p.acquire()
    await settle()
    const done = p.drain({ timeoutMs: 50 })
    await assert.rejects(waiting, PoolClosedError)
    assert.deepEqual(await done, [])
    assert.equal(db.contexts[0].signal.aborted, true)
    assert.ok(db.contexts[0].signal.reason instanceof PoolClosedError)
    db.held[0].resolve()
    await settle()
    assert.deepEqual(db.closed, [1])
  })

  test('resize up serves waiters at once; resize down closes idle connections', async () => {
    const db = new FakeDb()
    const p = pool(db, { maxSize: 1 })
    const a = await p.acquire()
    const waiting = p.acquire()
    await settle()
    assert.equal(db.attempts, 1)
    p.resize(2)
    const b = await waiting
    assert.equal(b.id, 2)
    p.release(a)
    p.release(b)
    p.resize(1)
    await settle()
    assert.equal(p.metrics().idle, 1)
    assert.equal(db.closed.length, 1)
    assert.equal(p.metrics().max, 1)
    assert.throws(() => p.resize(0), (e) => e instanceof RangeError && e.field === 'maxSize' && e.code === 'SEAWALL_INVALID_ARGUMENT')
    assert.throws(() => p.resize('2'), TypeError)
  })

  test('metrics use the OpenTelemetry names and summarise create, wait and use times', async () => {
    const clock = new ManualClock(0)
    const db = new FakeDb()
    const p = pool(db, { maxSize: 2, minIdle: 1, clock })
    const c = await p.acquire()
    clock.advance(40)
    p.release(c)
    await settle()
    const m = p.metrics()
    assert.deepEqual(Object.keys(m), [
      'idle',
      'used',
      'creating',
      'max',
      'idleMax',
      'idleMin',
      'pendingRequests',
      'timeouts',
      'acquired',
      'released',
      'overloaded',
      'unavailable',
      'created',
      'createFailures',
      'destroyed',
      'leaks',
      'createTime',
      'waitTime',
      'useTime',
      'breakerState',
      'oldestCheckoutAgeMs',
    ])
    assert.deepEqual(Object.keys(m.useTime), ['count', 'sumMs', 'maxMs', 'p50Ms', 'p90Ms', 'p99Ms'])
    assert.equal(m.useTime.count, 1)
    assert.equal(m.useTime.maxMs, 40)
    assert.ok(m.useTime.p50Ms >= 20 && m.useTime.p50Ms <= 40)
    assert.equal(m.waitTime.count, 1)
    assert.equal(m.createTime.count, 2, 'the first connection, and the one refilling minIdle after its checkout')
    assert.equal(m.idleMin, 1)
    assert.equal(m.breakerState, 'closed')
    assert.equal(m.oldestCheckoutAgeMs, null)
  })
})

describe('options', () => {
  test('create is required; callbacks must be functions', () => {
    assert.throws(() => new Pool({}), (e) => e instanceof TypeError && e.field === 'create' && e.code === 'SEAWALL_INVALID_CONFIG')
    assert.throws(() => new Pool(), TypeError)
    for (const key of ['destroy', 'validate', 'isBroken']) {
      assert.throws(() => new Pool({ create: async () => ({}), [key]: 'nope' }), (e) => e instanceof TypeError && e.field === key)
    }
    assert.throws(() => new Pool({ create: async () => ({}), clock: {} }), (e) => e.field === 'clock')
  })

  test('numbers are checked by the core, named in JavaScript spelling', () => {
    const create = async () => ({})
    const cases = [
      [{ maxSize: 0 }, RangeError, 'maxSize'],
      [{ maxSize: '8' }, TypeError, 'maxSize'],
      [{ minIdle: 11 }, RangeError, 'minIdle'],
      [{ acquireTimeoutMs: 60_000 }, RangeError, 'acquireTimeoutMs'],
      [{ idleOrder: 'random' }, RangeError, 'idleOrder'],
      [{ idleOrder: 1 }, TypeError, 'idleOrder'],
      [{ createBackoff: { baseMs: 10 } }, TypeError, 'createBackoff.capMs'],
      [{ createBackoff: { baseMs: 100, capMs: 10 } }, RangeError, 'createBackoff.capMs'],
      [{ breaker: { openDurationMs: 0 } }, RangeError, 'breaker.openDurationMs'],
      [{ breaker: { window: { kind: 'sliding' } } }, RangeError, 'breaker.window.kind'],
      [{ breaker: { halfOpenCalls: 'one' } }, TypeError, 'breaker.halfOpenCalls'],
      [{ lifetimeJitter: 1 }, RangeError, 'lifetimeJitter'],
    ]
    for (const [options, type, field] of cases) {
      assert.throws(
        () => new Pool({ create, ...options }),
        (e) => e instanceof type && e.field === field && e.message.includes(field) && e.code === 'SEAWALL_INVALID_CONFIG',
        JSON.stringify(options),
      )
    }
    assert.match(
      (() => {
        try {
          new Pool({ create, minIdle: 11 })
        } catch (e) {
          return e.message
        }
      })(),
      /minIdle must be an integer between 0 and maxSize, got 11/,
    )
  })

  test('the acquire timeout may not exceed the process-wide timeout policy maximum', () => {
    const before = TimeoutPolicy.getGlobal()
    try {
      TimeoutPolicy.setGlobal(new TimeoutPolicy({ maxTimeoutMs: 1000 }))
      assert.throws(() => new Pool({ create: async () => ({}), acquireTimeoutMs: 2000 }), (e) => e.field === 'acquireTimeoutMs')
      assert.throws(() => new Pool({ create: async () => ({}) }), (e) => e.field === 'acquireTimeoutMs', 'the 5 s default too')
      new Pool({ create: async () => ({}), acquireTimeoutMs: 1000 })
    } finally {
      TimeoutPolicy.setGlobal(before)
    }
  })

  test('bad acquire, drain and listener arguments are TypeErrors or RangeErrors', async () => {
    const p = pool(new FakeDb())
    await assert.rejects(p.acquire({ budget: 100 }), (e) => e instanceof TypeError && e.field === 'budget')
    await assert.rejects(p.acquire({ signal: {} }), (e) => e instanceof TypeError && e.field === 'signal')
    await assert.rejects(p.use('fn'), TypeError)
    await assert.rejects(p.drain({ timeoutMs: -1 }), RangeError)
    assert.throws(() => p.on('leaked', () => {}), RangeError)
    assert.throws(() => p.on('leak', 'listener'), TypeError)
  })
})
