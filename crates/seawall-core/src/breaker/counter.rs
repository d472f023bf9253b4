//! A counter that threads bump without a locked instruction.
//!
//! The breaker's fast path counts every call it decides without the core (admitted, succeeded,
//! rejected). An atomic `fetch_add` is a locked read-modify-write, about 5 ns even uncontended,
//! and the profile of a rejection showed it as more than half of the breaker's own time. So each
//! of the first [`SLOTS`] threads that use any breaker owns one slot of every counter and bumps
//! it with a plain load and store (it is the slot's only writer); other threads share one atomic
//! slot. Readers sum the slots; a slot is never reset, so the sum only grows and the reader keeps
//! what it has already taken.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Threads that get a slot of their own; the rest share one. Each slot is a cache line, so a
/// breaker's three counters cost `3 × (SLOTS + 1) × 64` bytes.
pub(crate) const SLOTS: usize = 8;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

/// A monotonically growing count, bumped per thread.
#[derive(Debug, Default)]
pub(crate) struct ThreadCounter {
    own: [Slot; SLOTS],
    shared: Slot,
}

impl ThreadCounter {
    /// Adds one.
    #[inline]
    pub fn add_one(&self) {
        match thread_slot() {
            Some(i) => {
                let slot = &self.own[i].0;
                // Only this thread writes this slot (see `thread_slot`), so a load and a store
                // cannot lose an update. Release: a reader that sees the new value also sees
                // what this thread did before (its admission before its success).
                slot.store(
                    slot.load(Ordering::Relaxed).wrapping_add(1),
                    Ordering::Release,
                );
            }
            None => {
                self.shared.0.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Everything added so far (wrapping, so only differences between totals mean anything).
    pub fn total(&self) -> u64 {
        self.own
            .iter()
            .fold(self.shared.0.load(Ordering::Acquire), |sum, s| {
                sum.wrapping_add(s.0.load(Ordering::Acquire))
            })
    }
}

/// Which slots are owned by a live thread.
static TAKEN: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// A thread's slot: `None` until the thread first counts, then its slot index, or `Some(None)`
/// if all were taken. Dropped when the thread exits, giving the slot back; after that, the
/// thread-local is gone and anything the thread still counts goes to the shared slot, so a slot
/// never has two writers.
struct ThreadSlot(Cell<Option<Option<usize>>>);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        if let Some(Some(i)) = self.0.get() {
            // Release: the next owner's first load sees this thread's last store.
            TAKEN[i].store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static SLOT: ThreadSlot = const { ThreadSlot(Cell::new(None)) };
}

#[inline]
fn thread_slot() -> Option<usize> {
    SLOT.try_with(|s| match s.0.get() {
        Some(slot) => slot,
        None => {
            let slot = claim();
            s.0.set(Some(slot));
            slot
        }
    })
    .ok()
    .flatten()
}

#[cold]
fn claim() -> Option<usize> {
    TAKEN.iter().position(|taken| {
        taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn counts_from_more_threads_than_slots_add_up() {
        let counter = Arc::new(ThreadCounter::default());
        let threads: Vec<_> = (0..SLOTS * 2 + 3)
            .map(|_| {
                let c = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.add_one();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        assert_eq!(counter.total(), (SLOTS as u64 * 2 + 3) * 10_000);
    }

    #[test]
    fn a_slot_freed_by_an_exited_thread_is_reused_without_losing_counts() {
        let counter = Arc::new(ThreadCounter::default());
        for round in 1..=(SLOTS as u64 * 3) {
            let c = Arc::clone(&counter);
            std::thread::spawn(move || c.add_one())
                .join()
                .expect("no panic");
            assert_eq!(counter.total(), round);
        }
    }
}
