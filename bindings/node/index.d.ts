/**
 * Seawall for Node.js: circuit breakers, deadline budgets, retries and a connection pool whose
 * decisions are made by the same Rust core as the Rust and Python libraries, so every service in
 * a polyglot fleet decides alike.
 *
 * @example
 * ```ts
 * import { Budget, CallPolicy, CircuitBreaker, BreakerOpenError } from 'seawall'
 *
 * const breaker = new CircuitBreaker({ failureRateThreshold: 50, openDurationMs: 30_000 })
 * try {
 *   const user = await breaker.run(fetchUser, id)
 * } catch (err) {
 *   if (err instanceof BreakerOpenError) console.log(`retry in ${err.retryAfterMs} ms`)
 * }
 *
 * // Budget → retry → breaker → per-attempt timeout, in the right order:
 * const users = new CallPolicy({ breaker, attemptTimeoutMs: 500 })
 * const budget = Budget.fromHeader(req.headers['grpc-timeout'] ?? '2S')
 * const user2 = await users.run(({ signal }) => fetch(url, { signal }), { budget })
 * ```
 *
 * @packageDocumentation
 */

declare global {
  /**
   * The host's AbortSignal (from `@types/node` or the DOM lib). Declared empty here only so that
   * these types compile without either; it merges with the real one.
   */
  interface AbortSignal {}
}

/** Where a breaker stands. */
export type BreakerState =
  /** Calls flow; outcomes are recorded and judged. */
  | 'closed'
  /** Calls are rejected until the open duration has passed. */
  | 'open'
  /** A few probe calls are let through to test the dependency. */
  | 'half_open'
  /** Every call is rejected until changed by hand (`forceOpen()`). */
  | 'forced_open'
  /** Every call is admitted and nothing is recorded (`disable()`). */
  | 'disabled'
  /** Every call is admitted and recorded, but the breaker never opens (`metricsOnly()`). */
  | 'metrics_only'

/** Why a call was rejected. */
export type RejectionReason =
  /** The breaker is open. */
  | 'open'
  /** The breaker is half-open and all its probe slots are taken. */
  | 'half_open_full'
  /** The breaker was forced open by hand. */
  | 'forced_open'

/** Why the state changed. */
export type TransitionReason =
  | 'failure_rate'
  | 'slow_call_rate'
  | 'consecutive_failures'
  | 'open_duration_elapsed'
  | 'probes_succeeded'
  | 'probes_failed'
  | 'probes_slow'
  | 'half_open_timeout'
  | 'forced_open'
  | 'disabled'
  | 'metrics_only'
  | 'reset'
  | 'restored'

/** Judge the last `size` calls. */
export interface CountWindowOptions {
  kind: 'count'
  /** Number of calls remembered, in [1, 1000000]. */
  size: number
}

/** Judge the calls of the last `durationMs`, kept in `buckets` slices that expire one at a time. */
export interface TimeWindowOptions {
  kind: 'time'
  /** How far back the window reaches, in milliseconds (1 ms to 24 h). */
  durationMs: number
  /** Number of slices, in [1, 10000], each at least 1 ms wide; more expire old calls more smoothly. */
  buckets: number
}

/** The sliding window whose calls decide whether the breaker opens. */
export type WindowOptions = CountWindowOptions | TimeWindowOptions

/** Always stay open for `openDurationMs`. */
export interface FixedBackoffOptions {
  kind: 'fixed'
}

/**
 * Stay open `openDurationMs × multiplier^k` for the k-th consecutive re-open without a
 * successful close in between, capped at `maxOpenDurationMs`, then shortened by up to `jitter`
 * (a fraction) at random so that a fleet of breakers does not probe in lock-step.
 */
export interface ExponentialBackoffOptions {
  kind: 'exponential'
  /** Growth per consecutive re-open, in [1, 100]. Default 2. */
  multiplier?: number
  /**
   * Cap on the open duration, in milliseconds; at least `openDurationMs`. Default 10 ×
   * `openDurationMs`, at most 24 h.
   */
  maxOpenDurationMs?: number
  /** Fraction in [0, 1] by which an open duration may be shortened at random. Default 0. */
  jitter?: number
}

/** How long the breaker stays open after each trip. */
export type BackoffOptions = FixedBackoffOptions | ExponentialBackoffOptions

/** A monotonic clock in milliseconds, like `performance` (the default) or {@link ManualClock}. */
export interface Clock {
  /** The current time in milliseconds; must be finite and non-negative. */
  now(): number
}

/**
 * Options of {@link CircuitBreaker}. Every option is optional; numbers are validated by the core
 * (a `RangeError` naming the option and its allowed range), wrong types give a `TypeError`, both
 * with `code: 'SEAWALL_INVALID_CONFIG'` and `field`. Keys Seawall does not know are ignored.
 */
export interface CircuitBreakerOptions {
  /** Failure-rate percentage in (0, 100] at or above which the breaker opens. Default 50. */
  failureRateThreshold?: number
  /**
   * Slow-call percentage in (0, 100] at or above which the breaker opens. Default 100 (every
   * call in the window slow); applies only when `slowCallDurationMs` is set.
   */
  slowCallRateThreshold?: number
  /**
   * A call that takes longer than this many milliseconds is slow, whatever its outcome.
   * Default `null`: slow calls are not tracked.
   */
  slowCallDurationMs?: number | null
  /** The sliding window. Default `{ kind: 'count', size: 100 }`. */
  window?: WindowOptions
  /**
   * Calls needed in the window before a rate can open the breaker, in [1, 1000000]. Default 20
   * (capped at the size of a count window).
   */
  minimumCalls?: number
  /** Open after this many failures in a row, whatever the rates. Default `null`: off. */
  consecutiveFailures?: number | null
  /** How long the breaker stays open before probing, in milliseconds. Default 30000. */
  openDurationMs?: number
  /** Growth of the open duration over consecutive re-opens. Default `{ kind: 'fixed' }`. */
  backoff?: BackoffOptions
  /** Probe calls admitted while half-open, in [1, 10000]. Default 3. */
  halfOpenCalls?: number
  /**
   * Longest a half-open trial may last, in milliseconds, before the breaker opens again.
   * Default 120000; `null` waits for the probes for ever.
   */
  maxHalfOpenDurationMs?: number | null
  /** Seed of the backoff jitter (a safe integer), for reproducible tests. Default: random. */
  seed?: number | null
  /**
   * Whether an error thrown by the call counts as a failure; `false` counts it as a success
   * (e.g. a 404). Default: every error is a failure.
   */
  isFailure?: (error: unknown) => boolean
  /**
   * Whether an error thrown by the call is ignored (counted neither way, e.g. a cancellation).
   * Checked before `isFailure`.
   */
  ignore?: (error: unknown) => boolean
  /** Whether a value the call returned counts as a failure (e.g. a 503 response). Default: never. */
  isResultFailure?: (result: unknown) => boolean
  /**
   * The clock the breaker reads. Default `performance`; tests pass a {@link ManualClock}. A
   * reading that is not a finite, non-negative number throws (`code: 'SEAWALL_INVALID_CLOCK'`);
   * when that happens as a call ends, the call is first recorded as ignored, so no permit is lost.
   */
  clock?: Clock
  /** A name shown in error messages. */
  name?: string
}

/** Payload of the `stateChange` event. */
export interface StateChangeEvent {
  /** State before. */
  from: BreakerState
  /** State after. */
  to: BreakerState
  /** Why. */
  reason: TransitionReason
}

/** Payload of the `reject` event. */
export interface RejectEvent {
  /** Why the call was rejected. */
  reason: RejectionReason
  /** Milliseconds until the breaker may admit calls again, when it knows (it does while open). */
  retryAfterMs: number | null
}

/** The events a {@link CircuitBreaker} emits, with their payloads. */
export interface BreakerEvents {
  /** The state changed. */
  stateChange: StateChangeEvent
  /** A call was rejected. */
  reject: RejectEvent
}

/** A breaker's numbers. Totals count since the breaker was built, across resets. */
export interface BreakerMetrics {
  /** Current state. */
  state: BreakerState
  /** Percentage of failed calls among the calls judged now (the window, or the half-open probes). */
  failureRate: number
  /** Percentage of slow calls among the calls judged now. */
  slowCallRate: number
  /** Calls judged now. */
  callsInWindow: number
  /** Failed calls among them. */
  failuresInWindow: number
  /** Slow calls among them. */
  slowCallsInWindow: number
  /** Calls admitted and counted (calls admitted while disabled are not). */
  permitted: number
  /** Outcomes recorded as success. */
  successes: number
  /** Outcomes recorded as failure. */
  failures: number
  /** Outcomes recorded as ignored. */
  ignored: number
  /** Calls that were slow, whatever their outcome. */
  slowCalls: number
  /** Calls rejected. */
  rejected: number
  /** Permits admitted and not yet settled. `permitted = successes + failures + ignored + inFlight`. */
  inFlight: number
  /** Times the breaker opened, forced opens included. */
  timesOpened: number
  /** Failures in a row right now. */
  consecutiveFailures: number
}

/** Counts of calls in a snapshot. */
export interface SnapshotTotals {
  calls: number
  failures: number
  slow: number
}

/** One time-window bucket in a snapshot. */
export interface SnapshotBucket extends SnapshotTotals {
  /** How long before the snapshot the bucket's slice began, in nanoseconds. */
  age_ns: number
}

/**
 * Seawall's versioned, language-neutral breaker snapshot (the same JSON in Rust and Python).
 * Treat it as opaque: store it, send it, give it back to `restore` or `fromJSON`.
 */
export interface BreakerSnapshot {
  /** Format version. */
  version: number
  state: BreakerState
  open_remaining_ns?: number
  half_open_elapsed_ns?: number
  probes?: SnapshotTotals
  consecutive_failures: number
  consecutive_opens: number
  window: { kind: 'count'; calls: number[] } | { kind: 'time'; buckets: SnapshotBucket[] }
}

