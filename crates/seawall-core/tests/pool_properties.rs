//! Property tests of the pool engine with a simulated adapter: under any interleaving of
//! acquires, releases, create and validation results, timeouts, cancellations, resizes and a
//! drain, the limits hold, every waiter ends exactly once, no slot is handed out twice, and the
//! metrics add up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use seawall_core::pool::{
    Acquire, Action, Lease, PoolConfig, PoolCore, PoolError, SlotId, WaiterId,
};
use seawall_core::{Budget, TimeoutPolicy, Timestamp};

#[derive(Debug, Clone)]
enum Op {
    Acquire { budget_ms: Option<u64> },
    Release { pick: usize, broken: bool },
    Created { pick: usize, ok: bool },
    Validated { pick: usize, ok: bool },
    Cancel { pick: usize },
    Advance { ms: u64 },
    Resize { max: u32 },
    Drain { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => prop::option::of(1u64..3_000).prop_map(|budget_ms| Op::Acquire { budget_ms }),
        8 => (any::<usize>(), prop::bool::weighted(0.15)).prop_map(|(pick, broken)| Op::Release { pick, broken }),
        8 => (any::<usize>(), prop::bool::weighted(0.7)).prop_map(|(pick, ok)| Op::Created { pick, ok }),
        4 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(pick, ok)| Op::Validated { pick, ok }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        6 => (0u64..2_000).prop_map(|ms| Op::Advance { ms }),
        1 => (1u32..6).prop_map(|max| Op::Resize { max }),
        1 => (0u64..3_000).prop_map(|ms| Op::Drain { ms }),
    ]
}

fn config() -> impl Strategy<Value = PoolConfig> {
    (1u32..5, 0u32..3, 0u32..6, prop::bool::ANY).prop_map(|(max, min_idle, waiters, leaks)| {
        PoolConfig::builder()
            .max_size(max)
            .min_idle(min_idle.min(max))
            .max_waiters(waiters)
            .acquire_timeout(Duration::from_millis(1_000))
            .create_timeout(Duration::from_millis(800))
            .idle_timeout(Some(Duration::from_millis(2_000)))
            .max_lifetime(Some(Duration::from_millis(5_000)))
            .validate_after(Some(Duration::from_millis(300)))
            .leak_threshold(leaks.then_some(Duration::from_millis(1_500)))
            .create_backoff(Duration::from_millis(10), Duration::from_millis(200))
            .seed(Some(3))
            .build_under(Duration::from_secs(15))
            .expect("generated configs are valid")
    })
}

fn pick<T: Copy + Ord>(set: &BTreeSet<T>, i: usize) -> Option<T> {
    (!set.is_empty()).then(|| *set.iter().nth(i % set.len()).expect("in range"))
}

#[derive(Default)]
struct Model {
    waiters: BTreeMap<WaiterId, Timestamp>,
    held: BTreeSet<Lease>,
    creating: BTreeSet<SlotId>,
    validating: BTreeSet<SlotId>,
    destroyed_while_held: u64,
}

