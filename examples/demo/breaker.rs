//! The breaker protecting a flaky dependency, in simulated time.
//!
//! A client sends 20 requests a second to a dependency that answers in ~20 ms, goes dark from
//! t = 10 s to t = 35 s (every call hangs until the client's 2 s timeout), then recovers. Without
//! a breaker every caller would wait 2 s for 25 seconds. With one, callers fail fast while the
//! dependency is down, a few probes test it, and traffic resumes once it answers again.
//!
//! Time is simulated with a `ManualClock`, so the minute runs in milliseconds and the output is
//! the same on every run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use seawall::{BreakerConfig, CircuitBreaker, Event, ManualClock, Outcome, Timestamp};

const REQUEST_EVERY_MS: u64 = 50;
const RUN_FOR_MS: u64 = 60_000;
const OUTAGE_MS: std::ops::Range<u64> = 10_000..35_000;
const CLIENT_TIMEOUT_MS: u64 = 2_000;

/// How the dependency answers a call made at `t_ms`: (latency, succeeded).
fn dependency(t_ms: u64, rng: &mut u64) -> (u64, bool) {
    if OUTAGE_MS.contains(&t_ms) {
        return (CLIENT_TIMEOUT_MS, false);
    }
    // xorshift: a little jitter and a 2 % background error rate, deterministic.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    (15 + *rng % 11, !rng.is_multiple_of(50))
}

#[derive(Default)]
struct Row {
    sent: u32,
    rejected: u32,
    caller_wait_ms: u64,
}

pub fn run() -> Result<(), seawall::ConfigError> {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(
        BreakerConfig::builder()
            .count_window(20)
            .minimum_calls(10)
            .failure_rate_threshold(50.0)
            .slow_call_duration(Some(Duration::from_secs(1)))
            .open_duration(Duration::from_secs(5))
            .half_open_calls(3)
            .build()?,
        clock.clone(),
    );
    breaker.on_event(|e| {
        if let Event::StateChange(t) = e {
            println!(
                "  t={:>6.2}s  {} -> {} ({})",
                t.at.as_millis_f64() / 1000.0,
                t.from.as_str(),
                t.to.as_str(),
                t.reason.as_str()
            );
        }
    });

    println!("== 1. A circuit breaker in front of a dependency that is down from 10 s to 35 s");
    println!("(simulated time; 20 requests/s; client timeout 2 s)\n");
    println!("state changes as they happen:");

    // Calls in flight, ordered by completion time: (done at, sequence, permit, succeeded).
    let mut in_flight = BinaryHeap::new();
    let mut permits = Vec::new();
    let mut rows: Vec<Row> = (0..RUN_FOR_MS / 5_000).map(|_| Row::default()).collect();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;

    let mut t = 0;
    while t < RUN_FOR_MS {
        // Finish every call that completes before this request starts.
        while let Some(&Reverse((done, idx, ok))) = in_flight.peek() {
            if done > t {
                break;
            }
            in_flight.pop();
            clock.set(Timestamp::from_millis(done));
            let permit: Option<seawall::Permit<'_>> = std::mem::take(&mut permits[idx]);
            if let Some(p) = permit {
                p.record(if ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                });
            }
        }
        clock.set(Timestamp::from_millis(t));
        let row = &mut rows[(t / 5_000) as usize];
        match breaker.try_acquire() {
            Ok(permit) => {
                let (latency, ok) = dependency(t, &mut rng);
                row.sent += 1;
                row.caller_wait_ms += latency;
                permits.push(Some(permit));
                in_flight.push(Reverse((t + latency, permits.len() - 1, ok)));
            }
            Err(_) => row.rejected += 1,
        }
        t += REQUEST_EVERY_MS;
    }

    println!("\n   window   sent  failed fast  mean caller wait");
    for (i, r) in rows.iter().enumerate() {
        let total = r.sent + r.rejected;
        println!(
            "  {:>2}-{:>2} s  {:>5}  {:>11}  {:>13.0} ms{}",
            i * 5,
            i * 5 + 5,
            r.sent,
            r.rejected,
            r.caller_wait_ms as f64 / f64::from(total.max(1)),
            if OUTAGE_MS.contains(&(i as u64 * 5_000)) {
                "   (dependency down)"
            } else {
                ""
            }
        );
    }
    let m = breaker.metrics();
    println!(
        "\nfinal: state {}, opened {} times, {} calls rejected without waiting, {} sent",
        m.state.as_str(),
        m.times_opened,
        m.rejected,
        m.permitted
    );
    Ok(())
}
