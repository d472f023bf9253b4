'use strict'

// CircuitBreaker and Permit. Every decision (admit, reject, open, close, validate) is one
// synchronous call into the Rust core; events, classification callbacks and the clock live here.
// Nothing here keeps a timer or a handle, and the native side holds no JS callback, so a
// process that created breakers exits by itself.
//
// The native calls are two module functions taking the breaker's slot and returning numbers,
// not objects (see bindings/node/src/breaker.rs for why): `acquire(slot, now)` gives
// `token * 2 + pending` (≥ 0) or `-(1 + reason * 2 + pending)`, and `record(slot, …)` gives
// `pending`; `pending` means state changes wait in the core's queue, which is drained (and
// emitted as `stateChange`) only then.
//
// Most calls make neither. After every native call the core publishes its fast path in
// `#fast`, a Float64Array this facade owns (layout below, the same as src/breaker.rs): what it
// would answer to an acquire without looking (admit while closed; reject until the open
// duration ends; reject while forced open), and whether a success would change nothing but its
// counters (closed, a count window full of successes). The facade replays those answers and
// counts what it did in the same array; the core folds the counts in at the start of its next
// call, so its decisions and metrics are the same as if it had been asked every time. A call
// through a healthy breaker thus makes no native call and reads no clock (unless slow calls are
// tracked), and a rejection while open reads the clock once.

const native = require('../native.js')
const { readClock, checkClockOption } = require('./clock.js')
const {
  BreakerOpenError,
  SnapshotError,
  checkFunction,
  checkOptionsObject,
  optionTypeError,
  typeName,
  withCode,
  withoutStack,
} = require('./errors.js')
const { Listeners } = require('./listeners.js')

const { NativeBreaker } = native

const STATES = ['closed', 'open', 'half_open', 'forced_open', 'disabled', 'metrics_only']
const REJECTION_REASONS = ['open', 'half_open_full', 'forced_open']
const SUCCESS = 0
const FAILURE = 1
const IGNORED = 2
const EVENTS = ['stateChange', 'reject']

function checkListener(event, listener) {
  if (!EVENTS.includes(event)) {
    throw withCode(
      new RangeError(`event must be 'stateChange' or 'reject', got ${JSON.stringify(String(event))}`),
      'SEAWALL_INVALID_ARGUMENT',
    )
  }
  if (typeof listener !== 'function') {
    throw withCode(new TypeError(`listener must be a function, got ${typeName(listener)}`), 'SEAWALL_INVALID_ARGUMENT')
  }
}

// The fast-path array (src/breaker.rs, `mod fast`): indices...
const F_ADMISSION = 0
const F_UNTIL_NS = 1
const F_EPOCH = 2
const F_SUCCESS_NOOP = 3
const F_NEEDS_START = 4
const F_ADMITTED = 5
const F_SUCCEEDED = 6
const F_REJECTED = 7
const F_LEN = 8
// ...and the admissions it publishes.
const ADMIT_COUNTED = 1
const ADMIT_UNCOUNTED = 2
const REJECT_UNTIL = 3
const REJECT_FORCED = 4
/** A permit's start time when the breaker does not need it (no slow-call tracking). */
const NO_START = -1

/**
 * A Permit and a rejection error kept alive for ever. V8 keeps the hidden class (map) of the
 * objects a class builds only through live instances; when a full GC finds none, it discards the
 * map and deoptimizes every function compiled against it, which then run unoptimized for
 * thousands of calls after each major GC (a permit's cost tripled, a rejection's doubled). The
 * permit is a stand-in referring to nothing of the user's (its numbers are doubles, the most
 * general field representation, so real permits share its map); the error is the latest one.
 */
const shapes = { permit: undefined, rejection: undefined }

/** @type {(breaker: CircuitBreaker, token: number, startedMs: number, outcome: number) => void} */
let recordPermit
/** @type {(breaker: CircuitBreaker, permit: Permit, value: unknown, isError: boolean) => void} */
let settlePermit

