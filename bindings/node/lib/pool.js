'use strict'

// Pool: the connection pool adapter on Promises and AbortSignals. Every decision (which caller
// gets which connection, when to open, validate or close one, when a wait or a create has
// lasted too long, whether the database is down) is the engine's, in the Rust core, the same
// one as in Rust and Python (src/pool.rs). This file performs what the engine asks: it calls
// the user's create / validate / destroy, settles waiting callers, emits events, and keeps one
// timer for the engine's next timeout.
//
// Connection objects never cross into Rust: they stay in `#conns`, keyed by the engine's slot
// id. Each checkout is handed out as its own Proxy of the connection, whose handler is the
// Checkout itself (see `Checkout`), so that `release(conn)` knows which checkout it ends: a
// stale handle (released already) can never return the checkout of whoever holds that
// connection now.
//
// After every native call the result's `pending` bits say whether actions, events or a timer
// change wait (see src/pool.rs); `#bits` performs them, iteratively, so that a user callback
// calling back into the pool never recurses.
//
// The timer is unref'd while nobody waits on the pool, so a process with idle connections exits
// by itself (their sockets, if any, are the user's to close: `drain()`); it is ref'd while a
// caller waits for a connection or a drain is under way, since those are promises someone awaits.

const native = require('../native.js')
const { Budget, internals } = require('./budget.js')
const { ManualClock, WATCH, checkClockOption, readClock } = require('./clock.js')
const {
  DeadlineExceededError,
  PoolClosedError,
  PoolReleaseError,
  argumentTypeError,
  checkFunction,
  checkMillis,
  optionTypeError,
  reportCallbackError,
  typeName,
  withCode,
  withoutStack,
} = require('./errors.js')
const { Listeners } = require('./listeners.js')
const {
  ACTIONS,
  CREATE,
  DESTROY,
  DESTROY_REASONS,
  EVENTS,
  FAIL,
  HAND,
  PENDING_SPAN,
  REARM,
  VALIDATE,
  checkBoolean,
  errorFromNative,
  shapeMetrics,
} = require('./pool-engine.js')

const { NativePool } = native
// `poolAcquireNow` and `poolReleaseNow` as plain N-API callbacks (src/pool.rs): the same
// results and errors, without the per-call bookkeeping of napi-rs's generated wrappers.
const { acquire: poolAcquireNow, release: poolReleaseNow } = native.poolHotFunctions()
const { poolAcquireWith } = internals

const EVENT_NAMES = ['leak', 'leakReturned', 'breaker', 'connectFailed', 'drained']

function checkListener(event, listener) {
  if (!EVENT_NAMES.includes(event)) {
    throw withCode(
      new RangeError(`event must be one of ${EVENT_NAMES.map((n) => `'${n}'`).join(', ')}, got ${JSON.stringify(String(event))}`),
      'SEAWALL_INVALID_ARGUMENT',
    )
  }
  if (typeof listener !== 'function') throw argumentTypeError('listener', 'a function', listener)
}
// setTimeout's limit; past it Node fires after 1 ms instead (with a warning).
const MAX_TIMER_MS = 2 ** 31 - 1
/** How long `drain()` waits for checkouts to come back when not told. */
const DEFAULT_DRAIN_TIMEOUT_MS = 5000
/** Timers a ManualClock move may fire in a row (each one moves the engine's next timeout on). */
const MAX_MANUAL_FIRES = 1000

/** A connection slot's life in the adapter. */
const CREATING = 0
const READY = 1
const VALIDATING = 2

/** What the adapter knows of one slot: its connection and who holds it. */
class Slot {
  state = CREATING
  conn = undefined
  /** The connection was reported unusable (`markBroken`): its next release is a broken one. */
  broken = false
  /** The engine gave up on the create (timed out, or the pool closed). */
  abandoned = false
  /** @type {Checkout | null} */
  checkout = null
  /** @type {AbortController | undefined} */
  controller = undefined
  abortReason = undefined

