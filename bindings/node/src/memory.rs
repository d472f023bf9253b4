//! The memory watchdog's native half: options → the core's `WatchdogConfig`, the sans-IO
//! `WatchdogCore` behind a lock, the Linux probe, and the dump rotation planner.
//!
//! Like the rest of the binding it decides nothing: when to warn, act, ask for a snapshot or a
//! profile, restart, and when to sample again are the core's answers. The facade
//! (`lib/watchdog.js`) reads V8's heap figures, writes the evidence, runs the drain hooks, owns
//! the (unref'd) timer and exits; nothing here holds a JS value or a handle, so a watchdog never
//! keeps the event loop alive by itself.
//!
//! Every entry point is `catch_unwind`: a panic becomes an exception instead of aborting Node.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;
use parking_lot::Mutex;
use seawall_core::ConfigError;
use seawall_core::memory::{
    ActMode, Assessment, Basis, DumpFile, MemoryProbe, MemoryReading, MemorySample, RootedFs,
    Trend, WatchdogAction, WatchdogConfig, WatchdogCore, plan_dump_rotation,
    watchdog_duration_from_millis, watchdog_integer_from_f64,
};

use crate::error;
use crate::options::{Options, millis, timestamp};

/// The options a watchdog reads, in JS spelling: the core's fields, and the probe's limit.
/// Other keys (`snapshotDir`, `drain`, `onWarn`, …) belong to the facade and are ignored here.
const OPTION_KEYS: &[&str] = &[
    "intervalMs",
    "alertIntervalMs",
    "warnPercent",
    "actPercent",
    "spikePercentPerMinute",
    "trendWindowMs",
    "trendMinSamples",
    "trendHorizonMs",
    "cooldownMs",
    "snapshotHeadroomFactor",
    "actMode",
    "drainTimeoutMs",
    "exitCode",
    "maxDumpFiles",
    "maxDumpBytes",
    "limitBytes",
];

/// The validated options: the core's configuration and the probe's configured limit.
struct Parsed {
    config: WatchdogConfig,
    limit_bytes: Option<u64>,
}

