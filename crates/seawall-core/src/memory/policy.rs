//! The watchdog's policy, sans-IO: fed samples, it says what to do and when to look again.
//!
//! Adapters read memory (the [probe](super::MemoryProbe), and their runtime's heap figures),
//! call [`WatchdogCore::observe`], carry out the actions, and sleep for `next_sample_in`.
//! Everything that decides lives here, so Rust, Node and Python warn, act, ask for evidence and
//! restart on the same samples (the vectors in `tests/conformance/memory/` prove it).

use std::collections::VecDeque;
use std::time::Duration;

use super::config::{ActMode, MAX_TREND_SAMPLES, WatchdogConfig};
use crate::time::{Timestamp, duration_nanos};

/// A fit counts as steady growth when it explains at least this much of the variation (R²).
/// Lower, and a sawtooth of garbage collections reads as a leak.
pub const TREND_MIN_R2: f64 = 0.8;

/// What an adapter measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySample {
    /// Memory in use, as the limit counts it (the cgroup working set, or the process RSS).
    pub usage_bytes: u64,
    /// The effective limit.
    pub limit_bytes: u64,
    /// The runtime's heap in use (V8's `used_heap_size`, Python's traced or allocated bytes),
    /// if the runtime has one.
    pub heap_used_bytes: Option<u64>,
    /// The runtime's own heap limit (V8's `heap_size_limit`), if it has one.
    pub heap_limit_bytes: Option<u64>,
}

/// How close memory is to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below the warn level.
    Normal,
    /// At or above the warn level.
    Warn,
    /// At or above the act level.
    Act,
}

/// Which measure a percentage is of: usage against the limit, or the runtime's heap against
/// its own limit. The closer one to its limit decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Usage against the effective (cgroup, configured or RAM) limit.
    Limit,
    /// The runtime's heap against its heap limit (a V8 isolate dies there first).
    Heap,
}

/// What made the watchdog ask for evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Memory grew faster than the spike rate.
    Spike,
    /// A steady growth was projected to reach the limit.
    LeakTrend,
    /// The act level was reached (evidence before the restart).
    Act,
}

/// Which evidence to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A full heap snapshot: the best evidence, but writing one needs about the heap's size in
    /// free memory, so it is asked for only with that headroom.
    HeapSnapshot,
    /// A cheap profile (a sampling heap profile, a top-N allocation diff).
    Profile,
}

impl Level {
    /// The snake_case name used by bindings, vectors and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Warn => "warn",
            Level::Act => "act",
        }
    }
}

impl Basis {
    /// The snake_case name used by bindings, vectors and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Basis::Limit => "limit",
            Basis::Heap => "heap",
        }
    }
}

impl Trigger {
    /// The snake_case name used by bindings, vectors and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Spike => "spike",
            Trigger::LeakTrend => "leak_trend",
            Trigger::Act => "act",
        }
    }
}

impl EvidenceKind {
    /// The snake_case name used by bindings, vectors and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::HeapSnapshot => "heap_snapshot",
            EvidenceKind::Profile => "profile",
        }
    }
}

/// A fitted growth trend.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Trend {
    /// Growth of the measure (usage, or heap on the heap basis), bytes per second.
    pub bytes_per_second: f64,
    /// How well a straight line explains the samples (0 to 1).
    pub r2: f64,
    /// When the growth reaches the limit at this rate; `None` if it is not growing.
    #[serde(rename = "time_to_limit_ms", serialize_with = "opt_millis")]
    pub time_to_limit: Option<Duration>,
    /// Samples fitted.
    pub samples: u32,
}

/// Something the adapter must do or report.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WatchdogAction {
    /// Memory reached the warn level. (Python starts tracemalloc here, for a bounded time.)
    Warn {
        /// Percentage of the limit on `basis`.
        percent: f64,
        /// Which limit.
        basis: Basis,
    },
    /// Memory is back below the warn level.
    Recovered {
        /// Percentage of the limit on `basis`.
        percent: f64,
        /// Which limit.
        basis: Basis,
    },
    /// Memory grew faster than the spike rate between the last two samples.
    Spike {
        /// Growth, in percent of the limit per minute.
        percent_per_minute: f64,
        /// Which limit.
        basis: Basis,
    },
    /// A steady growth is projected to reach the limit within the trend horizon.
    LeakTrend {
        /// The fit.
        trend: Trend,
    },
    /// Memory reached the act level.
    Act {
        /// Percentage of the limit on `basis`.
        percent: f64,
        /// Which limit.
        basis: Basis,
    },
    /// Capture evidence now.
    Evidence {
        /// What to capture.
        evidence: EvidenceKind,
        /// Why.
        trigger: Trigger,
        /// Free memory: the limit minus usage.
        free_bytes: u64,
        /// Free memory a heap snapshot needs (the headroom factor times the heap in use).
        needed_bytes: u64,
    },
    /// Run the drain hooks for at most `drain_timeout`, then exit with `exit_code`.
    Restart {
        /// Longest the drain hooks may run.
        #[serde(rename = "drain_timeout_ms", serialize_with = "millis")]
        drain_timeout: Duration,
        /// The process's exit code.
        exit_code: i32,
    },
}

