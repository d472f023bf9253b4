'use strict'

// One timer for every deadline in this JS environment (each worker thread has its own).
//
// Deadlines sit in a binary min-heap ordered by `due` (a `performance.now()` reading), and one
// unref'd `setTimeout` is armed for the earliest. Per call that is a heap push and a flag: no
// AbortController, no timer, no closure, which is what keeps a deadline that never fires far
// below a microsecond. Work that finishes first only unqueues its entry (a flag); dead entries
// are dropped when they reach the top, all at once when nothing is left alive, or by a rebuild
// when they outnumber the live ones, so the heap stays as large as the work in flight.
//
// The timer is re-armed only for a deadline earlier than the armed one; an armed timer whose
// entry finished early still fires once, finds nothing due and re-arms for the next live
// entry (or nothing). It is unref'd: a deadline never keeps the process alive, since work that
// still matters holds its own handles (a socket, a child process).
//
// Entries are objects with `due` (number), `queued` (boolean) and `expire()`. `expire()` runs
// from the timer; an exception there is reported like any callback's and the queue goes on.

const { reportCallbackError } = require('./errors.js')

const { performance } = globalThis

// setTimeout's limit; past it Node fires after 1 ms instead (with a warning).
const MAX_TIMER_MS = 2 ** 31 - 1
// Below this many entries a rebuild is not worth it.
const REBUILD_MIN = 64

/** @type {{ due: number, queued: boolean, expire(): void }[]} */
let heap = []
let live = 0
/** @type {ReturnType<typeof setTimeout> | null} */
let timer = null
let timerDue = Infinity

/** Queues `entry` to expire at `entry.due` (milliseconds on `performance.now()`). */
function schedule(entry) {
  entry.queued = true
  live++
  push(entry)
  if (entry.due < timerDue) arm(entry.due)
}

/** Takes `entry` out of the queue (it will not expire); doing it twice does nothing. */
function unschedule(entry) {
  if (!entry.queued) return
  entry.queued = false
  live--
  if (live === 0) {
    // Popping keeps the array's storage (setting its length to 0 went through a slow setter).
    while (heap.length > 0) heap.pop()
  } else if (heap.length > REBUILD_MIN && heap.length > 4 * live) {
    heap = heap.filter((e) => e.queued)
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i)
  }
}

/** Deadlines queued and not yet expired or unqueued (for tests). */
function pending() {
  return live
}

/** Whether the shared timer is armed (for tests). */
function armed() {
  return timer !== null
}

function arm(due) {
  if (timer !== null) {
    if (timerDue <= due) return
    clearTimeout(timer)
  }
  const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(due - performance.now())))
  timer = setTimeout(onTimer, delay)
  timer.unref()
  timerDue = due
}

function onTimer() {
  timer = null
  timerDue = Infinity
  const now = performance.now()
  while (heap.length > 0) {
    const top = heap[0]
    if (top.queued && top.due > now) break
    pop()
    if (!top.queued) continue
    top.queued = false
    live--
    try {
      top.expire()
    } catch (error) {
      reportCallbackError(error)
    }
  }
  if (live === 0) {
    heap.length = 0
  } else {
    // Drop dead entries at the top so the timer is armed for a live one.
    while (heap.length > 0 && !heap[0].queued) pop()
    if (heap.length > 0) arm(heap[0].due)
  }
}

function push(entry) {
  heap.push(entry)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (heap[parent].due <= entry.due) break
    heap[i] = heap[parent]
    i = parent
  }
  heap[i] = entry
}

function pop() {
  const last = heap.pop()
  if (heap.length > 0 && last !== undefined) {
    heap[0] = last
    siftDown(0)
  }
}

function siftDown(start) {
  const n = heap.length
  const entry = heap[start]
  let i = start
  for (;;) {
    const left = 2 * i + 1
    if (left >= n) break
    const right = left + 1
    const child = right < n && heap[right].due < heap[left].due ? right : left
    if (heap[child].due >= entry.due) break
    heap[i] = heap[child]
    i = child
  }
  heap[i] = entry
}

module.exports = { schedule, unschedule, pending, armed }
