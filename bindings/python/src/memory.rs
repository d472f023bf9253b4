//! `seawall._native.WatchdogCore` and `read_memory`: the core's memory watchdog policy and its
//! Linux probe, for `seawall.MemoryWatchdog` (`seawall/_watchdog.py`).
//!
//! Everything that decides (levels, spikes, trends, which evidence, when to restart, when to
//! look again, which dump files to delete) is the core's [`WatchdogCore`] and
//! [`plan_dump_rotation`]; the probe's rules are [`MemoryProbe`]'s. This module only converts:
//! keyword arguments into a [`WatchdogConfig`] through the core's converters (errors name the
//! keyword), Python numbers into samples, and the core's answers into plain dicts, lists and
//! strings that the facade turns into its dataclasses. It starts no thread and never calls into
//! Python from elsewhere: the facade's daemon thread or asyncio task does the waiting.
//!
//! Durations cross as seconds (floats), like the rest of the Python API.

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString};
use seawall_core::memory::{
    ActMode, Assessment, DumpFile, MemoryProbe, MemoryReading, MemorySample, RESTART_EXIT_CODE,
    RootedFs, Trend, WatchdogAction, WatchdogConfig, WatchdogConfigBuilder, WatchdogCore,
    plan_dump_rotation, watchdog_duration_from_secs, watchdog_integer_from_f64,
};

use crate::convert::{self, optional, repr, timestamp};
use crate::error::{WATCHDOG_FIELDS as F, config_error, type_error};

const ACT_MODES: &[&str] = &["restart", "event_only"];
const ACT_MODES_EXPECTED: &str = "one of 'restart', 'event_only'";

/// Every keyword `WatchdogCore(...)` accepts, in the order of the facade's signature.
const KEYWORDS: &[&str] = &[
    "interval",
    "alert_interval",
    "warn_percent",
    "act_percent",
    "spike_percent_per_minute",
    "trend_window",
    "trend_min_samples",
    "trend_horizon",
    "cooldown",
    "snapshot_headroom_factor",
    "act_mode",
    "drain_timeout",
    "exit_code",
    "max_dump_files",
    "max_dump_bytes",
];

/// Seconds as a watchdog duration, through the core's conversion (NaN, infinities, negatives,
/// more than 24 h are refused naming the keyword); the range proper is checked by `build`.
fn duration(py: Python<'_>, field: &'static str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs = convert::number(F, field, v)?;
    watchdog_duration_from_secs(field, secs).map_err(|e| config_error(py, F, &e))
}

/// A whole number (count, exit code, bytes) through the core's conversion.
fn integer(py: Python<'_>, field: &'static str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    let n = convert::number(F, field, v)?;
    watchdog_integer_from_f64(field, n).map_err(|e| config_error(py, F, &e))
}

/// A count that must fit a `u32`; anything larger is out of every such field's range, so it is
/// clamped and the builder refuses it with the field's own message.
fn integer_u32(py: Python<'_>, field: &'static str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    Ok(u32::try_from(integer(py, field, v)?).unwrap_or(u32::MAX))
}

/// Applies one keyword to the builder.
fn apply(
    py: Python<'_>,
    b: WatchdogConfigBuilder,
    key: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<WatchdogConfigBuilder> {
    Ok(match key {
        "interval" => b.interval(duration(py, key, v)?),
        "alert_interval" => b.alert_interval(duration(py, key, v)?),
        "warn_percent" => b.warn_percent(convert::number(F, key, v)?),
        "act_percent" => b.act_percent(convert::number(F, key, v)?),
        "spike_percent_per_minute" => b.spike_percent_per_minute(convert::number(F, key, v)?),
        "trend_window" => b.trend_window(duration(py, key, v)?),
        "trend_min_samples" => b.trend_min_samples(integer_u32(py, key, v)?),
        "trend_horizon" => b.trend_horizon(duration(py, key, v)?),
        "cooldown" => b.cooldown(duration(py, key, v)?),
        "snapshot_headroom_factor" => b.snapshot_headroom_factor(convert::number(F, key, v)?),
        "act_mode" => match convert::choice(py, F, key, v, ACT_MODES, ACT_MODES_EXPECTED)? {
            "event_only" => b.act_mode(ActMode::EventOnly),
            _ => b.act_mode(ActMode::Restart),
        },
        "drain_timeout" => b.drain_timeout(duration(py, key, v)?),
        "exit_code" => {
            // Above i32::MAX is out of the exit code's range anyway: clamp, let `build` refuse.
            b.exit_code(i32::try_from(integer(py, key, v)?).unwrap_or(i32::MAX))
        }
        "max_dump_files" => b.max_dump_files(integer_u32(py, key, v)?),
        // Only the names in KEYWORDS reach here, and this is the last of them.
        _ => b.max_dump_bytes(integer(py, key, v)?),
    })
}

/// Builds the configuration from keyword arguments; an absent keyword takes the core's default.
fn config_from_kwargs(
    py: Python<'_>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<WatchdogConfig> {
    let mut b = WatchdogConfig::builder();
    if let Some(kwargs) = kwargs {
        for (k, v) in kwargs.iter() {
            let name = k.cast::<PyString>()?.to_cow()?.into_owned();
            let Some(key) = KEYWORDS.iter().copied().find(|n| *n == name) else {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument {name:?}"
                )));
            };
            b = apply(py, b, key, &v)?;
        }
    }
    b.build().map_err(|e| config_error(py, F, &e))
}

