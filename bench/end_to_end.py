"""Benchmark `end-to-end`: end to end. Patch a HubSettings on the real API server -> the operator (subprocess) applies
-> N `SettingsCache` listeners hold the new value.

Latency = (latest `last_change_at` among the listeners) - (time just before the PATCH call). The PATCH runs in
a worker thread so the listeners' event loop is never blocked. Between iterations the benchmark waits for
`status.observedGeneration` to catch up, so iterations never overlap.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from kubernetes import client as k8s
from tests.support.hubdb import SCION_DDL
from tests.support.kubeapi import create, hubsettings, make_namespace, patch, put_secret
from tests.support.kubeenv import KubeTestEnv
from tests.support.pgserver import PgServer

from bench.common import CpuProfile, Row, Sizes, create_database, now
from bench.kube import BenchOperator, observed, profile_top, ready, wait
from bench.propagation import WAIT_S, example_spec, message_of
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.listener import SettingsCache

BENCH = "end-to-end"
TARGET_MS = 1000.0
NAME = "hub"


async def _iterations(
    api: k8s.ApiClient, ns: str, caches: list[SettingsCache], count: int, tag: str
) -> tuple[list[float], list[float], list[float]]:
    last: list[float] = []
    first: list[float] = []
    patch_ms: list[float] = []
    for i in range(count):
        message = f"{tag}-{i}"
        body = {"spec": {"settings": {"maintenance": {"maintenance_message": message}}}}
        started = now()
        await asyncio.to_thread(patch, api, ns, NAME, body)
        patched = now()
        await asyncio.gather(
            *(c.wait_for(lambda c, m=message: message_of(c) == m, WAIT_S) for c in caches)  # type: ignore[misc]
        )
        stamps = [c.last_change_at or patched for c in caches]
        last.append((max(stamps) - started) * 1000)
        first.append((min(stamps) - started) * 1000)
        patch_ms.append((patched - started) * 1000)
        await asyncio.to_thread(wait, lambda: observed(api, ns, NAME), 30.0, 0.05, "observedGeneration")
        await asyncio.sleep(0.1)
    return last, first, patch_ms


async def run(
    pg: PgServer,
    env: KubeTestEnv,
    api: k8s.ApiClient,
    sizes: Sizes,
    log_dir: Path,
    profiles: list[CpuProfile],
) -> list[Row]:
    ns = make_namespace(api, "bench-e2e")
    dsn = create_database(pg, SCION_DDL)
    put_secret(api, ns, "hub-db", {"url": dsn})
    create(api, ns, hubsettings(NAME, example_spec("initial", secret="hub-db")))
    caches = [
        SettingsCache(dsn, profile=Profile.SCION, poll_interval=3600.0) for _ in range(sizes.e2e_listeners)
    ]
    try:
        row = await _measure(env, api, ns, caches, sizes, log_dir)
        if not row.met and not sizes.smoke:
            profiles.append(await _profile_operator(env, api, ns, caches, sizes, log_dir))
    finally:
        await asyncio.gather(*(c.stop() for c in caches))
    return [row]


async def _measure(
    env: KubeTestEnv, api: k8s.ApiClient, ns: str, caches: list[SettingsCache], sizes: Sizes, log_dir: Path
) -> Row:
    op = BenchOperator(env.kubeconfig, [ns], log_dir, name="operator-e2e")
    op.start()
    try:
        await asyncio.to_thread(wait, lambda: ready(api, ns, NAME), 60.0, 0.1, "Ready=True")
        for i in range(0, len(caches), 20):
            await asyncio.gather(*(c.start(timeout=WAIT_S) for c in caches[i : i + 20]))
        await _iterations(api, ns, caches, 1, "warmup")
        apply_sum = op.metric("hubsettings_apply_duration_seconds_sum", namespace=ns) or 0.0
        apply_count = op.metric("hubsettings_apply_duration_seconds_count", namespace=ns) or 0.0
        last, first, patch_ms = await _iterations(api, ns, caches, sizes.e2e_iterations, "e2e")
        apply_sum = (op.metric("hubsettings_apply_duration_seconds_sum", namespace=ns) or 0.0) - apply_sum
        apply_count = (
            op.metric("hubsettings_apply_duration_seconds_count", namespace=ns) or 0.0
        ) - apply_count
    finally:
        op.stop()
    row = Row(
        BENCH,
        "PATCH spec -> operator apply -> listeners (scion)",
        len(caches),
        "ms",
        last,
        extra={
            "first_listener_p50_ms": round(sorted(first)[len(first) // 2], 1),
            "patch_call_p50_ms": round(sorted(patch_ms)[len(patch_ms) // 2], 1),
            "operator_apply_mean_ms": round(apply_sum / apply_count * 1000, 2) if apply_count else None,
            "operator_applies": int(apply_count),
        },
        target=f"p99 < {TARGET_MS:g} ms",
    )
    row.met = row.stats()["p99"] < TARGET_MS
    return row


async def _profile_operator(
    env: KubeTestEnv, api: k8s.ApiClient, ns: str, caches: list[SettingsCache], sizes: Sizes, log_dir: Path
) -> CpuProfile:
    """Where the time goes inside the operator: the same patches with the operator under cProfile."""
    out = Path(tempfile.mkdtemp(prefix="bench-prof-")) / "operator.prof"
    op = BenchOperator(env.kubeconfig, [ns], log_dir, name="operator-e2e-prof", cprofile_to=out)
    op.start()
    count = min(10, sizes.e2e_iterations)
    try:
        await asyncio.to_thread(wait, lambda: ready(api, ns, NAME), 60.0, 0.1, "Ready=True")
        await _iterations(api, ns, caches, count, "prof")
    finally:
        op.stop()
    lines = profile_top(out) if out.exists() else ["(no profile written)"]
    return CpuProfile(f"{BENCH}: operator process under cProfile (start + {count} patches)", lines)
