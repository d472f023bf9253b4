#!/usr/bin/env python3
"""Renders BENCHMARKS.md from the result files the three benchmark harnesses write.

Usage: python3 benches/render.py [--results DIR] [--out FILE]

Reads target/bench-results/{rust,node,python}.json (the shape is in benches/README.md), computes
every ratio from the medians in those files, marks each target met or missed, and rewrites the
output file whole. Nothing in BENCHMARKS.md is typed by hand: change a harness, not the tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

LANGUAGES = [("rust", "Rust"), ("node", "Node.js"), ("python", "Python")]
SCENARIO_ORDER = [
    "breaker_closed",
    "breaker_open",
    "breaker_10pct",
    "pool_single",
    "pool_contended",
    "deadline",
]


def fmt_value(v: float, unit: str) -> str:
    if unit == "ops/s":
        return f"{v:,.0f}"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r: Optional[float]) -> str:
    return "—" if r is None else f"{r:.2f}x"


def seawall_value(scenario: Dict[str, Any], target: Dict[str, Any]) -> Optional[float]:
    if "seawall" in target:
        return float(target["seawall"])
    for r in scenario["results"]:
        if r["role"] == "seawall":
            return float(r["value"])
    return None


def peer_value(scenario: Dict[str, Any], name: str) -> Optional[float]:
    for r in scenario["results"]:
        if r["name"] == name:
            return float(r["value"])
    return None


def judge(scenario: Dict[str, Any], target: Dict[str, Any]) -> tuple[Optional[float], bool]:
    """The measured ratio seawall / peer, and whether the target is met."""
    mine = seawall_value(scenario, target)
    theirs = peer_value(scenario, target["peer"])
    if mine is None or theirs is None or theirs == 0:
        return None, False
    ratio = mine / theirs
    if "max_ratio" in target:
        return ratio, ratio <= float(target["max_ratio"])
    return ratio, ratio >= float(target["min_ratio"])


def render_language(key: str, title: str, doc: Dict[str, Any], out: List[str]) -> List[tuple]:
    verdicts = []
    out.append(f"## {title}\n")
    out.append(f"Command: `{doc.get('command', '?')}` · runtime: {doc.get('runtime', '?')}\n")
    scenarios = sorted(
        doc["scenarios"],
        key=lambda s: (SCENARIO_ORDER.index(s["id"]) if s["id"] in SCENARIO_ORDER else 99, s["id"]),
    )
    for s in scenarios:
        unit = s["unit"]
        out.append(f"### {s['title']} (`{s['id']}`)\n")
        baseline = next((r for r in s["results"] if r["role"] == "baseline"), None)
        seawall = [r for r in s["results"] if r["role"] == "seawall"]
        out.append(f"| case | {unit} (median) | vs plain call | seawall vs it |")
        out.append("|---|---:|---:|---:|")
        for r in s["results"]:
            name = r["name"] + (f" {r['version']}" if r.get("version") else "")
            if r["role"] == "seawall":
                name = f"**{name}**"
            vs_base = None
            if baseline is not None and r is not baseline and float(baseline["value"]) > 0:
                vs_base = float(r["value"]) / float(baseline["value"])
            vs_it = None
            if r["role"] == "peer" and len(seawall) == 1 and float(r["value"]) > 0:
                vs_it = float(seawall[0]["value"]) / float(r["value"])
            out.append(
                f"| {name} | {fmt_value(float(r['value']), unit)} | {fmt_ratio(vs_base)} | {fmt_ratio(vs_it)} |"
            )
        out.append("")
        for c in s.get("checks", []):
            out.append(f"- check: {c['what']}: {'ok' if c['ok'] else '**FAILED**'}")
        mem = s.get("memory")
        if mem:
            out.append(
                f"- memory: {mem.get('what', 'retained per call')}: "
                f"{mem['bytes_per_call']:.3f} bytes per call over {mem.get('calls', 0):,} calls"
            )
        for t in s.get("targets", []):
            ratio, met = judge(s, t)
            verdicts.append((title, s["id"], t["what"], ratio, met))
            out.append(f"- target: {t['what']}: measured {fmt_ratio(ratio)}: {'met' if met else '**missed**'}")
        out.append("")
    return verdicts


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
        f"load average at render time {load[0]:.2f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="target/bench-results")
    ap.add_argument("--out", default="BENCHMARKS.md")
    args = ap.parse_args()
    docs = {}
    for key, _ in LANGUAGES:
        path = Path(args.results) / f"{key}.json"
        if not path.exists():
            print(f"missing {path}: run the {key} benchmark first (benches/run-all.sh)", file=sys.stderr)
            return 1
        docs[key] = json.loads(path.read_text())
    out: List[str] = []
    body: List[str] = []
    verdicts: List[tuple] = []
    for key, title in LANGUAGES:
        verdicts += render_language(key, title, docs[key], body)
    failed_checks = [
        (title, s["id"], c["what"])
        for key, title in LANGUAGES
        for s in docs[key]["scenarios"]
        for c in s.get("checks", [])
        if not c["ok"]
    ]
    out.append("# Benchmarks\n")
    out.append(
        "Generated by `bash benches/run-all.sh` (which runs the three harnesses, then "
        "`python3 benches/render.py`); do not edit by hand. "
        f"Rendered {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {machine()}.\n"
    )
    out.append(
        "This machine is shared and noisy, so absolute times drift between runs; what counts are "
        "the ratios, each measured within one process, cases interleaved, median of several "
        "repetitions. \"vs plain call\" is the case's time over the unwrapped call's; \"seawall vs "
        "it\" is Seawall's time over the peer's (below 1 means Seawall is faster; for ops/s, above "
        "1 means Seawall does more).\n"
    )
    met = sum(1 for v in verdicts if v[4])
    out.append(f"## Targets: {met} of {len(verdicts)} met\n")
    out.append("| language | scenario | target | measured | |")
    out.append("|---|---|---|---:|---|")
    for lang, sid, what, ratio, ok in verdicts:
        out.append(f"| {lang} | `{sid}` | {what} | {fmt_ratio(ratio)} | {'met' if ok else '**missed**'} |")
    out.append("")
    if failed_checks:
        out.append("**Checks that failed:** " + "; ".join(f"{l} `{s}`: {w}" for l, s, w in failed_checks) + "\n")
    out += body
    Path(args.out).write_text("\n".join(out).rstrip() + "\n")
    print(f"wrote {args.out}: {met} of {len(verdicts)} targets met, {len(failed_checks)} failed checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
