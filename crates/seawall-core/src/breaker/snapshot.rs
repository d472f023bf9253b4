//! Versioned, language-neutral snapshots of a breaker's state.
//!
//! Timestamps are process-local, so a snapshot stores only durations relative to the moment it
//! was taken (time left open, age of each bucket). Restoring at another `now`, in another
//! process or another language, resumes the same decisions. Counters are process metrics and are
//! not part of the state; calls in flight belong to the old process and are not carried over.

use serde::{Deserialize, Serialize};

use super::machine::{BreakerCore, BreakerState, Phase, TransitionReason, half_open_elapsed};
use super::window::{CallRecord, Totals, Window};
use crate::error::SnapshotError;
use crate::time::Timestamp;

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A breaker's state, as exported by `snapshot` and accepted by `restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version ([`SNAPSHOT_VERSION`]).
    pub version: u32,
    /// The state.
    pub state: BreakerState,
    /// Nanoseconds left before an open breaker half-opens (only when open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_remaining_ns: Option<u64>,
    /// Nanoseconds a half-open trial has been running (only when half-open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_open_elapsed_ns: Option<u64>,
    /// Completed half-open probes (only when half-open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<SnapshotTotals>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Opens since the last successful close (drives backoff).
    pub consecutive_opens: u32,
    /// The window's calls.
    pub window: SnapshotWindow,
}

/// Call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotTotals {
    /// Calls.
    pub calls: u32,
    /// Failed calls among them.
    pub failures: u32,
    /// Slow calls among them.
    pub slow: u32,
}

/// A window's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SnapshotWindow {
    /// A count window's calls, oldest first, each `failed | slow << 1` (0 = fast success,
    /// 1 = fast failure, 2 = slow success, 3 = slow failure).
    Count {
        /// The calls.
        calls: Vec<u8>,
    },
    /// A time window's non-empty buckets.
    Time {
        /// The buckets, each with its age.
        buckets: Vec<SnapshotBucket>,
    },
}

/// One time-window bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBucket {
    /// How long before the snapshot the bucket's slice began, rounded down to whole buckets.
    pub age_ns: u64,
    /// Its counts.
    #[serde(flatten)]
    pub totals: SnapshotTotals,
}

impl From<Totals> for SnapshotTotals {
    fn from(t: Totals) -> Self {
        SnapshotTotals {
            calls: t.calls,
            failures: t.failures,
            slow: t.slow,
        }
    }
}

impl SnapshotTotals {
    /// Counts that cannot be real (more failures than calls) are refused rather than trusted.
    fn to_totals(self) -> Result<Totals, SnapshotError> {
        if self.failures > self.calls || self.slow > self.calls {
            return Err(SnapshotError::Malformed(format!(
                "a bucket has more failures ({}) or slow calls ({}) than calls ({})",
                self.failures, self.slow, self.calls
            )));
        }
        Ok(Totals {
            calls: self.calls,
            failures: self.failures,
            slow: self.slow,
        })
    }
}

