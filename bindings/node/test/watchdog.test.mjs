// MemoryWatchdog, WatchdogPolicy and readMemory through the public API: bad options, the probe
// against fake cgroup v2 / v1 / no-cgroup trees, and the adapter's own work (events in order,
// evidence files and their rotation, drain hooks under their deadline, the exit code) driven by
// `sampleNow()` against a fake tree whose figures the test changes between samples.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { MemoryWatchdog, WatchdogPolicy, readMemory } from 'seawall'

const MIB = 2 ** 20
const GIB = 2 ** 30
const RAM = 16 * GIB
const RSS = 50 * MIB

const temps = []
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
})

function tempDir(name) {
  const dir = mkdtempSync(join(tmpdir(), `seawall-wd-${name}-`))
  temps.push(dir)
  return dir
}

/** A fake `/` with /proc/meminfo (16 GiB) and /proc/self/status (50 MiB RSS). */
class FakeTree {
  constructor(name) {
    this.root = tempDir(name)
    this.file('/proc/meminfo', `MemTotal:       ${RAM / 1024} kB\nMemFree:        1000 kB\n`)
    this.file('/proc/self/status', `Name:\tnode\nVmRSS:\t   ${RSS / 1024} kB\nThreads:\t7\n`)
  }

  file(path, contents) {
    const full = join(this.root, path)
    mkdirSync(join(full, '..'), { recursive: true })
    writeFileSync(full, contents)
    return this
  }

