//! Watchdog configuration: the defaults come from the protocol written after the Node.js leak
//! incident (sample every 5 minutes, restart at 80 % of the limit), and every field is validated.

use std::time::Duration;

use crate::breaker::{duration_between_0_and_24h, format_duration};
use crate::error::{ConfigError, FieldKind};

/// What the watchdog does when usage reaches the act level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActMode {
    /// Capture evidence, run the drain hooks within `drain_timeout`, then exit with
    /// `exit_code` so the supervisor (Kubernetes, systemd, PM2) starts a fresh process.
    Restart,
    /// Capture evidence and emit the event; the application decides what to do.
    EventOnly,
}

impl ActMode {
    /// The snake_case name used by bindings and conformance vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            ActMode::Restart => "restart",
            ActMode::EventOnly => "event_only",
        }
    }
}

/// Exit code of a watchdog restart: `EX_TEMPFAIL` from sysexits.h, "a temporary failure; the
/// user is invited to retry". Any supervisor restarts on a non-zero exit; this one tells a
/// human reading the logs that the process left on purpose, not by a crash (1) or the kernel's
/// OOM killer (137).
pub const RESTART_EXIT_CODE: i32 = 75;

/// Longest interval between samples.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Shortest interval between samples.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A validated watchdog configuration. Build one with [`WatchdogConfig::builder`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WatchdogConfig {
    pub(crate) interval: Duration,
    pub(crate) alert_interval: Duration,
    pub(crate) warn_percent: f64,
    pub(crate) act_percent: f64,
    pub(crate) spike_percent_per_minute: f64,
    pub(crate) trend_window: Duration,
    pub(crate) trend_min_samples: u32,
    pub(crate) trend_horizon: Duration,
    pub(crate) cooldown: Duration,
    pub(crate) snapshot_headroom_factor: f64,
    pub(crate) act_mode: ActMode,
    pub(crate) drain_timeout: Duration,
    pub(crate) exit_code: i32,
    pub(crate) max_dump_files: u32,
    pub(crate) max_dump_bytes: u64,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            interval: Duration::from_secs(300),
            alert_interval: Duration::from_secs(10),
            warn_percent: 70.0,
            act_percent: 80.0,
            spike_percent_per_minute: 10.0,
            trend_window: Duration::from_secs(3_600),
            trend_min_samples: 6,
            trend_horizon: Duration::from_secs(86_400),
            cooldown: Duration::from_secs(1_800),
            snapshot_headroom_factor: 2.0,
            act_mode: ActMode::Restart,
            drain_timeout: Duration::from_secs(10),
            exit_code: RESTART_EXIT_CODE,
            max_dump_files: 3,
            max_dump_bytes: 8 << 30,
        }
    }
}

impl WatchdogConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> WatchdogConfigBuilder {
        WatchdogConfigBuilder {
            config: WatchdogConfig::default(),
            alert_interval_set: false,
        }
    }

    /// Time between samples while all is well (default 5 minutes, the incident protocol's).
    pub fn interval(&self) -> Duration {
        self.interval
    }
    /// Time between samples at or above the warn level, or during a spike (default 10 s, or
    /// `interval` when that is shorter).
    pub fn alert_interval(&self) -> Duration {
        self.alert_interval
    }
    /// Percentage of the limit at which the watchdog warns (default 70).
    pub fn warn_percent(&self) -> f64 {
        self.warn_percent
    }
    /// Percentage of the limit at which it acts (default 80, the mandated restart point).
    pub fn act_percent(&self) -> f64 {
        self.act_percent
    }
    /// Growth, in percent of the limit per minute, that counts as a spike (default 10).
    pub fn spike_percent_per_minute(&self) -> f64 {
        self.spike_percent_per_minute
    }
    /// How far back the leak trend is fitted (default 1 hour).
    pub fn trend_window(&self) -> Duration {
        self.trend_window
    }
    /// Samples needed in the window before a trend is fitted (default 6).
    pub fn trend_min_samples(&self) -> u32 {
        self.trend_min_samples
    }
    /// A steady growth projected to reach the limit within this long is reported as a leak
    /// (default 24 hours).
    pub fn trend_horizon(&self) -> Duration {
        self.trend_horizon
    }
    /// After a condition fires, the same condition stays quiet this long (default 30 minutes).
    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }
    /// A full heap snapshot is asked for only when the free memory is more than this many
    /// times the heap in use (default 2: writing a snapshot needs about the heap's size again).
    pub fn snapshot_headroom_factor(&self) -> f64 {
        self.snapshot_headroom_factor
    }
    /// Restart, or only report, at the act level.
    pub fn act_mode(&self) -> ActMode {
        self.act_mode
    }
    /// Longest the drain hooks may run before the restart exits anyway (default 10 s).
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }
    /// Exit code of a restart (default [`RESTART_EXIT_CODE`], 75).
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }
    /// Most evidence files kept in the dump directory; the oldest go first (default 3).
    pub fn max_dump_files(&self) -> u32 {
        self.max_dump_files
    }
    /// Most bytes of evidence kept in the dump directory (default 8 GiB).
    pub fn max_dump_bytes(&self) -> u64 {
        self.max_dump_bytes
    }
}

