//! The memory watchdog: see a leak coming, capture evidence while it is safe, restart gracefully.
//!
//! Born from the third incident: Node.js services leaked until the kernel killed them, with
//! nothing captured. What runs here instead of an absolute RSS number checked every 30 s:
//! - a [probe](MemoryProbe) that finds the limit the kernel enforces (cgroup v2 or v1, a
//!   configured limit, physical RAM: the tightest wins) and the usage it counts (the cgroup
//!   working set, as the kubelet computes it, or the process RSS);
//! - a sans-IO [policy](WatchdogCore) fed samples, that warns at 70 % and acts at 80 % (the
//!   incident protocol), reports spikes and steady leaks with the projected time to the limit,
//!   samples every 5 minutes but faster near the limit or while memory grows fast, and asks for
//!   a heap snapshot only when there is room to write one;
//! - [rotation](plan_dump_rotation) of the evidence files within caps;
//! - with the `tokio` feature, `MemoryWatchdog`: the policy on a tokio task, with events, an
//!   evidence hook and the graceful restart (drain hooks within a deadline, then exit code 75).

mod config;
mod dumps;
mod policy;
mod probe;
#[cfg(feature = "tokio")]
mod watchdog;

pub use config::{
    ActMode, MAX_DUMP_FILES, MAX_INTERVAL, MAX_TREND_SAMPLES, MIN_DUMP_BYTES, MIN_INTERVAL,
    RESTART_EXIT_CODE, WatchdogConfig, WatchdogConfigBuilder, watchdog_duration_from_millis,
    watchdog_duration_from_secs, watchdog_integer_from_f64,
};
pub use dumps::{DUMP_PREFIX, DumpFile, DumpPlan, plan_dump_rotation};
pub use policy::{
    Assessment, Basis, EvidenceKind, Level, MemorySample, TREND_MIN_R2, Trend, Trigger,
    WatchdogAction, WatchdogCore, WatchdogCounts,
};
pub use probe::{
    CgroupVersion, FileFault, HostFs, LimitSource, MemoryProbe, MemoryReading, MemorySource,
    ProbeError, RootedFs, UsageSource,
};
#[cfg(feature = "tokio")]
pub use watchdog::{
    EvidenceRequest, MemoryWatchdog, MemoryWatchdogBuilder, RunningWatchdog, WatchdogEvent,
};
