"""The store against a real PostgreSQL, for both table profiles: atomic apply, NOTIFY only on change,
ownership, conflicts, pruning, errors that never show the DSN."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from hubsettings_operator.errors import DatabaseUnavailable, PermissionDenied, SchemaMismatch
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.plan import Action
from hubsettings_operator.table.proposal import CHANNEL as PROPOSAL_CHANNEL
from hubsettings_operator.table.scion import CHANNEL as SCION_CHANNEL
from hubsettings_operator.table.store import SettingsStore, Target
from tests.integration.helpers import apply, facts_type_errors, make_spec
from tests.support.hubdb import SCION_DDL, execute, hub_write_section, listening, rows
from tests.support.pgserver import PgServer

SETTINGS = {
    "access": {"admin_emails": ["ops@example.com", "oncall@example.com"]},
    "maintenance": {"admin_mode": True, "maintenance_message": "upgrade at 18:00"},
    "agent_defaults": {"default_max_turns": 200},
}


def channel(profile: str) -> str:
    return SCION_CHANNEL if profile == "scion" else PROPOSAL_CHANNEL


async def test_fresh_apply_writes_hub_encoding_and_notifies(table: tuple[str, str]) -> None:
    profile, dsn = table
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, make_spec(SETTINGS))
    assert result.profile.value == profile
    stored = await rows(dsn, profile)
    if profile == "scion":
        assert set(stored) == {"access", "maintenance", "agent_defaults"}
        access = stored["access"]
        assert access["revision"] == 1 and access["origin"] == "managed"
        assert access["updated_by"] == "hubsettings-operator:scion/hub"
        # Complete documents: every field with a Hub default is present, none left to zero values.
        assert access["value"] == {
            "admin_emails": ["ops@example.com", "oncall@example.com"],
            "user_access_mode": "open",
            "authorized_domains": [],
        }
        assert stored["maintenance"]["value"] == {
            "admin_mode": True,
            "maintenance_message": "upgrade at 18:00",
        }
        for section, row in stored.items():
            assert facts_type_errors(section, row["value"]) == []
            for field, default in catalog.HUB_DEFAULTS[section].items():
                assert field in row["value"], (section, field, default)
        envelopes = notes.json()
        assert len(envelopes) == 3
        assert {e["data"]["section"] for e in envelopes} == {"access", "maintenance", "agent_defaults"}
        for e in envelopes:
            assert e["type"] == "SettingsUpdatedEvent" and e["subject"] == "admin.settings.updated"
            assert e["data"]["revision"] == 1 and isinstance(e["ts"], int) and e["ts"] > 10**18
    else:
        assert {k: v["value"] for k, v in stored.items()} == {
            "admin_emails": ["ops@example.com", "oncall@example.com"],
            "admin_mode": True,
            "maintenance_message": "upgrade at 18:00",
            "default_max_turns": 200,
        }
        assert all(v["updated_by"] == "hubsettings-operator:scion/hub" for v in stored.values())
        [payload] = notes.json()
        assert payload["keys"] == sorted(stored) and payload["hash"].startswith("sha256:")
        assert "ops@example.com" not in notes.payloads[0]  # never values


async def test_notifications_arrive_only_after_commit(table: tuple[str, str]) -> None:
    """A listener that reads the table as soon as the NOTIFY arrives sees the whole change, never half."""
    profile, dsn = table
    seen: list[set[str]] = []
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    reader = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await conn.execute(f"LISTEN {channel(profile)}")

    async def on_notify() -> None:
        async for _ in conn.notifies(stop_after=1):
            cur = await reader.execute("SELECT count(*) FROM hub_settings")
            row = await cur.fetchone()
            seen.append({str(row[0]) if row else "0"})

    task = asyncio.create_task(on_notify())
    await asyncio.sleep(0.05)
    await apply(dsn, make_spec(SETTINGS))
    await asyncio.wait_for(task, 5)
    await conn.close()
    await reader.close()
    expected = "3" if profile == "scion" else "4"
    assert seen and all(s == {expected} for s in seen)


async def test_second_apply_is_a_noop(table: tuple[str, str]) -> None:
    profile, dsn = table
    spec = make_spec(SETTINGS)
    await apply(dsn, spec)
    before = await rows(dsn, profile)
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, spec)
    after = await rows(dsn, profile)
    assert result.plan.is_noop and result.rows_written == 0 and result.notifications == []
    assert notes.payloads == []
    assert before == after  # updated_at and revision untouched


async def test_formatting_is_not_a_change(table: tuple[str, str]) -> None:
    """Values are compared as parsed JSON: a row stored with other spacing and key order is unchanged."""
    profile, dsn = table
    await apply(dsn, make_spec({"access": {"admin_emails": ["a@b.co"]}}))
    if profile == "proposal":
        await execute(dsn, "UPDATE hub_settings SET value = '[ \"a@b.co\" ]' WHERE key = 'admin_emails'")
    else:
        await execute(
            dsn,
            'UPDATE hub_settings SET value = \'{"user_access_mode": "open", "authorized_domains": [], '
            '"admin_emails": ["a@b.co"]}\'::jsonb WHERE section = \'access\'',
        )
    result = await apply(dsn, make_spec({"access": {"admin_emails": ["a@b.co"]}}))
    assert result.plan.is_noop


async def test_one_key_change_updates_one_row(table: tuple[str, str]) -> None:
    profile, dsn = table
    await apply(dsn, make_spec(SETTINGS))
    before = await rows(dsn, profile)
    changed = {**SETTINGS, "maintenance": {"admin_mode": False, "maintenance_message": "upgrade at 18:00"}}
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, make_spec(changed))
    after = await rows(dsn, profile)
    key = "maintenance" if profile == "scion" else "admin_mode"
    assert [c.key for c in result.plan.value_changes] == [key]
    assert len(notes.payloads) == 1
    for k in before:
        if k == key:
            assert after[k]["updated_at"] > before[k]["updated_at"]
        else:
            assert after[k] == before[k]
    if profile == "scion":
        assert after["maintenance"]["revision"] == 2
        assert notes.json()[0]["data"] == {"section": "maintenance", "revision": 2}


async def test_prune_deletes_only_own_rows(table: tuple[str, str]) -> None:
    profile, dsn = table
    await apply(dsn, make_spec(SETTINGS))
    # Another writer's row and the Hub's _meta row must survive.
    if profile == "scion":
        await hub_write_section(dsn, "_meta", {"seeded": True}, updated_by="seed", origin="seeded")
        await hub_write_section(dsn, "telemetry", {"enabled": False}, updated_by="admin@example.com")
    else:
        await execute(
            dsn,
            "INSERT INTO hub_settings (key, value, updated_by) VALUES ('image_registry', '\"r\"', 'x@y.z')",
        )
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, make_spec({"access": SETTINGS["access"]}))
    stored = await rows(dsn, profile)
    deleted = {c.key for c in result.plan.by_action(Action.DELETE)}
    if profile == "scion":
        assert deleted == {"maintenance", "agent_defaults"}
        assert set(stored) == {"access", "_meta", "telemetry"}
        assert {n["data"]["section"] for n in notes.json()} == deleted
    else:
        assert deleted == {"admin_mode", "maintenance_message", "default_max_turns"}
        assert set(stored) == {"admin_emails", "image_registry"}
        assert len(notes.payloads) == 1
    # With prune off nothing is deleted.
    await apply(dsn, make_spec(SETTINGS))
    result = await apply(dsn, make_spec({"access": SETTINGS["access"]}, policy={"prune": False}))
    assert result.plan.by_action(Action.DELETE) == []


async def _edit_out_of_band(dsn: str, profile: str) -> None:
    if profile == "scion":
        await hub_write_section(dsn, "maintenance", {"admin_mode": False, "maintenance_message": ""})
    else:
        await execute(
            dsn,
            "UPDATE hub_settings SET value = 'false', updated_by = 'admin@example.com' WHERE key = 'admin_mode'",
        )


async def test_enforce_overwrites_out_of_band_edit_and_reports_it(table: tuple[str, str]) -> None:
    profile, dsn = table
    await apply(dsn, make_spec(SETTINGS))
    await _edit_out_of_band(dsn, profile)
    result = await apply(dsn, make_spec(SETTINGS))
    key = "maintenance" if profile == "scion" else "admin_mode"
    [conflict] = result.plan.conflicts
    assert (
        conflict.key == key
        and conflict.current_by == "admin@example.com"
        and conflict.action is Action.UPDATE
    )
    stored = await rows(dsn, profile)
    value = stored[key]["value"]
    assert (value["admin_mode"] if profile == "scion" else value) is True
    assert stored[key]["updated_by"] == "hubsettings-operator:scion/hub"


async def test_report_leaves_out_of_band_edit_and_reports_it(table: tuple[str, str]) -> None:
    profile, dsn = table
    await apply(dsn, make_spec(SETTINGS, policy={"conflicts": "Report"}))
    await _edit_out_of_band(dsn, profile)
    before = await rows(dsn, profile)
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, make_spec(SETTINGS, policy={"conflicts": "Report"}))
    key = "maintenance" if profile == "scion" else "admin_mode"
    [conflict] = result.plan.conflicts
    assert conflict.key == key and conflict.action is Action.CONFLICT
    assert await rows(dsn, profile) == before
    assert notes.payloads == []


async def test_owned_by_other_is_never_overwritten_and_never_flip_flops(table: tuple[str, str]) -> None:
    profile, dsn = table
    await apply(dsn, make_spec(SETTINGS), name="first")
    before = await rows(dsn, profile)
    other = {"maintenance": {"admin_mode": False}}
    for _ in range(3):
        result = await apply(dsn, make_spec(other), name="second")
        assert [c.key for c in result.plan.owned_by_other] == (
            ["maintenance"] if profile == "scion" else ["admin_mode"]
        )
        assert result.plan.value_changes == []
        assert await rows(dsn, profile) == before
        assert (await apply(dsn, make_spec(SETTINGS), name="first")).plan.is_noop


async def test_seeded_section_becomes_managed(db: str) -> None:
    await execute(db, SCION_DDL)
    doc = {"admin_emails": ["ops@example.com"], "user_access_mode": "open", "authorized_domains": []}
    await hub_write_section(db, "access", doc, updated_by="seed", origin="seeded")
    result = await apply(db, make_spec({"access": {"admin_emails": ["ops@example.com"]}}))
    [change] = result.plan.changes
    assert change.action is Action.ADOPT and not change.conflict
    row = (await rows(db, "scion"))["access"]
    assert row["origin"] == "managed" and row["revision"] == 1  # ownership taken, value kept: no reload
    assert row["updated_by"] == "hubsettings-operator:scion/hub"


async def test_concurrent_hub_insert_is_detected_and_replanned(db: str) -> None:
    """The Hub inserts the same section between our read and our write: our insert hits the unique index,
    the transaction is retried, and the re-plan sees the Hub's row instead of overwriting it blindly."""
    await execute(db, SCION_DDL)
    hub = await psycopg.AsyncConnection.connect(db)
    await hub.execute(
        "INSERT INTO hub_settings (id, section, value, revision, updated_by, origin, create_time, update_time) "
        "VALUES (gen_random_uuid(), 'access', '{\"admin_emails\": [\"hub@example.com\"]}', 1, 'admin@example.com', "
        "'managed', now(), now())"
    )
    task = asyncio.create_task(apply(db, make_spec({"access": {"admin_emails": ["ops@example.com"]}})))
    await asyncio.sleep(0.5)  # our insert is now blocked on the Hub's uncommitted row
    assert not task.done()
    await hub.commit()
    await hub.close()
    result = await asyncio.wait_for(task, 10)
    assert result.attempts == 2
    [change] = result.plan.changes
    assert change.action is Action.UPDATE and change.conflict and change.current_by == "admin@example.com"
    row = (await rows(db, "scion"))["access"]
    assert row["revision"] == 2 and row["value"]["admin_emails"] == ["ops@example.com"]


