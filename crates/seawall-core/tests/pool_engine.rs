//! The pool engine's key behaviours on a manual timeline, each as the adapter would see them.

use std::time::Duration;

use seawall_core::pool::{
    Acquire, Action, DestroyReason, IdleOrder, Lease, PoolConfig, PoolCore, PoolError, PoolEvent,
    SlotId, WaiterId,
};
use seawall_core::{BreakerConfig, BreakerState, Budget, TimeoutPolicy, Timestamp};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn config() -> seawall_core::pool::PoolConfigBuilder {
    PoolConfig::builder()
        .max_size(2)
        .max_waiters(3)
        .acquire_timeout(Duration::from_millis(1_000))
        .create_timeout(Duration::from_millis(500))
        .validate_after(Some(Duration::from_millis(100)))
        .create_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .breaker(
            BreakerConfig::builder()
                .consecutive_failures(Some(2))
                .open_duration(Duration::from_secs(5))
                .half_open_calls(1)
                .build()
                .expect("valid breaker"),
        )
        .seed(Some(1))
}

fn pool(b: seawall_core::pool::PoolConfigBuilder) -> PoolCore {
    PoolCore::new(b.build_under(Duration::from_secs(15)).expect("valid"))
}

fn actions(p: &mut PoolCore) -> Vec<Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

fn wait(r: Result<Acquire, PoolError>) -> WaiterId {
    match r {
        Ok(Acquire::Wait(w)) => w,
        other => panic!("expected to wait, got {other:?}"),
    }
}

fn creates(acts: &[Action]) -> Vec<SlotId> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Create { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect()
}

fn handed(acts: &[Action]) -> Vec<(WaiterId, Lease)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Hand { waiter, lease } => Some((*waiter, *lease)),
            _ => None,
        })
        .collect()
}

#[test]
fn waiters_are_served_oldest_first_and_the_queue_is_bounded() {
    let mut p = pool(config());
    let w1 = wait(p.acquire(t(0), None));
    let w2 = wait(p.acquire(t(0), None));
    let w3 = wait(p.acquire(t(0), None));
    assert_eq!(
        creates(&actions(&mut p)).len(),
        2,
        "max_size creates, no more"
    );
    // The queue holds max_waiters (3): the next caller is refused at once.
    assert_eq!(
        p.acquire(t(0), None),
        Err(PoolError::Overloaded {
            waiting: 3,
            max_waiters: 3
        })
    );
    assert_eq!(p.metrics(t(0)).overloaded, 1);
    let _ = (w2, w3);
    // The first connection to open goes to the oldest waiter, whichever slot it is.
    p.handle_created(SlotId::from_u64(2), t(10));
    let got = handed(&actions(&mut p));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, w1);
}

#[test]
fn an_idle_connection_used_recently_skips_validation_and_a_stale_one_is_validated() {
    let mut p = pool(config());
    let w = wait(p.acquire(t(0), None));
    let slot = creates(&actions(&mut p))[0];
    p.handle_created(slot, t(5));
    let (_, lease) = handed(&actions(&mut p))[0];
    assert_eq!(lease.slot(), slot);
    assert!(p.release(lease, false, t(20)));
    // Used 50 ms ago: straight out.
    let Ok(Acquire::Ready(again)) = p.acquire(t(70), None) else {
        panic!("ready")
    };
    assert!(p.release(again, false, t(80)));
    // Idle 200 ms: validated first.
    let w2 = wait(p.acquire(t(280), None));
    assert_eq!(actions(&mut p), vec![Action::Validate { slot }]);
    p.handle_validated(slot, true, t(281));
    assert_eq!(handed(&actions(&mut p))[0].0, w2);
    let _ = w;
}

#[test]
fn broken_connections_are_destroyed_never_reused() {
    let mut p = pool(config());
    wait(p.acquire(t(0), None));
    let slot = creates(&actions(&mut p))[0];
    p.handle_created(slot, t(1));
    let (_, lease) = handed(&actions(&mut p))[0];
    assert!(p.release(lease, true, t(2)));
    assert_eq!(
        actions(&mut p),
        vec![Action::Destroy {
            slot,
            reason: DestroyReason::Broken
        }]
    );
    assert!(!p.release(lease, false, t(3)), "a stale lease is refused");
}

