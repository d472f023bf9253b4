//! The pool against the real PostgreSQL on 127.0.0.1:5432, through a fault proxy: normal load
//! with many more tasks than connections, a black-holed outage with existing connections cut,
//! recovery, and nothing left open on the server afterwards.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use seawall::pool::{Pool, PoolConfig, PoolError};
use seawall::postgres::PostgresManager;
use seawall::{BreakerConfig, BreakerState};
use support::fault_proxy::{FaultProxy, Mode};

const SERVER: &str = "127.0.0.1:5432";
const OPEN_DURATION: Duration = Duration::from_millis(1_000);

fn url(port: u16, app: &str) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=test application_name={app}")
}

/// Backends on the real server (not through the proxy) that belong to this test.
async fn server_connections(app: &str) -> i64 {
    let (client, conn) =
        tokio_postgres::connect(&url(5432, "seawall-e2e-observer"), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (start it with pg_ctlcluster)");
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("query pg_stat_activity");
    row.get(0)
}

async fn select_one(pool: &Pool<PostgresManager>) -> Result<(), PoolError> {
    let mut conn = pool.get().await?;
    if conn.simple_query("SELECT 1").await.is_err() {
        conn.mark_broken();
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_outage_recovery_and_no_leaks() {
    let proxy = FaultProxy::start(SERVER.parse().expect("address"))
        .await
        .expect("proxy");
    let app = format!("seawall-e2e-rust-{}", std::process::id());
    let manager = PostgresManager::from_url(&url(proxy.port(), &app)).expect("valid url");
    let pool = Pool::new(
        manager,
        PoolConfig::builder()
            .max_size(8)
            .max_waiters(1_000)
            .acquire_timeout(Duration::from_secs(3))
            .create_timeout(Duration::from_millis(300))
            .validate_after(Some(Duration::from_millis(50)))
            .create_backoff(Duration::from_millis(10), Duration::from_millis(100))
            .breaker(
                BreakerConfig::builder()
                    .consecutive_failures(Some(3))
                    .open_duration(OPEN_DURATION)
                    .half_open_calls(1)
                    .build()
                    .expect("valid"),
            )
            .build()
            .expect("valid"),
    );

    // (1) Normal load: 64 tasks, 8 connections, every query answered.
    let done = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                for _ in 0..10 {
                    select_one(&pool).await.expect("healthy database");
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("no panic");
    }
    assert_eq!(done.load(Ordering::SeqCst), 640);
    assert!(
        proxy.attempts() <= 8,
        "{} connects for 8 slots",
        proxy.attempts()
    );
    assert!(server_connections(&app).await <= 8);

    // (2) Outage: the route black-holes new connections and cuts the open ones.
    proxy.set_mode(Mode::BlackHole);
    proxy.cut_existing();
    let outage_started = Instant::now();
    let mut saw_unavailable = false;
    while outage_started.elapsed() < Duration::from_secs(10) {
        match select_one(&pool).await {
            Err(PoolError::DatabaseUnavailable { .. }) => {
                saw_unavailable = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(saw_unavailable, "the breaker never opened");
    assert_eq!(pool.metrics().breaker_state, BreakerState::Open);
    // While open, callers fail in milliseconds and no attempt reaches the network.
    let attempts = proxy.attempts();
    let started = Instant::now();
    let failing: Vec<_> = (0..200)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = pool.get().await.map(|_| ());
                (r, t.elapsed())
            })
        })
        .collect();
    for f in failing {
        let (r, took) = f.await.expect("no panic");
        assert!(
            matches!(
                r,
                Err(PoolError::DatabaseUnavailable {
                    retry_after: Some(_),
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(took < Duration::from_millis(50), "a caller waited {took:?}");
    }
    assert!(started.elapsed() < OPEN_DURATION);
    assert_eq!(proxy.attempts(), attempts, "no connection storm");

    // (3) Recovery: traffic passes again; within the open duration plus one probe, queries work.
    proxy.set_mode(Mode::Pass);
    let recovering = Instant::now();
    loop {
        if select_one(&pool).await.is_ok() {
            break;
        }
        assert!(
            recovering.elapsed() < OPEN_DURATION + Duration::from_secs(2),
            "no recovery"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        select_one(&pool).await.expect("serving at full rate");
    }

    // (4) Nothing leaked: after the drain, the server has none of this test's connections.
    let still_held = pool.drain(Duration::from_secs(1)).await;
    assert!(still_held.is_empty());
    drop(pool);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = server_connections(&app).await;
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} connections left on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
