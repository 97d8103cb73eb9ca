"""Benchmark `footprint`: operator footprint. Start-up time to the first Ready=True, and resident memory (RSS).

- Start -> Ready: a HubSettings (examples/full.yaml, with `bootstrap`) exists before the operator starts, in a
  namespace of its own with a fresh database; time from `Popen` to the first `Ready=True` seen by polling the
  API server every 20 ms (includes interpreter start, imports, kopf start-up, the resume reconcile and the
  status patch).
- RSS: `VmRSS` (and `VmHWM`, the peak) of the operator process from /proc/PID/status, idle after start, then
  with N Pod objects labelled app.kubernetes.io/name=scion-hub (30 env vars each) created through the API
  (thread pool) and indexed (the `hubsettings_indexed_pods` gauge, set by the drift timer, reaches N). The API
  server has no scheduler, so the pods stay Pending: they are indexed, and skipped by the drift comparison.
- Baseline in the same run: RSS of a bare interpreter that only imports the operator's modules.
- A realistic Hub namespace (`realistic_namespace`): 10 Hub pods beside 5,000 other pods (Scion runs its
  agents as pods). The operator's pod watch is filtered by the API server (`--pod-selector`), so the other
  pods should cost it nothing: operator RSS after they are created vs its idle RSS in the same run (target
  within 10 MiB), operator CPU-seconds (utime+stime from /proc) while they are created vs the same process's
  CPU over an idle window as long (target < 0.5 s), and start -> Ready with them present vs start -> Ready
  in an empty namespace (same run; target 1.5 s).
- Start rows also give the operator's CPU-seconds at the moment Ready=True is seen (utime+stime from /proc): on a
  loaded machine the wall time moves with the load, the CPU much less. The operator's modules are compiled to
  bytecode before the first start, as the image build does (hack/slim-venv.sh): with PYTHONDONTWRITEBYTECODE set
  (as on the CI and development machines) every start would compile them again from source.

Over 400 lines: the memory, CPU and start-time measurements share one operator process set-up and report.
"""

from __future__ import annotations

import asyncio
import compileall
import json
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from tests.support.hubdb import SCION_DDL
from tests.support.kubeapi import create, hubsettings, make_namespace, put_secret
from tests.support.kubeenv import KubeTestEnv
from tests.support.pgserver import PgServer

import hubsettings_operator
from bench.common import Row, Sizes, create_database
from bench.drift_scale import env_template
from bench.kube import BenchOperator, ready, wait
from bench.propagation import example_spec
from hubsettings_operator.runtime.handlers import _slim_pod as slim_pod

BENCH = "footprint"
TARGET_MIB = 150.0
IDLE_TARGET_MIB = 90.0
START_TARGET_MS = 1500.0  # start -> first Ready, one HubSettings in an empty namespace (issue 24)
START_WITH_PODS_TARGET_MS = 3000.0  # the same with 1,000 Hub pods and 2 HubSettings in the namespace
DRIFT_ARGS = ["--drift-seconds", "2"]


def _cr_spec(secret: str) -> dict[str, Any]:
    spec = example_spec("footprint", secret=secret)
    spec["bootstrap"] = {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "scion-hub"}},
        "container": "hub",
        "expected": {"server.log_level": "info"},
    }
    return spec


def _new_cr(pg: PgServer, api: k8s.ApiClient, ns: str, name: str) -> None:
    dsn = create_database(pg, SCION_DDL)
    secret = f"db-{name}"
    put_secret(api, ns, secret, {"url": dsn})
    create(api, ns, hubsettings(name, _cr_spec(secret)))


def _start_to_ready(op: BenchOperator, api: k8s.ApiClient, ns: str, name: str) -> tuple[float, float, float]:
    """Start `op`; -> (ms to /healthz, ms to Ready=True on `name`, operator CPU-seconds at that moment)."""
    t0 = time.monotonic()
    op.start(wait_ready=False)
    holder: dict[str, float] = {}

    def healthy() -> None:
        op.wait_healthy(60)
        holder["at"] = time.monotonic()

    probe = threading.Thread(target=healthy, daemon=True)
    probe.start()
    ready_at = wait(lambda: ready(api, ns, name), 90.0, 0.02, f"Ready=True on {ns}/{name}")
    cpu = cpu_seconds(op.pid)
    probe.join(60)
    return (holder.get("at", ready_at) - t0) * 1000, (ready_at - t0) * 1000, cpu