  /**
   * @param {number} id the engine's slot id
   * @param {number} createTimeoutMs the time the engine gave the create
   */
  constructor(id, createTimeoutMs) {
    this.id = id
    this.createTimeoutMs = createTimeoutMs
  }

  get signal() {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      if (this.abandoned) this.controller.abort(this.abortReason)
    }
    return this.controller.signal
  }

  abandon(reason) {
    this.abandoned = true
    this.abortReason = reason
    this.controller?.abort(reason)
  }
}

/**
 * What `create` receives: the signal that aborts when the pool gives up on this connection
 * attempt, and `markBroken` to report, at any time of the connection's life, that it is unusable.
 */
class CreateContext {
  #slot

  /**
   * @param {Slot} slot
   * @param {() => void} reportBroken tells the engine, once the connection exists
   */
  constructor(slot, reportBroken) {
    this.#slot = slot
    /**
     * The connection is unusable (its socket died, say): idle, it is closed at once and never
     * handed out; checked out, its checkout ends as broken; being validated, the check fails.
     * Bound, so that it can be passed around (`client.on('error', …)`) or destructured.
     */
    this.markBroken = () => {
      if (slot.broken) return
      slot.broken = true
      reportBroken()
    }
  }

  /** Aborts when the pool abandons this attempt (create timeout, drain): stop connecting. */
  get signal() {
    return this.#slot.signal
  }
}

/** Read through a handle, answers its Checkout (see `Checkout#get`). */
const CHECKOUT = Symbol('seawall.checkout')

/**
 * The methods of each connection, bound to it, as handles hand them out (a handle's method
 * must run on the connection itself, so that `#private` fields and internal slots work).
 * @type {WeakMap<object, Map<PropertyKey, { original: Function, bound: Function }>>}
 */
const boundMethods = new WeakMap()

function usedAfterRelease() {
  return new PoolReleaseError(
    'this connection was released to the pool and may now be in use by someone else: acquire another one',
    'used_after_release',
  )
}

/**
 * One checkout of a connection, and the Proxy handler of the handle its holder gets. A handle
 * reads and writes the connection itself, hands out its methods bound to it, and refuses to be
 * used once its checkout is released; its identity is what `release()` recognises. Being the
 * handler, the checkout is found from the handle without a lookup table (a WeakMap entry per
 * checkout cost more than the rest of an acquire): reading `handle[CHECKOUT]` answers it.
 */
class Checkout {
  released = false
  /** Closed by the pool while out (the drain deadline passed). */
  closed = false
  leakReported = false

  /**
   * @param {Pool<unknown>} pool
   * @param {Slot} slot
   * @param {string | undefined} stack where it was acquired (when leaks are tracked)
   * @param {number} acquiredMs
   */
  constructor(pool, slot, stack, acquiredMs) {
    this.pool = pool
    this.slot = slot
    this.stack = stack
    this.acquiredMs = acquiredMs
  }

  /** The `get` trap of the handle. */
  get(target, key) {
    if (key === CHECKOUT) return this
    // `then` stays readable so that resolving a promise with a stale handle does not throw.
    if (this.released && typeof key === 'string' && key !== 'then') throw usedAfterRelease()
    const value = Reflect.get(target, key)
    if (typeof value !== 'function' || key === 'constructor') return value
    let methods = boundMethods.get(target)
    if (methods === undefined) {
      methods = new Map()
      boundMethods.set(target, methods)
    }
    const known = methods.get(key)
    if (known !== undefined && known.original === value) return known.bound
    // A proxy must report a non-writable, non-configurable own property as it is.
    const own = Reflect.getOwnPropertyDescriptor(target, key)
    const bound = own !== undefined && !own.configurable && !own.writable ? value : value.bind(target)
    methods.set(key, { original: value, bound })
    return bound
  }

  /** The `set` trap of the handle. */
  set(target, key, value) {
    if (this.released) throw usedAfterRelease()
    return Reflect.set(target, key, value)
  }
}

