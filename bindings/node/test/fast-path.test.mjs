// The breaker's fast path (lib/breaker.js, src/breaker.rs): calls the core would admit, successes
// that change nothing and rejections before the open duration ends are replayed by the facade
// from what the core published, without a native call. These tests use the default clock (the
// path that skips clock reads) as well as a ManualClock, and check that metrics add up, events
// still fire and a state change while a fast-admitted call is in flight is handled by the core.
// Also the pool's batched action transfer (more actions than one batch holds).

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, test } from 'node:test'

import { BreakerOpenError, CircuitBreaker, ManualClock, Pool, PoolClosedError } from 'seawall'

const FAR = 10 * 60 * 1000
const ok = async () => 'ok'
const boom = async () => {
  throw new Error('boom')
}

describe('breaker fast path', () => {
  test('metrics add up across fast admissions, no-op successes and core records (default clock)', async () => {
    const breaker = new CircuitBreaker({ window: { kind: 'count', size: 10 }, minimumCalls: 10, openDurationMs: FAR })
    // The first 10 fill the window (each recorded by the core), the rest are no-op successes.
    for (let i = 0; i < 250; i++) assert.equal(await breaker.run(ok), 'ok')
    for (let i = 0; i < 50; i++) breaker.tryAcquire().success()
    // A failure among them goes to the core; the window is then no longer all successes.
    await assert.rejects(breaker.run(boom), /boom/)
    for (let i = 0; i < 20; i++) await breaker.run(ok)
    const m = breaker.metrics()
    assert.equal(m.state, 'closed')
    assert.equal(m.permitted, 321)
    assert.equal(m.successes, 320)
    assert.equal(m.failures, 1)
    assert.equal(m.inFlight, 0)
    assert.equal(m.rejected, 0)
    assert.equal(m.callsInWindow, 10)
    assert.equal(m.failuresInWindow, 0, 'the failure has left the window of 10')
  })

  test('permits out at once are counted in flight until settled', () => {
    const breaker = new CircuitBreaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2 })
    breaker.tryAcquire().success()
    breaker.tryAcquire().success()
    const held = [breaker.tryAcquire(), breaker.tryAcquire(), breaker.tryAcquire()]
    assert.equal(breaker.metrics().inFlight, 3)
    assert.equal(breaker.metrics().permitted, 5)
    for (const p of held) p.success()
    held[0].success() // settles once
    const m = breaker.metrics()
    assert.equal(m.inFlight, 0)
    assert.equal(m.successes, 5)
  })

  test('a breaker that trips while a fast-admitted call is in flight: the late success decides nothing', async () => {
    const breaker = new CircuitBreaker({ window: { kind: 'count', size: 4 }, minimumCalls: 4, openDurationMs: FAR })
    const changes = []
    breaker.on('stateChange', (t) => changes.push(`${t.from}->${t.to}:${t.reason}`))
    for (let i = 0; i < 4; i++) await breaker.run(ok) // the window is full of successes
    let finish
    const inFlight = breaker.run(() => new Promise((resolve) => (finish = resolve)))
    // Two failures in the window of four: 50 %, the default threshold.
    for (let i = 0; i < 2; i++) await assert.rejects(breaker.run(boom), /boom/)
    assert.deepEqual(changes, ['closed->open:failure_rate'])
    assert.equal(breaker.metrics().inFlight, 1)
    finish('late')
    assert.equal(await inFlight, 'late')
    const m = breaker.metrics()
    assert.equal(m.state, 'open', 'a success admitted before the trip does not close the breaker')
    assert.equal(m.permitted, 7)
    assert.equal(m.successes, 5)
    assert.equal(m.failures, 2)
    assert.equal(m.inFlight, 0)
    assert.deepEqual(changes, ['closed->open:failure_rate'])
  })

  test('rejections while open are counted, emit reject events and are proper errors (default clock)', async () => {
    const breaker = new CircuitBreaker({ window: { kind: 'count', size: 4 }, minimumCalls: 4, openDurationMs: FAR, name: 'db' })
    const rejects = []
    breaker.on('reject', (r) => rejects.push(r))
    for (let i = 0; i < 4; i++) await assert.rejects(breaker.run(boom), /boom/)
    let called = 0
    for (let i = 0; i < 25; i++) {
      const e = await breaker.run(() => called++).then(
        () => assert.fail('not rejected'),
        (x) => x,
      )
      assert.ok(e instanceof BreakerOpenError && e instanceof Error)
      assert.equal(e.code, 'SEAWALL_BREAKER_OPEN')
      assert.equal(e.reason, 'open')
      assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= FAR)
      assert.match(e.stack, /^BreakerOpenError: circuit breaker "db" is open; retry after \d+ ms$/)
    }
    assert.throws(() => breaker.tryAcquire(), BreakerOpenError)
    assert.equal(called, 0)
    assert.equal(rejects.length, 26)
    assert.ok(rejects.every((r) => r.reason === 'open' && typeof r.retryAfterMs === 'number'))
    const m = breaker.metrics()
    assert.equal(m.rejected, 26)
    assert.equal(m.permitted, 4)
  })

  test('fast rejections give the core’s retry-after and half-open exactly at the end (ManualClock)', async () => {
    const clock = new ManualClock(1_000)
    const breaker = new CircuitBreaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 1000, halfOpenCalls: 1, clock })
    const changes = []
    breaker.on('stateChange', (t) => changes.push(`${t.from}->${t.to}`))
    await assert.rejects(breaker.run(boom))
    await assert.rejects(breaker.run(boom))
    clock.advance(0.0000004) // below the core's nanosecond rounding: still the same instant
    assert.throws(() => breaker.tryAcquire(), (e) => e.retryAfterMs === 1000)
    clock.set(1_999.9999994)
    assert.throws(() => breaker.tryAcquire(), (e) => e.retryAfterMs === 0.000001)
    clock.set(2_000)
    const probe = breaker.tryAcquire()
    assert.deepEqual(changes, ['closed->open', 'open->half_open'])
    probe.success()
    assert.deepEqual(changes, ['closed->open', 'open->half_open', 'half_open->closed'])
    assert.equal(breaker.metrics().rejected, 2)
  })

  test('forced open, disabled and metrics-only are replayed as the core decides', async () => {
    const breaker = new CircuitBreaker()
    breaker.forceOpen()
    await assert.rejects(breaker.run(ok), (e) => e.reason === 'forced_open' && e.retryAfterMs === null)
    breaker.disable()
    for (let i = 0; i < 5; i++) await breaker.run(boom).catch(() => {})
    assert.equal(breaker.metrics().failures, 0, 'a disabled breaker records nothing')
    breaker.metricsOnly()
    for (let i = 0; i < 5; i++) await breaker.run(boom).catch(() => {})
    const m = breaker.metrics()
    assert.equal(m.state, 'metrics_only')
    assert.equal(m.failures, 5)
    assert.equal(m.rejected, 1)
    assert.equal(m.inFlight, 0)
  })

  test('a snapshot taken after fast-path calls includes them', async () => {
    const breaker = new CircuitBreaker({ window: { kind: 'count', size: 3 }, minimumCalls: 3 })
    for (let i = 0; i < 10; i++) await breaker.run(ok)
    const copy = CircuitBreaker.fromJSON(breaker.toJSON(), { window: { kind: 'count', size: 3 }, minimumCalls: 3 })
    assert.equal(copy.state, 'closed')
    assert.equal(breaker.metrics().successes, 10)
  })
})

