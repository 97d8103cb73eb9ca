"""Guarantees of the table layer against a real PostgreSQL: out-of-band edits that keep our owner marker are
seen, revisions never go backwards, a table without its unique index is a SchemaMismatch that says how to fix
it, `plan` works with SELECT alone, and the operator's connections stay under one global cap across hundreds
of databases and DSN rotations."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hubsettings_operator.errors import SchemaMismatch
from hubsettings_operator.spec.models import ConflictMode
from hubsettings_operator.table.apply import apply_spec
from hubsettings_operator.table.plan import Action, ConflictReason, WrittenRecord, value_digest
from hubsettings_operator.table.pool import PoolRegistry, StoreOptions
from hubsettings_operator.table.proposal import CHANNEL as PROPOSAL_CHANNEL
from hubsettings_operator.table.scion import CHANNEL as SCION_CHANNEL
from hubsettings_operator.table.store import SettingsStore
from hubsettings_operator.table.wanted import WantedCache
from tests.integration.helpers import apply, make_spec
from tests.support.hubdb import SCION_DDL, execute, listening, rows
from tests.support.pgserver import PgServer

SETTINGS = {
    "access": {"admin_emails": ["ops@example.com"]},
    "maintenance": {"admin_mode": True, "maintenance_message": "upgrade at 18:00"},
}
OWNER = "hubsettings-operator:scion/hub"


def channel(profile: str) -> str:
    return SCION_CHANNEL if profile == "scion" else PROPOSAL_CHANNEL


async def _edit_keeping_marker(dsn: str, profile: str) -> str:
    """A plain SQL UPDATE of one of our rows that keeps updated_by (and the scion revision). -> row key."""
    if profile == "scion":
        await execute(
            dsn,
            "UPDATE hub_settings SET value = jsonb_set(value, '{admin_mode}', 'false') WHERE section = 'maintenance'",
        )
        return "maintenance"
    await execute(dsn, "UPDATE hub_settings SET value = 'false' WHERE key = 'admin_mode'")
    return "admin_mode"


async def test_written_records_cover_every_owned_row(table: tuple[str, str]) -> None:
    profile, dsn = table
    result = await apply(dsn, make_spec(SETTINGS))
    stored = await rows(dsn, profile)
    assert set(result.written) == set(result.owned_keys) == set(stored)
    for key, record in result.written.items():
        assert record.digest == value_digest(stored[key]["value"])
        assert record.revision == (stored[key]["revision"] if profile == "scion" else None)
    again = await apply(dsn, make_spec(SETTINGS), last_written=result.written)
    assert again.plan.is_noop and again.written == result.written


async def test_out_of_band_edit_keeping_the_marker_is_reported_and_left_under_report(
    table: tuple[str, str],
) -> None:
    profile, dsn = table
    spec = make_spec(SETTINGS, policy={"conflicts": "Report"})
    first = await apply(dsn, spec)
    key = await _edit_keeping_marker(dsn, profile)
    before = await rows(dsn, profile)
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, spec, last_written=first.written)
    [conflict] = result.plan.conflicts
    assert conflict.key == key and conflict.action is Action.CONFLICT
    assert conflict.reason is ConflictReason.MODIFIED_OUT_OF_BAND and conflict.current_by == OWNER
    assert await rows(dsn, profile) == before and notes.payloads == []
    # The record of what we wrote is kept, so the edit is still seen next time (not silently adopted).
    assert result.written[key] == first.written[key]
    again = await apply(dsn, spec, last_written=result.written)
    assert [c.reason for c in again.plan.conflicts] == [ConflictReason.MODIFIED_OUT_OF_BAND]


async def test_out_of_band_edit_keeping_the_marker_is_overwritten_and_flagged_under_enforce(
    table: tuple[str, str],
) -> None:
    profile, dsn = table
    first = await apply(dsn, make_spec(SETTINGS))
    key = await _edit_keeping_marker(dsn, profile)
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, make_spec(SETTINGS), last_written=first.written)
    assert [c.key for c in result.out_of_band] == [key]
    [change] = result.out_of_band
    assert change.action is Action.UPDATE and change.conflict
    assert len(notes.payloads) == 1
    value = (await rows(dsn, profile))[key]["value"]
    assert (value["admin_mode"] if profile == "scion" else value) is True
    assert result.written[key].digest == first.written[key].digest


async def test_an_out_of_band_edit_keeping_revision_and_marker_is_seen_by_the_cached_no_op_path(
    db: str,
) -> None:
    """The operator's no-op resync: a new store per reconcile on one registry (its row cache warm) and the
    spec's canonical texts cached (WantedCache). A plain UPDATE of the value that keeps the revision, the owner
    marker and update_time is still seen: the cache is keyed by the whole row as read, value text included."""
    await execute(db, SCION_DDL)
    registry = PoolRegistry()
    wanted = WantedCache()
    spec = make_spec(SETTINGS)
    try:
        first = await apply_spec(SettingsStore(db, registry, owner="a"), spec, OWNER, wanted=wanted)
        noop = await apply_spec(
            SettingsStore(db, registry, owner="a"), spec, OWNER, last_written=first.written, wanted=wanted
        )
        # Rows read and cached (one entry per row of the table), nothing written.
        assert noop.plan.is_noop and len(registry.row_cache(db, "hub_settings")) == len(SETTINGS)
        before = (await rows(db, "scion"))["maintenance"]
        await execute(
            db,
            "UPDATE hub_settings SET value = jsonb_set(value, '{admin_mode}', 'false') WHERE section = 'maintenance'",
        )
        edited = (await rows(db, "scion"))["maintenance"]
        same = ("revision", "updated_by", "updated_at")
        assert [edited[c] for c in same] == [before[c] for c in same]
        assert edited["value"]["admin_mode"] is False
        async with listening(db, SCION_CHANNEL) as notes:
            result = await apply_spec(
                SettingsStore(db, registry, owner="a"), spec, OWNER, last_written=noop.written, wanted=wanted
            )
        assert [c.key for c in result.out_of_band] == ["maintenance"]
        assert result.plan.out_of_band[0].action is Action.UPDATE
        assert len(notes.payloads) == 1
        after = (await rows(db, "scion"))["maintenance"]
        assert after["value"]["admin_mode"] is True and after["revision"] == before["revision"] + 1
    finally:
        await registry.close()


async def test_the_plan_kept_for_an_unchanged_read_is_the_plan_of_a_cold_apply_for_every_input(
    db: str,
) -> None:
    """The operator's warm path (one registry, WantedCache) keeps the plan made over a read while the read,
    the spec and the intent are the same (table/rowcache.py). Each input changed in turn (the rows, the spec,
    the policy, pruning, the released owners, what we wrote last, the owner) gives exactly what a cold apply
    (new registry, no cache) gives for the same inputs, and the plan is reused only when nothing changed."""
    await execute(db, SCION_DDL)
    other = "hubsettings-operator:scion/gone"
    seeded = make_spec({**SETTINGS, "telemetry": {"enabled": False}})
    seeder = SettingsStore(db)
    try:
        await apply_spec(seeder, seeded, other)  # rows of another owner, one of them then ours
    finally:
        await seeder.close()
    await execute(db, "UPDATE hub_settings SET updated_by = %s WHERE section = 'maintenance'", (OWNER,))
    registry = PoolRegistry()
    wanted = WantedCache()

    async def both(spec: Any, owner: str = OWNER, **kw: Any) -> tuple[Any, Any]:
        warm = await apply_spec(SettingsStore(db, registry, owner="w"), spec, owner, wanted=wanted, **kw)
        store = SettingsStore(db)
        try:
            cold = await apply_spec(store, spec, owner, **kw)
        finally:
            await store.close()
        assert warm.plan == cold.plan and warm.written == cold.written
        assert warm.owned_keys == cold.owned_keys and warm.owned_settings_hash() == cold.owned_settings_hash()
        return warm, cold

    try:
        spec = make_spec(SETTINGS)
        first, _ = await both(spec, dry_run=True)
        again, _ = await both(spec, dry_run=True)
        assert again.plan is first.plan  # nothing changed: reused
        variants: list[tuple[Any, dict[str, Any]]] = [
            (make_spec(SETTINGS, policy={"conflicts": "Report"}), {}),
            (make_spec(SETTINGS, policy={"prune": False}), {}),
            (spec, {"released_owners": frozenset({other})}),
            (spec, {"last_written": first.written}),
            (spec, {"last_written": {"maintenance": WrittenRecord(1, "0" * 16)}}),
            (make_spec({"access": SETTINGS["access"]}), {}),
            (make_spec(SETTINGS, policy={"sections": {"access": {"conflicts": "Observe"}}}), {}),
        ]
        for variant, kw in variants:
            result, _ = await both(variant, dry_run=True, **kw)
            assert result.plan is not first.plan
        result, _ = await both(spec, "hubsettings-operator:scion/someone", dry_run=True)
        assert result.plan is not first.plan
        # The rows: an edit keeping revision, marker and update_time; a row deleted; a row added.
        before, _ = await both(spec, dry_run=True, last_written=first.written)
        for statement in (
            "UPDATE hub_settings SET value = jsonb_set(value, '{admin_mode}', 'false') WHERE section = 'maintenance'",
            "DELETE FROM hub_settings WHERE section = 'telemetry'",
            "INSERT INTO hub_settings (id, section, value, revision, updated_by, origin, create_time, update_time) "
            "VALUES (gen_random_uuid(), 'branding', '{}', 1, 'someone', 'managed', now(), now())",
        ):
            await execute(db, statement)
            after, _ = await both(spec, dry_run=True, last_written=first.written)
            assert after.plan is not before.plan
            before = after
        assert [c.key for c in before.plan.out_of_band] == ["maintenance"]
        # And the real write path after a kept plan: writes exactly what a cold plan says, once.
        async with listening(db, SCION_CHANNEL) as notes:
            written = await apply_spec(
                SettingsStore(db, registry, owner="w"), spec, OWNER, wanted=wanted, last_written=first.written
            )
        assert written.rows_written == len(before.plan.writes) > 0 and len(notes.payloads) == 1
        settled, _ = await both(spec, dry_run=True, last_written=written.written)
        assert settled.plan.is_noop
    finally:
        await registry.close()


async def test_a_spec_change_is_not_mistaken_for_an_out_of_band_edit(table: tuple[str, str]) -> None:
    _profile, dsn = table
    spec = make_spec(SETTINGS, policy={"conflicts": "Report"})
    first = await apply(dsn, spec)
    changed = make_spec(
        {**SETTINGS, "access": {"admin_emails": ["new@example.com"]}}, policy={"conflicts": "Report"}
    )
    result = await apply(dsn, changed, last_written=first.written)
    assert result.plan.conflicts == [] and len(result.plan.value_changes) == 1


async def test_revisions_continue_after_a_managed_row_is_deleted_and_reinserted(db: str) -> None:
    from tests.support.hubdb import SCION_DDL

    await execute(db, SCION_DDL)
    written = None
    for i in range(6):
        spec = make_spec({"access": {"admin_emails": [f"v{i}@example.com"]}})
        written = (await apply(db, spec, last_written=written)).written
    assert written is not None and written["access"].revision == 6
    await execute(db, "DELETE FROM hub_settings WHERE section = 'access'")
    async with listening(db, SCION_CHANNEL) as notes:
        result = await apply(
            db, make_spec({"access": {"admin_emails": ["v6@example.com"]}}), last_written=written
        )
    assert (await rows(db, "scion"))["access"]["revision"] == 7
    assert [n["data"] for n in notes.json()] == [{"section": "access", "revision": 7}]
    assert result.written["access"].revision == 7
    # A row somebody rolled back to a lower revision (restored backup) also moves forward from ours.
    await execute(db, "UPDATE hub_settings SET revision = 2 WHERE section = 'access'")
    result = await apply(
        db, make_spec({"access": {"admin_emails": ["v8@example.com"]}}), last_written=result.written
    )
    assert (await rows(db, "scion"))["access"]["revision"] == 8


async def test_scion_table_without_unique_index_is_a_schema_mismatch_naming_the_fix(db: str) -> None:
    await execute(
        db,
        "CREATE TABLE hub_settings (id uuid PRIMARY KEY, section varchar NOT NULL, value jsonb NOT NULL, "
        "revision bigint NOT NULL DEFAULT 1, updated_by varchar, origin varchar NOT NULL DEFAULT 'seeded', "
        "create_time timestamptz NOT NULL, update_time timestamptz NOT NULL)",
    )
    with pytest.raises(SchemaMismatch) as info:
        await apply(db, make_spec(SETTINGS))
    message = str(info.value)
    assert "no unique index on section" in message
    assert "CREATE UNIQUE INDEX hub_settings_section_key ON public.hub_settings (section)" in message
    assert not info.value.transient
    # Once the index is added as told, the apply goes through (the cached introspection is not stuck).
    await execute(db, "CREATE UNIQUE INDEX hub_settings_section_key ON public.hub_settings (section)")
    assert (await apply(db, make_spec(SETTINGS))).changed


MANIFEST = """apiVersion: scion.dev/v1alpha1
kind: HubSettings
metadata: {name: hub, namespace: scion}
spec:
  database: {secretRef: {name: hub-db}}
  settings:
    access: {admin_emails: [%s]}
