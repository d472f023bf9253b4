'use strict'

// TimeoutPolicy and Budget: a request's deadline, the rules every timeout obeys, and running
// work under a deadline with an AbortSignal.
//
// A core budget is plain data, so a Budget holds numbers: its deadline in nanoseconds on its
// clock and its policy's three values; every question (time left, a call's timeout, a child,
// a header) is one native call taking those numbers (bindings/node/src/budget.rs). A time that
// the core refuses to start a call in comes back as `-(1 + remainingMs)`, a number rather than
// an exception, so that a refused call costs no native exception.
//
// Deadlines are enforced by TimedCall entries in the one shared timer queue (deadlines.js). A
// TimedCall creates its AbortController only when someone asks for the signal.
//
// The two questions every `new Budget({ timeoutMs }).run(work)` asks are answered without a
// native call once the core has answered them for the policy (a native call costs more than a
// hand-written setTimeout wrapper): how far after now a budget of `timeoutMs` ends (the core's
// `policy.apply(timeout)`, kept per policy and timeout), and whether, and with what timeout, a
// call may start now (the core's threshold, `budgetStartMargin`: a call starts when at least
// the margin is left, and gets what is left up to the policy maximum). Clock readings are
// rounded to the nanosecond as the core rounds them, so the answers are the core's exactly;
// anything else (a cap, a reading the core would refuse, numbers past 2^53) asks the core.

const native = require('../native.js')
const { checkClockOption, readClock } = require('./clock.js')
const { schedule, unschedule } = require('./deadlines.js')
const {
  BudgetExhaustedError,
  DeadlineExceededError,
  InvalidHeaderError,
  argumentTypeError,
  checkOptionsObject,
  optionTypeError,
  withCode,
  withoutStack,
} = require('./errors.js')

const { performance } = globalThis

const NS_PER_MS = 1e6
/**
 * A Budget and a TimedCall kept alive: a stand-in budget referring to nothing of the user's
 * (its numbers doubles, the most general field representation, so that real budgets share its
 * map), and the latest TimedCall (a stand-in did not keep everything its compiled code depends
 * on; a finished call holds nothing but its signal and reason, if any). V8 keeps the hidden
 * class (map) of the objects a class builds only through live instances; when a full GC finds
 * none, it discards the map and deoptimizes every function compiled against it, which then run
 * unoptimized for thousands of calls (5 µs budgets after each major GC).
 */
const shapes = { budget: undefined, timedCall: undefined }
/** Distinct timeouts whose deadline offset a policy keeps (most programs use a handful). */
const MAX_OFFSETS = 256
const HEADER_FORMATS = { 'grpc-timeout': 0, 'timeout-ms': 1 }

// Lets constructors build an instance whose private fields the module fills in.
const INTERNAL = Symbol('seawall.internal')

/** @type {(parts: { maxTimeoutNs: number, scale: number, minToStartNs: number }) => TimeoutPolicy} */
let policyFromNative
/** @type {TimeoutPolicy | undefined} the process-wide policy, as last read or set */
let globalPolicy
/** @type {(policy: TimeoutPolicy) => number} */
let maxNsOf
/** @type {(policy: TimeoutPolicy) => number} */
let scaleOf
/** @type {(policy: TimeoutPolicy) => number} */
let minNsOf
/** @type {(policy: TimeoutPolicy, nowMs: number, timeoutMs: number) => number} */
let deadlineOf
/** @type {(policy: TimeoutPolicy) => number} */
let marginOf

/**
 * The organisation's rules for every timeout: none longer than `maxTimeoutMs`, every
 * configured timeout multiplied by `scale`, and no call started with less than `minToStartMs`
 * left. Validated by the core; immutable.
 */
class TimeoutPolicy {
  #maxNs
  #scale
  #minNs
  /** @type {Map<number, number>} the core's deadline offset (ns) of each timeout (ms) asked */
  #offsets = new Map()
  /** @type {number | undefined} the core's start margin (ns), -1 for none; read on first use */
  #margin = undefined

