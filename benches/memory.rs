//! What each Seawall case retains per call: a counting `#[global_allocator]` tracks bytes
//! allocated minus bytes freed; each case runs 10,000 warm-up calls, then 1,000,000 calls twice,
//! and the growth of the live total over the second million, divided by the calls, is what it
//! retains per call (expected 0). The first million's growth (one-time growth to a working size)
//! and allocations per call (allocated and freed again) are reported beside it.
//!
//! Writes `target/bench-results/rust-memory.json` for `benches/report.rs`. Run with
//! `cargo bench --bench memory`; prints a warning naming any case that retained memory (the
//! report shows the numbers either way).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use seawall::pool::{Manager, Pool, PoolConfig};
use seawall::{BreakerConfig, Budget, CircuitBreaker};
use serde_json::{Map, Value, json};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: u64 = 1_000_000;
const WARM_UP: u64 = 10_000;

/// Runs `batch(n)` (which makes `n` calls) for warm-up, then twice for `CALLS`. What the second
/// run retains is the per-call figure; growth during the first run is reported apart, since a
/// one-time growth (a map or a runtime queue reaching its working size under 64 tasks) is not
/// retained per call. Both are printed.
fn measure(mut batch: impl FnMut(u64)) -> Value {
    batch(WARM_UP);
    let live0 = LIVE.load(Ordering::SeqCst);
    batch(CALLS);
    let live1 = LIVE.load(Ordering::SeqCst);
    let allocs1 = ALLOCS.load(Ordering::SeqCst);
    batch(CALLS);
    let live2 = LIVE.load(Ordering::SeqCst);
    let allocs2 = ALLOCS.load(Ordering::SeqCst);
    json!({
        "bytes_per_call": (live2 - live1) as f64 / CALLS as f64,
        "retained_bytes": live2 - live1,
        "first_run_retained_bytes": live1 - live0,
        "allocations_per_call": (allocs2 - allocs1) as f64 / CALLS as f64,
        "calls": CALLS,
    })
}

struct Conn(u64);
struct SwManager;
impl Manager for SwManager {
    type Connection = Conn;
    type Error = Infallible;
    async fn create(&self) -> Result<Conn, Infallible> {
        Ok(Conn(0))
    }
}

fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-results")
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported here.
    let mut out = Map::new();
    let mut add = |scenario: &str, case: &str, v: Value| {
        println!("{scenario:16} {case:24} {v}");
        out.entry(scenario.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(case.to_string(), v);
    };

    let count = BreakerConfig::builder().build().expect("defaults");
    let time = BreakerConfig::builder()
        .time_window(Duration::from_secs(10), 10)
        .build()
        .expect("valid");
    for (case, config) in [
        ("seawall count window", count),
        ("seawall time window", time),
    ] {
        let breaker = CircuitBreaker::new(config);
        add(
            "breaker_closed",
            case,
            measure(|n| {
                for _ in 0..n {
                    let r: Result<u64, seawall::CallError<u64>> =
                        breaker.call_sync(|| Ok(black_box(1)));
                    assert!(r.is_ok(), "closed breaker rejected a call");
                }
            }),
        );
    }

    let open = CircuitBreaker::new(
        BreakerConfig::builder()
            .open_duration(Duration::from_secs(3_600))
            .build()
            .expect("valid"),
    );
    for _ in 0..200 {
        let _: Result<u64, _> = open.call_sync(|| Err(0u64));
    }
    add(
        "breaker_open",
        "seawall",
        measure(|n| {
            for _ in 0..n {
                let r: Result<u64, seawall::CallError<u64>> = open.call_sync(|| Ok(black_box(1)));
                assert!(
                    matches!(r, Err(seawall::CallError::Rejected(_))),
                    "open breaker let a call through"
                );
            }
        }),
    );

    let mixed = CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"));
    let mut i = 0u64;
    add(
        "breaker_10pct",
        "seawall",
        measure(|n| {
            for _ in 0..n {
                i += 1;
                let r: Result<u64, seawall::CallError<u64>> = mixed.call_sync(|| {
                    if black_box(i).is_multiple_of(10) {
                        Err(i)
                    } else {
                        Ok(i)
                    }
                });
                assert!(
                    !matches!(r, Err(seawall::CallError::Rejected(_))),
                    "breaker opened at 10 % failures"
                );
            }
        }),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pool = rt.block_on(async {
        Pool::new(
            SwManager,
            PoolConfig::builder().max_size(8).build().expect("valid"),
        )
    });
    add(
        "pool_single",
        "seawall",
        measure(|n| {
            rt.block_on(async {
                for _ in 0..n {
                    let mut c = pool.get().await.expect("get");
                    c.0 += 1;
                    black_box(&mut *c);
                }
            })
        }),
    );

    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pool = Arc::new(mt.block_on(async {
        Pool::new(
            SwManager,
            PoolConfig::builder().max_size(8).build().expect("valid"),
        )
    }));
    add(
        "pool_contended",
        "seawall",
        measure(|n| {
            let per_task = n.div_ceil(64);
            mt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..64 {
                    let pool = Arc::clone(&pool);
                    set.spawn(async move {
                        for _ in 0..per_task {
                            let mut c = pool.get().await.expect("get");
                            c.0 += 1;
                            tokio::task::yield_now().await;
                        }
                    });
                }
                while let Some(r) = set.join_next().await {
                    r.expect("task");
                }
            })
        }),
    );

    add(
        "deadline",
        "seawall",
        measure(|n| {
            rt.block_on(async {
                for _ in 0..n {
                    let r = Budget::start(Duration::from_secs(10))
                        .run(async { black_box(7u64) })
                        .await;
                    assert_eq!(r, Ok(7), "the budget fired");
                }
            })
        }),
    );

    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    let path = dir.join("rust-memory.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&Value::Object(out.clone())).expect("json"),
    )
    .expect("write memory results");
    println!("memory results written to {}", path.display());
    let leaks: Vec<String> = out
        .iter()
        .flat_map(|(s, cases)| {
            cases
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| v["retained_bytes"].as_i64().unwrap_or(0) > 0)
                .map(move |(c, v)| format!("{s}/{c}: {} bytes", v["retained_bytes"]))
        })
        .collect();
    if !leaks.is_empty() {
        eprintln!("WARNING: memory retained over {CALLS} calls: {leaks:?}");
    }
}
