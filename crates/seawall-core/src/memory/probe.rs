//! The Linux memory probe: how much memory this process may use, how much it uses, and where
//! each figure came from.
//!
//! Every file is read through a [`MemorySource`], so the same code runs against the real
//! `/proc` and `/sys` ([`HostFs`]) and against fake trees in temporary directories
//! ([`RootedFs`]). The probe keeps no state between readings: the process can be moved to another
//! cgroup, or its limits changed, between two samples.
//!
//! # Rules
//!
//! - **Limit**: the tightest of the cgroup limits (v2 `memory.max` and `memory.high`, v1
//!   `memory.limit_in_bytes`, of the process's cgroup and of every ancestor visible under the
//!   mount, because the kernel enforces all of them), the configured limit, and physical RAM
//!   (`MemTotal` in `/proc/meminfo`). Ties go to the cgroup, then the configured limit, then RAM:
//!   the cgroup is what the kernel actually enforces, so naming it is the most useful answer.
//! - **Usage**, on the scope of the winning limit: for a cgroup limit, the working set of that
//!   cgroup as the kubelet computes it (v2 `memory.current − inactive_file`, v1
//!   `memory.usage_in_bytes − total_inactive_file`, floored at 0); for a configured limit or
//!   RAM, the process RSS (a configured limit is this process's budget, and its cgroup may hold
//!   other processes). Without a cgroup, the process RSS.
//! - Any file that is missing, unreadable or garbled makes that one source absent; the probe
//!   then uses the next one. Only the two figures that have no fallback (physical RAM and the
//!   process RSS) produce a [`ProbeError`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the probe reads files from: the real filesystem, or a fake tree rooted in a temp dir.
///
/// `path` is always absolute (`/proc/self/status`, `/sys/fs/cgroup/memory.max`). Return `None`
/// when the file cannot be read for any reason; the probe treats that source as absent.
pub trait MemorySource: Send + Sync {
    /// The whole content of the file at `path`, or `None` if it cannot be read.
    fn read_to_string(&self, path: &str) -> Option<String>;
}

impl<T: MemorySource + ?Sized> MemorySource for &T {
    fn read_to_string(&self, path: &str) -> Option<String> {
        (**self).read_to_string(path)
    }
}

impl<T: MemorySource + ?Sized> MemorySource for Box<T> {
    fn read_to_string(&self, path: &str) -> Option<String> {
        (**self).read_to_string(path)
    }
}

impl<T: MemorySource + ?Sized> MemorySource for Arc<T> {
    fn read_to_string(&self, path: &str) -> Option<String> {
        (**self).read_to_string(path)
    }
}

/// Reads the absolute path from the real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFs;

impl MemorySource for HostFs {
    fn read_to_string(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Reads `root + path`, so tests can lay out a fake `/proc` and `/sys` in a temp dir.
#[derive(Debug, Clone)]
pub struct RootedFs {
    root: PathBuf,
}

impl RootedFs {
    /// A source that reads `/proc/self/status` from `<root>/proc/self/status`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RootedFs { root: root.into() }
    }

    /// The directory standing in for `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl MemorySource for RootedFs {
    fn read_to_string(&self, path: &str) -> Option<String> {
        // `PathBuf::join` with an absolute path would replace the root instead of nesting under it.
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/'))).ok()
    }
}

/// Which rule produced [`MemoryReading::limit_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// A cgroup v2 `memory.max` (the hard limit: the OOM killer acts there).
    CgroupV2Max,
    /// A cgroup v2 `memory.high` (the throttle limit: the kernel reclaims hard above it).
    CgroupV2High,
    /// A cgroup v1 `memory.limit_in_bytes`.
    CgroupV1,
    /// The limit the user configured.
    Configured,
    /// Physical RAM (`MemTotal` in `/proc/meminfo`).
    PhysicalRam,
}

impl LimitSource {
    /// The snake_case name, as serialized (`"cgroup_v2_max"`), for bindings and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitSource::CgroupV2Max => "cgroup_v2_max",
            LimitSource::CgroupV2High => "cgroup_v2_high",
            LimitSource::CgroupV1 => "cgroup_v1",
            LimitSource::Configured => "configured",
            LimitSource::PhysicalRam => "physical_ram",
        }
    }
}

/// Which rule produced [`MemoryReading::usage_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// cgroup v2 `memory.current` minus `inactive_file` from `memory.stat`.
    CgroupV2WorkingSet,
    /// cgroup v1 `memory.usage_in_bytes` minus `total_inactive_file` from `memory.stat`.
    CgroupV1WorkingSet,
    /// The process resident set size (no usable cgroup).
    ProcessRss,
}

impl UsageSource {
    /// The snake_case name, as serialized (`"cgroup_v2_working_set"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            UsageSource::CgroupV2WorkingSet => "cgroup_v2_working_set",
            UsageSource::CgroupV1WorkingSet => "cgroup_v1_working_set",
            UsageSource::ProcessRss => "process_rss",
        }
    }
}

/// Which cgroup hierarchy the probe read memory figures from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// The v1 memory controller (also on hybrid systems that mount a v2 tree beside it).
    V1,
    /// The v2 unified hierarchy mounted at `/sys/fs/cgroup`.
    V2,
    /// No cgroup with memory accounting was found; figures come from `/proc` alone.
    None,
}

impl CgroupVersion {
    /// The snake_case name, as serialized (`"v1"`, `"v2"`, `"none"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
            CgroupVersion::None => "none",
        }
    }
}

/// One reading of the process's memory situation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryReading {
    /// The effective limit in bytes: the tightest of the cgroup limits, the configured limit and
    /// physical RAM. Never 0.
    pub limit_bytes: u64,
    /// Which rule produced `limit_bytes`.
    pub limit_source: LimitSource,
    /// The memory charged against `limit_bytes`, in bytes: the cgroup working set, or the process
    /// RSS without a cgroup.
    pub usage_bytes: u64,
    /// Which rule produced `usage_bytes`.
    pub usage_source: UsageSource,
    /// The process resident set size in bytes (`VmRSS`), whatever the other sources.
    pub rss_bytes: u64,
    /// Physical RAM in bytes (`MemTotal`).
    pub physical_ram_bytes: u64,
    /// The cgroup hierarchy the cgroup figures came from.
    pub cgroup: CgroupVersion,
    /// How many processes the OOM killer has killed in the process's cgroup: v2 `memory.events`
    /// `oom_kill`, v1 `memory.oom_control` `oom_kill`. `None` when unknown (no cgroup, or a kernel
    /// too old to count).
    pub oom_kills: Option<u64>,
}

