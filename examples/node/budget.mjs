// Deadline budgets, header propagation and a CallPolicy (budget → retry → breaker → per-attempt
// timeout) against a simulated flaky dependency, in real time with short timers.
//
//   bash bindings/node/scripts/test.sh   # or: (cd bindings/node && npm ci && npm run build)
//   node examples/node/budget.mjs
//
// A gateway gives each request a 500 ms budget and passes what is left to a backend in a
// `grpc-timeout` header; the backend rebuilds the deadline from the header and calls a flaky
// dependency through a CallPolicy: each attempt gets at most 150 ms, failures are retried with
// jittered backoff while the budget allows, and a circuit breaker stops calling the dependency
// once it is clearly down, its retryAfterMs telling the retry loop how long to wait. The whole
// run takes about two seconds and ends by itself: no timer is left behind.
import {
  BreakerOpenError,
  Budget,
  BudgetExhaustedError,
  CallPolicy,
  CircuitBreaker,
  DeadlineExceededError,
  RetryBudget,
  RetryPolicy,
  TimeoutPolicy,
} from '../../bindings/node/index.mjs'

const started = performance.now()
const now = () => `${((performance.now() - started) / 1000).toFixed(2).padStart(5)}s`

// A seeded generator, so that every run tells the same story.
let seed = 7
function random() {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** The dependency answered with an error (a 503, say). */
class Unavailable extends Error {}

/** Waits `ms`, or stops early (rejecting with the reason) when `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })
}

/** Healthy, then hanging or failing for a while (an "outage"), then healthy again. */
const dependency = {
  calls: 0,
  outage: false,
  async get(key, signal) {
    this.calls++
    if (this.outage) {
      if (random() < 0.3) await sleep(10_000, signal) // hangs: only a deadline gets the caller out
      throw new Unavailable(key)
    }
    await sleep(10, signal)
    if (random() < 0.1) throw new Unavailable(key) // the odd transient error, worth a retry
    return `value of ${key}`
  },
}

const breaker = new CircuitBreaker({
  name: 'dependency',
  window: { kind: 'count', size: 10 },
  minimumCalls: 6,
  failureRateThreshold: 50,
  openDurationMs: 200,
  halfOpenCalls: 1,
})
breaker.on('stateChange', ({ from, to, reason }) => console.log(`  [${now()}] breaker: ${from} -> ${to} (${reason})`))

// One retry budget per dependency: retries may add 20 % of the requests (plus a small floor)
// however many requests retry at once.
const dependencyRetries = new RetryBudget({ percent: 20, minPerSecond: 5, ttlMs: 10_000 })
const callDependency = new CallPolicy({
  breaker,
  retry: new RetryPolicy({ maxAttempts: 4, backoff: { kind: 'decorrelated_jitter', baseMs: 20, capMs: 200 } }),
  retryBudget: dependencyRetries,
  attemptTimeoutMs: 150,
})

/** The backend: its deadline is the caller's, read from the header. */
async function backend(key, headers) {
  const budget = Budget.fromHeader(headers['grpc-timeout'])
  return callDependency.run(({ signal }) => dependency.get(key, signal), { budget })
}

/** The gateway: 500 ms for the whole request, passed downstream. */
async function gateway(key) {
  const budget = new Budget({ timeoutMs: 500 })
  const headers = { 'grpc-timeout': budget.toHeader() }
  try {
    // The gateway's own wait is bounded by the same deadline.
    return await budget.run(() => backend(key, headers))
  } catch (err) {
    if (err instanceof DeadlineExceededError) return 'timed out'
    if (err instanceof BreakerOpenError) return `rejected: dependency down, retry after ${((err.retryAfterMs ?? 0) / 1000).toFixed(2)}s`
    if (err instanceof BudgetExhaustedError) return 'no time left to try'
    if (err instanceof Unavailable) return 'failed after retries'
    throw err
  }
}

console.log('1. a budget and its derived timeouts')
const b = new Budget({ timeoutMs: 2000 })
console.log(`   remaining ${b.remainingMs.toFixed(1)} ms, a call capped at 500 ms gets ${b.timeoutFor(500).toFixed(1)} ms`)
console.log(`   headers: grpc-timeout=${b.toHeader()} timeout-ms=${b.toHeader('timeout-ms')}`)
console.log(`   a 1 h request is capped by the policy: ${new Budget({ timeoutMs: 3_600_000 }).remainingMs.toFixed(0)} ms`)
console.log(`   decoded '250m' downstream: ${Budget.fromHeader('250m').remainingMs.toFixed(1)} ms left`)
try {
  Budget.fromHeader('soon')
} catch (err) {
  console.log(`   a garbled header is refused: ${err.message}`)
}

console.log('\n2. requests through gateway -> backend -> CallPolicy -> dependency')
for (let i = 0; i < 12; i++) {
  if (i === 4) {
    dependency.outage = true
    console.log(`  [${now()}] --- the dependency goes down ---`)
  }
  if (i === 8) {
    dependency.outage = false
    console.log(`  [${now()}] --- the dependency recovers ---`)
  }
  const result = await gateway(`k${i}`)
  console.log(`  [${now()}] request ${String(i).padStart(2)}: ${result}`)
}

console.log('\n3. incident mode: every timeout halved at run time')
const normal = TimeoutPolicy.getGlobal()
TimeoutPolicy.setGlobal(new TimeoutPolicy({ maxTimeoutMs: 15_000, scale: 0.5 }))
console.log(`   new Budget({ timeoutMs: 1000 }) now lasts ${new Budget({ timeoutMs: 1000 }).remainingMs.toFixed(0)} ms`)
TimeoutPolicy.setGlobal(normal)

const m = breaker.metrics()
const r = dependencyRetries.metrics()
console.log(
  `\ndependency called ${dependency.calls} times; breaker: ${m.successes} ok, ${m.failures} failed, ` +
    `${m.rejected} rejected; retry budget: ${r.retries} retries of ${r.allowed} allowed for ${r.requests} requests`,
)