/// Builds a [`WatchdogConfig`]; [`build`](Self::build) validates every field.
#[derive(Debug, Clone)]
#[must_use]
pub struct WatchdogConfigBuilder {
    config: WatchdogConfig,
    /// Whether `alert_interval` was given: the default follows a shorter `interval` down, a
    /// value given is checked against it.
    alert_interval_set: bool,
}

impl WatchdogConfigBuilder {
    /// See [`WatchdogConfig::interval`].
    pub fn interval(mut self, d: Duration) -> Self {
        self.config.interval = d;
        self
    }
    /// See [`WatchdogConfig::alert_interval`].
    pub fn alert_interval(mut self, d: Duration) -> Self {
        self.config.alert_interval = d;
        self.alert_interval_set = true;
        self
    }
    /// See [`WatchdogConfig::warn_percent`].
    pub fn warn_percent(mut self, p: f64) -> Self {
        self.config.warn_percent = p;
        self
    }
    /// See [`WatchdogConfig::act_percent`].
    pub fn act_percent(mut self, p: f64) -> Self {
        self.config.act_percent = p;
        self
    }
    /// See [`WatchdogConfig::spike_percent_per_minute`].
    pub fn spike_percent_per_minute(mut self, p: f64) -> Self {
        self.config.spike_percent_per_minute = p;
        self
    }
    /// See [`WatchdogConfig::trend_window`].
    pub fn trend_window(mut self, d: Duration) -> Self {
        self.config.trend_window = d;
        self
    }
    /// See [`WatchdogConfig::trend_min_samples`].
    pub fn trend_min_samples(mut self, n: u32) -> Self {
        self.config.trend_min_samples = n;
        self
    }
    /// See [`WatchdogConfig::trend_horizon`].
    pub fn trend_horizon(mut self, d: Duration) -> Self {
        self.config.trend_horizon = d;
        self
    }
    /// See [`WatchdogConfig::cooldown`].
    pub fn cooldown(mut self, d: Duration) -> Self {
        self.config.cooldown = d;
        self
    }
    /// See [`WatchdogConfig::snapshot_headroom_factor`].
    pub fn snapshot_headroom_factor(mut self, f: f64) -> Self {
        self.config.snapshot_headroom_factor = f;
        self
    }
    /// See [`WatchdogConfig::act_mode`].
    pub fn act_mode(mut self, m: ActMode) -> Self {
        self.config.act_mode = m;
        self
    }
    /// See [`WatchdogConfig::drain_timeout`].
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.config.drain_timeout = d;
        self
    }
    /// See [`WatchdogConfig::exit_code`].
    pub fn exit_code(mut self, code: i32) -> Self {
        self.config.exit_code = code;
        self
    }
    /// See [`WatchdogConfig::max_dump_files`].
    pub fn max_dump_files(mut self, n: u32) -> Self {
        self.config.max_dump_files = n;
        self
    }
    /// See [`WatchdogConfig::max_dump_bytes`].
    pub fn max_dump_bytes(mut self, n: u64) -> Self {
        self.config.max_dump_bytes = n;
        self
    }

    /// Validates every field; the error names the field and its range.
    pub fn build(self) -> Result<WatchdogConfig, ConfigError> {
        let mut c = self.config;
        check_interval("interval", c.interval)?;
        if !self.alert_interval_set {
            // `interval: 1 s` alone must not be an error about a field nobody set.
            c.alert_interval = c.alert_interval.min(c.interval);
        }
        check_interval("alert_interval", c.alert_interval)?;
        if c.alert_interval > c.interval {
            return Err(ConfigError::new(
                "alert_interval",
                FieldKind::Duration,
                range_of("alert_interval"),
                format_duration(c.alert_interval),
            ));
        }
        // `!(x > a && x < b)` also rejects NaN.
        if !(c.warn_percent > 0.0 && c.warn_percent < 100.0) {
            return Err(ConfigError::new(
                "warn_percent",
                FieldKind::Number,
                range_of("warn_percent"),
                c.warn_percent,
            ));
        }
        if !(c.act_percent > c.warn_percent && c.act_percent <= 100.0) {
            return Err(ConfigError::new(
                "act_percent",
                FieldKind::Number,
                range_of("act_percent"),
                c.act_percent,
            ));
        }
        if !(c.spike_percent_per_minute > 0.0 && c.spike_percent_per_minute <= 100.0) {
            return Err(ConfigError::new(
                "spike_percent_per_minute",
                FieldKind::Number,
                range_of("spike_percent_per_minute"),
                c.spike_percent_per_minute,
            ));
        }
        check_interval("trend_window", c.trend_window)?;
        if !(3..=MAX_TREND_SAMPLES).contains(&c.trend_min_samples) {
            return Err(ConfigError::new(
                "trend_min_samples",
                FieldKind::Number,
                range_of("trend_min_samples"),
                c.trend_min_samples,
            ));
        }
        check_interval("trend_horizon", c.trend_horizon)?;
        if c.cooldown > MAX_INTERVAL {
            return Err(ConfigError::new(
                "cooldown",
                FieldKind::Duration,
                range_of("cooldown"),
                format_duration(c.cooldown),
            ));
        }
        if !(c.snapshot_headroom_factor >= 1.0 && c.snapshot_headroom_factor <= 100.0) {
            return Err(ConfigError::new(
                "snapshot_headroom_factor",
                FieldKind::Number,
                range_of("snapshot_headroom_factor"),
                c.snapshot_headroom_factor,
            ));
        }
        if c.drain_timeout > Duration::from_secs(3_600) {
            return Err(ConfigError::new(
                "drain_timeout",
                FieldKind::Duration,
                range_of("drain_timeout"),
                format_duration(c.drain_timeout),
            ));
        }
        if !(1..=255).contains(&c.exit_code) {
            return Err(ConfigError::new(
                "exit_code",
                FieldKind::Number,
                range_of("exit_code"),
                c.exit_code,
            ));
        }
        if !(1..=MAX_DUMP_FILES).contains(&c.max_dump_files) {
            return Err(ConfigError::new(
                "max_dump_files",
                FieldKind::Number,
                range_of("max_dump_files"),
                c.max_dump_files,
            ));
        }
        if c.max_dump_bytes < MIN_DUMP_BYTES {
            return Err(ConfigError::new(
                "max_dump_bytes",
                FieldKind::Number,
                range_of("max_dump_bytes"),
                c.max_dump_bytes,
            ));
        }
        Ok(c)
    }
}