impl MemoryReading {
    /// The reading where no cgroup applies: the process RSS against the configured limit
    /// (ignored when 0, and when above RAM, which it cannot be) or physical RAM. The probe gives
    /// this without a cgroup; a binding builds it where `/proc` cannot be read (macOS, Windows)
    /// from its runtime's RSS and total memory, so the rule stays here.
    pub fn without_cgroup(
        configured_limit: Option<u64>,
        rss_bytes: u64,
        physical_ram_bytes: u64,
    ) -> Self {
        let configured = configured_limit.filter(|&l| l > 0 && l <= physical_ram_bytes);
        MemoryReading {
            limit_bytes: configured.unwrap_or(physical_ram_bytes),
            limit_source: if configured.is_some() {
                LimitSource::Configured
            } else {
                LimitSource::PhysicalRam
            },
            usage_bytes: rss_bytes,
            usage_source: UsageSource::ProcessRss,
            rss_bytes,
            physical_ram_bytes,
            cgroup: CgroupVersion::None,
            oom_kills: None,
        }
    }
}

/// What was wrong with a file the probe cannot do without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FileFault {
    /// The file does not exist or could not be read.
    #[error("is unreadable")]
    Unreadable,
    /// The file was read but has no line for the field.
    #[error("has no {0} line")]
    MissingField(&'static str),
    /// The field is there but its value is not a number in the expected unit.
    #[error("has an unparsable {0} value")]
    Garbled(&'static str),
}

/// A reading that cannot be made, naming the file and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Neither source of the process RSS could be used.
    #[error(
        "cannot read the process RSS: /proc/self/status {status}, and /proc/self/statm {statm}"
    )]
    RssUnavailable {
        /// What was wrong with `/proc/self/status` (field `VmRSS`).
        status: FileFault,
        /// What was wrong with `/proc/self/statm` (second field, resident pages).
        statm: FileFault,
    },
    /// Physical RAM could not be read.
    #[error("cannot read physical RAM: /proc/meminfo {0}")]
    PhysicalRamUnavailable(FileFault),
}

/// Reads the effective memory limit and usage of this process (Linux).
///
/// Stateless apart from its configuration: every [`read`](MemoryProbe::read) looks at the files
/// afresh. A reading costs about ten small file reads (more when the cgroup is nested, one pair
/// per ancestor), no syscall beyond those.
#[derive(Debug, Clone)]
pub struct MemoryProbe<S: MemorySource = HostFs> {
    source: S,
    configured_limit: Option<u64>,
}

impl MemoryProbe<HostFs> {
    /// A probe of the real machine. `configured_limit` (bytes) competes with the cgroup limits and
    /// physical RAM; `Some(0)` is ignored like `None`, since no process can run within 0 bytes.
    pub fn new(configured_limit: Option<u64>) -> Self {
        MemoryProbe::with_source(HostFs, configured_limit)
    }
}

const PROC_CGROUP: &str = "/proc/self/cgroup";
const PROC_STATUS: &str = "/proc/self/status";
const PROC_STATM: &str = "/proc/self/statm";
const PROC_MEMINFO: &str = "/proc/meminfo";
const V2_MOUNT: &str = "/sys/fs/cgroup";
const V2_CONTROLLERS: &str = "/sys/fs/cgroup/cgroup.controllers";
const V1_MOUNT: &str = "/sys/fs/cgroup/memory";
/// `statm` counts pages; the brief fixes 4 KiB. It is only the fallback when `status` is
/// unreadable, which Linux has not done since 2.6, so a 64 KiB-page kernel would only be wrong
/// in that already-broken case.
const PAGE_SIZE: u64 = 4096;
/// cgroup values at or above 2^62 mean "no limit": v1 writes its unlimited as
/// 9223372036854771712 (i64::MAX rounded down to a page), and no machine has 4 EiB.
const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// The file names of one cgroup hierarchy.
struct Layout {
    version: CgroupVersion,
    mount: &'static str,
    usage: &'static str,
    inactive_file_key: &'static str,
    oom_file: &'static str,
    usage_source: UsageSource,
}

const V2: Layout = Layout {
    version: CgroupVersion::V2,
    mount: V2_MOUNT,
    usage: "memory.current",
    inactive_file_key: "inactive_file",
    oom_file: "memory.events",
    usage_source: UsageSource::CgroupV2WorkingSet,
};

const V1: Layout = Layout {
    version: CgroupVersion::V1,
    mount: V1_MOUNT,
    usage: "memory.usage_in_bytes",
    // v1 `inactive_file` is this cgroup alone; `total_` includes descendants, matching the usage.
    inactive_file_key: "total_inactive_file",
    oom_file: "memory.oom_control",
    usage_source: UsageSource::CgroupV1WorkingSet,
};

/// The process's cgroup, resolved to a directory that has memory accounting.
struct Cgroup {
    layout: &'static Layout,
    /// `<mount>/<path>`, normalized: no trailing slash, no empty, `.` or `..` components.
    dir: String,
    /// The raw usage figure read while locating `dir` (`None` if garbled).
    usage: Option<u64>,
}

impl Cgroup {
    /// The directories from `dir` up to the mount root, innermost first, as prefixes of `dir`.
    fn levels(&self) -> impl Iterator<Item = &str> {
        let mount_len = self.layout.mount.len();
        let dir = self.dir.as_str();
        let mut end = Some(dir.len());
        std::iter::from_fn(move || {
            let current = end?;
            end = (current > mount_len).then(|| {
                dir[..current]
                    .rfind('/')
                    .map_or(mount_len, |i| i.max(mount_len))
            });
            Some(&dir[..current])
        })
    }
}