#[test]
fn failed_connects_back_off_then_the_breaker_fails_callers_fast_and_probes_once() {
    let mut p = pool(config());
    let w = wait(p.acquire(t(0), None));
    let first = creates(&actions(&mut p));
    assert_eq!(first.len(), 1, "one caller, one create");
    p.handle_create_failed(first[0], "connection refused", t(10));
    // Backing off: no new attempt at once.
    assert!(creates(&actions(&mut p)).is_empty());
    let wake = p.poll_timeout().expect("a timer for the retry");
    assert!(wake > t(10) && wake <= t(10 + 400), "{wake:?}");
    p.handle_timeout(wake);
    let second = creates(&actions(&mut p));
    assert_eq!(second.len(), 1);
    p.handle_create_failed(second[0], "connection refused", wake);
    // Two failures in a row open the breaker: the waiter fails at once with the cause.
    let acts = actions(&mut p);
    assert!(acts.iter().any(|a| matches!(a, Action::Fail { waiter, error: PoolError::DatabaseUnavailable { retry_after: Some(_), last_error: Some(e) } } if *waiter == w && e == "connection refused")), "{acts:?}");
    assert_eq!(p.metrics(wake).breaker_state, BreakerState::Open);
    // New callers fail in the same call, and no connection attempt is made.
    assert!(matches!(
        p.acquire(wake, None),
        Err(PoolError::DatabaseUnavailable { .. })
    ));
    assert!(creates(&actions(&mut p)).is_empty());
    // After the open duration, exactly one probe; when it succeeds the pool serves again.
    let later = wake.saturating_add(Duration::from_secs(5));
    let w2 = wait(p.acquire(later, None));
    let _w3 = wait(p.acquire(later, None));
    let probe = creates(&actions(&mut p));
    assert_eq!(probe.len(), 1, "half-open: one probe only");
    p.handle_created(probe[0], later);
    let acts = actions(&mut p);
    assert_eq!(handed(&acts)[0].0, w2);
    assert_eq!(
        creates(&acts).len(),
        1,
        "the pool refills for the next waiter"
    );
    assert!(
        std::iter::from_fn(|| p.poll_event())
            .any(|e| matches!(e, PoolEvent::Breaker(t) if t.to == BreakerState::Closed))
    );
}

#[test]
fn waits_end_at_the_earlier_of_acquire_timeout_and_the_budget() {
    let mut p = pool(config().max_size(1));
    wait(p.acquire(t(0), None));
    let slot = creates(&actions(&mut p))[0];
    p.handle_created(slot, t(1));
    let (_, lease) = handed(&actions(&mut p))[0];
    let budget = Budget::new(t(10), Duration::from_millis(300), TimeoutPolicy::DEFAULT);
    let short = wait(p.acquire(t(10), Some(&budget)));
    let long = wait(p.acquire(t(10), None));
    assert_eq!(p.poll_timeout(), Some(t(310)));
    p.handle_timeout(t(310));
    assert!(
        matches!(actions(&mut p).as_slice(), [Action::Fail { waiter, error: PoolError::BudgetExhausted(_) }] if *waiter == short)
    );
    p.handle_timeout(t(1_010));
    match actions(&mut p).as_slice() {
        [
            Action::Fail {
                waiter,
                error:
                    PoolError::Timeout {
                        in_use: 1,
                        waiting: 1,
                        oldest_checkout_age: Some(age),
                        ..
                    },
            },
        ] if *waiter == long => assert_eq!(*age, Duration::from_millis(1_009)),
        other => panic!("{other:?}"),
    }
    let _ = lease;
    // An exhausted budget fails before queueing.
    let spent = Budget::new(t(2_000), Duration::ZERO, TimeoutPolicy::DEFAULT);
    assert!(matches!(
        p.acquire(t(2_000), Some(&spent)),
        Err(PoolError::BudgetExhausted(_))
    ));
}

#[test]
fn idle_order_lifo_by_default_fifo_on_request() {
    for (order, expect_second) in [(IdleOrder::Lifo, true), (IdleOrder::Fifo, false)] {
        let mut p = pool(config().idle_order(order).validate_after(None));
        wait(p.acquire(t(0), None));
        wait(p.acquire(t(0), None));
        let slots = creates(&actions(&mut p));
        p.handle_created(slots[0], t(1));
        p.handle_created(slots[1], t(1));
        let leases = handed(&actions(&mut p));
        p.release(leases[0].1, false, t(2));
        p.release(leases[1].1, false, t(3));
        let Ok(Acquire::Ready(l)) = p.acquire(t(4), None) else {
            panic!("ready")
        };
        assert_eq!(l.slot() == leases[1].1.slot(), expect_second, "{order:?}");
    }
}

