//! Turns the Rust bench results into `target/bench-results/rust.json` (schema: benches/README.md).
//!
//! The whole Rust sequence, run from the repository root (about 3-4 minutes on 2 cores):
//!
//! cargo bench --bench peers && cargo bench --bench memory && cargo bench --bench report
//!
//! `peers` writes criterion's estimates, one per round
//! (`target/criterion/<scenario>/<bench>/r<round>/new/estimates.json`), and
//! `target/bench-results/rust-checks.json`; `memory` writes
//! `target/bench-results/rust-memory.json`. This program takes for each bench the median of its
//! rounds' medians (ns per call; for the contended pool converted to ops/s), reads the checks and
//! the memory numbers, adds the Rust targets and the peers' versions (from Cargo.lock),
//! and writes `rust.json`. It exits non-zero when a result, a check or a memory number is
//! missing, when an estimate is older than the last `peers` run (a stale result), or when a check
//! failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

const COMMAND: &str =
    "cargo bench --bench peers && cargo bench --bench memory && cargo bench --bench report";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// Rounds `benches/peers.rs` runs each bench for (its `ROUNDS`).
const ROUNDS: usize = 5;

/// The median over the rounds of criterion's median for one bench, in ns per iteration, with
/// the per-round medians.
fn median_ns(group: &str, bench: &str) -> Result<(f64, Vec<f64>), String> {
    let started = modified(
        &target_dir()
            .join("bench-results")
            .join("rust-peers-started"),
    )?;
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let path = target_dir()
            .join("criterion")
            .join(group)
            .join(bench)
            .join(format!("r{round}"))
            .join("new")
            .join("estimates.json");
        if modified(&path)? < started {
            return Err(format!(
                "{} is older than the last `cargo bench --bench peers` run (stale)",
                path.display()
            ));
        }
        rounds.push(
            read_json(&path)?["median"]["point_estimate"]
                .as_f64()
                .ok_or_else(|| format!("no median in {}", path.display()))?,
        );
    }
    let mut sorted = rounds.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Ok((median, rounds))
}

fn modified(path: &Path) -> Result<std::time::SystemTime, String> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))
}

/// The version Cargo.lock resolved for `name`.
fn locked_version(name: &str) -> Result<String, String> {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"")
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_string());
        }
    }
    Err(format!("{name} is not in Cargo.lock"))
}

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "rustc (unknown)".into())
}

/// One result row: (display name, role, criterion bench id, crate whose version to show).
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// One target: (what, which seawall row, peer row name, bound).
type Target = (&'static str, &'static str, &'static str, f64);

struct Scenario {
    id: &'static str,
    title: &'static str,
    ops_per_sec: bool,
    rows: &'static [Row],
    targets: &'static [Target],
}

/// The rows of `breaker_open` and `breaker_10pct`.
const BREAKER_ROWS: &[Row] = &[
    ("plain call", "baseline", "plain", None),
    ("seawall", "seawall", "seawall", None),
    ("recloser", "peer", "recloser", Some("recloser")),
    ("failsafe", "peer", "failsafe", Some("failsafe")),
];

/// The rows of `pool_single` and `pool_contended`.
const POOL_ROWS: &[Row] = &[
    ("plain call", "baseline", "plain", None),
    ("seawall", "seawall", "seawall", None),
    ("deadpool", "peer", "deadpool", Some("deadpool")),
    ("bb8", "peer", "bb8", Some("bb8")),
];

const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "breaker_closed",
        title: "breaker closed path, op succeeds at once (count and time windows)",
        ops_per_sec: false,
        rows: &[
            ("plain call", "baseline", "plain", None),
            ("seawall (count window)", "seawall", "seawall_count", None),
            ("seawall (time window)", "seawall", "seawall_time", None),
            ("recloser", "peer", "recloser", Some("recloser")),
            (
                "failsafe (default policy)",
                "peer",
                "failsafe",
                Some("failsafe"),
            ),
            (
                "failsafe (success rate over time window)",
                "peer",
                "failsafe_success_rate",
                Some("failsafe"),
            ),
        ],
        targets: &[
            (
                "count window: at most 0.7x recloser",
                "seawall (count window)",
                "recloser",
                0.7,
            ),
            (
                "count window: at most 0.5x failsafe",
                "seawall (count window)",
                "failsafe (default policy)",
                0.5,
            ),
            (
                "time window: at most 0.3x failsafe's success-rate-over-time-window breaker",
                "seawall (time window)",
                "failsafe (success rate over time window)",
                0.3,
            ),
        ],
    },
    Scenario {
        id: "breaker_open",
        title: "rejection while open (every call rejected)",
        ops_per_sec: false,
        rows: BREAKER_ROWS,
        targets: &[("at most 0.5x recloser", "seawall", "recloser", 0.5)],
    },
    Scenario {
        id: "breaker_10pct",
        title: "10 % failures, the breaker stays closed",
        ops_per_sec: false,
        rows: BREAKER_ROWS,
        targets: &[],
    },
    Scenario {
        id: "pool_single",
        title: "pool acquire + release with one task",
        ops_per_sec: false,
        rows: POOL_ROWS,
        targets: &[("at most 0.5x deadpool", "seawall", "deadpool", 0.5)],
    },
    Scenario {
        id: "pool_contended",
        title: "64 concurrent tasks on 8 connections, each yielding once while holding",
        ops_per_sec: true,
        rows: POOL_ROWS,
        targets: &[(
            "at least 1.5x deadpool's throughput",
            "seawall",
            "deadpool",
            1.5,
        )],
    },
    Scenario {
        id: "deadline",
        title: "budget-bounded call that does not time out (Budget::run vs tokio::time::timeout)",
        ops_per_sec: false,
        rows: &[
            ("plain call", "baseline", "plain", None),
            ("seawall", "seawall", "seawall", None),
            (
                "tokio::time::timeout",
                "peer",
                "tokio_timeout",
                Some("tokio"),
            ),
        ],
        targets: &[(
            "at most 1.1x tokio::time::timeout",
            "seawall",
            "tokio::time::timeout",
            1.1,
        )],
    },
];