/**
 * Base class of the errors Seawall throws for its own reasons. Errors about arguments are
 * built-in `RangeError` / `TypeError` instances instead, with `code` (`SEAWALL_INVALID_CONFIG`
 * for options, `SEAWALL_INVALID_ARGUMENT` for method arguments, `SEAWALL_INVALID_CLOCK` for a
 * clock reading) and `field` (the option in JavaScript spelling).
 */
export declare class SeawallError extends Error {
  constructor(message: string, code: string, options?: ErrorOptions)
  /**
   * A stable identifier: `SEAWALL_BREAKER_OPEN`, `SEAWALL_INVALID_SNAPSHOT`,
   * `SEAWALL_DEADLINE_EXCEEDED`, `SEAWALL_BUDGET_EXHAUSTED`, `SEAWALL_RETRY_BUDGET_EXHAUSTED`,
   * `SEAWALL_INVALID_HEADER`, `SEAWALL_POOL_TIMEOUT`, `SEAWALL_POOL_OVERLOADED`,
   * `SEAWALL_CONNECT_FAILED`, `SEAWALL_DATABASE_UNAVAILABLE`, `SEAWALL_POOL_CLOSED`,
   * `SEAWALL_POOL_RELEASE`.
   */
  readonly code: string
}

/**
 * The breaker rejected a call; the call was not made. Built without stack frames: where it
 * happened is the breaker's `name` and `reason`, and capturing a stack was most of a rejection's
 * cost.
 */
export declare class BreakerOpenError extends SeawallError {
  constructor(reason: RejectionReason, retryAfterMs: number | null, breakerName?: string)
  readonly code: 'SEAWALL_BREAKER_OPEN'
  /** Why the call was rejected. */
  readonly reason: RejectionReason
  /** Milliseconds until the breaker may admit calls again, or `null` when it cannot say. */
  readonly retryAfterMs: number | null
}

/** A snapshot that cannot be restored; the breaker is unchanged. */
export declare class SnapshotError extends SeawallError {
  constructor(message: string, reason: 'malformed' | 'unsupported_version', options?: ErrorOptions)
  readonly code: 'SEAWALL_INVALID_SNAPSHOT'
  /** `unsupported_version` when written by a newer Seawall, else `malformed`. */
  readonly reason: 'malformed' | 'unsupported_version'
}

/**
 * Proof that a call was admitted, from {@link CircuitBreaker.tryAcquire}. Settle it with
 * exactly one of `success()`, `failure()` or `ignore()` when the call ends; later calls do
 * nothing. A permit never settled keeps a half-open probe slot taken.
 */
export declare class Permit {
  private constructor()
  /** Whether an outcome has been recorded. */
  readonly settled: boolean
  /** The call succeeded. */
  success(): void
  /** The call failed. */
  failure(): void
  /** The call does not count either way; frees its half-open probe slot. */
  ignore(): void
}

/**
 * A circuit breaker: stops calling a failing or slow dependency, probes it now and then, and
 * resumes when it has recovered. Every decision is one synchronous call into Seawall's Rust
 * core; no timers run, so a process with breakers exits by itself.
 */
export declare class CircuitBreaker {
  /**
   * @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid option.
   */
  constructor(options?: CircuitBreakerOptions)

  /**
   * A breaker built from `options` with the state of `snapshot` (from {@link toJSON}, possibly
   * written by another process or by Seawall in another language).
   * @throws SnapshotError if the snapshot cannot be restored.
   */
  static fromJSON(snapshot: BreakerSnapshot | string, options?: CircuitBreakerOptions): CircuitBreaker

  /** The `name` option. */
  readonly name: string | undefined

  /** The current state; reading it moves an open breaker whose time is up to half-open. */
  readonly state: BreakerState

  /**
   * Runs `fn(...args)` if the breaker admits it, awaits it and records the outcome: a thrown
   * error or a rejection is classified by `ignore` then `isFailure`, a value by
   * `isResultFailure`. Resolves or rejects with what `fn` gave. The permit is always settled;
   * if a classification callback throws, the call is recorded as ignored and that exception
   * is what `run` rejects with.
   * @throws BreakerOpenError (as a rejection) when the breaker refuses the call; `fn` is not called.
   */
  run<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>, ...args: A): Promise<Awaited<R>>

  /**
   * Asks for admission without running anything; settle the returned permit when the call ends.
   * @throws BreakerOpenError when the breaker refuses the call.
   */
  tryAcquire(): Permit

  /** The breaker's numbers now. */
  metrics(): BreakerMetrics

  /** Rejects every call until `reset()`, `disable()` or `metricsOnly()`. */
  forceOpen(): void
  /** Admits every call and records nothing, until another manual change. */
  disable(): void
  /** Records outcomes but never rejects, until another manual change. */
  metricsOnly(): void
  /** Back to closed with an empty window and the base open duration; totals are kept. */
  reset(): void

  /** The state as a snapshot object; `JSON.stringify(breaker)` gives its JSON. */
  toJSON(): BreakerSnapshot

  /**
   * Replaces the state with a snapshot from {@link toJSON} (the object or its JSON string).
   * Totals and calls in flight are not part of a snapshot.
   * @throws SnapshotError if the snapshot cannot be restored (the breaker is then unchanged).
   */
  restore(snapshot: BreakerSnapshot | string): this

  /**
   * Calls `listener` after every `event`, once the breaker has made its decision. A listener
   * that throws changes neither the breaker nor the call that caused the event: the other
   * listeners still run, and its exception is rethrown on the next tick (an
   * `uncaughtException`, as from any callback).
   * @throws RangeError for an unknown event name.
   */
  on<E extends keyof BreakerEvents>(event: E, listener: (payload: BreakerEvents[E]) => void): this
  /** Like {@link on}, for the next `event` only. */
  once<E extends keyof BreakerEvents>(event: E, listener: (payload: BreakerEvents[E]) => void): this
  /** Removes the most recent registration of `listener` for `event`. */
  off<E extends keyof BreakerEvents>(event: E, listener: (payload: BreakerEvents[E]) => void): this
}

/**
 * A clock that moves only when told to, for tests: pass it as the `clock` option and move
 * breakers, budgets, retry budgets and pools through time without sleeping. A {@link Pool}
 * reading it runs its due timers (acquire and create timeouts, idle timeouts, leak reports)
 * synchronously as the clock moves.
 */
export declare class ManualClock implements Clock {
  /** @param startMs the initial time in milliseconds (default 0). */
  constructor(startMs?: number)
  /** The current time in milliseconds. */
  now(): number
  /** Moves the clock forward by `ms` milliseconds and returns the new time. */
  advance(ms: number): number
  /** Sets the clock to `ms` milliseconds. */
  set(ms: number): void
}

// ---- Deadline budgets ---------------------------------------------------------------------

/** Options of {@link TimeoutPolicy}; every one is optional and validated by the core. */
export interface TimeoutPolicyOptions {
  /** No timeout may exceed this many milliseconds; 1 ms to 24 h. Default 15000. */
  maxTimeoutMs?: number
  /**
   * Every configured timeout is multiplied by this factor, in (0, 1]: 0.5 halves every
   * timeout during an incident. Default 1.
   */
  scale?: number
  /**
   * A call is not started with less than this many milliseconds left (it fails fast with
   * {@link BudgetExhaustedError} instead); 0 to `maxTimeoutMs`. Default 10.
   */
  minToStartMs?: number
}

/**
 * The rules every timeout obeys: none longer than `maxTimeoutMs`, every configured timeout
 * multiplied by `scale`, and no call started with less than `minToStartMs` left. Immutable.
 */
export declare class TimeoutPolicy {
  /**
   * @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid
   * option, e.g. a `scale` outside (0, 1].
   */
  constructor(options?: TimeoutPolicyOptions)
  /** The longest timeout allowed, in milliseconds. */
  readonly maxTimeoutMs: number
  /** The factor applied to every configured timeout. */
  readonly scale: number
  /** The least time left, in milliseconds, for which a call is still started. */
  readonly minToStartMs: number
  /**
   * The process-wide policy, used by every budget created without one. It lives in Seawall's
   * Rust core, so Rust code in the same process sees the same one. Default: 15 s, 1, 10 ms.
   */
  static getGlobal(): TimeoutPolicy
  /**
   * Replaces the process-wide policy (during an incident, for instance). Budgets created before
   * keep the policy they were created with.
   */
  static setGlobal(policy: TimeoutPolicy): void
  toJSON(): { maxTimeoutMs: number; scale: number; minToStartMs: number }
}

/** Options of {@link Budget}. */
export interface BudgetOptions {
  /**
   * The total time, in milliseconds, from now; scaled, then capped at the policy maximum. A
   * value that is negative, not finite or above 24 h is a `RangeError` (`field: 'timeoutMs'`).
   */
  timeoutMs: number
  /** The policy the budget obeys. Default: {@link TimeoutPolicy.getGlobal} at creation. */
  policy?: TimeoutPolicy
  /**
   * The clock, in milliseconds. Default `performance`; tests pass a {@link ManualClock}.
   * Deadline timers (`run()`, `signal`) run on real time, for as long as this clock says is left
   * when they start.
   */
  clock?: Clock
}

/** How a deadline travels in a header: gRPC's `grpc-timeout` (`"1500m"`), or whole milliseconds. */
export type HeaderFormat = 'grpc-timeout' | 'timeout-ms'

/** Options of {@link Budget.fromHeader}. */
export interface FromHeaderOptions {
  /** The format of the value. Default `'grpc-timeout'`. */
  format?: HeaderFormat
  /** The receiving side's policy: its maximum caps the caller's deadline. Default: the global one. */
  policy?: TimeoutPolicy
  /** The clock. Default `performance`. */
  clock?: Clock
}

