//! [`MemoryWatchdog`]: the policy on tokio, with the probe, events, evidence and the restart.
//!
//! One task samples memory, feeds [`WatchdogCore`], carries out what it asks, and sleeps for
//! the interval it chooses. Rust has no managed heap to snapshot, so evidence is what the
//! application says it is (a jemalloc profile dump, say) through [`evidence`]; without one the
//! watchdog writes a JSON report of what it measured. The restart runs the drain hooks (pools'
//! `drain`) within `drain_timeout`, then exits with `exit_code` (75 by default) so the supervisor
//! starts a fresh process.
//!
//! [`evidence`]: MemoryWatchdogBuilder::evidence

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::config::WatchdogConfig;
use super::dumps::{DUMP_PREFIX, DumpFile, plan_dump_rotation};
use super::policy::{
    Assessment, EvidenceKind, MemorySample, Trigger, WatchdogAction, WatchdogCore, WatchdogCounts,
};
use super::probe::{HostFs, MemoryProbe, MemoryReading, MemorySource, ProbeError};
use crate::time::Timestamp;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Listener = Arc<dyn Fn(&WatchdogEvent) + Send + Sync>;
type DrainHook = Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>;
type EvidenceHook = Arc<dyn Fn(EvidenceRequest) -> BoxFuture<std::io::Result<()>> + Send + Sync>;
type HeapSource = Arc<dyn Fn() -> Option<(u64, Option<u64>)> + Send + Sync>;
type ExitHook = Arc<dyn Fn(i32) + Send + Sync>;

/// What the watchdog tells listeners.
#[derive(Debug, Clone)]
pub enum WatchdogEvent {
    /// A sample was taken and judged.
    Sample {
        /// What the probe read.
        reading: MemoryReading,
        /// What the policy made of it.
        assessment: Assessment,
    },
    /// One of the policy's actions (warn, recovered, spike, leak trend, act, evidence, restart),
    /// as it is carried out.
    Action(WatchdogAction),
    /// An evidence file was written.
    EvidenceWritten {
        /// Where.
        path: PathBuf,
        /// Which kind.
        evidence: EvidenceKind,
    },
    /// Something failed: the probe, writing evidence, removing an old file. The watchdog goes on.
    Error(String),
}

/// Where and why to write evidence, handed to the [`evidence`](MemoryWatchdogBuilder::evidence)
/// hook.
#[derive(Debug, Clone)]
pub struct EvidenceRequest {
    /// The file to write (in the dump directory, named `seawall-memory-…`).
    pub path: PathBuf,
    /// What the policy asked for: a full dump only when there is headroom for it.
    pub evidence: EvidenceKind,
    /// Why.
    pub trigger: Trigger,
    /// Free memory at the time (limit minus usage).
    pub free_bytes: u64,
}

/// Builds a [`MemoryWatchdog`].
#[must_use]
pub struct MemoryWatchdogBuilder {
    config: WatchdogConfig,
    probe: MemoryProbe<Arc<dyn MemorySource>>,
    dump_dir: PathBuf,
    listeners: Vec<Listener>,
    drains: Vec<DrainHook>,
    evidence: Option<EvidenceHook>,
    heap: Option<HeapSource>,
    exit: ExitHook,
}

impl MemoryWatchdogBuilder {
    /// Also count `limit_bytes` as a limit (the tightest of it, the cgroup's and RAM applies).
    pub fn limit_bytes(mut self, limit: u64) -> Self {
        self.probe = MemoryProbe::with_source(Arc::clone(self.probe.source()), Some(limit));
        self
    }

    /// Reads memory from `source` instead of the host's `/proc` and `/sys` (tests: a fake
    /// cgroup tree through [`RootedFs`](super::RootedFs)).
    pub fn source(mut self, source: impl MemorySource + 'static) -> Self {
        let limit = self.probe.configured_limit();
        self.probe = MemoryProbe::with_source(Arc::new(source), limit);
        self
    }

