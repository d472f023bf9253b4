// Seawall's npm package against its Node.js peers (issue 5). Run from the repository root:
//
//   npm ci --prefix benches/node && node --expose-gc benches/node/bench.mjs
//
// Writes target/bench-results/node.json in the shape described in benches/README.md.
//
// Method: every scenario has the plain call (no wrapper) as its baseline and every library as a
// case, all in this one process. After a warm-up (which also sizes each case's sample to about
// SAMPLE_MS), the cases run round-robin, REPS times, each sample after a full GC; the median of
// the samples is reported (ns/op, or ops/s for the contended pool). Checks that each library did
// what the scenario says run outside the timed loops (and cheap ones inside: a wrong outcome in
// a timed loop throws), and the bench exits non-zero if any fails. Memory: for every Seawall case
// (and opossum's closed path, for comparison), the heap used after a full GC before and after
// MEMORY_CALLS calls, per call.
//
// Peer versions are the newest that support Node 20 (this machine's Node): opossum 10,
// cockatiel 4 and p-timeout 8 require Node >= 22.

import { createRequire } from 'node:module'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import {
  CircuitBreaker,
  Budget,
  Pool,
  BreakerOpenError,
} from '../../bindings/node/index.mjs'
import {
  circuitBreaker as cockatielBreaker,
  ConsecutiveBreaker,
  handleAll,
  CircuitState,
  BrokenCircuitError,
  timeout as cockatielTimeout,
  TimeoutStrategy,
  TaskCancelledError,
} from 'cockatiel'
import pTimeout from 'p-timeout'

const require = createRequire(import.meta.url)
const Opossum = require('opossum')
const genericPool = require('generic-pool')
const tarn = require('tarn')

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..', '..')
const OUT = join(ROOT, 'target', 'bench-results', 'node.json')

const REPS = Number(process.env.BENCH_REPS ?? 31)
const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 12)
const MEMORY_CALLS = Number(process.env.BENCH_MEMORY_CALLS ?? 1_000_000)
const FAR = 10 * 60 * 1000 // an open duration / timeout that never passes during the bench

if (typeof global.gc !== 'function') {
  throw new Error('run with `node --expose-gc benches/node/bench.mjs` (global.gc is needed)')
}
if (MEMORY_CALLS < 1_000_000 && !process.env.BENCH_QUICK) {
  throw new Error('BENCH_MEMORY_CALLS must be at least 1,000,000 (set BENCH_QUICK=1 for a smoke run)')
}

function versionOf(pkg) {
  // Read from node_modules: p-timeout's `exports` does not expose its package.json.
  return JSON.parse(readFileSync(join(HERE, 'node_modules', pkg, 'package.json'), 'utf8')).version
}
const VERSIONS = Object.fromEntries(
  ['opossum', 'cockatiel', 'generic-pool', 'tarn', 'p-timeout'].map((p) => [p, versionOf(p)]),
)

