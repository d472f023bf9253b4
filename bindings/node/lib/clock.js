'use strict'

// Clocks: every primitive reads time through an object with `now()` in milliseconds
// (`performance` by default), and tests substitute a ManualClock.

const { checkMillis, optionTypeError, reportCallbackError, typeName, withCode } = require('./errors.js')

// Lets a pool hear when a ManualClock moves, so that its timers fire on the manual timeline.
const WATCH = Symbol('seawall.watchClock')

/**
 * A clock that moves only when told to, for tests: pass it as the `clock` option and move
 * breakers, budgets, retry budgets and pools through time without sleeping. A pool reading it
 * runs its due timers (acquire timeouts, idle timeouts, leak reports, …) as the clock moves.
 */
class ManualClock {
  #nowMs
  /** @type {Set<() => void>} */
  #watchers = new Set()

  /** @param {number} [startMs=0] */
  constructor(startMs = 0) {
    checkMillis('startMs', startMs)
    this.#nowMs = startMs
  }

  /** The current time in milliseconds. */
  now() {
    return this.#nowMs
  }

  /** Moves the clock forward by `ms` and returns the new time. */
  advance(ms) {
    checkMillis('ms', ms)
    this.#nowMs += ms
    this.#moved()
    return this.#nowMs
  }

  /** Sets the clock to `ms` (moving back is allowed, though rarely what a test means). */
  set(ms) {
    checkMillis('ms', ms)
    this.#nowMs = ms
    this.#moved()
  }

  /**
   * Calls `fn` after every move of this clock, until the returned function is called.
   * @internal
   * @param {() => void} fn
   */
  [WATCH](fn) {
    this.#watchers.add(fn)
    return () => this.#watchers.delete(fn)
  }

  #moved() {
    if (this.#watchers.size === 0) return
    for (const fn of [...this.#watchers]) {
      try {
        fn()
      } catch (error) {
        reportCallbackError(error)
      }
    }
  }
}

/** The `clock` option: undefined (the default clock) or an object with a `now()` method. */
function checkClockOption(clock) {
  if (clock !== undefined && (clock === null || typeof clock.now !== 'function')) {
    throw optionTypeError('clock', 'an object with a now() method', clock)
  }
}

/** Reads `clock`; a reading that is not a number is a TypeError (the core checks the range). */
function readClock(clock) {
  const t = clock.now()
  if (typeof t !== 'number') {
    throw withCode(new TypeError(`clock.now() must return a number, got ${typeName(t)}`), 'SEAWALL_INVALID_CLOCK')
  }
  return t
}

module.exports = { ManualClock, WATCH, checkClockOption, readClock }
