'use strict'

// PoolEngine: the pool's sans-IO engine as a public class, for people writing their own adapter
// (and for the conformance replayer). It does no I/O and reads no clock: every method takes the
// time, and `pollAction()` / `pollEvent()` / `pollTimeout()` say what the adapter must do next.
// `Pool` (pool.js) is the adapter Seawall ships; it calls the same native functions directly.
//
// The native side (bindings/node/src/pool.rs) returns numbers; this module turns them into the
// plain objects and typed errors users see. Both adapters share the decoding below.

const native = require('../native.js')
const { Budget, internals } = require('./budget.js')
const {
  BudgetExhaustedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  PoolClosedError,
  PoolOverloadedError,
  PoolTimeoutError,
  argumentTypeError,
  checkMillis,
  checkOptionsObject,
  typeName,
  withCode,
} = require('./errors.js')

const { NativePool } = native
const { poolAcquireWith } = internals

/** `pending` bits of the native results (see src/pool.rs). */
const ACTIONS = 1
const EVENTS = 2
const REARM = 4
/** Ids are multiplied by this in the acquire result, `pending` added. */
const PENDING_SPAN = 8

/** Action codes: the first of the four numbers of each action. */
const CREATE = 0
const VALIDATE = 1
const DESTROY = 2
const HAND = 3
const FAIL = 4

/** Destroy reasons, by code. */
const DESTROY_REASONS = ['broken', 'invalid', 'idle_timeout', 'expired', 'resized', 'closed', 'create_timed_out', 'stale']

/**
 * The typed error for a native pool error (`kind` and details). `cause`, when known, is the
 * JavaScript error of the last failed connection attempt.
 */
function errorFromNative(n, cause) {
  const options = cause === undefined ? undefined : { cause }
  switch (n.kind) {
    case 'timeout':
      return new PoolTimeoutError(n.message, {
        waitedMs: n.waitedMs,
        inUse: n.inUse,
        idle: n.idle,
        waiting: n.waiting,
        oldestCheckoutAgeMs: n.oldestCheckoutAgeMs ?? null,
      })
    case 'overloaded':
      return new PoolOverloadedError(n.message, { waiting: n.waiting, maxWaiters: n.maxWaiters })
    case 'connect_failed':
      return new ConnectFailedError(n.message, { attempts: n.attempts, lastError: n.error }, options)
    case 'database_unavailable':
      return new DatabaseUnavailableError(
        n.message,
        { retryAfterMs: n.retryAfterMs ?? null, lastError: n.lastError ?? null },
        n.lastError == null ? undefined : options,
      )
    case 'budget_exhausted':
      return new BudgetExhaustedError(n.remainingMs, n.minToStartMs)
    case 'closed':
      return new PoolClosedError(n.message)
    default:
      throw withCode(new Error(`unknown pool error kind ${JSON.stringify(n.kind)}`), 'SEAWALL_INTERNAL')
  }
}

function histogram(h) {
  return { count: h.count, sumMs: h.sumMs, maxMs: h.maxMs, p50Ms: h.p50Ms, p90Ms: h.p90Ms, p99Ms: h.p99Ms }
}

/** The public shape of the native metrics (absent optional values become null). */
function shapeMetrics(m) {
  return {
    idle: m.idle,
    used: m.used,
    creating: m.creating,
    max: m.max,
    idleMax: m.idleMax,
    idleMin: m.idleMin,
    pendingRequests: m.pendingRequests,
    timeouts: m.timeouts,
    acquired: m.acquired,
    released: m.released,
    overloaded: m.overloaded,
    unavailable: m.unavailable,
    created: m.created,
    createFailures: m.createFailures,
    destroyed: m.destroyed,
    leaks: m.leaks,
    createTime: histogram(m.createTime),
    waitTime: histogram(m.waitTime),
    useTime: histogram(m.useTime),
    breakerState: m.breakerState,
    oldestCheckoutAgeMs: m.oldestCheckoutAgeMs ?? null,
  }
}

/** The public shape of a native event. */
function shapeEvent(e) {
  switch (e.kind) {
    case 'leak':
    case 'leakReturned':
      return { kind: e.kind, slot: e.slot, heldForMs: e.heldForMs }
    case 'breaker':
      return { kind: 'breaker', from: e.from, to: e.to, reason: e.reason }
    case 'connectFailed':
      return { kind: 'connectFailed', error: e.error, attempts: e.attempts }
    default:
      return { kind: 'drained', stillHeld: e.stillHeld }
  }
}

