"""`python -m bench --smoke` runs every benchmark once (tiny sizes) against real PostgreSQL and kube-apiserver.

Only the shape of the output is checked (every benchmark has a row, no ERROR rows); never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.run import ALL as BENCHES

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_reports_every_benchmark(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["mode"] == "smoke"
    assert doc["machine"]["nproc"] >= 1
    rows = doc["rows"]
    assert {r["bench"] for r in rows} == set(BENCHES)
    assert not [r for r in rows if r["error"]]
    for row in rows:
        assert row["computed"] or row["iterations"] >= 1, row
        for key in ("p50", "p95", "p99", "max"):
            assert row[key] is not None, row
    # The targets that are counts, not timings, are part of the output too.
    noop = [r for r in rows if r["bench"] == "noop"]
    assert len(noop) == 3 and all("notifies" in r["extra"] for r in noop)
    assert all(r["extra"]["notifies_per_apply"] is not None for r in rows if r["bench"] == "throughput")
    # One table on stdout with a line per row, and the plot.
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == len(rows) + 1
    for bench in BENCHES:
        assert any(line.startswith(f"| {bench} |") for line in table), bench
    assert (tmp_path / "latency.png").stat().st_size > 0
