//! Errors shared by every primitive: invalid configuration and unreadable snapshots.

use std::fmt;

/// What kind of value a configuration field holds, so that bindings can name the field in their
/// own idiom (`open_duration` is `openDurationMs` in JavaScript and seconds in Python).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A plain number (a count, a percentage, a factor).
    Number,
    /// A duration.
    Duration,
    /// One of a fixed set of names.
    Choice,
}

/// A configuration value outside its allowed range. The message names the field, the value and
/// the range: `failure_rate_threshold must be a percentage in (0, 100], got 150`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} must be {expected}, got {got}")]
pub struct ConfigError {
    /// The field, in the core's snake_case spelling (`window.size`, `open_duration`).
    pub field: &'static str,
    /// What the field accepts, in words that do not depend on the binding's units.
    pub expected: &'static str,
    /// The rejected value, rendered for humans.
    pub got: String,
    /// What kind of value the field holds.
    pub kind: FieldKind,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        kind: FieldKind,
        expected: &'static str,
        got: impl fmt::Display,
    ) -> Self {
        ConfigError {
            field,
            expected,
            got: got.to_string(),
            kind,
        }
    }
}

/// A state snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not JSON, or not the shape of a snapshot.
    #[error("breaker snapshot is not valid: {0}")]
    Malformed(String),
    /// Written by a newer Seawall than this one.
    #[error(
        "breaker snapshot version {found} is not supported (this Seawall reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the snapshot.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
}
