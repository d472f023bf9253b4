// Type check of index.d.ts / index.d.mts as an ESM user sees them (`tsc --noEmit`): every
// public name is used the documented way, and `@ts-expect-error` pins what must not compile.
import seawall, {
  BreakerOpenError,
  CircuitBreaker,
  ManualClock,
  Permit,
  SeawallError,
  SnapshotError,
  type BreakerMetrics,
  type BreakerSnapshot,
  type BreakerState,
  type CircuitBreakerOptions,
  type RejectEvent,
  type StateChangeEvent,
} from 'seawall'

const clock = new ManualClock(0)
const options: CircuitBreakerOptions = {
  failureRateThreshold: 50,
  slowCallRateThreshold: 80,
  slowCallDurationMs: 2000,
  window: { kind: 'time', durationMs: 60_000, buckets: 60 },
  minimumCalls: 20,
  consecutiveFailures: null,
  openDurationMs: 30_000,
  backoff: { kind: 'exponential', multiplier: 2, maxOpenDurationMs: 300_000, jitter: 0.2 },
  halfOpenCalls: 3,
  maxHalfOpenDurationMs: null,
  seed: 7,
  isFailure: (err) => !(err instanceof TypeError),
  ignore: (err) => err instanceof Error && err.name === 'AbortError',
  isResultFailure: (result) => result === null,
  clock,
  name: 'users-db',
}
const breaker = new CircuitBreaker(options)

async function main(): Promise<void> {
  const n: number = await breaker.run(async (a: number, b: number) => a + b, 1, 2)
  const s: string = await breaker.run(() => 'sync value')
  // @ts-expect-error the arguments must match fn's parameters
  await breaker.run((a: number) => a, 'not a number')

  const permit: Permit = breaker.tryAcquire()
  permit.success()
  const settled: boolean = permit.settled

  try {
    await breaker.run(() => n + s.length)
  } catch (err) {
    if (err instanceof BreakerOpenError) {
      const retry: number | null = err.retryAfterMs
      const code: 'SEAWALL_BREAKER_OPEN' = err.code
      const reason: 'open' | 'half_open_full' | 'forced_open' = err.reason
      void [retry, code, reason]
    }
    if (err instanceof SeawallError) void err.code
  }

  breaker
    .on('stateChange', (e: StateChangeEvent) => {
      const to: BreakerState = e.to
      void to
    })
    .once('reject', (e: RejectEvent) => void e.retryAfterMs)
  // @ts-expect-error unknown event name
  breaker.on('statechange', () => {})

  const state: BreakerState = breaker.state
  const m: BreakerMetrics = breaker.metrics()
  const rate: number = m.failureRate
  breaker.forceOpen()
  breaker.disable()
  breaker.metricsOnly()
  breaker.reset()

  const snapshot: BreakerSnapshot = breaker.toJSON()
  const restored: CircuitBreaker = CircuitBreaker.fromJSON(JSON.stringify(snapshot), { clock })
  restored.restore(snapshot).restore(JSON.stringify(snapshot))
  try {
    restored.restore('{}')
  } catch (err) {
    if (err instanceof SnapshotError) {
      const reason: 'malformed' | 'unsupported_version' = err.reason
      void reason
    }
  }
  clock.advance(1000)
  clock.set(5)
  const now: number = clock.now()
  const name: string | undefined = breaker.name

  // @ts-expect-error window kinds are a closed set
  new CircuitBreaker({ window: { kind: 'sliding', size: 5 } })
  // @ts-expect-error durations are numbers of milliseconds
  new CircuitBreaker({ openDurationMs: '30s' })
  // @ts-expect-error a permit comes from tryAcquire()
  new Permit()

  void [settled, state, rate, now, name, seawall.CircuitBreaker]
}

void main()