def _mib(kib: int) -> float:
    return kib / 1024


def _create_in_parallel(
    env: KubeTestEnv, ns: str, count: int, body: Callable[[int], dict[str, Any]]
) -> float:
    """Create pods `body(0)` .. `body(count - 1)` through the API with a thread pool; -> seconds taken."""
    local = threading.local()

    def core() -> k8s.CoreV1Api:
        # One API client per worker thread, made on its first pod (the threads do not share one client).
        if not hasattr(local, "api"):
            local.api = k8s.CoreV1Api(env.admin_client())
        api: k8s.CoreV1Api = local.api
        return api

    def one(i: int) -> None:
        core().create_namespaced_pod(ns, body(i))  # type: ignore[arg-type]

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - t0


def create_pods(env: KubeTestEnv, ns: str, count: int) -> float:
    """Create `count` Hub pods through the API with a thread pool; -> seconds taken."""
    env_vars = env_template(30)

    def body(i: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"hub-{i:05d}", "labels": {"app.kubernetes.io/name": "scion-hub"}},
            "spec": {"containers": [{"name": "hub", "image": "scion-hub:bench", "env": env_vars}]},
        }

    return _create_in_parallel(env, ns, count, body)


def index_estimate_mib(count: int) -> float:
    """Memory of `count` pods as the operator's index holds them (`handlers._slim_pod`), measured here with
    tracemalloc on pod bodies shaped like the API server's (defaults filled in, managedFields dropped)."""
    env_vars = env_template(30)
    bodies = [
        {
            "metadata": {
                "name": f"hub-{i:05d}",
                "namespace": "bench",
                "uid": f"00000000-0000-0000-0000-{i:012d}",
                "labels": {"app.kubernetes.io/name": "scion-hub"},
            },
            "spec": {
                "containers": [
                    {
                        "name": "hub",
                        "image": "scion-hub:bench",
                        "env": [dict(e) for e in env_vars],
                        "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "resources": {},
                    }
                ],
                "volumes": [],
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        for i in range(count)
    ]
    text = json.dumps(bodies)
    del bodies
    tracemalloc.start()
    # Parsed as the watch stream's JSON parser would, slimmed, then the full bodies dropped: what stays.
    parsed = json.loads(text)
    index = [slim_pod(b) for b in parsed]
    del parsed
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del index
    return current / 2**20


def _indexed(op: BenchOperator, count: int) -> bool:
    try:
        value = op.metric("hubsettings_indexed_pods")
    except OSError:
        return False
    return value is not None and value >= count


def imports_rss_kib() -> int:
    code = (
        "import kopf, kubernetes, psycopg, psycopg_pool, pydantic, prometheus_client\n"
        "import hubsettings_operator.runtime.runner, hubsettings_operator.cli\n"
        "print(open('/proc/self/status').read())"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    m = re.search(r"^VmRSS:\s+(\d+) kB", out, re.MULTILINE)
    return int(m.group(1)) if m else 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_labelled_pods(env: KubeTestEnv, ns: str, count: int, prefix: str, labels: dict[str, str]) -> float:
    """Create `count` small pods through the API with a thread pool; -> seconds taken."""

    def body(i: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{prefix}-{i:05d}", "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "agent",
                        "image": "scion-agent:bench",
                        "env": [{"name": "TASK", "value": str(i)}],
                    }
                ]
            },
        }

    return _create_in_parallel(env, ns, count, body)