fn build() -> Result<Value, String> {
    let results_dir = target_dir().join("bench-results");
    let checks = read_json(&results_dir.join("rust-checks.json"))?;
    let memory = read_json(&results_dir.join("rust-memory.json"))?;
    let mut scenarios = Vec::new();
    let mut summary = Vec::new();
    let mut failed_checks = Vec::new();
    for s in SCENARIOS {
        let mut results = Vec::new();
        let mut value_of = std::collections::HashMap::new();
        for &(name, role, bench, krate) in s.rows {
            let (ns, rounds) = median_ns(s.id, bench)?;
            let to_unit = |ns: f64| if s.ops_per_sec { 1e9 / ns } else { ns };
            let value = to_unit(ns);
            value_of.insert(name, value);
            let mut r = json!({
                "name": name,
                "role": role,
                "value": round(value),
                "rounds": rounds.iter().map(|&ns| round(to_unit(ns))).collect::<Vec<_>>(),
            });
            if let Some(k) = krate {
                r["version"] = json!(locked_version(k)?);
            }
            results.push(r);
        }
        let mut targets = Vec::new();
        for &(what, seawall, peer, bound) in s.targets {
            let sw = value_of[seawall];
            let p = value_of[peer];
            let ratio = sw / p;
            let met = if s.ops_per_sec {
                ratio >= bound
            } else {
                ratio <= bound
            };
            summary.push(format!(
                "{:15} {what:78} {ratio:6.3} {}",
                s.id,
                if met { "met" } else { "MISSED" }
            ));
            let mut t = json!({ "what": what, "seawall": round(sw), "peer": peer });
            t[if s.ops_per_sec {
                "min_ratio"
            } else {
                "max_ratio"
            }] = json!(bound);
            targets.push(t);
        }
        let scenario_checks: Vec<Value> = checks
            .as_array()
            .ok_or("rust-checks.json is not a list")?
            .iter()
            .filter(|c| c["scenario"] == s.id)
            .map(|c| json!({ "what": c["what"], "ok": c["ok"] }))
            .collect();
        if scenario_checks.is_empty() {
            return Err(format!(
                "no checks for {} (run `cargo bench --bench peers` first)",
                s.id
            ));
        }
        failed_checks.extend(
            scenario_checks
                .iter()
                .filter(|c| c["ok"] != json!(true))
                .map(|c| format!("{}: {}", s.id, c["what"])),
        );
        let cases = memory[s.id]
            .as_object()
            .ok_or_else(|| format!("no memory result for {} (run the memory bench)", s.id))?;
        let worst = cases
            .values()
            .filter_map(|v| v["bytes_per_call"].as_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        let calls = cases
            .values()
            .filter_map(|v| v["calls"].as_u64())
            .min()
            .unwrap_or(0);
        let names: Vec<&str> = cases.keys().map(String::as_str).collect();
        let memory = json!({
            "what": format!(
                "allocated minus freed bytes per call (counting global allocator; worst of: {})",
                names.join(", ")
            ),
            "bytes_per_call": worst,
            "calls": calls,
        });
        scenarios.push(json!({
            "id": s.id,
            "title": s.title,
            "unit": if s.ops_per_sec { "ops/s" } else { "ns/op" },
            "results": results,
            "checks": scenario_checks,
            "targets": targets,
            "memory": memory,
        }));
    }
    for line in &summary {
        println!("{line}");
    }
    if !failed_checks.is_empty() {
        return Err(format!("checks failed: {failed_checks:?}"));
    }
    Ok(json!({
        "language": "rust",
        "command": COMMAND,
        "runtime": rustc_version(),
        "scenarios": scenarios,
    }))
}

/// Three significant decimals are plenty for noisy timings.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn main() -> ExitCode {
    match build() {
        Ok(report) => {
            let path = target_dir().join("bench-results").join("rust.json");
            let text = serde_json::to_string_pretty(&report).expect("json");
            if let Err(e) = std::fs::write(&path, text + "\n") {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench report: {e}");
            ExitCode::FAILURE
        }
    }
}