#[test]
fn leaks_are_reported_once_and_again_on_return_and_drain_reports_what_was_held() {
    let mut p = pool(config().leak_threshold(Some(Duration::from_millis(200))));
    wait(p.acquire(t(0), None));
    wait(p.acquire(t(0), None));
    let slots = creates(&actions(&mut p));
    p.handle_created(slots[0], t(1));
    p.handle_created(slots[1], t(1));
    let leases = handed(&actions(&mut p));
    assert_eq!(p.poll_timeout(), Some(t(201)));
    p.handle_timeout(t(201));
    p.handle_timeout(t(400));
    let events: Vec<PoolEvent> = std::iter::from_fn(|| p.poll_event()).collect();
    let suspected = events
        .iter()
        .filter(|e| matches!(e, PoolEvent::LeakSuspected { .. }))
        .count();
    assert_eq!(suspected, 2, "each reported once: {events:?}");
    p.release(leases[0].1, false, t(500));
    assert!(
        matches!(p.poll_event(), Some(PoolEvent::LeakReturned { held_for, .. }) if held_for == Duration::from_millis(499))
    );
    p.drain(t(500), t(600));
    assert!(!p.is_closed());
    assert!(matches!(p.acquire(t(550), None), Err(PoolError::Closed)));
    p.handle_timeout(t(600));
    assert!(p.is_closed());
    let drained = std::iter::from_fn(|| p.poll_event()).find_map(|e| match e {
        PoolEvent::Drained { still_held } => Some(still_held),
        _ => None,
    });
    assert_eq!(drained, Some(vec![leases[1].1.slot()]));
    assert_eq!(p.metrics(t(600)).leaks, 2);
}

#[test]
fn a_create_that_outlives_create_timeout_is_abandoned_and_its_late_result_closed() {
    let mut p = pool(config());
    wait(p.acquire(t(0), None));
    let slot = creates(&actions(&mut p))[0];
    p.handle_timeout(t(500));
    let acts = actions(&mut p);
    assert!(acts.contains(&Action::Destroy {
        slot,
        reason: DestroyReason::CreateTimedOut
    }));
    p.handle_created(slot, t(900));
    assert_eq!(
        actions(&mut p),
        vec![Action::Destroy {
            slot,
            reason: DestroyReason::Stale
        }]
    );
}

#[test]
fn resize_shrinks_idle_at_once_and_validation_rejects_bad_sizes() {
    let mut p = pool(config().validate_after(None));
    wait(p.acquire(t(0), None));
    wait(p.acquire(t(0), None));
    let slots = creates(&actions(&mut p));
    p.handle_created(slots[0], t(1));
    p.handle_created(slots[1], t(1));
    for (_, l) in handed(&actions(&mut p)) {
        p.release(l, false, t(2));
    }
    p.resize(1, t(3)).expect("valid");
    assert_eq!(p.metrics(t(3)).idle, 1);
    assert_eq!(p.resize(0, t(3)).unwrap_err().field, "max_size");
}

#[test]
fn config_validation_names_fields() {
    let e = PoolConfig::builder()
        .acquire_timeout(Duration::from_secs(60))
        .build_under(Duration::from_secs(15))
        .unwrap_err();
    assert_eq!(e.field, "acquire_timeout");
    let e = PoolConfig::builder()
        .max_size(2)
        .min_idle(3)
        .build_under(Duration::from_secs(15))
        .unwrap_err();
    assert_eq!(e.field, "min_idle");
    let e = PoolConfig::builder()
        .lifetime_jitter(1.0)
        .build_under(Duration::from_secs(15))
        .unwrap_err();
    assert_eq!(e.field, "lifetime_jitter");
}

#[test]
fn a_connection_reported_dead_is_never_handed_out() {
    let mut p = pool(config().validate_after(None));
    wait(p.acquire(t(0), None));
    wait(p.acquire(t(0), None));
    let slots = creates(&actions(&mut p));
    p.handle_created(slots[0], t(1));
    p.handle_created(slots[1], t(1));
    let leases = handed(&actions(&mut p));
    // Idle and reported dead (its socket errored): closed at once.
    p.release(leases[0].1, false, t(2));
    assert!(p.handle_broken(slots[0], t(3)));
    assert_eq!(
        actions(&mut p),
        vec![Action::Destroy {
            slot: slots[0],
            reason: DestroyReason::Broken
        }]
    );
    // Checked out and reported dead: closed when it comes back, even released as fine.
    assert!(p.handle_broken(slots[1], t(4)));
    assert!(actions(&mut p).is_empty());
    p.release(leases[1].1, false, t(5));
    assert_eq!(
        actions(&mut p),
        vec![Action::Destroy {
            slot: slots[1],
            reason: DestroyReason::Broken
        }]
    );
    assert!(!p.handle_broken(slots[1], t(6)), "unknown by now");
    // The next caller gets a fresh connection, not a dead one.
    wait(p.acquire(t(7), None));
    assert_eq!(creates(&actions(&mut p)).len(), 1);
}
