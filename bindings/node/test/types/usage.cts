// Type check of index.d.ts as a CommonJS user sees it.
import seawall = require('seawall')

const breaker = new seawall.CircuitBreaker({ window: { kind: 'count', size: 10 }, clock: new seawall.ManualClock() })

async function main(): Promise<void> {
  const value: string = await breaker.run(async () => 'cjs')
  const state: seawall.BreakerState = breaker.state
  const budget = new seawall.Budget({ timeoutMs: 1000 })
  const retried: string = await seawall.retry(() => 'cjs', { budget })
  const policy = new seawall.CallPolicy({ breaker })
  const called: number = await policy.run(({ attempt }) => attempt)
  const pool = new seawall.Pool({ create: async () => ({ id: 1 }), maxSize: 2 })
  const id: number = await pool.use((c) => c.id)
  const held: seawall.HeldConnection[] = await pool.drain()
  void [value, state, retried, called, id, held]
}

void main()