/// The winning limit so far; `level` is the cgroup directory for cgroup limits.
struct Limit<'a> {
    bytes: u64,
    source: LimitSource,
    level: Option<&'a str>,
}

impl<S: MemorySource> MemoryProbe<S> {
    /// A probe reading its files from `source` (a [`RootedFs`] in tests). `configured_limit` is
    /// as in [`MemoryProbe::new`].
    pub fn with_source(source: S, configured_limit: Option<u64>) -> Self {
        MemoryProbe {
            source,
            configured_limit: configured_limit.filter(|&bytes| bytes > 0),
        }
    }

    /// The configured limit in bytes, if any (after dropping `Some(0)`).
    pub fn configured_limit(&self) -> Option<u64> {
        self.configured_limit
    }

    /// The file source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Takes one reading.
    ///
    /// # Errors
    ///
    /// [`ProbeError::PhysicalRamUnavailable`] if `/proc/meminfo` has no usable `MemTotal`;
    /// [`ProbeError::RssUnavailable`] if neither `/proc/self/status` nor `/proc/self/statm`
    /// gives the RSS. Every cgroup file is optional.
    pub fn read(&self) -> Result<MemoryReading, ProbeError> {
        let physical_ram_bytes = self.physical_ram()?;
        let rss_bytes = self.process_rss()?;

        // Ties: `<=` lets each later candidate beat an equal earlier one, so the order of the
        // candidates below is the order of precedence reversed: RAM, then configured, then the
        // cgroup levels from innermost to outermost (an ancestor's usage includes ours, so at an
        // equal limit it is reached first), `memory.high` before `memory.max` within a level
        // (at an equal value, the hard limit is the one worth naming).
        let mut limit = Limit {
            bytes: physical_ram_bytes,
            source: LimitSource::PhysicalRam,
            level: None,
        };
        if let Some(configured) = self.configured_limit
            && configured <= limit.bytes
        {
            limit = Limit {
                bytes: configured,
                source: LimitSource::Configured,
                level: None,
            };
        }

        let Some(cgroup) = self.locate_cgroup() else {
            return Ok(MemoryReading::without_cgroup(
                self.configured_limit,
                rss_bytes,
                physical_ram_bytes,
            ));
        };

        // A v1 limit above physical RAM (or the v1 "unlimited") never beats RAM, so the plain
        // `<=` comparison already treats it as no limit; only an exact tie with MemTotal would
        // name the cgroup, which is then the truth anyway.
        for level in cgroup.levels() {
            let candidates: &[(&str, LimitSource)] = match cgroup.layout.version {
                CgroupVersion::V2 => &[
                    ("memory.high", LimitSource::CgroupV2High),
                    ("memory.max", LimitSource::CgroupV2Max),
                ],
                _ => &[("memory.limit_in_bytes", LimitSource::CgroupV1)],
            };
            for &(file, source) in candidates {
                if let Some(bytes) = self.read_file(level, file).as_deref().and_then(parse_limit)
                    && bytes <= limit.bytes
                {
                    limit = Limit {
                        bytes,
                        source,
                        level: Some(level),
                    };
                }
            }
        }

        // Usage is measured on the scope of the winning limit: a cgroup's limit counts that
        // cgroup's working set (every process in it, as the kernel does); a configured limit is
        // this process's budget (as PM2's `max_memory_restart` or `--max-old-space-size` are),
        // and RAM is not enforced on a group, so those are compared with the process's RSS. A
        // cgroup shared with other processes (a systemd slice, a sandbox) must not trip a
        // per-process limit.
        let working_set = limit
            .level
            .and_then(|level| self.working_set(&cgroup, level));
        let (usage_bytes, usage_source) = match working_set {
            Some(bytes) => (bytes, cgroup.layout.usage_source),
            None => (rss_bytes, UsageSource::ProcessRss),
        };
        let oom_kills = self
            .read_file(&cgroup.dir, cgroup.layout.oom_file)
            .as_deref()
            .and_then(|text| key_value(text, "oom_kill"));

        Ok(MemoryReading {
            limit_bytes: limit.bytes,
            limit_source: limit.source,
            usage_bytes,
            usage_source,
            rss_bytes,
            physical_ram_bytes,
            cgroup: cgroup.layout.version,
            oom_kills,
        })
    }

    fn read_file(&self, dir: &str, file: &str) -> Option<String> {
        let mut path = String::with_capacity(dir.len() + 1 + file.len());
        path.push_str(dir);
        path.push('/');
        path.push_str(file);
        self.source.read_to_string(&path)
    }

    fn physical_ram(&self) -> Result<u64, ProbeError> {
        let text = self
            .source
            .read_to_string(PROC_MEMINFO)
            .ok_or(ProbeError::PhysicalRamUnavailable(FileFault::Unreadable))?;
        match kib_field(&text, "MemTotal:") {
            Ok(0) => Err(ProbeError::PhysicalRamUnavailable(FileFault::Garbled(
                "MemTotal",
            ))),
            Ok(bytes) => Ok(bytes),
            Err(fault) => Err(ProbeError::PhysicalRamUnavailable(fault)),
        }
    }

    fn process_rss(&self) -> Result<u64, ProbeError> {
        let status = match self.source.read_to_string(PROC_STATUS) {
            Some(text) => match kib_field(&text, "VmRSS:") {
                Ok(bytes) => return Ok(bytes),
                Err(fault) => fault,
            },
            None => FileFault::Unreadable,
        };
        let statm = match self.source.read_to_string(PROC_STATM) {
            // statm: size resident shared text lib data dt, in pages.
            Some(text) => match text.split_ascii_whitespace().nth(1) {
                Some(pages) => match pages.parse::<u64>() {
                    Ok(pages) => return Ok(pages.saturating_mul(PAGE_SIZE)),
                    Err(_) => FileFault::Garbled("resident"),
                },
                None => FileFault::MissingField("resident"),
            },
            None => FileFault::Unreadable,
        };
        Err(ProbeError::RssUnavailable { status, statm })
    }