  /** The process in cgroup v2 at `/`, with these figures. */
  v2(current, inactiveFile, max, high = 'max') {
    this.file('/proc/self/cgroup', '0::/\n')
    this.file('/sys/fs/cgroup/cgroup.controllers', 'cpu io memory pids\n')
    this.file('/sys/fs/cgroup/memory.current', `${current}\n`)
    this.file('/sys/fs/cgroup/memory.stat', `anon 1\nfile 2\ninactive_file ${inactiveFile}\n`)
    this.file('/sys/fs/cgroup/memory.max', `${max}\n`)
    this.file('/sys/fs/cgroup/memory.high', `${high}\n`)
    this.file('/sys/fs/cgroup/memory.events', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n')
    return this
  }

  /** The process in a v1 memory cgroup `/app`, with these figures. */
  v1(usage, totalInactiveFile, limit) {
    this.file('/proc/self/cgroup', '12:pids:/\n4:memory:/app\n1:name=systemd:/\n0::/\n')
    this.file('/sys/fs/cgroup/memory/app/memory.usage_in_bytes', `${usage}\n`)
    this.file('/sys/fs/cgroup/memory/app/memory.stat', `cache 10\ntotal_inactive_file ${totalInactiveFile}\n`)
    this.file('/sys/fs/cgroup/memory/app/memory.limit_in_bytes', `${limit}\n`)
    this.file('/sys/fs/cgroup/memory/app/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n')
    return this
  }
}

// --- the probe ----------------------------------------------------------------------------------

test('probe, cgroup v2: memory.max is the limit and the working set is the usage', () => {
  const tree = new FakeTree('v2').v2(300 * MIB, 100 * MIB, GIB)
  assert.deepEqual(readMemory(undefined, tree.root), {
    limitBytes: GIB,
    limitSource: 'cgroup_v2_max',
    usageBytes: 200 * MIB,
    usageSource: 'cgroup_v2_working_set',
    rssBytes: RSS,
    physicalRamBytes: RAM,
    cgroup: 'v2',
    oomKills: 1,
  })
})

test('probe, cgroup v2: a tighter memory.high wins, and a tighter limitBytes wins over both', () => {
  const tree = new FakeTree('v2-high').v2(300 * MIB, 0, GIB, 512 * MIB)
  const high = readMemory(undefined, tree.root)
  assert.equal(high.limitBytes, 512 * MIB)
  assert.equal(high.limitSource, 'cgroup_v2_high')
  const configured = readMemory(400 * MIB, tree.root)
  assert.equal(configured.limitBytes, 400 * MIB)
  assert.equal(configured.limitSource, 'configured')
  // A configured limit is this process's budget: usage is its RSS, not the cgroup's working
  // set (which may hold other processes).
  assert.equal(configured.usageSource, 'process_rss')
  assert.equal(configured.usageBytes, configured.rssBytes)
})

test('probe, cgroup v1: memory.limit_in_bytes and usage minus total_inactive_file', () => {
  const tree = new FakeTree('v1').v1(700 * MIB, 200 * MIB, `${2 * GIB}`)
  const r = readMemory(undefined, tree.root)
  assert.deepEqual(
    { limit: r.limitBytes, source: r.limitSource, usage: r.usageBytes, usageSource: r.usageSource, cgroup: r.cgroup, oom: r.oomKills },
    { limit: 2 * GIB, source: 'cgroup_v1', usage: 500 * MIB, usageSource: 'cgroup_v1_working_set', cgroup: 'v1', oom: 2 },
  )
})

test('probe, cgroup v1 unlimited: physical RAM is the limit', () => {
  const tree = new FakeTree('v1-unlimited').v1(700 * MIB, 0, '9223372036854771712')
  const r = readMemory(undefined, tree.root)
  assert.equal(r.limitBytes, RAM)
  assert.equal(r.limitSource, 'physical_ram')
})

test('probe, no cgroup: the RSS against RAM or the configured limit', () => {
  const tree = new FakeTree('none')
  const r = readMemory(undefined, tree.root)
  assert.deepEqual(
    { limit: r.limitBytes, source: r.limitSource, usage: r.usageBytes, usageSource: r.usageSource, cgroup: r.cgroup, oom: r.oomKills },
    { limit: RAM, source: 'physical_ram', usage: RSS, usageSource: 'process_rss', cgroup: 'none', oom: null },
  )
  assert.equal(readMemory(GIB, tree.root).limitSource, 'configured')
})

test('probe: an unreadable /proc is an error with a code, not a crash', () => {
  const empty = tempDir('empty')
  assert.throws(() => readMemory(undefined, empty), (e) => {
    assert.equal(e.code, 'SEAWALL_MEMORY_PROBE_FAILED')
    assert.match(e.message, /\/proc\/meminfo/)
    return true
  })
})

test('probe of this machine: a limit within physical RAM, a usage, and their sources', () => {
  const r = readMemory()
  assert.ok(r.limitBytes > 0 && r.limitBytes <= r.physicalRamBytes, JSON.stringify(r))
  assert.ok(r.rssBytes > 0 && r.usageBytes > 0, JSON.stringify(r))
  assert.ok(['cgroup_v2_max', 'cgroup_v2_high', 'cgroup_v1', 'physical_ram'].includes(r.limitSource))
  assert.ok(['v1', 'v2', 'none'].includes(r.cgroup))
  const configured = readMemory(64 * MIB)
  assert.equal(configured.limitBytes, 64 * MIB)
  assert.equal(configured.limitSource, 'configured')
})

test('readMemory: bad arguments are errors naming them', () => {
  assert.throws(() => readMemory(-1), { name: 'RangeError', code: 'SEAWALL_INVALID_ARGUMENT', field: 'limitBytes' })
  assert.throws(() => readMemory(1.5), { name: 'RangeError', field: 'limitBytes' })
  assert.throws(() => readMemory('1G'), { name: 'TypeError', field: 'limitBytes' })
  assert.throws(() => readMemory(undefined, 42), { name: 'TypeError', field: 'root' })
})

// --- options ------------------------------------------------------------------------------------

test('defaults: 5-minute samples, warn at 70 %, act at 80 %, restart with exit code 75', () => {
  const w = new MemoryWatchdog()
  const c = w.config
  assert.equal(c.intervalMs, 300_000)
  assert.equal(c.alertIntervalMs, 10_000)
  assert.equal(c.warnPercent, 70)
  assert.equal(c.actPercent, 80)
  assert.equal(c.actMode, 'restart')
  assert.equal(c.exitCode, 75)
  assert.equal(c.drainTimeoutMs, 10_000)
  assert.equal(c.maxDumpFiles, 3)
  // Node's own default: a snapshot was measured to need 13-14 times the heap (lib/watchdog.js).
  assert.equal(c.snapshotHeadroomFactor, 16)
  assert.equal(new WatchdogPolicy().config.snapshotHeadroomFactor, 2, 'the core default')
  assert.equal(c.limitBytes, null)
  assert.equal(c.snapshotDir, process.cwd())
  assert.equal(w.running, false)
})

const BAD_OPTIONS = [
  // [options, error class, field]
  [{ intervalMs: 0 }, RangeError, 'intervalMs'],
  [{ intervalMs: 86_400_001 }, RangeError, 'intervalMs'],
  [{ intervalMs: Number.NaN }, RangeError, 'intervalMs'],
  [{ intervalMs: '5m' }, TypeError, 'intervalMs'],
  [{ intervalMs: null }, TypeError, 'intervalMs'],
  [{ alertIntervalMs: 5 }, RangeError, 'alertIntervalMs'],
  [{ intervalMs: 1000, alertIntervalMs: 2000 }, RangeError, 'alertIntervalMs'],
  [{ warnPercent: 0 }, RangeError, 'warnPercent'],
  [{ warnPercent: 100 }, RangeError, 'warnPercent'],
  [{ warnPercent: '70' }, TypeError, 'warnPercent'],
  [{ actPercent: 70 }, RangeError, 'actPercent'],
  [{ actPercent: 101 }, RangeError, 'actPercent'],
  [{ spikePercentPerMinute: 0 }, RangeError, 'spikePercentPerMinute'],
  [{ spikePercentPerMinute: -1 }, RangeError, 'spikePercentPerMinute'],
  [{ trendWindowMs: -1 }, RangeError, 'trendWindowMs'],
  [{ trendMinSamples: 2 }, RangeError, 'trendMinSamples'],
  [{ trendMinSamples: 3.5 }, RangeError, 'trendMinSamples'],
  [{ trendMinSamples: 1001 }, RangeError, 'trendMinSamples'],
  [{ trendHorizonMs: Number.POSITIVE_INFINITY }, RangeError, 'trendHorizonMs'],
  [{ cooldownMs: -5 }, RangeError, 'cooldownMs'],
  [{ cooldownMs: true }, TypeError, 'cooldownMs'],
  [{ snapshotHeadroomFactor: 0.5 }, RangeError, 'snapshotHeadroomFactor'],
  [{ snapshotHeadroomFactor: 101 }, RangeError, 'snapshotHeadroomFactor'],
  [{ actMode: 'reboot' }, RangeError, 'actMode'],
  [{ actMode: 'event_only' }, RangeError, 'actMode'],
  [{ actMode: 1 }, TypeError, 'actMode'],
  [{ drainTimeoutMs: 3_600_001 }, RangeError, 'drainTimeoutMs'],
  [{ exitCode: 0 }, RangeError, 'exitCode'],
  [{ exitCode: 256 }, RangeError, 'exitCode'],
  [{ exitCode: -1 }, RangeError, 'exitCode'],
  [{ exitCode: 1.5 }, RangeError, 'exitCode'],
  [{ maxDumpFiles: 0 }, RangeError, 'maxDumpFiles'],
  [{ maxDumpBytes: 1000 }, RangeError, 'maxDumpBytes'],
  [{ maxDumpBytes: '8G' }, TypeError, 'maxDumpBytes'],
  [{ limitBytes: -1 }, RangeError, 'limitBytes'],
  [{ limitBytes: 2 ** 60 }, RangeError, 'limitBytes'],
  [{ limitBytes: '512M' }, TypeError, 'limitBytes'],
  [{ snapshotDir: 42 }, TypeError, 'snapshotDir'],
  [{ probeRoot: {} }, TypeError, 'probeRoot'],
  [{ onWarn: 'log' }, TypeError, 'onWarn'],
  [{ onAct: 1 }, TypeError, 'onAct'],
  [{ drain: 'pool' }, TypeError, 'drain'],
  [{ drain: [() => {}, 'pool'] }, TypeError, 'drain'],
  [{ exit: 75 }, TypeError, 'exit'],
]

test('every bad option is a RangeError or TypeError naming it in JS spelling', () => {
  for (const [options, Class, field] of BAD_OPTIONS) {
    let error
    try {
      new MemoryWatchdog(options)
    } catch (e) {
      error = e
    }
    const what = JSON.stringify(options, (_, v) => (typeof v === 'function' ? 'fn' : v))
    assert.ok(error, `${what} was accepted`)
    assert.ok(error instanceof Class, `${what}: ${error.name}: ${error.message}`)
    assert.equal(error.code, 'SEAWALL_INVALID_CONFIG', what)
    assert.equal(error.field, field, `${what}: ${error.message}`)
    assert.ok(error.message.startsWith(`${field} must be`), `${what}: ${error.message}`)
  }
})

test('error messages name the ranges in JS spelling', () => {
  assert.throws(() => new MemoryWatchdog({ intervalMs: 1000, alertIntervalMs: 2000 }), {
    message: 'alertIntervalMs must be a duration between 10 ms and intervalMs, got 2000 ms',
  })
  assert.throws(() => new MemoryWatchdog({ warnPercent: 90, actPercent: 85 }), {
    message: 'actPercent must be a percentage in (warnPercent, 100], got 85',
  })
  assert.throws(() => new MemoryWatchdog({ trendHorizonMs: Number.POSITIVE_INFINITY }), {
    message: 'trendHorizonMs must be a duration between 10 ms and 24 h, got Infinity ms',
  })
  assert.throws(() => new MemoryWatchdog({ actMode: 'reboot' }), {
    message: "actMode must be 'restart' or 'eventOnly', got 'reboot'",
  })
  assert.throws(() => new MemoryWatchdog(null), { name: 'TypeError', field: 'options' })
  assert.throws(() => new MemoryWatchdog([]), { name: 'TypeError', field: 'options' })
})

test('WatchdogPolicy.observe: bad samples are argument errors, not crashes', () => {
  const p = new WatchdogPolicy()
  assert.throws(() => p.observe(), { name: 'TypeError', field: 'sample' })
  assert.throws(() => p.observe({ nowMs: 0, usageBytes: -1, limitBytes: 10 }), { name: 'RangeError', code: 'SEAWALL_INVALID_ARGUMENT', field: 'usageBytes' })
  assert.throws(() => p.observe({ nowMs: 0, usageBytes: 1, limitBytes: '10' }), { name: 'TypeError', field: 'limitBytes' })
  assert.throws(() => p.observe({ nowMs: Number.NaN, usageBytes: 1, limitBytes: 10 }), { name: 'RangeError', code: 'SEAWALL_INVALID_CLOCK' })
  assert.throws(() => p.observe({ nowMs: 0, usageBytes: 1, limitBytes: 10, heapUsedBytes: 0.5 }), { name: 'RangeError', field: 'heapUsedBytes' })
  assert.equal(p.counts().samples, 0)
  const a = p.observe({ nowMs: 0, usageBytes: 100, limitBytes: 1000, heapUsedBytes: null })
  assert.deepEqual(a, { level: 'normal', percent: 10, basis: 'limit', growthPercentPerMinute: null, trend: null, nextSampleMs: 300_000, actions: [] })
})

// --- the adapter, against a fake tree -----------------------------------------------------------

/** A watchdog reading a v2 tree with a 1 GiB limit; `set(mb)` changes the working set. */
function fakeWatchdog(name, options = {}) {
  const tree = new FakeTree(name).v2(100 * MIB, 0, GIB)
  const dir = tempDir(`${name}-dumps`)
  const events = []
  const exits = []
  const w = new MemoryWatchdog({
    probeRoot: tree.root,
    snapshotDir: dir,
    intervalMs: 60_000,
    alertIntervalMs: 1000,
    exit: (code) => exits.push(code),
    ...options,
  })
  for (const event of ['warn', 'recovered', 'spike', 'leakTrend', 'act', 'evidence', 'restart']) {
    w.on(event, (e) => events.push({ event, ...e }))
  }
  const set = (mb) => tree.file('/sys/fs/cgroup/memory.current', `${mb * MIB}\n`)
  return { w, dir, events, exits, set, tree }
}

const names = (events) => events.map((e) => (e.event === 'evidence' ? `evidence:${e.kind}` : e.event))

test('eventOnly: warn, act with a heap snapshot when there is room, recovered; never exits', async () => {
  const { w, dir, events, exits, set } = fakeWatchdog('event-only', { actMode: 'eventOnly', spikePercentPerMinute: 100 })
  const a1 = w.sampleNow()
  assert.equal(a1.level, 'normal')
  set(750)
  const a2 = w.sampleNow()
  assert.equal(a2.level, 'warn')
  set(850)
  const a3 = w.sampleNow()
  assert.equal(a3.level, 'act')
  assert.deepEqual(
    a3.actions.map((a) => a.kind),
    ['act', 'evidence'],
  )
  set(200)
  w.sampleNow()
  // Samples milliseconds apart: the jump to 750 MiB is also a spike (once per cooldown), with
  // its own evidence; the act's evidence comes regardless of that cooldown.
  assert.deepEqual(names(events), ['warn', 'spike', 'evidence:heap_snapshot', 'act', 'evidence:heap_snapshot', 'recovered'])
  const evidence = events.filter((e) => e.event === 'evidence').at(-1)
  assert.equal(evidence.trigger, 'act')
  assert.match(evidence.path, /seawall-memory-.*-act\.heapsnapshot$/)
  assert.equal(statSync(evidence.path).size, evidence.bytes)
  assert.ok(evidence.reason.includes('free'), evidence.reason)
  const snapshot = JSON.parse(readFileSync(evidence.path, 'utf8'))
  assert.ok(snapshot.snapshot && Array.isArray(snapshot.nodes), 'a heap snapshot has snapshot and nodes')
  assert.equal(readdirSync(dir).length, 2)
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.deepEqual(exits, [])
  const m = w.metrics()
  assert.equal(m.level, 'normal')
  assert.equal(m.limitSource, 'cgroup_v2_max')
  assert.equal(m.usageSource, 'cgroup_v2_working_set')
  assert.equal(m.usageBytes, 200 * MIB)
  assert.equal(m.oomKills, 1)
  assert.equal(m.counts.acts, 1)
  assert.equal(m.counts.heapSnapshots, 2)
  assert.equal(m.evidenceWritten, 2)
  assert.equal(m.lastEvidencePath, evidence.path)
  assert.ok(m.heapUsedBytes > 0 && m.heapLimitBytes > m.heapUsedBytes)
})

test('restart: evidence, then the drain hooks, then exit with 75', async () => {
  const order = []
  const { w, events, exits, set } = fakeWatchdog('restart', {
    snapshotHeadroomFactor: 2,
    drain: [
      async ({ timeoutMs, signal }) => {
        assert.equal(timeoutMs, 10_000)
        assert.equal(signal.aborted, false)
        await new Promise((resolve) => setTimeout(resolve, 10))
        order.push('pool drained')
      },
      () => order.push('server closed'),
    ],
    exit: (code) => {
      order.push(`exit ${code}`)
      exits.push(code)
    },
  })
  w.on('restart', () => order.push('restart event'))
  set(900)
  const a = w.sampleNow()
  assert.deepEqual(
    a.actions.map((x) => x.kind),
    ['warn', 'act', 'evidence', 'restart'],
  )
  assert.deepEqual(a.actions[3], { kind: 'restart', drainTimeoutMs: 10_000, exitCode: 75 })
  assert.equal(w.metrics().restarting, true)
  while (exits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  assert.deepEqual(order, ['restart event', 'server closed', 'pool drained', 'exit 75'])
  assert.deepEqual(names(events), ['warn', 'act', 'evidence:heap_snapshot', 'restart'])
  // Once restarting, the watchdog does not sample on its own any more.
  assert.equal(w.running, false)
})

test('restart: a hanging drain hook is cut off at drainTimeoutMs, a failing one is reported', async () => {
  const errors = []
  let aborted = null
  const { w, exits, set } = fakeWatchdog('drain-deadline', {
    drainTimeoutMs: 50,
    exitCode: 3,
    drain: [
      ({ signal }) =>
        new Promise(() => {
          signal.addEventListener('abort', () => {
            aborted = signal.reason
          })
        }),
      () => {
        throw new Error('drain broke')
      },
    ],
  })
  w.on('error', (e) => errors.push(e.message))
  set(900)
  const started = performance.now()
  w.sampleNow()
  while (exits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const took = performance.now() - started
  assert.deepEqual(exits, [3])
  assert.ok(took >= 45, `exited after ${took} ms, before the drain deadline`)
  assert.ok(aborted instanceof Error, 'the hanging hook was told through its signal')
  assert.deepEqual(errors, ['drain broke'])
})

test('a throwing listener does not stop the restart; its exception is reported as uncaught', () => {
  const script = `
    import { mkdtempSync, rmSync } from 'node:fs'
    import { tmpdir } from 'node:os'
    import { join } from 'node:path'
    import { MemoryWatchdog } from 'seawall'
    const uncaught = []
    process.on('uncaughtException', (e) => uncaught.push(e.message))
    const snapshotDir = mkdtempSync(join(tmpdir(), 'seawall-wd-listener-'))
    const w = new MemoryWatchdog({
      limitBytes: 1024 * 1024,
      snapshotDir,
      snapshotHeadroomFactor: 100,
      exit: (code) => {
        rmSync(snapshotDir, { recursive: true, force: true })
        console.log(JSON.stringify({ code, uncaught }))
      },
    })
    w.on('act', () => { throw new Error('listener broke') })
    w.sampleNow()
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { code: 75, uncaught: ['listener broke'] })
})

test('no headroom: a profile, not a snapshot, and it says why', () => {
  // usage 900 MiB of 1 GiB leaves ~124 MiB; with a factor of 100, no snapshot of any heap fits.
  const { w, events, set } = fakeWatchdog('profile', { actMode: 'eventOnly', snapshotHeadroomFactor: 100 })
  set(900)
  w.sampleNow()
  const evidence = events.find((e) => e.event === 'evidence')
  assert.equal(evidence.kind, 'profile')
  assert.match(evidence.path, /seawall-memory-.*-act\.heapprofile$/)
  assert.match(evidence.reason, /heap snapshot needs more than/)
  const profile = JSON.parse(readFileSync(evidence.path, 'utf8'))
  assert.ok(profile.head && profile.head.callFrame, 'a sampling heap profile has a head call frame')
  assert.equal(w.metrics().counts.profiles, 1)
})

test('rotation: at most maxDumpFiles evidence files, oldest removed first, other files kept', () => {
  const { w, dir, events, set } = fakeWatchdog('rotation', {
    actMode: 'eventOnly',
    cooldownMs: 0,
    maxDumpFiles: 2,
    snapshotHeadroomFactor: 100,
  })
  writeFileSync(join(dir, 'notes.txt'), 'not evidence')
  set(900)
  for (let i = 0; i < 4; i++) w.sampleNow()
  const written = events.filter((e) => e.event === 'evidence').map((e) => e.path.split('/').pop())
  assert.equal(written.length, 4)
  assert.deepEqual(readdirSync(dir).sort(), ['notes.txt', ...written.slice(2)].sort())
  const last = events.filter((e) => e.event === 'evidence').at(-1)
  assert.deepEqual(last.deleted, [written[1]])
})

test('a snapshot that would not fit maxDumpBytes becomes a profile, and says so', () => {
  // 1 MiB of evidence cannot hold a snapshot of this process's heap (about twice its size).
  const { w, events, set } = fakeWatchdog('too-big', { actMode: 'eventOnly', maxDumpBytes: 2 ** 20 })
  set(900)
  w.sampleNow()
  const evidence = events.find((e) => e.event === 'evidence')
  assert.equal(evidence.kind, 'profile')
  assert.match(evidence.reason, /would not fit maxDumpBytes/)
  assert.ok(evidence.bytes <= 2 ** 20)
})

test('a steady growth is a leakTrend event with the projected time to the limit', async () => {
  const { w, events, set } = fakeWatchdog('trend', {
    actMode: 'eventOnly',
    trendWindowMs: 400,
    trendMinSamples: 4,
    spikePercentPerMinute: 100,
  })
  const trends = []
  w.on('leakTrend', (e) => trends.push(e.trend))
  // Usage proportional to the time elapsed, so the fit is a line however late the timers run.
  const t0 = performance.now()
  for (let i = 0; i < 40 && trends.length === 0; i++) {
    set(100 + Math.round((performance.now() - t0) / 5))
    w.sampleNow()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(trends.length, 1, `events: ${names(events)}`)
  const [trend] = trends
  assert.ok(trend.bytesPerSecond > 0 && trend.r2 >= 0.8 && trend.samples >= 4, JSON.stringify(trend))
  assert.ok(trend.timeToLimitMs > 0, JSON.stringify(trend))
  const m = w.metrics()
  assert.ok(m.trendBytesPerSecond > 0 && m.timeToLimitMs > 0)
  assert.equal(m.counts.leakTrends, 1)
})

test('the probe failing is an error event, and sampling goes on', () => {
  const errors = []
  const w = new MemoryWatchdog({ probeRoot: tempDir('no-proc') })
  w.on('error', (e) => errors.push(e.code))
  assert.equal(w.sampleNow(), null)
  assert.deepEqual(errors, ['SEAWALL_MEMORY_PROBE_FAILED'])
  assert.equal(w.metrics().level, 'normal')
})

test('stop() ends the sampling; start() samples at once', () => {
  const { w, events, set } = fakeWatchdog('start-stop', { actMode: 'eventOnly' })
  set(750)
  const samples = []
  w.on('sample', (s) => samples.push(s.assessment.level))
  w.start()
  assert.equal(w.running, true)
  assert.deepEqual(samples, ['warn'])
  assert.deepEqual(names(events), ['warn'])
  w.stop()
  assert.equal(w.running, false)
})

test('a started watchdog never keeps the process alive', () => {
  const script = `
    import { MemoryWatchdog } from 'seawall'
    const w = new MemoryWatchdog({ intervalMs: 60000, actMode: 'eventOnly' })
    w.start()
    console.log(w.running)
  `
  const started = performance.now()
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(r.error, undefined, `did not exit by itself: ${r.error}`)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'true')
  assert.ok(performance.now() - started < 10_000)
})