/// A byte count given by the caller (a sample's figures, a dump file's size): a non-negative
/// `int`; `TypeError` or `ValueError` naming the argument otherwise.
fn byte_count(name: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(type_error(F, name, "an int", v));
    }
    v.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative integer of bytes below 2**64, got {}",
            repr(v)
        ))
    })
}

fn optional_bytes(name: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    v.and_then(optional)
        .map(|v| byte_count(name, v))
        .transpose()
}

fn trend_dict<'py>(py: Python<'py>, t: &Trend) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bytes_per_second", t.bytes_per_second)?;
    d.set_item("r2", t.r2)?;
    d.set_item("time_to_limit", t.time_to_limit.map(|d| d.as_secs_f64()))?;
    d.set_item("samples", t.samples)?;
    Ok(d)
}

fn action_dict<'py>(py: Python<'py>, a: &WatchdogAction) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match a {
        WatchdogAction::Warn { percent, basis } => {
            d.set_item("kind", "warn")?;
            d.set_item("percent", percent)?;
            d.set_item("basis", basis.as_str())?;
        }
        WatchdogAction::Recovered { percent, basis } => {
            d.set_item("kind", "recovered")?;
            d.set_item("percent", percent)?;
            d.set_item("basis", basis.as_str())?;
        }
        WatchdogAction::Spike {
            percent_per_minute,
            basis,
        } => {
            d.set_item("kind", "spike")?;
            d.set_item("percent_per_minute", percent_per_minute)?;
            d.set_item("basis", basis.as_str())?;
        }
        WatchdogAction::LeakTrend { trend } => {
            d.set_item("kind", "leak_trend")?;
            d.set_item("trend", trend_dict(py, trend)?)?;
        }
        WatchdogAction::Act { percent, basis } => {
            d.set_item("kind", "act")?;
            d.set_item("percent", percent)?;
            d.set_item("basis", basis.as_str())?;
        }
        WatchdogAction::Evidence {
            evidence,
            trigger,
            free_bytes,
            needed_bytes,
        } => {
            d.set_item("kind", "evidence")?;
            d.set_item("evidence", evidence.as_str())?;
            d.set_item("trigger", trigger.as_str())?;
            d.set_item("free_bytes", free_bytes)?;
            d.set_item("needed_bytes", needed_bytes)?;
        }
        WatchdogAction::Restart {
            drain_timeout,
            exit_code,
        } => {
            d.set_item("kind", "restart")?;
            d.set_item("drain_timeout", drain_timeout.as_secs_f64())?;
            d.set_item("exit_code", exit_code)?;
        }
    }
    Ok(d)
}

fn assessment_dict<'py>(py: Python<'py>, a: &Assessment) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("level", a.level.as_str())?;
    d.set_item("percent", a.percent)?;
    d.set_item("basis", a.basis.as_str())?;
    d.set_item("growth_percent_per_minute", a.growth_percent_per_minute)?;
    d.set_item(
        "trend",
        a.trend.as_ref().map(|t| trend_dict(py, t)).transpose()?,
    )?;
    d.set_item("next_sample", a.next_sample_in.as_secs_f64())?;
    let actions = PyList::empty(py);
    for action in &a.actions {
        actions.append(action_dict(py, action)?)?;
    }
    d.set_item("actions", actions)?;
    Ok(d)
}

