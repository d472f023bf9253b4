//! The tokio adapter of the pool, against an in-memory manager: real tasks, short real timers.
#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use seawall_core::pool::{Manager, Pool, PoolConfig, PoolError};
use seawall_core::{BreakerConfig, Budget, TimeoutPolicy, Timestamp};

#[derive(Default)]
struct FakeDb {
    down: AtomicBool,
    attempts: AtomicU32,
    open: AtomicU32,
}

struct Conn {
    db: Arc<FakeDb>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.db.open.fetch_sub(1, Ordering::SeqCst);
    }
}

struct FakeManager(Arc<FakeDb>);

impl Manager for FakeManager {
    type Connection = Conn;
    type Error = String;

    async fn create(&self) -> Result<Conn, String> {
        self.0.attempts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.0.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        self.0.open.fetch_add(1, Ordering::SeqCst);
        Ok(Conn {
            db: Arc::clone(&self.0),
        })
    }
}

fn config(max: u32) -> PoolConfig {
    PoolConfig::builder()
        .max_size(max)
        .max_waiters(1_000)
        .acquire_timeout(Duration::from_secs(2))
        .create_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .breaker(
            BreakerConfig::builder()
                .consecutive_failures(Some(3))
                .open_duration(Duration::from_millis(300))
                .half_open_calls(1)
                .build()
                .expect("valid"),
        )
        .build()
        .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_few_connections_and_the_limit_holds() {
    let db = Arc::new(FakeDb::default());
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config(8));
    let peak = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            let db = Arc::clone(&db);
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                for _ in 0..20 {
                    let conn = pool.get().await.expect("served");
                    peak.fetch_max(db.open.load(Ordering::SeqCst), Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    drop(conn);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("no panic");
    }
    let m = pool.metrics();
    assert!(peak.load(Ordering::SeqCst) <= 8);
    assert_eq!(m.acquired, 64 * 20);
    assert_eq!(m.acquired, m.released);
    assert!(
        db.attempts.load(Ordering::SeqCst) <= 8,
        "no connection churn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_fast_without_a_storm_then_recovers() {
    let db = Arc::new(FakeDb::default());
    db.down.store(true, Ordering::SeqCst);
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config(4));
    // The first callers wait while attempts fail and back off; the breaker then opens.
    let mut failures = Vec::new();
    for _ in 0..10 {
        failures.push(pool.get().await.err().expect("database is down"));
    }
    assert!(
        failures
            .iter()
            .any(|e| matches!(e, PoolError::DatabaseUnavailable { .. })),
        "{failures:?}"
    );
    // Open: callers fail in well under a millisecond each, and nothing reaches the database.
    let before = db.attempts.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        assert!(matches!(
            pool.get().await,
            Err(PoolError::DatabaseUnavailable { .. })
        ));
    }
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(db.attempts.load(Ordering::SeqCst), before, "no storm");
    // Back up: after the open duration one probe succeeds and the pool serves again.
    db.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let conn = pool.get().await.expect("recovered");
    drop(conn);
}

#[tokio::test]
async fn a_cancelled_wait_loses_nothing_and_drain_closes_everything() {
    let db = Arc::new(FakeDb::default());
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config(1));
    let held = pool.get().await.expect("first");
    // A caller that gives up while waiting.
    let waiting = tokio::time::timeout(Duration::from_millis(20), pool.get()).await;
    assert!(waiting.is_err(), "still waiting when cancelled");
    assert_eq!(pool.metrics().pending_requests, 0);
    // A budget shorter than acquire_timeout bounds the wait.
    let budget = Budget::new(Timestamp::ZERO, Duration::ZERO, TimeoutPolicy::DEFAULT);
    assert!(matches!(
        pool.get_with(Some(&budget)).await,
        Err(PoolError::BudgetExhausted(_))
    ));
    drop(held);
    let again = pool.get().await.expect("the connection came back");
    let pool2 = pool.clone();
    let drain = tokio::spawn(async move { pool2.drain(Duration::from_millis(50)).await });
    let still_held = drain.await.expect("drained");
    assert_eq!(still_held, vec![again.lease().slot()]);
    drop(again);
    tokio::task::yield_now().await;
    assert_eq!(db.open.load(Ordering::SeqCst), 0, "nothing left open");
    assert!(matches!(pool.get().await, Err(PoolError::Closed)));
}