/// The outcome of one sample: where memory stands, what to do, when to look again.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Assessment {
    /// Where memory stands.
    pub level: Level,
    /// Percentage of the limit on `basis`, the closer of the two measures.
    pub percent: f64,
    /// Which measure `percent` is of.
    pub basis: Basis,
    /// Growth since the previous sample, percent of the limit per minute on `basis` (negative
    /// when shrinking); `None` on the first sample.
    pub growth_percent_per_minute: Option<f64>,
    /// The fitted trend, when there are enough samples over enough time.
    pub trend: Option<Trend>,
    /// When to take the next sample.
    #[serde(rename = "next_sample_ms", serialize_with = "millis")]
    pub next_sample_in: Duration,
    /// What to do, in order.
    pub actions: Vec<WatchdogAction>,
}

/// Counters since the watchdog started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WatchdogCounts {
    /// Samples observed.
    pub samples: u64,
    /// Warn actions.
    pub warnings: u64,
    /// Act actions.
    pub acts: u64,
    /// Spike actions.
    pub spikes: u64,
    /// Leak-trend actions.
    pub leak_trends: u64,
    /// Heap snapshots asked for.
    pub heap_snapshots: u64,
    /// Profiles asked for (no headroom for a snapshot).
    pub profiles: u64,
    /// Restarts asked for.
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy)]
struct Recorded {
    at: Timestamp,
    usage: u64,
    limit: u64,
    /// The heap in use and its limit, when the runtime has both.
    heap: Option<(u64, u64)>,
    /// The heap in use, even without a heap limit (Python's traced bytes).
    heap_used: Option<u64>,
}

impl Recorded {
    /// The measure on `basis` and its limit.
    fn on(&self, basis: Basis) -> Option<(u64, u64)> {
        match basis {
            Basis::Limit => Some((self.usage, self.limit)),
            Basis::Heap => self.heap,
        }
    }
}

/// The sans-IO watchdog: [`observe`](Self::observe) a sample, get an [`Assessment`].
#[derive(Debug, Clone)]
pub struct WatchdogCore {
    config: WatchdogConfig,
    /// Recent samples, oldest first, no older than the trend window (bounded).
    samples: VecDeque<Recorded>,
    level: Level,
    last_warn: Option<Timestamp>,
    last_act: Option<Timestamp>,
    last_spike: Option<Timestamp>,
    last_trend: Option<Timestamp>,
    last_evidence: Option<Timestamp>,
    restarting: bool,
    counts: WatchdogCounts,
}