async def test_missing_table_without_create_is_a_clear_error(db: str) -> None:
    with pytest.raises(SchemaMismatch) as info:
        await apply(db, make_spec(SETTINGS))
    assert "does not exist" in str(info.value) and "createTable" in str(info.value)
    with pytest.raises(SchemaMismatch):
        await apply(db, make_spec(SETTINGS), profile="scion")


async def test_create_table_for_proposal_profile(db: str) -> None:
    async with listening(db, PROPOSAL_CHANNEL) as notes:
        result = await apply(db, make_spec(SETTINGS), create_table=True)
    assert result.profile is Profile.PROPOSAL
    assert len(await rows(db, "proposal")) == 4 and len(notes.payloads) == 1
    assert (await apply(db, make_spec(SETTINGS), create_table=True)).plan.is_noop


async def test_incompatible_table_is_refused(db: str) -> None:
    await execute(db, "CREATE TABLE hub_settings (id serial primary key, key text, value text)")
    with pytest.raises(SchemaMismatch) as info:
        await apply(db, make_spec(SETTINGS))
    assert "match neither" in str(info.value)


async def test_database_down_is_a_typed_error_without_the_dsn(pg: PgServer) -> None:
    dsn = f"postgresql://hubsettings_admin:{pg.password}@127.0.0.1:1/hub?connect_timeout=2"
    store = SettingsStore(dsn)
    with pytest.raises(DatabaseUnavailable) as info:
        await store.apply(Target(), lambda p: {}, "o")
    await store.close()
    text = str(info.value) + repr(info.value)
    assert pg.password not in text and "127.0.0.1:1/hub" in text


