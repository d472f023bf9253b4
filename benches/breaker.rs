//! Closed-path cost of the breaker: one acquire plus one recorded outcome.
//!
//! Run with `cargo bench --bench breaker`. Peer comparisons (recloser, failsafe) live in the
//! benchmark suite of a later issue; this bench is the baseline they will be measured against.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use seawall::{BreakerConfig, CircuitBreaker, Outcome};

fn closed_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_closed_path");
    let count = CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"));
    group.bench_function("count_window/acquire+success", |b| {
        b.iter(|| {
            let permit = count.try_acquire().expect("closed");
            permit.success();
        })
    });
    let time = CircuitBreaker::new(
        BreakerConfig::builder()
            .time_window(Duration::from_secs(10), 10)
            .build()
            .expect("valid"),
    );
    group.bench_function("time_window/acquire+success", |b| {
        b.iter(|| {
            let permit = time.try_acquire().expect("closed");
            permit.success();
        })
    });
    group.bench_function("count_window/call_sync", |b| {
        b.iter(|| {
            let r: Result<u32, seawall::CallError<()>> = count.call_sync(|| Ok(black_box(1)));
            black_box(r.is_ok())
        })
    });
    // Ten percent failures: the window never reaches the 50 % threshold, so it stays closed.
    let mixed = CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"));
    let mut i = 0u32;
    group.bench_function("count_window/10pct_failures", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let permit = mixed.try_acquire().expect("stays closed at 10 % failures");
            permit.record(if i.is_multiple_of(10) {
                Outcome::Failure
            } else {
                Outcome::Success
            });
        })
    });
    group.finish();

    let open = CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"));
    open.force_open();
    c.bench_function("breaker_rejection/forced_open", |b| {
        b.iter(|| black_box(open.try_acquire().is_err()))
    });
}

criterion_group!(benches, closed_path);
criterion_main!(benches);
