//! Property tests: no interleaving of acquires, outcomes, releases, manual switches and time
//! lets more than `half_open_calls` probes through, and the counters always add up.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use seawall_core::{
    BackoffConfig, BreakerConfig, BreakerCore, BreakerState, FastAdmission, FastCounts, Outcome,
    PermitTicket, Rejected, RejectionReason, Timestamp,
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

/// A breaker driven the way the adapters drive it: decisions the core has published in its
/// [`FastPath`] are replayed without it and counted, everything else goes to the core.
struct FastDriven {
    core: BreakerCore,
    pending: FastCounts,
}

impl FastDriven {
    fn locked(&mut self) -> &mut BreakerCore {
        self.core.absorb_fast(std::mem::take(&mut self.pending));
        &mut self.core
    }

    fn try_acquire(&mut self, t: Timestamp) -> Result<PermitTicket, Rejected> {
        let fp = self.core.fast_path();
        match fp.admission {
            FastAdmission::Admit { counted } => {
                self.pending.admitted += u64::from(counted);
                Ok(PermitTicket::admitted_fast(fp.epoch, t, counted))
            }
            FastAdmission::RejectUntil { until } if t < until => {
                self.pending.rejected += 1;
                Err(Rejected {
                    reason: RejectionReason::Open,
                    retry_after: Some(until.saturating_duration_since(t)),
                })
            }
            FastAdmission::Reject => {
                self.pending.rejected += 1;
                Err(Rejected {
                    reason: RejectionReason::ForcedOpen,
                    retry_after: None,
                })
            }
            FastAdmission::RejectUntil { .. } | FastAdmission::AskCore => {
                self.locked().try_acquire(t)
            }
        }
    }

    fn record(&mut self, ticket: PermitTicket, counted: bool, outcome: Outcome, t: Timestamp) {
        let fp = self.core.fast_path();
        if !counted {
            return;
        }
        if outcome == Outcome::Success && fp.success_is_noop && ticket.epoch() == fp.epoch {
            self.pending.succeeded += 1;
        } else {
            self.locked().record(ticket, outcome, t);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The fast path replays only decisions the core would make: driven by it, a breaker admits
    /// and rejects the same calls (same reasons, same retry-after), makes the same transitions
    /// and reports the same metrics as a breaker asked every time.
    #[test]
    fn the_fast_path_decides_exactly_like_the_core(
        config in config(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let mut reference = BreakerCore::new(config.clone());
        let mut fast = FastDriven { core: BreakerCore::new(config), pending: FastCounts::default() };
        let mut now = 0u64;
        // (reference ticket, fast ticket, counted)
        let mut held: Vec<(PermitTicket, PermitTicket, bool)> = Vec::new();
        for op in ops {
            let t = Timestamp::from_millis(now);
            match op {
                Op::Acquire => {
                    let before = reference.state(t);
                    let expected = reference.try_acquire(t);
                    let got = fast.try_acquire(t);
                    match (expected, got) {
                        (Ok(r), Ok(f)) => held.push((r, f, before != BreakerState::Disabled)),
                        (Err(r), Err(f)) => prop_assert_eq!(r, f),
                        (r, f) => prop_assert!(false, "core said {r:?}, fast path said {f:?}"),
                    }
                }
                Op::Record(i, outcome) => {
                    if !held.is_empty() {
                        let (r, f, counted) = held.swap_remove(i % held.len());
                        reference.record(r, outcome, t);
                        fast.record(f, counted, outcome, t);
                    }
                }
                Op::Advance(ms) => now += ms,
                Op::ForceOpen => { reference.force_open(t); fast.locked().force_open(t); }
                Op::Disable => { reference.disable(t); fast.locked().disable(t); }
                Op::MetricsOnly => { reference.metrics_only(t); fast.locked().metrics_only(t); }
                Op::Reset => { reference.reset(t); fast.locked().reset(t); }
                Op::SnapshotRestore => {
                    let s = reference.snapshot(t);
                    reference.restore(&s, t).expect("a snapshot restores into its own breaker");
                    let core = fast.locked();
                    let s = core.snapshot(t);
                    core.restore(&s, t).expect("a snapshot restores into its own breaker");
                }
            }
            let t = Timestamp::from_millis(now);
            prop_assert_eq!(reference.metrics(t), fast.locked().metrics(t));
            loop {
                let (r, f) = (reference.poll_transition(), fast.core.poll_transition());
                prop_assert_eq!(r, f);
                if r.is_none() {
                    break;
                }
            }
        }
    }
}

#[test]
fn a_full_window_of_successes_makes_success_a_noop_and_a_failure_ends_it() {
    let config = BreakerConfig::builder()
        .count_window(4)
        .minimum_calls(2)
        .build()
        .expect("valid");
    let mut core = BreakerCore::new(config);
    let t = Timestamp::ZERO;
    for i in 0..4 {
        assert!(
            !core.fast_path().success_is_noop,
            "window not full after {i} calls"
        );
        let p = core.try_acquire(t).expect("closed");
        core.record(p, Outcome::Success, t);
    }
    let fp = core.fast_path();
    assert!(fp.success_is_noop);
    assert_eq!(fp.admission, FastAdmission::Admit { counted: true });
    let p = core.try_acquire(t).expect("closed");
    core.record(p, Outcome::Failure, t);
    assert!(
        !core.fast_path().success_is_noop,
        "a failure is in the window"
    );
}

#[test]
fn an_open_breaker_publishes_when_it_stops_rejecting() {
    let config = BreakerConfig::builder()
        .count_window(2)
        .minimum_calls(2)
        .open_duration(Duration::from_secs(5))
        .build()
        .expect("valid");
    let mut core = BreakerCore::new(config);
    let t = Timestamp::from_millis(1_000);
    for _ in 0..2 {
        let p = core.try_acquire(t).expect("closed");
        core.record(p, Outcome::Failure, t);
    }
    assert_eq!(
        core.fast_path().admission,
        FastAdmission::RejectUntil {
            until: Timestamp::from_millis(6_000)
        }
    );
    core.force_open(t);
    assert_eq!(core.fast_path().admission, FastAdmission::Reject);
}