// What a call's outcome counts as: `ignore` first, then `isFailure`, else an error is a failure
// and a value a success. May throw (a classifier's own exception).
function classify(ignore, isFailure, value, isError) {
  if (ignore !== undefined && ignore(value)) return IGNORED
  if (isFailure !== undefined) return isFailure(value) ? FAILURE : SUCCESS
  return isError ? FAILURE : SUCCESS
}

/**
 * Settles a permit from `breaker.tryAcquire()` for CallPolicy: `how` is 'value' or 'error'
 * (classified like `breaker.run()` would), 'timeout' (always a failure: a dependency that does
 * not answer in time is failing) or 'cancelled' (the caller gave up: says nothing, ignored).
 * A classifier that throws settles the permit as ignored and its exception is rethrown.
 * @internal
 */
function settleCallOutcome(breaker, permit, how, value) {
  if (how === 'timeout') permit.failure()
  else if (how === 'cancelled') permit.ignore()
  else settlePermit(breaker, permit, value, how === 'error')
}

/**
 * Proof that the breaker admitted a call. Settle it with exactly one of `success()`,
 * `failure()` or `ignore()`; later calls do nothing.
 */
class Permit {
  #breaker
  #token
  #startedMs
  #settled = false

  /** @internal Permits come from `CircuitBreaker#tryAcquire()`. */
  constructor(breaker, token, startedMs) {
    this.#breaker = breaker
    this.#token = token
    this.#startedMs = startedMs
  }

  /** Whether an outcome has been recorded. */
  get settled() {
    return this.#settled
  }

  /** The call succeeded. */
  success() {
    this.#settle(SUCCESS)
  }

  /** The call failed. */
  failure() {
    this.#settle(FAILURE)
  }

  /** The call does not count (cancelled, a caller's mistake…); frees a half-open probe slot. */
  ignore() {
    this.#settle(IGNORED)
  }

  #settle(outcome) {
    if (this.#settled) return
    // Recording always settles (see CircuitBreaker#record), even when it throws.
    this.#settled = true
    recordPermit(this.#breaker, this.#token, this.#startedMs, outcome)
  }
}

/**
 * A circuit breaker: stops calling a failing or slow dependency, probes it now and then, and
 * resumes when it has recovered. The decisions are made by Seawall's Rust core, identical to
 * the Rust and Python libraries.
 */
class CircuitBreaker {
  // Holding the NativeBreaker keeps its slot allocated for as long as this breaker lives.
  #native
  #slot
  /** @type {Float64Array} the fast path the core publishes, and the counts it folds in */
  #fast = new Float64Array(new ArrayBuffer(F_LEN * Float64Array.BYTES_PER_ELEMENT))
  #clock
  /** The last reading of the clock, for recording when it cannot be read again. */
  #lastNowMs = 0
  /** The clock is the default one, whose readings are always valid: the fast path skips it. */
  #skipClock
  #name
  #isFailure
  #ignore
  #isResultFailure
  #listeners = new Listeners(EVENTS, checkListener)

  static {
    recordPermit = (breaker, token, startedMs, outcome) => breaker.#record(token, startedMs, outcome)
    settlePermit = (breaker, permit, value, isError) => breaker.#settlePermit(permit, value, isError)
  }

  /** @param {import('../index').CircuitBreakerOptions} [options] */
  constructor(options) {
    checkOptionsObject(options)
    const opts = options ?? {}
    const { isFailure, ignore, isResultFailure, clock, name } = opts
    checkFunction('isFailure', isFailure)
    checkFunction('ignore', ignore)
    checkFunction('isResultFailure', isResultFailure)
    checkClockOption(clock)
    if (name !== undefined && typeof name !== 'string') throw optionTypeError('name', 'a string', name)
    // The native constructor reads the numeric options and ignores the keys above. The array
    // is over its own ArrayBuffer, which nothing else sees: the native side keeps writing to it.
    this.#native = new NativeBreaker(options, this.#fast)
    this.#slot = this.#native.slot
    this.#clock = clock ?? globalThis.performance
    this.#skipClock = clock === undefined
    this.#name = name
    this.#isFailure = isFailure
    this.#ignore = ignore
    this.#isResultFailure = isResultFailure
  }

