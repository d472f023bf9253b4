// A Seawall pool of `pg.Client` connections, against a real PostgreSQL.
//
//   bash bindings/node/scripts/test.sh   # or: (cd bindings/node && npm ci && npm run build)
//   node examples/node/pool-pg.mjs       # DATABASE_URL=postgres://user@host/db to choose the server
//
// Part 1 runs 32 concurrent queries on 4 connections and prints the pool's numbers. Part 2 points
// a second pool at a port where nothing listens: the first callers wait out a few quick failed
// attempts (backing off), the breaker opens, and from then on callers fail in microseconds with
// DatabaseUnavailableError instead of piling up, with no new connection attempt. Both pools are
// drained at the end, which closes every connection, so the program exits by itself.
import { createRequire } from 'node:module'

import { DatabaseUnavailableError, Pool, pgPoolOptions } from '../../bindings/node/index.mjs'

// `pg` is a development dependency of the Node binding; a real program imports it directly.
const pg = createRequire(new URL('../../bindings/node/package.json', import.meta.url))('pg')

const server = process.env.DATABASE_URL ?? { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' }

// Part 1: many more tasks than connections.
const pool = new Pool({
  ...pgPoolOptions(server, { Client: pg.Client }),
  maxSize: 4,
  acquireTimeoutMs: 2000,
  createTimeoutMs: 2000,
  leakThresholdMs: 10_000,
})
pool.on('leak', ({ heldForMs, stack }) => console.warn(`connection held for ${heldForMs} ms, acquired at:\n${stack}`))

const started = performance.now()
const pids = await Promise.all(
  Array.from({ length: 32 }, () => pool.use(async (client) => (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)),
)
const m = pool.metrics()
console.log(
  `32 queries in ${Math.round(performance.now() - started)} ms on ${new Set(pids).size} connections ` +
    `(opened ${m.created}, p99 wait ${m.waitTime.p99Ms.toFixed(2)} ms, p99 use ${m.useTime.p99Ms.toFixed(2)} ms)`,
)

// Part 2: a database that is down (nothing listens on 127.0.0.1:1). `create` is wrapped to
// count the connection attempts that reach the network.
const pgDown = pgPoolOptions({ host: '127.0.0.1', port: 1, user: 'postgres', database: 'test' }, { Client: pg.Client })
let attempts = 0
const down = new Pool({
  ...pgDown,
  create: (context) => {
    attempts++
    return pgDown.create(context)
  },
  maxSize: 2,
  acquireTimeoutMs: 2000,
  createBackoff: { baseMs: 20, capMs: 100 },
  breaker: { consecutiveFailures: 3, openDurationMs: 5000, halfOpenCalls: 1 },
})
down.on('connectFailed', ({ error, attempts: inRow }) => console.log(`  failed attempt ${inRow} in a row: ${error}`))
down.on('breaker', ({ from, to, reason }) => console.log(`  breaker ${from} -> ${to} (${reason})`))

for (let round = 1; round <= 3; round++) {
  const t0 = performance.now()
  const outcomes = await Promise.allSettled(Array.from({ length: 100 }, () => down.use((client) => client.query('SELECT 1'))))
  const unavailable = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof DatabaseUnavailableError)
  const ms = performance.now() - t0
  const retry = unavailable[0]?.reason.retryAfterMs
  console.log(
    `round ${round}: 100 callers failed in ${ms.toFixed(1)} ms, ${unavailable.length} with DatabaseUnavailableError` +
      (retry === undefined ? '' : ` (retry after ${Math.round(retry)} ms)`) +
      `; ${attempts} connection attempts made so far`,
  )
}

await Promise.all([pool.drain(), down.drain()])
console.log('drained: every connection closed')
