//! The thread-safe adapter: RAII permits, call helpers, classification and listeners, all on a
//! manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall_core::{
    BreakerConfig, BreakerState, CallError, CircuitBreaker, Event, ManualClock, Outcome,
    RejectionReason, TransitionReason,
};

fn breaker(clock: &ManualClock) -> CircuitBreaker {
    CircuitBreaker::with_clock(
        BreakerConfig::builder()
            .count_window(4)
            .minimum_calls(4)
            .open_duration(Duration::from_secs(10))
            .half_open_calls(1)
            .build()
            .expect("valid config"),
        clock.clone(),
    )
}

#[test]
fn opens_rejects_with_retry_after_then_recovers() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..4 {
        let r: Result<(), CallError<&str>> = b.call_sync(|| Err("boom"));
        assert!(matches!(r, Err(CallError::Inner("boom"))));
    }
    assert_eq!(b.state(), BreakerState::Open);
    clock.advance(Duration::from_secs(4));
    let rejected = b.try_acquire().expect_err("open");
    assert_eq!(rejected.reason, RejectionReason::Open);
    assert_eq!(rejected.retry_after, Some(Duration::from_secs(6)));
    clock.advance(Duration::from_secs(6));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire().expect("one probe");
    assert_eq!(
        b.try_acquire().expect_err("probe slot taken").reason,
        RejectionReason::HalfOpenFull
    );
    probe.success();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn a_dropped_permit_is_released_as_ignored_and_frees_the_probe_slot() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    b.force_open();
    b.reset();
    for _ in 0..4 {
        b.try_acquire().expect("closed").failure();
    }
    clock.advance(Duration::from_secs(10));
    let probe = b.try_acquire().expect("probe");
    drop(probe);
    let m = b.metrics();
    assert_eq!(m.ignored, 1);
    assert_eq!(m.in_flight, 0);
    assert!(b.try_acquire().is_ok(), "the slot came back");
}

#[test]
fn classification_decides_what_counts() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    // Only "server" errors are failures; "not found" is ignored.
    let classify = |r: &Result<u32, &str>| match r {
        Ok(_) => Outcome::Success,
        Err("not found") => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    };
    for _ in 0..10 {
        let _ = b.call_sync_with(classify, || Err("not found"));
    }
    let m = b.metrics();
    assert_eq!((m.ignored, m.failures, m.calls_in_window), (10, 0, 0));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn async_call_and_cancelled_future() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let ok: Result<u8, CallError<()>> = futures_executor::block_on(b.call(|| async { Ok(7) }));
    assert_eq!(ok.ok(), Some(7));
    // A future dropped before completion (a cancelled request) records nothing decisive.
    let fut = b.call(|| async { Err::<u8, ()>(()) });
    drop(fut);
    let m = b.metrics();
    assert_eq!((m.successes, m.failures, m.in_flight), (1, 0, 0));
}

#[test]
fn listeners_hear_transitions_and_rejections_and_may_use_the_breaker() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let heard: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = heard.clone();
    let inner = b.clone();
    b.on_event(move |e| {
        // Reading the breaker from a listener must not deadlock: the lock is released.
        let _ = inner.metrics();
        sink.lock().expect("not poisoned").push(*e);
    });
    b.force_open();
    let _ = b.try_acquire();
    b.reset();
    let heard = heard.lock().expect("not poisoned");
    assert_eq!(heard.len(), 3);
    assert!(
        matches!(heard[0], Event::StateChange(t) if t.to == BreakerState::ForcedOpen
        && t.reason == TransitionReason::ForcedOpen)
    );
    assert!(
        matches!(heard[1], Event::Rejected(r) if r.reason == RejectionReason::ForcedOpen
        && r.retry_after.is_none())
    );
    assert!(
        matches!(heard[2], Event::StateChange(t) if t.to == BreakerState::Closed
        && t.reason == TransitionReason::Reset)
    );
}

