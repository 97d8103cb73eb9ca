"""Benchmark `convergence`: convergence confirmed. Time from a spec change (PATCH of the CR) to `Converged=True` on the
written revision, with 3 and 20 Hub replicas.

Each replica is a Hub stand-in process (`tests.support.hub_standin`, real LISTEN connection, the
Hub's admin endpoint) on its own loopback address, and a Pod object whose status.podIP is that address. The
operator runs with its production periods (convergence round every 30 s when converged; right after an apply
and every second while a replica is behind).

Baseline in the same run, same iteration: the time until every stand-in itself reports the new revision
(polled on each one's /_standin/state every 20 ms): what the replicas take; the difference is the operator's
detection and status write. Target (issue 24): p50 within 2x the baseline's p50. The load side: the
`GET /api/v1/admin/server-config` requests the stand-ins served per replica from the PATCH to Converged (the
operator's rounds for that change; the back-off after a commit allows at most 6 in its first second).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from tests.support.hubdb import SCION_DDL
from tests.support.kubeapi import (
    condition,
    create,
    get,
    hubsettings,
    make_namespace,
    patch,
    put_secret,
    running_pod,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.pgserver import PgServer, free_port
from tests.support.standin import StandInProcess, allow_loopback_clients

from bench.common import Row, Sizes, create_database, percentile
from bench.kube import BenchOperator, wait

BENCH = "convergence"
TARGET_RATIO = 2.0  # PATCH -> Converged p50 within this many times the replicas' own p50
MAX_ROUNDS_PER_CHANGE = 6  # convergence/schedule.py: rounds in the back-off's first second
TOKEN = "bench-admin-token-0123456789"


def _pod(api: k8s.ApiClient, ns: str, name: str, ip: str) -> None:
    running_pod(api, ns, name, {"app.kubernetes.io/name": "scion-hub"}, ip=ip, image="scion-hub:bench")


def _converged_on(api: k8s.ApiClient, ns: str, revision: int) -> bool:
    obj: dict[str, Any] = get(api, ns, "hub")
    conv = (obj.get("status") or {}).get("convergence") or {}
    return (
        condition(obj, "Converged").get("status") == "True"
        and conv.get("written", {}).get("maintenance") == revision
    )


def one_size(
    pg: PgServer, env: KubeTestEnv, api: k8s.ApiClient, replicas: int, iterations: int, log_dir: Path
) -> list[Row]:
    ns = make_namespace(api, f"bench-conv{replicas}")
    dsn = create_database(pg, SCION_DDL)
    port = free_port()
    work = log_dir / ns
    standins = [
        StandInProcess(dsn, f"127.0.1.{i + 1}", port, TOKEN, work, name=f"hub-{i}") for i in range(replicas)
    ]
    op: BenchOperator | None = None
    try:
        for s in standins:
            s.start()
        for i, s in enumerate(standins):
            _pod(api, ns, f"hub-{i}", s.ip)
        put_secret(api, ns, "db", {"url": dsn})
        put_secret(api, ns, "admin", {"token": TOKEN})
        spec = {
            "database": {"secretRef": {"name": "db"}, "profile": "scion"},
            "settings": {"maintenance": {"admin_mode": False, "maintenance_message": "0"}},
            "convergence": {"adminTokenSecretRef": {"name": "admin", "key": "token"}, "port": port},
        }
        op = BenchOperator(env.kubeconfig, [ns], log_dir, name=f"operator-conv{replicas}")
        op.start()
        create(api, ns, hubsettings("hub", spec))
        wait(lambda: _converged_on(api, ns, 1), 120.0, 0.1, "first convergence")
        operator_ms: list[float] = []
        replicas_ms: list[float] = []
        asked_per_replica: list[float] = []
        for it in range(iterations):
            revision = it + 2
            asked_before = sum(s.state()["requests"] for s in standins)
            t0 = time.monotonic()
            patch(
                api,
                ns,
                "hub",
                {"spec": {"settings": {"maintenance": {"maintenance_message": str(revision)}}}},
            )
            pending = set(range(replicas))
            loaded_at = t0
            while pending:
                for i in list(pending):
                    if standins[i].state()["revisions"].get("maintenance") == revision:
                        pending.discard(i)
                loaded_at = time.monotonic()
                if pending:
                    time.sleep(0.02)
                if loaded_at - t0 > 60:
                    raise TimeoutError(f"replicas {sorted(pending)} never loaded revision {revision}")
            replicas_ms.append((loaded_at - t0) * 1000)
            done = wait(
                lambda rev=revision: _converged_on(api, ns, rev), 120.0, 0.02, f"Converged on {revision}"
            )
            operator_ms.append((done - t0) * 1000)
            asked_per_replica.append((sum(s.state()["requests"] for s in standins) - asked_before) / replicas)
        ratio = percentile(operator_ms, 50) / percentile(replicas_ms, 50)
        return [
            Row(
                BENCH,
                f"PATCH -> Converged=True on the new revision, {replicas} replicas",
                replicas,
                "ms",
                operator_ms,
                extra={"ratio_to_baseline_p50": round(ratio, 2)},
                target=f"p50 <= {TARGET_RATIO:g}x baseline",
                met=ratio <= TARGET_RATIO,
                note=f"p50 {ratio:.2f}x the replicas' own p50",
            ),
            Row(
                BENCH,
                f"baseline: PATCH -> every stand-in reports the revision itself, {replicas} replicas",
                replicas,
                "ms",
                replicas_ms,
                note="same-run baseline for the row above",
            ),
            Row(
                BENCH,
                f"server-config GETs per replica, PATCH -> Converged, {replicas} replicas",
                replicas,
                "requests",
                asked_per_replica,
                target=f"<= {MAX_ROUNDS_PER_CHANGE}",
                met=max(asked_per_replica) <= MAX_ROUNDS_PER_CHANGE,
            ),
        ]
    finally:
        if op is not None:
            op.stop()
        for s in standins:
            s.stop()


def run(pg: PgServer, env: KubeTestEnv, api: k8s.ApiClient, sizes: Sizes, log_dir: Path) -> list[Row]:
    allow_loopback_clients(pg)
    rows: list[Row] = []
    for replicas in sizes.convergence_replicas:
        rows.extend(one_size(pg, env, api, replicas, sizes.convergence_iterations, log_dir))
    return rows


async def run_async(
    pg: PgServer, env: KubeTestEnv, api: k8s.ApiClient, sizes: Sizes, log_dir: Path
) -> list[Row]:
    """`run` in a worker thread (it only makes blocking calls)."""
    return await asyncio.to_thread(run, pg, env, api, sizes, log_dir)
