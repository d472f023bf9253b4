'use strict'

// retry() and CallPolicy: a call run under budget → retry → breaker → per-attempt timeout, in
// that order (as seawall-core's CallPolicy in Rust). The order is the point:
// - the budget bounds everything, the waits between attempts included;
// - the retry loop sees the breaker's rejections, so it can honour their retry-after;
// - the breaker sees every attempt, not only the last, and a timed-out attempt is a failure;
// - each attempt's timeout is derived from what is left of the budget when it starts.
//
// The decisions (may an attempt start, how long it may take, how long to wait, when to give up)
// are the core's, through RetryLoop; this file only awaits, times and classifies.

const { Budget, TimedCall, defaultBudget, internals } = require('./budget.js')
const { CircuitBreaker, settleCallOutcome } = require('./breaker.js')
const {
  BudgetExhaustedError,
  RetryBudgetExhaustedError,
  argumentTypeError,
  checkOptionsObject,
  optionTypeError,
  withoutStack,
} = require('./errors.js')
const { RETRY_BUDGET_EXHAUSTED, RetryPolicy, loopInternals, resolveRetryBudget } = require('./retry.js')
const native = require('../native.js')

const { performance } = globalThis
const { exhaustedError } = internals
const { beginLoop, loopStart, loopFail, loopEnd } = loopInternals

/**
 * Seawall's own refusals are final: an exhausted budget will not refill by retrying, and a
 * refused retry must not be retried. Everything else is worth another attempt.
 */
function defaultIsRetryable(error) {
  return !(error instanceof BudgetExhaustedError || error instanceof RetryBudgetExhaustedError)
}

/**
 * The server's hint carried by an error: a BreakerOpenError's `retryAfterMs`, or a
 * `retryAfterMs` number any error may carry (parsed from `Retry-After`, say). Anything that is
 * not a non-negative number is no hint.
 */
function hintOf(error) {
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) return undefined
  let ms
  try {
    ms = error.retryAfterMs
  } catch {
    return undefined
  }
  return typeof ms === 'number' && ms >= 0 ? ms : undefined
}

/** What an attempt function receives. */
class AttemptContext {
  #call

  constructor(call, attempt) {
    this.#call = call
    /** The attempt's number, from 1. */
    this.attempt = attempt
  }

  /**
   * Aborts when the attempt's timeout passes (with a DeadlineExceededError) or the caller's
   * signal aborts (with its reason). Created on first use.
   */
  get signal() {
    return this.#call.signal
  }
}

/** The wait between two attempts. Ref'd: a program awaiting a retry is doing work. */
class Wait {
  #timer
  #reject

  start(ms) {
    return new Promise((resolve, reject) => {
      this.#reject = reject
      // Rounded up, plus one: libuv compares timers against a loop clock truncated to the
      // millisecond, so a timer can fire up to 1 ms early by performance.now(), and an attempt
      // started that early would find the breaker still open (seen in a full test run).
      this.#timer = setTimeout(resolve, Math.ceil(ms) + 1)
    })
  }

