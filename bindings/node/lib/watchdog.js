'use strict'

// MemoryWatchdog, WatchdogPolicy and readMemory: the Node adapter of the core's memory watchdog.
//
// Every decision (warn, act, spike, leak trend, snapshot or profile, restart, when to sample
// next, which old dumps to delete) is the Rust core's (src/memory.rs wraps it). This file does
// the I/O the core cannot: it reads V8's heap figures, writes the evidence (v8.writeHeapSnapshot,
// or a sampling heap profile through node:inspector), runs the drain hooks and exits. Its timer
// is unref'd, so a watchdog never keeps a process alive.

const { EventEmitter } = require('node:events')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const v8 = require('node:v8')

const native = require('../native.js')
const { checkFunction, checkOptionsObject, optionTypeError, reportCallbackError, withCode } = require('./errors.js')

const { NativeWatchdog } = native

/** Evidence files start with this (the core's DUMP_PREFIX); rotation touches nothing else. */
const DUMP_PREFIX = 'seawall-memory-'
/** A heap snapshot file is about this many times the heap in use. */
const SNAPSHOT_FILE_FACTOR = 2
/** A sampling heap profile is small (a call tree of sampled allocation sites); 4 MiB is ample. */
const PROFILE_ESTIMATE_BYTES = 4 << 20
/** Bytes between samples of the sampling heap profiler: V8's default, a few % of overhead. */
const PROFILE_SAMPLING_INTERVAL = 32 * 1024

function nullable(v) {
  return v === undefined ? null : v
}

function trendOf(t) {
  if (t === undefined || t === null) return null
  return {
    bytesPerSecond: t.bytesPerSecond,
    r2: t.r2,
    timeToLimitMs: nullable(t.timeToLimitMs),
    samples: t.samples,
  }
}

// The native action has only the fields of its kind; the trend gets its nulls spelled out.
function actionOf(a) {
  if (a.kind === 'leak_trend') return { kind: a.kind, trend: trendOf(a.trend) }
  return a
}

function assessmentOf(a) {
  return {
    level: a.level,
    percent: a.percent,
    basis: a.basis,
    growthPercentPerMinute: nullable(a.growthPercentPerMinute),
    trend: trendOf(a.trend),
    nextSampleMs: a.nextSampleMs,
    actions: a.actions.map(actionOf),
  }
}

function readingOf(r) {
  return { ...r, oomKills: nullable(r.oomKills) }
}

function checkBytesArgument(name, v, optional) {
  if (optional && (v === undefined || v === null)) return
  if (typeof v !== 'number') {
    throw withCode(new TypeError(`${name} must be a number, got ${v === null ? 'null' : typeof v}`), 'SEAWALL_INVALID_ARGUMENT', name)
  }
}

/**
 * Reads this process's memory the way the watchdog does: the effective limit (the tightest of
 * cgroup v2 `memory.max` / `memory.high`, cgroup v1 `memory.limit_in_bytes`, `limitBytes` and
 * physical RAM) and the usage that limit counts (the cgroup working set, or the RSS).
 * `root` reads `/proc` and `/sys` under another directory (tests: fake cgroup trees).
 * @param {number} [limitBytes]
 * @param {string} [root]
 */
function readMemory(limitBytes, root) {
  checkBytesArgument('limitBytes', limitBytes, true)
  const limit = limitBytes === null ? undefined : limitBytes
  if (root !== undefined && typeof root !== 'string') {
    throw withCode(new TypeError(`root must be a string, got ${typeof root}`), 'SEAWALL_INVALID_ARGUMENT', 'root')
  }
  return readingOf(root === undefined ? native.readMemory(limit) : native.readMemoryAt(root, limit))
}

/** The probe with a policy's `limitBytes`, for MemoryWatchdog only (not a public method). */
let readPolicyMemory

/**
 * The watchdog's sans-IO policy: feed it samples, get assessments. `MemoryWatchdog` drives one;
 * other adapters (and the conformance tests) can drive their own.
 */
class WatchdogPolicy {
  #native

  /** @param {import('../index').WatchdogPolicyOptions} [options] */
  constructor(options) {
    checkOptionsObject(options)
    this.#native = new NativeWatchdog(options)
  }