impl Model {
    /// Applies the engine's actions; returns whether a create was started.
    fn apply(&mut self, core: &mut PoolCore) -> Result<bool, TestCaseError> {
        let mut created = false;
        while let Some(a) = core.poll_action() {
            match a {
                Action::Create { slot, .. } => {
                    prop_assert!(self.creating.insert(slot), "slot {slot:?} created twice");
                    created = true;
                }
                Action::Validate { slot } => {
                    prop_assert!(self.validating.insert(slot));
                }
                Action::Destroy { slot, .. } => {
                    self.creating.remove(&slot);
                    self.validating.remove(&slot);
                    let before = self.held.len();
                    self.held.retain(|l| l.slot() != slot);
                    self.destroyed_while_held += (before - self.held.len()) as u64;
                }
                Action::Hand { waiter, lease } => {
                    let slot = lease.slot();
                    prop_assert!(
                        self.waiters.remove(&waiter).is_some(),
                        "waiter {waiter:?} served twice or never waited"
                    );
                    prop_assert!(
                        self.held.iter().all(|l| l.slot() != slot),
                        "slot {slot:?} handed out twice"
                    );
                    self.held.insert(lease);
                    self.validating.remove(&slot);
                }
                Action::Fail { waiter, .. } => {
                    prop_assert!(
                        self.waiters.remove(&waiter).is_some(),
                        "waiter {waiter:?} failed twice or never waited"
                    );
                }
            }
        }
        Ok(created)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn limits_hold_and_nothing_is_lost(
        config in config(),
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let mut core = PoolCore::new(config.clone());
        let mut model = Model::default();
        let mut now_ms = 0u64;
        let mut max = config.max_size();
        let mut peak = max;
        let mut drained = false;
        core.handle_timeout(Timestamp::ZERO);
        model.apply(&mut core)?;

        for op in ops {
            let now = Timestamp::from_millis(now_ms);
            match op {
                Op::Acquire { budget_ms } => {
                    let budget = budget_ms.map(|ms| {
                        Budget::new(now, Duration::from_millis(ms), TimeoutPolicy::DEFAULT)
                    });
                    match core.acquire(now, budget.as_ref()) {
                        Ok(Acquire::Ready(lease)) => {
                            prop_assert!(
                                model.held.iter().all(|l| l.slot() != lease.slot()),
                                "ready slot already held"
                            );
                            model.held.insert(lease);
                        }
                        Ok(Acquire::Wait(w)) => {
                            let deadline = now.saturating_add(Duration::from_millis(
                                budget_ms.unwrap_or(1_000).min(1_000),
                            ));
                            model.waiters.insert(w, deadline);
                        }
                        Err(PoolError::Closed) => prop_assert!(drained),
                        Err(_) => {}
                    }
                }
                Op::Release { pick: i, broken } => {
                    if let Some(lease) = pick(&model.held, i) {
                        model.held.remove(&lease);
                        prop_assert!(core.release(lease, broken, now));
                        model.apply(&mut core)?;
                        prop_assert!(!core.release(lease, false, now), "double release accepted");
                    }
                }
                Op::Created { pick: i, ok } => {
                    if let Some(slot) = pick(&model.creating, i) {
                        model.creating.remove(&slot);
                        if ok {
                            core.handle_created(slot, now);
                        } else {
                            core.handle_create_failed(slot, "connection refused", now);
                        }
                    }
                }
                Op::Validated { pick: i, ok } => {
                    if let Some(slot) = pick(&model.validating, i) {
                        model.validating.remove(&slot);
                        core.handle_validated(slot, ok, now);
                    }
                }
                Op::Cancel { pick: i } => {
                    let ids: BTreeSet<WaiterId> = model.waiters.keys().copied().collect();
                    if let Some(w) = pick(&ids, i) {
                        model.waiters.remove(&w);
                        prop_assert!(core.cancel(w, now));
                    }
                }
                Op::Advance { ms } => {
                    now_ms += ms;
                    let now = Timestamp::from_millis(now_ms);
                    core.handle_timeout(now);
                    model.apply(&mut core)?;
                    for (w, deadline) in &model.waiters {
                        prop_assert!(*deadline > now, "waiter {w:?} outlived its deadline");
                    }
                }
                Op::Resize { max: m } => {
                    core.resize(m, now).expect("valid size");
                    max = m;
                    peak = peak.max(m);
                }
                Op::Drain { ms } => {
                    core.drain(now, now.saturating_add(Duration::from_millis(ms)));
                    drained = true;
                }
            }
            let created = model.apply(&mut core)?;
            let m = core.metrics(Timestamp::from_millis(now_ms));
            let total = m.idle + m.used + m.creating;
            if created {
                prop_assert!(total <= max, "{total} connections > max_size {max} after a create");
            }
            prop_assert_eq!(m.pending_requests as usize, model.waiters.len());
            prop_assert_eq!(m.creating as usize, model.creating.len());
            prop_assert_eq!(m.used as usize, model.held.len() + model.validating.len());
            prop_assert_eq!(
                m.acquired,
                m.released + model.held.len() as u64 + model.destroyed_while_held
            );
            // The queue holds `max_waiters`; callers admitted while their connection was being
            // validated (at most one per connection) rejoin it if the validation fails.
            prop_assert!(m.pending_requests <= config.max_waiters() + peak);
        }

        // Finish: drain with a deadline, let every outstanding create resolve, and fire it.
        let now = Timestamp::from_millis(now_ms);
        core.drain(now, now.saturating_add(Duration::from_millis(100)));
        model.apply(&mut core)?;
        for slot in std::mem::take(&mut model.creating) {
            core.handle_created(slot, now);
        }
        for slot in std::mem::take(&mut model.validating) {
            core.handle_validated(slot, true, now);
        }
        // Past any drain deadline an op may have set (at most 3 s ahead).
        core.handle_timeout(now.saturating_add(Duration::from_millis(3_100)));
        model.apply(&mut core)?;
        prop_assert!(model.waiters.is_empty(), "waiters left after close: {:?}", model.waiters);
        prop_assert!(core.is_closed());
        let m = core.metrics(now);
        prop_assert_eq!(m.idle + m.used + m.creating, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An adapter that re-arms its timer only when `poll_timeout_before` says so never sleeps
    /// past a timeout: its timer is always at or before the engine's next one.
    #[test]
    fn the_cheap_timer_check_never_misses_an_earlier_timeout(
        config in config(),
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let mut core = PoolCore::new(config);
        let mut model = Model::default();
        let mut now_ms = 0u64;
        core.handle_timeout(Timestamp::ZERO);
        model.apply(&mut core)?;
        // The timer task's first look.
        let mut armed = core.poll_timeout();

        for (step, op) in ops.into_iter().enumerate() {
            let now = Timestamp::from_millis(now_ms);
            match op {
                Op::Acquire { budget_ms } => {
                    let budget = budget_ms.map(|ms| {
                        Budget::new(now, Duration::from_millis(ms), TimeoutPolicy::DEFAULT)
                    });
                    match core.acquire(now, budget.as_ref()) {
                        Ok(Acquire::Ready(lease)) => {
                            model.held.insert(lease);
                        }
                        Ok(Acquire::Wait(w)) => {
                            model.waiters.insert(w, now);
                        }
                        Err(_) => {}
                    }
                }
                Op::Release { pick: i, broken } => {
                    if let Some(lease) = pick(&model.held, i) {
                        model.held.remove(&lease);
                        core.release(lease, broken, now);
                    }
                }
                Op::Created { pick: i, ok } => {
                    if let Some(slot) = pick(&model.creating, i) {
                        model.creating.remove(&slot);
                        if ok {
                            core.handle_created(slot, now);
                        } else {
                            core.handle_create_failed(slot, "connection refused", now);
                        }
                    }
                }
                Op::Validated { pick: i, ok } => {
                    if let Some(slot) = pick(&model.validating, i) {
                        model.validating.remove(&slot);
                        core.handle_validated(slot, ok, now);
                    }
                }
                Op::Cancel { pick: i } => {
                    let ids: BTreeSet<WaiterId> = model.waiters.keys().copied().collect();
                    if let Some(w) = pick(&ids, i) {
                        model.waiters.remove(&w);
                        core.cancel(w, now);
                    }
                }
                Op::Advance { ms } => {
                    // The timer fires (at `armed` or later: handle_timeout at `now` covers it),
                    // then re-arms from the full computation.
                    now_ms += ms;
                    core.handle_timeout(Timestamp::from_millis(now_ms));
                    model.apply(&mut core)?;
                    armed = core.poll_timeout();
                }
                Op::Resize { max } => {
                    core.resize(max, now).expect("valid size");
                }
                Op::Drain { ms } => {
                    core.drain(now, now.saturating_add(Duration::from_millis(ms)));
                }
            }
            model.apply(&mut core)?;
            // What the adapter does after every operation.
            if let Some(t) = core.poll_timeout_before(armed) {
                armed = Some(t);
            }
            // Checked on every other step only: the full computation resets what the cheap
            // check relies on, and the steps in between test that it accumulates.
            if step % 2 == 1 {
                let exact = core.poll_timeout();
                match (armed, exact) {
                    (Some(a), Some(e)) => prop_assert!(a <= e, "armed {a:?} after the next timeout {e:?}"),
                    (None, Some(e)) => prop_assert!(false, "no timer armed, next timeout {e:?}"),
                    _ => {}
                }
            }
        }
    }
}