#[test]
fn shared_across_threads() {
    let b = CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    b.try_acquire().expect("closed").success();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic");
    }
    let m = b.metrics();
    assert_eq!((m.permitted, m.successes, m.in_flight), (4_000, 4_000, 0));
}

/// Threads racing through the lock-free fast path and the locked path (failures, trips,
/// half-open probes, forced states) lose no call: every counter adds up at the end.
#[test]
fn the_fast_path_loses_nothing_under_contention() {
    let b = CircuitBreaker::new(
        BreakerConfig::builder()
            .count_window(20)
            .minimum_calls(10)
            .open_duration(Duration::from_millis(1))
            .half_open_calls(2)
            .build()
            .expect("valid config"),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|id| {
            let b = b.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut ignored, mut rejected) = (0u64, 0u64, 0u64, 0u64);
                for i in 0..50_000u64 {
                    if id == 0 && i % 10_000 == 5_000 {
                        b.force_open();
                    } else if id == 0 && i % 10_000 == 5_100 {
                        b.reset();
                    }
                    match b.try_acquire() {
                        Ok(p) => match (i * 7 + id) % 29 {
                            0 | 1 => {
                                p.failure();
                                failed += 1;
                            }
                            2 => {
                                drop(p);
                                ignored += 1;
                            }
                            _ => {
                                p.success();
                                ok += 1;
                            }
                        },
                        Err(_) => rejected += 1,
                    }
                }
                (ok, failed, ignored, rejected)
            })
        })
        .collect();
    let mut totals = (0, 0, 0, 0);
    for t in threads {
        let (ok, failed, ignored, rejected) = t.join().expect("no panic");
        totals = (
            totals.0 + ok,
            totals.1 + failed,
            totals.2 + ignored,
            totals.3 + rejected,
        );
    }
    let m = b.metrics();
    assert_eq!(
        (m.successes, m.failures, m.ignored, m.rejected, m.in_flight),
        (totals.0, totals.1, totals.2, totals.3, 0)
    );
    assert_eq!(m.permitted, totals.0 + totals.1 + totals.2);
    assert!(
        m.times_opened >= 5,
        "the forced opens alone: {}",
        m.times_opened
    );
}

#[test]
fn a_success_on_the_fast_path_still_counts_and_a_failure_still_trips() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..100 {
        b.try_acquire().expect("closed").success();
    }
    let m = b.metrics();
    assert_eq!((m.permitted, m.successes, m.in_flight), (100, 100, 0));
    let held = b.try_acquire().expect("closed");
    assert_eq!(b.metrics().in_flight, 1, "a fast admission is in flight");
    // Two failures in a window of four reach the 50 % failure rate.
    for _ in 0..2 {
        b.try_acquire().expect("closed").failure();
    }
    assert_eq!(b.state(), BreakerState::Open);
    // Admitted before the trip: its success is counted but decides nothing.
    held.success();
    let m = b.metrics();
    assert_eq!((m.successes, m.failures, m.in_flight), (101, 2, 0));
    let rejected = b.try_acquire().expect_err("open");
    assert_eq!(rejected.reason, RejectionReason::Open);
    assert_eq!(rejected.retry_after, Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(10));
    assert!(
        b.try_acquire().is_ok(),
        "half-open at the end of the open duration"
    );
}

#[test]
fn snapshot_json_round_trip() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..4 {
        b.try_acquire().expect("closed").failure();
    }
    clock.advance(Duration::from_secs(3));
    let json = b.snapshot().to_json();
    let other = breaker(&clock);
    other
        .restore(&seawall_core::Snapshot::from_json(&json).expect("parses"))
        .expect("restores");
    let r = other.try_acquire().expect_err("restored open");
    assert_eq!(r.retry_after, Some(Duration::from_secs(7)));
    let bad = seawall_core::Snapshot::from_json(r#"{"version": 99}"#).expect_err("newer");
    assert!(bad.to_string().contains("version 99"));
}
