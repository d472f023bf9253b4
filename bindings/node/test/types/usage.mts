// Type check of index.d.ts / index.d.mts as an ESM user sees them (`tsc --noEmit`): every
// public name is used the documented way, and `@ts-expect-error` pins what must not compile.
import seawall, {
  BreakerOpenError,
  Budget,
  BudgetExhaustedError,
  CallPolicy,
  CircuitBreaker,
  DeadlineExceededError,
  InvalidHeaderError,
  ManualClock,
  Permit,
  RetryBudget,
  RetryBudgetExhaustedError,
  RetryLoop,
  RetryPolicy,
  SeawallError,
  SnapshotError,
  TimeoutPolicy,
  retry,
  type AttemptContext,
  type GiveUpReason,
  type RetryBackoff,
  type RetryBudgetMetrics,
  type RetryDecision,
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

async function budgetsAndRetries(): Promise<void> {
  const policy = new TimeoutPolicy({ maxTimeoutMs: 15_000, scale: 0.5, minToStartMs: 10 })
  TimeoutPolicy.setGlobal(policy)
  const global: TimeoutPolicy = TimeoutPolicy.getGlobal()
  const budget = new Budget({ timeoutMs: 2000, policy, clock })
  const left: number = budget.remainingMs
  const expired: boolean = budget.isExpired
  const deadline: number = budget.deadlineMs
  const signal: AbortSignal = budget.signal
  const child: Budget = budget.child(500)
  const t: number = budget.timeoutFor() + budget.timeoutFor(100) + budget.check()
  const header: string = budget.toHeader() + budget.toHeader('timeout-ms')
  const decoded: Budget = Budget.fromHeader('100m', { format: 'grpc-timeout', policy, clock })
  const n: number = await budget.run(async (s: AbortSignal) => (s.aborted ? 0 : 1))
  const m: string = await budget.run(() => 'sync')
  // @ts-expect-error unknown header format
  budget.toHeader('grpc')
  // @ts-expect-error timeoutMs is required
  new Budget({})

  const retryPolicy = new RetryPolicy({
    maxAttempts: 4,
    backoff: { kind: 'exponential', baseMs: 50, capMs: 500, multiplier: 2 },
    seed: 1,
    isRetryable: (e) => !(e instanceof TypeError),
  })
  const backoff: RetryBackoff = retryPolicy.backoff
  const loop: RetryLoop = retryPolicy.begin(budget, { retryBudget: null })
  const timeout: number = loop.startAttempt(250)
  const decision: RetryDecision = loop.onFailure(100)
  if (!decision.retry) {
    const reason: GiveUpReason = decision.reason
    void reason
  } else {
    const delay: number = decision.delayMs
    void delay
  }
  // @ts-expect-error backoff kinds are a closed set
  new RetryPolicy({ backoff: { kind: 'linear', delayMs: 5 } })
  // @ts-expect-error a constant backoff needs its delay
  new RetryPolicy({ backoff: { kind: 'constant' } })

  const rb = new RetryBudget({ percent: 20, minPerSecond: 10, ttlMs: 10_000, clock })
  const metrics: RetryBudgetMetrics = rb.metrics()
  const g: RetryBudget = RetryBudget.getGlobal()

  const value: number = await retry(
    async ({ attempt, signal: s }: AttemptContext) => {
      void s
      return attempt
    },
    { policy: { maxAttempts: 2 }, budget, retryBudget: rb, attemptTimeoutMs: 100, signal: AbortSignal.timeout(1000) },
  )
  const calls = new CallPolicy({ breaker, retry: retryPolicy, retryBudget: null, attemptTimeoutMs: 300, timeoutMs: 2000 })
  const got: string = await calls.run(async ({ signal: s }) => (s.aborted ? 'no' : 'yes'), { budget })
  // @ts-expect-error run() options take a Budget, not milliseconds
  await calls.run(() => 1, { budget: 1000 })

  try {
    await calls.run(() => 1)
  } catch (err) {
    if (err instanceof DeadlineExceededError) void (err.timeoutMs satisfies number)
    if (err instanceof BudgetExhaustedError) void [err.remainingMs, err.minToStartMs]
    if (err instanceof RetryBudgetExhaustedError) void err.cause
    if (err instanceof InvalidHeaderError) void [err.header, err.value, err.reason]
    if (err instanceof SeawallError) void err.code
  }
  void [global, left, expired, deadline, signal, child, t, header, decoded, n, m, backoff, timeout, metrics, g, value, got]
}

void main()
void budgetsAndRetries()

// ---- Pools -----------------------------------------------------------------------------------

import {
  ConnectFailedError,
  DatabaseUnavailableError,
  Pool,
  PoolClosedError,
  PoolEngine,
  PoolOverloadedError,
  PoolReleaseError,
  PoolTimeoutError,
  pgPoolOptions,
  type CreateContext,
  type HeldConnection,
  type LeakEvent,
  type PgClientLike,
  type PoolAction,
  type PoolEngineEvent,
  type PoolMetrics,
  type PoolOptions,
} from 'seawall'

interface Conn {
  query(sql: string): Promise<number>
  close(): Promise<void>
}

async function pools(): Promise<void> {
  const options: PoolOptions<Conn> = {
    create: async ({ signal, markBroken }: CreateContext) => {
      signal.addEventListener('abort', markBroken)
      return { query: async () => 1, close: async () => {} }
    },
    destroy: (c) => c.close(),
    validate: async (c) => (await c.query('SELECT 1')) === 1,
    isBroken: (e) => e instanceof Error && e.message === 'socket hang up',
    maxSize: 8,
    minIdle: 1,
    maxWaiters: 100,
    acquireTimeoutMs: 2000,
    createTimeoutMs: 1000,
    idleTimeoutMs: null,
    maxLifetimeMs: 60_000,
    lifetimeJitter: 0.2,
    validateAfterMs: 500,
    idleOrder: 'fifo',
    leakThresholdMs: 30_000,
    createBackoff: { baseMs: 50, capMs: 5000 },
    breaker: { consecutiveFailures: 5, openDurationMs: 5000, halfOpenCalls: 1 },
    seed: 3,
    clock,
  }
  const pool = new Pool(options)
  const conn: Conn = await pool.acquire({ budget: new Budget({ timeoutMs: 500 }), signal: AbortSignal.timeout(100) })
  pool.release(conn, { broken: false })
  const n: number = await pool.use(async (c) => c.query('SELECT 1'))
  const held: HeldConnection[] = await pool.drain({ timeoutMs: 1000 })
  pool.resize(4)
  const m: PoolMetrics = pool.metrics()
  const p99: number = m.waitTime.p99Ms
  const age: number | null = m.oldestCheckoutAgeMs
  pool
    .on('leak', (e: LeakEvent) => void e.stack)
    .on('breaker', (e) => void e.to)
    .on('connectFailed', (e) => void [e.error, e.attempts, e.cause])
    .once('drained', (e) => void e.stillHeld.length)
  // @ts-expect-error unknown event name
  pool.on('leaked', () => {})
  // @ts-expect-error create is required
  new Pool<Conn>({ maxSize: 1 })
  // @ts-expect-error idle orders are a closed set
  new Pool<Conn>({ create: async () => conn, idleOrder: 'random' })

  try {
    await pool.acquire()
  } catch (err) {
    if (err instanceof PoolTimeoutError) void [err.waitedMs, err.inUse, err.idle, err.waiting, err.oldestCheckoutAgeMs]
    if (err instanceof PoolOverloadedError) void [err.waiting, err.maxWaiters]
    if (err instanceof ConnectFailedError) void [err.attempts, err.lastError, err.cause]
    if (err instanceof DatabaseUnavailableError) void [err.retryAfterMs satisfies number | null, err.lastError]
    if (err instanceof PoolClosedError) void (err.code satisfies 'SEAWALL_POOL_CLOSED')
    if (err instanceof PoolReleaseError) void (err.reason satisfies 'unknown' | 'already_released' | 'used_after_release')
  }

  const engine = new PoolEngine({ maxSize: 2 })
  const result = engine.acquire({ nowMs: 0 })
  if (result.kind === 'ready') engine.release(result.lease, { nowMs: 1, broken: true })
  else void engine.cancel(result.waiter, 1)
  const action: PoolAction | null = engine.pollAction()
  if (action?.kind === 'create') engine.handleCreated(action.slot, 2)
  if (action?.kind === 'fail') void action.error.code
  const event: PoolEngineEvent | null = engine.pollEvent()
  if (event?.kind === 'drained') void event.stillHeld
  const due: number | null = engine.pollTimeout()
  engine.handleTimeout(due ?? 0)
  engine.handleCreateFailed(1, 'refused', 3)
  engine.handleValidated(1, true, 3)
  engine.drain(4, 100)
  engine.resize(3, 5)
  const closed: boolean = engine.isClosed
  void engine.metrics(6).breakerState

  class FakePgClient implements PgClientLike {
    constructor(readonly config: unknown) {}
    async connect() {}
    async end() {}
    async query(_: { text: string }) {
      return { rows: [] }
    }
    on(_: 'error', __: (e: Error) => void) {
      return this
    }
  }
  const pgPool = new Pool({ ...pgPoolOptions({ host: 'db' }, { Client: FakePgClient, validateTimeoutMs: 1000 }), maxSize: 4 })
  const client: FakePgClient = await pgPool.acquire()
  pgPool.release(client)
  void [n, held, p99, age, closed]
}

void pools()
