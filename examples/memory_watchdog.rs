//! The memory watchdog on this machine: what the probe reads (which limit the kernel enforces,
//! which usage it counts), then a deliberate leak under a small configured limit, watched with a
//! short interval in `event_only` mode so that the example reports instead of exiting.
//!
//! Run with `cargo run --example memory_watchdog`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use seawall::memory::{
    ActMode, MemoryProbe, MemoryWatchdog, WatchdogAction, WatchdogConfig, WatchdogEvent,
};

const MIB: u64 = 1 << 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reading = MemoryProbe::new(None).read()?;
    println!(
        "memory counted against the limit: {} MiB ({}) of {} MiB ({}); cgroup {}; this process's RSS {} MiB",
        reading.usage_bytes / MIB,
        reading.usage_source.as_str(),
        reading.limit_bytes / MIB,
        reading.limit_source.as_str(),
        reading.cgroup.as_str(),
        reading.rss_bytes / MIB,
    );

    // A configured limit 200 MiB above what is counted now (against a configured limit, the
    // process's own RSS), and a leak of 8 MiB every 20 ms.
    let limit = reading.usage_bytes + 200 * MIB;
    let dump_dir = std::env::temp_dir().join(format!("seawall-example-{}", std::process::id()));
    std::fs::create_dir_all(&dump_dir)?;
    let config = WatchdogConfig::builder()
        .interval(Duration::from_millis(500))
        .alert_interval(Duration::from_millis(50))
        .act_mode(ActMode::EventOnly)
        .build()?;
    let acted = Arc::new(Mutex::new(false));
    let watchdog = MemoryWatchdog::builder(config)
        .limit_bytes(limit)
        .dump_dir(&dump_dir)
        .on_event({
            let acted = Arc::clone(&acted);
            move |event| match event {
                WatchdogEvent::Action(action) => {
                    println!("  {}", serde_json::to_string(action).unwrap_or_default());
                    if matches!(action, WatchdogAction::Act { .. }) {
                        *acted.lock() = true;
                    }
                }
                WatchdogEvent::EvidenceWritten { path, .. } => {
                    println!("  evidence written: {}", path.display());
                }
                WatchdogEvent::Error(e) => println!("  error: {e}"),
                WatchdogEvent::Sample { .. } => {}
            }
        })
        .build();
    println!(
        "leaking 8 MiB every 20 ms under a {} MiB limit:",
        limit / MIB
    );
    let running = watchdog.start();
    let mut leak: Vec<Vec<u8>> = Vec::new();
    for _ in 0..200 {
        // Touch every page so the memory is really resident.
        leak.push(vec![1u8; 8 * MIB as usize]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if *acted.lock() {
            break;
        }
    }
    running.stop();
    println!(
        "acted: {} (held {} MiB of leak); counts: {:?}",
        *acted.lock(),
        leak.len() as u64 * 8,
        watchdog.counts()
    );
    drop(leak);
    std::fs::remove_dir_all(&dump_dir)?;
    Ok(())
}