"""


async def test_plan_works_with_select_privilege_only(
    table: tuple[str, str], pg: PgServer, tmp_path: Path
) -> None:
    profile, dsn = table
    await apply(dsn, make_spec({"access": {"admin_emails": ["ops@example.com"]}}))
    before = await rows(dsn, profile)
    role, password = f"reader_{profile}", "reader-pass-" + profile
    await execute(pg.superuser_dsn, f"DROP ROLE IF EXISTS {role}")
    await execute(pg.superuser_dsn, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    await execute(dsn, f"GRANT SELECT ON hub_settings TO {role}")
    reader = dsn.replace(f"{pg.user}:{pg.password}", f"{role}:{password}")
    manifest = tmp_path / "hs.yaml"
    manifest.write_text(MANIFEST % "new@example.com")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hubsettings_operator.cli", *args, "-f", str(manifest)],
            capture_output=True,
            text=True,
            env={"HUBSETTINGS_DSN": reader, "PATH": "/usr/bin:/bin"},
            timeout=60,
            check=False,
        )

    planned = await asyncio.to_thread(cli, "plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "~ " in planned.stdout and "new@example.com" in planned.stdout
    applied = await asyncio.to_thread(cli, "apply")
    assert applied.returncode == 1 and "PermissionDenied" in applied.stderr
    assert password not in planned.stdout + planned.stderr + applied.stdout + applied.stderr
    assert await rows(dsn, profile) == before


async def _our_connections(admin: psycopg.AsyncConnection[tuple[int]], app: str) -> int:
    cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_connections_stay_under_the_cap_for_200_databases_and_15_rotations(
    db: str, pg: PgServer
) -> None:
    """200 owners, each on its own DSN and table, apply at once; then 15 of them rotate to a DSN on another
    database. pg_stat_activity, sampled throughout, never shows more than the cap; every apply succeeds; a
    rotated-away DSN keeps no connection; releasing every owner closes every connection."""
    cap, app = 10, "hubsettings-pooltest"
    second = db.replace("/t_", "/r_")
    name2 = second.rsplit("/", 1)[1].split("?")[0]
    await execute(pg.superuser_dsn, f"CREATE DATABASE {name2}")
    registry = PoolRegistry(StoreOptions(application_name=app, pool_timeout=60.0), max_connections=cap)
    peak = {"server": 0, "registry": 0}
    sampling = True
    admin: psycopg.AsyncConnection[tuple[int]] = await psycopg.AsyncConnection.connect(
        pg.superuser_dsn, autocommit=True
    )

    async def sample() -> None:
        while sampling:
            peak["server"] = max(peak["server"], await _our_connections(admin, app))
            peak["registry"] = max(peak["registry"], registry.open_connections())
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    try:
        owners = [f"owner-{i}" for i in range(200)]
        dsns = {o: f"{db}&application_name={o}" for o in owners}
        stores = {o: SettingsStore(dsns[o], registry, owner=o) for o in owners}

        async def one(owner: str, store: SettingsStore, value: str) -> bool:
            spec = make_spec(
                extraSettings={"pool.value": value},
                database={
                    "secretRef": {"name": "db"},
                    "table": f"t_{owner.replace('-', '_')}",
                    "createTable": True,
                },
            )
            result = await apply_spec(store, spec, owner_marker_for(owner), policy=ConflictMode.ENFORCE)
            return result.changed

        results = await asyncio.gather(*(one(o, stores[o], "first") for o in owners))
        assert all(results) and len(results) == 200
        assert registry.retained_dsns() == 200

        for owner in owners[:15]:
            old = dsns[owner]
            rotated = f"{second}&application_name={owner}-rotated"
            store = SettingsStore(rotated, registry, owner=owner)  # retains the new DSN, releases the old one
            assert await one(owner, store, "rotated")
            await asyncio.sleep(0)  # let the scheduled close of the old DSN's idle connections run
            assert registry.connections_for(old) == 0, "the rotated-away DSN still holds a connection"
        assert registry.retained_dsns() == 200

        for owner in owners:
            await registry.release(owner)
        assert registry.open_connections() == 0
        for _ in range(500):  # backends exit asynchronously after the client closes
            if await _our_connections(admin, app) == 0:
                break
            await asyncio.sleep(0.01)
        assert await _our_connections(admin, app) == 0
    finally:
        sampling = False
        await sampler
        await registry.close()
        await admin.close()
        async with await psycopg.AsyncConnection.connect(pg.superuser_dsn, autocommit=True) as conn:
            with contextlib.suppress(psycopg.Error):
                await conn.execute(f"DROP DATABASE IF EXISTS {name2} WITH (FORCE)")
    assert 1 <= peak["server"] <= cap, peak
    assert peak["registry"] <= cap, peak


def owner_marker_for(owner: str) -> str:
    return f"hubsettings-operator:pool/{owner}"


async def test_a_stale_optimistic_read_never_writes_twice(db: str) -> None:
    """Another operator writer holds the table's advisory lock and has already written what we want, not yet
    committed: our lock-free read still sees the old value and wants a write, but only the plan made under the
    lock counts. Once the other commits, our apply finds nothing to do: no second revision bump, no NOTIFY."""
    from tests.support.hubdb import SCION_DDL

    await execute(db, SCION_DDL)
    old = make_spec({"access": {"admin_emails": ["old@example.com"]}})
    new = make_spec({"access": {"admin_emails": ["new@example.com"]}})
    await apply(db, old)
    other = await psycopg.AsyncConnection.connect(db)
    await other.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('hubsettings-operator:public.hub_settings', 0))"
    )
    await other.execute(
        "UPDATE hub_settings SET value = jsonb_set(value, '{admin_emails}', '[\"new@example.com\"]'), "
        "revision = revision + 1 WHERE section = 'access'"
    )
    async with listening(db, SCION_CHANNEL) as notes:
        task = asyncio.create_task(apply(db, new))
        await asyncio.sleep(0.5)
        assert not task.done(), "the write must wait for the advisory lock"
        await other.commit()
        result = await asyncio.wait_for(task, 10)
    await other.close()
    assert result.plan.is_noop and result.rows_written == 0 and result.notifications == []
    assert notes.payloads == []
    assert (await rows(db, "scion"))["access"]["revision"] == 2
