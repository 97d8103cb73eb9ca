"""Benchmark `noop`: the cost of a no-op resync. Reconcile an unchanged HubSettings again and again.

Two cases, both on the proposal profile (one row per key) with 200 rows in the table:

- `Reconciler.reconcile(body)`: the operator's real reconcile path (spec validation, store apply, status
  diff) called directly, with a fake Kubernetes object (`FakeKube`: returns the DSN, counts status patches).
  A CR may hold at most 100 extraSettings keys, so the 200 rows come from two CRs on the same table:
  `a` = examples/full.yaml's settings (44 keys) + 56 extra keys, `b` = 100 extra keys; the measured
  reconciles alternate between them (each one locks and reads all 200 rows, and plans its own 100).
- `SettingsStore.apply` with a 200-key desired dict directly (no CR, no validation).
- `Reconciler.reconcile` of examples/full.yaml on the shipped Hub's table (scion profile, one row per
  section): the issue's "no-op reconcile CPU" figure, target < 1 ms of this process's CPU per reconcile.

Reported: row writes (rows whose xmin/ctid changed, and `pg_stat_user_tables` n_tup_ins/upd/del deltas
after the pool's backends have exited and flushed their statistics), NOTIFYs (a LISTEN connection counts
them), status patches, wall time per reconcile (percentiles) and CPU time per reconcile of this process
(`time.process_time()` around the loop; PostgreSQL's own CPU is not included).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import yaml
from tests.support.fakekube import FakeKube
from tests.support.hubdb import PROPOSAL_DDL, SCION_DDL
from tests.support.pgserver import PgServer

from bench.common import (
    EXAMPLE_FULL,
    CpuProfile,
    Row,
    Sizes,
    counting_notifies,
    create_database,
    profile_async,
    table_state,
)
from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.spec.catalog import proposal_values
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.spec.sections import Settings
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.proposal import CHANNEL as PROPOSAL_CHANNEL
from hubsettings_operator.table.scion import CHANNEL as SCION_CHANNEL
from hubsettings_operator.table.store import PoolRegistry, SettingsStore, Target

BENCH = "noop"
NS = "bench"


def _extras(prefix: str, count: int) -> dict[str, Any]:
    return {f"bench.{prefix}.k{i:03d}": {"n": i, "label": f"value-{prefix}-{i}"} for i in range(count)}


def cr_bodies(keys: int) -> dict[str, dict[str, Any]]:
    """Two CRs whose rows add up to `keys` (200: 44 catalog keys + 56 extras, and 100 extras)."""
    half_a, half_b = keys - keys // 2, keys // 2
    with EXAMPLE_FULL.open() as fh:
        full_settings: dict[str, Any] = yaml.safe_load(fh)["spec"]["settings"]
    # examples/full.yaml's settings under the proposal profile (one row per key).
    catalog_keys = len(proposal_values(Settings.model_validate(full_settings)))
    use_settings = half_a > catalog_keys
    bodies: dict[str, dict[str, Any]] = {}
    for name, count, settings in (
        ("a", half_a - (catalog_keys if use_settings else 0), full_settings if use_settings else {}),
        ("b", half_b, {}),
    ):
        if count <= 0 and not settings:
            continue
        bodies[name] = {
            "apiVersion": "scion.dev/v1alpha1",
            "kind": "HubSettings",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
            "spec": {
                "database": {"secretRef": {"name": "db", "key": "url"}, "profile": "proposal"},
                "settings": settings,
                "extraSettings": _extras(name, count),
            },
        }
    return bodies


async def _reconciler_case(pg: PgServer, sizes: Sizes, profiles: list[CpuProfile]) -> Row:
    dsn = create_database(pg, PROPOSAL_DDL)
    bodies = cr_bodies(sizes.noop_keys)
    kube = FakeKube(default_dsn=dsn)
    kube.objects = {(NS, name): body for name, body in bodies.items()}  # patched in place
    warm = Reconciler(build_services(kube))
    for name in list(bodies):
        outcome = await warm.reconcile(copy.deepcopy(bodies[name]))
        if outcome.result != "applied":
            raise RuntimeError(f"warm-up reconcile of {name}: {outcome.result} {outcome.error}")
    for name in list(bodies):  # a second pass settles the status (as kopf's next event would)
        await warm.reconcile(copy.deepcopy(bodies[name]))
    await warm.close()
    before = await table_state(dsn, "key")
    patches_before = kube.patches
    reconciler = Reconciler(build_services(kube))
    names = sorted(bodies)
    results: dict[str, int] = {}
    samples: list[float] = []
    async with counting_notifies(dsn, PROPOSAL_CHANNEL) as notes:
        cpu0 = time.process_time()
        for i in range(sizes.noop_reconciles):
            body = bodies[names[i % len(names)]]  # the latest body, as kopf hands it to the resync timer
            t0 = time.perf_counter()
            outcome = await reconciler.reconcile(body)
            samples.append((time.perf_counter() - t0) * 1000)
            results[outcome.result] = results.get(outcome.result, 0) + 1
        cpu = time.process_time() - cpu0
    patches = kube.patches - patches_before
    await reconciler.close()
    after = await table_state(dsn, "key")
    if not sizes.smoke:
        profiler = Reconciler(build_services(kube))

        async def one() -> None:
            await profiler.reconcile(bodies[names[0]])

        await one()
        profiles.append(
            await profile_async(
                f"{BENCH}: where a no-op Reconciler.reconcile spends CPU (200 calls, CR a, 200 rows)",
                one,
                200,
            )
        )
        await profiler.close()
    writes = after.writes_since(before)
    row = Row(
        BENCH,
        f"Reconciler.reconcile x{sizes.noop_reconciles}, {len(names)} CRs, fake kube",
        len(after.versions),
        "ms",
        samples,
        extra={
            **writes,
            "notifies": len(notes.payloads),
            "status_patches": patches,
            "cpu_ms_per_reconcile": round(cpu / sizes.noop_reconciles * 1000, 3),
            "results": results,
        },
        target="0 writes, 0 NOTIFY",
        note="n = rows in the table; CPU = this process only (PostgreSQL excluded)",
    )
    row.met = _zero(writes) and not notes.payloads and patches == 0
    return row


async def _store_case(pg: PgServer, sizes: Sizes) -> Row:
    dsn = create_database(pg, PROPOSAL_DDL)
    desired = _extras("s", sizes.noop_keys)
    target = Target(profile=Profile.PROPOSAL)
    owner = owner_marker(NS, "store")
    warm_registry = PoolRegistry()
    await SettingsStore(dsn, warm_registry).apply(target, lambda _p: desired, owner)
    await warm_registry.close()
    before = await table_state(dsn, "key")
    registry = PoolRegistry()
    store = SettingsStore(dsn, registry)
    samples: list[float] = []
    noops = 0
    async with counting_notifies(dsn, PROPOSAL_CHANNEL) as notes:
        cpu0 = time.process_time()
        for _ in range(sizes.noop_reconciles):
            t0 = time.perf_counter()
            result = await store.apply(target, lambda _p: desired, owner)
            samples.append((time.perf_counter() - t0) * 1000)
            noops += int(result.plan.is_noop)
        cpu = time.process_time() - cpu0
    await registry.close()
    after = await table_state(dsn, "key")
    writes = after.writes_since(before)
    row = Row(
        BENCH,
        f"SettingsStore.apply x{sizes.noop_reconciles}, desired dict",
        len(after.versions),
        "ms",
        samples,
        extra={
            **writes,
            "notifies": len(notes.payloads),
            "noop_plans": noops,
            "cpu_ms_per_apply": round(cpu / sizes.noop_reconciles * 1000, 3),
        },
        target="0 writes, 0 NOTIFY",
        note="n = rows in the table",
    )
    row.met = _zero(writes) and not notes.payloads
    return row


def _zero(writes: Mapping[str, int]) -> bool:
    return all(v == 0 for v in writes.values())


# The issue's target for a no-op reconcile of examples/full.yaml (CPU of this process per reconcile).
FULL_TARGET_CPU_MS = 1.0


async def _full_case(pg: PgServer, sizes: Sizes, profiles: list[CpuProfile]) -> Row:
    dsn = create_database(pg, SCION_DDL)
    with EXAMPLE_FULL.open() as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)["spec"]
    spec["database"]["profile"] = "scion"
    body = {
        "apiVersion": "scion.dev/v1alpha1",
        "kind": "HubSettings",
        "metadata": {"name": "full", "namespace": NS, "uid": "uid-full", "generation": 1},
        "spec": spec,
    }
    kube = FakeKube(default_dsn=dsn)
    kube.objects = {(NS, "full"): body}  # patched in place: `body` carries the latest status
    warm = Reconciler(build_services(kube))
    for _ in range(2):  # apply, then settle the status (as kopf's next event would)
        await warm.reconcile(copy.deepcopy(body))
    await warm.close()
    before = await table_state(dsn, "section")
    reconciler = Reconciler(build_services(kube))
    await reconciler.reconcile(body)  # the process's first reconcile of the object (caches filled)
    patches_before = kube.patches
    results: dict[str, int] = {}
    samples: list[float] = []
    async with counting_notifies(dsn, SCION_CHANNEL) as notes:
        cpu0 = time.process_time()
        for _ in range(sizes.noop_reconciles):
            t0 = time.perf_counter()
            outcome = await reconciler.reconcile(body)
            samples.append((time.perf_counter() - t0) * 1000)
            results[outcome.result] = results.get(outcome.result, 0) + 1
        cpu_ms = (time.process_time() - cpu0) / sizes.noop_reconciles * 1000
    patches = kube.patches - patches_before
    if not sizes.smoke:

        async def one() -> None:
            await reconciler.reconcile(body)

        profiles.append(
            await profile_async(
                f"{BENCH}: where a no-op Reconciler.reconcile of examples/full.yaml (scion) spends CPU",
                one,
                200,
            )
        )
    await reconciler.close()
    after = await table_state(dsn, "section")
    writes = after.writes_since(before)
    row = Row(
        BENCH,
        f"Reconciler.reconcile x{sizes.noop_reconciles}, examples/full.yaml (scion), CPU per reconcile",
        len(after.versions),
        "ms",
        samples,
        extra={
            **writes,
            "notifies": len(notes.payloads),
            "status_patches": patches,
            "cpu_ms_per_reconcile": round(cpu_ms, 3),
            "results": results,
        },
        target=f"CPU < {FULL_TARGET_CPU_MS:g} ms, 0 writes",
        note=(
            f"CPU {cpu_ms:.3f} ms per reconcile (this process; PostgreSQL excluded) vs target "
            f"{FULL_TARGET_CPU_MS:g} ms; percentiles are wall time; n = rows in the table"
        ),
    )
    row.met = cpu_ms < FULL_TARGET_CPU_MS and _zero(writes) and not notes.payloads and patches == 0
    return row


async def run(pg: PgServer, sizes: Sizes, profiles: list[CpuProfile]) -> list[Row]:
    return [
        await _reconciler_case(pg, sizes, profiles),
        await _store_case(pg, sizes),
        await _full_case(pg, sizes, profiles),
    ]
