"""`hubsettings plan` / `apply` never report success they did not achieve, and honour the per-section policy
(real PostgreSQL, the CLI as a subprocess).

Covers: rows owned by another HubSettings (exit 4, named owner), `spec.suspend` (skipped; exit 5 when nothing
else applied), a failing manifest among several (per-manifest summary of what was committed), invalid section
documents refused with nothing written and no NOTIFY, maintenance under Observe never written, a section under
Report keeping an admin's edit, and plan listing unvalidated sections and Hub version requirements.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hubsettings_operator.cli.exitcodes import ExitCode
from tests.integration.test_cli_db import run
from tests.support.hubdb import SCION_DDL, execute, hub_write_section, rows
from tests.support.pgserver import PgServer

CHANNELS = ("scion_ev_global", "scion_settings_changed")


def manifest(
    name: str, settings: str, *, extra_spec: str = "", database: str = "{secretRef: {name: hub-db}}"
) -> str:
    return (
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\n"
        f"metadata: {{name: {name}, namespace: scion}}\n"
        f"spec:\n  database: {database}\n  settings:\n{settings}{extra_spec}"
    )


def write(tmp_path: Path, name: str, *docs: str) -> str:
    path = tmp_path / name
    path.write_text("---\n".join(docs))
    return str(path)


@asynccontextmanager
async def notifications(dsn: str) -> AsyncIterator[list[str]]:
    """Payloads NOTIFYed on the Hub's channels while the block runs. Exact, not timed: after the block a
    sentinel is sent, and notifications arrive in commit order, so all earlier ones are in once it is."""
    got: list[str] = []
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    conn.add_notify_handler(lambda n: got.append(n.payload))
    for channel in CHANNELS:
        await conn.execute(f"LISTEN {channel}")
    try:
        yield got
        await conn.execute("SELECT pg_notify(%s, 'sentinel')", (CHANNELS[0],))
        for _ in range(1000):
            if "sentinel" in got:
                break
            await conn.execute("SELECT 1")
            await asyncio.sleep(0.01)
        assert "sentinel" in got
        got.remove("sentinel")
    finally:
        await conn.close()


@pytest.fixture
async def scion(db: str) -> str:
    await execute(db, SCION_DDL)
    return db


def stable(table: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {k: (r["value"], r.get("revision"), r["updated_by"], r["updated_at"]) for k, r in table.items()}


# ---- owned by another HubSettings ---------------------------------------------------------------------


async def test_rows_owned_by_another_hubsettings_are_not_reported_as_no_changes(
    scion: str, tmp_path: Path
) -> None:
    access = "    access: {admin_emails: [ops@example.com]}\n"
    first = write(tmp_path, "a.yaml", manifest("a", access))
    assert run("apply", "-f", first, dsn=scion).returncode == ExitCode.OK
    before = stable(await rows(scion, "scion"))
    # Same value, other manifest: the old CLI said "No changes. The table matches the HubSettings." and exit 0.
    second = write(tmp_path, "b.yaml", manifest("b", access))
    for cmd in ("plan", "apply"):
        out = run(cmd, "-f", second, dsn=scion)
        assert out.returncode == ExitCode.NOT_OWNED, out.stdout + out.stderr
        assert "No changes" not in out.stdout
        assert "owned by hubsettings-operator:scion/a" in out.stdout
        assert "NOT written: access" in out.stdout
    assert stable(await rows(scion, "scion")) == before


# ---- suspend -------------------------------------------------------------------------------------------


async def test_apply_skips_a_suspended_manifest(scion: str, tmp_path: Path) -> None:
    suspended = manifest(
        "a", "    access: {admin_emails: [ops@example.com]}\n", extra_spec="  suspend: true\n"
    )
    only = write(tmp_path, "s.yaml", suspended)
    async with notifications(scion) as got:
        out = run("apply", "-f", only, dsn=scion)
    assert out.returncode == ExitCode.SUSPENDED, out.stdout + out.stderr
    assert "scion/a: skipped: spec.suspend is true" in out.stdout
    assert await rows(scion, "scion") == {} and got == []

    # With another manifest that applies, the run succeeds; the suspended one still writes nothing.
    other = manifest("b", "    maintenance: {admin_mode: false}\n")
    both = write(tmp_path, "both.yaml", suspended, other)
    out = run("apply", "-f", both, dsn=scion)
    assert out.returncode == ExitCode.OK, out.stdout + out.stderr
    assert "scion/a: skipped" in out.stdout and "scion/b: committed: 1 row(s) written" in out.stdout
    assert set(await rows(scion, "scion")) == {"maintenance"}

    # plan shows what resuming would do, but does not count it as a change apply would make.
    planned = run("plan", "-f", only, dsn=scion)
    assert planned.returncode == ExitCode.SUSPENDED
    assert "suspended (spec.suspend: true): apply skips this manifest" in planned.stdout
    assert "+ access" in planned.stdout


# ---- several manifests, one failing ------------------------------------------------------------------


async def test_apply_reports_what_was_committed_when_a_later_manifest_fails(
    scion: str, tmp_path: Path, pg: PgServer
) -> None:
    good = manifest("a", "    access: {admin_emails: [ops@example.com]}\n")
    # Valid offline, fails against the database: its table does not exist (and is not the Hub's to create).
    bad = manifest(
        "b",
        "    maintenance: {admin_mode: true}\n",
        database="{secretRef: {name: hub-db}, table: missing_settings}",
    )
    path = write(tmp_path, "two.yaml", good, bad)
    async with notifications(scion) as got:
        out = run("apply", "-f", path, dsn=scion)
    assert out.returncode == ExitCode.ERROR
    assert "scion/a: committed: 1 row(s) written, 1 NOTIFY sent" in out.stdout
    assert "scion/b: FAILED (SchemaMismatch): nothing of it written (rolled back)" in out.stdout
    assert "missing_settings" in out.stdout and "error (SchemaMismatch) in scion/b" in out.stderr
    assert set(await rows(scion, "scion")) == {"access"}
    assert len(got) == 1 and '"section":"access"' in got[0]
    assert pg.password not in out.stdout + out.stderr


# ---- invalid section documents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "path"),
    [
        ("    quotas: {bogus_field: 1}\n", "spec.settings.quotas.bogus_field"),
        (
            '    messaging: {cross_project_messaging_enabled: "yes"}\n',
            "spec.settings.messaging.cross_project_messaging_enabled",
        ),
    ],
)
async def test_apply_refuses_invalid_section_documents_and_writes_nothing(
    table: tuple[str, str], tmp_path: Path, settings: str, path: str
) -> None:
    profile, dsn = table
    base = write(
        tmp_path,
        "base.yaml",
        manifest(
            "hub",
            "    quotas: {enforce_broker_quotas: false}\n    messaging: {cross_project_messaging_enabled: false}\n",
        ),
    )
    assert run("apply", "-f", base, dsn=dsn).returncode == ExitCode.OK
    before = stable(await rows(dsn, profile))
    bad = write(tmp_path, "bad.yaml", manifest("hub", settings))
    async with notifications(dsn) as got:
        out = run("apply", "-f", bad, dsn=dsn)
    assert out.returncode == ExitCode.ERROR
    assert path in out.stdout
    assert stable(await rows(dsn, profile)) == before
    assert got == []


# ---- per-section policy ---------------------------------------------------------------------------------

OBSERVED = manifest(
    "hub",
    "    access: {admin_emails: [ops@example.com]}\n    maintenance: {admin_mode: false}\n",
    extra_spec="  policy:\n    sections:\n      maintenance: {conflicts: Observe}\n",
)


async def test_maintenance_under_observe_is_never_written(table: tuple[str, str], tmp_path: Path) -> None:
    profile, dsn = table
    key = "maintenance" if profile == "scion" else "admin_mode"
    path = write(tmp_path, "hub.yaml", OBSERVED)
    # No row yet: Observe does not insert one.
    out = run("apply", "-f", path, dsn=dsn)
    assert out.returncode == ExitCode.OK, out.stdout + out.stderr
    written = await rows(dsn, profile)
    assert set(written) == {"access" if profile == "scion" else "admin_emails"}
    # An admin switches maintenance on through the Hub: it differs from the spec and stays as it is.
    if profile == "scion":
        await hub_write_section(dsn, "maintenance", {"admin_mode": True, "maintenance_message": "upgrade"})
    else:
        await execute(
            dsn,
            "INSERT INTO hub_settings (key, value, updated_by) VALUES ('admin_mode', 'true', 'admin@example.com')",
        )
    before = stable(await rows(dsn, profile))
    for cmd in ("plan", "apply"):
        async with notifications(dsn) as got:
            out = run(cmd, "-f", path, dsn=dsn)
        assert out.returncode == ExitCode.OK, out.stdout + out.stderr
        assert f"? {key} (observed drift: policy Observe, not written)" in out.stdout
        assert "true -> false" in out.stdout
        assert f"observed drift (policy Observe, not written): {key}" in out.stdout
        assert got == []
    assert stable(await rows(dsn, profile)) == before


async def test_an_admin_edit_under_report_is_kept_and_reported(scion: str, tmp_path: Path) -> None:
    # CR-wide Enforce, maintenance Report: the per-section mode must win for maintenance only.
    path = write(
        tmp_path,
        "hub.yaml",
        manifest(
            "hub",
            "    access: {admin_emails: [ops@example.com]}\n    maintenance: {admin_mode: false}\n",
            extra_spec="  policy:\n    conflicts: Enforce\n    sections:\n      maintenance: {conflicts: Report}\n",
        ),
    )
    assert run("apply", "-f", path, dsn=scion).returncode == ExitCode.OK
    await hub_write_section(scion, "maintenance", {"admin_mode": True, "maintenance_message": "upgrade"})
    await hub_write_section(scion, "access", {"admin_emails": ["intruder@example.com"]})
    before = (await rows(scion, "scion"))["maintenance"]
    async with notifications(scion) as got:
        out = run("apply", "-f", path, dsn=scion)
    assert out.returncode == ExitCode.OK, out.stdout + out.stderr
    assert (
        "! maintenance (edited out of band by admin@example.com; left alone by policy Report)" in out.stdout
    )
    assert "left as found (policy Report): maintenance" in out.stdout
    after = await rows(scion, "scion")
    assert after["maintenance"] == before  # kept
    assert after["access"]["value"]["admin_emails"] == ["ops@example.com"]  # Enforce elsewhere
    assert len(got) == 1 and '"section":"access"' in got[0]


# ---- plan says everything -------------------------------------------------------------------------------


async def test_plan_lists_unvalidated_sections_and_hub_versions(scion: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "hub.yaml",
        manifest(
            "hub",
            "    quotas: {enforce_broker_quotas: false}\n    lifecycle: {stalled_threshold: 10m}\n",
            extra_spec="  extraSettings:\n    future_section: {on: true}\n",
        ),
    )
    out = run("plan", "-f", path, dsn=scion)
    assert out.returncode == ExitCode.CHANGES, out.stdout + out.stderr
    assert "unvalidated: future_section (spec.extraSettings" in out.stdout
    assert "spec.hubVersion is unset" in out.stdout
    assert "spec.settings.quotas needs Hub >= 0.2.22" in out.stdout
    assert "spec.settings.lifecycle.stalled_threshold needs Hub >= 0.2.22" in out.stdout