fn parse_options(env: &Env, options: Unknown<'_>) -> napi::Result<Parsed> {
    let o = Options::root(env, options, "options", "")?;
    let fail = |e: ConfigError| error::config_error(env, &e);
    let duration = |key: &str, field: &'static str| -> napi::Result<Option<Duration>> {
        o.number(key)?
            .map(|ms| watchdog_duration_from_millis(field, ms).map_err(fail))
            .transpose()
    };
    let integer = |key: &str, field: &'static str| -> napi::Result<Option<u64>> {
        o.number(key)?
            .map(|v| watchdog_integer_from_f64(field, v).map_err(fail))
            .transpose()
    };
    let mut b = WatchdogConfig::builder();
    if let Some(d) = duration("intervalMs", "interval")? {
        b = b.interval(d);
    }
    if let Some(d) = duration("alertIntervalMs", "alert_interval")? {
        b = b.alert_interval(d);
    }
    if let Some(p) = o.number("warnPercent")? {
        b = b.warn_percent(p);
    }
    if let Some(p) = o.number("actPercent")? {
        b = b.act_percent(p);
    }
    if let Some(p) = o.number("spikePercentPerMinute")? {
        b = b.spike_percent_per_minute(p);
    }
    if let Some(d) = duration("trendWindowMs", "trend_window")? {
        b = b.trend_window(d);
    }
    // A count past u32 is out of the core's range anyway: saturate and let `build` name it.
    if let Some(n) = integer("trendMinSamples", "trend_min_samples")? {
        b = b.trend_min_samples(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(d) = duration("trendHorizonMs", "trend_horizon")? {
        b = b.trend_horizon(d);
    }
    if let Some(d) = duration("cooldownMs", "cooldown")? {
        b = b.cooldown(d);
    }
    if let Some(f) = o.number("snapshotHeadroomFactor")? {
        b = b.snapshot_headroom_factor(f);
    }
    if let Some(mode) = o.string("actMode", "'restart' or 'eventOnly'")? {
        b = b.act_mode(match mode.as_str() {
            "restart" => ActMode::Restart,
            "eventOnly" => ActMode::EventOnly,
            _ => {
                return Err(error::option_choice_error(
                    env,
                    "actMode",
                    "'restart' or 'eventOnly'",
                    &mode,
                ));
            }
        });
    }
    if let Some(d) = duration("drainTimeoutMs", "drain_timeout")? {
        b = b.drain_timeout(d);
    }
    if let Some(n) = integer("exitCode", "exit_code")? {
        b = b.exit_code(i32::try_from(n).unwrap_or(i32::MAX));
    }
    if let Some(n) = integer("maxDumpFiles", "max_dump_files")? {
        b = b.max_dump_files(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(n) = integer("maxDumpBytes", "max_dump_bytes")? {
        b = b.max_dump_bytes(n);
    }
    let limit_bytes = integer("limitBytes", "limit_bytes")?;
    let config = b.build().map_err(fail)?;
    Ok(Parsed {
        config,
        limit_bytes,
    })
}

/// A byte count from JS (a method argument), as the core's whole number of bytes.
fn bytes_argument(env: &Env, field: &'static str, v: f64) -> napi::Result<u64> {
    watchdog_integer_from_f64(field, v).map_err(|e| error::argument_error(env, &e))
}

/// A fitted growth trend.
#[napi(object)]
pub struct NativeTrend {
    /// Growth, bytes per second.
    pub bytes_per_second: f64,
    /// How well a line explains the samples (0 to 1).
    pub r2: f64,
    /// Projected time to the limit at this rate, or null when not growing.
    pub time_to_limit_ms: Option<f64>,
    /// Samples fitted.
    pub samples: u32,
}

fn trend(t: &Trend) -> NativeTrend {
    NativeTrend {
        bytes_per_second: t.bytes_per_second,
        r2: t.r2,
        time_to_limit_ms: t.time_to_limit.map(millis),
        samples: t.samples,
    }
}

/// One action of an assessment; fields that do not apply to `kind` are absent.
#[napi(object)]
#[derive(Default)]
pub struct NativeWatchdogAction {
    /// `warn`, `recovered`, `spike`, `leak_trend`, `act`, `evidence` or `restart`.
    pub kind: String,
    /// warn, recovered, act: percentage of the limit on `basis`.
    pub percent: Option<f64>,
    /// warn, recovered, spike, act: `limit` or `heap`.
    pub basis: Option<String>,
    /// spike: growth in percent of the limit per minute.
    pub percent_per_minute: Option<f64>,
    /// leak_trend: the fit.
    pub trend: Option<NativeTrend>,
    /// evidence: `heap_snapshot` or `profile`.
    pub evidence: Option<String>,
    /// evidence: `spike`, `leak_trend` or `act`.
    pub trigger: Option<String>,
    /// evidence: the limit minus usage.
    pub free_bytes: Option<f64>,
    /// evidence: free memory a heap snapshot needs.
    pub needed_bytes: Option<f64>,
    /// restart: longest the drain hooks may run.
    pub drain_timeout_ms: Option<f64>,
    /// restart: the exit code.
    pub exit_code: Option<i32>,
}

/// A warn, recovered or act action: a level crossed, at `percent` of the limit on `basis`.
fn level_action(kind: &str, percent: f64, basis: Basis) -> NativeWatchdogAction {
    NativeWatchdogAction {
        kind: kind.into(),
        percent: Some(percent),
        basis: Some(basis.as_str().into()),
        ..Default::default()
    }
}

fn action(a: &WatchdogAction) -> NativeWatchdogAction {
    match *a {
        WatchdogAction::Warn { percent, basis } => level_action("warn", percent, basis),
        WatchdogAction::Recovered { percent, basis } => level_action("recovered", percent, basis),
        WatchdogAction::Act { percent, basis } => level_action("act", percent, basis),
        WatchdogAction::Spike {
            percent_per_minute,
            basis,
        } => NativeWatchdogAction {
            kind: "spike".into(),
            percent_per_minute: Some(percent_per_minute),
            basis: Some(basis.as_str().into()),
            ..Default::default()
        },
        WatchdogAction::LeakTrend { trend: t } => NativeWatchdogAction {
            kind: "leak_trend".into(),
            trend: Some(trend(&t)),
            ..Default::default()
        },
        WatchdogAction::Evidence {
            evidence,
            trigger,
            free_bytes,
            needed_bytes,
        } => NativeWatchdogAction {
            kind: "evidence".into(),
            evidence: Some(evidence.as_str().into()),
            trigger: Some(trigger.as_str().into()),
            free_bytes: Some(free_bytes as f64),
            needed_bytes: Some(needed_bytes as f64),
            ..Default::default()
        },
        WatchdogAction::Restart {
            drain_timeout,
            exit_code,
        } => NativeWatchdogAction {
            kind: "restart".into(),
            drain_timeout_ms: Some(millis(drain_timeout)),
            exit_code: Some(exit_code),
            ..Default::default()
        },
    }
}

/// The outcome of one sample.
#[napi(object)]
pub struct NativeAssessment {
    /// `normal`, `warn` or `act`.
    pub level: String,
    /// Percentage of the limit on `basis`.
    pub percent: f64,
    /// `limit` or `heap`.
    pub basis: String,
    /// Growth since the previous sample, percent of the limit per minute; absent at first.
    pub growth_percent_per_minute: Option<f64>,
    /// The fitted trend, when there is one.
    pub trend: Option<NativeTrend>,
    /// When to take the next sample.
    pub next_sample_ms: f64,
    /// What to do, in order.
    pub actions: Vec<NativeWatchdogAction>,
}

fn assessment(a: &Assessment) -> NativeAssessment {
    NativeAssessment {
        level: a.level.as_str().into(),
        percent: a.percent,
        basis: a.basis.as_str().into(),
        growth_percent_per_minute: a.growth_percent_per_minute,
        trend: a.trend.as_ref().map(trend),
        next_sample_ms: millis(a.next_sample_in),
        actions: a.actions.iter().map(action).collect(),
    }
}

/// Counters since the watchdog started.
#[napi(object)]
pub struct NativeWatchdogCounts {
    /// Samples observed.
    pub samples: f64,
    /// Warn actions.
    pub warnings: f64,
    /// Act actions.
    pub acts: f64,
    /// Spike actions.
    pub spikes: f64,
    /// Leak-trend actions.
    pub leak_trends: f64,
    /// Heap snapshots asked for.
    pub heap_snapshots: f64,
    /// Profiles asked for.
    pub profiles: f64,
    /// Restarts asked for.
    pub restarts: f64,
}

/// The validated configuration, in JS units (what `MemoryWatchdog#config` shows).
#[napi(object)]
pub struct NativeWatchdogConfig {
    pub interval_ms: f64,
    pub alert_interval_ms: f64,
    pub warn_percent: f64,
    pub act_percent: f64,
    pub spike_percent_per_minute: f64,
    pub trend_window_ms: f64,
    pub trend_min_samples: u32,
    pub trend_horizon_ms: f64,
    pub cooldown_ms: f64,
    pub snapshot_headroom_factor: f64,
    /// `restart` or `eventOnly`.
    pub act_mode: String,
    pub drain_timeout_ms: f64,
    pub exit_code: i32,
    pub max_dump_files: u32,
    pub max_dump_bytes: f64,
    /// The configured limit, or absent.
    pub limit_bytes: Option<f64>,
}

/// One reading of the memory probe.
#[napi(object)]
pub struct NativeMemoryReading {
    /// The effective limit: the tightest of the cgroup limits, the configured limit and RAM.
    pub limit_bytes: f64,
    /// `cgroup_v2_max`, `cgroup_v2_high`, `cgroup_v1`, `configured` or `physical_ram`.
    pub limit_source: String,
    /// Memory charged against the limit: the cgroup working set, or the process RSS.
    pub usage_bytes: f64,
    /// `cgroup_v2_working_set`, `cgroup_v1_working_set` or `process_rss`.
    pub usage_source: String,
    /// The process RSS.
    pub rss_bytes: f64,
    /// Physical RAM.
    pub physical_ram_bytes: f64,
    /// `v1`, `v2` or `none`.
    pub cgroup: String,
    /// OOM kills counted in the cgroup, absent when unknown.
    pub oom_kills: Option<f64>,
}

fn reading(r: &MemoryReading) -> NativeMemoryReading {
    NativeMemoryReading {
        limit_bytes: r.limit_bytes as f64,
        limit_source: r.limit_source.as_str().into(),
        usage_bytes: r.usage_bytes as f64,
        usage_source: r.usage_source.as_str().into(),
        rss_bytes: r.rss_bytes as f64,
        physical_ram_bytes: r.physical_ram_bytes as f64,
        cgroup: r.cgroup.as_str().into(),
        oom_kills: r.oom_kills.map(|n| n as f64),
    }
}

/// `code` of a probe that cannot read the two figures without a fallback (not Linux, no /proc).
const PROBE_FAILED: &str = "SEAWALL_MEMORY_PROBE_FAILED";

fn probe(env: &Env, root: Option<&str>, limit: Option<u64>) -> napi::Result<NativeMemoryReading> {
    let result = match root {
        Some(root) => MemoryProbe::with_source(RootedFs::new(root), limit).read(),
        None => MemoryProbe::new(limit).read(),
    };
    result.map(|r| reading(&r)).map_err(|e| {
        let error = napi::JsError::from(napi::Error::new(PROBE_FAILED, e.to_string()));
        napi::Error::from(error.into_unknown(*env))
    })
}

fn limit_argument(env: &Env, limit_bytes: Option<f64>) -> napi::Result<Option<u64>> {
    limit_bytes
        .map(|v| bytes_argument(env, "limit_bytes", v))
        .transpose()
}

/// Reads this process's memory: the effective limit (cgroup v2 / v1, `limitBytes`, RAM) and the
/// usage the limit counts. Throws an Error with `code: 'SEAWALL_MEMORY_PROBE_FAILED'` where
/// /proc cannot be read (not Linux).
#[napi(catch_unwind)]
pub fn read_memory(env: Env, limit_bytes: Option<f64>) -> napi::Result<NativeMemoryReading> {
    let limit = limit_argument(&env, limit_bytes)?;
    probe(&env, None, limit)
}

/// `readMemory` with every file read under `root` instead of `/` (tests: fake cgroup trees).
#[napi(catch_unwind)]
pub fn read_memory_at(
    env: Env,
    root: String,
    limit_bytes: Option<f64>,
) -> napi::Result<NativeMemoryReading> {
    let limit = limit_argument(&env, limit_bytes)?;
    probe(&env, Some(&root), limit)
}

/// The reading where `/proc` cannot be read (not Linux): the process RSS against `limitBytes` or
/// the total memory, as the core rules it (`MemoryReading::without_cgroup`).
#[napi(catch_unwind)]
pub fn memory_without_cgroup(
    env: Env,
    limit_bytes: Option<f64>,
    rss_bytes: f64,
    physical_ram_bytes: f64,
) -> napi::Result<NativeMemoryReading> {
    let limit = limit_argument(&env, limit_bytes)?;
    let rss = bytes_argument(&env, "rss_bytes", rss_bytes)?;
    let ram = bytes_argument(&env, "physical_ram_bytes", physical_ram_bytes)?;
    Ok(reading(&MemoryReading::without_cgroup(limit, rss, ram)))
}

/// An evidence file already in the dump directory.
#[napi(object)]
pub struct NativeDumpFile {
    /// File name (not a path).
    pub name: String,
    /// Size in bytes.
    pub bytes: f64,
    /// When it was written (ms since the epoch, or any unit that orders files).
    pub created: f64,
}

/// What to do before writing a new evidence file.
#[napi(object)]
pub struct NativeDumpPlan {
    /// Files to delete first, oldest first.
    pub delete: Vec<String>,
    /// Whether the new file fits the byte cap at all.
    pub fits: bool,
}

/// The core's sans-IO watchdog. Private: use `MemoryWatchdog` / `WatchdogPolicy` from `seawall`.
#[napi]
pub struct NativeWatchdog {
    // A Mutex so methods take `&self` (see breaker.rs); AssertUnwindSafe because after a panic
    // the core is still plain data.
    core: AssertUnwindSafe<Mutex<WatchdogCore>>,
    limit_bytes: Option<u64>,
}

#[napi]
impl NativeWatchdog {
    /// Validates the options of `new MemoryWatchdog(options)`: a RangeError or TypeError names
    /// the first bad option. Keys the native side does not read are ignored.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: Unknown<'_>) -> napi::Result<Self> {
        let parsed = parse_options(&env, options)?;
        Ok(NativeWatchdog {
            core: AssertUnwindSafe(Mutex::new(WatchdogCore::new(parsed.config))),
            limit_bytes: parsed.limit_bytes,
        })
    }

    /// The option names this class reads (the facade checks other keys itself).
    #[napi(catch_unwind)]
    pub fn option_keys() -> Vec<String> {
        OPTION_KEYS.iter().map(|k| (*k).to_owned()).collect()
    }

    /// Judges a sample taken at `nowMs`: usage and limit in bytes, and the heap figures when the
    /// runtime has them.
    #[napi(catch_unwind)]
    pub fn observe(
        &self,
        env: Env,
        now_ms: f64,
        usage_bytes: f64,
        limit_bytes: f64,
        heap_used_bytes: Option<f64>,
        heap_limit_bytes: Option<f64>,
    ) -> napi::Result<NativeAssessment> {
        let now = timestamp(&env, now_ms)?;
        let sample = MemorySample {
            usage_bytes: bytes_argument(&env, "usage_bytes", usage_bytes)?,
            limit_bytes: bytes_argument(&env, "limit_bytes", limit_bytes)?,
            heap_used_bytes: heap_used_bytes
                .map(|v| bytes_argument(&env, "heap_used_bytes", v))
                .transpose()?,
            heap_limit_bytes: heap_limit_bytes
                .map(|v| bytes_argument(&env, "heap_limit_bytes", v))
                .transpose()?,
        };
        let a = self.core.lock().observe(now, sample);
        Ok(assessment(&a))
    }

    /// Counters since the start.
    #[napi(catch_unwind)]
    pub fn counts(&self) -> NativeWatchdogCounts {
        let c = self.core.lock().counts();
        NativeWatchdogCounts {
            samples: c.samples as f64,
            warnings: c.warnings as f64,
            acts: c.acts as f64,
            spikes: c.spikes as f64,
            leak_trends: c.leak_trends as f64,
            heap_snapshots: c.heap_snapshots as f64,
            profiles: c.profiles as f64,
            restarts: c.restarts as f64,
        }
    }

    /// The level of the last sample.
    #[napi(catch_unwind)]
    pub fn level(&self) -> String {
        self.core.lock().level().as_str().into()
    }

    /// The validated configuration.
    #[napi(catch_unwind)]
    pub fn config(&self) -> NativeWatchdogConfig {
        let core = self.core.lock();
        let c = core.config();
        NativeWatchdogConfig {
            interval_ms: millis(c.interval()),
            alert_interval_ms: millis(c.alert_interval()),
            warn_percent: c.warn_percent(),
            act_percent: c.act_percent(),
            spike_percent_per_minute: c.spike_percent_per_minute(),
            trend_window_ms: millis(c.trend_window()),
            trend_min_samples: c.trend_min_samples(),
            trend_horizon_ms: millis(c.trend_horizon()),
            cooldown_ms: millis(c.cooldown()),
            snapshot_headroom_factor: c.snapshot_headroom_factor(),
            act_mode: match c.act_mode() {
                ActMode::Restart => "restart",
                ActMode::EventOnly => "eventOnly",
            }
            .into(),
            drain_timeout_ms: millis(c.drain_timeout()),
            exit_code: c.exit_code(),
            max_dump_files: c.max_dump_files(),
            max_dump_bytes: c.max_dump_bytes() as f64,
            limit_bytes: self.limit_bytes.map(|n| n as f64),
        }
    }

    /// Reads memory with this watchdog's `limitBytes`; under `root` when given (tests).
    #[napi(catch_unwind)]
    pub fn read_memory(&self, env: Env, root: Option<String>) -> napi::Result<NativeMemoryReading> {
        probe(&env, root.as_deref(), self.limit_bytes)
    }

    /// Which evidence files to delete before writing one of about `incomingBytes`, within this
    /// watchdog's `maxDumpFiles` and `maxDumpBytes`.
    #[napi(catch_unwind)]
    pub fn plan_dump_rotation(
        &self,
        env: Env,
        existing: Vec<NativeDumpFile>,
        incoming_bytes: f64,
    ) -> napi::Result<NativeDumpPlan> {
        let incoming = bytes_argument(&env, "incoming_bytes", incoming_bytes)?;
        let files = existing
            .into_iter()
            .map(|f| {
                Ok(DumpFile {
                    name: f.name,
                    bytes: bytes_argument(&env, "bytes", f.bytes)?,
                    created: bytes_argument(&env, "created", f.created.max(0.0).floor())?,
                })
            })
            .collect::<napi::Result<Vec<_>>>()?;
        let core = self.core.lock();
        let plan = plan_dump_rotation(core.config(), &files, incoming);
        Ok(NativeDumpPlan {
            delete: plan.delete,
            fits: plan.fits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seawall_core::memory::{EvidenceKind, Trigger};

    #[test]
    fn actions_keep_the_core_names() {
        let a = action(&WatchdogAction::Evidence {
            evidence: EvidenceKind::Profile,
            trigger: Trigger::LeakTrend,
            free_bytes: 10,
            needed_bytes: 20,
        });
        assert_eq!(a.kind, "evidence");
        assert_eq!(a.evidence.as_deref(), Some("profile"));
        assert_eq!(a.trigger.as_deref(), Some("leak_trend"));
        assert_eq!((a.free_bytes, a.needed_bytes), (Some(10.0), Some(20.0)));
        assert!(a.percent.is_none() && a.exit_code.is_none());
    }
}
