'use strict'

// Clocks: every primitive reads time through an object with `now()` in milliseconds
// (`performance` by default), and tests substitute a ManualClock.

const { checkMillis, optionTypeError, typeName, withCode } = require('./errors.js')

/**
 * A clock that moves only when told to, for tests: pass it as the `clock` option and move
 * breakers, budgets and retry budgets through time without sleeping.
 */
class ManualClock {
  #nowMs

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
    return this.#nowMs
  }

  /** Sets the clock to `ms` (moving back is allowed, though rarely what a test means). */
  set(ms) {
    checkMillis('ms', ms)
    this.#nowMs = ms
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

module.exports = { ManualClock, checkClockOption, readClock }