def realistic_namespace(
    pg: PgServer, env: KubeTestEnv, api: k8s.ApiClient, sizes: Sizes, log_dir: Path, empty_start_ms: float
) -> list[Row]:
    """10 Hub pods + 5,000 other pods in the watched namespace (see the module docstring)."""
    rows: list[Row] = []
    hubs, others = sizes.footprint_hub_pods, sizes.footprint_other_pods
    ns = make_namespace(api, "bench-mixed")
    _new_cr(pg, api, ns, "hub")
    create_labelled_pods(env, ns, hubs, "hub", {"app.kubernetes.io/name": "scion-hub"})
    op = BenchOperator(env.kubeconfig, [ns], log_dir, name="operator-mixed", extra_args=DRIFT_ARGS)
    try:
        _start_to_ready(op, api, ns, "hub")
        wait(lambda: _indexed(op, hubs), 60.0, 0.25, f"{hubs} Hub pods indexed")
        time.sleep(3)
        idle = op.rss_kib()
        idle_cpu0 = cpu_seconds(op.pid)
        t_idle = time.monotonic()
        created_s = create_labelled_pods(env, ns, others, "agent", {"app": "scion-agent"})
        # Trailing watch events (if any reached the operator) are processed within a few seconds.
        time.sleep(3)
        busy_cpu = cpu_seconds(op.pid) - idle_cpu0
        window = time.monotonic() - t_idle
        # Baseline: the same process, idle, over a window as long (timers, peering, the memory trim).
        base0 = cpu_seconds(op.pid)
        time.sleep(window if not sizes.smoke else 1.0)
        idle_cpu = (cpu_seconds(op.pid) - base0) * (window / (window if not sizes.smoke else 1.0))
        after = op.rss_kib()
        indexed = op.metric("hubsettings_indexed_pods")
        delta = _mib(after["VmRSS"] - idle["VmRSS"])
        row = Row(
            BENCH,
            f"mixed namespace: operator RSS after {others} other pods created, minus its idle RSS",
            others,
            "MiB",
            [delta],
            extra={
                "idle_rss_mib": round(_mib(idle["VmRSS"]), 1),
                "rss_mib": round(_mib(after["VmRSS"]), 1),
                "hub_pods": hubs,
                "indexed_pods": indexed,
                "pods_create_s": round(created_s, 1),
            },
            target="< 10 MiB",
        )
        row.met = delta < 10.0
        rows.append(row)
        row = Row(
            BENCH,
            f"mixed namespace: operator CPU-seconds while {others} other pods are created",
            others,
            "s",
            [busy_cpu],
            extra={"window_s": round(window, 1), "baseline_idle_cpu_s_same_window": round(idle_cpu, 3)},
            target="< 0.5 s",
        )
        row.met = busy_cpu < 0.5
        rows.append(row)
        op.stop()
        _new_cr(pg, api, ns, "hub2")
        op = BenchOperator(
            env.kubeconfig, [ns], log_dir, name="operator-mixed-restart", extra_args=DRIFT_ARGS
        )
        _h, start_ms, _cpu = _start_to_ready(op, api, ns, "hub2")
        row = Row(
            BENCH,
            f"mixed namespace: operator start -> Ready=True ({hubs} Hub + {others} other pods)",
            hubs + others,
            "ms",
            [start_ms],
            extra={"baseline_empty_namespace_ms": round(empty_start_ms, 1)},
            target="< 1.5 s",
        )
        row.met = start_ms < 1500
        rows.append(row)
    finally:
        op.stop()
    return rows