  /**
   * Judges one sample.
   * @param {import('../index').MemorySampleInput} sample
   * @returns {import('../index').MemoryAssessment}
   */
  observe(sample) {
    checkOptionsObject(sample, 'sample')
    if (sample === undefined) throw optionTypeError('sample', 'an object', sample)
    const { nowMs, usageBytes, limitBytes, heapUsedBytes, heapLimitBytes } = sample
    if (typeof nowMs !== 'number') {
      throw withCode(new TypeError(`nowMs must be a number, got ${typeof nowMs}`), 'SEAWALL_INVALID_ARGUMENT', 'nowMs')
    }
    checkBytesArgument('usageBytes', usageBytes, false)
    checkBytesArgument('limitBytes', limitBytes, false)
    checkBytesArgument('heapUsedBytes', heapUsedBytes, true)
    checkBytesArgument('heapLimitBytes', heapLimitBytes, true)
    const a = this.#native.observe(nowMs, usageBytes, limitBytes, heapUsedBytes ?? undefined, heapLimitBytes ?? undefined)
    return assessmentOf(a)
  }

  /** Counters since the start. */
  counts() {
    return this.#native.counts()
  }

  /** The level of the last sample (`'normal'` before any). */
  get level() {
    return this.#native.level()
  }

  /** The validated configuration, defaults filled in. */
  get config() {
    const c = this.#native.config()
    return { ...c, limitBytes: nullable(c.limitBytes) }
  }

  /**
   * Which evidence files (names starting with `seawall-memory-`) to delete before writing one
   * of about `incomingBytes`, to stay within `maxDumpFiles` and `maxDumpBytes`: oldest first.
   * @param {{ name: string, bytes: number, created: number }[]} existing
   * @param {number} incomingBytes
   */
  planDumpRotation(existing, incomingBytes) {
    if (!Array.isArray(existing)) {
      throw withCode(new TypeError('existing must be an array'), 'SEAWALL_INVALID_ARGUMENT', 'existing')
    }
    checkBytesArgument('incomingBytes', incomingBytes, false)
    return this.#native.planDumpRotation(existing, incomingBytes)
  }

  static {
    readPolicyMemory = (policy, root) => readingOf(policy.#native.readMemory(root))
  }
}

/** A short, sortable, file-name-safe UTC time: 20261127T163000123Z. */
function stamp(date) {
  return date.toISOString().replace(/[-:]/g, '').replace('.', '')
}

/**
 * The headroom a heap snapshot needs on Node, as a multiple of the heap in use. The core's
 * default (2) assumes a snapshot costs about the heap again; on Node 20.20 writing one was
 * measured to raise the peak RSS by 13 to 14 times the heap in use (a 24 MiB heap: +309 MiB;
 * 92 MiB: +1.26 GiB), and glibc keeps that memory afterwards. With a factor of 2 the snapshot
 * itself could take the process past its limit. `WatchdogPolicy` keeps the core's default, so it
 * replays the shared vectors as every language does.
 */
const NODE_SNAPSHOT_HEADROOM_FACTOR = 16
/**
 * The memory watchdog: samples memory against the effective limit (cgroup-aware) and V8's heap
 * limit, warns, reports spikes and leak trends, captures evidence while it is safe, and at the
 * act level drains and exits so the supervisor starts a fresh process. See index.d.ts.
 */
class MemoryWatchdog extends EventEmitter {
  #policy
  #snapshotDir
  #drain
  #exit
  #probeRoot
  #timer = undefined
  #running = false
  #restarting = false
  #last = null
  #session = null
  #evidence = { written: 0, failed: 0, lastPath: null }
  #seq = 0