  /**
   * A breaker built from `options` with the state of `snapshot` (from `toJSON()`, possibly
   * written by another process or another language's Seawall).
   */
  static fromJSON(snapshot, options) {
    const breaker = new CircuitBreaker(options)
    breaker.restore(snapshot)
    return breaker
  }

  /** The name given in the options, if any. */
  get name() {
    return this.#name
  }

  /** The current state. Reading it may move an open breaker whose time is up to half-open. */
  get state() {
    const code = this.#native.stateCode(this.#now())
    if (code & 1) this.#emitTransitions()
    return STATES[code >> 1]
  }

  /**
   * Runs `fn(...args)` if the breaker admits it, awaits it, and records its outcome. Rejects
   * with `BreakerOpenError` when the breaker refuses the call (`fn` is then not called).
   * @returns {Promise<unknown>}
   */
  run(fn, ...args) {
    if (typeof fn !== 'function') {
      return Promise.reject(withCode(new TypeError(`fn must be a function, got ${typeName(fn)}`), 'SEAWALL_INVALID_ARGUMENT'))
    }
    const f = this.#fast
    const admission = f[F_ADMISSION]
    if (admission === ADMIT_COUNTED && this.#skipClock && f[F_NEEDS_START] === 0) {
      // Closed: admitted as the core would, without asking it or reading the clock.
      f[F_ADMITTED]++
      return this.#runAdmitted(fn, args, f[F_EPOCH] * 2 + 1, NO_START)
    }
    let nowMs
    let admitted
    try {
      nowMs = this.#now()
      admitted = this.#admitAt(admission, nowMs)
    } catch (error) {
      return Promise.reject(error)
    }
    if (typeof admitted !== 'number') return rejectLater(admitted)
    return this.#runAdmitted(fn, args, admitted, nowMs)
  }

  async #runAdmitted(fn, args, token, startedMs) {
    let result
    try {
      result = await (args.length === 0 ? fn() : fn(...args))
    } catch (error) {
      this.#settleClassified(token, startedMs, this.#ignore, this.#isFailure, error, true)
      throw error
    }
    this.#settleClassified(token, startedMs, undefined, this.#isResultFailure, result, false)
    return result
  }

  /**
   * Asks for admission without running anything. Returns a `Permit` to settle when the call
   * ends; throws `BreakerOpenError` when rejected.
   */
  tryAcquire() {
    const f = this.#fast
    const admission = f[F_ADMISSION]
    if (admission === ADMIT_COUNTED && this.#skipClock && f[F_NEEDS_START] === 0) {
      f[F_ADMITTED]++
      return new Permit(this, f[F_EPOCH] * 2 + 1, NO_START)
    }
    const nowMs = this.#now()
    const admitted = this.#admitAt(admission, nowMs)
    if (typeof admitted !== 'number') throw admitted
    return new Permit(this, admitted, nowMs)
  }