const failures = []
function check(scenario, what, ok, detail) {
  scenario.checks.push({ what, ok: Boolean(ok) })
  if (!ok) failures.push(`${scenario.id}: ${what}${detail ? ` (${detail})` : ''}`)
}
function must(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`)
}

function fullGc() {
  global.gc()
  global.gc()
}
const nowNs = () => process.hrtime.bigint()

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// ---- the ops ------------------------------------------------------------------------------

let opCalls = 0
/** The op that succeeds at once. */
const op = async () => {
  opCalls++
  return 1
}
// One error object, built once: the 10 % scenario measures the libraries, not `new Error`.
const OP_ERROR = new Error('op failed')
let flakyN = 0
let flakyFailures = 0
/** Fails every 10th call (calls 10, 20, ...), counting from its last reset. */
const flaky = async () => {
  opCalls++
  if (++flakyN === 10) {
    flakyN = 0
    flakyFailures++
    throw OP_ERROR
  }
  return 1
}
let alwaysFail = false
const failing = async () => {
  opCalls++
  if (alwaysFail) throw OP_ERROR
  return 1
}

// ---- measurement ---------------------------------------------------------------------------

/**
 * A case: `loop(n)` makes n calls (each case has its own loop so that V8's call-site feedback is
 * its own). `contended` cases report ops/s. `before`/`after` run around every timed sample,
 * outside the timing (checks, resetting counters).
 */
async function timeSample(c, n) {
  c.before?.(n)
  fullGc()
  const t0 = nowNs()
  await c.loop(n)
  const t1 = nowNs()
  c.after?.(n)
  return Number(t1 - t0)
}

async function calibrate(c) {
  // Warm-up: grow n until one sample takes at least 4 × SAMPLE_MS (and the JIT has settled).
  let n = 1000
  let ns = await timeSample(c, n)
  while (ns < 4 * SAMPLE_MS * 1e6 && n < 50_000_000) {
    n *= 4
    ns = await timeSample(c, n)
  }
  ns = await timeSample(c, n) // once more, optimised
  const perOp = ns / n
  c.n = Math.max(1000, Math.round((SAMPLE_MS * 1e6) / perOp / 100) * 100)
}

async function runScenario(sc) {
  const started = Date.now()
  for (const c of sc.cases) await calibrate(c)
  const samples = sc.cases.map(() => [])
  for (let rep = 0; rep < REPS; rep++) {
    // Round-robin, starting one case further each repetition so no case always runs first.
    for (let k = 0; k < sc.cases.length; k++) {
      const i = (rep + k) % sc.cases.length
      const c = sc.cases[i]
      const ns = await timeSample(c, c.n)
      samples[i].push(sc.unit === 'ops/s' ? c.n / (ns / 1e9) : ns / c.n)
    }
  }
  sc.cases.forEach((c, i) => {
    c.value = median(samples[i])
    c.spread = [Math.min(...samples[i]), Math.max(...samples[i])]
  })
  sc.seconds = (Date.now() - started) / 1000
}

async function measureMemory(c, calls = MEMORY_CALLS) {
  c.before?.(calls)
  fullGc()
  const before = process.memoryUsage()
  // Two halves, with a full GC between them (outside nothing but the GC), so that a one-time
  // growth (a table reaching its high-water mark) can be told from a steady per-call leak.
  const half = Math.floor(calls / 2)
  await c.loop(half)
  fullGc()
  const mid = process.memoryUsage()
  c.after?.(half)
  c.before?.(calls - half)
  await c.loop(calls - half)
  fullGc()
  const after = process.memoryUsage()
  c.after?.(calls - half)
  return {
    what: 'retained per call after a full GC',
    bytes_per_call: round((after.heapUsed - before.heapUsed) / calls, 3),
    calls,
    // Not part of the README's schema. The two halves of the run: a growth only in the first
    // is a one-time high-water mark, in both a per-call leak.
    halves_bytes_per_call: [
      round((mid.heapUsed - before.heapUsed) / half, 3),
      round((after.heapUsed - mid.heapUsed) / (calls - half), 3),
    ],
    // What the JS heap does not show (native memory); RSS is noisy.
    external_bytes_per_call: round((after.external - before.external) / calls, 3),
    rss_bytes_per_call: round((after.rss - before.rss) / calls, 3),
  }
}

function round(x, digits) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

// ---- scenarios -----------------------------------------------------------------------------

const scenarios = []

// Gives every case a `before` that notes the op counter and an `after` that checks the op ran
// once per call in the sample.
function expectOneOpCallEach(cases) {
  for (const c of cases) {
    let at = 0
    c.before = () => {
      at = opCalls
    }
    c.after = (n) => must(opCalls - at === n, `${c.name}: the op ran ${opCalls - at} times for ${n} calls`)
  }
}

// How many of N calls (outside any timing, one after another) resolved to 1.
async function countOnes(call, N = 10_000) {
  let ok = 0
  for (let i = 0; i < N; i++) if ((await call()) === 1) ok++
  return ok
}

// breaker_closed ---------------------------------------------------------------------------------
function breakerClosed() {
  const sw = new CircuitBreaker({ openDurationMs: FAR })
  const swPermit = new CircuitBreaker({ openDurationMs: FAR })
  const ck = cockatielBreaker(handleAll, { halfOpenAfter: FAR, breaker: new ConsecutiveBreaker(5) })
  const op1 = new Opossum(op) // opossum's defaults
  let ckRejects = 0
  ck.onBreak(() => ckRejects++)

  const cases = [
    {
      name: 'plain call',
      role: 'baseline',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await op()
      },
    },
    {
      name: 'seawall CircuitBreaker.run',
      role: 'seawall',
      primary: true,
      loop: async (n) => {
        for (let i = 0; i < n; i++) await sw.run(op)
      },
    },
    {
      name: 'seawall tryAcquire+success',
      role: 'seawall',
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          const permit = swPermit.tryAcquire()
          await op()
          permit.success()
        }
      },
    },
    {
      name: 'cockatiel ConsecutiveBreaker',
      role: 'peer',
      version: VERSIONS.cockatiel,
      loop: async (n) => {
        for (let i = 0; i < n; i++) await ck.execute(op)
      },
    },
    {
      name: 'opossum defaults',
      role: 'peer',
      version: VERSIONS.opossum,
      loop: async (n) => {
        for (let i = 0; i < n; i++) await op1.fire()
      },
    },
  ]
  expectOneOpCallEach(cases)
  return {
    id: 'breaker_closed',
    title: 'breaker closed path, op succeeds at once',
    unit: 'ns/op',
    cases,
    targets: [
      ['seawall CircuitBreaker.run', 'cockatiel ConsecutiveBreaker', 0.8],
      ['seawall CircuitBreaker.run', 'opossum defaults', 0.25],
      ['seawall tryAcquire+success', 'cockatiel ConsecutiveBreaker', 0.8],
      ['seawall tryAcquire+success', 'opossum defaults', 0.25],
    ],
    memoryFor: ['seawall CircuitBreaker.run', 'seawall tryAcquire+success', 'opossum defaults'],
    async verify(sc) {
      // A separate pass, outside any timing, that looks at every result.
      const N = 10_000
      check(sc, 'seawall run: every call passed and returned the value', (await countOnes(() => sw.run(op))) === N)
      let ok = 0
      for (let i = 0; i < N; i++) {
        const p = swPermit.tryAcquire()
        if ((await op()) === 1) ok++
        p.success()
        must(p.settled, 'permit settled')
      }
      check(sc, 'seawall tryAcquire: every call passed', ok === N)
      check(sc, 'cockatiel: every call passed', (await countOnes(() => ck.execute(op))) === N)
      check(sc, 'opossum: every call passed', (await countOnes(() => op1.fire())) === N)
      for (const [name, b] of [['seawall run', sw], ['seawall tryAcquire', swPermit]]) {
        const m = b.metrics()
        check(sc, `${name}: closed, nothing rejected or failed, every permit settled`,
          m.state === 'closed' && m.rejected === 0 && m.failures === 0 && m.inFlight === 0 && m.successes === m.permitted,
          JSON.stringify(m))
      }
      check(sc, 'cockatiel: stayed closed', ck.state === CircuitState.Closed && ckRejects === 0)
      check(sc, 'opossum: stayed closed, nothing rejected or failed',
        op1.closed && op1.stats.rejects === 0 && op1.stats.failures === 0 && op1.stats.timeouts === 0)
    },
    cleanup() {
      op1.shutdown()
    },
  }
}

// breaker_open -----------------------------------------------------------------------------------
function breakerOpen() {
  const sw = new CircuitBreaker({ openDurationMs: FAR })
  const ck = cockatielBreaker(handleAll, { halfOpenAfter: FAR, breaker: new ConsecutiveBreaker(5) })
  // opossum's defaults but for resetTimeout, so that it stays open for the whole bench.
  const op1 = new Opossum(failing, { resetTimeout: FAR })
  let rejected = 0
  const cases = [
    {
      name: 'plain call',
      role: 'baseline',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await op()
      },
    },
    {
      name: 'seawall CircuitBreaker.run',
      role: 'seawall',
      primary: true,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await sw.run(op)
          } catch {
            rejected++
          }
        }
      },
    },
    {
      name: 'cockatiel ConsecutiveBreaker',
      role: 'peer',
      version: VERSIONS.cockatiel,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await ck.execute(op)
          } catch {
            rejected++
          }
        }
      },
    },
    {
      name: 'opossum',
      role: 'peer',
      version: VERSIONS.opossum,
      note: 'defaults, resetTimeout 10 min',
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await op1.fire()
          } catch {
            rejected++
          }
        }
      },
    },
  ]
  for (const c of cases) {
    let atOps = 0
    let atRejected = 0
    c.before = () => {
      atOps = opCalls
      atRejected = rejected
    }
    c.after = (n) => {
      if (c.role === 'baseline') {
        must(opCalls - atOps === n, 'baseline ran')
        return
      }
      must(rejected - atRejected === n, `${c.name}: ${rejected - atRejected} of ${n} calls rejected while open`)
      must(opCalls - atOps === 0, `${c.name}: the op ran ${opCalls - atOps} times while open`)
    }
  }
  return {
    id: 'breaker_open',
    title: 'rejection while open (every call rejected)',
    unit: 'ns/op',
    cases,
    targets: [['seawall CircuitBreaker.run', 'cockatiel ConsecutiveBreaker', 0.25]],
    memoryFor: ['seawall CircuitBreaker.run'],
    async setup() {
      // Trip each breaker with real failures (not a forced open).
      alwaysFail = true
      for (let i = 0; i < 100 && sw.state !== 'open'; i++) await sw.run(failing).catch(() => {})
      for (let i = 0; i < 100 && ck.state !== CircuitState.Open; i++) await ck.execute(failing).catch(() => {})
      for (let i = 0; i < 100 && !op1.opened; i++) await op1.fire().catch(() => {})
      alwaysFail = false
      must(sw.state === 'open', 'seawall breaker opened by failures')
      must(ck.state === CircuitState.Open, 'cockatiel breaker opened by failures')
      must(op1.opened, 'opossum breaker opened by failures')
    },
    async verify(sc) {
      const N = 10_000
      const at = opCalls
      const kinds = { seawall: 0, cockatiel: 0, opossum: 0 }
      for (let i = 0; i < N; i++) {
        await sw.run(op).then(
          () => {},
          (e) => {
            if (e instanceof BreakerOpenError && e.code === 'SEAWALL_BREAKER_OPEN' && e.reason === 'open' && typeof e.retryAfterMs === 'number') kinds.seawall++
          },
        )
        await ck.execute(op).then(
          () => {},
          (e) => {
            if (e instanceof BrokenCircuitError) kinds.cockatiel++
          },
        )
        await op1.fire().then(
          () => {},
          (e) => {
            if (e instanceof Error && e.code === 'EOPENBREAKER') kinds.opossum++
          },
        )
      }
      check(sc, 'seawall: every call rejected with BreakerOpenError (reason open, retryAfterMs)', kinds.seawall === N, JSON.stringify(kinds))
      check(sc, 'cockatiel: every call rejected with BrokenCircuitError', kinds.cockatiel === N, JSON.stringify(kinds))
      check(sc, 'opossum: every call rejected (EOPENBREAKER)', kinds.opossum === N, JSON.stringify(kinds))
      check(sc, 'no op ran while open', opCalls === at)
      const e = await sw.run(op).catch((x) => x)
      check(sc, 'seawall: the rejection is a proper Error (message, stack, name)',
        e instanceof Error && typeof e.message === 'string' && e.message.length > 0 && typeof e.stack === 'string' && e.name === 'BreakerOpenError',
        `${e?.name}: ${e?.message}`)
      check(sc, 'every breaker still open', sw.state === 'open' && ck.state === CircuitState.Open && op1.opened)
    },
    cleanup() {
      op1.shutdown()
    },
  }
}

// breaker_10pct ----------------------------------------------------------------------------------
function breaker10() {
  const sw = new CircuitBreaker({ openDurationMs: FAR })
  const swPermit = new CircuitBreaker({ openDurationMs: FAR })
  const ck = cockatielBreaker(handleAll, { halfOpenAfter: FAR, breaker: new ConsecutiveBreaker(5) })
  const op1 = new Opossum(flaky)
  let ckBreaks = 0
  let opossumOpens = 0
  ck.onBreak(() => ckBreaks++)
  op1.on('open', () => opossumOpens++)
  let failed = 0
  const cases = [
    {
      name: 'plain call',
      role: 'baseline',
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await flaky()
          } catch (e) {
            if (e !== OP_ERROR) throw e
            failed++
          }
        }
      },
    },
    {
      name: 'seawall CircuitBreaker.run',
      role: 'seawall',
      primary: true,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await sw.run(flaky)
          } catch (e) {
            if (e !== OP_ERROR) throw e
            failed++
          }
        }
      },
    },
    {
      name: 'seawall tryAcquire+success/failure',
      role: 'seawall',
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          const permit = swPermit.tryAcquire()
          try {
            await flaky()
            permit.success()
          } catch (e) {
            permit.failure()
            if (e !== OP_ERROR) throw e
            failed++
          }
        }
      },
    },
    {
      name: 'cockatiel ConsecutiveBreaker',
      role: 'peer',
      version: VERSIONS.cockatiel,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await ck.execute(flaky)
          } catch (e) {
            if (e !== OP_ERROR) throw e
            failed++
          }
        }
      },
    },
    {
      name: 'opossum defaults',
      role: 'peer',
      version: VERSIONS.opossum,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          try {
            await op1.fire()
          } catch (e) {
            if (e !== OP_ERROR) throw e
            failed++
          }
        }
      },
    },
  ]
  for (const c of cases) {
    let atOps = 0
    let atFailed = 0
    c.before = () => {
      flakyN = 0 // each sample starts a fresh 9 successes, 1 failure cycle
      atOps = opCalls
      atFailed = failed
    }
    c.after = (n) => {
      must(opCalls - atOps === n, `${c.name}: the op ran ${opCalls - atOps} times for ${n} calls`)
      must(failed - atFailed === Math.floor(n / 10), `${c.name}: ${failed - atFailed} failures in ${n} calls`)
    }
  }
  return {
    id: 'breaker_10pct',
    title: '10 % failures, the breaker stays closed',
    unit: 'ns/op',
    cases,
    targets: [],
    memoryFor: ['seawall CircuitBreaker.run', 'seawall tryAcquire+success/failure'],
    async verify(sc) {
      for (const [name, b] of [['seawall run', sw], ['seawall tryAcquire', swPermit]]) {
        const m = b.metrics()
        const rate = m.failures / (m.successes + m.failures)
        check(sc, `${name}: stayed closed at 10 % failures (never opened, nothing rejected)`,
          m.state === 'closed' && m.timesOpened === 0 && m.rejected === 0 && m.inFlight === 0 && Math.abs(rate - 0.1) < 0.001,
          JSON.stringify(m))
      }
      check(sc, 'cockatiel: stayed closed at 10 % failures', ck.state === CircuitState.Closed && ckBreaks === 0)
      check(sc, 'opossum: stayed closed at 10 % failures', op1.closed && opossumOpens === 0 && op1.stats.rejects === 0)
    },
    cleanup() {
      op1.shutdown()
    },
  }
}

// pool_single ------------------------------------------------------------------------------------
/** Trivial in-memory resources, counted, with a holder count to check the limit. */
function resourceFactory(label) {
  const f = { label, created: 0, destroyed: 0, holders: 0, maxHolders: 0 }
  f.make = () => ({ id: ++f.created, label })
  return f
}

function makePools(maxSize) {
  const fs = { seawall: resourceFactory('seawall'), gp: resourceFactory('generic-pool'), tarn: resourceFactory('tarn') }
  const sw = new Pool({
    maxSize,
    create: () => fs.seawall.make(),
    destroy: () => {
      fs.seawall.destroyed++
    },
  })
  const gp = genericPool.createPool(
    {
      create: async () => fs.gp.make(),
      destroy: async () => {
        fs.gp.destroyed++
      },
    },
    { max: maxSize, min: 0 },
  )
  const tp = new tarn.Pool({
    create: async () => fs.tarn.make(),
    destroy: () => {
      fs.tarn.destroyed++
    },
    min: 0,
    max: maxSize,
  })
  return {
    fs,
    sw,
    gp,
    tp,
    async close() {
      await sw.drain()
      await gp.drain()
      await gp.clear()
      await tp.destroy()
    },
  }
}

function poolSingle() {
  const P = makePools(8)
  const { fs, sw, gp, tp } = P
  const resource = { id: 0 }
  const use = async (c) => c.id
  const cases = [
    {
      name: 'plain call',
      role: 'baseline',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await use(resource)
      },
    },
    {
      name: 'seawall Pool',
      role: 'seawall',
      primary: true,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          const c = await sw.acquire()
          sw.release(c)
        }
      },
    },
    {
      name: 'generic-pool',
      role: 'peer',
      version: VERSIONS['generic-pool'],
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          const c = await gp.acquire()
          gp.release(c)
        }
      },
    },
    {
      name: 'tarn',
      role: 'peer',
      version: VERSIONS.tarn,
      loop: async (n) => {
        for (let i = 0; i < n; i++) {
          const c = await tp.acquire().promise
          tp.release(c)
        }
      },
    },
  ]
  return {
    id: 'pool_single',
    title: 'pool acquire + release with one task',
    unit: 'ns/op',
    cases,
    targets: [['seawall Pool', 'generic-pool', 0.4]],
    memoryFor: ['seawall Pool'],
    async verify(sc) {
      const N = 10_000
      let ok = 0
      for (let i = 0; i < N; i++) {
        const c = await sw.acquire()
        if (typeof c.id === 'number' && c.label === 'seawall') ok++
        sw.release(c)
      }
      check(sc, 'seawall: every acquire got a connection, every release accepted', ok === N)
      const m = sw.metrics()
      check(sc, 'seawall: one connection, nothing held or waiting, acquired = released',
        fs.seawall.created === 1 && m.used === 0 && m.pendingRequests === 0 && m.acquired === m.released && m.timeouts === 0,
        `created ${fs.seawall.created}, ${JSON.stringify(m)}`)
      ok = 0
      for (let i = 0; i < N; i++) {
        const c = await gp.acquire()
        if (c.label === 'generic-pool') ok++
        gp.release(c)
      }
      check(sc, 'generic-pool: every acquire got a connection, one created',
        ok === N && fs.gp.created === 1 && gp.borrowed === 0, `created ${fs.gp.created}`)
      ok = 0
      for (let i = 0; i < N; i++) {
        const c = await tp.acquire().promise
        if (c.label === 'tarn') ok++
        tp.release(c)
      }
      check(sc, 'tarn: every acquire got a connection, one created',
        ok === N && fs.tarn.created === 1 && tp.numUsed() === 0, `created ${fs.tarn.created}`)
    },
    async cleanup() {
      await P.close()
    },
  }
}

// pool_contended ---------------------------------------------------------------------------------
const TASKS = 64
const CONNS = 8

function poolContended() {
  const P = makePools(CONNS)
  const { fs, sw, gp, tp } = P
  let plainHolders = 0
  let plainMax = 0
  /** 64 tasks share `n` operations; each acquires, yields once while holding, releases. */
  function contended(body) {
    return async (n) => {
      let left = n
      const task = async () => {
        while (left > 0) {
          left--
          await body()
        }
      }
      const tasks = []
      for (let t = 0; t < TASKS; t++) tasks.push(task())
      await Promise.all(tasks)
    }
  }
  const hold = (f) => {
    if (++f.holders > f.maxHolders) f.maxHolders = f.holders
  }
  const cases = [
    {
      name: 'plain call',
      role: 'baseline',
      note: 'the same 64 tasks, no pool',
      loop: contended(async () => {
        if (++plainHolders > plainMax) plainMax = plainHolders
        await null
        plainHolders--
      }),
    },
    {
      name: 'seawall Pool',
      role: 'seawall',
      primary: true,
      loop: contended(async () => {
        const c = await sw.acquire()
        hold(fs.seawall)
        await null
        fs.seawall.holders--
        sw.release(c)
      }),
    },
    {
      name: 'generic-pool',
      role: 'peer',
      version: VERSIONS['generic-pool'],
      loop: contended(async () => {
        const c = await gp.acquire()
        hold(fs.gp)
        await null
        fs.gp.holders--
        gp.release(c)
      }),
    },
    {
      name: 'tarn',
      role: 'peer',
      version: VERSIONS.tarn,
      loop: contended(async () => {
        const c = await tp.acquire().promise
        hold(fs.tarn)
        await null
        fs.tarn.holders--
        tp.release(c)
      }),
    },
  ]
  return {
    id: 'pool_contended',
    title: '64 concurrent tasks on 8 connections, each yielding once while holding',
    unit: 'ops/s',
    cases,
    targets: [['seawall Pool', 'generic-pool', 2, 'min']],
    memoryFor: ['seawall Pool'],
    async verify(sc) {
      check(sc, 'the baseline really ran 64 tasks at once', plainMax === TASKS, `max ${plainMax}`)
      for (const [name, f] of [['seawall', fs.seawall], ['generic-pool', fs.gp], ['tarn', fs.tarn]]) {
        check(sc, `${name}: the pool limit held (at most ${CONNS} held at once, at most ${CONNS} created) and was reached`,
          f.maxHolders === CONNS && f.created <= CONNS && f.holders === 0,
          `max held ${f.maxHolders}, created ${f.created}`)
      }
      const m = sw.metrics()
      check(sc, 'seawall: nothing held or waiting after the runs, no timeouts, acquired = released',
        m.used === 0 && m.pendingRequests === 0 && m.timeouts === 0 && m.acquired === m.released && m.overloaded === 0,
        JSON.stringify(m))
      check(sc, 'generic-pool: nothing borrowed or pending after the runs', gp.borrowed === 0 && gp.pending === 0)
      check(sc, 'tarn: nothing used or pending after the runs', tp.numUsed() === 0 && tp.numPendingAcquires() === 0)
    },
    async cleanup() {
      await P.close()
    },
  }
}

// deadline ---------------------------------------------------------------------------------------
const DEADLINE_MS = 1000

/** The wrapper users write by hand. */
function handWritten(fn, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    fn().then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}

function deadline() {
  const ckTimeout = cockatielTimeout(DEADLINE_MS, TimeoutStrategy.Aggressive)
  let ckTimeouts = 0
  ckTimeout.onTimeout(() => ckTimeouts++)
  const cases = [
    {
      name: 'plain call',
      role: 'baseline',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await op()
      },
    },
    {
      name: 'seawall Budget.run',
      role: 'seawall',
      primary: true,
      note: 'a new 1 s Budget per call',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await new Budget({ timeoutMs: DEADLINE_MS }).run(op)
      },
    },
    {
      name: 'seawall Budget.run (budget reused)',
      role: 'seawall',
      note: 'one 10 s Budget per 1000 calls: the cost of run() without building the Budget',
      loop: async (n) => {
        let budget
        for (let i = 0; i < n; i++) {
          if (i % 1000 === 0) budget = new Budget({ timeoutMs: 10_000 })
          await budget.run(op)
        }
      },
    },
    {
      name: 'cockatiel timeout',
      role: 'peer',
      version: VERSIONS.cockatiel,
      note: 'TimeoutStrategy.Aggressive',
      loop: async (n) => {
        for (let i = 0; i < n; i++) await ckTimeout.execute(op)
      },
    },
    {
      name: 'p-timeout',
      role: 'peer',
      version: VERSIONS['p-timeout'],
      loop: async (n) => {
        for (let i = 0; i < n; i++) await pTimeout(op(), { milliseconds: DEADLINE_MS })
      },
    },
    {
      name: 'hand-written setTimeout',
      role: 'peer', // no version: the wrapper is handWritten() above
      loop: async (n) => {
        for (let i = 0; i < n; i++) await handWritten(op, DEADLINE_MS)
      },
    },
  ]
  expectOneOpCallEach(cases)
  return {
    id: 'deadline',
    title: 'a deadline / timeout wrapper around an op that finishes at once (the timeout never fires)',
    unit: 'ns/op',
    cases,
    targets: [
      ['seawall Budget.run', 'cockatiel timeout', 0.1],
      ['seawall Budget.run', 'hand-written setTimeout', 1.0],
    ],
    memoryFor: ['seawall Budget.run', 'seawall Budget.run (budget reused)'],
    async verify(sc) {
      const N = 10_000
      check(sc, 'seawall: every call finished with its value',
        (await countOnes(() => new Budget({ timeoutMs: DEADLINE_MS }).run(op))) === N)
      const ckOk = await countOnes(() => ckTimeout.execute(op))
      check(sc, 'cockatiel: every call finished, no timeout fired', ckOk === N && ckTimeouts === 0)
      check(sc, 'p-timeout: every call finished', (await countOnes(() => pTimeout(op(), { milliseconds: DEADLINE_MS }))) === N)
      check(sc, 'hand-written: every call finished', (await countOnes(() => handWritten(op, DEADLINE_MS))) === N)
      // The deadlines are real: each wrapper does time out a slow op.
      const slow = () => new Promise((r) => setTimeout(() => r('late'), 200))
      const sws = await new Budget({ timeoutMs: 20 }).run(slow).then(() => 'resolved', (e) => e?.code)
      check(sc, 'seawall: a 20 ms budget does time out a 200 ms op', sws === 'SEAWALL_DEADLINE_EXCEEDED', sws)
      const ckt = await cockatielTimeout(20, TimeoutStrategy.Aggressive).execute(slow).then(() => 'resolved', (e) => (e instanceof TaskCancelledError ? 'TaskCancelledError' : String(e)))
      check(sc, 'cockatiel: a 20 ms timeout does time out a 200 ms op', ckt === 'TaskCancelledError', ckt)
      const pt = await pTimeout(slow(), { milliseconds: 20 }).then(() => 'resolved', (e) => e?.name)
      check(sc, 'p-timeout: a 20 ms timeout does time out a 200 ms op', pt === 'TimeoutError', pt)
      const hw = await handWritten(slow, 20).then(() => 'resolved', () => 'rejected')
      check(sc, 'hand-written: a 20 ms timeout does time out a 200 ms op', hw === 'rejected', hw)
      await new Promise((r) => setTimeout(r, 250)) // let the slow ops finish
    },
  }
}

// ---- main --------------------------------------------------------------------------------------

const t0 = Date.now()
const builders = [breakerClosed, breakerOpen, breaker10, poolSingle, poolContended, deadline]
// BENCH_ONLY=id[,id]: a partial run, for investigating one scenario (no result file is written).
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null
for (const build of builders) {
  const sc = build()
  if (only && !only.includes(sc.id)) {
    await sc.cleanup?.()
    continue
  }
  sc.checks = []
  await sc.setup?.()
  await runScenario(sc)
  // Checks after the timed runs (the per-sample ones ran in `after` and would have thrown).
  check(sc, `every timed sample did what the scenario says (${REPS} repetitions per case)`, true)
  await sc.verify(sc)
  for (const name of sc.memoryFor) {
    const c = sc.cases.find((x) => x.name === name)
    c.memory = await measureMemory(c)
  }
  await sc.cleanup?.()
  scenarios.push(sc)
  const fmt = (v) => (sc.unit === 'ops/s' ? `${Math.round(v).toLocaleString('en')} ops/s` : `${v.toFixed(1)} ns/op`)
  console.log(`\n${sc.id} (${sc.seconds.toFixed(1)} s): ${sc.title}`)
  for (const c of sc.cases) {
    const mem = c.memory ? `  retained ${c.memory.bytes_per_call} B/call (halves ${c.memory.halves_bytes_per_call.join(', ')})` : ''
    console.log(`  ${c.name.padEnd(36)} ${fmt(c.value).padStart(18)}   [${fmt(c.spread[0])} .. ${fmt(c.spread[1])}]${mem}`)
  }
  for (const [s, p, r, kind] of sc.targets) {
    const sv = sc.cases.find((x) => x.name === s).value
    const pv = sc.cases.find((x) => x.name === p).value
    const ratio = sv / pv
    const met = kind === 'min' ? ratio >= r : ratio <= r
    console.log(`  target: ${s} ${kind === 'min' ? '>=' : '<='} ${r}x ${p}: ${ratio.toFixed(3)}x ${met ? 'MET' : 'MISSED'}`)
  }
  for (const ch of sc.checks) if (!ch.ok) console.log(`  CHECK FAILED: ${ch.what}`)
}

const result = {
  language: 'node',
  command: 'npm ci --prefix benches/node && node --expose-gc benches/node/bench.mjs',
  runtime: `node ${process.version}`,
  peers: VERSIONS,
  method: `median of ${REPS} interleaved repetitions of ~${SAMPLE_MS} ms each after a warm-up, full GC before each sample; memory over ${MEMORY_CALLS} calls`,
  scenarios: scenarios.map((sc) => {
    const byName = Object.fromEntries(sc.cases.map((c) => [c.name, c]))
    const primary = sc.cases.find((c) => c.primary)
    return {
      id: sc.id,
      title: sc.title,
      unit: sc.unit,
      results: sc.cases.map((c) => ({
        name: c.name,
        role: c.role,
        value: round(c.value, sc.unit === 'ops/s' ? 0 : 1),
        ...(c.version ? { version: c.version } : {}),
        // Not part of the README's schema: the fastest and slowest repetition (the noise).
        spread: c.spread.map((v) => round(v, sc.unit === 'ops/s' ? 0 : 1)),
        ...(c.note ? { note: c.note } : {}),
        ...(c.memory ? { memory: c.memory } : {}),
      })),
      checks: sc.checks,
      targets: sc.targets.map(([s, p, r, kind]) => ({
        what: `${s}: ${kind === 'min' ? 'at least' : 'at most'} ${r}x ${p}${sc.unit === 'ops/s' ? "'s throughput" : ''}`,
        seawall: round(byName[s].value, sc.unit === 'ops/s' ? 0 : 1),
        seawall_name: s,
        peer: p,
        ...(kind === 'min' ? { min_ratio: r } : { max_ratio: r }),
      })),
      ...(primary.memory ? { memory: primary.memory } : {}),
    }
  }),
}

if (failures.length) {
  console.error(`\n${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`)
  console.error('no result file written')
  process.exit(1)
}
if (only) {
  console.log('\npartial run (BENCH_ONLY): no result file written')
  process.exit(0)
}
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`)
console.log(`\nwrote ${OUT} in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