  static {
    policyFromNative = (parts) => {
      const p = new TimeoutPolicy(INTERNAL)
      p.#maxNs = parts.maxTimeoutNs
      p.#scale = parts.scale
      p.#minNs = parts.minToStartNs
      return p
    }
    maxNsOf = (p) => p.#maxNs
    scaleOf = (p) => p.#scale
    minNsOf = (p) => p.#minNs
    deadlineOf = (p, nowMs, timeoutMs) => {
      let offset = p.#offsets.get(timeoutMs)
      if (offset === undefined) {
        // Throws the core's error for a timeout it refuses.
        offset = native.budgetOffset(timeoutMs, p.#maxNs, p.#scale, p.#minNs)
        if (p.#offsets.size < MAX_OFFSETS) p.#offsets.set(timeoutMs, offset)
      }
      const nowNs = nowMs * NS_PER_MS
      if (nowNs >= 0 && nowNs < Infinity) {
        const deadlineNs = Math.round(nowNs) + offset
        if (deadlineNs <= Number.MAX_SAFE_INTEGER) return deadlineNs
      }
      return native.budgetNew(nowMs, timeoutMs, p.#maxNs, p.#scale, p.#minNs)
    }
    marginOf = (p) => (p.#margin ??= native.budgetStartMargin(p.#maxNs, p.#scale, p.#minNs))
  }

  /** @param {import('../index').TimeoutPolicyOptions} [options] */
  constructor(options) {
    if (options === INTERNAL) return
    checkOptionsObject(options)
    const parts = native.policyNew(options)
    this.#maxNs = parts.maxTimeoutNs
    this.#scale = parts.scale
    this.#minNs = parts.minToStartNs
  }

  /** The longest timeout allowed, in milliseconds. */
  get maxTimeoutMs() {
    return this.#maxNs / NS_PER_MS
  }

  /** The factor applied to every configured timeout, in (0, 1]. */
  get scale() {
    return this.#scale
  }

  /** The least time left, in milliseconds, for which a call is still started. */
  get minToStartMs() {
    return this.#minNs / NS_PER_MS
  }

  /** The process-wide policy, used by every budget created without one. */
  static getGlobal() {
    // Read once from the core and kept: in a Node process only setGlobal below replaces it, and
    // reading it back for every new Budget was a third of a short budget's cost.
    return (globalPolicy ??= policyFromNative(native.policyGlobal()))
  }

  /** Replaces the process-wide policy; budgets created before keep theirs. */
  static setGlobal(policy) {
    if (!(policy instanceof TimeoutPolicy)) throw argumentTypeError('policy', 'a TimeoutPolicy', policy)
    native.policySetGlobal(policy.#maxNs, policy.#scale, policy.#minNs)
    globalPolicy = policy
  }

  toJSON() {
    return { maxTimeoutMs: this.maxTimeoutMs, scale: this.scale, minToStartMs: this.minToStartMs }
  }
}

const PENDING = 0
const DONE = 1
const EXPIRED = 2
const CANCELLED = 3

// A promise's settle functions, taken by an executor that is not a closure (one allocation
// less per call): `new Promise(captureSettlers)` runs it at once.
let capturedResolve
let capturedReject
function captureSettlers(resolve, reject) {
  capturedResolve = resolve
  capturedReject = reject
}

/**
 * One piece of work under a timeout: a deadline-queue entry, the lazily created
 * AbortController, and the settlement of the promise returned for the work.
 * @internal
 */
class TimedCall {
  // Read and written by the deadline queue.
  due = 0
  queued = false
  #timeoutMs
  #state = PENDING
  /** @type {AbortController | undefined} */
  #controller = undefined
  #reason = undefined
  #resolve = undefined
  #reject = undefined

  /** @param {number} timeoutMs */
  constructor(timeoutMs) {
    this.#timeoutMs = timeoutMs
    shapes.timedCall = this
  }

  /** The signal passed to the work: aborts at the deadline or when the call is cancelled. */
  get signal() {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#state === EXPIRED || this.#state === CANCELLED) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  /** Whether the deadline passed before the work finished. */
  get expired() {
    return this.#state === EXPIRED
  }

  /** Whether `cancel()` ended the call before the work finished. */
  get cancelled() {
    return this.#state === CANCELLED
  }

  /**
   * Calls `fn(arg)` (or `fn()` when `arg` is undefined) and returns a promise of its result
   * that rejects with DeadlineExceededError at `due` (on `performance.now()`), unless it
   * settles first. A result that is not a thenable settles at once and never queues.
   */
  start(fn, arg, due) {
    let value
    try {
      value = arg === undefined ? fn() : fn(arg)
    } catch (error) {
      return this.#finishNow(error, true)
    }
    let then
    if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
      try {
        then = value.then
      } catch (error) {
        return this.#finishNow(error, true)
      }
    }
    if (typeof then !== 'function') return this.#finishNow(value, false)
    if (this.#state !== PENDING) {
      // Cancelled while `fn` ran synchronously; its promise settles unobserved.
      Promise.resolve(value).catch(() => {})
      return Promise.reject(this.#reason)
    }
    const promise = new Promise(captureSettlers)
    this.#resolve = capturedResolve
    this.#reject = capturedReject
    capturedResolve = capturedReject = undefined
    this.due = due
    schedule(this)
    try {
      then.call(
        value,
        (v) => this.#settle(v, false),
        (e) => this.#settle(e, true),
      )
    } catch (error) {
      this.#settle(error, true)
    }
    return promise
  }

  #finishNow(value, isError) {
    if (this.#state !== PENDING) return Promise.reject(this.#reason)
    this.#state = DONE
    return isError ? Promise.reject(value) : Promise.resolve(value)
  }

  #settle(value, isError) {
    if (this.#state !== PENDING) return
    this.#state = DONE
    unschedule(this)
    const settle = isError ? this.#reject : this.#resolve
    this.#resolve = this.#reject = undefined
    settle(value)
  }

  /** Called by the deadline queue at `due`. */
  expire() {
    if (this.#state !== PENDING) return
    this.#state = EXPIRED
    const error = withoutStack(() => new DeadlineExceededError(this.#timeoutMs))
    this.#end(error)
  }

  /** Ends the call now with `reason` (the caller's abort): the signal aborts, the promise rejects. */
  cancel(reason) {
    if (this.#state !== PENDING) return
    this.#state = CANCELLED
    unschedule(this)
    this.#end(reason)
  }

  #end(reason) {
    this.#reason = reason
    const reject = this.#reject
    this.#resolve = this.#reject = undefined
    // The signal first, so that the work hears of it before anyone awaiting the call.
    this.#controller?.abort(reason)
    if (reject !== undefined) reject(reason)
  }
}

/** A deadline entry that aborts a budget's own signal. */
class SignalDeadline {
  due = 0
  queued = false
  #controller
  #timeoutMs

  constructor(controller, timeoutMs) {
    this.#controller = controller
    this.#timeoutMs = timeoutMs
  }

  expire() {
    this.#controller.abort(new DeadlineExceededError(this.#timeoutMs))
  }
}

/** @type {(deadlineNs: number, policy: TimeoutPolicy, clock: { now(): number }) => Budget} */
let budgetFrom
/** @type {(budget: Budget, slot: number, capMs: number | undefined, retryBudgetNowMs: number | undefined) => number} */
let startAttemptOn
/** @type {(budget: Budget, slot: number, retryAfterMs: number | undefined, retryBudgetNowMs: number | undefined) => number} */
let onFailureOn
/** @type {(budget: Budget, remainingMs: number) => BudgetExhaustedError} */
let exhaustedError
/** @type {(budget: Budget, pool: number, nowMs: number) => number} */
let poolAcquireWith

function headerFormat(format) {
  if (typeof format !== 'string') throw argumentTypeError('format', "'grpc-timeout' or 'timeout-ms'", format)
  const code = HEADER_FORMATS[format]
  if (code === undefined || !Object.hasOwn(HEADER_FORMATS, format)) {
    throw withCode(
      new RangeError(`format must be 'grpc-timeout' or 'timeout-ms', got ${JSON.stringify(format)}`),
      'SEAWALL_INVALID_ARGUMENT',
      'format',
    )
  }
  return code
}

function checkCap(capMs) {
  if (typeof capMs !== 'number') throw argumentTypeError('capMs', 'a number of milliseconds', capMs)
}

/**
 * A request's deadline: created from a total timeout, carried through the request, shared by
 * everything it calls. Every timeout derived from it is `min(remaining, per-call cap, policy
 * maximum)`, and a call is not started when less than the policy's `minToStartMs` is left.
 */
class Budget {
  #deadlineNs = 0
  #maxNs = 0
  #scale = 1
  #minNs = 0
  /** @type {TimeoutPolicy} */
  #policy
  /** @type {{ now(): number }} */
  #clock
  /** @type {AbortController | undefined} */
  #controller = undefined

  static {
    budgetFrom = (deadlineNs, policy, clock) => {
      const b = new Budget(INTERNAL)
      b.#init(deadlineNs, policy, clock)
      return b
    }
    startAttemptOn = (b, slot, capMs, retryBudgetNowMs) =>
      native.retryStartAttempt(slot, b.#deadlineNs, b.#maxNs, b.#scale, b.#minNs, b.#now(), capMs, retryBudgetNowMs)
    onFailureOn = (b, slot, retryAfterMs, retryBudgetNowMs) =>
      native.retryOnFailure(slot, b.#deadlineNs, b.#maxNs, b.#scale, b.#minNs, b.#now(), retryAfterMs, retryBudgetNowMs)
    exhaustedError = (b, remainingMs) => new BudgetExhaustedError(remainingMs, b.#minNs / NS_PER_MS)
    // The budget's own clock reading lets the native side move it onto the pool's clock.
    poolAcquireWith = (b, pool, nowMs) =>
      native.poolAcquire(pool, nowMs, b.#deadlineNs, b.#maxNs, b.#scale, b.#minNs, b.#now())
  }

  /** @param {import('../index').BudgetOptions} options */
  constructor(options) {
    if (options === INTERNAL) return
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw optionTypeError('options', 'an object', options)
    }
    const { timeoutMs, policy, clock } = options
    if (typeof timeoutMs !== 'number') throw optionTypeError('timeoutMs', 'a number of milliseconds', timeoutMs)
    if (policy !== undefined && !(policy instanceof TimeoutPolicy)) {
      throw optionTypeError('policy', 'a TimeoutPolicy', policy)
    }
    checkClockOption(clock)
    const p = policy ?? TimeoutPolicy.getGlobal()
    const c = clock ?? performance
    this.#init(deadlineOf(p, readClock(c), timeoutMs), p, c)
  }

  #init(deadlineNs, policy, clock) {
    this.#deadlineNs = deadlineNs
    this.#maxNs = maxNsOf(policy)
    this.#scale = scaleOf(policy)
    this.#minNs = minNsOf(policy)
    this.#policy = policy
    this.#clock = clock
  }

  /**
   * A budget from a received header value (`grpc-timeout` like `"1500m"`, or whole
   * milliseconds), ending when the caller's deadline does, capped at the policy maximum.
   */
  static fromHeader(value, options) {
    if (typeof value !== 'string') throw argumentTypeError('value', 'a string', value)
    checkOptionsObject(options)
    const { format = 'grpc-timeout', policy, clock } = options ?? {}
    const code = headerFormat(format)
    if (policy !== undefined && !(policy instanceof TimeoutPolicy)) {
      throw optionTypeError('policy', 'a TimeoutPolicy', policy)
    }
    checkClockOption(clock)
    const p = policy ?? TimeoutPolicy.getGlobal()
    const c = clock ?? performance
    let deadlineNs
    try {
      deadlineNs = native.budgetFromHeader(value, code, readClock(c), maxNsOf(p), scaleOf(p), minNsOf(p))
    } catch (error) {
      if (error?.code === 'SEAWALL_INVALID_HEADER') {
        throw new InvalidHeaderError(error.message, error.header, error.value, error.reason)
      }
      throw error
    }
    return budgetFrom(deadlineNs, p, c)
  }

  /** The policy this budget obeys. */
  get policy() {
    return this.#policy
  }

  /** The deadline, in milliseconds on the budget's clock. */
  get deadlineMs() {
    return this.#deadlineNs / NS_PER_MS
  }

  /** Milliseconds left now (0 once past the deadline). */
  get remainingMs() {
    return native.budgetRemaining(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, this.#now())
  }

  /** Whether the deadline has passed. */
  get isExpired() {
    return native.budgetIsExpired(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, this.#now())
  }

  /**
   * An AbortSignal that aborts with a DeadlineExceededError at the deadline. Created on first
   * use; its timer is the shared, unref'd one.
   */
  get signal() {
    if (this.#controller === undefined) {
      const controller = new AbortController()
      this.#controller = controller
      const left = this.remainingMs
      if (left <= 0) {
        controller.abort(new DeadlineExceededError(0))
      } else {
        const entry = new SignalDeadline(controller, left)
        entry.due = performance.now() + left
        schedule(entry)
      }
    }
    return this.#controller.signal
  }

  /** A budget for one part of the request: ends at the earlier of this deadline and now + `capMs` (scaled). */
  child(capMs) {
    checkCap(capMs)
    const d = native.budgetChild(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, this.#now(), capMs)
    return budgetFrom(d, this.#policy, this.#clock)
  }

  /**
   * The timeout for one call: `min(remaining, capMs × scale, policy maximum)`.
   * @throws BudgetExhaustedError when the budget cannot fit a call.
   */
  timeoutFor(capMs) {
    if (capMs !== undefined) checkCap(capMs)
    const t = native.budgetTimeoutFor(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, this.#now(), capMs)
    if (t < 0) throw exhaustedError(this, -t - 1)
    return t
  }

  /**
   * The time left, in milliseconds, when a call may start.
   * @throws BudgetExhaustedError when less than the policy's minimum is left.
   */
  check() {
    const t = native.budgetCheck(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, this.#now())
    if (t < 0) throw exhaustedError(this, -t - 1)
    return t
  }

  /** The time left as a header value for the next service (rounded down). */
  toHeader(format = 'grpc-timeout') {
    const code = headerFormat(format)
    return native.budgetToHeader(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, this.#now(), code)
  }

  /**
   * Runs `work` under the budget: rejects with DeadlineExceededError at the deadline (aborting
   * the signal given to `work`), or with BudgetExhaustedError, without calling `work`, when the
   * budget cannot fit a call.
   */
  run(work) {
    if (typeof work !== 'function') return Promise.reject(argumentTypeError('work', 'a function', work))
    let now
    let t
    try {
      now = this.#now()
      t = this.#timeoutAt(now)
    } catch (error) {
      return Promise.reject(error)
    }
    if (t < 0) return Promise.reject(withoutStack(() => exhaustedError(this, -t - 1)))
    const due = (this.#clock === performance ? now : performance.now()) + t
    const call = new TimedCall(t)
    return call.start(work, work.length > 0 ? call.signal : undefined, due)
  }

  /** `timeoutFor()` at `nowMs` as the core answers it (see the top of this file). */
  #timeoutAt(nowMs) {
    const margin = marginOf(this.#policy)
    const nowNs = nowMs * NS_PER_MS
    if (margin >= 0 && nowNs >= 0 && nowNs < Infinity) {
      const at = Math.round(nowNs)
      const left = this.#deadlineNs - at
      if (left >= margin) return Math.min(left, this.#maxNs) / NS_PER_MS
    }
    return native.budgetTimeoutFor(this.#deadlineNs, this.#maxNs, this.#scale, this.#minNs, nowMs, undefined)
  }

  #now() {
    return readClock(this.#clock)
  }
}

shapes.budget = budgetFrom(0.5, policyFromNative({ maxTimeoutNs: 0.5, scale: 0.5, minToStartNs: 0.5 }), performance)

/** A budget of the process-wide policy's maximum (scaled by it), on the real clock. */
function defaultBudget() {
  const policy = TimeoutPolicy.getGlobal()
  return new Budget({ timeoutMs: policy.maxTimeoutMs, policy })
}

module.exports = {
  TimeoutPolicy,
  Budget,
  TimedCall,
  defaultBudget,
  // Assigned by the static blocks above, which ran when the classes were defined.
  internals: { startAttemptOn, onFailureOn, exhaustedError, poolAcquireWith },
}