fn config_dict<'py>(py: Python<'py>, c: &WatchdogConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("interval", c.interval().as_secs_f64())?;
    d.set_item("alert_interval", c.alert_interval().as_secs_f64())?;
    d.set_item("warn_percent", c.warn_percent())?;
    d.set_item("act_percent", c.act_percent())?;
    d.set_item("spike_percent_per_minute", c.spike_percent_per_minute())?;
    d.set_item("trend_window", c.trend_window().as_secs_f64())?;
    d.set_item("trend_min_samples", c.trend_min_samples())?;
    d.set_item("trend_horizon", c.trend_horizon().as_secs_f64())?;
    d.set_item("cooldown", c.cooldown().as_secs_f64())?;
    d.set_item("snapshot_headroom_factor", c.snapshot_headroom_factor())?;
    d.set_item("act_mode", c.act_mode().as_str())?;
    d.set_item("drain_timeout", c.drain_timeout().as_secs_f64())?;
    d.set_item("exit_code", c.exit_code())?;
    d.set_item("max_dump_files", c.max_dump_files())?;
    d.set_item("max_dump_bytes", c.max_dump_bytes())?;
    Ok(d)
}

/// The core's defaults, keyed by keyword, durations in seconds: the facade's signature is held to
/// them by a test.
#[pyfunction]
pub fn watchdog_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = config_dict(py, &WatchdogConfig::default())?;
    d.set_item("restart_exit_code", RESTART_EXIT_CODE)?;
    d.set_item("dump_prefix", seawall_core::memory::DUMP_PREFIX)?;
    Ok(d)
}

/// The memory watchdog's policy. Private: use `seawall.MemoryWatchdog` or
/// `seawall.WatchdogPolicy`.
#[pyclass(frozen, module = "seawall._native", name = "WatchdogCore")]
pub struct NativeWatchdog {
    core: Mutex<WatchdogCore>,
}

#[pymethods]
impl NativeWatchdog {
    /// Validates the keywords (see the module's `KEYWORDS`; durations in seconds) into the core's
    /// configuration. `TypeError` for a value of the wrong type or an unknown keyword,
    /// `seawall.InvalidConfigError` (a `ValueError`) for one out of range, both naming the keyword.
    #[new]
    #[pyo3(signature = (**config))]
    fn new(py: Python<'_>, config: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Ok(NativeWatchdog {
            core: Mutex::new(WatchdogCore::new(config_from_kwargs(py, config)?)),
        })
    }

    /// Judges one sample taken at `now` (seconds on the caller's monotonic clock) and returns the
    /// assessment as a dict: `level`, `percent`, `basis`, `growth_percent_per_minute`, `trend`
    /// (a dict or `None`), `next_sample` (seconds) and `actions` (dicts with a `kind`).
    #[pyo3(signature = (now, usage, limit, heap_used=None, heap_limit=None))]
    fn observe<'py>(
        &self,
        py: Python<'py>,
        now: f64,
        usage: &Bound<'py, PyAny>,
        limit: &Bound<'py, PyAny>,
        heap_used: Option<&Bound<'py, PyAny>>,
        heap_limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = timestamp(now)?;
        let sample = MemorySample {
            usage_bytes: byte_count("usage", usage)?,
            limit_bytes: byte_count("limit", limit)?,
            heap_used_bytes: optional_bytes("heap_used", heap_used)?,
            heap_limit_bytes: optional_bytes("heap_limit", heap_limit)?,
        };
        // The lock is released before any Python object is built.
        let assessment = self.core.lock().observe(now, sample);
        assessment_dict(py, &assessment)
    }

    /// The counters since the start: `samples`, `warnings`, `acts`, `spikes`, `leak_trends`,
    /// `heap_snapshots`, `profiles`, `restarts`.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.core.lock().counts();
        let d = PyDict::new(py);
        d.set_item("samples", c.samples)?;
        d.set_item("warnings", c.warnings)?;
        d.set_item("acts", c.acts)?;
        d.set_item("spikes", c.spikes)?;
        d.set_item("leak_trends", c.leak_trends)?;
        d.set_item("heap_snapshots", c.heap_snapshots)?;
        d.set_item("profiles", c.profiles)?;
        d.set_item("restarts", c.restarts)?;
        Ok(d)
    }

    /// The validated configuration, keyed by keyword, durations in seconds.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.core.lock().config().clone();
        config_dict(py, &c)
    }

    /// Which evidence files to delete before writing one of about `incoming_bytes`:
    /// `existing` is an iterable of `(name, bytes, created)` (any `created` unit that orders the
    /// files); returns `(names_to_delete, fits)`, oldest first. Only names starting with
    /// `seawall-memory-` are considered.
    fn plan_dump_rotation(
        &self,
        existing: &Bound<'_, PyAny>,
        incoming_bytes: &Bound<'_, PyAny>,
    ) -> PyResult<(Vec<String>, bool)> {
        let mut files = Vec::new();
        for item in existing.try_iter()? {
            let item = item?;
            let (name, bytes, created): (String, Bound<'_, PyAny>, Bound<'_, PyAny>) =
                item.extract().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "existing must hold (name, bytes, created) tuples, got {}",
                        repr(&item)
                    ))
                })?;
            files.push(DumpFile {
                name,
                bytes: byte_count("bytes", &bytes)?,
                created: byte_count("created", &created)?,
            });
        }
        let incoming = byte_count("incoming_bytes", incoming_bytes)?;
        let config = self.core.lock().config().clone();
        let plan = plan_dump_rotation(&config, &files, incoming);
        Ok((plan.delete, plan.fits))
    }
}

