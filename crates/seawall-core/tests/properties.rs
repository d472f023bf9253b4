//! Property tests: no interleaving of acquires, outcomes, releases, manual switches and time
//! lets more than `half_open_calls` probes through, and the counters always add up.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use seawall_core::{
    BackoffConfig, BreakerConfig, BreakerCore, BreakerState, Outcome, PermitTicket, Timestamp,
};

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Record the outcome of the i-th outstanding permit (modulo how many there are).
    Record(usize, Outcome),
    Advance(u64),
    ForceOpen,
    Disable,
    MetricsOnly,
    Reset,
    SnapshotRestore,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Ignored)
    ];
    prop_oneof![
        8 => Just(Op::Acquire),
        8 => (any::<usize>(), outcome).prop_map(|(i, o)| Op::Record(i, o)),
        4 => (0u64..3_000).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::MetricsOnly),
        1 => Just(Op::Reset),
        1 => Just(Op::SnapshotRestore),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        1u32..6,
        1u32..8,
        1u32..5,
        prop::bool::ANY,
        prop::option::of(1u32..4),
        prop::option::of(1u64..500),
        prop::bool::ANY,
    )
        .prop_map(
            |(size, min, probes, time_window, consecutive, slow_ms, exponential)| {
                let mut b = BreakerConfig::builder()
                    .failure_rate_threshold(50.0)
                    .minimum_calls(min)
                    .half_open_calls(probes)
                    .consecutive_failures(consecutive)
                    .slow_call_duration(slow_ms.map(Duration::from_millis))
                    .open_duration(Duration::from_millis(1_000))
                    .max_half_open_duration(Some(Duration::from_millis(5_000)))
                    .seed(Some(7));
                b = if time_window {
                    b.time_window(Duration::from_millis(4_000), 4)
                } else {
                    b.count_window(size)
                };
                if exponential {
                    b = b.backoff(BackoffConfig::Exponential {
                        multiplier: 2.0,
                        max_open_duration: Duration::from_millis(8_000),
                        jitter: 0.5,
                    });
                }
                b.build().expect("generated configs are valid")
            },
        )
}

/// An outstanding permit and the half-open trial (if any) that admitted it.
struct Held {
    ticket: PermitTicket,
    trial: Option<u64>,
    counted: bool,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn probes_never_exceed_the_limit_and_counters_add_up(
        config in config(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let limit = config.half_open_calls();
        let mut core = BreakerCore::new(config.clone());
        let mut now = 0u64;
        let mut held: Vec<Held> = Vec::new();
        let mut rejected = 0u64;
        // Trial id → (probes in flight, probes completed with success/failure).
        let mut trials: HashMap<u64, (u32, u32)> = HashMap::new();
        let mut trial = 0u64;
        let mut in_half_open = false;

        for op in ops {
            let t = Timestamp::from_millis(now);
            match op {
                Op::Acquire => {
                    let before = core.state(t);
                    let result = core.try_acquire(t);
                    match result {
                        Ok(ticket) => {
                            let probe = before == BreakerState::HalfOpen;
                            if probe {
                                trials.entry(trial).or_default().0 += 1;
                            }
                            let counted = before != BreakerState::Disabled;
                            held.push(Held { ticket, trial: probe.then_some(trial), counted });
                        }
                        Err(_) => rejected += 1,
                    }
                }
                Op::Record(i, outcome) => {
                    if !held.is_empty() {
                        let h = held.swap_remove(i % held.len());
                        let same_trial = in_half_open && h.trial == Some(trial);
                        core.record(h.ticket, outcome, t);
                        if let Some(id) = h.trial {
                            let e = trials.entry(id).or_default();
                            e.0 -= 1;
                            if outcome != Outcome::Ignored && same_trial {
                                e.1 += 1;
                            }
                        }
                    }
                }
                Op::Advance(ms) => now += ms,
                Op::ForceOpen => core.force_open(t),
                Op::Disable => core.disable(t),
                Op::MetricsOnly => core.metrics_only(t),
                Op::Reset => core.reset(t),
                Op::SnapshotRestore => {
                    let s = core.snapshot(t);
                    core.restore(&s, t).expect("a snapshot restores into its own breaker");
                    // A restore starts a new trial: probes admitted before it are the old
                    // process's and no longer hold slots (documented on `restore`).
                    trial += 1;
                }
            }
            // Follow half-open trials through the transitions the core reports.
            while let Some(tr) = core.poll_transition() {
                if tr.to == BreakerState::HalfOpen {
                    trial += 1;
                    in_half_open = true;
                } else if tr.from == BreakerState::HalfOpen {
                    in_half_open = false;
                }
            }
            let t = Timestamp::from_millis(now);
            let m = core.metrics(t);
            while let Some(tr) = core.poll_transition() {
                if tr.to == BreakerState::HalfOpen {
                    trial += 1;
                    in_half_open = true;
                } else if tr.from == BreakerState::HalfOpen {
                    in_half_open = false;
                }
            }
            if in_half_open {
                let (flying, done) = trials.get(&trial).copied().unwrap_or_default();
                prop_assert!(flying + done <= limit,
                    "{flying} probes in flight + {done} completed > limit {limit}");
            }
            let counted_held = held.iter().filter(|h| h.counted).count() as u64;
            prop_assert_eq!(m.in_flight, counted_held);
            prop_assert_eq!(m.permitted, m.successes + m.failures + m.ignored + m.in_flight);
            prop_assert_eq!(m.rejected, rejected);
            prop_assert!(m.failures_in_window <= m.calls_in_window);
            prop_assert!(m.slow_calls_in_window <= m.calls_in_window);
            prop_assert!((0.0..=100.0).contains(&m.failure_rate));
            if let seawall_core::WindowConfig::Count { size } = config.window()
                && m.state != BreakerState::HalfOpen
            {
                prop_assert!(m.calls_in_window <= size);
            }
        }
    }
}
