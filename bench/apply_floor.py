"""Benchmark `apply-floor`: the cost of one apply against a hand-written floor, measured in the same run.

Scion profile, examples/full.yaml's settings in the table. Three cases, interleaved iteration by iteration
so that they share the machine's conditions:

- floor: the cheapest correct hand-written change of one section on a dedicated connection: BEGIN, row lock
  (`SELECT ... FOR UPDATE`), `UPDATE ... revision = revision + 1`, `pg_notify`, COMMIT.
- change: `apply_spec` of examples/full.yaml with one section changed (maintenance message alternates), through
  the store and the connection registry: plan, lock, write, NOTIFY, commit. Like the operator, each apply is
  handed the previous one's `written` records, which tell the store a write is due (no optimistic read), and
  the operator's cache of the specs' canonical rows (`table.wanted.WantedCache`).
- no-op: `apply_spec` of the same spec again (nothing differs: one lock-free read, nothing written, nobody
  notified).

Each row prints its p50 beside the floor's p50 of the same run and the ratio; targets: change <= 1.5x the
floor, no-op <= 1.0x the floor.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import yaml
from tests.support.hubdb import SCION_DDL
from tests.support.pgserver import PgServer

from bench.common import EXAMPLE_FULL, Row, Sizes, counting_notifies, create_database, percentile
from hubsettings_operator.spec.models import HubSettingsSpec
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.apply import apply_spec
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.pool import PoolRegistry
from hubsettings_operator.table.scion import CHANNEL, envelope
from hubsettings_operator.table.store import SettingsStore
from hubsettings_operator.table.wanted import WantedCache

BENCH = "apply-floor"
OWNER = owner_marker("bench", "floor")


def _spec(message: str) -> HubSettingsSpec:
    with EXAMPLE_FULL.open() as fh:
        raw: dict[str, Any] = yaml.safe_load(fh)["spec"]
    raw["settings"].setdefault("maintenance", {})["maintenance_message"] = message
    spec, errors = validate_spec(raw)
    if spec is None:
        raise RuntimeError(f"examples/full.yaml does not validate: {errors[:3]}")
    return spec


async def _floor(conn: psycopg.AsyncConnection[Any], message: str) -> None:
    """One section changed by hand: what any correct writer must at least do."""
    async with conn.transaction():
        await conn.execute("SELECT revision FROM hub_settings WHERE section = 'bench_floor' FOR UPDATE")
        cur = await conn.execute(
            "UPDATE hub_settings SET value = %s::jsonb, revision = revision + 1, update_time = now() "
            "WHERE section = 'bench_floor' RETURNING revision",
            (json.dumps({"maintenance_message": message}),),
        )
        row = await cur.fetchone()
        await conn.execute(
            "SELECT pg_notify(%s, %s)", (CHANNEL, envelope("bench_floor", int(row[0]) if row else 0))
        )


async def run(pg: PgServer, sizes: Sizes) -> list[Row]:
    iterations = 5 if sizes.smoke else 300
    dsn = create_database(pg, SCION_DDL)
    specs = [_spec("window A"), _spec("window B")]
    wanted = WantedCache()  # as the reconciler passes it
    registry = PoolRegistry()
    store = SettingsStore(dsn, registry, owner="bench")
    floor_conn = await psycopg.AsyncConnection.connect(dsn)
    samples: dict[str, list[float]] = {"floor": [], "change": [], "noop": []}
    results = {"change_writes": 0, "noop_writes": 0}
    try:
        await floor_conn.execute(
            "INSERT INTO hub_settings (id, section, value, revision, updated_by, origin, create_time, update_time) "
            "VALUES (gen_random_uuid(), 'bench_floor', '{}', 1, 'bench', 'managed', now(), now())"
        )
        await floor_conn.commit()
        # The operator hands each apply the previous one's `written` (kept in status): so does the bench.
        written = (await apply_spec(store, specs[0], OWNER, wanted=wanted)).written
        async with counting_notifies(dsn, CHANNEL) as notes:
            for i in range(iterations + 10):  # the first 10 warm caches and prepared statements up
                t0 = time.perf_counter()
                await _floor(floor_conn, f"window {i}")
                t1 = time.perf_counter()
                changed = await apply_spec(
                    store, specs[(i + 1) % 2], OWNER, last_written=written, wanted=wanted
                )
                t2 = time.perf_counter()
                noop = await apply_spec(
                    store, specs[(i + 1) % 2], OWNER, last_written=changed.written, wanted=wanted
                )
                written = noop.written
                t3 = time.perf_counter()
                if i >= 10:
                    samples["floor"].append((t1 - t0) * 1000)
                    samples["change"].append((t2 - t1) * 1000)
                    samples["noop"].append((t3 - t2) * 1000)
                    results["change_writes"] += changed.rows_written
                    results["noop_writes"] += noop.rows_written + len(noop.notifications)
    finally:
        await floor_conn.close()
        await registry.close()
    floor_p50 = percentile(samples["floor"], 50)
    rows = [
        Row(
            BENCH,
            "floor: hand-written row lock + UPDATE revision+1 + pg_notify + commit",
            iterations,
            "ms",
            samples["floor"],
            note="same-run baseline for the rows below",
        )
    ]
    for case, title, limit in (
        ("change", "apply_spec, examples/full.yaml, one section changed (scion)", 1.5),
        ("noop", "apply_spec, examples/full.yaml, nothing changed (scion)", 1.0),
    ):
        p50 = percentile(samples[case], 50)
        ratio = p50 / floor_p50 if floor_p50 else float("nan")
        row = Row(
            BENCH,
            title,
            iterations,
            "ms",
            samples[case],
            extra={"floor_p50_ms": round(floor_p50, 3), "ratio_to_floor_p50": round(ratio, 2), **results},
            target=f"p50 <= {limit:g}x floor",
            note=f"p50 {p50:.3f} ms vs floor {floor_p50:.3f} ms = {ratio:.2f}x",
        )
        row.met = ratio <= limit
        rows.append(row)
    # Every change apply sent exactly one NOTIFY (its section), every floor one; no-ops none.
    expected = 2 * (iterations + 10)
    rows[-1].met = bool(rows[-1].met) and results["noop_writes"] == 0 and len(notes.payloads) == expected
    return rows