/// Most samples a trend is fitted over; the watchdog keeps no more than this.
pub const MAX_TREND_SAMPLES: u32 = 1_000;
/// Most evidence files a dump directory may be configured to keep.
pub const MAX_DUMP_FILES: u32 = 1_000;
/// The smallest evidence budget: below it not even a small profile fits.
pub const MIN_DUMP_BYTES: u64 = 1 << 20;

fn check_interval(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(ConfigError::new(
            field,
            FieldKind::Duration,
            range_of(field),
            format_duration(d),
        ));
    }
    Ok(())
}

/// Each field's range, in the words its error messages use (the same from a binding's
/// conversion and from [`WatchdogConfigBuilder::build`]).
fn range_of(field: &str) -> &'static str {
    match field {
        "interval" | "trend_window" | "trend_horizon" => "a duration between 10 ms and 24 h",
        "alert_interval" => "a duration between 10 ms and interval",
        "cooldown" => "a duration between 0 and 24 h",
        "drain_timeout" => "a duration between 0 and 1 h",
        "warn_percent" => "a percentage in (0, 100)",
        "act_percent" => "a percentage in (warn_percent, 100]",
        "spike_percent_per_minute" => "a percentage in (0, 100]",
        "trend_min_samples" => "an integer in [3, 1000]",
        "snapshot_headroom_factor" => "a number in [1, 100]",
        "exit_code" => "an integer in [1, 255]",
        "max_dump_files" => "an integer in [1, 1000]",
        "max_dump_bytes" => "an integer of at least 1048576 (1 MiB)",
        _ => "a non-negative integer of bytes below 2^53",
    }
}