impl WatchdogCore {
    /// A watchdog that has seen nothing yet.
    pub fn new(config: WatchdogConfig) -> Self {
        WatchdogCore {
            config,
            samples: VecDeque::new(),
            level: Level::Normal,
            last_warn: None,
            last_act: None,
            last_spike: None,
            last_trend: None,
            last_evidence: None,
            restarting: false,
            counts: WatchdogCounts::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WatchdogConfig {
        &self.config
    }

    /// Counters since the start.
    pub fn counts(&self) -> WatchdogCounts {
        self.counts
    }

    /// The level of the last sample.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Samples held for the trend fit (bounded by [`MAX_TREND_SAMPLES`]).
    pub fn samples_kept(&self) -> usize {
        self.samples.len()
    }

    fn cooled(&self, last: Option<Timestamp>, now: Timestamp) -> bool {
        last.is_none_or(|t| now.saturating_duration_since(t) >= self.config.cooldown)
    }

    /// Judges a sample taken at `now`.
    pub fn observe(&mut self, now: Timestamp, sample: MemorySample) -> Assessment {
        self.counts.samples += 1;
        let current = Recorded {
            at: now,
            usage: sample.usage_bytes,
            limit: sample.limit_bytes.max(1),
            heap: match (sample.heap_used_bytes, sample.heap_limit_bytes) {
                (Some(used), Some(limit)) if limit > 0 => Some((used, limit)),
                _ => None,
            },
            heap_used: sample.heap_used_bytes,
        };
        let (percent, basis) = closest(&current);
        let level = if percent >= self.config.act_percent {
            Level::Act
        } else if percent >= self.config.warn_percent {
            Level::Warn
        } else {
            Level::Normal
        };
        let previous = self.samples.back().copied();
        let growth = previous.and_then(|p| growth_percent_per_minute(&p, &current, basis));
        self.record(current);
        let trend = self.fit(basis, &current);

        let mut actions = Vec::new();
        if level >= Level::Warn && self.cooled(self.last_warn, now) {
            self.last_warn = Some(now);
            self.counts.warnings += 1;
            actions.push(WatchdogAction::Warn { percent, basis });
        }
        if level == Level::Normal && self.level >= Level::Warn {
            actions.push(WatchdogAction::Recovered { percent, basis });
        }
        let spiking = growth.is_some_and(|g| g >= self.config.spike_percent_per_minute);
        let mut trigger = None;
        if let Some(g) = growth.filter(|_| spiking)
            && self.cooled(self.last_spike, now)
        {
            self.last_spike = Some(now);
            self.counts.spikes += 1;
            actions.push(WatchdogAction::Spike {
                percent_per_minute: g,
                basis,
            });
            trigger = Some(Trigger::Spike);
        }
        if let Some(t) = trend
            && t.time_to_limit
                .is_some_and(|ttl| ttl <= self.config.trend_horizon && t.r2 >= TREND_MIN_R2)
            && self.cooled(self.last_trend, now)
        {
            self.last_trend = Some(now);
            self.counts.leak_trends += 1;
            actions.push(WatchdogAction::LeakTrend { trend: t });
            trigger = trigger.or(Some(Trigger::LeakTrend));
        }
        let act = level == Level::Act
            && !self.restarting
            && match self.config.act_mode {
                ActMode::Restart => true,
                ActMode::EventOnly => self.cooled(self.last_act, now),
            };
        if act {
            self.last_act = Some(now);
            self.counts.acts += 1;
            actions.push(WatchdogAction::Act { percent, basis });
            trigger = Some(Trigger::Act);
        }
        // Evidence at most once per cooldown, except before a restart: that is the last
        // chance to learn what filled the memory.
        if let Some(trigger) = trigger
            && (trigger == Trigger::Act || self.cooled(self.last_evidence, now))
        {
            self.last_evidence = Some(now);
            actions.push(self.evidence(&current, trigger));
        }
        if act && self.config.act_mode == ActMode::Restart {
            self.restarting = true;
            self.counts.restarts += 1;
            actions.push(WatchdogAction::Restart {
                drain_timeout: self.config.drain_timeout,
                exit_code: self.config.exit_code,
            });
        }
        self.level = level;
        Assessment {
            level,
            percent,
            basis,
            growth_percent_per_minute: growth,
            trend,
            next_sample_in: self.next_interval(level, spiking, &current, previous.as_ref(), basis),
            actions,
        }
    }

    fn record(&mut self, current: Recorded) {
        let window = self.config.trend_window;
        // Keep the previous sample whatever its age (growth needs it), and nothing older than
        // the trend window beyond it.
        while self.samples.len() >= 2
            && self
                .samples
                .front()
                .is_some_and(|s| current.at.saturating_duration_since(s.at) > window)
        {
            self.samples.pop_front();
        }
        if self.samples.len() >= MAX_TREND_SAMPLES as usize {
            self.samples.pop_front();
        }
        self.samples.push_back(current);
    }

    /// Least squares over the samples in the trend window that carry the measure, once there
    /// are enough of them spanning at least half the window (a burst of fast samples is not a
    /// trend).
    fn fit(&self, basis: Basis, current: &Recorded) -> Option<Trend> {
        let window = self.config.trend_window;
        let points: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| current.at.saturating_duration_since(s.at) <= window)
            .filter_map(|s| {
                let (v, _) = s.on(basis)?;
                Some((s.at.as_nanos() as f64 / 1e9, v as f64))
            })
            .collect();
        let n = points.len();
        if n < self.config.trend_min_samples as usize {
            return None;
        }
        let first = points.first()?.0;
        let last = points.last()?.0;
        if last - first < window.as_secs_f64() / 2.0 {
            return None;
        }
        let nf = n as f64;
        let mean_t = points.iter().map(|p| p.0).sum::<f64>() / nf;
        let mean_v = points.iter().map(|p| p.1).sum::<f64>() / nf;
        let (mut stt, mut svv, mut stv) = (0.0, 0.0, 0.0);
        for (t, v) in &points {
            let (dt, dv) = (t - mean_t, v - mean_v);
            stt += dt * dt;
            svv += dv * dv;
            stv += dt * dv;
        }
        if stt == 0.0 {
            return None;
        }
        let slope = stv / stt;
        let r2 = if svv == 0.0 {
            0.0
        } else {
            (stv * stv) / (stt * svv)
        };
        let (value, limit) = current.on(basis)?;
        let time_to_limit = (slope > 0.0).then(|| {
            let left = limit.saturating_sub(value) as f64;
            Duration::try_from_secs_f64(left / slope).unwrap_or(Duration::MAX)
        });
        Some(Trend {
            bytes_per_second: slope,
            r2,
            time_to_limit,
            samples: n as u32,
        })
    }

    fn evidence(&mut self, current: &Recorded, trigger: Trigger) -> WatchdogAction {
        let free = current.limit.saturating_sub(current.usage);
        // Without a runtime heap (Rust), what a dump must copy is the process itself.
        let heap = current.heap_used.unwrap_or(current.usage);
        let needed = (heap as f64 * self.config.snapshot_headroom_factor).min(u64::MAX as f64);
        let needed = needed as u64;
        let evidence = if free > needed {
            self.counts.heap_snapshots += 1;
            EvidenceKind::HeapSnapshot
        } else {
            self.counts.profiles += 1;
            EvidenceKind::Profile
        };
        WatchdogAction::Evidence {
            evidence,
            trigger,
            free_bytes: free,
            needed_bytes: needed,
        }
    }

    /// The normal interval; the alert interval at or above warn and during a spike; and
    /// shorter still when the growth since the last sample would reach the act level sooner:
    /// then the next sample comes at half that time, so a fast leak is seen at least twice
    /// before it can pass the act level, never jumping from below warn to the kill unseen.
    fn next_interval(
        &self,
        level: Level,
        spiking: bool,
        current: &Recorded,
        previous: Option<&Recorded>,
        basis: Basis,
    ) -> Duration {
        let c = &self.config;
        let mut next = if level >= Level::Warn || spiking {
            c.alert_interval
        } else {
            c.interval
        };
        if level < Level::Act
            && let Some(p) = previous
            && let (Some((v0, _)), Some((v1, limit))) = (p.on(basis), current.on(basis))
            && v1 > v0
        {
            let elapsed = current.at.saturating_duration_since(p.at).as_secs_f64();
            if elapsed > 0.0 {
                let rate = (v1 - v0) as f64 / elapsed;
                let act_at = limit as f64 * c.act_percent / 100.0;
                let to_act = ((act_at - v1 as f64) / rate / 2.0).max(0.0);
                let floor = c.alert_interval.min(Duration::from_secs(1));
                let soon = Duration::try_from_secs_f64(to_act).unwrap_or(Duration::MAX);
                next = next.min(soon.max(floor));
            }
        }
        next
    }
}

/// The percentage of the measure closest to its limit, and which measure it is.
fn closest(s: &Recorded) -> (f64, Basis) {
    let of_limit = s.usage as f64 * 100.0 / s.limit as f64;
    match s.heap {
        Some((used, limit)) => {
            let of_heap = used as f64 * 100.0 / limit as f64;
            if of_heap > of_limit {
                (of_heap, Basis::Heap)
            } else {
                (of_limit, Basis::Limit)
            }
        }
        None => (of_limit, Basis::Limit),
    }
}

fn growth_percent_per_minute(prev: &Recorded, cur: &Recorded, basis: Basis) -> Option<f64> {
    let (v0, _) = prev.on(basis)?;
    let (v1, limit) = cur.on(basis)?;
    let nanos = duration_nanos(cur.at.saturating_duration_since(prev.at));
    if nanos == 0 {
        return None;
    }
    let minutes = nanos as f64 / 60e9;
    Some((v1 as f64 - v0 as f64) * 100.0 / limit as f64 / minutes)
}

// Durations serialize as milliseconds (`…_ms`), the unit of the vectors and of JSON reports.
fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}
