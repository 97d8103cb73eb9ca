"""Output of a run: the table (stdout), `results.json`, and `latency.png` (latency distributions)."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from bench.common import CpuProfile, Row


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = m.group(1).strip() if m else ""
    except OSError:
        pass
    mem_kib = 0
    try:
        m = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        mem_kib = int(m.group(1)) if m else 0
    except OSError:
        pass
    pg = ""
    try:
        from tests.support.pgserver import _find_bindir

        pg = subprocess.run(
            [str(_find_bindir() / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except (OSError, RuntimeError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "postgres": pg,
        "kernel": platform.release(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "ms" and value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _extra(row: Row) -> str:
    parts = []
    for key, value in row.extra.items():
        shown = value
        if isinstance(value, dict):
            shown = ",".join(f"{k}:{v}" for k, v in value.items())
        elif isinstance(value, list):
            shown = ",".join(str(v) for v in value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def table(rows: list[Row]) -> str:
    """A Markdown table (readable on a terminal, pasted as is into the README)."""
    header = ["#", "case", "n", "iters", "unit", "p50", "p95", "p99", "max", "target", "result", "details"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        stats = row.stats()
        if row.error:
            result = "ERROR"
        elif row.met is None:
            result = "computed" if row.computed else ""
        else:
            result = "met" if row.met else "MISSED"
        cells = [
            row.bench,
            row.case,
            "" if row.n is None else str(row.n),
            "-" if row.computed else str(len(row.samples)),
            row.unit,
            *(_fmt(stats[k], row.unit) for k in ("p50", "p95", "p99", "max")),
            row.target or "",
            result,
            (row.error or _extra(row)) + (f" ({row.note})" if row.note else ""),
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def profiles_text(profiles: list[CpuProfile]) -> str:
    out: list[str] = []
    for prof in profiles:
        out.append(f"### {prof.title}")
        out.append("```")
        out.extend(prof.lines)
        out.append("```")
    return "\n".join(out)


def write_json(
    path: Path, rows: list[Row], profiles: list[CpuProfile], info: dict[str, Any], extra: dict[str, Any]
) -> None:
    doc = {
        "machine": info,
        **extra,
        "rows": [r.to_json() for r in rows],
        "profiles": [{"title": p.title, "lines": p.lines} for p in profiles],
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def plot(path: Path, rows: list[Row]) -> bool:
    """Box plots of the latency samples (log scale), one panel per group. False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = [
        ("DB propagation and end to end (ms)", ("propagation", "end-to-end", "convergence")),
        ("No-op reconcile and apply throughput (ms)", ("noop", "throughput", "apply-floor")),
        ("drift.compute (ms) and start -> Ready (ms)", ("drift", "footprint")),
    ]
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 4 + 3 * len(groups)))
    for ax, (title, benches) in zip(axes, groups, strict=True):
        chosen = [r for r in rows if r.bench in benches and r.samples and r.unit == "ms" and not r.error]
        if not chosen:
            ax.set_visible(False)
            continue
        labels = [
            f"{r.bench.split('-', 1)[0]}: {r.case[:44]}" + ("" if r.n is None else f" n={r.n}")
            for r in chosen
        ]
        ax.boxplot([r.samples for r in chosen], vert=False, whis=(0, 100))
        ax.set_yticks(range(1, len(chosen) + 1), labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
