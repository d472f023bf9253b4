// The pool with `pg.Client` connections against the real PostgreSQL on 127.0.0.1:5432, through
// a TCP fault proxy that this test controls (node:net; it only ever points at 127.0.0.1:5432,
// and the shared server is never stopped). It shows, as the pool issue asks:
//   (1) 64 concurrent tasks on 8 connections, all served;
//   (2) an outage (new connections black-holed, open ones cut, queries in flight): callers fail
//       fast with DatabaseUnavailableError once the breaker opens, and no connection attempt
//       reaches the proxy while it is open; the dying clients' 'error' events crash nothing;
//   (3) recovery within the breaker's open duration plus one probe once traffic passes again;
//   (4) after drain, pg_stat_activity (queried directly, not through the proxy) shows none of
//       this test's connections.
// And, with the proxy refusing connections, that attempts back off instead of storming.
//
// Bounds are generous (a loaded 2-core machine), and nothing waits on a fixed sleep where it
// can wait for the condition itself.

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import net from 'node:net'
import { after, before, test } from 'node:test'

import { ConnectFailedError, DatabaseUnavailableError, Pool, pgPoolOptions } from 'seawall'

const require = createRequire(import.meta.url)
const pg = require('pg')

const SERVER = { host: '127.0.0.1', port: 5432 }
const OPEN_DURATION_MS = 1500
const CREATE_TIMEOUT_MS = 1000
const APP = `seawall-e2e-node-${process.pid}-${Date.now()}`

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A TCP proxy in front of PostgreSQL. Modes for new connections: 'pass' (forwarded), 'refuse'
 * (reset at once), 'blackhole' (accepted and never answered); `cutExisting()` resets every open
 * connection. `attempts` counts the connections clients opened to it.
 */
class FaultProxy {
  mode = 'pass'
  attempts = 0
  /** @type {Set<net.Socket>} every socket this proxy holds, both sides */
  #sockets = new Set()
  #server

  static async start() {
    const proxy = new FaultProxy()
    proxy.#server = net.createServer((client) => proxy.#accept(client))
    await new Promise((resolve, reject) => {
      proxy.#server.once('error', reject)
      proxy.#server.listen(0, '127.0.0.1', resolve)
    })
    return proxy
  }

  get port() {
    return this.#server.address().port
  }

