'use strict'

// RetryPolicy, RetryLoop and RetryBudget: the core decides how many attempts, how long to wait
// and when to stop (bindings/node/src/retry.rs); `retry()` and CallPolicy (call.js) do the
// waiting.
//
// A loop's state lives in a native slot. Loops that retry() and CallPolicy run are freed when
// they finish; a RetryLoop handed to a user (policy.begin()) is freed when it is
// garbage-collected, since nothing says when a user's loop is over.

const native = require('../native.js')
const { Budget, internals } = require('./budget.js')
const { checkClockOption, readClock } = require('./clock.js')
const { argumentTypeError, checkFunction, checkOptionsObject, optionTypeError } = require('./errors.js')

const { NativeRetryBudget } = native
const { startAttemptOn, onFailureOn, exhaustedError } = internals

const INTERNAL = Symbol('seawall.internal')
const BACKOFF_KINDS = ['constant', 'exponential', 'decorrelated_jitter']
const GIVE_UP_REASONS = ['attempts_exhausted', 'budget_exhausted', 'retry_after_beyond_budget', 'retry_budget_exhausted']
/** What `onFailure` returns natively for `retry_budget_exhausted`: `-(1 + 3)`. */
const RETRY_BUDGET_EXHAUSTED = -4

/** @type {(rb: RetryBudget) => number} */
let retryBudgetSlot
/** @type {(rb: RetryBudget) => { now(): number } | undefined} */
let retryBudgetClock

/**
 * A retry budget shared by every caller of a dependency: retries may add at most `percent` of
 * the requests, plus `minPerSecond` retries a second, over the last `ttlMs`. This is what stops
 * a retry storm; `RetryBudget.getGlobal()` is used wherever none is given.
 */
class RetryBudget {
  /** @type {InstanceType<typeof NativeRetryBudget>} */
  #native
  /** @type {{ now(): number } | undefined} */
  #clock
  /** @type {RetryBudget | undefined} */
  static #global

  static {
    retryBudgetSlot = (rb) => rb.#native.slot
    retryBudgetClock = (rb) => rb.#clock
  }

  /** @param {import('../index').RetryBudgetOptions} [options] */
  constructor(options) {
    if (options === INTERNAL) return
    checkOptionsObject(options)
    const clock = options?.clock
    checkClockOption(clock)
    // Without a clock the core's monotonic clock is read, the one the global budget uses.
    this.#native = new NativeRetryBudget(options, clock !== undefined)
    this.#clock = clock
  }

  /**
   * The process-wide retry budget (20 % of requests plus 10 retries a second over 10 s), the
   * core's own, shared with any Rust code in this process.
   */
  static getGlobal() {
    if (RetryBudget.#global === undefined) {
      const rb = new RetryBudget(INTERNAL)
      rb.#native = NativeRetryBudget.global()
      RetryBudget.#global = rb
    }
    return RetryBudget.#global
  }

  /** Retries allowed as a percentage of requests. */
  get percent() {
    return this.#native.percent
  }

  /** Retries always allowed per second of `ttlMs`. */
  get minPerSecond() {
    return this.#native.minPerSecond
  }

  /** How long a request or a retry counts, in milliseconds. */
  get ttlMs() {
    return this.#native.ttlMs
  }

  /** Requests and retries in the window now, and the retries it allows in all. */
  metrics() {
    return this.#native.metrics(this.#clock === undefined ? undefined : readClock(this.#clock))
  }
}

function resolveRetryBudget(retryBudget, field) {
  if (retryBudget === undefined) return RetryBudget.getGlobal()
  if (retryBudget === null || retryBudget instanceof RetryBudget) return retryBudget
  throw optionTypeError(field, 'a RetryBudget or null', retryBudget)
}

const loops = new FinalizationRegistry((slot) => native.retryEnd(slot))

/** @type {(policy: RetryPolicy, budget: Budget, retryBudget: RetryBudget | null) => RetryLoop} */
let beginLoop
/** @type {(loop: RetryLoop, capMs: number | undefined) => number} */
let loopStart
/** @type {(loop: RetryLoop, retryAfterMs: number | undefined) => number} */
let loopFail
/** @type {(loop: RetryLoop) => void} */
let loopEnd
/** @type {(loop: RetryLoop) => number} */
let slotOf
/** @type {(policy: RetryPolicy, retryBudgetSlot: number | undefined) => number} */
let startNativeLoop

/**
 * One call's retry loop, from `policy.begin(budget)`, for code that runs its own attempts:
 * `startAttempt()` before each attempt, `onFailure()` after each failed one.
 */
class RetryLoop {
  #slot = -1
  /** @type {Budget} */
  #budget
  /** @type {{ now(): number } | undefined} */
  #retryBudgetClock

