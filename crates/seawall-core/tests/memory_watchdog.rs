//! The tokio watchdog end to end on a fake cgroup v2 host and tokio's paused clock: a leak is
//! warned about, then acted on, with evidence written, the drain hooks run and the process
//! "exited" with the restart code; and the evidence directory stays within its caps.

#![cfg(feature = "tokio")]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use seawall_core::memory::{
    ActMode, DUMP_PREFIX, EvidenceKind, MemorySource, MemoryWatchdog, WatchdogAction,
    WatchdogConfig, WatchdogEvent,
};

const MIB: u64 = 1 << 20;

/// A cgroup v2 host in memory: 100 MiB limit, usage set by the test.
#[derive(Clone)]
struct FakeHost {
    files: Arc<Mutex<HashMap<String, String>>>,
}

impl FakeHost {
    fn new(limit: u64) -> Self {
        let mut files = HashMap::new();
        let mut put = |p: &str, c: String| {
            files.insert(p.to_string(), c);
        };
        put(
            "/proc/meminfo",
            format!("MemTotal: {} kB\n", 16 * 1024 * 1024),
        );
        put("/proc/self/status", "VmRSS:\t 10240 kB\n".into());
        put("/proc/self/cgroup", "0::/\n".into());
        put("/sys/fs/cgroup/cgroup.controllers", "memory\n".into());
        put("/sys/fs/cgroup/memory.max", format!("{limit}\n"));
        put("/sys/fs/cgroup/memory.high", "max\n".into());
        put("/sys/fs/cgroup/memory.stat", "inactive_file 0\n".into());
        put("/sys/fs/cgroup/memory.current", "0\n".into());
        FakeHost {
            files: Arc::new(Mutex::new(files)),
        }
    }

    fn set_usage(&self, bytes: u64) {
        self.files
            .lock()
            .insert("/sys/fs/cgroup/memory.current".into(), format!("{bytes}\n"));
    }
}

impl MemorySource for FakeHost {
    fn read_to_string(&self, path: &str) -> Option<String> {
        self.files.lock().get(path).cloned()
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("seawall-watchdog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create dump dir");
    dir
}

#[tokio::test(start_paused = true)]
async fn a_leak_is_warned_then_acted_on_with_evidence_drain_and_exit() {
    let host = FakeHost::new(100 * MIB);
    let dir = temp_dir("leak");
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let drained = Arc::new(AtomicBool::new(false));
    let exit_code = Arc::new(AtomicU64::new(0));
    let config = WatchdogConfig::builder()
        .interval(Duration::from_secs(60))
        .alert_interval(Duration::from_secs(5))
        .build()
        .expect("valid");
    let watchdog = MemoryWatchdog::builder(config)
        .source(host.clone())
        .dump_dir(&dir)
        .on_event({
            let events = Arc::clone(&events);
            move |e| {
                let name = match e {
                    WatchdogEvent::Action(WatchdogAction::Warn { .. }) => "warn",
                    WatchdogEvent::Action(WatchdogAction::Act { .. }) => "act",
                    WatchdogEvent::Action(WatchdogAction::Restart { .. }) => "restart",
                    WatchdogEvent::EvidenceWritten { .. } => "evidence",
                    WatchdogEvent::Error(_) => "error",
                    _ => return,
                };
                events.lock().push(name.to_string());
            }
        })
        .drain({
            let drained = Arc::clone(&drained);
            move || {
                let drained = Arc::clone(&drained);
                async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    drained.store(true, Ordering::SeqCst);
                }
            }
        })
        .on_exit({
            let exit_code = Arc::clone(&exit_code);
            move |code| exit_code.store(code as u64, Ordering::SeqCst)
        })
        .build();
    // A leak of 1 MiB per second from 20 MiB.
    host.set_usage(20 * MIB);
    let running = watchdog.start();
    let mut usage = 20 * MIB;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        usage += MIB;
        host.set_usage(usage);
        if exit_code.load(Ordering::SeqCst) != 0 {
            break;
        }
    }
    running.stop();
    assert_eq!(
        exit_code.load(Ordering::SeqCst),
        75,
        "exited with the restart code"
    );
    assert!(
        drained.load(Ordering::SeqCst),
        "the drain hook ran before the exit"
    );
    assert!(
        usage < 100 * MIB,
        "acted before the limit: {} MiB",
        usage / MIB
    );
    let events = events.lock().clone();
    assert_eq!(
        events,
        ["warn", "act", "evidence", "restart"],
        "in this order"
    );
    let dumps: Vec<_> = std::fs::read_dir(&dir)
        .expect("dump dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dumps[0]).expect("read")).expect("a JSON report");
    assert_eq!(report["reading"]["limit_source"], "cgroup_v2_max");
    assert_eq!(report["assessment"]["level"], "act");
    let (reading, assessment) = watchdog.last_sample().expect("sampled");
    assert_eq!(reading.limit_bytes, 100 * MIB);
    assert_eq!(assessment.level, seawall_core::memory::Level::Act);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(start_paused = true)]
async fn evidence_stays_within_the_file_cap_and_a_hook_writes_it() {
    let host = FakeHost::new(100 * MIB);
    let dir = temp_dir("rotation");
    let hooked: Arc<Mutex<Vec<EvidenceKind>>> = Arc::default();
    let config = WatchdogConfig::builder()
        .act_mode(ActMode::EventOnly)
        .cooldown(Duration::ZERO)
        .max_dump_files(2)
        .build()
        .expect("valid");
    let watchdog = MemoryWatchdog::builder(config)
        .source(host.clone())
        .dump_dir(&dir)
        .evidence({
            let hooked = Arc::clone(&hooked);
            move |request| {
                hooked.lock().push(request.evidence);
                async move { std::fs::write(&request.path, b"dump") }
            }
        })
        .build();
    host.set_usage(90 * MIB);
    for _ in 0..5 {
        let a = watchdog
            .sample_now()
            .await
            .expect("probe reads the fake host");
        assert!(
            a.actions
                .iter()
                .any(|x| matches!(x, WatchdogAction::Act { .. }))
        );
        // Distinct file names: they carry the wall-clock millisecond.
        std::thread::sleep(Duration::from_millis(2));
    }
    let ours = std::fs::read_dir(&dir)
        .expect("dump dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(DUMP_PREFIX))
        .count();
    assert_eq!(ours, 2, "the oldest were removed");
    // 10 MiB free is less than twice the 90 MiB in use: a profile each time.
    assert_eq!(*hooked.lock(), vec![EvidenceKind::Profile; 5]);
    let _ = std::fs::remove_dir_all(&dir);
}
