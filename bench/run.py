"""The benchmark driver: start PostgreSQL and the kube-apiserver tier, run the benchmarks, report.

A failing benchmark does not stop the others: it becomes an ERROR row and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubernetes import client as k8s
from tests.support.kubeenv import KubeTestEnv
from tests.support.pgserver import PgServer

from bench import (
    apply_floor,
    convergence,
    drift_scale,
    end_to_end,
    footprint,
    noop,
    propagation,
    scale,
    throughput,
)
from bench.common import CpuProfile, Row, Sizes
from bench.kube import install_crd
from bench.report import machine, plot, profiles_text, table, write_json

BENCH_DIR = Path(__file__).resolve().parent
# Benchmark names, in the order a full run takes them (`--only` takes a comma-separated subset).
ALL = (
    "propagation",
    "end-to-end",
    "noop",
    "drift",
    "footprint",
    "throughput",
    "convergence",
    "apply-floor",
    "scale",
)
NEEDS_KUBE = frozenset({"end-to-end", "footprint", "convergence", "scale"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="each benchmark once, tiny sizes (~1 minute)")
    parser.add_argument(
        "--only", default=",".join(ALL), help=f"comma-separated benchmark names ({', '.join(ALL)})"
    )
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR, help="where results.json/latency.png go")
    parser.add_argument(
        "--scale-namespaces",
        type=int,
        default=None,
        help="scale benchmark: namespaces of 10 HubSettings each (default 100: 1,000 objects)",
    )
    return parser.parse_args(argv)


async def _run_all(
    selected: list[str],
    sizes: Sizes,
    pg: PgServer,
    env: KubeTestEnv | None,
    api: k8s.ApiClient | None,
    log_dir: Path,
    rows: list[Row],
    profiles: list[CpuProfile],
    timings: dict[str, float],
) -> bool:
    ok = True
    steps: dict[str, Callable[[], Awaitable[list[Row]]]] = {
        "propagation": lambda: propagation.run(pg, sizes, profiles),
        "noop": lambda: noop.run(pg, sizes, profiles),
        "drift": lambda: asyncio.to_thread(drift_scale.run, sizes, profiles),
        "throughput": lambda: throughput.run(pg, sizes, profiles),
        "apply-floor": lambda: apply_floor.run(pg, sizes),
    }
    if env is not None and api is not None:
        steps["end-to-end"] = lambda: end_to_end.run(pg, env, api, sizes, log_dir, profiles)
        steps["footprint"] = lambda: footprint.run_async(pg, env, api, sizes, log_dir)
        steps["convergence"] = lambda: convergence.run_async(pg, env, api, sizes, log_dir)
        steps["scale"] = lambda: scale.run_async(pg, env, api, sizes, log_dir)
    for key in selected:
        started = time.monotonic()
        print(f"bench: running {key} ...", flush=True)
        try:
            rows.extend(await steps[key]())
        except Exception as exc:
            ok = False
            traceback.print_exc()
            rows.append(Row(key, "failed", None, "", error=f"{type(exc).__name__}: {exc}"[:300]))
        timings[key] = round(time.monotonic() - started, 1)
        print(f"bench: {key} done in {timings[key]:.1f} s", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in selected if s not in ALL]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(ALL)}")
    sizes = Sizes.smoke_sizes() if args.smoke else Sizes()
    if args.scale_namespaces is not None:
        sizes = dataclasses.replace(sizes, scale_namespaces=args.scale_namespaces)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    info = machine()
    started = time.monotonic()
    rows: list[Row] = []
    profiles: list[CpuProfile] = []
    timings: dict[str, float] = {}
    print(
        f"bench: {'smoke' if args.smoke else 'full'} run on {info['nproc']} CPU(s) {info['cpu']}, "
        f"{info['mem_gib']} GiB, load {info['loadavg']}; logs in {log_dir}",
        flush=True,
    )
    needs_kube = any(s in NEEDS_KUBE for s in selected)
    with PgServer() as pg:
        env = KubeTestEnv() if needs_kube else None
        api = None
        try:
            if env is not None:
                env.start()
                api = env.admin_client()
                install_crd(env, api)
            ok = asyncio.run(_run_all(selected, sizes, pg, env, api, log_dir, rows, profiles, timings))
        finally:
            if api is not None:
                api.close()  # type: ignore[no-untyped-call]
            if env is not None:
                env.stop()
    total = time.monotonic() - started
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = table(rows)
    print()
    print(text)
    if profiles:
        print()
        print(profiles_text(profiles))
    write_json(
        out_dir / "results.json",
        rows,
        profiles,
        info,
        {
            "mode": "smoke" if args.smoke else "full",
            "total_seconds": round(total, 1),
            "bench_seconds": timings,
        },
    )
    plotted = plot(out_dir / "latency.png", rows)
    print(
        f"\nbench: total {total:.1f} s; wrote {out_dir / 'results.json'}"
        + (f" and {out_dir / 'latency.png'}" if plotted else " (matplotlib missing: no plot)")
    )
    return 0 if ok else 1