    /// Finds the memory cgroup: v1 when `/proc/self/cgroup` has a line whose controllers include
    /// `memory` (this covers hybrid systems), else v2 when it has a `0::` line and the unified
    /// hierarchy is mounted at `/sys/fs/cgroup`.
    fn locate_cgroup(&self) -> Option<Cgroup> {
        let text = self.source.read_to_string(PROC_CGROUP)?;
        let mut v1_path = None;
        let mut v2_path = None;
        for line in text.lines() {
            // hierarchy-id:controllers:path; the path may itself contain ':'.
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                v2_path = Some(path);
            } else if controllers.split(',').any(|c| c == "memory") {
                v1_path = Some(path);
            }
        }
        if let Some(path) = v1_path
            && let Some(cgroup) = self.accounted_dir(&V1, path)
        {
            return Some(cgroup);
        }
        let path = v2_path?;
        self.source.read_to_string(V2_CONTROLLERS)?;
        self.accounted_dir(&V2, path)
    }

    /// `<mount>/<path>`, or the nearest ancestor of it that has memory accounting. Walking up
    /// covers a cgroup namespace whose `/proc/self/cgroup` shows a host path while the container
    /// mounts its own cgroup at the mount root, and a v2 subtree where the memory controller is
    /// not enabled.
    fn accounted_dir(&self, layout: &'static Layout, path: &str) -> Option<Cgroup> {
        let mut dir = String::with_capacity(layout.mount.len() + path.len());
        dir.push_str(layout.mount);
        for component in path.trim().split('/') {
            match component {
                "" | "." => {}
                // A path outside our namespace root ("/../x"): what we can see is the root.
                ".." => {
                    dir.truncate(layout.mount.len());
                    break;
                }
                _ => {
                    dir.push('/');
                    dir.push_str(component);
                }
            }
        }
        loop {
            if let Some(text) = self.read_file(&dir, layout.usage) {
                return Some(Cgroup {
                    layout,
                    usage: parse_u64(&text),
                    dir,
                });
            }
            if dir.len() <= layout.mount.len() {
                return None;
            }
            let cut = dir
                .rfind('/')
                .map_or(layout.mount.len(), |i| i.max(layout.mount.len()));
            dir.truncate(cut);
        }
    }

    /// The working set of the cgroup at `level`: usage minus inactive file cache, floored at 0.
    /// A missing `memory.stat` or key subtracts nothing (as cAdvisor does): overstating usage is
    /// the safe side for a watchdog.
    fn working_set(&self, cgroup: &Cgroup, level: &str) -> Option<u64> {
        let usage = if level == cgroup.dir {
            cgroup.usage?
        } else {
            parse_u64(&self.read_file(level, cgroup.layout.usage)?)?
        };
        let inactive = self
            .read_file(level, "memory.stat")
            .as_deref()
            .and_then(|text| key_value(text, cgroup.layout.inactive_file_key))
            .unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }
}

/// A plain decimal file (`memory.current`), trailing newline allowed.
fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A cgroup limit file: `max`, a huge value (unlimited), 0 or garbage all mean no limit. A zero
/// limit cannot hold a running process and would make every percentage infinite.
fn parse_limit(text: &str) -> Option<u64> {
    parse_u64(text).filter(|&bytes| bytes > 0 && bytes < UNLIMITED_THRESHOLD)
}

/// The value of `key value` lines (`memory.stat`, `memory.events`, `memory.oom_control`).
fn key_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key { parse_u64(v) } else { None }
    })
}