  cancel(reason) {
    clearTimeout(this.#timer)
    this.#reject(reason)
  }
}

let defaultPolicy

function resolvePolicy(policy, field) {
  if (policy instanceof RetryPolicy) return policy
  if (policy === undefined) return (defaultPolicy ??= new RetryPolicy())
  if (policy === null || typeof policy !== 'object' || Array.isArray(policy)) {
    throw optionTypeError(field, 'a RetryPolicy or its options', policy)
  }
  return new RetryPolicy(policy)
}

function checkTimeoutOption(field, ms) {
  if (ms === undefined) return
  if (typeof ms !== 'number') throw optionTypeError(field, 'a number of milliseconds', ms)
  native.checkTimeoutOption(field, ms)
}

function checkBudget(budget) {
  if (budget !== undefined && !(budget instanceof Budget)) throw optionTypeError('budget', 'a Budget', budget)
}

function checkSignal(signal) {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw optionTypeError('signal', 'an AbortSignal', signal)
}

/**
 * The loop shared by retry() and CallPolicy#run(). `s`: { policy, budget, retryBudget,
 * attemptTimeoutMs, isRetryable, signal, breaker }.
 */
async function runAttempts(fn, s) {
  const { signal, breaker, budget } = s
  if (signal !== undefined && signal.aborted) throw signal.reason
  const loop = beginLoop(s.policy, budget, s.retryBudget)
  /** @type {TimedCall | Wait | undefined} */
  let current
  const onAbort = () => current?.cancel(signal.reason)
  signal?.addEventListener('abort', onAbort)
  try {
    let failed = false
    let last
    for (;;) {
      // The abort listener only reaches an attempt or a wait in progress; an abort from
      // anywhere else (an isRetryable callback) is seen here.
      if (signal !== undefined && signal.aborted) throw signal.reason
      const timeout = loopStart(loop, s.attemptTimeoutMs)
      if (timeout < 0) {
        // After a failure the last error says more than "no time left" would.
        if (failed) throw last
        throw withoutStack(() => exhaustedError(budget, -timeout - 1))
      }
      let permit
      let call
      let ok = false
      let value
      let error
      try {
        if (breaker !== undefined) permit = breaker.tryAcquire()
        call = new TimedCall(timeout)
        current = call
        const due = performance.now() + timeout
        value = await call.start(fn, new AttemptContext(call, failed ? loop.attempts : 1), due)
        ok = true
      } catch (e) {
        error = e
      }
      current = undefined
      if (permit !== undefined) {
        // A classifier that throws ends the call with its exception (see CircuitBreaker#run).
        if (ok) settleCallOutcome(breaker, permit, 'value', value)
        else settleCallOutcome(breaker, permit, call.expired ? 'timeout' : call.cancelled ? 'cancelled' : 'error', error)
      }
      if (ok) return value
      // The caller gave up: whatever the attempt ended with, it is not retried.
      if (signal !== undefined && signal.aborted) throw error
      // The policy's own failures (a breaker rejection, an attempt that ran out of time) always
      // go to the retry loop, as in Rust and Python; isRetryable judges the function's errors.
      const fromPolicy = (breaker !== undefined && permit === undefined) || call?.expired === true
      if (!fromPolicy && !s.isRetryable(error)) throw error
      const delay = loopFail(loop, hintOf(error))
      if (delay < 0) {
        if (delay === RETRY_BUDGET_EXHAUSTED) throw withoutStack(() => new RetryBudgetExhaustedError(error))
        throw error
      }
      failed = true
      last = error
      if (delay > 0) {
        const wait = new Wait()
        current = wait
        await wait.start(delay)
        current = undefined
      }
    }
  } finally {
    loopEnd(loop)
    signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * Calls `fn` until it succeeds or the policy gives up (see index.d.ts for the full contract).
 * @template T
 * @param {(attempt: AttemptContext) => T | PromiseLike<T>} fn
 * @param {import('../index').RetryOptions} [options]
 * @returns {Promise<Awaited<T>>}
 */
async function retry(fn, options) {
  if (typeof fn !== 'function') throw argumentTypeError('fn', 'a function', fn)
  checkOptionsObject(options)
  const o = options ?? {}
  const policy = resolvePolicy(o.policy, 'policy')
  checkBudget(o.budget)
  const retryBudget = resolveRetryBudget(o.retryBudget, 'retryBudget')
  checkTimeoutOption('attemptTimeoutMs', o.attemptTimeoutMs)
  if (o.isRetryable !== undefined && typeof o.isRetryable !== 'function') {
    throw optionTypeError('isRetryable', 'a function', o.isRetryable)
  }
  checkSignal(o.signal)
  return runAttempts(fn, {
    policy,
    budget: o.budget ?? defaultBudget(),
    retryBudget,
    attemptTimeoutMs: o.attemptTimeoutMs,
    isRetryable: o.isRetryable ?? policy.isRetryable ?? defaultIsRetryable,
    signal: o.signal,
    breaker: undefined,
  })
}

/**
 * Runs calls under a budget, with retries, an optional circuit breaker and a per-attempt
 * timeout, in the right order.
 */
class CallPolicy {
  /** @type {CircuitBreaker | undefined} */
  #breaker
  /** @type {RetryPolicy} */
  #retry
  /** @type {import('./retry.js').RetryBudget | null} */
  #retryBudget
  /** @type {number | undefined} */
  #attemptTimeoutMs
  /** @type {number | undefined} */
  #timeoutMs

  /** @param {import('../index').CallPolicyOptions} [options] */
  constructor(options) {
    checkOptionsObject(options)
    const o = options ?? {}
    if (o.breaker !== undefined && !(o.breaker instanceof CircuitBreaker)) {
      throw optionTypeError('breaker', 'a CircuitBreaker', o.breaker)
    }
    this.#retry = resolvePolicy(o.retry, 'retry')
    this.#retryBudget = resolveRetryBudget(o.retryBudget, 'retryBudget')
    checkTimeoutOption('attemptTimeoutMs', o.attemptTimeoutMs)
    checkTimeoutOption('timeoutMs', o.timeoutMs)
    this.#breaker = o.breaker
    this.#attemptTimeoutMs = o.attemptTimeoutMs
    this.#timeoutMs = o.timeoutMs
  }

  /** The breaker every attempt goes through, if any. */
  get breaker() {
    return this.#breaker
  }

  /** The retry policy. */
  get retry() {
    return this.#retry
  }

  /** The retry budget retries are drawn from (`null`: none). */
  get retryBudget() {
    return this.#retryBudget
  }

  /** The cap on each attempt, in milliseconds, if any. */
  get attemptTimeoutMs() {
    return this.#attemptTimeoutMs
  }

  /** The budget of a call run without one, in milliseconds, if set. */
  get timeoutMs() {
    return this.#timeoutMs
  }

  /**
   * Runs `fn` under the policy (see index.d.ts for the full contract).
   * @template T
   * @param {(attempt: AttemptContext) => T | PromiseLike<T>} fn
   * @param {import('../index').CallPolicyRunOptions} [options]
   * @returns {Promise<Awaited<T>>}
   */
  async run(fn, options) {
    if (typeof fn !== 'function') throw argumentTypeError('fn', 'a function', fn)
    checkOptionsObject(options)
    const o = options ?? {}
    checkBudget(o.budget)
    checkSignal(o.signal)
    let budget = o.budget
    if (budget === undefined) {
      budget = this.#timeoutMs === undefined ? defaultBudget() : new Budget({ timeoutMs: this.#timeoutMs })
    }
    return runAttempts(fn, {
      policy: this.#retry,
      budget,
      retryBudget: this.#retryBudget,
      attemptTimeoutMs: this.#attemptTimeoutMs,
      isRetryable: this.#retry.isRetryable ?? defaultIsRetryable,
      signal: o.signal,
      breaker: this.#breaker,
    })
  }
}

module.exports = { retry, CallPolicy, AttemptContext }