#[tokio::test]
async fn a_leaked_checkout_is_reported_with_where_it_was_taken() {
    let db = Arc::new(FakeDb::default());
    let config = PoolConfig::builder()
        .max_size(1)
        .leak_threshold(Some(Duration::from_millis(30)))
        .build()
        .expect("valid");
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config);
    let reports: Arc<parking_lot::Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = Arc::clone(&reports);
    pool.on_event(move |event, acquired_at| {
        let kind = match event {
            seawall_core::pool::PoolEvent::LeakSuspected { .. } => "suspected",
            seawall_core::pool::PoolEvent::LeakReturned { .. } => "returned",
            _ => return,
        };
        let at = acquired_at.map(|b| b.to_string()).unwrap_or_default();
        sink.lock().push((kind.to_owned(), at));
    });
    let held = take_and_forget_to_return(&pool).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    drop(held);
    let reports = reports.lock();
    assert_eq!(
        reports.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["suspected", "returned"]
    );
    for (_, at) in reports.iter() {
        assert!(
            at.contains("take_and_forget_to_return"),
            "the report names the code that took the connection:\n{at}"
        );
    }
}

/// A function whose name the leak report must show.
#[inline(never)]
async fn take_and_forget_to_return(
    pool: &Pool<FakeManager>,
) -> seawall_core::pool::Pooled<FakeManager> {
    pool.get().await.expect("a connection")
}

/// Polls `fut` once, for a test that needs a caller queued but not yet served.
async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

#[tokio::test]
async fn a_waiter_dropped_while_its_connection_is_handed_over_passes_it_on() {
    let db = Arc::new(FakeDb::default());
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config(1));
    let held = pool.get().await.expect("first");
    let mut first = Box::pin(pool.get());
    let mut second = Box::pin(pool.get());
    assert!(poll_once(&mut first).await.is_pending());
    assert!(poll_once(&mut second).await.is_pending());
    assert_eq!(pool.metrics().pending_requests, 2);
    // The release hands the connection to `first`, which gives up before it looks.
    drop(held);
    drop(first);
    // The connection went on to the next caller in line, not back to idle, not lost.
    let conn = tokio::time::timeout(Duration::from_secs(1), second)
        .await
        .expect("served, not left waiting")
        .expect("a connection");
    let m = pool.metrics();
    assert_eq!((m.used, m.idle, m.pending_requests), (1, 0, 0));
    drop(conn);
    let m = pool.metrics();
    assert_eq!((m.used, m.idle), (0, 1));
    assert_eq!(m.acquired, m.released);
    assert_eq!(
        db.attempts.load(Ordering::SeqCst),
        1,
        "the one connection was reused"
    );
}

#[tokio::test]
async fn a_waiter_dropped_after_its_hand_over_with_nobody_behind_returns_it_to_idle() {
    let db = Arc::new(FakeDb::default());
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config(1));
    let held = pool.get().await.expect("first");
    let mut waiting = Box::pin(pool.get());
    assert!(poll_once(&mut waiting).await.is_pending());
    drop(held);
    drop(waiting);
    let m = pool.metrics();
    assert_eq!((m.used, m.idle, m.pending_requests), (0, 1, 0));
    assert_eq!(m.acquired, m.released);
    // And it is served at once.
    let again = poll_once(&mut Box::pin(pool.get())).await;
    assert!(matches!(again, std::task::Poll::Ready(Ok(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_under_contention_with_callers_giving_up() {
    let db = Arc::new(FakeDb::default());
    let pool = Pool::new(FakeManager(Arc::clone(&db)), config(4));
    let held_now = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..32u32)
        .map(|t| {
            let pool = pool.clone();
            let held_now = Arc::clone(&held_now);
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                let mut served = 0u32;
                for i in 0..200u32 {
                    // Every seventh caller of some tasks gives up almost at once: its wait is
                    // cancelled, possibly while a connection is being handed to it.
                    let patience = if (t + i) % 7 == 0 {
                        Duration::from_micros(1)
                    } else {
                        Duration::from_secs(5)
                    };
                    let Ok(conn) = tokio::time::timeout(patience, pool.get()).await else {
                        continue;
                    };
                    let conn = conn.expect("served");
                    let n = held_now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    held_now.fetch_sub(1, Ordering::SeqCst);
                    drop(conn);
                    served += 1;
                }
                served
            })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        served += t.await.expect("no panic");
    }
    let m = pool.metrics();
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(db.open.load(Ordering::SeqCst) <= 4);
    assert!(m.acquired >= u64::from(served));
    assert_eq!(m.acquired, m.released, "every connection came back");
    assert_eq!((m.used, m.pending_requests), (0, 0));
    assert!(served > 32 * 150, "most callers were served ({served})");
}