/// A `Key:   123 kB` line of `/proc/self/status` or `/proc/meminfo`, in bytes.
fn kib_field(text: &str, key: &'static str) -> Result<u64, FileFault> {
    let name = key.trim_end_matches(':');
    let rest = text
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .ok_or(FileFault::MissingField(name))?;
    let mut parts = rest.split_ascii_whitespace();
    match (
        parts.next().map(str::parse::<u64>),
        parts.next(),
        parts.next(),
    ) {
        (Some(Ok(kib)), Some("kB"), None) => Ok(kib.saturating_mul(1024)),
        _ => Err(FileFault::Garbled(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    /// MemTotal of every fake tree: 16 GiB.
    const RAM: u64 = 16 * GIB;
    /// VmRSS of every fake tree: 50 MiB.
    const RSS: u64 = 50 * MIB;
    const V1_UNLIMITED: &str = "9223372036854771712\n";

    /// A fake `/` in a fresh temp dir, removed on drop (also when the test fails).
    struct FakeTree {
        root: PathBuf,
    }

    impl FakeTree {
        /// An empty tree.
        fn empty(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let root = std::env::temp_dir().join(format!(
                "seawall-probe-{name}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).expect("create fake root");
            FakeTree { root }
        }

        /// A tree with `/proc/meminfo` (16 GiB) and `/proc/self/status` (50 MiB RSS).
        fn new(name: &str) -> Self {
            let tree = FakeTree::empty(name);
            tree.file(
                "/proc/meminfo",
                &format!(
                    "MemTotal:       {} kB\nMemFree:        1000 kB\n",
                    RAM / 1024
                ),
            );
            tree.file(
                "/proc/self/status",
                &format!(
                    "Name:\tnode\nVmPeak:\t  999999 kB\nVmRSS:\t   {} kB\nThreads:\t7\n",
                    RSS / 1024
                ),
            );
            tree
        }

        /// A tree with a v2 unified hierarchy and the process in `path`.
        fn v2(name: &str, path: &str) -> Self {
            let tree = FakeTree::new(name);
            tree.file("/proc/self/cgroup", &format!("0::{path}\n"));
            tree.file(
                "/sys/fs/cgroup/cgroup.controllers",
                "cpuset cpu io memory pids\n",
            );
            tree
        }

        /// A tree with a v1 memory controller and the process in `path`.
        fn v1(name: &str, path: &str) -> Self {
            let tree = FakeTree::new(name);
            tree.file(
                "/proc/self/cgroup",
                &format!("12:pids:/\n11:cpu,cpuacct:/\n4:memory:{path}\n1:name=systemd:/\n0::/\n"),
            );
            tree
        }

        /// Writes `contents` at `path` (absolute, as the probe sees it), creating directories.
        fn file(&self, path: &str, contents: &str) {
            let full = self.root.join(path.trim_start_matches('/'));
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).expect("create fake dir");
            }
            std::fs::write(&full, contents).expect("write fake file");
        }

        fn remove(&self, path: &str) {
            std::fs::remove_file(self.root.join(path.trim_start_matches('/')))
                .expect("remove fake file");
        }

        /// Writes the v2 files of one cgroup directory.
        fn v2_dir(&self, dir: &str, current: u64, inactive_file: u64, max: &str, high: &str) {
            self.file(&format!("{dir}/memory.current"), &format!("{current}\n"));
            self.file(
                &format!("{dir}/memory.stat"),
                &format!(
                    "anon 1000\nfile 2000\nactive_file 5\ninactive_file {inactive_file}\nslab 7\n"
                ),
            );
            self.file(&format!("{dir}/memory.max"), &format!("{max}\n"));
            self.file(&format!("{dir}/memory.high"), &format!("{high}\n"));
        }

        /// Writes the v1 files of one cgroup directory.
        fn v1_dir(&self, dir: &str, usage: u64, total_inactive_file: u64, limit: &str) {
            self.file(
                &format!("{dir}/memory.usage_in_bytes"),
                &format!("{usage}\n"),
            );
            self.file(
                &format!("{dir}/memory.stat"),
                &format!(
                    "cache 10\nrss 20\ninactive_file 3\ntotal_cache 10\ntotal_inactive_file {total_inactive_file}\n"
                ),
            );
            self.file(&format!("{dir}/memory.limit_in_bytes"), limit);
        }

        fn probe(&self, configured: Option<u64>) -> MemoryProbe<RootedFs> {
            MemoryProbe::with_source(RootedFs::new(&self.root), configured)
        }

        fn read(&self, configured: Option<u64>) -> MemoryReading {
            self.probe(configured).read().expect("reading")
        }
    }

    impl Drop for FakeTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn without_a_cgroup_the_rss_meets_the_configured_limit_or_ram() {
        let r = MemoryReading::without_cgroup(Some(GIB), RSS, RAM);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (GIB, LimitSource::Configured)
        );
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (RSS, UsageSource::ProcessRss)
        );
        assert_eq!(r.cgroup, CgroupVersion::None);
        for ignored in [None, Some(0), Some(RAM + 1)] {
            let r = MemoryReading::without_cgroup(ignored, RSS, RAM);
            assert_eq!(
                (r.limit_bytes, r.limit_source),
                (RAM, LimitSource::PhysicalRam)
            );
        }
    }

    #[test]
    fn v2_memory_max_is_the_limit_and_usage_is_the_working_set() {
        let tree = FakeTree::v2("v2-max", "/");
        tree.v2_dir(
            "/sys/fs/cgroup",
            300 * MIB,
            100 * MIB,
            &GIB.to_string(),
            "max",
        );
        let r = tree.read(None);
        assert_eq!(
            r,
            MemoryReading {
                limit_bytes: GIB,
                limit_source: LimitSource::CgroupV2Max,
                usage_bytes: 200 * MIB,
                usage_source: UsageSource::CgroupV2WorkingSet,
                rss_bytes: RSS,
                physical_ram_bytes: RAM,
                cgroup: CgroupVersion::V2,
                oom_kills: None,
            }
        );
    }

    #[test]
    fn v2_memory_high_counts_when_max_is_max() {
        let tree = FakeTree::v2("v2-high", "/");
        tree.v2_dir(
            "/sys/fs/cgroup",
            300 * MIB,
            0,
            "max",
            &(512 * MIB).to_string(),
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (512 * MIB, LimitSource::CgroupV2High)
        );
        assert_eq!(r.usage_bytes, 300 * MIB);
    }

    #[test]
    fn v2_tightest_of_max_and_high_wins_and_max_wins_a_tie() {
        let tree = FakeTree::v2("v2-both", "/");
        let dir = "/sys/fs/cgroup";
        tree.v2_dir(dir, MIB, 0, &GIB.to_string(), &(768 * MIB).to_string());
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (768 * MIB, LimitSource::CgroupV2High)
        );

        tree.v2_dir(
            dir,
            MIB,
            0,
            &(600 * MIB).to_string(),
            &(768 * MIB).to_string(),
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (600 * MIB, LimitSource::CgroupV2Max)
        );

        tree.v2_dir(dir, MIB, 0, &GIB.to_string(), &GIB.to_string());
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (GIB, LimitSource::CgroupV2Max)
        );
    }

    #[test]
    fn v2_nested_path_reads_the_process_cgroup() {
        let tree = FakeTree::v2("v2-nested", "/system.slice/api.service");
        // The root cgroup of a v2 host has no memory.current or memory.max.
        tree.v2_dir(
            "/sys/fs/cgroup/system.slice/api.service",
            400 * MIB,
            50 * MIB,
            &(2 * GIB).to_string(),
            "max",
        );
        tree.file(
            "/sys/fs/cgroup/system.slice/api.service/memory.events",
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (2 * GIB, LimitSource::CgroupV2Max)
        );
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (350 * MIB, UsageSource::CgroupV2WorkingSet)
        );
        assert_eq!(r.oom_kills, Some(1));
    }

    #[test]
    fn v2_ancestor_limit_applies_and_usage_is_measured_there() {
        let tree = FakeTree::v2("v2-ancestor", "/user.slice/user-1000.slice/session-3.scope");
        tree.v2_dir(
            "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope",
            100 * MIB,
            0,
            "max",
            "max",
        );
        // The slice holds every session of the user, so its usage is the one its limit sees.
        tree.v2_dir(
            "/sys/fs/cgroup/user.slice/user-1000.slice",
            700 * MIB,
            100 * MIB,
            &GIB.to_string(),
            "max",
        );
        tree.v2_dir(
            "/sys/fs/cgroup/user.slice",
            900 * MIB,
            0,
            &(4 * GIB).to_string(),
            "max",
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (GIB, LimitSource::CgroupV2Max)
        );
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (600 * MIB, UsageSource::CgroupV2WorkingSet)
        );

        // With no ancestor tighter than our own limit, usage is our own again.
        tree.v2_dir(
            "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope",
            100 * MIB,
            0,
            "max",
            &(256 * MIB).to_string(),
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (256 * MIB, LimitSource::CgroupV2High)
        );
        assert_eq!(r.usage_bytes, 100 * MIB);
    }

    #[test]
    fn v2_namespace_root_path_reads_the_mount_root() {
        let tree = FakeTree::v2("v2-ns", "/");
        tree.v2_dir(
            "/sys/fs/cgroup",
            120 * MIB,
            20 * MIB,
            &(256 * MIB).to_string(),
            "max",
        );
        tree.file(
            "/sys/fs/cgroup/memory.events",
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        );
        let r = tree.read(None);
        assert_eq!((r.limit_bytes, r.usage_bytes), (256 * MIB, 100 * MIB));
        assert_eq!(r.cgroup, CgroupVersion::V2);
        assert_eq!(r.oom_kills, Some(0));
    }

    #[test]
    fn v2_host_path_without_its_directory_falls_back_to_the_mount_root() {
        let tree = FakeTree::v2("v2-hostpath", "/kubepods/burstable/pod1234/abcdef");
        tree.v2_dir(
            "/sys/fs/cgroup",
            120 * MIB,
            20 * MIB,
            &(256 * MIB).to_string(),
            "max",
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (256 * MIB, LimitSource::CgroupV2Max)
        );
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (100 * MIB, UsageSource::CgroupV2WorkingSet)
        );
    }

    #[test]
    fn cgroup_path_escaping_the_namespace_reads_the_mount_root() {
        let tree = FakeTree::v2("v2-dotdot", "/../../elsewhere");
        tree.v2_dir(
            "/sys/fs/cgroup",
            120 * MIB,
            20 * MIB,
            &(256 * MIB).to_string(),
            "max",
        );
        // Would be read if ".." were followed.
        tree.v2_dir("/sys/elsewhere", 1, 0, "1", "max");
        let r = tree.read(None);
        assert_eq!((r.limit_bytes, r.usage_bytes), (256 * MIB, 100 * MIB));
    }

    #[test]
    fn v2_without_unified_mount_is_no_cgroup() {
        let tree = FakeTree::v2("v2-nomount", "/");
        tree.v2_dir(
            "/sys/fs/cgroup",
            120 * MIB,
            0,
            &(256 * MIB).to_string(),
            "max",
        );
        tree.remove("/sys/fs/cgroup/cgroup.controllers");
        let r = tree.read(None);
        assert_eq!(r.cgroup, CgroupVersion::None);
        assert_eq!(r.limit_source, LimitSource::PhysicalRam);
    }

    #[test]
    fn v1_limit_and_working_set() {
        let tree = FakeTree::v1("v1-limit", "/docker/abc");
        let dir = "/sys/fs/cgroup/memory/docker/abc";
        tree.v1_dir(dir, 700 * MIB, 200 * MIB, &(GIB).to_string());
        tree.file(
            &format!("{dir}/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        );
        let r = tree.read(None);
        assert_eq!(
            r,
            MemoryReading {
                limit_bytes: GIB,
                limit_source: LimitSource::CgroupV1,
                usage_bytes: 500 * MIB,
                usage_source: UsageSource::CgroupV1WorkingSet,
                rss_bytes: RSS,
                physical_ram_bytes: RAM,
                cgroup: CgroupVersion::V1,
                oom_kills: Some(3),
            }
        );
    }

    #[test]
    fn v1_unlimited_or_above_ram_means_physical_ram() {
        let tree = FakeTree::v1("v1-unlimited", "/");
        let dir = "/sys/fs/cgroup/memory";
        tree.v1_dir(dir, 700 * MIB, 200 * MIB, V1_UNLIMITED);
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (RAM, LimitSource::PhysicalRam)
        );
        // RAM is not a group's limit: usage is this process's RSS, not the group's working set.
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (RSS, UsageSource::ProcessRss)
        );
        assert_eq!(r.cgroup, CgroupVersion::V1);

        tree.v1_dir(dir, 700 * MIB, 200 * MIB, &(RAM + 4096).to_string());
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (RAM, LimitSource::PhysicalRam)
        );
    }

    #[test]
    fn v1_ancestor_limit_applies() {
        let tree = FakeTree::v1("v1-ancestor", "/kubepods/pod1/ctr");
        tree.v1_dir("/sys/fs/cgroup/memory", 9 * GIB, 0, V1_UNLIMITED);
        tree.v1_dir(
            "/sys/fs/cgroup/memory/kubepods/pod1",
            900 * MIB,
            0,
            &GIB.to_string(),
        );
        tree.v1_dir(
            "/sys/fs/cgroup/memory/kubepods/pod1/ctr",
            600 * MIB,
            0,
            V1_UNLIMITED,
        );
        let r = tree.read(None);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (GIB, LimitSource::CgroupV1)
        );
        assert_eq!(r.usage_bytes, 900 * MIB);
    }

    #[test]
    fn hybrid_uses_v1_for_memory() {
        let tree = FakeTree::v1("hybrid", "/app");
        // A v2 tree with its own (different) figures, to show it is not the one read.
        tree.file("/sys/fs/cgroup/cgroup.controllers", "cpu io\n");
        tree.v2_dir(
            "/sys/fs/cgroup/app",
            10 * MIB,
            0,
            &(64 * MIB).to_string(),
            "max",
        );
        tree.v1_dir(
            "/sys/fs/cgroup/memory/app",
            300 * MIB,
            0,
            &(2 * GIB).to_string(),
        );
        let r = tree.read(None);
        assert_eq!(r.cgroup, CgroupVersion::V1);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (2 * GIB, LimitSource::CgroupV1)
        );
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (300 * MIB, UsageSource::CgroupV1WorkingSet)
        );
    }

    #[test]
    fn hybrid_without_v1_memory_files_falls_back_to_v2() {
        let tree = FakeTree::v1("hybrid-v2", "/app");
        tree.file("/proc/self/cgroup", "4:memory:/app\n0::/app\n");
        tree.file("/sys/fs/cgroup/cgroup.controllers", "memory\n");
        tree.v2_dir(
            "/sys/fs/cgroup/app",
            10 * MIB,
            0,
            &(64 * MIB).to_string(),
            "max",
        );
        let r = tree.read(None);
        assert_eq!(r.cgroup, CgroupVersion::V2);
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (64 * MIB, LimitSource::CgroupV2Max)
        );
    }

    #[test]
    fn no_cgroup_is_rss_against_ram() {
        let tree = FakeTree::new("none");
        let expected = MemoryReading {
            limit_bytes: RAM,
            limit_source: LimitSource::PhysicalRam,
            usage_bytes: RSS,
            usage_source: UsageSource::ProcessRss,
            rss_bytes: RSS,
            physical_ram_bytes: RAM,
            cgroup: CgroupVersion::None,
            oom_kills: None,
        };
        // No /proc/self/cgroup at all.
        assert_eq!(tree.read(None), expected);
        // A /proc/self/cgroup naming cgroups whose files do not exist.
        tree.file("/proc/self/cgroup", "4:memory:/x\n0::/x\n");
        assert_eq!(tree.read(None), expected);
    }

    #[test]
    fn no_cgroup_with_configured_limit() {
        let tree = FakeTree::new("none-configured");
        let r = tree.read(Some(256 * MIB));
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (256 * MIB, LimitSource::Configured)
        );
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (RSS, UsageSource::ProcessRss)
        );
        // Above RAM, RAM is tighter; equal to RAM, configured wins the tie.
        let r = tree.read(Some(2 * RAM));
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (RAM, LimitSource::PhysicalRam)
        );
        let r = tree.read(Some(RAM));
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (RAM, LimitSource::Configured)
        );
        // Zero is no limit, not a limit no process fits in.
        let r = tree.read(Some(0));
        assert_eq!(r.limit_source, LimitSource::PhysicalRam);
    }

    #[test]
    fn configured_limit_against_cgroup() {
        let tree = FakeTree::v2("configured", "/app");
        tree.v2_dir(
            "/sys/fs/cgroup/app",
            300 * MIB,
            100 * MIB,
            &GIB.to_string(),
            "max",
        );

        let r = tree.read(Some(512 * MIB));
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (512 * MIB, LimitSource::Configured)
        );
        // A configured limit is this process's budget: usage is its RSS, not the cgroup's
        // working set (which may hold other processes).
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (RSS, UsageSource::ProcessRss)
        );

        let r = tree.read(Some(2 * GIB));
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (GIB, LimitSource::CgroupV2Max)
        );

        let r = tree.read(Some(GIB));
        assert_eq!(
            (r.limit_bytes, r.limit_source),
            (GIB, LimitSource::CgroupV2Max),
            "cgroup wins a tie"
        );
    }

    #[test]
    fn working_set_is_floored_at_zero() {
        let tree = FakeTree::v2("floor", "/");
        tree.v2_dir(
            "/sys/fs/cgroup",
            100 * MIB,
            150 * MIB,
            &GIB.to_string(),
            "max",
        );
        let r = tree.read(None);
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (0, UsageSource::CgroupV2WorkingSet)
        );

        let tree = FakeTree::v1("floor-v1", "/");
        tree.v1_dir(
            "/sys/fs/cgroup/memory",
            100 * MIB,
            150 * MIB,
            &GIB.to_string(),
        );
        let r = tree.read(None);
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (0, UsageSource::CgroupV1WorkingSet)
        );
    }

    #[test]
    fn missing_memory_stat_subtracts_nothing() {
        let tree = FakeTree::v2("nostat", "/");
        tree.v2_dir(
            "/sys/fs/cgroup",
            100 * MIB,
            30 * MIB,
            &GIB.to_string(),
            "max",
        );
        tree.remove("/sys/fs/cgroup/memory.stat");
        let r = tree.read(None);
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (100 * MIB, UsageSource::CgroupV2WorkingSet)
        );
    }

    #[test]
    fn oom_kill_counters() {
        let tree = FakeTree::v2("oom-v2", "/");
        tree.v2_dir("/sys/fs/cgroup", MIB, 0, "max", "max");
        assert_eq!(tree.read(None).oom_kills, None, "no memory.events");
        tree.file(
            "/sys/fs/cgroup/memory.events",
            "low 0\nhigh 12\nmax 30\noom 5\noom_kill 4\noom_group_kill 0\n",
        );
        assert_eq!(tree.read(None).oom_kills, Some(4));
        tree.file("/sys/fs/cgroup/memory.events", "low 0\noom_kill many\n");
        assert_eq!(tree.read(None).oom_kills, None, "garbled");

        let tree = FakeTree::v1("oom-v1", "/");
        tree.v1_dir("/sys/fs/cgroup/memory", MIB, 0, V1_UNLIMITED);
        tree.file(
            "/sys/fs/cgroup/memory/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\n",
        );
        assert_eq!(tree.read(None).oom_kills, None, "kernel older than 4.13");
        tree.file(
            "/sys/fs/cgroup/memory/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 1\noom_kill 7\n",
        );
        assert_eq!(tree.read(None).oom_kills, Some(7));
    }

    #[test]
    fn garbled_cgroup_files_fall_back_to_the_next_source() {
        let tree = FakeTree::v2("garbled", "/");
        let dir = "/sys/fs/cgroup";
        tree.v2_dir(dir, 300 * MIB, 0, "lots", &(512 * MIB).to_string());
        let r = tree.read(None);
        assert_eq!(
            r.limit_source,
            LimitSource::CgroupV2High,
            "garbled max: high is next"
        );

        tree.file(&format!("{dir}/memory.high"), "");
        let r = tree.read(Some(GIB));
        assert_eq!(
            r.limit_source,
            LimitSource::Configured,
            "garbled high: configured is next"
        );
        let r = tree.read(None);
        assert_eq!(r.limit_source, LimitSource::PhysicalRam, "then RAM");

        tree.file(&format!("{dir}/memory.max"), "0\n");
        assert_eq!(
            tree.read(None).limit_source,
            LimitSource::PhysicalRam,
            "zero is no limit"
        );

        // A cgroup limit again, so that usage is the cgroup's working set when readable.
        tree.file(&format!("{dir}/memory.max"), &format!("{GIB}\n"));
        tree.file(&format!("{dir}/memory.current"), "-5\n");
        let r = tree.read(None);
        assert_eq!(
            (r.usage_bytes, r.usage_source),
            (RSS, UsageSource::ProcessRss)
        );
        assert_eq!(r.cgroup, CgroupVersion::V2, "the cgroup was still found");

        tree.file(&format!("{dir}/memory.current"), "300\n");
        tree.file(
            &format!("{dir}/memory.stat"),
            "inactive_file\ninactive_file x\n\n",
        );
        assert_eq!(
            tree.read(None).usage_bytes,
            300,
            "garbled stat subtracts nothing"
        );

        tree.file("/proc/self/cgroup", "garbage\n::\n0:\n\u{0}\n");
        assert_eq!(
            tree.read(None).cgroup,
            CgroupVersion::None,
            "garbled /proc/self/cgroup"
        );
    }

    #[test]
    fn garbled_status_falls_back_to_statm() {
        let tree = FakeTree::new("statm");
        tree.file("/proc/self/statm", "765 438 409 5 0 123 0\n");
        tree.file("/proc/self/status", "Name:\tnode\nVmRSS:\t  lots kB\n");
        assert_eq!(tree.read(None).rss_bytes, 438 * 4096);
        tree.file("/proc/self/status", "Name:\tnode\nVmRSS:\t  2000 MB\n");
        assert_eq!(tree.read(None).rss_bytes, 438 * 4096, "wrong unit");
        tree.remove("/proc/self/status");
        let r = tree.read(None);
        assert_eq!((r.rss_bytes, r.usage_bytes), (438 * 4096, 438 * 4096));
    }

    #[test]
    fn errors_name_the_file_and_the_fault() {
        let tree = FakeTree::new("errors");
        tree.file("/proc/self/status", "Name:\tnode\n");
        let err = tree.probe(None).read().expect_err("no RSS");
        assert_eq!(
            err,
            ProbeError::RssUnavailable {
                status: FileFault::MissingField("VmRSS"),
                statm: FileFault::Unreadable
            }
        );
        assert_eq!(
            err.to_string(),
            "cannot read the process RSS: /proc/self/status has no VmRSS line, and /proc/self/statm is unreadable"
        );
        tree.file("/proc/self/statm", "765\n");
        let err = tree.probe(None).read().expect_err("no RSS");
        assert_eq!(
            err,
            ProbeError::RssUnavailable {
                status: FileFault::MissingField("VmRSS"),
                statm: FileFault::MissingField("resident")
            }
        );

        let tree = FakeTree::new("errors-ram");
        tree.remove("/proc/meminfo");
        let err = tree.probe(None).read().expect_err("no RAM");
        assert_eq!(
            err,
            ProbeError::PhysicalRamUnavailable(FileFault::Unreadable)
        );
        assert_eq!(
            err.to_string(),
            "cannot read physical RAM: /proc/meminfo is unreadable"
        );
        tree.file("/proc/meminfo", "MemFree: 5 kB\n");
        assert_eq!(
            tree.probe(None).read().expect_err("no MemTotal"),
            ProbeError::PhysicalRamUnavailable(FileFault::MissingField("MemTotal"))
        );
        tree.file("/proc/meminfo", "MemTotal: 0 kB\n");
        assert_eq!(
            tree.probe(None).read().expect_err("zero MemTotal"),
            ProbeError::PhysicalRamUnavailable(FileFault::Garbled("MemTotal"))
        );
    }

    #[test]
    fn names_match_serde() {
        for s in [
            LimitSource::CgroupV2Max,
            LimitSource::CgroupV2High,
            LimitSource::CgroupV1,
            LimitSource::Configured,
            LimitSource::PhysicalRam,
        ] {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
        for s in [
            UsageSource::CgroupV2WorkingSet,
            UsageSource::CgroupV1WorkingSet,
            UsageSource::ProcessRss,
        ] {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
        for s in [CgroupVersion::V1, CgroupVersion::V2, CgroupVersion::None] {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
    }

    #[test]
    fn sources_compose_behind_pointers() {
        let tree = FakeTree::new("dyn");
        let boxed: Box<dyn MemorySource> = Box::new(RootedFs::new(&tree.root));
        let r = MemoryProbe::with_source(boxed, None)
            .read()
            .expect("reading");
        assert_eq!(r.rss_bytes, RSS);
        let shared = Arc::new(RootedFs::new(&tree.root));
        let r = MemoryProbe::with_source(&*shared, None)
            .read()
            .expect("reading");
        assert_eq!(r.physical_ram_bytes, RAM);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn real_machine_reading_is_sane() {
        let r = MemoryProbe::new(None)
            .read()
            .expect("a Linux machine has /proc");
        assert!(r.physical_ram_bytes > 0, "{r:?}");
        assert!(r.rss_bytes > 0, "{r:?}");
        assert!(r.usage_bytes > 0, "{r:?}");
        assert!(
            r.limit_bytes > 0 && r.limit_bytes <= r.physical_ram_bytes,
            "{r:?}"
        );
        // This test binary itself is resident, so its RSS is at least a megabyte.
        assert!(r.rss_bytes >= MIB, "{r:?}");
        let configured = MemoryProbe::new(Some(r.limit_bytes / 2))
            .read()
            .expect("reading");
        assert_eq!(
            configured.limit_source,
            LimitSource::Configured,
            "{configured:?}"
        );
        assert_eq!(configured.limit_bytes, r.limit_bytes / 2);
    }
}
