'use strict'

// CircuitBreaker and Permit. Every decision (admit, reject, open, close, validate) is one
// synchronous call into the Rust core; events, classification callbacks and the clock live here.
// Nothing here keeps a timer or a handle, and the native side holds no JS callback, so a
// process that created breakers exits by itself.
//
// The native hot path is two module functions taking the breaker's slot and returning numbers,
// not objects (see bindings/node/src/breaker.rs for why): `acquire(slot, now)` gives
// `token * 2 + pending` (≥ 0) or `-(1 + reason * 2 + pending)`, and `record(slot, …)` gives
// `pending`; `pending` means state changes wait in the core's queue, which is drained (and
// emitted as `stateChange`) only then.

const native = require('../native.js')
const { readClock, checkClockOption } = require('./clock.js')
const {
  BreakerOpenError,
  SnapshotError,
  checkFunction,
  checkOptionsObject,
  optionTypeError,
  reportCallbackError,
  typeName,
  withCode,
  withoutStack,
} = require('./errors.js')

const { NativeBreaker } = native

const STATES = ['closed', 'open', 'half_open', 'forced_open', 'disabled', 'metrics_only']
const REJECTION_REASONS = ['open', 'half_open_full', 'forced_open']
const SUCCESS = 0
const FAILURE = 1
const IGNORED = 2
const EVENTS = ['stateChange', 'reject']

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
  #clock
  #name
  #isFailure
  #ignore
  #isResultFailure
  #listeners = { stateChange: [], reject: [] }

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
    // The native constructor reads the numeric options and ignores the keys above.
    this.#native = new NativeBreaker(options)
    this.#slot = this.#native.slot
    this.#clock = clock ?? globalThis.performance
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
   */
  async run(fn, ...args) {
    if (typeof fn !== 'function') {
      throw withCode(new TypeError(`fn must be a function, got ${typeName(fn)}`), 'SEAWALL_INVALID_ARGUMENT')
    }
    const startedMs = this.#now()
    const code = native.acquire(this.#slot, startedMs)
    if (code < 0) throw this.#rejected(code)
    if (code % 2 === 1) this.#emitTransitions()
    const token = Math.floor(code / 2)
    let result
    try {
      result = await fn(...args)
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
    const startedMs = this.#now()
    const code = native.acquire(this.#slot, startedMs)
    if (code < 0) throw this.#rejected(code)
    if (code % 2 === 1) this.#emitTransitions()
    return new Permit(this, Math.floor(code / 2), startedMs)
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
    this.#listenersOf(event, listener).push({ listener, once: false })
    return this
  }

  /** Calls `listener` on the next `event` only. */
  once(event, listener) {
    this.#listenersOf(event, listener).push({ listener, once: true })
    return this
  }

  /** Removes the most recently added registration of `listener` for `event`. */
  off(event, listener) {
    const list = this.#listenersOf(event, listener)
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].listener === listener) {
        list.splice(i, 1)
        break
      }
    }
    return this
  }

  #listenersOf(event, listener) {
    if (!EVENTS.includes(event)) {
      throw withCode(
        new RangeError(`event must be 'stateChange' or 'reject', got ${JSON.stringify(String(event))}`),
        'SEAWALL_INVALID_ARGUMENT',
      )
    }
    if (typeof listener !== 'function') {
      throw withCode(new TypeError(`listener must be a function, got ${typeName(listener)}`), 'SEAWALL_INVALID_ARGUMENT')
    }
    return this.#listeners[event]
  }

  #emit(event, payload) {
    const list = this.#listeners[event]
    if (list.length === 0) return
    // A listener may add or remove listeners; this emission goes to those registered now.
    for (const entry of list.slice()) {
      if (entry.once) {
        const i = list.indexOf(entry)
        if (i === -1) continue
        list.splice(i, 1)
      }
      try {
        entry.listener.call(this, payload)
      } catch (error) {
        reportCallbackError(error)
      }
    }
  }

  #emitTransitions() {
    const transitions = this.#native.takeTransitions()
    for (const t of transitions) this.#emit('stateChange', t)
  }

  #now() {
    return readClock(this.#clock)
  }

  #rejected(code) {
    const c = -code - 1
    const reason = REJECTION_REASONS[c >> 1]
    const retryAfterMs = this.#native.lastRetryAfterMs()
    if (c & 1) this.#emitTransitions()
    this.#emit('reject', { reason, retryAfterMs })
    // Without a stack: capturing one is most of a rejection's cost (~4 µs), and where the
    // rejection happened is the breaker's name and reason, not the frames. Still a real Error.
    return withoutStack(() => new BreakerOpenError(reason, retryAfterMs, this.#name))
  }

  // Always settles the permit: if the clock cannot be read (it threw, or gave NaN), the call is
  // recorded as ignored, since its duration is unknown, so that no half-open probe slot is
  // lost; then the clock's error is rethrown.
  #record(token, startedMs, outcome) {
    let pending
    try {
      pending = native.record(this.#slot, token, startedMs, outcome, this.#now())
    } catch (error) {
      try {
        pending = native.record(this.#slot, token, startedMs, IGNORED, startedMs)
      } catch {
        // Cannot fail (startedMs was accepted at admission); if it did, the first error says more.
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

module.exports = { CircuitBreaker, Permit, settleCallOutcome }