  /** @param {import('../index').MemoryWatchdogOptions} [options] */
  constructor(options) {
    super()
    checkOptionsObject(options)
    const opts = options ?? {}
    const { snapshotDir, onWarn, onAct, drain, exit, probeRoot } = opts
    if (snapshotDir !== undefined && typeof snapshotDir !== 'string') throw optionTypeError('snapshotDir', 'a string', snapshotDir)
    if (probeRoot !== undefined && typeof probeRoot !== 'string') throw optionTypeError('probeRoot', 'a string', probeRoot)
    checkFunction('onWarn', onWarn)
    checkFunction('onAct', onAct)
    checkFunction('exit', exit)
    let hooks
    if (drain === undefined) hooks = []
    else if (typeof drain === 'function') hooks = [drain]
    else if (Array.isArray(drain) && drain.every((f) => typeof f === 'function')) hooks = [...drain]
    else throw optionTypeError('drain', 'a function or an array of functions', drain)
    this.#policy = new WatchdogPolicy(
      opts.snapshotHeadroomFactor === undefined ? { ...opts, snapshotHeadroomFactor: NODE_SNAPSHOT_HEADROOM_FACTOR } : opts
    )
    this.#snapshotDir = path.resolve(snapshotDir ?? process.cwd())
    this.#drain = hooks
    this.#exit = exit ?? ((code) => process.exit(code))
    this.#probeRoot = probeRoot
    if (onWarn !== undefined) this.on('warn', onWarn)
    if (onAct !== undefined) this.on('act', onAct)
  }

  /** The validated configuration, defaults filled in, plus `snapshotDir`. */
  get config() {
    return { ...this.#policy.config, snapshotDir: this.#snapshotDir }
  }

  /** Whether samples are scheduled. */
  get running() {
    return this.#running
  }

  /** Takes a first sample now and keeps sampling (unref'd timer) until `stop()`. */
  start() {
    if (this.#running || this.#restarting) return this
    this.#running = true
    this.#tick()
    return this
  }

  /** Stops sampling; a restart already under way still finishes. */
  stop() {
    this.#running = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#stopProfiling()
    return this
  }

  /**
   * Takes a sample now, carries out the actions, and (when running) schedules the next one.
   * @returns {import('../index').MemoryAssessment | null} null when the probe failed
   */
  sampleNow() {
    return this.#tick()
  }

  /** The last sample's figures, the counters, and the evidence written. */
  metrics() {
    const s = this.#last
    const a = s?.assessment
    return {
      running: this.#running,
      restarting: this.#restarting,
      level: a?.level ?? 'normal',
      percent: nullable(a?.percent),
      basis: nullable(a?.basis),
      usageBytes: nullable(s?.reading.usageBytes),
      usageSource: nullable(s?.reading.usageSource),
      limitBytes: nullable(s?.reading.limitBytes),
      limitSource: nullable(s?.reading.limitSource),
      cgroup: nullable(s?.reading.cgroup),
      rssBytes: nullable(s?.reading.rssBytes),
      oomKills: nullable(s?.reading.oomKills),
      heapUsedBytes: nullable(s?.heapUsedBytes),
      heapLimitBytes: nullable(s?.heapLimitBytes),
      growthPercentPerMinute: nullable(a?.growthPercentPerMinute),
      trendBytesPerSecond: nullable(a?.trend?.bytesPerSecond),
      timeToLimitMs: nullable(a?.trend?.timeToLimitMs),
      nextSampleMs: nullable(a?.nextSampleMs),
      counts: this.#policy.counts(),
      evidenceWritten: this.#evidence.written,
      evidenceFailed: this.#evidence.failed,
      lastEvidencePath: this.#evidence.lastPath,
    }
  }

  // An error of the watchdog itself (probe, evidence, drain hook): to 'error' listeners, or
  // a process warning when there are none, since a watchdog must never crash its process.
  #fail(error) {
    if (this.listenerCount('error') > 0) this.#emit('error', error)
    else process.emitWarning(error)
  }

  // Emits without letting a throwing listener stop the actions that follow (a restart above
  // all); the exception is reported like one from any callback.
  #emit(event, payload) {
    try {
      this.emit(event, payload)
    } catch (e) {
      reportCallbackError(e)
    }
  }