/**
 * A request's deadline: created from a total timeout, carried through the request and shared
 * by everything it calls. Every timeout derived from it is `min(remaining, per-call cap ×
 * scale, policy maximum)`, and a call is not started when less than the policy's
 * `minToStartMs` is left: it fails at once with {@link BudgetExhaustedError}.
 *
 * @example
 * ```ts
 * const budget = new Budget({ timeoutMs: 2000 })
 * const rows = await budget.run((signal) => db.query(sql, { signal }))
 * await fetch(url, { headers: { 'grpc-timeout': budget.toHeader() }, signal: budget.signal })
 * ```
 */
export declare class Budget {
  /** @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid option. */
  constructor(options: BudgetOptions)
  /**
   * A budget from a received header value, ending when the caller's deadline does: capped at
   * the policy maximum, never scaled (it is the caller's deadline, not one of ours). Surrounding
   * spaces and tabs are accepted.
   * @throws InvalidHeaderError for a value that is not a timeout.
   * @throws TypeError if `value` is not a string (a missing header is the caller's to handle).
   */
  static fromHeader(value: string, options?: FromHeaderOptions): Budget
  /** The policy this budget obeys. */
  readonly policy: TimeoutPolicy
  /** The deadline, in milliseconds on the budget's clock. */
  readonly deadlineMs: number
  /** Milliseconds left now (0 once past the deadline). */
  readonly remainingMs: number
  /** Whether the deadline has passed (true from the deadline itself on). */
  readonly isExpired: boolean
  /**
   * An AbortSignal that aborts with a {@link DeadlineExceededError} at the deadline: pass it to
   * `fetch`, a database driver, anything that takes one. Created on first read; its timer is
   * Seawall's shared one, unref'd, so it never keeps the process alive.
   */
  readonly signal: AbortSignal
  /**
   * A nested budget for one part of the request: it ends at the earlier of this deadline and
   * now + `capMs × scale` (capped at the policy maximum).
   * @throws RangeError (`code: 'SEAWALL_INVALID_ARGUMENT'`, `field: 'capMs'`) for a cap that is
   * negative, not finite or above 24 h.
   */
  child(capMs: number): Budget
  /**
   * The timeout for one call, in milliseconds: `min(remaining, capMs × scale, policy maximum)`
   * (without `capMs`: `min(remaining, policy maximum)`).
   * @throws BudgetExhaustedError when the budget cannot fit a call.
   */
  timeoutFor(capMs?: number): number
  /**
   * The time left, in milliseconds, when a call may still start.
   * @throws BudgetExhaustedError when less than the policy's `minToStartMs` (or nothing) is left.
   */
  check(): number
  /** The time left as a header value for the next service, rounded down. Default format `'grpc-timeout'`. */
  toHeader(format?: HeaderFormat): string
  /**
   * Runs `work` under the budget. Rejects with {@link DeadlineExceededError} at the deadline,
   * after aborting the signal `work` received (so the work can stop); rejects with
   * {@link BudgetExhaustedError}, without calling `work`, when the budget cannot fit a call;
   * otherwise settles as `work` does. `work` receives an AbortSignal only if it declares a
   * parameter (creating a signal is the expensive part of a timeout, so it is made only when
   * asked for). The deadline timer is shared and unref'd, and dropped when the work settles.
   *
   * A deadline never keeps the process alive: work that holds nothing (a bare promise that never
   * settles) cannot stop a process with nothing else to do from exiting. Real work holds its
   * own handles (sockets, timers), which do.
   */
  run<T>(work: (signal: AbortSignal) => T | PromiseLike<T>): Promise<Awaited<T>>
}

// ---- Retries ------------------------------------------------------------------------------

/** Always wait `delayMs`. */
export interface ConstantBackoffOptions {
  kind: 'constant'
  /** The wait, in milliseconds (0 to 24 h). */
  delayMs: number
}

/** Wait `baseMs × multiplier^(n − 1)` after the n-th attempt, at most `capMs`. */
export interface ExponentialRetryBackoffOptions {
  kind: 'exponential'
  /** The first wait, in milliseconds (0 to 24 h). */
  baseMs: number
  /** The longest wait, in milliseconds; at least `baseMs`. */
  capMs: number
  /** Growth per attempt, in [1, 100]. Default 2. */
  multiplier?: number
}

/**
 * AWS's "decorrelated jitter": a wait drawn uniformly between `baseMs` and three times the
 * previous wait, at most `capMs`. Spreads a crowd of retrying callers.
 */
export interface DecorrelatedJitterBackoffOptions {
  kind: 'decorrelated_jitter'
  /** The shortest wait, in milliseconds. Default 100. */
  baseMs?: number
  /** The longest wait, in milliseconds; at least `baseMs`. Default 5000. */
  capMs?: number
}

/** How long to wait between attempts. Waits are not scaled by the timeout policy. */
export type RetryBackoffOptions = ConstantBackoffOptions | ExponentialRetryBackoffOptions | DecorrelatedJitterBackoffOptions

/** A retry policy's backoff, every value filled in. */
export type RetryBackoff =
  | { kind: 'constant'; delayMs: number }
  | { kind: 'exponential'; baseMs: number; capMs: number; multiplier: number }
  | { kind: 'decorrelated_jitter'; baseMs: number; capMs: number }

/** Options of {@link RetryPolicy}; validated by the core. */
export interface RetryPolicyOptions {
  /** Attempts in all, the first included, in [1, 100]. Default 3. */
  maxAttempts?: number
  /** Default `{ kind: 'decorrelated_jitter', baseMs: 100, capMs: 5000 }`. */
  backoff?: RetryBackoffOptions
  /** Seed of the jitter (a safe integer), for reproducible tests. Default: random. */
  seed?: number | null
  /**
   * Whether an error thrown by the function is worth another attempt. The policy's own failures
   * (an attempt that ran out of time, a rejection by the policy's breaker) always go to the retry
   * loop, which honours the breaker's `retryAfterMs` and the budget; the same rule holds in Rust
   * and Python. Default: every error except {@link BudgetExhaustedError} and
   * {@link RetryBudgetExhaustedError}. An abort by the caller's own signal is never retried.
   */
  isRetryable?: (error: unknown) => boolean
}

/** Why a retry loop stopped. */
export type GiveUpReason =
  /** `maxAttempts` attempts were made. */
  | 'attempts_exhausted'
  /** The wait plus the policy's `minToStartMs` does not fit in what is left of the budget. */
  | 'budget_exhausted'
  /** The server's `retryAfterMs` hint does not fit in what is left of the budget. */
  | 'retry_after_beyond_budget'
  /** The shared retry budget allows no more retries now. */
  | 'retry_budget_exhausted'

/** What to do after a failed attempt. */
export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: GiveUpReason }

/**
 * How many attempts a call makes and how long it waits between them. Give it to
 * {@link retry} or a {@link CallPolicy}, or drive a {@link RetryLoop} from {@link begin}.
 */
export declare class RetryPolicy {
  /** @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid option. */
  constructor(options?: RetryPolicyOptions)
  /** Attempts in all, the first included. */
  readonly maxAttempts: number
  /** The backoff, with its defaults filled in. */
  readonly backoff: RetryBackoff
  /** The jitter seed, or `null` when random. */
  readonly seed: number | null
  /** The `isRetryable` option, if given. */
  readonly isRetryable: ((error: unknown) => boolean) | undefined
  /**
   * Begins one call's retry loop under `budget`, for code that runs its own attempts. Retries
   * are drawn from `retryBudget`: default {@link RetryBudget.getGlobal}, `null` for none.
   */
  begin(budget: Budget, options?: { retryBudget?: RetryBudget | null }): RetryLoop
}

/**
 * One call's retry loop: call {@link startAttempt} before each attempt and {@link onFailure}
 * after each retryable failure; wait `delayMs` when told to retry. Every decision is the core's.
 */
export declare class RetryLoop {
  private constructor()
  /** The budget the loop runs under. */
  readonly budget: Budget
  /** Attempts started so far. */
  readonly attempts: number
  /**
   * Starts an attempt if the budget fits one and returns its timeout in milliseconds:
   * `min(remaining, capMs × scale, policy maximum)`. The first attempt counts as a request in
   * the retry budget.
   * @throws BudgetExhaustedError when the budget cannot fit an attempt (nothing is counted).
   */
  startAttempt(capMs?: number): number
  /**
   * After a retryable failure: wait `delayMs` and start the next attempt, or stop for `reason`.
   * `retryAfterMs` is a server's hint (an open breaker's, a parsed `Retry-After`): it replaces
   * the backoff when it fits the budget and ends the retries when it does not.
   * @throws RangeError (`field: 'retryAfterMs'`) for a negative or NaN hint.
   */
  onFailure(retryAfterMs?: number | null): RetryDecision
}

/** Options of {@link RetryBudget}; validated by the core. */
export interface RetryBudgetOptions {
  /** Retries allowed as a percentage of requests, in [0, 1000]. Default 20. */
  percent?: number
  /** Retries always allowed per second of `ttlMs`, in [0, 100000]. Default 10. */
  minPerSecond?: number
  /** How long a request or a retry counts, in milliseconds: 1 s to 1 h. Default 10000. */
  ttlMs?: number
  /** The clock. Default: Seawall's monotonic clock (the one the global budget uses). */
  clock?: Clock
}

/** A retry budget's numbers over its window. */
export interface RetryBudgetMetrics {
  /** Requests (first attempts) counted. */
  requests: number
  /** Retries counted. */
  retries: number
  /** Retries the window allows in all: `floor(requests × percent / 100) + floor(minPerSecond × ttl in s)`. */
  allowed: number
}

/**
 * A retry budget shared by every caller of a dependency (Finagle and Envoy's design): retries
 * may add at most `percent` of the requests plus `minPerSecond` a second over the last `ttlMs`.
 * A per-call attempt limit does not stop a retry storm; this does. It is on by default.
 */
