"""Benchmark `drift`: drift at scale. Pure `drift.compute` over 100 / 1,000 / 5,000 pods x 30 Layer 0 env vars.

Pods are synthetic (Running, one `hub` container, 30 literal env vars taken from the catalog's Layer 0 env
names, `database.url` among them so secret fingerprints are computed); 1% of the pods disagree on
`server.log_level`, so the report has mismatch and consistency items. `expected` lists three keys and
`requireConsistency` is on (the other 27 keys are voted across pods). Time: every run, reported as
percentiles (median = p50); the 5,000-pod row compares its time per pod with the 1,000-pod row's
(linear: within 1.25x); peak memory: one more run under `tracemalloc` (peak of the allocations made
by `compute`, inputs excluded).
"""

from __future__ import annotations

import functools
import time
import tracemalloc
from typing import Any

from bench.common import CpuProfile, Row, Sizes, profile_sync
from hubsettings_operator.drift import layer0 as drift
from hubsettings_operator.spec import catalog

BENCH = "drift"
TARGET_MS = 150.0  # issue 24: p50 over 1,000 pods
# "Linear to 5,000": the time per pod at 5,000 within this factor of the time per pod at 1,000 (same run).
LINEAR_SLACK = 1.25
EXPECTED = {"server.log_level": "info", "server.auth.mode": "oauth", "server.hub.port": 9810}


def _value(setting: catalog.Setting) -> str:
    if setting.key == "server.log_level":
        return "info"
    if setting.key == "server.auth.mode":
        return "oauth"
    if setting.default is not None:
        return drift.normalize(setting.default, setting.json_type)
    return {"boolean": "true", "integer": "1234", "array": "a,b"}.get(
        setting.json_type or "", f"{setting.key}-v"
    )


def env_template(count: int) -> list[dict[str, str]]:
    """`count` env vars: the three expected keys first, then other Layer 0 settings, one name each."""
    chosen: list[catalog.Setting] = []
    by_key = {s.key: s for s in catalog.settings() if s.layer == 0 and s.env}
    for key in [*EXPECTED, "server.database.url"]:
        chosen.append(by_key.pop(key))
    for setting in sorted(by_key.values(), key=lambda s: s.key):
        if len(chosen) >= count:
            break
        chosen.append(setting)
    return [{"name": s.env[0], "value": _value(s)} for s in chosen[:count]]


def make_pods(count: int, env_vars: int) -> list[dict[str, Any]]:
    template = env_template(env_vars)
    pods: list[dict[str, Any]] = []
    for i in range(count):
        env = [dict(e) for e in template]
        if i % 100 == 7:
            env[0]["value"] = "debug"  # 1% drift on server.log_level
        pods.append(
            {
                "metadata": {
                    "name": f"hub-{i:05d}",
                    "namespace": "scion",
                    "labels": {"app.kubernetes.io/name": "scion-hub"},
                },
                "spec": {"containers": [{"name": "hub", "env": env}], "volumes": []},
                "status": {"phase": "Running"},
            }
        )
    return pods


def _compute(pods: list[dict[str, Any]]) -> Any:
    return drift.compute(
        pods, EXPECTED, container="hub", require_consistency=True, managed_sections=["access"]
    )


def run(sizes: Sizes, profiles: list[CpuProfile]) -> list[Row]:
    rows: list[Row] = []
    for count in sizes.drift_pods:
        pods = make_pods(count, sizes.drift_env_vars)
        _compute(pods[: min(count, 10)])  # warm the catalog caches
        samples: list[float] = []
        runs = sizes.drift_runs  # as many at 5,000 as at 1,000: the linearity check compares their p50s
        report = None
        cpu: list[float] = []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            report = _compute(pods)
            samples.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        tracemalloc.start()
        _compute(pods)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report is not None
        row = Row(
            BENCH,
            f"drift.compute, {sizes.drift_env_vars} env vars/pod, consistency on",
            count,
            "ms",
            samples,
            extra={
                # CPU of this process (the time percentiles are wall time: on a shared machine, steadier).
                "cpu_ms_min": round(min(cpu), 1),
                "peak_mem_mib": round(peak / 2**20, 2),
                "checked_pods": report.checkedPods,
                "drifted_pods": report.driftedPods,
                "items": len(report.items) + report.truncated,
            },
        )
        if count == 1000:
            row.target = f"p50 < {TARGET_MS:g} ms"
            row.met = row.stats()["p50"] < TARGET_MS
            if not row.met:
                profiles.append(
                    profile_sync(
                        f"{BENCH}: drift.compute over {count} pods", functools.partial(_compute, pods), 1
                    )
                )
        per_pod = {r.n: r.stats()["p50"] / r.n for r in rows if r.n}
        if count > 1000 and 1000 in per_pod:
            ratio = (row.stats()["p50"] / count) / per_pod[1000]
            row.target = f"per pod <= {LINEAR_SLACK:g}x the 1,000-pod run's"
            row.met = ratio <= LINEAR_SLACK
            row.extra["per_pod_vs_1000"] = round(ratio, 2)
        rows.append(row)
    return rows