  #track(socket) {
    this.#sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => this.#sockets.delete(socket))
  }

  #accept(client) {
    this.attempts++
    this.#track(client)
    if (this.mode === 'refuse') {
      client.resetAndDestroy()
      return
    }
    // Black hole: the socket stays open, its bytes are never read nor answered.
    if (this.mode === 'blackhole') return
    const upstream = net.connect(SERVER.port, SERVER.host)
    this.#track(upstream)
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }

  /** Resets every connection open through the proxy (the database's side closes too). */
  cutExisting() {
    for (const socket of this.#sockets) socket.resetAndDestroy()
  }

  async close() {
    this.cutExisting()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

/** Backends on the real server (not through the proxy) with this test's application name. */
async function serverConnections() {
  const observer = new pg.Client({ ...SERVER, user: 'postgres', database: 'test', application_name: 'seawall-e2e-node-observer' })
  await observer.connect()
  try {
    const { rows } = await observer.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [APP])
    return rows[0].n
  } finally {
    await observer.end()
  }
}

function poolThrough(proxy, extra = {}) {
  return new Pool({
    ...pgPoolOptions(
      { host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'test', application_name: APP },
      { Client: pg.Client },
    ),
    maxSize: 8,
    maxWaiters: 1000,
    acquireTimeoutMs: 5000,
    createTimeoutMs: CREATE_TIMEOUT_MS,
    createBackoff: { baseMs: 10, capMs: 100 },
    breaker: { consecutiveFailures: 3, openDurationMs: OPEN_DURATION_MS, halfOpenCalls: 1 },
    ...extra,
  })
}

const selectOne = (pool) => pool.use((client) => client.query('SELECT 1'))

/** pg clients whose socket dies emit 'error'; the pool must have handled every one of them. */
const uncaught = []
const onUncaught = (error) => uncaught.push(error)

before(async () => {
  process.on('uncaughtException', onUncaught)
  try {
    await serverConnections()
  } catch (error) {
    throw new Error(`PostgreSQL must run on 127.0.0.1:5432 (user postgres, database test): ${error.message}`)
  }
})

after(() => {
  process.off('uncaughtException', onUncaught)
})

test('pg through a fault proxy: load, an outage without a storm, recovery, nothing left open', async (t) => {
  const proxy = await FaultProxy.start()
  const pool = poolThrough(proxy)
  const transitions = []
  pool.on('breaker', (e) => transitions.push(`${e.from}->${e.to}`))
  try {
    await t.test('(1) 64 concurrent tasks on 8 connections are all served', async () => {
      const pids = new Set()
      const tasks = Array.from({ length: 64 }, async () => {
        for (let i = 0; i < 5; i++) {
          const { rows } = await pool.use((c) => c.query('SELECT pg_backend_pid() AS pid'))
          pids.add(rows[0].pid)
        }
        return 5
      })
      const served = (await Promise.all(tasks)).reduce((a, b) => a + b, 0)
      assert.equal(served, 320)
      assert.ok(pids.size <= 8, `${pids.size} backends served the load`)
      assert.ok(proxy.attempts <= 8, `${proxy.attempts} connection attempts for 8 slots`)
      assert.ok((await serverConnections()) <= 8)
      const m = pool.metrics()
      assert.equal(m.acquired, 320)
      assert.equal(m.released, 320)
      assert.ok(m.waitTime.count === 320 && m.useTime.count === 320)
    })

    await t.test('(2) outage: callers fail fast with DatabaseUnavailableError and nothing reaches the network', async () => {
      // Queries in flight when the network dies: their clients emit 'error' while checked out.
      const inFlight = Array.from({ length: 4 }, () => pool.use((c) => c.query('SELECT pg_sleep(2)')).then(() => 'done', (e) => e))
      await sleep(100)
      proxy.mode = 'blackhole'
      proxy.cutExisting()
      const interrupted = await Promise.all(inFlight)
      assert.ok(
        interrupted.every((e) => e instanceof Error),
        `queries in flight were cut: ${interrupted.map(String)}`,
      )
      const attemptsAtCut = proxy.attempts
      // Until the breaker opens: dead idle clients are discarded, creates time out in the black hole.
      const deadline = performance.now() + 15_000
      let opened = false
      while (!opened && performance.now() < deadline) {
        const outcomes = await Promise.all(Array.from({ length: 8 }, () => selectOne(pool).then(() => 'ok', (e) => e)))
        opened = outcomes.some((o) => o instanceof DatabaseUnavailableError)
      }
      assert.ok(opened, 'the breaker never opened')
      assert.equal(pool.metrics().breakerState, 'open')
      assert.ok(transitions.includes('closed->open'))
      assert.ok(proxy.attempts - attemptsAtCut <= 16, `${proxy.attempts - attemptsAtCut} connection attempts into the black hole`)

      // While it is open: 200 callers, each refused within milliseconds, and no attempt made.
      const attempts = proxy.attempts
      const started = performance.now()
      const refusals = await Promise.all(
        Array.from({ length: 200 }, () => {
          const t0 = performance.now()
          return selectOne(pool).then(
            () => assert.fail('served while the database is down'),
            (e) => ({ e, ms: performance.now() - t0 }),
          )
        }),
      )
      const took = performance.now() - started
      for (const { e, ms } of refusals) {
        assert.ok(e instanceof DatabaseUnavailableError, `${e}`)
        assert.equal(typeof e.retryAfterMs, 'number')
        assert.ok(ms < 250, `a caller waited ${ms.toFixed(1)} ms`)
      }
      assert.ok(took < refusals[0].e.retryAfterMs, 'the check ran while the breaker was open')
      assert.equal(proxy.attempts, attempts, 'no connection attempt while the breaker is open')
      assert.ok(pool.metrics().unavailable >= 200)
    })

    await t.test('(3) recovery within the open duration plus one probe, then full service', async () => {
      proxy.mode = 'pass'
      const attempts = proxy.attempts
      const started = performance.now()
      for (;;) {
        const outcome = await selectOne(pool).then(() => 'ok', (e) => e)
        if (outcome === 'ok') break
        assert.ok(outcome instanceof DatabaseUnavailableError, `unexpected ${outcome}`)
        assert.ok(performance.now() - started < OPEN_DURATION_MS + 3000, 'no recovery')
        await sleep(Math.min(50, Math.max(1, outcome.retryAfterMs ?? 50)))
      }
      const recoveredMs = performance.now() - started
      assert.ok(recoveredMs < OPEN_DURATION_MS + CREATE_TIMEOUT_MS, `recovered after ${Math.round(recoveredMs)} ms`)
      assert.equal(proxy.attempts - attempts, 1, 'only the half-open probe reached the network')
      assert.ok(transitions.includes('open->half_open') && transitions.at(-1) === 'half_open->closed', transitions.join(', '))
      const all = await Promise.all(Array.from({ length: 64 }, () => selectOne(pool)))
      assert.equal(all.length, 64)
      assert.equal(uncaught.length, 0, `uncaught exceptions: ${uncaught.map(String)}`)
    })

    await t.test('(4) after drain, the server has none of the pool\'s connections', async () => {
      const stillHeld = await pool.drain({ timeoutMs: 2000 })
      assert.deepEqual(stillHeld, [])
      const deadline = performance.now() + 5000
      let left = await serverConnections()
      while (left > 0 && performance.now() < deadline) {
        await sleep(50)
        left = await serverConnections()
      }
      assert.equal(left, 0, `${left} connections left on the server`)
    })
  } finally {
    await pool.drain({ timeoutMs: 100 })
    await proxy.close()
  }
})

test('pg through a proxy that refuses connections: attempts back off, the caller gets ConnectFailedError', async () => {
  const proxy = await FaultProxy.start()
  proxy.mode = 'refuse'
  const pool = poolThrough(proxy, {
    acquireTimeoutMs: 1000,
    createBackoff: { baseMs: 50, capMs: 200 },
    breaker: { consecutiveFailures: 1000 },
  })
  const failures = []
  pool.on('connectFailed', (e) => failures.push(e))
  try {
    const error = await pool.acquire().then(
      () => assert.fail('connected through a refusing proxy'),
      (e) => e,
    )
    assert.ok(error instanceof ConnectFailedError, `${error}`)
    assert.ok(error.attempts >= 1)
    assert.ok(error.cause instanceof Error, 'the cause is the pg error')
    // 1 s of back-off from 50 ms, doubling to 200 ms, with jitter: a handful, not a storm.
    assert.ok(proxy.attempts >= 2 && proxy.attempts <= 15, `${proxy.attempts} attempts in 1 s`)
    assert.equal(failures.length, pool.metrics().createFailures)
    assert.ok(failures[0].cause instanceof Error)
  } finally {
    await pool.drain({ timeoutMs: 100 })
    await proxy.close()
  }
  assert.equal(uncaught.length, 0, `uncaught exceptions: ${uncaught.map(String)}`)
})