export declare class RetryBudget {
  /** @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field: 'retryBudget.…'`). */
  constructor(options?: RetryBudgetOptions)
  /**
   * The process-wide retry budget (20 %, 10/s, 10 s), used by {@link retry} and
   * {@link CallPolicy} whenever none is given. It is the core's, shared with Rust code in the
   * same process.
   */
  static getGlobal(): RetryBudget
  /** Retries allowed as a percentage of requests. */
  readonly percent: number
  /** Retries always allowed per second. */
  readonly minPerSecond: number
  /** How long a request or retry counts, in milliseconds. */
  readonly ttlMs: number
  /** The numbers now. */
  metrics(): RetryBudgetMetrics
}

/** What an attempt function receives. */
export interface AttemptContext {
  /** The attempt's number, from 1. */
  readonly attempt: number
  /**
   * Aborts when the attempt's timeout passes (with a {@link DeadlineExceededError}) or the
   * caller's signal aborts (with its reason). Created on first read.
   */
  readonly signal: AbortSignal
}

/** Options of {@link retry}. */
export interface RetryOptions {
  /** A policy, or the options of one. Default `new RetryPolicy()`. */
  policy?: RetryPolicy | RetryPolicyOptions
  /**
   * The call's budget. Default: a new budget of the global policy's maximum (scaled by it), so
   * every call has a timeout.
   */
  budget?: Budget
  /** The retry budget. Default {@link RetryBudget.getGlobal}; `null` turns it off (think twice). */
  retryBudget?: RetryBudget | null
  /** A cap on each attempt, in milliseconds (scaled by the policy, never beyond what is left). */
  attemptTimeoutMs?: number
  /** Overrides the policy's `isRetryable`. */
  isRetryable?: (error: unknown) => boolean
  /** The caller's signal: aborting it cancels the attempt in flight (or the wait) and ends the call with its reason. */
  signal?: AbortSignal
}

/**
 * Calls `fn` until it succeeds or the policy gives up, all within one budget:
 *
 * 1. start an attempt if the budget fits one (else reject with the last failure, or
 *    {@link BudgetExhaustedError} before any attempt);
 * 2. run `fn` under the attempt's timeout: at the timeout it rejects with
 *    {@link DeadlineExceededError} and `signal` aborts;
 * 3. on success resolve; on a failure that is not retryable reject with it;
 * 4. otherwise ask the core: wait (a `retryAfterMs` number on the error, as on a
 *    {@link BreakerOpenError}, replaces the backoff when it fits) and go to 1, or give up —
 *    with {@link RetryBudgetExhaustedError} (`cause`: the last error) when the retry budget
 *    refused, with the last error otherwise.
 *
 * Deadline timers are unref'd; the wait between attempts is an ordinary (ref'd) timer, since a
 * program awaiting a retry is doing work. Bad options reject with RangeError / TypeError.
 */
export declare function retry<T>(fn: (attempt: AttemptContext) => T | PromiseLike<T>, options?: RetryOptions): Promise<Awaited<T>>

/** Options of {@link CallPolicy}. */
export interface CallPolicyOptions {
  /**
   * The breaker every attempt goes through. A rejection is a failed attempt whose hint is its
   * `retryAfterMs`; outcomes are classified by the breaker's own callbacks, except that a
   * timed-out attempt is always a failure and one cancelled by the caller is ignored.
   */
  breaker?: CircuitBreaker
  /** A policy, or the options of one. Default `new RetryPolicy()`. */
  retry?: RetryPolicy | RetryPolicyOptions
  /** The retry budget. Default {@link RetryBudget.getGlobal}; `null` turns it off. */
  retryBudget?: RetryBudget | null
  /** A cap on each attempt, in milliseconds (scaled by the policy, never beyond what is left). */
  attemptTimeoutMs?: number
  /** The budget of a call run without one, in milliseconds. Default: the global policy's maximum. */
  timeoutMs?: number
}

/** Options of {@link CallPolicy.run}. */
export interface CallPolicyRunOptions {
  /** The call's budget (from the incoming request, say). Default: a new one of `timeoutMs`. */
  budget?: Budget
  /** The caller's signal: aborting it cancels the attempt in flight (or the wait). */
  signal?: AbortSignal
}

/**
 * Runs calls under budget → retry → breaker → per-attempt timeout, in that order, so callers
 * need not know the order: the budget bounds everything (waits included); the retry loop sees
 * the breaker's rejections and honours their retry-after; the breaker sees every attempt; each
 * attempt's timeout comes from what is left of the budget.
 *
 * @example
 * ```ts
 * const inventory = new CallPolicy({
 *   breaker: new CircuitBreaker({ name: 'inventory' }),
 *   retry: { maxAttempts: 3, backoff: { kind: 'exponential', baseMs: 50, capMs: 500 } },
 *   attemptTimeoutMs: 300,
 * })
 * const stock = await inventory.run(({ signal }) => fetch(url, { signal }), { budget })
 * ```
 */
export declare class CallPolicy {
  /** @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid option. */
  constructor(options?: CallPolicyOptions)
  /** The breaker, if any. */
  readonly breaker: CircuitBreaker | undefined
  /** The retry policy. */
  readonly retry: RetryPolicy
  /** The retry budget (`null`: none). */
  readonly retryBudget: RetryBudget | null
  /** The cap on each attempt, in milliseconds, if any. */
  readonly attemptTimeoutMs: number | undefined
  /** The budget of a call run without one, in milliseconds, if set. */
  readonly timeoutMs: number | undefined
  /** Runs `fn` under the policy; settles as {@link retry} describes. */
  run<T>(fn: (attempt: AttemptContext) => T | PromiseLike<T>, options?: CallPolicyRunOptions): Promise<Awaited<T>>
}

// ---- Errors of budgets and retries --------------------------------------------------------

/**
 * Work did not finish within its time and was cancelled: its AbortSignal aborted with this
 * error, and the promise that ran it rejected with it.
 */
export declare class DeadlineExceededError extends SeawallError {
  constructor(timeoutMs: number)
  readonly code: 'SEAWALL_DEADLINE_EXCEEDED'
  /** The time the work was given, in milliseconds. */
  readonly timeoutMs: number
}

/** Too little of the budget was left to start a call; the call was not made. */
export declare class BudgetExhaustedError extends SeawallError {
  constructor(remainingMs: number, minToStartMs: number)
  readonly code: 'SEAWALL_BUDGET_EXHAUSTED'
  /** Milliseconds that were left. */
  readonly remainingMs: number
  /** The policy's minimum to start a call. */
  readonly minToStartMs: number
}

/** The shared retry budget refused a retry. */
export declare class RetryBudgetExhaustedError extends SeawallError {
  constructor(lastError: unknown)
  readonly code: 'SEAWALL_RETRY_BUDGET_EXHAUSTED'
  /** The last attempt's error. */
  readonly cause: unknown
}

/** A received deadline header value that is not a timeout. */
export declare class InvalidHeaderError extends SeawallError {
  constructor(message: string, header: HeaderFormat, value: string, reason: string)
  readonly code: 'SEAWALL_INVALID_HEADER'
  /** The format that was expected. */
  readonly header: HeaderFormat
  /** The value received (its first 64 characters). */
  readonly value: string
  /** What is wrong with it. */
  readonly reason: string
}

// ---- Connection pool ----------------------------------------------------------------------

/** Which idle connection a checkout gets. */
export type IdleOrder =
  /** The most recently returned: a warm working set, and the rest time out. */
  | 'lifo'
  /** The least recently returned: use spread evenly over every connection. */
  | 'fifo'

/** Back-off between failed connection attempts: from `baseMs`, doubling, at most `capMs`, with jitter. */
export interface CreateBackoffOptions {
  /** The first wait, in milliseconds (1 ms to 24 h). */
  baseMs: number
  /** The longest wait, in milliseconds; at least `baseMs`. */
  capMs: number
}

/**
 * The breaker guarding a pool's connection attempts: the numeric options of
 * {@link CircuitBreakerOptions}. A given object replaces the pool's default whole.
 */
export type PoolBreakerOptions = Omit<CircuitBreakerOptions, 'isFailure' | 'ignore' | 'isResultFailure' | 'clock' | 'name'>

/**
 * The numbers of a pool, shared by {@link Pool} and {@link PoolEngine}. Every option is optional;
 * they are validated by the core (a `RangeError` naming the option, a `TypeError` for a wrong
 * type, both with `code: 'SEAWALL_INVALID_CONFIG'` and `field`). The defaults are the same in
 * Rust and Python.
 */
export interface PoolEngineOptions {
  /** Most connections, those being opened included, in [1, 10000]. Default 10. */
  maxSize?: number
  /** Idle connections kept open, at most `maxSize`. Default 0. */
  minIdle?: number
  /** Most callers waiting at once, in [0, 1000000]; beyond it `acquire` fails at once with {@link PoolOverloadedError}. Default 1000. */
  maxWaiters?: number
  /**
   * Longest an acquire waits, in milliseconds: from 1 ms to the process-wide
   * {@link TimeoutPolicy}'s maximum (15 s by default). Default 5000.
   */
  acquireTimeoutMs?: number
  /** Longest a connection attempt may take, handshake included, in milliseconds. Default 5000. */
  createTimeoutMs?: number
  /** Idle connections older than this are closed (down to `minIdle`). Default 600000; `null`: never. */
  idleTimeoutMs?: number | null
  /** Connections are replaced after about this long. Default 1800000; `null`: never. */
  maxLifetimeMs?: number | null
  /** Fraction in [0, 1) by which each lifetime is shortened at random, so that a fleet does not reconnect at once. Default 0.1. */
  lifetimeJitter?: number
  /**
   * A connection idle for more than this is validated before it is handed out. Default 500;
   * `null`: never validate.
   */
  validateAfterMs?: number | null
  /** Which idle connection a checkout gets. Default `'lifo'`. */
  idleOrder?: IdleOrder
  /**
   * Report a checkout held longer than this (a `leak` event, with the stack of where it was
   * acquired). Default `null`: off (and no stack is captured).
   */
  leakThresholdMs?: number | null
  /** Default `{ baseMs: 50, capMs: 5000 }`. */
  createBackoff?: CreateBackoffOptions
  /**
   * The breaker guarding connection attempts. Default: five failed attempts in a row open it for
   * 5 s (`{ window: { kind: 'count', size: 10 }, minimumCalls: 5, consecutiveFailures: 5,
   * openDurationMs: 5000, halfOpenCalls: 1, maxHalfOpenDurationMs: 30000 }`).
   */
  breaker?: PoolBreakerOptions
  /** Seed of the jitter (back-off, lifetimes; a safe integer), for reproducible tests. Default: random. */
  seed?: number | null
}