  /**
   * Admits a call at `nowMs` as the core does: from the published fast path when it has the
   * answer, else by asking the core. Returns the permit's token (`epoch * 2 + counted`), or the
   * `BreakerOpenError` of a rejection (the `reject` event emitted); throws for a bad reading.
   */
  #admitAt(admission, nowMs) {
    const f = this.#fast
    // A reading the core would refuse (negative, NaN, infinite) goes to it and throws there.
    const nowNs = nowMs * 1e6
    if (nowNs >= 0 && nowNs < Infinity) {
      if (admission === ADMIT_COUNTED) {
        f[F_ADMITTED]++
        return f[F_EPOCH] * 2 + 1
      }
      if (admission === ADMIT_UNCOUNTED) return f[F_EPOCH] * 2
      if (admission === REJECT_UNTIL) {
        // The core's own conversion of the reading (rounded to the nanosecond), so that the
        // comparison and the retry-after are exactly the ones the core would make.
        const at = Math.round(nowNs)
        const untilNs = f[F_UNTIL_NS]
        if (at < untilNs) {
          f[F_REJECTED]++
          return this.#rejection('open', (untilNs - at) / 1e6)
        }
        // The open duration is over: the core half-opens.
      } else if (admission === REJECT_FORCED) {
        f[F_REJECTED]++
        return this.#rejection('forced_open', null)
      }
    }
    const code = native.acquire(this.#slot, nowMs)
    if (code < 0) return this.#rejected(code)
    if (code % 2 === 1) this.#emitTransitions()
    return Math.floor(code / 2)
  }

  /** The breaker's numbers now (rates in percent). */
  metrics() {
    const m = this.#native.metrics(this.#now())
    this.#emitTransitions()
    return m
  }

  /** Rejects every call until `reset()`, `disable()` or `metricsOnly()`. */
  forceOpen() {
    this.#native.forceOpen(this.#now())
    this.#emitTransitions()
  }

  /** Admits every call and records nothing, until another manual change. */
  disable() {
    this.#native.disable(this.#now())
    this.#emitTransitions()
  }

  /** Records outcomes but never rejects, until another manual change. */
  metricsOnly() {
    this.#native.metricsOnly(this.#now())
    this.#emitTransitions()
  }

  /** Back to closed with an empty window and the base open duration; counters are kept. */
  reset() {
    this.#native.reset(this.#now())
    this.#emitTransitions()
  }

  /** The breaker's state as Seawall's versioned snapshot object (`JSON.stringify` uses it). */
  toJSON() {
    const json = this.#native.snapshot(this.#now())
    this.#emitTransitions()
    return JSON.parse(json)
  }

  /**
   * Replaces the state with a snapshot from `toJSON()` (the object or its JSON string). A bad
   * snapshot throws `SnapshotError` and changes nothing.
   */
  restore(snapshot) {
    let json
    if (typeof snapshot === 'string') {
      json = snapshot
    } else if (snapshot !== null && typeof snapshot === 'object') {
      try {
        json = JSON.stringify(snapshot)
      } catch (error) {
        throw new SnapshotError(`breaker snapshot is not valid: ${error.message}`, 'malformed', { cause: error })
      }
    } else {
      throw withCode(
        new TypeError(`snapshot must be an object or a JSON string, got ${typeName(snapshot)}`),
        'SEAWALL_INVALID_SNAPSHOT',
      )
    }
    try {
      this.#native.restore(json, this.#now())
    } catch (error) {
      if (error?.code === 'SEAWALL_INVALID_SNAPSHOT') throw new SnapshotError(error.message, error.reason)
      throw error
    }
    this.#emitTransitions()
    return this
  }

  /** Calls `listener` on every `event`. */
  on(event, listener) {
    this.#listeners.add(event, listener, false)
    return this
  }

  /** Calls `listener` on the next `event` only. */
  once(event, listener) {
    this.#listeners.add(event, listener, true)
    return this
  }

  /** Removes the most recently added registration of `listener` for `event`. */
  off(event, listener) {
    this.#listeners.remove(event, listener)
    return this
  }

