//! The pool against a real PostgreSQL (from `DATABASE_URL`), in real time: 64 tasks share 8
//! connections; after 3 s an in-process fault proxy refuses new connections and cuts the open
//! ones for 4 s, then lets traffic through again. The server itself is never touched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use seawall::BreakerConfig;
use seawall::pool::{Pool, PoolConfig};
use seawall::postgres::PostgresManager;
use tokio_postgres::config::Host;

#[path = "../../tests/support/fault_proxy.rs"]
mod fault_proxy;
use fault_proxy::{FaultProxy, Mode};

const SECONDS: u64 = 12;
const OUTAGE: std::ops::Range<u64> = 3..7;

#[derive(Default, Clone, Copy)]
struct Second {
    served: u64,
    failed: u64,
    wait_us: u64,
}

pub fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async(url))
}

async fn run_async(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let target: tokio_postgres::Config = url.parse()?;
    let host = match target.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = target.get_ports().first().copied().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .find(|a| a.ip().is_loopback())
        .ok_or("the demo's fault proxy only fronts a database on this machine")?;
    let proxy = FaultProxy::start(upstream).await?;
    let mut through_proxy = tokio_postgres::Config::new();
    through_proxy
        .host("127.0.0.1")
        .port(proxy.port())
        .user(target.get_user().unwrap_or("postgres"))
        .dbname(target.get_dbname().unwrap_or("postgres"))
        .application_name("seawall-demo");
    if let Some(p) = target.get_password() {
        through_proxy.password(p);
    }
    let pool = Pool::new(
        PostgresManager::new(through_proxy),
        PoolConfig::builder()
            .max_size(8)
            .acquire_timeout(Duration::from_secs(1))
            .create_timeout(Duration::from_millis(500))
            .validate_after(Some(Duration::from_millis(100)))
            .breaker(
                BreakerConfig::builder()
                    .consecutive_failures(Some(3))
                    .open_duration(Duration::from_secs(1))
                    .half_open_calls(1)
                    .build()?,
            )
            .build()?,
    );

    println!("\n== 3. The pool against the real PostgreSQL at {upstream}, through a fault proxy");
    println!("(real time; 64 tasks, 8 connections; connections refused and cut from 3 s to 7 s)\n");
    let started = Instant::now();
    let seconds = Arc::new(Mutex::new(vec![Second::default(); SECONDS as usize]));
    let stop = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (pool, seconds, stop) = (pool.clone(), Arc::clone(&seconds), Arc::clone(&stop));
            tokio::spawn(async move {
                while stop.load(Ordering::Relaxed) == 0 {
                    let asked = Instant::now();
                    let ok = match pool.get().await {
                        Ok(mut conn) => {
                            let ok = conn.simple_query("SELECT 1").await.is_ok();
                            if !ok {
                                conn.mark_broken();
                            }
                            ok
                        }
                        Err(_) => false,
                    };
                    let i = (asked.duration_since(started).as_secs() as usize)
                        .min(SECONDS as usize - 1);
                    {
                        let mut s = seconds.lock();
                        s[i].wait_us += asked.elapsed().as_micros() as u64;
                        if ok {
                            s[i].served += 1;
                        } else {
                            s[i].failed += 1;
                        }
                    }
                    if !ok {
                        // A real service would answer 503 here; don't spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    let mut dials = Vec::new();
    for second in 0..SECONDS {
        if second == OUTAGE.start {
            proxy.set_mode(Mode::Refuse);
            proxy.cut_existing();
        }
        if second == OUTAGE.end {
            proxy.set_mode(Mode::Pass);
        }
        let before = proxy.attempts();
        tokio::time::sleep_until((started + Duration::from_secs(second + 1)).into()).await;
        dials.push(proxy.attempts() - before);
    }
    stop.store(1, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    println!("  second   served  failed  mean wait  connection attempts");
    for (i, s) in seconds.lock().iter().enumerate() {
        let n = (s.served + s.failed).max(1);
        println!(
            "  {:>4}    {:>6}  {:>6}  {:>6.2} ms  {:>6}{}",
            i,
            s.served,
            s.failed,
            s.wait_us as f64 / n as f64 / 1000.0,
            dials[i],
            if OUTAGE.contains(&(i as u64)) {
                "   (cut off)"
            } else {
                ""
            }
        );
    }
    let held = pool.drain(Duration::from_secs(2)).await;
    println!(
        "\n  drained; checkouts still held at the deadline: {}",
        held.len()
    );
    Ok(())
}