describe('pool action batches', () => {
  test('more actions than one batch holds are all performed (40 waiters failed by a drain)', async () => {
    const pool = new Pool({ maxSize: 1, create: async () => ({}), acquireTimeoutMs: 10_000 })
    const held = await pool.acquire()
    const waiting = []
    for (let i = 0; i < 40; i++) waiting.push(pool.acquire().then(() => 'served', (e) => e))
    const drained = pool.drain({ timeoutMs: 50 })
    const outcomes = await Promise.all(waiting)
    assert.equal(outcomes.filter((e) => e instanceof PoolClosedError).length, 40)
    pool.release(held)
    await drained
    assert.equal(pool.isClosed, true)
  })

  test('a native call made while a batch is performed does not disturb it (40 closes on drain)', async () => {
    const destroyed = []
    let pool
    pool = new Pool({
      maxSize: 40,
      create: async () => ({ n: destroyed.length + 1000 + Math.random() }),
      destroy: (conn) => {
        destroyed.push(conn)
        // Into the engine while the pool performs the batch that asked for this close.
        pool.metrics()
      },
    })
    const conns = await Promise.all(Array.from({ length: 40 }, () => pool.acquire()))
    const raw = new Set()
    for (const c of conns) {
      raw.add(c.n)
      pool.release(c)
    }
    assert.deepEqual(await pool.drain(), [])
    assert.equal(destroyed.length, 40)
    assert.equal(new Set(destroyed.map((c) => c.n)).size, 40, 'each connection closed exactly once')
    assert.deepEqual(new Set(destroyed.map((c) => c.n)), raw)
  })

  test('40 connections created at once (minIdle) are all made and usable', async () => {
    let created = 0
    const pool = new Pool({ maxSize: 40, minIdle: 40, create: async () => ({ n: ++created }) })
    for (let i = 0; i < 20 && created < 40; i++) await new Promise((r) => setImmediate(r))
    assert.equal(created, 40)
    const conns = await Promise.all(Array.from({ length: 40 }, () => pool.acquire()))
    assert.equal(new Set(conns.map((c) => c.n)).size, 40)
    for (const c of conns) pool.release(c)
    await pool.drain()
  })
})

describe('the pool\'s raw native calls', () => {
  test('a bad clock reading is the same error as from any native call', async () => {
    let reading = 0
    const pool = new Pool({ maxSize: 1, create: async () => ({}), clock: { now: () => reading } })
    const conn = await pool.acquire()
    pool.release(conn)
    reading = Number.NaN
    await assert.rejects(pool.acquire(), (e) => e instanceof RangeError && e.code === 'SEAWALL_INVALID_CLOCK')
    reading = 5
    const again = await pool.acquire()
    pool.release(again)
    assert.equal(pool.metrics().used, 0)
    await pool.drain()
  })

  test('misuse of the private functions throws instead of crashing', () => {
    const native = createRequire(import.meta.url)('../native.js')
    const hot = native.poolHotFunctions()
    assert.throws(() => hot.acquire('x', 1), (e) => e instanceof RangeError && e.code === 'SEAWALL_INTERNAL')
    assert.throws(() => hot.acquire(1.5, 1), (e) => e.code === 'SEAWALL_INTERNAL')
    assert.throws(() => hot.acquire(4_000_000, 1), (e) => e.code === 'SEAWALL_INTERNAL' && /no pool/.test(e.message))
    assert.throws(() => hot.release(4_000_000, 1, 'no', 1), (e) => e.code === 'SEAWALL_INTERNAL')
    assert.throws(() => hot.release(4_000_000, 1, false), (e) => e.code === 'SEAWALL_INTERNAL')
  })
})