async def test_permission_denied(table: tuple[str, str], pg: PgServer) -> None:
    profile, dsn = table
    await apply(dsn, make_spec(SETTINGS))
    role, password = f"ro_{profile}", "ro-pass-" + profile
    await execute(pg.superuser_dsn, f"DROP ROLE IF EXISTS {role}")
    await execute(pg.superuser_dsn, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    await execute(dsn, f"GRANT SELECT, INSERT, DELETE ON hub_settings TO {role}")
    ro_dsn = dsn.replace(f"{pg.user}:{pg.password}", f"{role}:{password}")
    with pytest.raises(PermissionDenied) as info:
        await apply(ro_dsn, make_spec({**SETTINGS, "maintenance": {"admin_mode": False}}))
    assert "permission denied" in str(info.value) and password not in str(info.value)


async def test_failure_mid_apply_leaves_table_as_before(table: tuple[str, str], pg: PgServer) -> None:
    """Our apply is blocked half-way (a later row is locked by another session), then its backend is
    killed: nothing of it is visible."""
    profile, dsn = table
    await apply(dsn, make_spec({"access": SETTINGS["access"]}))
    before = await rows(dsn, profile)
    blocker = await psycopg.AsyncConnection.connect(dsn)
    if profile == "scion":
        await blocker.execute(
            "INSERT INTO hub_settings (id, section, value, revision, updated_by, origin, create_time, update_time) "
            "VALUES (gen_random_uuid(), 'maintenance', '{}', 1, 'seed', 'seeded', now(), now())"
        )
    else:
        await blocker.execute(
            "INSERT INTO hub_settings (key, value, updated_by) VALUES ('maintenance_message', '\"\"', 'seed')"
        )
    changed = {**SETTINGS, "access": {"admin_emails": ["new@example.com"]}}
    task = asyncio.create_task(apply(dsn, make_spec(changed)))
    await asyncio.sleep(0.5)
    assert not task.done()
    async with await psycopg.AsyncConnection.connect(pg.superuser_dsn, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hubsettings-operator'"
        )
    with pytest.raises(DatabaseUnavailable):
        await asyncio.wait_for(task, 10)
    await blocker.rollback()
    await blocker.close()
    assert await rows(dsn, profile) == before


async def test_racing_applies_serialize_like_sequential_ones(table: tuple[str, str]) -> None:
    profile, dsn = table
    a = make_spec({"access": SETTINGS["access"], "maintenance": {"admin_mode": True}})
    b = make_spec({"agent_defaults": {"default_max_turns": 7}, "lifecycle": {"auto_suspend_stalled": True}})
    for _ in range(5):
        await asyncio.gather(apply(dsn, a, name="a"), apply(dsn, b, name="b"))
    concurrent = {k: (v["value"], v["updated_by"]) for k, v in (await rows(dsn, profile)).items()}
    await execute(dsn, "DELETE FROM hub_settings")
    await apply(dsn, a, name="a")
    await apply(dsn, b, name="b")
    sequential = {k: (v["value"], v["updated_by"]) for k, v in (await rows(dsn, profile)).items()}
    assert concurrent == sequential


@pytest.mark.parametrize(
    "value",
    ['it\'s "quoted"; DROP TABLE hub_settings; --', "ünïcødé ✓ 日本", "$$ $1 %s %(x)s \\x00", "x" * 60_000],
)
async def test_hostile_values_stored_verbatim(table: tuple[str, str], value: str) -> None:
    profile, dsn = table
    spec = make_spec(
        {"maintenance": {"maintenance_message": value[:4096]}}, extraSettings={"custom.note": value}
    )
    await apply(dsn, spec)
    stored = await rows(dsn, profile)
    assert stored["custom.note"]["value"] == value
    message = (
        stored["maintenance"]["value"]["maintenance_message"]
        if profile == "scion"
        else stored["maintenance_message"]["value"]
    )
    assert message == value[:4096]
    assert (await apply(dsn, spec)).plan.is_noop


async def test_plan_dry_run_writes_nothing(table: tuple[str, str]) -> None:
    profile, dsn = table
    async with listening(dsn, channel(profile)) as notes:
        result = await apply(dsn, make_spec(SETTINGS), dry_run=True)
    assert result.dry_run and len(result.plan.value_changes) > 0
    assert await rows(dsn, profile) == {} and notes.payloads == []
