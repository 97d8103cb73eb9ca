"""Adopting a running Hub: `hubsettings import --dsn-file` then `apply`, on a real PostgreSQL, both layouts.

Import then apply changes no value, bumps no revision and sends no NOTIFY; switching one section to Enforce
and changing one field then writes exactly that change.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.hubdb import execute, hub_write_section, listening, rows
from tests.support.pgserver import PgServer

OTHER = "hubsettings-operator:team-b/other"
FULL_ACCESS = {"admin_emails": ["ops@example.com"], "user_access_mode": "open", "authorized_domains": []}


def cli(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if dsn is not None:
        env["HUBSETTINGS_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "hubsettings_operator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def seed_scion(dsn: str) -> None:
    await hub_write_section(dsn, "access", FULL_ACCESS)  # edited by an admin in the UI
    await hub_write_section(dsn, "access", {**FULL_ACCESS, "admin_emails": ["root@example.com"]})
    await hub_write_section(
        dsn, "quotas", {"enforce_broker_quotas": True}, updated_by="seed", origin="seeded"
    )
    await hub_write_section(dsn, "maintenance", {"admin_mode": True})  # leaves maintenance_message out
    await hub_write_section(dsn, "future_section", {"knob": 3})  # a newer Hub's section
    await hub_write_section(dsn, "lifecycle", {"auto_suspend_stalled": True}, updated_by=OTHER)
    await hub_write_section(dsn, "_meta", {"schema": 1}, updated_by="migration", origin="seeded")


async def seed_proposal(dsn: str) -> None:
    for key, value, by in (
        ("admin_emails", ["root@example.com"], "admin@example.com"),
        ("user_access_mode", "open", "admin@example.com"),
        ("telemetry_enabled", False, None),
        ("future.knob", {"a": 1}, "admin@example.com"),
        ("admin_mode", True, OTHER),
    ):
        await execute(
            dsn,
            "INSERT INTO hub_settings (key, value, updated_by) VALUES (%s, %s, %s)",
            (key, json.dumps(value), by),
        )


def import_manifest(dsn: str, tmp_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(dsn + "\n")
    out = cli("import", "--dsn-file", str(dsn_file), "--name", "hub", "--namespace", "scion", *flags)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout), out.stderr


def apply_manifest(manifest: dict[str, Any], dsn: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "hs.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return cli("apply", "-f", str(path), dsn=dsn)


def values(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: (r["value"], r.get("revision")) for k, r in found.items()}


@pytest.mark.parametrize("observe", [False, True], ids=["enforce", "observe"])
async def test_import_then_apply_changes_nothing_then_one_field_changes_exactly_that(
    table: tuple[str, str], tmp_path: Path, pg: PgServer, observe: bool
) -> None:
    profile, dsn = table
    await (seed_scion(dsn) if profile == "scion" else seed_proposal(dsn))
    channel = "scion_ev_global" if profile == "scion" else "scion_settings_changed"
    manifest, stderr = import_manifest(dsn, tmp_path, *(["--observe"] if observe else []))
    spec = manifest["spec"]
    assert pg.password not in stderr + json.dumps(manifest)

    # Every known section typed, the unknown one under extraSettings, the other HubSettings' row left out.
    assert spec["settings"]["access"]["admin_emails"] == ["root@example.com"]
    assert spec["database"]["profile"] == profile
    if profile == "scion":
        assert spec["extraSettings"] == {"future_section": {"knob": 3}}
        assert "lifecycle" not in spec["settings"] and "_meta" not in spec.get("extraSettings", {})
        assert "left out: lifecycle is owned by team-b/other" in stderr
    else:
        assert spec["extraSettings"] == {"future.knob": {"a": 1}}
        assert spec["settings"]["telemetry"] == {"enabled": False}
        assert "maintenance" not in spec["settings"]
        assert "left out: admin_mode is owned by team-b/other" in stderr
    sections = spec.get("policy", {}).get("sections", {})
    if observe:
        assert set(sections) == {*spec["settings"], *spec["extraSettings"]}
        assert all(p == {"conflicts": "Observe"} for p in sections.values())
    elif profile == "scion":
        # The Hub's row leaves maintenance_message out: applying the typed section would add it, so the
        # import keeps that section observed and says so.
        assert sections == {"maintenance": {"conflicts": "Observe"}}
        assert "maintenance: applying it would change row(s) maintenance" in stderr
    else:
        assert sections == {}

    before = await rows(dsn, profile)
    async with listening(dsn, channel) as heard:
        applied = apply_manifest(manifest, dsn, tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = await rows(dsn, profile)
    assert values(after) == values(before)  # no value changed, no revision bumped
    assert heard.payloads == []  # no NOTIFY
    owned = {k for k, r in after.items() if r["updated_by"] == "hubsettings-operator:scion/hub"}
    if observe:
        assert owned == set()  # Observe never writes, not even ownership
    else:
        assert owned == (
            {"access", "quotas", "future_section"}
            if profile == "scion"
            else {"admin_emails", "user_access_mode", "telemetry_enabled", "future.knob"}
        )
    other_key = "lifecycle" if profile == "scion" else "admin_mode"
    assert after[other_key] == before[other_key] and after[other_key]["updated_by"] == OTHER

    # Switch access to Enforce and change one field: exactly that change.
    sections.pop("access", None)
    spec["settings"]["access"]["user_access_mode"] = "invite_only"
    async with listening(dsn, channel) as heard:
        applied = apply_manifest(manifest, dsn, tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    final = await rows(dsn, profile)
    key = "access" if profile == "scion" else "user_access_mode"
    changed = {k for k in final if values(final)[k] != values(after)[k]}
    assert changed == {key}
    if profile == "scion":
        assert final[key]["value"] == {**after[key]["value"], "user_access_mode": "invite_only"}
        assert final[key]["revision"] == after[key]["revision"] + 1
        assert [n["data"] for n in heard.json()] == [
            {"section": "access", "revision": final[key]["revision"]}
        ]
    else:
        assert final[key]["value"] == "invite_only"
        [note] = heard.json()
        assert note["keys"] == ["user_access_mode"]


async def test_import_refuses_two_sources_and_names_a_missing_table(db: str, tmp_path: Path) -> None:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(db)
    settings = tmp_path / "settings.yaml"
    settings.write_text("{}")
    both = cli("import", "--dsn-file", str(dsn_file), "--settings-yaml", str(settings), "--name", "hub")
    assert both.returncode == 2 and "exactly one of" in both.stderr
    missing = cli("import", "--dsn-file", str(dsn_file), "--name", "hub")
    assert missing.returncode == 1 and "hub_settings does not exist" in missing.stderr