    /// Where evidence files go (default: the system temporary directory).
    pub fn dump_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dump_dir = dir.into();
        self
    }

    /// Calls `listener` with every event, on the watchdog's task; keep it short.
    pub fn on_event(mut self, listener: impl Fn(&WatchdogEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Runs `hook` before a restart (all hooks concurrently, within `drain_timeout`): drain
    /// pools, flush queues, stop accepting work.
    pub fn drain<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.drains.push(Arc::new(move || Box::pin(hook())));
        self
    }

    /// Writes evidence when the policy asks for it (a jemalloc heap profile, say), to the
    /// request's path. Without a hook, the watchdog writes a JSON report of its measurements.
    pub fn evidence<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(EvidenceRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        self.evidence = Some(Arc::new(move |r| Box::pin(hook(r))));
        self
    }

    /// Reports the allocator's heap in use and, if it has one, its limit (jemalloc's
    /// `stats.allocated`, say), so that the policy can size a dump. Rust has no managed heap,
    /// so by default there is none.
    pub fn heap(
        mut self,
        source: impl Fn() -> Option<(u64, Option<u64>)> + Send + Sync + 'static,
    ) -> Self {
        self.heap = Some(Arc::new(source));
        self
    }

    /// Replaces the process exit of a restart (tests; or a supervisor of your own). The default
    /// is `std::process::exit`.
    pub fn on_exit(mut self, exit: impl Fn(i32) + Send + Sync + 'static) -> Self {
        self.exit = Arc::new(exit);
        self
    }

    /// The watchdog; [`start`](MemoryWatchdog::start) it on a tokio runtime.
    pub fn build(self) -> MemoryWatchdog {
        MemoryWatchdog {
            inner: Arc::new(Inner {
                core: Mutex::new(WatchdogCore::new(self.config.clone())),
                setup: self,
                origin: tokio::time::Instant::now(),
                written: AtomicU64::new(0),
                last: Mutex::new(None),
            }),
        }
    }
}

struct Inner {
    core: Mutex<WatchdogCore>,
    /// Everything the builder was given.
    setup: MemoryWatchdogBuilder,
    /// Timestamps count from here, on tokio's clock (so tests can pause and advance it).
    origin: tokio::time::Instant,
    /// Evidence files written so far.
    written: AtomicU64,
    /// The latest reading and what the policy made of it.
    last: Mutex<Option<(MemoryReading, Assessment)>>,
}

/// The memory watchdog on tokio. Cloning is cheap; clones share state.
///
/// ```no_run
/// # async fn run() -> Result<(), seawall_core::ConfigError> {
/// use seawall_core::memory::{MemoryWatchdog, WatchdogConfig};
///
/// let watchdog = MemoryWatchdog::builder(WatchdogConfig::builder().build()?)
///     .dump_dir("/var/tmp")
///     .drain(|| async { /* pool.drain().await */ })
///     .on_event(|e| eprintln!("memory: {e:?}"))
///     .build();
/// let running = watchdog.start();
/// // ... serve ...
/// running.stop();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryWatchdog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryWatchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryWatchdog")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

/// A started watchdog; [`stop`](Self::stop) it, or drop it to stop.
#[derive(Debug)]
pub struct RunningWatchdog {
    task: tokio::task::JoinHandle<()>,
}

impl RunningWatchdog {
    /// Stops sampling.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for RunningWatchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MemoryWatchdog {
    /// A builder reading the host's memory, dumping to the system temporary directory, and
    /// exiting the process on a restart.
    pub fn builder(config: WatchdogConfig) -> MemoryWatchdogBuilder {
        MemoryWatchdogBuilder {
            config,
            probe: MemoryProbe::with_source(Arc::new(HostFs), None),
            dump_dir: std::env::temp_dir(),
            listeners: Vec::new(),
            drains: Vec::new(),
            evidence: None,
            heap: None,
            exit: Arc::new(|code| std::process::exit(code)),
        }
    }

    /// Counters since the start.
    pub fn counts(&self) -> WatchdogCounts {
        self.inner.core.lock().counts()
    }

    /// The latest sample: the reading (usage, limit and their sources, RSS, oom kills) and the
    /// assessment (level, percentage, growth, trend slope and projected time to the limit, the
    /// actions taken, when the next sample comes); `None` before the first.
    pub fn last_sample(&self) -> Option<(MemoryReading, Assessment)> {
        self.inner.last.lock().clone()
    }

    /// Samples now, on a task of the current tokio runtime, and keeps sampling at the intervals
    /// the policy asks for. Like `tokio::spawn`, it must be called within a tokio runtime.
    pub fn start(&self) -> RunningWatchdog {
        let this = self.clone();
        RunningWatchdog {
            task: tokio::spawn(async move {
                loop {
                    let next = match this.sample_now().await {
                        Ok(a) => a.next_sample_in,
                        // A probe that failed once may work next time (a file briefly
                        // unreadable); try again at the alert pace rather than stop watching.
                        Err(_) => this.inner.setup.config.alert_interval(),
                    };
                    tokio::time::sleep(next).await;
                }
            }),
        }
    }

    fn emit(&self, event: &WatchdogEvent) {
        for l in &self.inner.setup.listeners {
            l(event);
        }
    }