fn reading_dict<'py>(py: Python<'py>, r: &MemoryReading) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("limit_bytes", r.limit_bytes)?;
    d.set_item("limit_source", r.limit_source.as_str())?;
    d.set_item("usage_bytes", r.usage_bytes)?;
    d.set_item("usage_source", r.usage_source.as_str())?;
    d.set_item("rss_bytes", r.rss_bytes)?;
    d.set_item("physical_ram_bytes", r.physical_ram_bytes)?;
    d.set_item("cgroup", r.cgroup.as_str())?;
    d.set_item("oom_kills", r.oom_kills)?;
    Ok(d)
}

/// The configured limit keyword of the probe: `None`, or a whole number of bytes (0 means none,
/// as in the core), through the core's integer conversion.
fn limit_bytes(py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(v) = v.and_then(optional) else {
        return Ok(None);
    };
    if v.is_instance_of::<PyBool>() {
        return Err(type_error(F, "limit_bytes", "an int", v));
    }
    let n = convert::number(F, "limit_bytes", v)?;
    watchdog_integer_from_f64("limit_bytes", n)
        .map(Some)
        .map_err(|e| config_error(py, F, &e))
}

/// Reads this process's memory situation (Linux): the effective limit (the tightest of the
/// cgroup limits, `limit_bytes` and physical RAM) and the usage it counts, as a dict with
/// `limit_bytes`, `limit_source`, `usage_bytes`, `usage_source`, `rss_bytes`,
/// `physical_ram_bytes`, `cgroup`, `oom_kills`. `root` reads `/proc` and `/sys` under another
/// directory (a fake tree in tests). `OSError` when neither RSS nor physical RAM can be read.
#[pyfunction]
#[pyo3(signature = (limit_bytes=None, root=None))]
pub fn read_memory<'py>(
    py: Python<'py>,
    limit_bytes: Option<&Bound<'py, PyAny>>,
    root: Option<std::path::PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let configured = self::limit_bytes(py, limit_bytes)?;
    // About ten small file reads: released from the GIL so other threads run meanwhile.
    let reading = py.detach(|| match root {
        Some(root) => MemoryProbe::with_source(RootedFs::new(root), configured).read(),
        None => MemoryProbe::new(configured).read(),
    });
    match reading {
        Ok(r) => reading_dict(py, &r),
        Err(e) => Err(PyOSError::new_err(e.to_string())),
    }
}

/// Validates one keyword alone, as `WatchdogCore(**{field: value})` would, and returns nothing:
/// lets the facade check its own keywords that share the core's conversions (`limit_bytes`).
#[pyfunction]
pub fn check_limit_bytes(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    limit_bytes(py, Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_the_config_fields_and_act_modes_the_cores() {
        Python::initialize();
        Python::attach(|py| {
            let d = config_dict(py, &WatchdogConfig::default()).expect("a dict");
            let keys: Vec<String> = d
                .keys()
                .iter()
                .map(|k| k.extract::<String>().expect("str keys"))
                .collect();
            assert_eq!(keys, KEYWORDS);
        });
        assert_eq!(
            ACT_MODES,
            [ActMode::Restart.as_str(), ActMode::EventOnly.as_str()]
        );
    }

    #[test]
    fn every_keyword_is_checked_and_named() {
        Python::initialize();
        Python::attach(|py| {
            for key in KEYWORDS {
                let kwargs = PyDict::new(py);
                kwargs.set_item(*key, PyList::empty(py)).expect("set");
                let e = config_from_kwargs(py, Some(&kwargs)).expect_err(key);
                assert!(e.is_instance_of::<PyTypeError>(py), "{key}: {e}");
                assert!(
                    e.to_string().contains(&format!("{key} must be")),
                    "{key}: {e}"
                );
            }
            let kwargs = PyDict::new(py);
            kwargs.set_item("intervl", 1.0).expect("set");
            let e = config_from_kwargs(py, Some(&kwargs)).expect_err("unknown");
            assert!(e.to_string().contains("intervl"), "{e}");
        });
    }
}
