// Real leaks in child processes (the end-to-end test). Each child leaks on purpose under
// a limit it is given, with a short interval, and reports the watchdog's events as JSON lines;
// the test checks the order of events (not their timing: the machine may be loaded), the
// evidence file, that the drain hook ran, and that the child left with the restart code before
// its usage reached the limit.
//
// 1. leak-slow-snapshot.mjs: the real, cgroup-aware probe; a limit `limitBytes` set 320 MiB
//    above the usage at start; the leak is in Buffers, so the heap stays small and a heap
//    snapshot is safe: one is written and must parse as a V8 heap snapshot.
// 2. leak-fast-profile.mjs: a fast leak on the V8 heap with little headroom (the heap is large
//    against what is left under the limit): no snapshot may be attempted, a sampling heap
//    profile is written instead, and the process still exits with 75. Its probe reads a root
//    that links the real /proc/self/status and /proc/meminfo but has no cgroup, so usage is the
//    child's own RSS (the probe's no-cgroup rule): the machine's cgroup is shared with every
//    other process of the session, and the headroom this test needs must not depend on them.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const MIB = 2 ** 20
const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

const temps = []
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
})

function tempDir(name) {
  const dir = mkdtempSync(join(tmpdir(), `seawall-leak-${name}-`))
  temps.push(dir)
  return dir
}

/** Runs node with `args`; resolves with the exit code, the signal, the JSON lines and stderr. */
function run(args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const lines = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          try {
            return JSON.parse(l)
          } catch {
            return { event: 'garbage', line: l }
          }
        })
      resolve({ code, signal, lines, stderr })
    })
  })
}

/** The events other than samples, in order. */
const eventsOf = (lines) => lines.filter((l) => l.event !== 'sample').map((l) => l.event)

function checkRestartSequence(r, limitBytes) {
  const events = eventsOf(r.lines)
  const detail = `events ${JSON.stringify(events)}; stderr: ${r.stderr.slice(-2000)}`
  assert.equal(r.signal, null, `killed by ${r.signal} (${detail})`)
  assert.equal(r.code, 75, `exit code ${r.code} (${detail})`)
  assert.ok(!events.includes('error') && !events.includes('garbage'), detail)
  const warn = events.indexOf('warn')
  const act = events.indexOf('act')
  const restart = events.indexOf('restart')
  const drained = events.indexOf('drained')
  assert.ok(warn >= 0 && act > warn, `warn, then act: ${detail}`)
  assert.ok(restart > act && drained > restart, `act, restart, then the drain hook: ${detail}`)
  assert.equal(events.at(-1), 'drained', `the drain hook ran last, then the exit: ${detail}`)
  assert.equal(events.filter((e) => e === 'act').length, 1, detail)
  // Before the limit: every sample, and the usage read in the drain hook, stayed below it.
  const samples = r.lines.filter((l) => l.event === 'sample')
  assert.ok(samples.length >= 2, detail)
  for (const s of samples) assert.ok(s.usageBytes < limitBytes, `a sample at ${s.usageBytes} of ${limitBytes}`)
  const last = r.lines.at(-1)
  assert.ok(last.usageBytes < limitBytes, `usage ${last.usageBytes} reached the limit ${limitBytes}`)
  // The act came at the act level, the last sample before it below (the leak was seen coming).
  const actLine = r.lines.find((l) => l.event === 'act')
  assert.ok(actLine.percent >= 80 && actLine.percent < 100, JSON.stringify(actLine))
  return r.lines.filter((l) => l.event === 'evidence')
}

test('a slow leak with room: warn, act, a valid heap snapshot, drain, exit 75 below the limit', async () => {
  const dir = tempDir('snapshot')
  const r = await run([fixture('leak-slow-snapshot.mjs'), dir, '320'], 25_000)
  const start = r.lines.find((l) => l.event === 'start')
  assert.ok(start, `no start line; stderr: ${r.stderr}`)
  const evidence = checkRestartSequence(r, start.limitBytes)
  // The real probe was used: usage as the kernel counts it, against the configured limit.
  const first = r.lines.find((l) => l.event === 'sample')
  assert.equal(first.limitSource, 'configured')
  const atAct = evidence.find((e) => e.trigger === 'act')
  assert.ok(atAct, `no evidence at the act level: ${JSON.stringify(evidence)}`)
  for (const e of evidence) assert.equal(e.kind, 'heap_snapshot', JSON.stringify(e))
  assert.match(atAct.path, /seawall-memory-[^/]*-act\.heapsnapshot$/)
  assert.ok(existsSync(atAct.path), atAct.path)
  const snapshot = JSON.parse(readFileSync(atAct.path, 'utf8'))
  assert.ok(snapshot.snapshot && snapshot.snapshot.meta, 'snapshot.meta')
  assert.ok(Array.isArray(snapshot.nodes) && snapshot.nodes.length > 0, 'nodes')
  assert.ok(Array.isArray(snapshot.strings) && snapshot.strings.length > 0, 'strings')
  for (const name of readdirSync(dir)) assert.match(name, /^seawall-memory-/)
})

test('a fast leak with little headroom: no snapshot attempted, a profile instead, still exit 75', async () => {
  const dir = tempDir('profile')
  const root = tempDir('root')
  mkdirSync(join(root, 'proc', 'self'), { recursive: true })
  symlinkSync('/proc/self/status', join(root, 'proc', 'self', 'status'))
  symlinkSync('/proc/self/statm', join(root, 'proc', 'self', 'statm'))
  symlinkSync('/proc/meminfo', join(root, 'proc', 'meminfo'))
  const limitMb = 320
  const r = await run(['--max-old-space-size=1024', fixture('leak-fast-profile.mjs'), dir, root, String(limitMb)], 25_000)
  const evidence = checkRestartSequence(r, limitMb * MIB)
  const first = r.lines.find((l) => l.event === 'sample')
  assert.equal(first.usageSource, 'process_rss')
  assert.equal(first.limitSource, 'configured')
  assert.ok(evidence.length >= 1)
  for (const e of evidence) {
    assert.equal(e.kind, 'profile', `a snapshot was attempted: ${JSON.stringify(e)}`)
    assert.ok(e.freeBytes <= e.neededBytes, JSON.stringify(e))
    assert.match(e.reason, /heap snapshot needs more than/)
  }
  const files = readdirSync(dir)
  assert.ok(!files.some((f) => f.endsWith('.heapsnapshot')), `files: ${files}`)
  const atAct = evidence.find((e) => e.trigger === 'act')
  assert.ok(atAct, `no evidence at the act level: ${JSON.stringify(evidence)}`)
  assert.match(atAct.path, /seawall-memory-[^/]*-act\.heapprofile$/)
  const profile = JSON.parse(readFileSync(atAct.path, 'utf8'))
  assert.ok(profile.head && profile.head.callFrame, 'a sampling heap profile has a head call frame')
  // The profile covers the growth since the warning: the leaking function is in it.
  const frames = []
  const walk = (node) => {
    frames.push(node.callFrame)
    for (const child of node.children ?? []) walk(child)
  }
  walk(profile.head)
  assert.ok(
    frames.some((f) => f.functionName === 'grow' && f.url.endsWith('leak-fast-profile.mjs')),
    'the leaking function `grow` is in the profile',
  )
})