    /// Takes one sample, judges it and carries out the actions (evidence, restart). Returns the
    /// assessment, or the probe's error (also sent to listeners).
    pub async fn sample_now(&self) -> Result<Assessment, ProbeError> {
        let i = &self.inner;
        let reading = match i.setup.probe.read() {
            Ok(r) => r,
            Err(e) => {
                self.emit(&WatchdogEvent::Error(format!("memory probe: {e}")));
                return Err(e);
            }
        };
        let heap = i.setup.heap.as_ref().and_then(|h| h());
        let sample = MemorySample {
            usage_bytes: reading.usage_bytes,
            limit_bytes: reading.limit_bytes,
            heap_used_bytes: heap.map(|(used, _)| used),
            heap_limit_bytes: heap.and_then(|(_, limit)| limit),
        };
        let now =
            Timestamp::from_nanos(u64::try_from(i.origin.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let assessment = i.core.lock().observe(now, sample);
        *i.last.lock() = Some((reading.clone(), assessment.clone()));
        self.emit(&WatchdogEvent::Sample {
            reading: reading.clone(),
            assessment: assessment.clone(),
        });
        for action in &assessment.actions {
            self.emit(&WatchdogEvent::Action(*action));
            match *action {
                WatchdogAction::Evidence {
                    evidence,
                    trigger,
                    free_bytes,
                    ..
                } => {
                    self.write_evidence(evidence, trigger, free_bytes, &reading, &assessment)
                        .await;
                }
                WatchdogAction::Restart {
                    drain_timeout,
                    exit_code,
                } => {
                    self.restart(drain_timeout, exit_code).await;
                }
                _ => {}
            }
        }
        Ok(assessment)
    }

    async fn write_evidence(
        &self,
        evidence: EvidenceKind,
        trigger: Trigger,
        free_bytes: u64,
        reading: &MemoryReading,
        assessment: &Assessment,
    ) {
        let i = &self.inner;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let trigger_name = trigger.as_str().replace('_', "-");
        let extension = if i.setup.evidence.is_some() {
            "dump"
        } else {
            "json"
        };
        // The sequence number keeps names unique within a millisecond, and zero-padded, it
        // keeps them in writing order, which rotation uses to break equal modification times.
        let seq = i.written.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{DUMP_PREFIX}{}-{millis:013}-{seq:06}-{trigger_name}.{extension}",
            std::process::id()
        );
        // Make room first: a full disk must not be the next incident. The size of a dump is
        // not known before it is written; the memory it may copy, the usage, is the estimate.
        self.rotate(reading.usage_bytes);
        let path = i.setup.dump_dir.join(name);
        let written = match &i.setup.evidence {
            Some(hook) => {
                hook(EvidenceRequest {
                    path: path.clone(),
                    evidence,
                    trigger,
                    free_bytes,
                })
                .await
            }
            None => write_report(&path, reading, assessment, &i.core.lock().counts()),
        };
        match written {
            Ok(()) => self.emit(&WatchdogEvent::EvidenceWritten { path, evidence }),
            Err(e) => self.emit(&WatchdogEvent::Error(format!(
                "writing evidence to {}: {e}",
                path.display()
            ))),
        }
    }

    fn rotate(&self, incoming: u64) {
        let dir = &self.inner.setup.dump_dir;
        let existing = list_dumps(dir);
        let plan = plan_dump_rotation(&self.inner.setup.config, &existing, incoming);
        for name in plan.delete {
            if let Err(e) = std::fs::remove_file(dir.join(&name)) {
                self.emit(&WatchdogEvent::Error(format!(
                    "removing old evidence {name}: {e}"
                )));
            }
        }
    }

    async fn restart(&self, drain_timeout: Duration, exit_code: i32) {
        // Concurrently: the deadline is for all of them, not each.
        let drains: Vec<_> = self
            .inner
            .setup
            .drains
            .iter()
            .map(|d| tokio::spawn(d()))
            .collect();
        let all = async {
            for d in drains {
                if let Err(e) = d.await {
                    self.emit(&WatchdogEvent::Error(format!("a drain hook failed: {e}")));
                }
            }
        };
        if tokio::time::timeout(drain_timeout, all).await.is_err() {
            self.emit(&WatchdogEvent::Error(format!(
                "drain hooks still running after {drain_timeout:?}: exiting anyway"
            )));
        }
        (self.inner.setup.exit)(exit_code);
    }
}

fn list_dumps(dir: &Path) -> Vec<DumpFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with(DUMP_PREFIX) {
                return None;
            }
            let meta = e.metadata().ok()?;
            let created = meta
                .modified()
                .ok()?
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_millis();
            Some(DumpFile {
                name,
                bytes: meta.len(),
                created: u64::try_from(created).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

fn write_report(
    path: &Path,
    reading: &MemoryReading,
    assessment: &Assessment,
    counts: &WatchdogCounts,
) -> std::io::Result<()> {
    let report = serde_json::json!({
        "pid": std::process::id(),
        "reading": reading,
        "assessment": assessment,
        "counts": counts,
    });
    let text = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}
