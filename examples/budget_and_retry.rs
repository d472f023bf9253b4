//! A request's deadline budget, carried to a downstream service in a header, and a call made
//! through budget → retry → breaker → per-attempt timeout with one `CallPolicy`.
//!
//! The downstream is simulated in-process: its first two answers take longer than the attempt
//! timeout, the third succeeds. Run with `cargo run --example budget_and_retry` (real time,
//! about half a second).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use seawall::{
    Backoff, BreakerConfig, Budget, CallPolicy, CircuitBreaker, Clock, ManualClock, RetryConfig,
    RunError, TimeoutPolicy, Timestamp,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The organisation's policy, enforced in code: nothing above 15 s, and during an
    //    incident every timeout halved, without a deploy.
    let incident = TimeoutPolicy::new(Duration::from_secs(15), 0.5, Duration::from_millis(10))?;
    let now = Timestamp::ZERO;
    let budget = Budget::new(now, Duration::from_secs(60), incident);
    println!(
        "a 60 s budget under the incident policy gets {:?} (halved, then capped)",
        budget.remaining(now)
    );

    // 2. Propagation: the remaining time travels as a grpc-timeout header, and the callee
    //    builds its own budget from it, capped by its own policy.
    let clock = ManualClock::new();
    let incoming = Budget::new(clock.now(), Duration::from_secs(2), TimeoutPolicy::DEFAULT);
    clock.advance(Duration::from_millis(350));
    let header = incoming.to_grpc_timeout(clock.now());
    let downstream = Budget::from_grpc_timeout(&header, clock.now(), TimeoutPolicy::DEFAULT)?;
    println!(
        "after 350 ms the caller sends grpc-timeout: {header}; the callee has {:?}",
        downstream.remaining(clock.now())
    );
    match Budget::from_grpc_timeout("soon", clock.now(), TimeoutPolicy::DEFAULT) {
        Err(e) => println!("a garbled header is refused: {e}"),
        Ok(_) => unreachable!("\"soon\" is not a grpc-timeout"),
    }

    // 3. One call through the whole stack, on the real clock.
    let policy = CallPolicy::new()
        .breaker(CircuitBreaker::new(BreakerConfig::builder().build()?))
        .retry(RetryConfig::new(
            4,
            Backoff::Exponential {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(200),
                multiplier: 2.0,
            },
            None,
        )?)
        .attempt_timeout(Duration::from_millis(100));
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    let budget = Budget::start(Duration::from_secs(1));
    let answer: Result<&str, RunError<std::io::Error>> = policy
        .run(Some(&budget), |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                // The downstream is slow twice, then answers at once.
                if attempt <= 2 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok("42 in stock")
            }
        })
        .await;
    println!(
        "answer {:?} after {} attempts in {:?} ({:?} of the budget left)",
        answer.as_ref().ok(),
        calls.load(Ordering::SeqCst),
        started.elapsed(),
        budget.remaining_now()
    );

    // 4. An exhausted budget fails before anything is called.
    let spent = Budget::start(Duration::ZERO);
    let r: Result<(), RunError<std::io::Error>> =
        policy.run(Some(&spent), |_| async { Ok(()) }).await;
    if let Err(e) = r {
        println!("with nothing left: {e}");
    }
    Ok(())
}
