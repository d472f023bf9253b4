// A circuit breaker in front of a flaky dependency, on the real clock.
//
//   bash bindings/node/scripts/test.sh   # or: (cd bindings/node && npm ci && npm run build)
//   node examples/node/breaker.mjs
//
// The dependency is down for its first 400 ms: the breaker opens after enough failures, fails
// fast (with retryAfterMs) instead of waiting on it, probes once the open duration is over, and
// closes when the probes succeed.
import { BreakerOpenError, CircuitBreaker } from '../../bindings/node/index.mjs'

const start = performance.now()
const elapsed = () => `${String(Math.round(performance.now() - start)).padStart(4)} ms`
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// A dependency that times out (after 20 ms) during an outage, then answers in 5 ms.
async function inventoryService(item) {
  if (performance.now() - start < 400) {
    await sleep(20)
    throw new Error('inventory: connection timed out')
  }
  await sleep(5)
  return { item, inStock: 3 }
}

const breaker = new CircuitBreaker({
  name: 'inventory',
  window: { kind: 'count', size: 10 },
  minimumCalls: 5,
  failureRateThreshold: 50,
  openDurationMs: 300,
  halfOpenCalls: 2,
  // A client mistake says nothing about the dependency's health.
  isFailure: (err) => !(err instanceof TypeError),
})

breaker.on('stateChange', ({ from, to, reason }) => console.log(`${elapsed()}  state ${from} -> ${to} (${reason})`))
breaker.on('reject', ({ reason, retryAfterMs }) => {
  const retry = retryAfterMs === null ? '' : `, retry after ${Math.ceil(retryAfterMs)} ms`
  console.log(`${elapsed()}  rejected (${reason}${retry})`)
})

for (let i = 0; i < 14; i++) {
  const t0 = performance.now()
  try {
    const answer = await breaker.run(inventoryService, `sku-${i}`)
    console.log(`${elapsed()}  call ${i}: ok ${JSON.stringify(answer)} in ${Math.round(performance.now() - t0)} ms`)
  } catch (err) {
    if (err instanceof BreakerOpenError) {
      console.log(`${elapsed()}  call ${i}: failed fast in ${(performance.now() - t0).toFixed(2)} ms; waiting ${Math.ceil(err.retryAfterMs ?? 50)} ms`)
      await sleep(Math.ceil(err.retryAfterMs ?? 50))
    } else {
      console.log(`${elapsed()}  call ${i}: ${err.message} after ${Math.round(performance.now() - t0)} ms`)
    }
  }
}

const m = breaker.metrics()
console.log(
  `\nmetrics: state=${m.state} permitted=${m.permitted} successes=${m.successes} failures=${m.failures} ` +
    `rejected=${m.rejected} timesOpened=${m.timesOpened} failureRate=${m.failureRate.toFixed(1)} %`,
)
console.log(`snapshot: ${JSON.stringify(breaker)}`)