impl Snapshot {
    /// Parses a JSON snapshot, checking its version.
    pub fn from_json(json: &str) -> Result<Snapshot, SnapshotError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly =
            serde_json::from_str(json).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if v.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: v.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        serde_json::from_str(json).map_err(|e| SnapshotError::Malformed(e.to_string()))
    }

    /// The snapshot as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain integers, strings and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl BreakerCore {
    /// The state at `now`, as a snapshot.
    pub fn snapshot(&mut self, now: Timestamp) -> Snapshot {
        let state = self.state(now);
        let (open_remaining_ns, half_open_elapsed_ns, probes) = match self.phase {
            Phase::Open { until } => (
                Some(until.as_nanos().saturating_sub(now.as_nanos())),
                None,
                None,
            ),
            Phase::HalfOpen {
                entered,
                elapsed_before,
                completed,
                failures,
                slow,
                ..
            } => (
                None,
                Some(half_open_elapsed(entered, elapsed_before, now)),
                Some(SnapshotTotals {
                    calls: completed,
                    failures,
                    slow,
                }),
            ),
            _ => (None, None, None),
        };
        let window = match &mut self.window {
            Window::Count(w) => SnapshotWindow::Count {
                calls: w.iter_oldest_first().map(CallRecord::code).collect(),
            },
            Window::Time(w) => {
                w.advance(now);
                let width = w.width_nanos();
                let mut buckets: Vec<SnapshotBucket> = w
                    .live_buckets()
                    .map(|(age, t)| SnapshotBucket {
                        age_ns: age * width,
                        totals: t.into(),
                    })
                    .collect();
                buckets.sort_by_key(|b| std::cmp::Reverse(b.age_ns));
                SnapshotWindow::Time { buckets }
            }
        };
        Snapshot {
            version: SNAPSHOT_VERSION,
            state,
            open_remaining_ns,
            half_open_elapsed_ns,
            probes,
            consecutive_failures: self.consecutive_failures,
            consecutive_opens: self.consecutive_opens,
            window,
        }
    }

    /// Replaces the state with `snapshot`, as if it had been taken at `now`. Calls in flight
    /// when this happens still count in the totals but no longer decide anything.
    pub fn restore(&mut self, snapshot: &Snapshot, now: Timestamp) -> Result<(), SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: snapshot.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        let phase = match snapshot.state {
            BreakerState::Closed => Phase::Closed,
            BreakerState::Open => Phase::Open {
                until: now.saturating_add(std::time::Duration::from_nanos(
                    snapshot.open_remaining_ns.ok_or_else(|| {
                        SnapshotError::Malformed("an open snapshot needs open_remaining_ns".into())
                    })?,
                )),
            },
            BreakerState::HalfOpen => {
                let probes = snapshot.probes.unwrap_or_default().to_totals()?;
                // More completed probes than this breaker admits would break its probe limit.
                let n = self.config.half_open_calls;
                if probes.calls > n {
                    return Err(SnapshotError::Malformed(format!(
                        "the snapshot has {} completed probes but half_open_calls is {n}",
                        probes.calls
                    )));
                }
                Phase::HalfOpen {
                    entered: now,
                    elapsed_before: snapshot.half_open_elapsed_ns.unwrap_or(0),
                    in_flight: 0,
                    completed: probes.calls,
                    failures: probes.failures,
                    slow: probes.slow,
                }
            }
            BreakerState::ForcedOpen => Phase::ForcedOpen,
            BreakerState::Disabled => Phase::Disabled,
            BreakerState::MetricsOnly => Phase::MetricsOnly,
        };
        // Parse the window into a scratch copy first, so a bad snapshot changes nothing.
        let mut window = self.window.clone();
        window.clear(now);
        match (&mut window, &snapshot.window) {
            (Window::Count(w), SnapshotWindow::Count { calls }) => {
                if let Some(bad) = calls.iter().find(|&&c| c > 3) {
                    return Err(SnapshotError::Malformed(format!(
                        "window call code {bad} is not one of 0, 1, 2, 3"
                    )));
                }
                for &c in calls {
                    w.record(CallRecord::from_code(c));
                }
            }
            (Window::Time(w), SnapshotWindow::Time { buckets }) => {
                for b in buckets {
                    w.restore_bucket(now, b.age_ns, b.totals.to_totals()?);
                }
            }
            (Window::Count(_), SnapshotWindow::Time { .. }) => {
                return Err(SnapshotError::Malformed(
                    "the snapshot has a time window but this breaker has a count window".into(),
                ));
            }
            (Window::Time(_), SnapshotWindow::Count { .. }) => {
                return Err(SnapshotError::Malformed(
                    "the snapshot has a count window but this breaker has a time window".into(),
                ));
            }
        }
        self.enter(phase, TransitionReason::Restored, now);
        // `enter` clears the window when entering closed; put the restored one in after it.
        self.window = window;
        self.consecutive_failures = snapshot.consecutive_failures;
        self.consecutive_opens = snapshot.consecutive_opens;
        // The restored trial may already be decided (this breaker may judge over fewer probes
        // than the exporter did), or may have outlived `max_half_open_duration`: settle it now
        // rather than leave it waiting for probes that will never come.
        if let Phase::HalfOpen {
            completed,
            failures,
            slow,
            ..
        } = self.phase
        {
            self.judge_half_open(completed, failures, slow, now);
            self.state(now);
        }
        Ok(())
    }
}