def run(pg: PgServer, env: KubeTestEnv, api: k8s.ApiClient, sizes: Sizes, log_dir: Path) -> list[Row]:
    rows: list[Row] = []
    healthz: list[float] = []
    start_ready: list[float] = []
    start_cpu: list[float] = []
    compileall.compile_dir(Path(hubsettings_operator.__file__).parent, quiet=1)  # see the docstring
    op: BenchOperator | None = None
    ns = ""
    try:
        for i in range(sizes.startup_iterations):
            if op is not None:
                op.stop()
            ns = make_namespace(api, "bench-fp")
            _new_cr(pg, api, ns, "hub")
            op = BenchOperator(
                env.kubeconfig, [ns], log_dir, name=f"operator-start-{i}", extra_args=DRIFT_ARGS
            )
            h, r, cpu = _start_to_ready(op, api, ns, "hub")
            healthz.append(h)
            start_ready.append(r)
            start_cpu.append(cpu)
        assert op is not None
        row = Row(
            BENCH,
            "operator start -> first Ready=True (1 existing CR)",
            1,
            "ms",
            start_ready,
            extra={
                "healthz_p50_ms": round(sorted(healthz)[len(healthz) // 2], 1),
                "cpu_s_at_ready_p50": round(sorted(start_cpu)[len(start_cpu) // 2], 2),
            },
            target=f"p50 < {START_TARGET_MS / 1000:g} s",
            note="fresh namespace, database and CR per start",
        )
        row.met = row.stats()["p50"] < START_TARGET_MS
        rows.append(row)
        time.sleep(3)
        idle = op.rss_kib()
        base = imports_rss_kib()
        rows.append(
            Row(
                BENCH,
                "baseline: RSS of a bare interpreter importing the operator's modules",
                None,
                "MiB",
                [_mib(base)],
            )
        )
        row = Row(
            BENCH,
            "operator RSS, idle after start (1 CR, 0 pods)",
            0,
            "MiB",
            [_mib(idle["VmRSS"])],
            extra={"VmHWM_mib": round(_mib(idle["VmHWM"]), 1)},
            target=f"< {IDLE_TARGET_MIB:g} MiB",
        )
        row.met = _mib(idle["VmRSS"]) < IDLE_TARGET_MIB
        rows.append(row)
        count = sizes.footprint_pods
        created_s = create_pods(env, ns, count)
        t0 = time.monotonic()
        wait(lambda: _indexed(op, count), 180.0, 0.25, f"{count} pods indexed")
        index_s = time.monotonic() - t0
        time.sleep(5)  # two drift periods over the full index
        live = op.rss_kib()
        row = Row(
            BENCH,
            f"operator RSS with {count} indexed pods (created while running)",
            count,
            "MiB",
            [_mib(live["VmRSS"])],
            extra={
                "VmHWM_mib": round(_mib(live["VmHWM"]), 1),
                "delta_vs_idle_mib": round(_mib(live["VmRSS"] - idle["VmRSS"]), 1),
                "pods_create_s": round(created_s, 1),
                "index_lag_after_create_s": round(index_s, 1),
                "index_values_estimate_mib": round(index_estimate_mib(count), 1),
            },
            target=f"< {TARGET_MIB:g} MiB",
        )
        row.met = _mib(live["VmRSS"]) < TARGET_MIB
        rows.append(row)
        # Steady state: the operator hands freed heap back to the OS every HUBSETTINGS_TRIM_SECONDS (30 s
        # by default; gc + malloc_trim), so the burst of parsing 1,000 pod events does not stay resident.
        time.sleep(35 if count >= 100 else 1)  # smoke sizes only check the row's shape
        steady = op.rss_kib()
        row = Row(
            BENCH,
            f"operator RSS with {count} indexed pods, steady state (after the 30 s memory trim)",
            count,
            "MiB",
            [_mib(steady["VmRSS"])],
            extra={"delta_vs_idle_mib": round(_mib(steady["VmRSS"] - idle["VmRSS"]), 1)},
            target=f"< {TARGET_MIB:g} MiB",
        )
        row.met = _mib(steady["VmRSS"]) < TARGET_MIB
        rows.append(row)
        # Restart with the pods already there: start-up lists them, and a new CR must become Ready.
        op.stop()
        _new_cr(pg, api, ns, "hub2")
        op = BenchOperator(env.kubeconfig, [ns], log_dir, name="operator-restart-pods", extra_args=DRIFT_ARGS)
        h, r, cpu = _start_to_ready(op, api, ns, "hub2")
        row = Row(
            BENCH,
            f"operator start -> first Ready=True ({count} pods, 2 CRs in the namespace)",
            count,
            "ms",
            [r],
            extra={
                "healthz_ms": round(h, 1),
                "cpu_s_at_ready": round(cpu, 2),
                "baseline_empty_namespace_p50_ms": round(sorted(start_ready)[len(start_ready) // 2], 1),
            },
            target=f"< {START_WITH_PODS_TARGET_MS / 1000:g} s",
        )
        row.met = r < START_WITH_PODS_TARGET_MS
        rows.append(row)
        wait(lambda: _indexed(op, count), 180.0, 0.25, f"{count} pods indexed after restart")
        time.sleep(5)
        cold = op.rss_kib()
        row = Row(
            BENCH,
            f"operator RSS with {count} indexed pods (listed at start)",
            count,
            "MiB",
            [_mib(cold["VmRSS"])],
            extra={"VmHWM_mib": round(_mib(cold["VmHWM"]), 1)},
            target=f"< {TARGET_MIB:g} MiB",
        )
        row.met = _mib(cold["VmRSS"]) < TARGET_MIB
        rows.append(row)
    finally:
        if op is not None:
            op.stop()
    rows.extend(realistic_namespace(pg, env, api, sizes, log_dir, sorted(start_ready)[len(start_ready) // 2]))
    return rows


async def run_async(
    pg: PgServer, env: KubeTestEnv, api: k8s.ApiClient, sizes: Sizes, log_dir: Path
) -> list[Row]:
    """`run` in a worker thread (it only makes blocking calls)."""
    return await asyncio.to_thread(run, pg, env, api, sizes, log_dir)
