'use strict'

// Every error class Seawall throws, and the helpers that build argument errors. Each class has a
// stable `code`; the native side throws plain errors carrying those codes (see src/error.rs) and
// the facade turns the ones that need a class (snapshots, headers) into instances of it.

/** Base class of every error Seawall throws for its own reasons; `code` is stable. */
class SeawallError extends Error {
  /**
   * @param {string} message
   * @param {string} code
   * @param {ErrorOptions} [options]
   */
  constructor(message, code, options) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** The breaker did not let the call through. */
class BreakerOpenError extends SeawallError {
  /**
   * @param {'open' | 'half_open_full' | 'forced_open'} reason
   * @param {number | null} retryAfterMs
   * @param {string} [breakerName]
   */
  constructor(reason, retryAfterMs, breakerName) {
    const who = breakerName === undefined ? 'circuit breaker' : `circuit breaker "${breakerName}"`
    let message
    if (reason === 'open') {
      message = retryAfterMs === null ? `${who} is open` : `${who} is open; retry after ${Math.ceil(retryAfterMs)} ms`
    } else if (reason === 'half_open_full') {
      message = `${who} is half-open and all its probe calls are in flight`
    } else {
      message = `${who} was forced open`
    }
    super(message, 'SEAWALL_BREAKER_OPEN')
    this.reason = reason
    this.retryAfterMs = retryAfterMs
  }
}

/** A snapshot given to `restore` / `fromJSON` that cannot be restored. */
class SnapshotError extends SeawallError {
  /**
   * @param {string} message
   * @param {'malformed' | 'unsupported_version'} reason
   * @param {ErrorOptions} [options]
   */
  constructor(message, reason, options) {
    super(message, 'SEAWALL_INVALID_SNAPSHOT', options)
    this.reason = reason
  }
}

/** Work did not finish within its time and was cancelled (its AbortSignal aborted). */
class DeadlineExceededError extends SeawallError {
  /** @param {number} timeoutMs the time the work was given */
  constructor(timeoutMs) {
    // The core's wording (seawall-core DeadlineExceeded), so logs read alike in every language.
    super(`deadline exceeded: the call was cancelled after ${Math.floor(timeoutMs)} ms`, 'SEAWALL_DEADLINE_EXCEEDED')
    this.timeoutMs = timeoutMs
  }
}

/** Too little of the budget was left to start a call; the call was not made. */
class BudgetExhaustedError extends SeawallError {
  /**
   * @param {number} remainingMs
   * @param {number} minToStartMs
   */
  constructor(remainingMs, minToStartMs) {
    super(
      `budget exhausted: ${Math.floor(remainingMs)} ms left, a call needs at least ${Math.floor(minToStartMs)} ms to start`,
      'SEAWALL_BUDGET_EXHAUSTED',
    )
    this.remainingMs = remainingMs
    this.minToStartMs = minToStartMs
  }
}

/** The shared retry budget refused a retry; `cause` is the last attempt's error. */
class RetryBudgetExhaustedError extends SeawallError {
  /** @param {unknown} lastError */
  constructor(lastError) {
    const last = lastError instanceof Error ? lastError.message : String(lastError)
    super(`retry budget exhausted; last failure: ${last}`, 'SEAWALL_RETRY_BUDGET_EXHAUSTED', { cause: lastError })
  }
}

/** A received deadline header value that is not a timeout. */
class InvalidHeaderError extends SeawallError {
  /**
   * @param {string} message
   * @param {'grpc-timeout' | 'timeout-ms'} header
   * @param {string} value
   * @param {string} reason
   */
  constructor(message, header, value, reason) {
    super(message, 'SEAWALL_INVALID_HEADER')
    this.header = header
    this.value = value
    this.reason = reason
  }
}

/** No connection became free within the acquire timeout. */
class PoolTimeoutError extends SeawallError {
  /**
   * @param {string} message
   * @param {{ waitedMs: number, inUse: number, idle: number, waiting: number, oldestCheckoutAgeMs: number | null }} details
   */
  constructor(message, details) {
    super(message, 'SEAWALL_POOL_TIMEOUT')
    this.waitedMs = details.waitedMs
    this.inUse = details.inUse
    this.idle = details.idle
    this.waiting = details.waiting
    this.oldestCheckoutAgeMs = details.oldestCheckoutAgeMs
  }
}

/** The pool's waiter queue was full: the acquire failed at once instead of queueing. */
class PoolOverloadedError extends SeawallError {
  /**
   * @param {string} message
   * @param {{ waiting: number, maxWaiters: number }} details
   */
  constructor(message, details) {
    super(message, 'SEAWALL_POOL_OVERLOADED')
    this.waiting = details.waiting
    this.maxWaiters = details.maxWaiters
  }
}

/** Connection attempts kept failing while the caller waited; `cause` is the last one's error. */
class ConnectFailedError extends SeawallError {
  /**
   * @param {string} message
   * @param {{ attempts: number, lastError: string }} details
   * @param {ErrorOptions} [options]
   */
  constructor(message, details, options) {
    super(message, 'SEAWALL_CONNECT_FAILED', options)
    this.attempts = details.attempts
    this.lastError = details.lastError
  }
}

/**
 * The breaker guarding the pool's connection attempts is open: the database is considered down
 * and no attempt is made until `retryAfterMs` has passed. `cause` is the last connection error.
 */
class DatabaseUnavailableError extends SeawallError {
  /**
   * @param {string} message
   * @param {{ retryAfterMs: number | null, lastError: string | null }} details
   * @param {ErrorOptions} [options]
   */
  constructor(message, details, options) {
    super(message, 'SEAWALL_DATABASE_UNAVAILABLE', options)
    this.retryAfterMs = details.retryAfterMs
    this.lastError = details.lastError
  }
}

/** The pool is draining or closed. */
class PoolClosedError extends SeawallError {
  constructor(message = 'pool is closed') {
    super(message, 'SEAWALL_POOL_CLOSED')
  }
}

/**
 * A connection given back (or used) in a way that could touch someone else's checkout: released
 * twice, not acquired from this pool, or used after being released.
 */
class PoolReleaseError extends SeawallError {
  /**
   * @param {string} message
   * @param {'unknown' | 'already_released' | 'used_after_release'} reason
   */
  constructor(message, reason) {
    super(message, 'SEAWALL_POOL_RELEASE')
    this.reason = reason
  }
}

/**
 * Builds an error without capturing a stack trace. For rejections on hot paths (an exhausted
 * budget refusing thousands of calls a second during an incident): capturing a stack costs
 * microseconds, and for an error created by a timer or after an `await` it would only show
 * Seawall's own frames. The result is still a proper `Error` (built by its constructor, so
 * `util.types.isNativeError` holds), whose `stack` is its first line, `Name: message`.
 *
 * `Error.stackTraceLimit` is made a non-number rather than 0 while the error is built: Node asks
 * V8 to keep up to 10 frames of every error for uncaught-exception reports, which V8 captures
 * even with a limit of 0 (half of a `new Error`'s cost on Node 20); a non-number limit turns
 * all capture off, and `stack` is then set here to what a limit of 0 would have given.
 * @template T
 * @param {() => T} make
 * @returns {T}
 */
function withoutStack(make) {
  const limit = Error.stackTraceLimit
  try {
    Error.stackTraceLimit = undefined
  } catch {
    // A frozen `Error` (a hardened realm): pay for the stack rather than fail.
    return make()
  }
  let error
  try {
    error = make()
  } finally {
    Error.stackTraceLimit = limit
  }
  if (error instanceof Error && error.stack === undefined) error.stack = errorHeader(error)
  return error
}

// The first line of an error's stack, as V8 writes it (Error.prototype.toString's algorithm).
function errorHeader(error) {
  const name = error.name === undefined ? 'Error' : String(error.name)
  const message = error.message === undefined ? '' : String(error.message)
  if (name === '') return message
  if (message === '') return name
  return `${name}: ${message}`
}

function typeName(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

function withCode(error, code, field) {
  error.code = code
  if (field !== undefined) error.field = field
  return error
}

function optionTypeError(field, expected, v) {
  return withCode(new TypeError(`${field} must be ${expected}, got ${typeName(v)}`), 'SEAWALL_INVALID_CONFIG', field)
}

function argumentTypeError(field, expected, v) {
  return withCode(new TypeError(`${field} must be ${expected}, got ${typeName(v)}`), 'SEAWALL_INVALID_ARGUMENT', field)
}

/** `options` must be undefined or a plain object (not null, not an array). */
function checkOptionsObject(options, field = 'options') {
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw optionTypeError(field, 'an object', options)
  }
}

function checkFunction(field, v) {
  if (v !== undefined && typeof v !== 'function') throw optionTypeError(field, 'a function', v)
}

function checkMillis(name, v) {
  if (typeof v !== 'number') {
    throw withCode(new TypeError(`${name} must be a number, got ${typeName(v)}`), 'SEAWALL_INVALID_ARGUMENT')
  }
  if (!Number.isFinite(v) || v < 0) {
    throw withCode(
      new RangeError(`${name} must be a finite, non-negative number of milliseconds, got ${v}`),
      'SEAWALL_INVALID_ARGUMENT',
    )
  }
}

// Reports an exception from a user callback (a listener) the way Node reports one from any
// callback (an uncaughtException) without letting it change the call that ran the callback.
function reportCallbackError(error) {
  process.nextTick(() => {
    throw error
  })
}

module.exports = {
  SeawallError,
  BreakerOpenError,
  SnapshotError,
  DeadlineExceededError,
  BudgetExhaustedError,
  RetryBudgetExhaustedError,
  InvalidHeaderError,
  PoolTimeoutError,
  PoolOverloadedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  PoolClosedError,
  PoolReleaseError,
  withoutStack,
  typeName,
  withCode,
  optionTypeError,
  argumentTypeError,
  checkOptionsObject,
  checkFunction,
  checkMillis,
  reportCallbackError,
}