  static {
    beginLoop = (policy, budget, retryBudget) => {
      const loop = new RetryLoop(INTERNAL)
      loop.#budget = budget
      loop.#retryBudgetClock = retryBudget === null ? undefined : retryBudgetClock(retryBudget)
      loop.#slot = startNativeLoop(policy, retryBudget === null ? undefined : retryBudgetSlot(retryBudget))
      return loop
    }
    loopStart = (loop, capMs) => startAttemptOn(loop.#budget, loop.#slot, capMs, loop.#retryBudgetNow())
    loopFail = (loop, retryAfterMs) => onFailureOn(loop.#budget, loop.#slot, retryAfterMs, loop.#retryBudgetNow())
    slotOf = (loop) => loop.#slot
    loopEnd = (loop) => {
      native.retryEnd(loop.#slot)
      loop.#slot = -1
    }
  }

  /** @internal Loops come from `RetryPolicy#begin()`. */
  constructor(token) {
    if (token !== INTERNAL) throw new TypeError('a RetryLoop comes from RetryPolicy#begin()')
  }

  /** The budget the loop runs under. */
  get budget() {
    return this.#budget
  }

  /** Attempts started so far. */
  get attempts() {
    return native.retryAttempts(this.#slot)
  }

  /**
   * Starts an attempt if the budget fits one; returns its timeout in milliseconds,
   * `min(remaining, capMs × scale, policy maximum)`. The first attempt counts as a request in
   * the retry budget.
   * @throws BudgetExhaustedError when the budget cannot fit an attempt.
   */
  startAttempt(capMs) {
    if (capMs !== undefined && typeof capMs !== 'number') throw argumentTypeError('capMs', 'a number of milliseconds', capMs)
    const t = loopStart(this, capMs)
    if (t < 0) throw exhaustedError(this.#budget, -t - 1)
    return t
  }

  /**
   * After a retryable failure: `{ retry: true, delayMs }` (wait, then start the next attempt)
   * or `{ retry: false, reason }`. `retryAfterMs` is a server's hint (an open breaker's, a
   * parsed `Retry-After`): it replaces the backoff when it fits the budget and ends the retries
   * when it does not.
   */
  onFailure(retryAfterMs) {
    if (retryAfterMs !== undefined && retryAfterMs !== null && typeof retryAfterMs !== 'number') {
      throw argumentTypeError('retryAfterMs', 'a number of milliseconds', retryAfterMs)
    }
    const d = loopFail(this, retryAfterMs ?? undefined)
    return d >= 0 ? { retry: true, delayMs: d } : { retry: false, reason: GIVE_UP_REASONS[-d - 1] }
  }

  #retryBudgetNow() {
    return this.#retryBudgetClock === undefined ? undefined : readClock(this.#retryBudgetClock)
  }
}

/**
 * How many attempts a call makes and how long it waits between them; validated by the core.
 * Give it to `retry()` or a CallPolicy, or drive a RetryLoop from `begin()` yourself.
 */
class RetryPolicy {
  /** @type {{ maxAttempts: number, kind: number, firstNs: number, capNs: number, multiplier: number, seed: number | null }} */
  #config
  /** @type {((error: unknown) => boolean) | undefined} */
  #isRetryable

  static {
    startNativeLoop = (policy, retryBudgetSlot) => {
      const c = policy.#config
      return native.retryBegin(c.maxAttempts, c.kind, c.firstNs, c.capNs, c.multiplier, c.seed, retryBudgetSlot)
    }
  }

  /** @param {import('../index').RetryPolicyOptions} [options] */
  constructor(options) {
    checkOptionsObject(options)
    const isRetryable = options?.isRetryable
    checkFunction('isRetryable', isRetryable)
    this.#config = native.retryConfigNew(options)
    this.#isRetryable = isRetryable
  }

  /** Attempts in all, the first included. */
  get maxAttempts() {
    return this.#config.maxAttempts
  }

  /** The backoff, with its defaults filled in. */
  get backoff() {
    const c = this.#config
    const kind = BACKOFF_KINDS[c.kind]
    if (kind === 'constant') return { kind, delayMs: c.firstNs / 1e6 }
    if (kind === 'exponential') return { kind, baseMs: c.firstNs / 1e6, capMs: c.capNs / 1e6, multiplier: c.multiplier }
    return { kind, baseMs: c.firstNs / 1e6, capMs: c.capNs / 1e6 }
  }

  /** The jitter seed, or null when random. */
  get seed() {
    return this.#config.seed ?? null
  }

  /** The `isRetryable` option, if given. */
  get isRetryable() {
    return this.#isRetryable
  }

  /**
   * Begins one call's retry loop under `budget`, drawing retries from `retryBudget` (default:
   * `RetryBudget.getGlobal()`; `null`: none).
   */
  begin(budget, options) {
    if (!(budget instanceof Budget)) throw argumentTypeError('budget', 'a Budget', budget)
    checkOptionsObject(options)
    const retryBudget = resolveRetryBudget(options?.retryBudget, 'retryBudget')
    const loop = beginLoop(this, budget, retryBudget)
    // Nothing says when a user's loop is over: its slot is freed with the loop.
    loops.register(loop, slotOf(loop))
    return loop
  }

}

module.exports = {
  RetryPolicy,
  RetryLoop,
  RetryBudget,
  resolveRetryBudget,
  RETRY_BUDGET_EXHAUSTED,
  loopInternals: { beginLoop, loopStart, loopFail, loopEnd },
}