/** An id argument (slot, waiter, checkout): a non-negative safe integer. */
function checkId(name, v) {
  if (typeof v !== 'number') throw argumentTypeError(name, 'a non-negative integer', v)
  if (!Number.isSafeInteger(v) || v < 0) {
    throw withCode(new RangeError(`${name} must be a non-negative integer, got ${v}`), 'SEAWALL_INVALID_ARGUMENT', name)
  }
}

function checkBoolean(name, v) {
  if (typeof v !== 'boolean') throw argumentTypeError(name, 'a boolean', v)
}

function checkLease(lease) {
  if (lease === null || typeof lease !== 'object') throw argumentTypeError('lease', 'an object { slot, checkout }', lease)
  checkId('lease.slot', lease.slot)
  checkId('lease.checkout', lease.checkout)
}

/**
 * The pool engine, sans-IO: the same decisions as `Pool` and as Seawall's Rust and Python pools,
 * with the I/O left to the caller. Drive it like this: call a command (`acquire`, `release`,
 * `cancel`, `drain`, `resize`) or report what happened (`handleCreated`, `handleCreateFailed`,
 * `handleValidated`, `handleBroken`, `handleTimeout`), then perform every `pollAction()` until it returns null,
 * tell operators about every `pollEvent()`, and arm one timer for `pollTimeout()`.
 */
class PoolEngine {
  #native
  #slot
  /** Actions taken from the native side and not yet polled. */
  #actions = []
  #nextAction = 0
  #events = []
  #nextEvent = 0

  /** @param {import('../index').PoolEngineOptions} [options] */
  constructor(options) {
    checkOptionsObject(options)
    this.#native = new NativePool(options)
    this.#slot = this.#native.slot
  }

