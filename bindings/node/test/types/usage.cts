// Type check of index.d.ts as a CommonJS user sees it.
import seawall = require('seawall')

const breaker = new seawall.CircuitBreaker({ window: { kind: 'count', size: 10 }, clock: new seawall.ManualClock() })

async function main(): Promise<void> {
  const value: string = await breaker.run(async () => 'cjs')
  const state: seawall.BreakerState = breaker.state
  void [value, state]
}

void main()