  #read() {
    try {
      return readPolicyMemory(this.#policy, this.#probeRoot)
    } catch (e) {
      // Without /proc (macOS, Windows) the RSS against `limitBytes` or RAM is all there is.
      if (process.platform === 'linux' || this.#probeRoot !== undefined) throw e
      const { limitBytes } = this.#policy.config
      return readingOf(native.memoryWithoutCgroup(limitBytes ?? undefined, process.memoryUsage.rss(), os.totalmem()))
    }
  }

  #schedule(ms) {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    if (!this.#running) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#tick()
    }, ms)
    // Never keep the process alive for a watchdog.
    this.#timer.unref()
  }

  #tick() {
    let sample
    try {
      const reading = this.#read()
      const heap = v8.getHeapStatistics()
      const usage = process.memoryUsage()
      const assessment = this.#policy.observe({
        nowMs: performance.now(),
        usageBytes: reading.usageBytes,
        limitBytes: reading.limitBytes,
        heapUsedBytes: heap.used_heap_size,
        heapLimitBytes: heap.heap_size_limit,
      })
      sample = {
        timestamp: Date.now(),
        reading,
        heapUsedBytes: heap.used_heap_size,
        heapTotalBytes: heap.total_heap_size,
        heapLimitBytes: heap.heap_size_limit,
        externalBytes: usage.external,
        arrayBuffersBytes: usage.arrayBuffers,
        assessment,
      }
    } catch (e) {
      this.#fail(e)
      // Try again at the normal pace: a transient failure must not end the watching.
      this.#schedule(this.#policy.config.intervalMs)
      return null
    }
    this.#last = sample
    const { assessment } = sample
    this.#emit('sample', sample)
    let restart = null
    for (const action of assessment.actions) {
      switch (action.kind) {
        case 'warn':
          // Profile from the warning on, so that a profile asked for later covers the growth.
          this.#startProfiling()
          this.#emit('warn', { percent: action.percent, basis: action.basis, sample })
          break
        case 'recovered':
          this.#stopProfiling()
          this.#emit('recovered', { percent: action.percent, basis: action.basis, sample })
          break
        case 'spike':
          this.#startProfiling()
          this.#emit('spike', { percentPerMinute: action.percentPerMinute, basis: action.basis, sample })
          break
        case 'leak_trend':
          this.#emit('leakTrend', { trend: action.trend, sample })
          break
        case 'act':
          this.#emit('act', { percent: action.percent, basis: action.basis, sample })
          break
        case 'evidence':
          this.#captureEvidence(action, sample)
          break
        case 'restart':
          restart = action
          break
        default:
          break
      }
    }
    if (restart !== null) this.#restart(restart)
    else this.#schedule(assessment.nextSampleMs)
    return assessment
  }

  #startProfiling() {
    if (this.#session !== null) return
    try {
      const inspector = require('node:inspector')
      const session = new inspector.Session()
      session.connect()
      post(session, 'HeapProfiler.enable')
      post(session, 'HeapProfiler.startSampling', { samplingInterval: PROFILE_SAMPLING_INTERVAL })
      this.#session = session
    } catch (e) {
      // No inspector in this build: profiles cannot be taken; say so once evidence is due.
      this.#session = null
      this.#fail(e)
    }
  }

  #stopProfiling() {
    const session = this.#session
    if (session === null) return
    this.#session = null
    try {
      post(session, 'HeapProfiler.stopSampling')
    } catch {
      // Disconnecting stops the profiler anyway.
    }
    session.disconnect()
  }

  // The sampled allocations still alive since profiling began (at the warning, or now).
  #takeProfile() {
    this.#startProfiling()
    const session = this.#session
    if (session === null) throw new Error('the inspector is not available: no heap profile can be taken')
    this.#session = null
    try {
      return post(session, 'HeapProfiler.stopSampling').profile
    } finally {
      session.disconnect()
    }
  }

  #existingDumps() {
    const files = []
    for (const name of fs.readdirSync(this.#snapshotDir)) {
      if (!name.startsWith(DUMP_PREFIX)) continue
      try {
        const st = fs.statSync(path.join(this.#snapshotDir, name))
        if (st.isFile()) files.push({ name, bytes: st.size, created: Math.floor(st.mtimeMs) })
      } catch {
        // Removed meanwhile.
      }
    }
    return files
  }

  #rotate(incomingBytes) {
    const plan = this.#policy.planDumpRotation(this.#existingDumps(), incomingBytes)
    if (plan.fits) {
      for (const name of plan.delete) fs.rmSync(path.join(this.#snapshotDir, name), { force: true })
    }
    return plan
  }

  #captureEvidence(action, sample) {
    const { trigger, freeBytes, neededBytes } = action
    let kind = action.evidence
    let reason =
      kind === 'heap_snapshot'
        ? `${freeBytes} bytes free, more than the ${neededBytes} a heap snapshot needs`
        : `${freeBytes} bytes free, a heap snapshot needs more than ${neededBytes} (snapshotHeadroomFactor × heap in use): a sampling heap profile instead`
    const started = performance.now()
    let file = null
    let deleted = []
    try {
      fs.mkdirSync(this.#snapshotDir, { recursive: true })
      const base = `${DUMP_PREFIX}${stamp(new Date())}-${process.pid}-${++this.#seq}-${trigger}`
      if (kind === 'heap_snapshot') {
        // A snapshot file is about twice the heap in use (measured on Node 20: 43 MB for a
        // 24 MB heap of small objects, 172 MB for 92 MB); rotation makes room for that.
        const estimate = SNAPSHOT_FILE_FACTOR * sample.heapUsedBytes
        const plan = this.#rotate(estimate)
        if (plan.fits) {
          deleted = plan.delete
          file = path.join(this.#snapshotDir, `${base}.heapsnapshot`)
          // Blocks the event loop while V8 walks the heap; the core asked for it only with room.
          v8.writeHeapSnapshot(file)
        } else {
          kind = 'profile'
          reason = `a heap snapshot of about ${estimate} bytes would not fit maxDumpBytes: a sampling heap profile instead`
        }
      }
      if (kind === 'profile') {
        const profile = this.#takeProfile()
        const plan = this.#rotate(PROFILE_ESTIMATE_BYTES)
        deleted = deleted.concat(plan.delete)
        file = path.join(this.#snapshotDir, `${base}.heapprofile`)
        fs.writeFileSync(file, JSON.stringify(profile))
        // Keep profiling while memory stays high, so that the next profile (at the act level)
        // covers the growth since this one.
        if (sample.assessment.level !== 'normal' || trigger !== 'act') this.#startProfiling()
      }
      const bytes = fs.statSync(file).size
      this.#evidence.written += 1
      this.#evidence.lastPath = file
      this.#emit('evidence', {
        kind,
        trigger,
        path: file,
        bytes,
        tookMs: performance.now() - started,
        freeBytes,
        neededBytes,
        reason,
        deleted,
        sample,
      })
    } catch (e) {
      this.#evidence.failed += 1
      const error = new Error(`could not write the ${kind === 'heap_snapshot' ? 'heap snapshot' : 'heap profile'}: ${e?.message ?? e}`, { cause: e })
      error.code = 'SEAWALL_EVIDENCE_FAILED'
      this.#fail(error)
    }
  }

  async #restart({ drainTimeoutMs, exitCode }) {
    this.#restarting = true
    this.stop()
    this.#emit('restart', { exitCode, drainTimeoutMs, sample: this.#last })
    const controller = new AbortController()
    let timer
    // Not unref'd: the process must stay up until it exits with `exitCode`, even with nothing
    // else pending (an unref'd deadline would let it end with 0 while a hook hangs).
    const deadline = new Promise((resolve) => {
      timer = setTimeout(resolve, drainTimeoutMs, 'timeout')
    })
    const hooks = this.#drain.map((hook) =>
      Promise.resolve()
        .then(() => hook({ signal: controller.signal, timeoutMs: drainTimeoutMs }))
        .catch((e) => this.#fail(e)),
    )
    const outcome = await Promise.race([Promise.all(hooks).then(() => 'drained'), deadline])
    clearTimeout(timer)
    if (outcome === 'timeout') {
      controller.abort(new Error(`the drain hooks did not finish within drainTimeoutMs (${drainTimeoutMs} ms)`))
    }
    // One turn of the event loop first: exceptions of listeners, reported on the next tick, get
    // to the process's handlers before it exits.
    await new Promise((resolve) => setImmediate(resolve))
    this.#exit(exitCode)
  }
}

// node:inspector's in-thread Session answers synchronously; rely on it (and check) so that
// evidence is written before the restart that follows it in the same sample.
function post(session, method, params) {
  let done = false
  let error = null
  let result
  session.post(method, params, (err, res) => {
    done = true
    error = err
    result = res
  })
  if (!done) throw new Error(`the inspector did not answer ${method} synchronously`)
  if (error) throw error
  return result
}

module.exports = { MemoryWatchdog, WatchdogPolicy, readMemory }
