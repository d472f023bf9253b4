'use strict'

// The listeners of a CircuitBreaker or a Pool: what their `on`, `once`, `off` and events do.
// (MemoryWatchdog is an EventEmitter instead: its 'error' event follows Node's convention.)

const { reportCallbackError } = require('./errors.js')

class Listeners {
  /** Each event's registrations, `{ listener, once }`, oldest first. */
  byEvent
  #check

  /**
   * @param {string[]} events
   * @param {(event: unknown, listener: unknown) => void} check throws, in the owner's words,
   *   for an unknown event or a listener that is not a function
   */
  constructor(events, check) {
    this.byEvent = Object.fromEntries(events.map((event) => [event, []]))
    this.#check = check
  }

  add(event, listener, once) {
    this.#check(event, listener)
    this.byEvent[event].push({ listener, once })
  }

  /** Removes the most recently added registration of `listener` for `event`. */
  remove(event, listener) {
    this.#check(event, listener)
    const list = this.byEvent[event]
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].listener === listener) {
        list.splice(i, 1)
        break
      }
    }
  }

  /** Calls the listeners of `event` with `target` as `this`; none can stop the others. */
  emit(target, event, payload) {
    const list = this.byEvent[event]
    if (list.length === 0) return
    // A listener may add or remove listeners; this emission goes to those registered now.
    for (const entry of list.slice()) {
      if (entry.once) {
        const i = list.indexOf(entry)
        if (i === -1) continue
        list.splice(i, 1)
      }
      try {
        entry.listener.call(target, payload)
      } catch (error) {
        reportCallbackError(error)
      }
    }
  }
}

module.exports = { Listeners }
