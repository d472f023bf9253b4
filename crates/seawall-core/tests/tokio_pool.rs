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
