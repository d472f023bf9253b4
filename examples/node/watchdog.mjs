// The memory watchdog watching a process that leaks, in eventOnly mode so the example reports
// instead of restarting, with a short interval so it takes about a second.
//
//   bash bindings/node/scripts/test.sh   # or: (cd bindings/node && npm ci && npm run build)
//   node examples/node/watchdog.mjs
//
// In production keep the defaults (a sample every 5 minutes, a warning at 70 % and a restart
// at 80 % of the limit the kernel enforces, exit code 75 for the supervisor) and give the
// watchdog your drain hooks:
//
//   new MemoryWatchdog({ snapshotDir: '/var/dumps', drain: ({ timeoutMs }) => pool.drain({ timeoutMs }) }).start()
//
// Here the limit is set 200 MiB above what the process uses at start, and the process then
// leaks 4 MiB of Buffers every 20 ms: the watchdog samples faster as the growth approaches the
// act level, warns, reports the spike, acts, and writes a heap snapshot (the heap is small, so
// there is room for one) into a temporary directory. Then the example stops the watchdog and
// the leak, and ends by itself: the watchdog's timer never keeps a process alive.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { MemoryWatchdog, readMemory } from '../../bindings/node/index.mjs'

const MIB = 2 ** 20
const mib = (bytes) => `${(bytes / MIB).toFixed(0)} MiB`
const started = performance.now()
const now = () => `${((performance.now() - started) / 1000).toFixed(2).padStart(5)}s`

const reading = readMemory()
console.log(
  `probe: ${mib(reading.usageBytes)} in use (${reading.usageSource}) of ${mib(reading.limitBytes)} (${reading.limitSource}), cgroup ${reading.cgroup}`,
)

const snapshotDir = mkdtempSync(join(tmpdir(), 'seawall-watchdog-example-'))
const watchdog = new MemoryWatchdog({
  actMode: 'eventOnly',
  intervalMs: 200,
  alertIntervalMs: 20,
  limitBytes: reading.usageBytes + 200 * MIB,
  snapshotDir,
  onWarn: (e) => console.log(`${now()} warn: ${e.percent.toFixed(1)} % of the ${e.basis}`),
  onAct: (e) => console.log(`${now()} act: ${e.percent.toFixed(1)} % of the ${e.basis}`),
})
watchdog.on('spike', (e) => console.log(`${now()} spike: growing ${e.percentPerMinute.toFixed(0)} % of the limit per minute`))
watchdog.on('evidence', (e) => console.log(`${now()} evidence: ${e.kind} (${mib(e.bytes)}, ${e.tookMs.toFixed(0)} ms), ${e.reason}`))
watchdog.on('error', (e) => console.error(`${now()} watchdog error: ${e.message}`))

const leak = []
const leaking = setInterval(() => leak.push(Buffer.alloc(4 * MIB, 1)), 20)

const done = new Promise((resolve) => {
  watchdog.on('act', resolve)
  // Should the act level never come (a machine where usage cannot be measured), stop anyway.
  setTimeout(resolve, 10_000).unref()
})
watchdog.start()
await done
// Let the evidence be written: it comes right after the act event, in the same sample.
await new Promise((resolve) => setImmediate(resolve))

watchdog.stop()
clearInterval(leaking)
leak.length = 0
const m = watchdog.metrics()
console.log(
  `${now()} stopped after ${m.counts.samples} samples: level ${m.level}, ${m.counts.warnings} warning(s), ${m.counts.acts} act(s), ${m.evidenceWritten} evidence file(s)`,
)
rmSync(snapshotDir, { recursive: true, force: true })
