'use strict'

// pgPoolOptions: what a Pool needs to manage `pg.Client` connections (the `pg` package): create,
// destroy, validate and isBroken. The `pg` package is not a dependency of Seawall: pass its
// `Client` class, or have `pg` installed where Seawall can require it.
//
// What it takes care of, each from a way pools failed against a real PostgreSQL
// (shared/POOL-LESSONS.md):
// - a `pg.Client` emits 'error' when its socket dies, idle or checked out; with no listener
//   that is an uncaught exception that ends the process. Every client gets a listener for its
//   whole life, which marks the connection broken so that the pool closes it;
// - a connection attempt the pool gives up on (its create timeout, a drain) has its socket
//   destroyed at once, rather than left to hang on a black-holed route;
// - closing a connection never hangs: a polite `end()` that gets no answer within
//   `endTimeoutMs` becomes a socket destroy;
// - validation is a `SELECT 1` bounded by `validateTimeoutMs`.

const { checkFunction, checkMillis, checkOptionsObject, optionTypeError } = require('./errors.js')

const DEFAULT_VALIDATE_TIMEOUT_MS = 5000
const DEFAULT_END_TIMEOUT_MS = 1000

// pg's messages for a connection that can no longer be used (pg/lib/client.js), and a query
// timed out on the client side (its answer may still arrive, out of step with the next query).
const BROKEN_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Query read timeout',
])
// Socket errors, and the server ending the session (SQLSTATE class 08, and 57P01-57P03:
// admin shutdown, crash shutdown, cannot connect now).
const BROKEN_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'ENOTCONN', '57P01', '57P02', '57P03'])

/**
 * Whether `error`, thrown by a query, means the `pg.Client` that ran it is no longer usable.
 * @param {unknown} error
 */
function isBrokenPgError(error) {
  if (error === null || typeof error !== 'object') return false
  const { code, message } = /** @type {{ code?: unknown, message?: unknown }} */ (error)
  if (typeof code === 'string' && (BROKEN_CODES.has(code) || code.startsWith('08'))) return true
  return typeof message === 'string' && BROKEN_MESSAGES.has(message)
}

/** Destroys the client's socket: no goodbye, nothing left open. */
function destroySocket(client) {
  const stream = client.connection?.stream
  if (stream !== undefined && typeof stream.destroy === 'function') stream.destroy()
}

/**
 * Pool options that open, check and close `pg.Client` connections:
 * `new Pool({ ...pgPoolOptions({ host, user, database }), maxSize: 8 })`.
 * @param {object | string} config what `new pg.Client(config)` takes
 * @param {{ Client?: Function, validateTimeoutMs?: number, endTimeoutMs?: number }} [options]
 */
function pgPoolOptions(config, options) {
  if (config === null || (typeof config !== 'object' && typeof config !== 'string')) {
    throw optionTypeError('config', 'a pg client configuration (an object or a connection string)', config)
  }
  checkOptionsObject(options)
  const { Client: given, validateTimeoutMs = DEFAULT_VALIDATE_TIMEOUT_MS, endTimeoutMs = DEFAULT_END_TIMEOUT_MS } =
    options ?? {}
  checkFunction('Client', given)
  checkMillis('validateTimeoutMs', validateTimeoutMs)
  checkMillis('endTimeoutMs', endTimeoutMs)
  const Client = given ?? require('pg').Client
  /** Clients whose socket died. */
  const dead = new WeakSet()

  /** @param {import('../index').CreateContext} context */
  async function create({ signal, markBroken }) {
    signal.throwIfAborted()
    const client = new Client(config)
    client.on('error', () => {
      dead.add(client)
      markBroken()
    })
    const abandon = () => destroySocket(client)
    signal.addEventListener('abort', abandon, { once: true })
    try {
      await client.connect()
    } catch (error) {
      destroySocket(client)
      // The pool's reason (its create timeout, a drain) says more than "connection terminated".
      throw signal.aborted ? signal.reason : error
    } finally {
      signal.removeEventListener('abort', abandon)
    }
    return client
  }

  async function destroy(client) {
    if (dead.has(client)) {
      destroySocket(client)
      return
    }
    const timer = setTimeout(() => destroySocket(client), endTimeoutMs)
    try {
      await client.end()
    } catch {
      destroySocket(client)
    } finally {
      clearTimeout(timer)
    }
  }

  async function validate(client) {
    if (dead.has(client)) return false
    await client.query({ text: 'SELECT 1', query_timeout: validateTimeoutMs })
    return !dead.has(client)
  }

  return { create, destroy, validate, isBroken: isBrokenPgError }
}

module.exports = { pgPoolOptions, isBrokenPgError }