/** What a pool's `create` receives. */
export interface CreateContext {
  /**
   * Aborts when the pool gives up on this connection attempt (its `createTimeoutMs` passed, or
   * the pool is draining): stop connecting and free the socket. A connection produced anyway is
   * closed with `destroy`.
   */
  readonly signal: AbortSignal
  /**
   * Reports that the connection is unusable (its socket died, say), at any time of its life:
   * its checkout ends as broken (the connection is closed, not reused), and a validation of it
   * fails. A bound function: pass it to an `'error'` listener as it is.
   */
  readonly markBroken: () => void
}

/** Options of {@link Pool}: how to open, check and close a connection, and the pool's numbers. */
export interface PoolOptions<C extends object> extends PoolEngineOptions {
  /** Opens a connection (an object). A rejection is a failed attempt; its error is the `cause` of {@link ConnectFailedError}. */
  create: (context: CreateContext) => C | PromiseLike<C>
  /** Closes a connection the pool is done with. Default: drop it. */
  destroy?: (connection: C) => unknown
  /**
   * Checks a connection that was idle longer than `validateAfterMs` before handing it out:
   * resolving to `false` or throwing fails it (it is closed and another one is used). Default:
   * trust it.
   */
  validate?: (connection: C) => boolean | void | PromiseLike<boolean | void>
  /** Whether an error thrown in {@link Pool.use} leaves the connection unusable. Default: never. */
  isBroken?: (error: unknown) => boolean
  /** The clock. Default `performance`; with a {@link ManualClock}, the pool's timers fire as it moves. */
  clock?: Clock
}