  #emitTransitions() {
    const transitions = this.#native.takeTransitions()
    for (const t of transitions) this.#listeners.emit(this, 'stateChange', t)
  }

  #now() {
    const t = readClock(this.#clock)
    this.#lastNowMs = t
    return t
  }

  #rejected(code) {
    const c = -code - 1
    const reason = REJECTION_REASONS[c >> 1]
    const retryAfterMs = this.#native.lastRetryAfterMs()
    if (c & 1) this.#emitTransitions()
    return this.#rejection(reason, retryAfterMs)
  }

  #rejection(reason, retryAfterMs) {
    if (this.#listeners.byEvent.reject.length !== 0) this.#listeners.emit(this, 'reject', { reason, retryAfterMs })
    // Without a stack: capturing one is most of a rejection's cost (~4 µs), and where the
    // rejection happened is the breaker's name and reason, not the frames. Still a real Error.
    const error = withoutStack(() => new BreakerOpenError(reason, retryAfterMs, this.#name))
    shapes.rejection = error
    return error
  }

  // Always settles the permit: if the clock cannot be read (it threw, or gave NaN), the call is
  // recorded as ignored, since its duration is unknown, so that no half-open probe slot is
  // lost; then the clock's error is rethrown.
  #record(token, startedMs, outcome) {
    const f = this.#fast
    if (this.#skipClock) {
      // The default clock cannot fail: what needs no reading is decided without one.
      if (token % 2 === 0) return
      if (outcome === SUCCESS && f[F_SUCCESS_NOOP] === 1 && token === f[F_EPOCH] * 2 + 1) {
        f[F_SUCCEEDED]++
        return
      }
    }
    let pending
    try {
      const nowMs = this.#now()
      const nowNs = nowMs * 1e6
      if (nowNs >= 0 && nowNs < Infinity) {
        // An uncounted permit (admitted while disabled) records nothing.
        if (token % 2 === 0) return
        if (outcome === SUCCESS && f[F_SUCCESS_NOOP] === 1 && token === f[F_EPOCH] * 2 + 1) {
          // A success that the core says changes nothing but its counters, by a call admitted
          // in the current state: counted for the core, not recorded.
          f[F_SUCCEEDED]++
          return
        }
      }
      // Without slow-call tracking the start time decides nothing, and was not read.
      pending = native.record(this.#slot, token, startedMs === NO_START ? nowMs : startedMs, outcome, nowMs)
    } catch (error) {
      const at = startedMs === NO_START ? this.#lastNowMs : startedMs
      try {
        pending = native.record(this.#slot, token, at, IGNORED, at)
      } catch {
        // Cannot fail (the time was accepted before); if it did, the first error says more.
      }
      if (pending) this.#emitTransitions()
      throw error
    }
    if (pending) this.#emitTransitions()
  }

  // Classifies a call's error (`isError`) or result and records it. A classifier that throws
  // still settles the permit, as ignored (the dependency's health is unknown), and its
  // exception replaces the call's outcome: it is a bug the caller must see.
  #settleClassified(token, startedMs, ignore, isFailure, value, isError) {
    let outcome
    try {
      outcome = classify(ignore, isFailure, value, isError)
    } catch (classifierError) {
      this.#record(token, startedMs, IGNORED)
      throw classifierError
    }
    this.#record(token, startedMs, outcome)
  }

  // The same for a permit taken by tryAcquire() (CallPolicy's attempts).
  #settlePermit(permit, value, isError) {
    const ignore = isError ? this.#ignore : undefined
    const isFailure = isError ? this.#isFailure : this.#isResultFailure
    let outcome
    try {
      outcome = classify(ignore, isFailure, value, isError)
    } catch (classifierError) {
      permit.ignore()
      throw classifierError
    }
    if (outcome === SUCCESS) permit.success()
    else if (outcome === FAILURE) permit.failure()
    else permit.ignore()
  }
}

const RESOLVED = Promise.resolve()

/**
 * A promise rejected with `error` once its caller has had the chance to await it: rejecting
 * before anyone listens makes Node track it as a possibly unhandled rejection and then untrack
 * it, which cost more than the rest of a rejection. (A V8 reaction job, not queueMicrotask,
 * which wraps every callback in an async resource.)
 */
function rejectLater(error) {
  return new Promise((resolve, reject) => {
    RESOLVED.then(() => reject(error))
  })
}

shapes.permit = new Permit({}, 0.5, 0.5)

module.exports = { CircuitBreaker, Permit, settleCallOutcome }