// A promise's settle functions, taken by an executor that is not a closure (one allocation
// less per wait): `new Promise(captureSettlers)` runs it at once.
let capturedResolve
let capturedReject
function captureSettlers(resolve, reject) {
  capturedResolve = resolve
  capturedReject = reject
}

/** A caller waiting for a connection. */
class Waiter {
  /** @type {AbortSignal | undefined} */
  signal = undefined
  onAbort = undefined

  constructor(resolve, reject, stack) {
    this.resolve = resolve
    this.reject = reject
    this.stack = stack
  }

  listen(signal, onAbort) {
    this.signal = signal
    this.onAbort = onAbort
    signal.addEventListener('abort', onAbort, { once: true })
  }

  unlisten() {
    if (this.signal !== undefined) this.signal.removeEventListener('abort', this.onAbort)
  }

  /** Lets go of what it holds, once served or failed (a pool keeps its latest waiter). */
  forget() {
    this.resolve = this.reject = this.onAbort = undefined
    this.signal = this.stack = undefined
  }
}

/** The frames above `above` (a function of this module), for leak reports. */
function captureStack(above) {
  const holder = {}
  Error.captureStackTrace(holder, above)
  // Drop the header line: what matters is where the caller was.
  return String(holder.stack).replace(/^[^\n]*\n/, '')
}

function describe(error) {
  if (error instanceof Error) return error.message || error.name
  return String(error)
}

/** Reads `{ budget, signal }` of `acquire()` and `use()`. */
function acquireOptions(options) {
  if (options === undefined) return { budget: undefined, signal: undefined }
  if (options === null || typeof options !== 'object') throw argumentTypeError('options', 'an object', options)
  const { budget, signal } = options
  if (budget !== undefined && !(budget instanceof Budget)) throw argumentTypeError('budget', 'a Budget', budget)
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw argumentTypeError('signal', 'an AbortSignal', signal)
  return { budget, signal }
}

/**
 * A connection pool: hard limits, a bounded FIFO wait queue, validation, lifetimes, leak
 * reports, and connection attempts guarded by a circuit breaker so that a database that is
 * down makes callers fail fast instead of piling up. Decisions are made by Seawall's Rust
 * core, identical to its Rust and Python pools.
 * @template C
 */
class Pool {
  #native
  #slot
  #clock
  #manual
  /** Stops the ManualClock watch. */
  #unwatch = undefined
  #lastNowMs = 0
  #create
  #destroy
  #validate
  #isBroken
  #trackLeaks
  /** @type {Map<number, Slot>} every slot the engine knows of, by id */
  #conns = new Map()
  /** @type {Map<number, Waiter>} */
  #waiters = new Map()
  /** Checkouts returned after a leak report, until their `leakReturned` event. */
  #returned = new Map()
  /** Checkouts the pool closed while they were out, for the drain's report. */
  #closedWhileOut = new Map()
  /** Closes in flight, which a drain waits for. */
  #closing = new Set()
  #lastCreateError = undefined
  /** The failed create being reported now, for its `connectFailed` event. */
  #createCause = undefined
  /**
   * The latest checkout and the latest waiter (emptied once served). V8 keeps the hidden class
   * (map) of the objects a class builds only through live instances; when a full GC finds none,
   * it discards the map and deoptimizes every function compiled against it (the whole acquire
   * and release path, for thousands of calls after each major GC). Keeping one of each here
   * keeps the maps for as long as the pool lives.
   */
  #lastCheckout = null
  #lastWaiter = null
  /**
   * Where the engine writes the actions it asks for (see #performActions), over its own
   * ArrayBuffer, which nothing else sees: the native side keeps writing to it.
   */
  #actions = new Float64Array(new ArrayBuffer((1 + 4 * 16) * Float64Array.BYTES_PER_ELEMENT))
  #pending = 0
  #pumping = false
  #timer = null
  #timerDue = -1
  #draining = false
  #drainPromise = null
  #resolveDrain = undefined
  #listeners = new Listeners(EVENT_NAMES, checkListener)

