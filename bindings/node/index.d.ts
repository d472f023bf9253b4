/**
 * Seawall for Node.js: circuit breakers whose decisions are made by the same Rust core as the
 * Rust and Python libraries, so every service in a polyglot fleet decides alike.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, BreakerOpenError } from 'seawall'
 *
 * const breaker = new CircuitBreaker({ failureRateThreshold: 50, openDurationMs: 30_000 })
 * try {
 *   const user = await breaker.run(fetchUser, id)
 * } catch (err) {
 *   if (err instanceof BreakerOpenError) console.log(`retry in ${err.retryAfterMs} ms`)
 * }
 * ```
 *
 * @packageDocumentation
 */

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

/** Base class of the errors Seawall throws for its own reasons. */
export declare class SeawallError extends Error {
  constructor(message: string, code: string, options?: ErrorOptions)
  /** A stable identifier: `SEAWALL_BREAKER_OPEN`, `SEAWALL_INVALID_SNAPSHOT`, … */
  readonly code: string
}

/** The breaker rejected a call; the call was not made. */
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
 * A clock that moves only when told to, for tests: pass it as the `clock` option and move a
 * breaker through its states without sleeping.
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
