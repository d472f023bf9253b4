// Behaviour only a whole process shows: it exits by itself after using breakers, budgets,
// retries, CallPolicy and pools (deadline and pool timers are unref'd while nobody waits), a
// retry's wait and a pool's back-off are not cut short by the process exiting, and a listener
// that throws is reported without corrupting the breaker.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

function runNode(args) {
  // A process kept alive by a leaked handle would run until this timeout, then fail the test.
  return spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 20_000 })
}

test('a script that created and used breakers exits by itself with code 0', () => {
  const r = runNode([fixture('uses-breakers.mjs')])
  assert.equal(r.error, undefined, `did not exit by itself: ${r.error}`)
  assert.equal(r.signal, null)
  assert.equal(r.status, 0, r.stderr)
  // 20 breakers × (open + reject + open→closed by reset on the restored copy).
  assert.equal(r.stdout.trim(), 'done 60')
})

test('a throwing listener neither changes the call nor the breaker, and is reported', () => {
  const r = runNode([fixture('throwing-listener.mjs')])
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.deepEqual(out.results, ['a', 'down', 'SEAWALL_BREAKER_OPEN', 'probe'])
  assert.deepEqual(out.order, ['first:open', 'second:open', 'first:half_open', 'second:half_open'])
  assert.deepEqual(out.handled, ['listener broke on open', 'reject listener broke', 'listener broke on half_open'])
  assert.equal(out.state, 'half_open')
  assert.equal(out.inFlight, 0)
  assert.equal(out.permitted, 3)
  assert.equal(out.successes, 2)
  assert.equal(out.failures, 1)
  assert.equal(out.rejected, 1)
})

test('without an uncaughtException handler, a throwing listener fails the process like any callback', () => {
  const r = runNode([fixture('throwing-listener.mjs'), '--no-handler'])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /listener broke on open/)
})

test('garbage-collected breakers give their native slot back', () => {
  const r = runNode(['--expose-gc', fixture('slots-freed.cjs')])
  assert.equal(r.status, 0, r.stderr)
  // 10 000 breakers were created in 5 rounds; freed slots are reused, so the table stays near
  // one round's size instead of growing with every breaker ever made.
  const { highest } = JSON.parse(r.stdout)
  assert.ok(highest < 4000, `slot ${highest} after 10 000 breakers: slots are not reused`)
})

test('a script that ran budgets, retries and CallPolicy, deadlines included, exits at once by itself', () => {
  const started = performance.now()
  const r = runNode([fixture('uses-budgets.mjs')])
  const took = performance.now() - started
  assert.equal(r.error, undefined, `did not exit by itself: ${r.error}`)
  assert.equal(r.signal, null)
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.deepEqual(
    { timedOut: out.timedOut, retried: out.retried, outcome: out.outcome, state: out.state, timers: out.timers },
    { timedOut: 20, retried: 'retried', outcome: 'SEAWALL_BREAKER_OPEN', state: 'open', timers: 0 },
  )
  // 15 s deadlines were armed and never fired: the process did not wait for them.
  assert.ok(took < 5000, `the process took ${Math.round(took)} ms`)
})

test('a script awaiting a retry is not ended by the process while the retry waits', () => {
  const r = runNode([fixture('awaits-retry.mjs')])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'second attempt after 2 calls')
})

test('a script that leaves connections idle in a pool exits at once by itself', () => {
  const started = performance.now()
  const r = runNode([fixture('uses-pool.mjs')])
  const took = performance.now() - started
  assert.equal(r.error, undefined, `did not exit by itself: ${r.error}`)
  assert.equal(r.signal, null)
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { served: 20, idle: 4, used: 0 })
  // The idle timeout (10 min) and leak threshold (1 min) were armed and never waited for.
  assert.ok(took < 5000, `the process took ${Math.round(took)} ms`)
})

test('a caller waiting out a pool back-off keeps the process alive until it is served', () => {
  const r = runNode([fixture('pool-waits-for-backoff.mjs')])
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`)
  const out = JSON.parse(r.stdout)
  assert.equal(out.id, 2)
  assert.equal(out.attempts, 2)
  // The back-off is 200 ms × (0.5 + 0.5 u): at least 100 ms.
  assert.ok(out.waitedMs >= 100, `served after ${out.waitedMs} ms`)
})