/** Options of {@link Pool.acquire} and {@link Pool.use}. */
export interface AcquireOptions {
  /** The request's budget: the wait ends when it does, if before `acquireTimeoutMs`. */
  budget?: Budget
  /** Aborting it ends the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal
}

/** A latency histogram, summarised (percentiles are upper bounds, within a factor of two). */
export interface HistogramSummary {
  count: number
  sumMs: number
  maxMs: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
}

/** A pool's numbers, named after OpenTelemetry's `db.client.connection.*` metrics. */
export interface PoolMetrics {
  /** `db.client.connection.count{state=idle}`. */
  idle: number
  /** `db.client.connection.count{state=used}`: checked out, or being validated for a caller. */
  used: number
  /** Connections being opened. */
  creating: number
  /** `db.client.connection.max`. */
  max: number
  /** `db.client.connection.idle.max`. */
  idleMax: number
  /** `db.client.connection.idle.min`. */
  idleMin: number
  /** `db.client.connection.pending_requests`: callers waiting. */
  pendingRequests: number
  /** `db.client.connection.timeouts`: waits that ended at their deadline. */
  timeouts: number
  /** Checkouts handed out. */
  acquired: number
  /** Checkouts returned. */
  released: number
  /** Acquires refused because the wait queue was full. */
  overloaded: number
  /** Acquires failed because the breaker was open. */
  unavailable: number
  /** Connections opened. */
  created: number
  /** Connection attempts that failed or timed out. */
  createFailures: number
  /** Connections closed. */
  destroyed: number
  /** Suspected leaks reported. */
  leaks: number
  /** `db.client.connection.create_time`. */
  createTime: HistogramSummary
  /** `db.client.connection.wait_time`. */
  waitTime: HistogramSummary
  /** `db.client.connection.use_time`. */
  useTime: HistogramSummary
  /** The state of the breaker guarding connection attempts. */
  breakerState: BreakerState
  /** How long the longest-held checkout has been out, or `null` when none is. */
  oldestCheckoutAgeMs: number | null
}

/** A checkout still held when a drain's deadline passed (the pool closed its connection then). */
export interface HeldConnection {
  /** The connection's slot id. */
  slot: number
  /** How long it had been out. */
  heldForMs: number
  /** Where it was acquired, when `leakThresholdMs` is set. */
  stack: string | undefined
}

/** Payload of the `leak` and `leakReturned` events. */
export interface LeakEvent {
  /** The connection's slot id. */
  slot: number
  /** How long the checkout has been (`leak`) or was (`leakReturned`) out. */
  heldForMs: number
  /** Where it was acquired. */
  stack: string | undefined
}

/** Payload of the `connectFailed` event. */
export interface ConnectFailedEvent {
  /** The failed attempt's error, as text. */
  error: string
  /** Failed attempts in a row. */
  attempts: number
  /** The error `create` rejected with (absent for an attempt the pool timed out). */
  cause: unknown
}

/** Payload of the `drained` event. */
export interface DrainedEvent {
  /** What was still held at the deadline. */
  stillHeld: HeldConnection[]
}

/** Events of {@link Pool}. */
export interface PoolEvents {
  /** A checkout has been held longer than `leakThresholdMs` (reported once per checkout). */
  leak: LeakEvent
  /** A checkout reported as a leak came back. */
  leakReturned: LeakEvent
  /** The breaker guarding connection attempts changed state. */
  breaker: StateChangeEvent
  /** A connection attempt failed. */
  connectFailed: ConnectFailedEvent
  /** A drain finished. */
  drained: DrainedEvent
}

/**
 * A connection pool with hard limits, a bounded FIFO wait queue, validation, lifetimes, leak
 * reports, and connection attempts guarded by a circuit breaker: when the database is down,
 * callers fail in milliseconds with {@link DatabaseUnavailableError} and only the breaker's
 * probes reach the network. Every decision is made by Seawall's Rust core, the same as in Rust
 * and Python.
 *
 * Each checkout hands out its own view of the connection (a Proxy that reads, writes and calls
 * the connection itself): {@link release} recognises it, refuses a second release, and the view
 * refuses to be used once released, so a stale handle never touches a connection someone else
 * now holds.
 *
 * The pool's timer is unref'd while nobody waits on it: a process whose pool only holds idle
 * connections exits by itself unless the connections' own sockets keep it alive. Call
 * {@link drain} to close them.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { Pool, pgPoolOptions } from 'seawall'
 *
 * const pool = new Pool({ ...pgPoolOptions({ host: '127.0.0.1', database: 'app' }, { Client: pg.Client }), maxSize: 8 })
 * const { rows } = await pool.use((client) => client.query('SELECT now()'))
 * await pool.drain()
 * ```
 */
export declare class Pool<C extends object = object> {
  /** @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid option. */
  constructor(options: PoolOptions<C>)
  /**
   * A connection, once one is free: waits at most `acquireTimeoutMs`, or until the budget ends.
   * Rejects with {@link PoolTimeoutError}, {@link PoolOverloadedError}, {@link ConnectFailedError},
   * {@link DatabaseUnavailableError}, {@link BudgetExhaustedError}, {@link PoolClosedError}, or
   * the signal's reason. Give it back with {@link release}.
   */
  acquire(options?: AcquireOptions): Promise<C>
  /**
   * Gives a checkout back; `broken: true` closes the connection instead of reusing it.
   * @throws PoolReleaseError for a connection released already, or not acquired from this pool.
   */
  release(connection: C, options?: { broken?: boolean }): void
  /**
   * Runs `fn` with a connection and always gives it back: as broken when `fn` throws an error
   * that `isBroken` says is fatal to it.
   */
  use<T>(fn: (connection: C) => T | PromiseLike<T>, options?: AcquireOptions): Promise<Awaited<T>>
  /**
   * Stops handing out connections: waiting callers fail with {@link PoolClosedError}, idle
   * connections close, checkouts close as they come back, and after `timeoutMs` (default 5000)
   * whatever is still out is closed. Resolves, once every close has finished, with what was
   * still held then (empty when everything came back). Calling it again returns the same promise.
   */
  drain(options?: { timeoutMs?: number }): Promise<HeldConnection[]>
  /**
   * Changes `maxSize`. Growing serves waiting callers at once; shrinking closes idle connections
   * now and checked-out ones as they come back.
   * @throws RangeError (`field: 'maxSize'`) outside [1, 10000].
   */
  resize(maxSize: number): void
  /** The pool's numbers now. */
  metrics(): PoolMetrics
  /** Whether a drain has finished. */
  readonly isClosed: boolean
  /** Calls `listener` on every `event`. A listener that throws is reported as an uncaught exception. */
  on<E extends keyof PoolEvents>(event: E, listener: (payload: PoolEvents[E]) => void): this
  /** Calls `listener` on the next `event` only. */
  once<E extends keyof PoolEvents>(event: E, listener: (payload: PoolEvents[E]) => void): this
  /** Removes the most recently added registration of `listener` for `event`. */
  off<E extends keyof PoolEvents>(event: E, listener: (payload: PoolEvents[E]) => void): this
}

/** One checkout of a connection, as {@link PoolEngine} hands it out. */
export interface Lease {
  /** The connection's slot id (the key of the adapter's connection objects). */
  readonly slot: number
  /** Which checkout of that slot this is. */
  readonly checkout: number
}

/** Why the engine asks for a connection to be closed. */
export type DestroyReason =
  | 'broken'
  | 'invalid'
  | 'idle_timeout'
  | 'expired'
  | 'resized'
  | 'closed'
  /** The create took longer than `createTimeoutMs`: abandon it, close what it produces. */
  | 'create_timed_out'
  /** A result arrived for a slot the engine had already given up on. */
  | 'stale'

/** Every error an acquire can end with. */
export type PoolError =
  | PoolTimeoutError
  | PoolOverloadedError
  | ConnectFailedError
  | DatabaseUnavailableError
  | BudgetExhaustedError
  | PoolClosedError

/** What a {@link PoolEngine} asks its adapter to do. */
export type PoolAction =
  /** Open a connection for `slot`; report with `handleCreated` / `handleCreateFailed`. The engine gives up at `deadlineMs`. */
  | { kind: 'create'; slot: number; deadlineMs: number }
  /** Check the connection of `slot`; report with `handleValidated`. */
  | { kind: 'validate'; slot: number }
  /** Close the connection of `slot` (or abandon its create) and forget it. */
  | { kind: 'destroy'; slot: number; reason: DestroyReason }
  /** Give the connection of `lease.slot` to the caller `waiter`. */
  | { kind: 'hand'; waiter: number; lease: Lease }
  /** Fail the caller `waiter`. */
  | { kind: 'fail'; waiter: number; error: PoolError }

/** What a {@link PoolEngine} tells operators. */
export type PoolEngineEvent =
  | { kind: 'leak'; slot: number; heldForMs: number }
  | { kind: 'leakReturned'; slot: number; heldForMs: number }
  | { kind: 'breaker'; from: BreakerState; to: BreakerState; reason: TransitionReason }
  | { kind: 'connectFailed'; error: string; attempts: number }
  /** The slots still checked out at the drain's deadline (closed then). */
  | { kind: 'drained'; stillHeld: number[] }

/** What {@link PoolEngine.acquire} decided. */
export type PoolAcquireResult = { kind: 'ready'; lease: Lease } | { kind: 'wait'; waiter: number }

/**
 * The pool's engine, sans-IO, for writing another adapter (or testing one): it decides, the
 * caller does the I/O and passes the time (`nowMs`, on any monotonic timeline) to every call.
 * Call a command or report what happened, then perform every {@link pollAction} until it returns
 * `null`, tell operators about every {@link pollEvent}, and keep one timer for
 * {@link pollTimeout}, calling {@link handleTimeout} when it fires. {@link Pool} is this engine
 * driven on Promises.
 */
export declare class PoolEngine {
  /** @throws RangeError or TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for an invalid option. */
  constructor(options?: PoolEngineOptions)
  /**
   * Asks for a connection.
   * @throws the {@link PoolError} the engine refused with at once (overloaded, database
   * unavailable, budget exhausted, closed).
   */
  acquire(options: { nowMs: number; budget?: Budget }): PoolAcquireResult
  /** Returns a checkout; false (and nothing done) for a lease no longer checked out. */
  release(lease: Lease, options: { broken?: boolean; nowMs: number }): boolean
  /** The caller gave up; false when it had already been served or failed. */
  cancel(waiter: number, nowMs: number): boolean
  /** The create of `slot` succeeded. */
  handleCreated(slot: number, nowMs: number): void
  /** The create of `slot` failed with `error` (a description). */
  handleCreateFailed(slot: number, error: string, nowMs: number): void
  /** The validation of `slot` finished. */
  handleValidated(slot: number, ok: boolean, nowMs: number): void
  /**
   * The connection of `slot` is dead (its client reported an error): closed at once if idle,
   * failed if being validated, closed when it comes back if checked out.
   */
  handleBroken(slot: number, nowMs: number): void
  /** The timer fired. Call it once at start too: it opens the `minIdle` connections. */
  handleTimeout(nowMs: number): void
  /** Starts draining; whatever is still out at `deadlineMs` is closed and reported in a `drained` event. */
  drain(nowMs: number, deadlineMs: number): void
  /** @throws RangeError (`field: 'maxSize'`) outside [1, 10000]. */
  resize(maxSize: number, nowMs: number): void
  /** The next action, or `null`. */
  pollAction(): PoolAction | null
  /** The next event, or `null`. */
  pollEvent(): PoolEngineEvent | null
  /** When the engine next wants {@link handleTimeout}, in ms on the caller's timeline; `null`: never. */
  pollTimeout(): number | null
  /** The numbers at `nowMs`. */
  metrics(nowMs: number): PoolMetrics
  /** Whether a drain has finished. */
  readonly isClosed: boolean
}

/** No connection became free within the acquire timeout. */
export declare class PoolTimeoutError extends SeawallError {
  constructor(
    message: string,
    details: { waitedMs: number; inUse: number; idle: number; waiting: number; oldestCheckoutAgeMs: number | null },
  )
  readonly code: 'SEAWALL_POOL_TIMEOUT'
  /** How long the caller waited. */
  readonly waitedMs: number
  /** Connections checked out then. */
  readonly inUse: number
  /** Connections idle then. */
  readonly idle: number
  /** Callers waiting then, this one included. */
  readonly waiting: number
  /** How long the longest-held checkout had been out (a leak, a slow query?), or `null`. */
  readonly oldestCheckoutAgeMs: number | null
}

/** The wait queue was full (`maxWaiters`): failing at once beats piling up. */
export declare class PoolOverloadedError extends SeawallError {
  constructor(message: string, details: { waiting: number; maxWaiters: number })
  readonly code: 'SEAWALL_POOL_OVERLOADED'
  /** Callers waiting. */
  readonly waiting: number
  /** The limit. */
  readonly maxWaiters: number
}

/** Connection attempts kept failing while the caller waited. */
export declare class ConnectFailedError extends SeawallError {
  constructor(message: string, details: { attempts: number; lastError: string }, options?: ErrorOptions)
  readonly code: 'SEAWALL_CONNECT_FAILED'
  /** Failed attempts in a row. */
  readonly attempts: number
  /** The last attempt's error, as text. */
  readonly lastError: string
  /** The error the last attempt's `create` rejected with, when known. */
  readonly cause: unknown
}

/**
 * The breaker guarding the pool's connection attempts is open: the database is considered down,
 * and no attempt is made before `retryAfterMs`.
 */
export declare class DatabaseUnavailableError extends SeawallError {
  constructor(message: string, details: { retryAfterMs: number | null; lastError: string | null }, options?: ErrorOptions)
  readonly code: 'SEAWALL_DATABASE_UNAVAILABLE'
  /** Milliseconds until connection attempts resume, or `null` when unknown (forced open). */
  readonly retryAfterMs: number | null
  /** The last connection error seen, as text. */
  readonly lastError: string | null
  /** The error the last failed `create` rejected with, when known. */
  readonly cause: unknown
}

/** The pool is draining or closed. */
export declare class PoolClosedError extends SeawallError {
  constructor(message?: string)
  readonly code: 'SEAWALL_POOL_CLOSED'
}

/**
 * A connection given back, or used, in a way that could touch someone else's checkout:
 * `'already_released'`, `'unknown'` (not acquired from this pool), or `'used_after_release'`.
 */
export declare class PoolReleaseError extends SeawallError {
  constructor(message: string, reason: 'unknown' | 'already_released' | 'used_after_release')
  readonly code: 'SEAWALL_POOL_RELEASE'
  readonly reason: 'unknown' | 'already_released' | 'used_after_release'
}

/** The part of `pg.Client` that {@link pgPoolOptions} uses. */
export interface PgClientLike {
  connect(): Promise<unknown>
  end(): Promise<unknown>
  query(config: { text: string; query_timeout?: number }): Promise<unknown>
  on(event: 'error', listener: (error: Error) => void): unknown
}

/** Options of {@link pgPoolOptions}. */
export interface PgPoolHelperOptions<C extends PgClientLike> {
  /** The client class, usually `pg.Client`. Default: `require('pg').Client`. */
  Client?: new (config: any) => C
  /** Longest a validation (`SELECT 1`) may take, in milliseconds. Default 5000. */
  validateTimeoutMs?: number
  /** Longest a polite close (`client.end()`) may take before the socket is destroyed, in milliseconds. Default 1000. */
  endTimeoutMs?: number
}

/**
 * Pool options for `pg.Client` connections: `create` (connects; listens for the client's
 * `'error'` for its whole life and marks it broken, so a dying socket never becomes an uncaught
 * exception; destroys the socket when the pool abandons the attempt), `destroy` (`end()`,
 * bounded), `validate` (`SELECT 1`, bounded) and `isBroken` (pg's connection-level errors).
 * Spread it into {@link PoolOptions}.
 * @param config what `new pg.Client(config)` takes
 */
export declare function pgPoolOptions<C extends PgClientLike = PgClientLike>(
  config: object | string,
  options?: PgPoolHelperOptions<C>,
): {
  create: (context: CreateContext) => Promise<C>
  destroy: (client: C) => Promise<void>
  validate: (client: C) => Promise<boolean>
  isBroken: (error: unknown) => boolean
}

// ---- Memory watchdog ----------------------------------------------------------------------

/**
 * Options of the watchdog's policy (the core's), shared by {@link MemoryWatchdog} and
 * {@link WatchdogPolicy}.
 *
 * Why these defaults: they are the protocol written after Node.js services leaked until the
 * kernel killed them — memory limits, a look every 5 minutes, an automatic restart at 80 % of
 * the limit, evidence on spikes. What teams used before, PM2's `max_memory_restart`, is an
 * absolute RSS number checked every 30 s: blind to the container's limit, with no evidence, and
 * a leak can pass the limit between two checks. Here the limit is the one the kernel enforces
 * (cgroup v2 / v1), checks come every `alertIntervalMs` above the warn level or during a spike,
 * and sooner still when the growth since the last sample would reach the act level first.
 *
 * Invalid options throw a `RangeError` or `TypeError` with `code: 'SEAWALL_INVALID_CONFIG'` and
 * `field` naming the option (`alertIntervalMs must be a duration between 10 ms and intervalMs,
 * got 600000 ms`).
 */
export interface WatchdogPolicyOptions {
  /** Time between samples while all is well, in ms: 10 ms to 24 h. Default 300000 (5 minutes, the incident protocol's). */
  intervalMs?: number
  /** Time between samples at or above the warn level or during a spike, in ms: 10 ms to `intervalMs`. Default 10000, or `intervalMs` when that is shorter. */
  alertIntervalMs?: number
  /** Percentage of the limit at which to warn, in (0, 100). Default 70. */
  warnPercent?: number
  /**
   * Percentage of the limit at which to act (evidence, then restart), in (`warnPercent`, 100].
   * Default 80: the mandated restart point, leaving a fifth of the limit for the evidence and a
   * graceful drain.
   */
  actPercent?: number
  /** Growth, in percent of the limit per minute, that counts as a spike, in (0, 100]. Default 10. */
  spikePercentPerMinute?: number
  /** How far back a leak trend is fitted, in ms: 10 ms to 24 h. Default 3600000 (1 hour). */
  trendWindowMs?: number
  /** Samples needed in the window before a trend is fitted, an integer in [3, 1000]. Default 6. */
  trendMinSamples?: number
  /** A steady growth projected to reach the limit within this long is a leak trend, in ms: 10 ms to 24 h. Default 86400000. */
  trendHorizonMs?: number
  /** After a condition fires (warn, spike, leak trend, evidence), it stays quiet this long, in ms: 0 to 24 h. Default 1800000. */
  cooldownMs?: number
  /**
   * A heap snapshot is asked for only when the free memory (limit − usage) is more than this
   * many times the heap in use; otherwise a sampling heap profile. In [1, 100]. Default 2 for a
   * `WatchdogPolicy` (the core's default, which the shared vectors assume) and 16 for a
   * `MemoryWatchdog`: on Node 20 writing a snapshot was measured to raise the peak RSS by 13 to
   * 14 times the heap in use.
   */
  snapshotHeadroomFactor?: number
  /**
   * `'restart'` (default): at the act level, evidence, the drain hooks, then
   * `process.exit(exitCode)` so the supervisor (Kubernetes, systemd, PM2) starts a fresh
   * process. `'eventOnly'`: evidence and the `'act'` event only (again after each cooldown).
   */
  actMode?: 'restart' | 'eventOnly'
  /** Longest the drain hooks may run before the restart exits anyway, in ms: 0 to 1 h. Default 10000. */
  drainTimeoutMs?: number
  /**
   * Exit code of a restart, an integer in [1, 255]. Default 75 (`EX_TEMPFAIL`, "temporary
   * failure, retry"): any supervisor restarts on a non-zero exit, and 75 tells whoever reads
   * the logs that the process left on purpose, not by a crash (1) or the OOM killer (137).
   */
  exitCode?: number
  /** Most evidence files kept in `snapshotDir`, in [1, 1000]; the oldest go first. Default 3. */
  maxDumpFiles?: number
  /** Most bytes of evidence kept in `snapshotDir`, at least 1 MiB. Default 8 GiB. */
  maxDumpBytes?: number
  /**
   * A memory limit of your own, in bytes; the tightest of it, the cgroup limits and physical
   * RAM is the effective limit. Default: none (the cgroup's, or RAM).
   */
  limitBytes?: number
}

/** The context a drain hook receives. */
export interface DrainContext {
  /** Aborted when `drainTimeoutMs` has passed; the process exits then anyway. */
  signal: AbortSignal
  /** The whole time the hooks have, in ms (`drainTimeoutMs`). */
  timeoutMs: number
}

/** A drain hook: stop taking work and close what must be closed (e.g. `pool.drain()`). */
export type DrainHook = (context: DrainContext) => unknown

/** Options of {@link MemoryWatchdog}. */
export interface MemoryWatchdogOptions extends WatchdogPolicyOptions {
  /**
   * Directory of the evidence files (created if missing). Default: the current directory, as
   * Node's own `--heapsnapshot-near-heap-limit`. Not a tmpfs inside the same memory limit: a
   * snapshot written there would count against the limit it is reporting on.
   */
  snapshotDir?: string
  /** Shorthand for a `'warn'` listener. */
  onWarn?: (event: WatchdogLevelEvent) => void
  /** Shorthand for an `'act'` listener. */
  onAct?: (event: WatchdogLevelEvent) => void
  /**
   * Hooks run (all at once) before a restart exits, e.g.
   * `({ timeoutMs }) => pool.drain({ timeoutMs })`. The exit comes when all have settled or at
   * `drainTimeoutMs`, whichever is first; a hook that throws or rejects is reported as an
   * `'error'` and does not stop the others.
   */
  drain?: DrainHook | DrainHook[]
  /**
   * What a restart calls last, instead of `process.exit(code)` (a cluster worker's own exit,
   * tests). Default `process.exit`.
   */
  exit?: (code: number) => void
  /**
   * Read `/proc` and `/sys` under this directory instead of `/`. For tests (fake cgroup
   * trees); leave it unset in production.
   */
  probeRoot?: string
}

/** Where memory stands: below the warn level, at or above it, at or above the act level. */
export type MemoryLevel = 'normal' | 'warn' | 'act'

/**
 * Which measure a percentage is of: usage against the effective limit, or V8's heap against
 * its `heap_size_limit`. The closer one to its limit decides.
 */
export type MemoryBasis = 'limit' | 'heap'

/** A fitted growth trend. */
export interface MemoryTrend {
  /** Growth of the measure (usage, or the heap on the heap basis), bytes per second. */
  bytesPerSecond: number
  /** How well a straight line explains the samples, 0 to 1 (a leak trend needs 0.8). */
  r2: number
  /** When the growth reaches the limit at this rate, in ms; null when not growing. */
  timeToLimitMs: number | null
  /** Samples fitted. */
  samples: number
}

/** What the policy asks the adapter to do, in order. */
export type WatchdogAction =
  | { kind: 'warn'; percent: number; basis: MemoryBasis }
  | { kind: 'recovered'; percent: number; basis: MemoryBasis }
  | { kind: 'spike'; percentPerMinute: number; basis: MemoryBasis }
  | { kind: 'leak_trend'; trend: MemoryTrend }
  | { kind: 'act'; percent: number; basis: MemoryBasis }
  | {
      kind: 'evidence'
      /** A full heap snapshot, or (without the headroom for one) a sampling heap profile. */
      evidence: EvidenceKind
      /** What made it due. */
      trigger: EvidenceTrigger
      /** The limit minus usage. */
      freeBytes: number
      /** Free memory a snapshot needs: `snapshotHeadroomFactor` × the heap in use. */
      neededBytes: number
    }
  | { kind: 'restart'; drainTimeoutMs: number; exitCode: number }

/** Which evidence to capture. */
export type EvidenceKind = 'heap_snapshot' | 'profile'

/** What made the watchdog ask for evidence. */
export type EvidenceTrigger = 'spike' | 'leak_trend' | 'act'

/** The outcome of one sample. */
export interface MemoryAssessment {
  level: MemoryLevel
  /** Percentage of the limit on `basis`, the closer of the two measures. */
  percent: number
  basis: MemoryBasis
  /** Growth since the previous sample, percent of the limit per minute; null at first. */
  growthPercentPerMinute: number | null
  /** The fitted trend, once there are enough samples over half the trend window. */
  trend: MemoryTrend | null
  /** When the next sample is due, in ms. */
  nextSampleMs: number
  actions: WatchdogAction[]
}

/** A sample given to {@link WatchdogPolicy.observe}; byte counts are whole numbers. */
export interface MemorySampleInput {
  /** When it was taken, in ms on a monotonic clock. */
  nowMs: number
  /** Memory in use as the limit counts it. */
  usageBytes: number
  /** The effective limit. */
  limitBytes: number
  /** V8's heap in use, if known. */
  heapUsedBytes?: number | null
  /** V8's heap limit, if known. */
  heapLimitBytes?: number | null
}

/** Counters since the watchdog started. */
export interface WatchdogCounts {
  samples: number
  warnings: number
  acts: number
  spikes: number
  leakTrends: number
  heapSnapshots: number
  profiles: number
  restarts: number
}

/** The validated policy configuration, defaults filled in. */
export interface WatchdogConfig {
  intervalMs: number
  alertIntervalMs: number
  warnPercent: number
  actPercent: number
  spikePercentPerMinute: number
  trendWindowMs: number
  trendMinSamples: number
  trendHorizonMs: number
  cooldownMs: number
  snapshotHeadroomFactor: number
  actMode: 'restart' | 'eventOnly'
  drainTimeoutMs: number
  exitCode: number
  maxDumpFiles: number
  maxDumpBytes: number
  limitBytes: number | null
}

/** An evidence file in the dump directory, for {@link WatchdogPolicy.planDumpRotation}. */
export interface DumpFileInfo {
  /** File name, not a path. */
  name: string
  bytes: number
  /** When it was written (ms since the epoch, or anything that orders the files). */
  created: number
}

/** Where the limit came from. */
export type LimitSource = 'cgroup_v2_max' | 'cgroup_v2_high' | 'cgroup_v1' | 'configured' | 'physical_ram'

/** Where the usage came from. */
export type UsageSource = 'cgroup_v2_working_set' | 'cgroup_v1_working_set' | 'process_rss'

/** One reading of the probe. */
export interface MemoryReading {
  /** The effective limit: the tightest of the cgroup limits (the process's cgroup and its ancestors), `limitBytes` and physical RAM. */
  limitBytes: number
  limitSource: LimitSource
  /** Memory charged against the limit: the cgroup working set (usage − inactive file cache, as the kubelet counts it), or the RSS without a cgroup. */
  usageBytes: number
  usageSource: UsageSource
  /** The process's resident set size. */
  rssBytes: number
  /** Physical RAM (`MemTotal`). */
  physicalRamBytes: number
  /** The cgroup hierarchy read, or `'none'`. */
  cgroup: 'v1' | 'v2' | 'none'
  /** Processes the OOM killer has killed in this cgroup; null when unknown. */
  oomKills: number | null
}

/**
 * Reads this process's memory as the watchdog does (Linux: `/proc` and `/sys/fs/cgroup`).
 * @param limitBytes a limit of your own, competing with the cgroup's and RAM
 * @param root read the files under this directory instead of `/` (tests)
 * @throws Error with `code: 'SEAWALL_MEMORY_PROBE_FAILED'` when `/proc` cannot be read (not Linux)
 * @throws RangeError / TypeError (`code: 'SEAWALL_INVALID_ARGUMENT'`) for a bad argument
 */
export declare function readMemory(limitBytes?: number | null, root?: string): MemoryReading

/**
 * The watchdog's sans-IO policy, from Seawall's Rust core: feed it samples, it says what to do
 * and when to look again. {@link MemoryWatchdog} drives one; use it directly to drive the
 * policy from your own measurements (or replay recorded ones).
 */
export declare class WatchdogPolicy {
  /** @throws RangeError / TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for a bad option. */
  constructor(options?: WatchdogPolicyOptions)
  /**
   * Judges one sample.
   * @throws RangeError (`code: 'SEAWALL_INVALID_ARGUMENT'`) for a byte count that is not a whole non-negative number, (`'SEAWALL_INVALID_CLOCK'`) for a bad `nowMs`
   */
  observe(sample: MemorySampleInput): MemoryAssessment
  /** Counters since the start. */
  counts(): WatchdogCounts
  /** The level of the last sample (`'normal'` before any). */
  readonly level: MemoryLevel
  /** The validated configuration, defaults filled in. */
  readonly config: WatchdogConfig
  /**
   * Which evidence files to delete before writing one of about `incomingBytes`: only names
   * starting with `seawall-memory-` count, the oldest go first, until one more file fits
   * `maxDumpFiles` and `maxDumpBytes`. `fits` is false (and nothing is deleted) when the new
   * file alone is larger than `maxDumpBytes`.
   */
  planDumpRotation(existing: DumpFileInfo[], incomingBytes: number): { delete: string[]; fits: boolean }
}

/** What a `'sample'` event carries, and every other event as `sample`. */
export interface WatchdogSample {
  /** `Date.now()` when it was taken. */
  timestamp: number
  /** The probe's reading (cgroup-aware limit and usage). */
  reading: MemoryReading
  /** `v8.getHeapStatistics().used_heap_size`. */
  heapUsedBytes: number
  /** `v8.getHeapStatistics().total_heap_size`. */
  heapTotalBytes: number
  /** `v8.getHeapStatistics().heap_size_limit`. */
  heapLimitBytes: number
  /** `process.memoryUsage().external`. */
  externalBytes: number
  /** `process.memoryUsage().arrayBuffers`. */
  arrayBuffersBytes: number
  /** The policy's assessment of it. */
  assessment: MemoryAssessment
}

/** A `'warn'`, `'recovered'` or `'act'` event. */
export interface WatchdogLevelEvent {
  /** Percentage of the limit on `basis`. */
  percent: number
  basis: MemoryBasis
  sample: WatchdogSample
}

/** An evidence file written. */
export interface WatchdogEvidenceEvent {
  /** What was written: it can be a profile where the policy asked for a snapshot, when a snapshot would not fit `maxDumpBytes`. */
  kind: EvidenceKind
  trigger: EvidenceTrigger
  /** The file: `seawall-memory-<time>-<pid>-<n>-<trigger>.heapsnapshot` or `.heapprofile`. */
  path: string
  bytes: number
  /** How long writing it took (a snapshot blocks the event loop that long). */
  tookMs: number
  freeBytes: number
  neededBytes: number
  /** Why this kind of evidence, in words. */
  reason: string
  /** Older evidence files deleted first to stay within the caps. */
  deleted: string[]
  sample: WatchdogSample
}

/** The events of a {@link MemoryWatchdog}. */
export interface MemoryWatchdogEvents {
  /** Every sample. */
  sample: WatchdogSample
  /** Memory reached the warn level (again after each cooldown while it stays there). The sampling heap profiler starts here. */
  warn: WatchdogLevelEvent
  /** Memory is back below the warn level. */
  recovered: WatchdogLevelEvent
  /** Memory grew faster than `spikePercentPerMinute`. */
  spike: { percentPerMinute: number; basis: MemoryBasis; sample: WatchdogSample }
  /** A steady growth is projected to reach the limit within `trendHorizonMs`. */
  leakTrend: { trend: MemoryTrend; sample: WatchdogSample }
  /** Memory reached the act level. */
  act: WatchdogLevelEvent
  /** An evidence file was written. */
  evidence: WatchdogEvidenceEvent
  /** A restart begins: the drain hooks run next, then the exit. */
  restart: { exitCode: number; drainTimeoutMs: number; sample: WatchdogSample | null }
  /**
   * The watchdog's own failures: the probe (`SEAWALL_MEMORY_PROBE_FAILED`), evidence that could
   * not be written (`SEAWALL_EVIDENCE_FAILED`), a drain hook that threw. Without an `'error'`
   * listener they become process warnings: a watchdog never crashes its process.
   */
  error: Error
}

/** The watchdog's numbers now (null before the first sample). */
export interface MemoryWatchdogMetrics {
  running: boolean
  restarting: boolean
  level: MemoryLevel
  percent: number | null
  basis: MemoryBasis | null
  usageBytes: number | null
  usageSource: UsageSource | null
  limitBytes: number | null
  limitSource: LimitSource | null
  cgroup: 'v1' | 'v2' | 'none' | null
  rssBytes: number | null
  oomKills: number | null
  heapUsedBytes: number | null
  heapLimitBytes: number | null
  growthPercentPerMinute: number | null
  /** The trend's slope, bytes per second. */
  trendBytesPerSecond: number | null
  /** The trend's projected time to the limit, in ms. */
  timeToLimitMs: number | null
  nextSampleMs: number | null
  counts: WatchdogCounts
  evidenceWritten: number
  evidenceFailed: number
  lastEvidencePath: string | null
}

/**
 * The memory watchdog: sees a leak coming, captures evidence while it is safe, restarts
 * gracefully. Each sample reads the probe (the limit the kernel enforces — cgroup v2
 * `memory.max` / `memory.high`, cgroup v1, `limitBytes`, RAM — and the working set it counts),
 * `process.memoryUsage()` and `v8.getHeapStatistics()` (heap used against `heap_size_limit`),
 * asks Seawall's Rust core what to do, does it, and sleeps for the core's `nextSampleMs` on an
 * unref'd timer: a watchdog never keeps the process alive.
 *
 * Evidence: a heap snapshot (`v8.writeHeapSnapshot`, `.heapsnapshot`, opens in Chrome
 * DevTools) only when the free memory exceeds `snapshotHeadroomFactor` × the heap in use,
 * because writing one **blocks the event loop** for as long as V8 walks the heap (seconds for
 * a large heap) and needs about the heap's size again in memory, which near the limit is what
 * gets a process OOM-killed. Otherwise a sampling heap profile through `node:inspector`
 * (`HeapProfiler.startSampling` from the warning on, `.heapprofile`, also for DevTools): cheap,
 * and it names the allocation sites of what grew. Files are named `seawall-memory-…`, and old
 * ones are rotated out within `maxDumpFiles` / `maxDumpBytes`.
 *
 * Restart (`actMode: 'restart'`, the default): evidence, the `'restart'` event, the `drain`
 * hooks within `drainTimeoutMs`, then `process.exit(exitCode)` — 75 by default — for the
 * supervisor to start a fresh process.
 *
 * @example
 * ```ts
 * const watchdog = new MemoryWatchdog({
 *   snapshotDir: '/var/dumps',
 *   drain: ({ timeoutMs }) => pool.drain({ timeoutMs }),
 *   onWarn: (e) => log.warn(`memory at ${e.percent.toFixed(0)} % of the limit`),
 * })
 * watchdog.on('evidence', (e) => log.error(`memory evidence in ${e.path}: ${e.reason}`))
 * watchdog.start()
 * ```
 */
export declare class MemoryWatchdog {
  /** @throws RangeError / TypeError (`code: 'SEAWALL_INVALID_CONFIG'`, `field`) for a bad option. */
  constructor(options?: MemoryWatchdogOptions)
  /** Takes a first sample now and keeps sampling until `stop()` or a restart. Returns `this`. */
  start(): this
  /** Stops sampling (a restart under way still finishes). Returns `this`. */
  stop(): this
  /**
   * Takes a sample now and carries out its actions (a heap snapshot blocks until written; a
   * restart's drain and exit follow asynchronously). Returns the assessment, or null when the
   * probe failed (reported as an `'error'`).
   */
  sampleNow(): MemoryAssessment | null
  /** The last sample's figures, counters and evidence written. */
  metrics(): MemoryWatchdogMetrics
  /** Whether samples are scheduled. */
  readonly running: boolean
  /** The validated configuration, defaults filled in, and the resolved `snapshotDir`. */
  readonly config: WatchdogConfig & { snapshotDir: string }
  /** Calls `listener` on every `event`. A listener that throws is reported as an uncaught exception and does not stop the watchdog's actions. */
  on<E extends keyof MemoryWatchdogEvents>(event: E, listener: (payload: MemoryWatchdogEvents[E]) => void): this
  /** Calls `listener` on the next `event` only. */
  once<E extends keyof MemoryWatchdogEvents>(event: E, listener: (payload: MemoryWatchdogEvents[E]) => void): this
  /** Removes the most recently added registration of `listener` for `event`. */
  off<E extends keyof MemoryWatchdogEvents>(event: E, listener: (payload: MemoryWatchdogEvents[E]) => void): this
}