/// Converts a binding's milliseconds into the duration of watchdog field `field`, rejecting
/// NaN, infinities, negatives and values past 24 h with the field's name and range (the range
/// proper is checked by [`WatchdogConfigBuilder::build`]).
pub fn watchdog_duration_from_millis(
    field: &'static str,
    millis: f64,
) -> Result<Duration, ConfigError> {
    duration_between_0_and_24h(field, millis / 1000.0, millis, "ms", range_of(field))
}

/// [`watchdog_duration_from_millis`] for a binding that speaks seconds (Python): the error
/// shows the value as given, in seconds.
pub fn watchdog_duration_from_secs(
    field: &'static str,
    secs: f64,
) -> Result<Duration, ConfigError> {
    duration_between_0_and_24h(field, secs, secs, "s", range_of(field))
}

/// Converts a binding's number into a whole count for watchdog field `field` (a count of
/// samples or files, an exit code, a byte size), rejecting NaN, fractions, negatives and values
/// past 2^53 with the field's name and range.
pub fn watchdog_integer_from_f64(field: &'static str, v: f64) -> Result<u64, ConfigError> {
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if !(v.is_finite() && v.fract() == 0.0 && (0.0..=MAX_EXACT).contains(&v)) {
        return Err(ConfigError::new(
            field,
            FieldKind::Number,
            range_of(field),
            v,
        ));
    }
    // Integral and in [0, 2^53], so the cast is exact.
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_incident_protocol() {
        let c = WatchdogConfig::builder()
            .build()
            .expect("defaults are valid");
        assert_eq!(c.interval(), Duration::from_secs(300));
        assert_eq!((c.warn_percent(), c.act_percent()), (70.0, 80.0));
        assert_eq!(c.exit_code(), 75);
    }

    #[test]
    fn the_default_alert_interval_follows_a_shorter_interval() {
        let c = WatchdogConfig::builder()
            .interval(Duration::from_secs(1))
            .build()
            .expect("valid");
        assert_eq!(c.alert_interval(), Duration::from_secs(1));
        let e = WatchdogConfig::builder()
            .interval(Duration::from_secs(1))
            .alert_interval(Duration::from_secs(2))
            .build()
            .expect_err("a given alert interval above the interval is refused");
        assert_eq!(e.field, "alert_interval");
    }

    #[test]
    fn every_field_names_itself_and_its_range() {
        let cases: Vec<(WatchdogConfigBuilder, &str)> = vec![
            (
                WatchdogConfig::builder().interval(Duration::ZERO),
                "interval",
            ),
            (
                WatchdogConfig::builder().alert_interval(Duration::from_secs(600)),
                "alert_interval",
            ),
            (
                WatchdogConfig::builder().warn_percent(f64::NAN),
                "warn_percent",
            ),
            (WatchdogConfig::builder().act_percent(60.0), "act_percent"),
            (
                WatchdogConfig::builder().spike_percent_per_minute(0.0),
                "spike_percent_per_minute",
            ),
            (
                WatchdogConfig::builder().trend_min_samples(2),
                "trend_min_samples",
            ),
            (
                WatchdogConfig::builder().snapshot_headroom_factor(0.5),
                "snapshot_headroom_factor",
            ),
            (WatchdogConfig::builder().exit_code(0), "exit_code"),
            (
                WatchdogConfig::builder().max_dump_files(0),
                "max_dump_files",
            ),
            (
                WatchdogConfig::builder().max_dump_bytes(10),
                "max_dump_bytes",
            ),
        ];
        for (builder, field) in cases {
            let e = builder.build().expect_err(field);
            assert_eq!(e.field, field);
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }
}
