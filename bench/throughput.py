"""Benchmark `throughput`: apply throughput. One `SettingsStore.apply` changing 10 / 100 / 1,000 keys at once.

Proposal profile (one row per key), desired rows given as a dict directly: the CR limit of 100
extraSettings keys does not apply at the store level. The table is seeded with the keys first; every
measured apply then changes all of them. Reported: the apply's own duration (`ApplyResult.duration_s`:
pool checkout, advisory lock, read FOR UPDATE, plan, one statement per changed row, NOTIFY, commit) and the
NOTIFY count per apply, counted by a LISTEN connection (must be exactly 1).
"""

from __future__ import annotations

from tests.support.hubdb import PROPOSAL_DDL
from tests.support.pgserver import PgServer

from bench.common import CpuProfile, Row, Sizes, counting_notifies, create_database, profile_async
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.proposal import CHANNEL as PROPOSAL_CHANNEL
from hubsettings_operator.table.store import PoolRegistry, SettingsStore, Target

BENCH = "throughput"


def desired(keys: int, version: int) -> dict[str, object]:
    return {f"bench.t.k{j:05d}": {"v": version, "j": j} for j in range(keys)}


async def _profile(store: SettingsStore, target: Target, owner: str, keys: int) -> CpuProfile:
    state = {"v": 10_000}

    async def once() -> None:
        state["v"] += 1
        rows = desired(keys, state["v"])
        await store.apply(target, lambda _p: rows, owner)

    return await profile_async(f"{BENCH}: where a {keys}-key apply spends client time (3 applies)", once, 3)


async def run(pg: PgServer, sizes: Sizes, profiles: list[CpuProfile]) -> list[Row]:
    rows: list[Row] = []
    for keys in sizes.throughput_keys:
        dsn = create_database(pg, PROPOSAL_DDL)
        registry = PoolRegistry()
        store = SettingsStore(dsn, registry)
        target = Target(profile=Profile.PROPOSAL)
        owner = owner_marker("bench", "throughput")
        try:
            await store.apply(target, lambda _p, k=keys: desired(k, 0), owner)
            samples: list[float] = []
            written: list[int] = []
            async with counting_notifies(dsn, PROPOSAL_CHANNEL, settle=0.5) as notes:
                for version in range(1, sizes.throughput_iterations + 1):
                    rows_now = desired(keys, version)
                    result = await store.apply(target, lambda _p, r=rows_now: r, owner)
                    samples.append(result.duration_s * 1000)
                    written.append(result.rows_written)
            per_apply = len(notes.payloads) / sizes.throughput_iterations
            row = Row(
                BENCH,
                "one apply changing every key (proposal)",
                keys,
                "ms",
                samples,
                extra={
                    "notifies_per_apply": per_apply,
                    "rows_written_per_apply": sorted(set(written)),
                    "ms_per_row_p50": round(sorted(samples)[len(samples) // 2] / keys, 3),
                    "payload_bytes_max": max((len(p.encode()) for p in notes.payloads), default=0),
                    "payload_all_flag": any('"all":true' in p for p in notes.payloads),
                },
                target="1 NOTIFY per apply",
            )
            row.met = per_apply == 1.0
            rows.append(row)
            if keys >= 1000 and not sizes.smoke:
                profiles.append(await _profile(store, target, owner, keys))
        finally:
            await registry.close()
    return rows