  /**
   * Asks for a connection at `nowMs`. Returns `{ kind: 'ready', lease }` (the connection of
   * `lease.slot` is the caller's) or `{ kind: 'wait', waiter }` (a `hand` or `fail` action for
   * `waiter` will follow). Throws the pool's typed errors when it refuses at once.
   */
  acquire(options) {
    if (options === null || typeof options !== 'object') throw argumentTypeError('options', 'an object', options)
    const { nowMs, budget } = options
    checkMillis('nowMs', nowMs)
    if (budget !== undefined && !(budget instanceof Budget)) throw argumentTypeError('budget', 'a Budget', budget)
    const code = budget === undefined ? native.poolAcquire(this.#slot, nowMs) : poolAcquireWith(budget, this.#slot, nowMs)
    if (code >= 0) {
      const slot = Math.floor(code / PENDING_SPAN)
      return { kind: 'ready', lease: { slot, checkout: native.poolCheckoutOf(this.#slot, slot) } }
    }
    const waiter = Math.floor((-code - 1) / PENDING_SPAN)
    if (waiter === 0) throw errorFromNative(native.poolTakeError(this.#slot))
    return { kind: 'wait', waiter }
  }

  /**
   * Returns a checkout. A `broken` connection is destroyed, never reused. Returns false (and
   * does nothing) for a lease that is not checked out: released twice, or closed meanwhile.
   */
  release(lease, options) {
    checkLease(lease)
    if (options === null || typeof options !== 'object') throw argumentTypeError('options', 'an object', options)
    const { broken = false, nowMs } = options
    checkBoolean('broken', broken)
    checkMillis('nowMs', nowMs)
    return native.poolRelease(this.#slot, lease.slot, lease.checkout, broken, nowMs) >= 0
  }

  /** The caller `waiter` gave up. False when it had already been served or failed. */
  cancel(waiter, nowMs) {
    checkId('waiter', waiter)
    checkMillis('nowMs', nowMs)
    return (native.poolCancel(this.#slot, waiter, nowMs) & 1) === 1
  }

  /** The create of `slot` succeeded: the adapter now holds its connection. */
  handleCreated(slot, nowMs) {
    checkId('slot', slot)
    checkMillis('nowMs', nowMs)
    native.poolHandleCreated(this.#slot, slot, nowMs)
  }

  /** The create of `slot` failed with `error` (a description, shown in errors and events). */
  handleCreateFailed(slot, error, nowMs) {
    checkId('slot', slot)
    if (typeof error !== 'string') throw argumentTypeError('error', 'a string', error)
    checkMillis('nowMs', nowMs)
    native.poolHandleCreateFailed(this.#slot, slot, error, nowMs)
  }

  /** The validation of `slot` finished: `ok` says whether the connection works. */
  handleValidated(slot, ok, nowMs) {
    checkId('slot', slot)
    checkBoolean('ok', ok)
    checkMillis('nowMs', nowMs)
    native.poolHandleValidated(this.#slot, slot, ok, nowMs)
  }

  /**
   * The connection of `slot` is dead (its client reported an error): closed at once if idle,
   * failed if being validated, closed when it comes back if checked out.
   */
  handleBroken(slot, nowMs) {
    checkId('slot', slot)
    checkMillis('nowMs', nowMs)
    native.poolHandleBroken(this.#slot, slot, nowMs)
  }

  /** The timer fired: applies every decision due at `nowMs`. */
  handleTimeout(nowMs) {
    checkMillis('nowMs', nowMs)
    native.poolHandleTimeout(this.#slot, nowMs)
  }

  /**
   * Stops handing out connections: waiters fail, idle connections close, checkouts close as
   * they come back, and whatever is still out at `deadlineMs` is closed and reported in a
   * `drained` event.
   */
  drain(nowMs, deadlineMs) {
    checkMillis('nowMs', nowMs)
    checkMillis('deadlineMs', deadlineMs)
    native.poolDrain(this.#slot, nowMs, deadlineMs)
  }

  /** Changes the maximum size; a RangeError outside [1, 10000]. */
  resize(maxSize, nowMs) {
    if (typeof maxSize !== 'number') throw argumentTypeError('maxSize', 'a number', maxSize)
    checkMillis('nowMs', nowMs)
    native.poolResize(this.#slot, maxSize, nowMs)
  }

  /** The next action to perform, or null when there is none. */
  pollAction() {
    if (this.#nextAction === this.#actions.length) {
      this.#actions = this.#takeActions()
      this.#nextAction = 0
      if (this.#actions.length === 0) return null
    }
    return this.#actions[this.#nextAction++]
  }

  /** The next event, or null when there is none. */
  pollEvent() {
    if (this.#nextEvent === this.#events.length) {
      this.#events = native.poolTakeEvents(this.#slot).map(shapeEvent)
      this.#nextEvent = 0
      if (this.#events.length === 0) return null
    }
    return this.#events[this.#nextEvent++]
  }

  /** When (in ms, on the caller's timeline) the engine next wants `handleTimeout`; null: never. */
  pollTimeout() {
    const t = native.poolNextTimeout(this.#slot)
    return t < 0 ? null : t
  }

  /** The pool's numbers at `nowMs`. */
  metrics(nowMs) {
    checkMillis('nowMs', nowMs)
    return shapeMetrics(native.poolMetrics(this.#slot, nowMs))
  }

  /** Whether a drain has finished. */
  get isClosed() {
    return native.poolIsClosed(this.#slot)
  }

  #takeActions() {
    const flat = native.poolTakeActions(this.#slot)
    const out = []
    let failures
    let nextFailure = 0
    for (let i = 0; i < flat.length; i += 4) {
      const a = flat[i + 1]
      switch (flat[i]) {
        case CREATE:
          out.push({ kind: 'create', slot: a, deadlineMs: flat[i + 2] })
          break
        case VALIDATE:
          out.push({ kind: 'validate', slot: a })
          break
        case DESTROY:
          out.push({ kind: 'destroy', slot: a, reason: DESTROY_REASONS[flat[i + 2]] })
          break
        case HAND:
          out.push({ kind: 'hand', waiter: a, lease: { slot: flat[i + 2], checkout: flat[i + 3] } })
          break
        case FAIL:
          failures ??= native.poolTakeFailures(this.#slot)
          out.push({ kind: 'fail', waiter: a, error: errorFromNative(failures[nextFailure++]) })
          break
        default:
          throw withCode(new Error(`unknown pool action code ${typeName(flat[i])} ${flat[i]}`), 'SEAWALL_INTERNAL')
      }
    }
    return out
  }
}

module.exports = {
  PoolEngine,
  ACTIONS,
  EVENTS,
  REARM,
  PENDING_SPAN,
  CREATE,
  VALIDATE,
  DESTROY,
  HAND,
  FAIL,
  DESTROY_REASONS,
  errorFromNative,
  shapeMetrics,
  checkBoolean,
}