  /** @param {import('../index').PoolOptions<C>} options */
  constructor(options) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw optionTypeError('options', 'an object', options)
    }
    const { create, destroy, validate, isBroken, clock } = options
    if (typeof create !== 'function') throw optionTypeError('create', 'a function', create)
    checkFunction('destroy', destroy)
    checkFunction('validate', validate)
    checkFunction('isBroken', isBroken)
    checkClockOption(clock)
    // The native constructor reads the numeric options and ignores the keys above.
    this.#native = new NativePool(options)
    this.#slot = this.#native.slot
    native.poolSetActionArray(this.#slot, this.#actions)
    this.#clock = clock ?? globalThis.performance
    this.#manual = this.#clock instanceof ManualClock
    this.#create = create
    this.#destroy = destroy
    this.#validate = validate
    this.#isBroken = isBroken
    this.#trackLeaks = options.leakThresholdMs !== undefined && options.leakThresholdMs !== null
    if (this.#manual) this.#unwatch = this.#clock[WATCH](() => this.#onClockMoved())
    // The first timer call opens the `minIdle` connections.
    this.#bits(native.poolHandleTimeout(this.#slot, this.#now()) | REARM)
  }

  /**
   * A connection, once one is free: waits at most `acquireTimeoutMs`, or less when `budget`
   * ends sooner. An aborted `signal` ends the wait (the promise rejects with its reason).
   * Rejects with `PoolTimeoutError`, `PoolOverloadedError`, `ConnectFailedError`,
   * `DatabaseUnavailableError`, `BudgetExhaustedError` or `PoolClosedError`.
   * @returns {Promise<C>}
   */
  acquire(options) {
    try {
      const stack = this.#trackLeaks ? captureStack(this.acquire) : undefined
      if (options === undefined) return this.#acquire(undefined, undefined, stack)
      const { budget, signal } = acquireOptions(options)
      return this.#acquire(budget, signal, stack)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Gives a connection back. `broken: true` closes it instead of reusing it. Throws
   * `PoolReleaseError` for a connection released already or not acquired from this pool.
   */
  release(connection, options) {
    let broken = false
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw argumentTypeError('options', 'an object', options)
      if (options.broken !== undefined) {
        checkBoolean('broken', options.broken)
        broken = options.broken
      }
    }
    const checkout = this.#checkoutOf(connection)
    if (checkout === undefined) {
      throw new PoolReleaseError('release() was given a connection that was not acquired from this pool', 'unknown')
    }
    if (checkout.released) {
      throw new PoolReleaseError(
        'this connection was already released; releasing it again could return a checkout someone else now holds',
        'already_released',
      )
    }
    this.#giveBack(checkout, broken)
  }

  /**
   * Runs `fn(connection)` and always gives the connection back, as broken when `fn` throws an
   * error that the `isBroken` option says is fatal to the connection.
   * @template T
   * @param {(connection: C) => T | PromiseLike<T>} fn
   */
  async use(fn, options) {
    if (typeof fn !== 'function') throw argumentTypeError('fn', 'a function', fn)
    const { budget, signal } = acquireOptions(options)
    const connection = await this.#acquire(budget, signal, this.#trackLeaks ? captureStack(this.use) : undefined)
    const checkout = this.#checkoutOf(connection)
    let broken = false
    try {
      return await fn(connection)
    } catch (error) {
      if (this.#isBroken !== undefined) {
        try {
          broken = Boolean(this.#isBroken(error))
        } catch (classifierError) {
          // The connection's state is unknown: close it. The classifier's bug is what to see.
          broken = true
          throw classifierError
        }
      }
      throw error
    } finally {
      // `fn` may have released it itself; anything else would be a second release.
      if (checkout !== undefined && !checkout.released) this.#giveBack(checkout, broken)
    }
  }

  /**
   * Stops handing out connections: waiting callers fail with `PoolClosedError`, idle
   * connections close, checkouts close as they come back, and after `timeoutMs` (default
   * 5000) whatever is still out is closed. Resolves, once every close has finished, with what
   * was still held at the deadline (empty when everything came back).
   * @returns {Promise<import('../index').HeldConnection[]>}
   */
  drain(options) {
    if (this.#drainPromise !== null) return this.#drainPromise
    let timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS
    try {
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') throw argumentTypeError('options', 'an object', options)
        if (options.timeoutMs !== undefined) {
          checkMillis('timeoutMs', options.timeoutMs)
          timeoutMs = options.timeoutMs
        }
      }
      const now = this.#now()
      this.#drainPromise = new Promise((resolve) => {
        this.#resolveDrain = resolve
      })
      this.#draining = true
      this.#bits(native.poolDrain(this.#slot, now, now + timeoutMs))
      this.#syncRef()
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#drainPromise
  }

  /** Changes `maxSize`: growing serves waiters at once; shrinking closes idle connections now and checked-out ones as they come back. */
  resize(maxSize) {
    if (typeof maxSize !== 'number') throw argumentTypeError('maxSize', 'a number', maxSize)
    this.#bits(native.poolResize(this.#slot, maxSize, this.#now()))
  }

  /** The pool's numbers, named after OpenTelemetry's `db.client.connection.*` metrics. */
  metrics() {
    const m = native.poolMetrics(this.#slot, this.#now())
    // Reading the breaker's state may have moved it (open → half-open): tell the listeners.
    this.#bits(native.poolPending(this.#slot))
    return shapeMetrics(m)
  }

  /** Whether a drain has finished. */
  get isClosed() {
    return native.poolIsClosed(this.#slot)
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

  // ---- acquiring and releasing -----------------------------------------------------------

  #acquire(budget, signal, stack) {
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason)
    const now = this.#now()
    const code = budget === undefined ? poolAcquireNow(this.#slot, now) : poolAcquireWith(budget, this.#slot, now)
    if (code >= 0) {
      const handle = this.#checkOut(Math.floor(code / PENDING_SPAN), stack, now)
      this.#bits(code % PENDING_SPAN)
      return Promise.resolve(handle)
    }
    const c = -code - 1
    const id = Math.floor(c / PENDING_SPAN)
    if (id === 0) {
      // Refused at once. These come in floods during an incident: no stack capture.
      const error = withoutStack(() => errorFromNative(native.poolTakeError(this.#slot), this.#lastCreateError))
      this.#bits(c % PENDING_SPAN)
      return Promise.reject(error)
    }
    const promise = new Promise(captureSettlers)
    const waiter = new Waiter(capturedResolve, capturedReject, stack)
    capturedResolve = capturedReject = undefined
    this.#lastWaiter = waiter
    this.#waiters.set(id, waiter)
    if (signal !== undefined) waiter.listen(signal, () => this.#giveUp(id, signal))
    this.#bits(c % PENDING_SPAN)
    this.#syncRef()
    return promise
  }

  /** A waiting caller's signal aborted. */
  #giveUp(id, signal) {
    const waiter = this.#waiters.get(id)
    if (waiter === undefined) return
    this.#waiters.delete(id)
    waiter.reject(signal.reason)
    waiter.forget()
    try {
      // If the engine had already chosen this caller, its hand-off finds no waiter and the
      // connection goes back (see #hand).
      this.#bits(native.poolCancel(this.#slot, id, this.#now()) >> 1)
    } catch (error) {
      reportCallbackError(error)
    }
    this.#syncRef()
  }

  /** A checkout of the connection in slot `id`, as the handle its holder gets. */
  #checkOut(id, stack, now) {
    const slot = this.#conns.get(id)
    if (slot === undefined || slot.conn === undefined) {
      throw withCode(new Error(`the engine handed out slot ${id}, which holds no connection`), 'SEAWALL_INTERNAL')
    }
    const checkout = new Checkout(this, slot, stack, now)
    slot.checkout = checkout
    this.#lastCheckout = checkout
    return new Proxy(slot.conn, checkout)
  }

  /** The checkout of a handle this pool handed out, or undefined for anything else. */
  #checkoutOf(connection) {
    if (connection === null || (typeof connection !== 'object' && typeof connection !== 'function')) return undefined
    const checkout = connection[CHECKOUT]
    return checkout instanceof Checkout && checkout.pool === this ? checkout : undefined
  }

  #giveBack(checkout, broken) {
    // Read the clock first: if it throws, the checkout is still out and can be released again.
    const now = this.#now()
    checkout.released = true
    // Closed by the pool while out (the drain's deadline): there is nothing to give back.
    if (checkout.closed) return
    const slot = checkout.slot
    slot.checkout = null
    if (checkout.leakReported) this.#returned.set(slot.id, checkout)
    const r = poolReleaseNow(this.#slot, slot.id, broken || slot.broken, now)
    if (r < 0) {
      throw withCode(new Error(`the engine refused the live checkout of slot ${slot.id}`), 'SEAWALL_INTERNAL')
    }
    this.#bits(r)
  }

  // ---- performing the engine's actions ---------------------------------------------------

  /** Performs what `pending` says waits, and whatever that in turn makes pending. */
  #bits(pending) {
    if (pending === 0) return
    this.#pending |= pending
    if (this.#pumping) return
    this.#pumping = true
    try {
      while (this.#pending !== 0) {
        const p = this.#pending
        this.#pending = 0
        if (p & ACTIONS) this.#performActions()
        if (p & EVENTS) this.#emitEvents()
        if (p & REARM) this.#arm()
      }
    } finally {
      this.#pumping = false
    }
    this.#syncRef()
  }

  #performActions() {
    // The engine writes the actions it asks for into this pool's own array (src/pool.rs,
    // `poolSetActionArray`): element 0 is how many, four numbers each after it. Usually the
    // native call that queued them has written them already; what did not fit, or was queued
    // while a batch was being performed (-1 in element 0 then keeps the array untouched), is
    // taken with one more call.
    const flat = this.#actions
    const room = (flat.length - 1) / 4
    for (;;) {
      let n = flat[0]
      if (n <= 0) {
        n = native.poolTakeActionsInto(this.#slot)
        if (n === 0) return
      }
      flat[0] = -1
      try {
        this.#performBatch(flat, n)
      } finally {
        flat[0] = 0
      }
      if (n < room) return
    }
  }

  #performBatch(flat, n) {
    let failures
    let nextFailure = 0
    for (let i = 1; i < 1 + n * 4; i += 4) {
      const a = flat[i + 1]
      try {
        switch (flat[i]) {
          case CREATE:
            this.#startCreate(a, flat[i + 2])
            break
          case VALIDATE:
            this.#startValidate(a)
            break
          case DESTROY:
            this.#destroySlot(a, DESTROY_REASONS[flat[i + 2]])
            break
          case HAND:
            this.#hand(a, flat[i + 2])
            break
          case FAIL:
            failures ??= native.poolTakeFailures(this.#slot)
            this.#fail(a, failures[nextFailure++])
            break
        }
      } catch (error) {
        // One action going wrong (a throwing clock) must not lose the others of the batch.
        reportCallbackError(error)
      }
    }
  }

  #startCreate(id, deadlineMs) {
    const slot = new Slot(id, deadlineMs - this.#lastNowMs)
    this.#conns.set(id, slot)
    let result
    try {
      result = this.#create(new CreateContext(slot, () => this.#reportBroken(slot)))
    } catch (error) {
      result = Promise.reject(error)
    }
    Promise.resolve(result).then(
      (conn) => this.#guard(() => this.#created(slot, conn)),
      (error) => this.#guard(() => this.#createFailed(slot, error)),
    )
  }

  /** Tells the engine a created connection died; a create still under way learns it in #created. */
  #reportBroken(slot) {
    if (this.#conns.get(slot.id) !== slot || slot.state !== READY) return
    this.#guard(() => this.#bits(native.poolHandleBroken(this.#slot, slot.id, this.#now())))
  }

  #guard(f) {
    try {
      f()
    } catch (error) {
      reportCallbackError(error)
    }
  }

  #created(slot, conn) {
    if (conn === null || (typeof conn !== 'object' && typeof conn !== 'function')) {
      this.#createFailed(slot, new TypeError(`create() must resolve to the connection (an object), got ${typeName(conn)}`))
      return
    }
    if (slot.broken && !slot.abandoned) {
      // Its socket died during the handshake: a failed attempt, and never handed out.
      this.#close(conn)
      this.#createFailed(slot, new Error('the connection was reported broken before it was ready'))
      return
    }
    slot.conn = conn
    slot.state = READY
    // An abandoned create's late connection is reported too: the engine answers with a destroy.
    if (slot.abandoned) this.#conns.set(slot.id, slot)
    this.#bits(native.poolHandleCreated(this.#slot, slot.id, this.#now()))
  }

  #createFailed(slot, error) {
    if (!slot.abandoned) {
      this.#conns.delete(slot.id)
      this.#lastCreateError = error
      this.#createCause = error
    }
    try {
      this.#bits(native.poolHandleCreateFailed(this.#slot, slot.id, describe(error), this.#now()))
    } finally {
      this.#createCause = undefined
    }
  }

  #startValidate(id) {
    const slot = this.#conns.get(id)
    if (slot === undefined || slot.broken || this.#validate === undefined) {
      this.#bits(native.poolHandleValidated(this.#slot, id, slot !== undefined && !slot.broken, this.#now()))
      return
    }
    slot.state = VALIDATING
    let result
    try {
      result = this.#validate(slot.conn)
    } catch {
      result = false
    }
    // Invalid when it resolves to false or fails; anything else (true, undefined) is valid.
    Promise.resolve(result).then(
      (ok) => this.#guard(() => this.#validated(slot, ok !== false)),
      () => this.#guard(() => this.#validated(slot, false)),
    )
  }

  #validated(slot, ok) {
    if (slot.state !== VALIDATING) return
    slot.state = READY
    this.#bits(native.poolHandleValidated(this.#slot, slot.id, ok && !slot.broken, this.#now()))
  }

  #destroySlot(id, reason) {
    const slot = this.#conns.get(id)
    if (slot === undefined) return
    this.#conns.delete(id)
    if (slot.state === CREATING) {
      // The create goes on until its promise settles; its signal tells it to stop.
      slot.abandon(reason === 'create_timed_out' ? withoutStack(() => new DeadlineExceededError(slot.createTimeoutMs)) : new PoolClosedError())
      return
    }
    slot.state = READY
    const checkout = slot.checkout
    if (checkout !== null) {
      checkout.closed = true
      slot.checkout = null
      this.#closedWhileOut.set(id, checkout)
    }
    this.#close(slot.conn)
  }

  #close(conn) {
    if (this.#destroy === undefined) return
    let closing
    try {
      closing = Promise.resolve(this.#destroy(conn))
    } catch {
      return
    }
    // A failing close is nobody's to handle: the connection is being thrown away anyway.
    const tracked = closing.then(
      () => {},
      () => {},
    )
    this.#closing.add(tracked)
    tracked.then(() => this.#closing.delete(tracked))
  }

  #hand(waiterId, slotId) {
    const waiter = this.#waiters.get(waiterId)
    if (waiter === undefined) {
      // The caller gave up after the engine had chosen it: the connection goes back.
      const slot = this.#conns.get(slotId)
      const r = poolReleaseNow(this.#slot, slotId, slot === undefined || slot.broken, this.#now())
      this.#bits(Math.max(r, 0))
      return
    }
    this.#waiters.delete(waiterId)
    waiter.unlisten()
    waiter.resolve(this.#checkOut(slotId, waiter.stack, this.#lastNowMs))
    waiter.forget()
  }

  #fail(waiterId, failure) {
    const waiter = this.#waiters.get(waiterId)
    if (waiter === undefined) return
    this.#waiters.delete(waiterId)
    waiter.unlisten()
    // Built from a timer or a release: a stack would show only Seawall's frames.
    waiter.reject(withoutStack(() => errorFromNative(failure, this.#lastCreateError)))
    waiter.forget()
  }

  // ---- events ----------------------------------------------------------------------------

  #emitEvents() {
    for (const e of native.poolTakeEvents(this.#slot)) {
      switch (e.kind) {
        case 'leak': {
          const checkout = this.#conns.get(e.slot)?.checkout ?? undefined
          if (checkout !== undefined) checkout.leakReported = true
          this.#listeners.emit(this, 'leak', { slot: e.slot, heldForMs: e.heldForMs, stack: checkout?.stack })
          break
        }
        case 'leakReturned': {
          const checkout = this.#returned.get(e.slot)
          this.#returned.delete(e.slot)
          this.#listeners.emit(this, 'leakReturned', { slot: e.slot, heldForMs: e.heldForMs, stack: checkout?.stack })
          break
        }
        case 'breaker':
          this.#listeners.emit(this, 'breaker', { from: e.from, to: e.to, reason: e.reason })
          break
        case 'connectFailed':
          this.#listeners.emit(this, 'connectFailed', { error: e.error, attempts: e.attempts, cause: this.#createCause })
          break
        case 'drained':
          this.#finishDrain(e.stillHeld)
          break
      }
    }
  }

  #finishDrain(stillHeldIds) {
    const now = this.#lastNowMs
    const stillHeld = stillHeldIds.map((slot) => {
      const checkout = this.#closedWhileOut.get(slot)
      return { slot, heldForMs: checkout === undefined ? 0 : now - checkout.acquiredMs, stack: checkout?.stack }
    })
    this.#closedWhileOut.clear()
    this.#draining = false
    this.#stopTimer()
    this.#unwatch?.()
    this.#listeners.emit(this, 'drained', { stillHeld })
    const resolve = this.#resolveDrain
    this.#resolveDrain = undefined
    Promise.all([...this.#closing]).then(() => resolve?.(stillHeld))
  }

  // ---- the timer -------------------------------------------------------------------------

  #now() {
    const t = readClock(this.#clock)
    this.#lastNowMs = t
    return t
  }

  #arm() {
    const due = native.poolNextTimeout(this.#slot)
    this.#timerDue = due
    this.#stopTimer()
    // A ManualClock drives the timer itself, as it moves.
    if (due < 0 || this.#manual) return
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(due - this.#now())))
    this.#timer = setTimeout(this.#onTimer, delay)
    if (!this.#keepsAlive()) this.#timer.unref()
  }

  #onTimer = () => {
    this.#timer = null
    try {
      this.#bits(native.poolHandleTimeout(this.#slot, this.#now()) | REARM)
    } catch (error) {
      reportCallbackError(error)
    }
  }

  #onClockMoved() {
    for (let i = 0; i < MAX_MANUAL_FIRES && this.#timerDue >= 0 && this.#clock.now() >= this.#timerDue; i++) {
      // Cleared first, so that a move made by a listener during this fire does not fire again.
      this.#timerDue = -1
      this.#bits(native.poolHandleTimeout(this.#slot, this.#now()) | REARM)
    }
  }

  #stopTimer() {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
  }

  #keepsAlive() {
    return this.#waiters.size > 0 || this.#draining
  }

  #syncRef() {
    if (this.#timer === null) return
    if (this.#keepsAlive()) this.#timer.ref()
    else this.#timer.unref()
  }
}

module.exports = { Pool }
