"""`hubsettings plan` / `apply` / `watch` against a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hubdb import rows
from tests.support.pgserver import PgServer

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = """apiVersion: scion.dev/v1alpha1
kind: HubSettings
metadata: {name: hub, namespace: scion}
spec:
  database: {secretRef: {name: hub-db}, createTable: true}
  settings:
    access: {admin_emails: [ops@example.com]}
    maintenance: {admin_mode: %s}
"""


def run(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubsettings_operator.cli", *args],
        capture_output=True,
        text=True,
        env={"HUBSETTINGS_DSN": dsn, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


async def test_plan_apply_plan_cycle(db: str, tmp_path: Path, pg: PgServer) -> None:
    hs = tmp_path / "hs.yaml"
    hs.write_text(MANIFEST % "true")
    planned = run("plan", "-f", str(hs), dsn=db)
    assert planned.returncode == 2, planned.stderr
    assert "+ admin_emails" in planned.stdout and "Plan: 2 to add" in planned.stdout
    assert await rows(db, "proposal") == {}  # plan never writes (nor creates the table)

    applied = run("apply", "-f", str(hs), dsn=db)
    assert applied.returncode == 0, applied.stderr
    assert "1 NOTIFY sent" in applied.stdout
    assert len(await rows(db, "proposal")) == 2

    assert run("plan", "-f", str(hs), dsn=db).returncode == 0

    hs.write_text(MANIFEST % "false")
    changed = run("plan", "-f", str(hs), dsn=db)
    assert changed.returncode == 2 and "~ admin_mode" in changed.stdout and "true -> false" in changed.stdout
    for out in (planned, applied, changed):
        assert pg.password not in out.stdout + out.stderr


def test_invalid_manifest_exits_one_without_touching_the_database(tmp_path: Path) -> None:
    hs = tmp_path / "hs.yaml"
    hs.write_text((MANIFEST % "true").replace("access:", "log_level: debug\n    access:"))
    result = run("apply", "-f", str(hs), dsn="postgresql://nobody@127.0.0.1:1/x")
    assert result.returncode == 1 and "spec.settings.log_level" in result.stdout


@pytest.mark.parametrize("cmd", ["plan", "apply"])
def test_database_down_exits_one_with_redacted_message(cmd: str, tmp_path: Path) -> None:
    hs = tmp_path / "hs.yaml"
    hs.write_text(MANIFEST % "true")
    result = run(cmd, "-f", str(hs), dsn="postgresql://u:topsecretpw@127.0.0.1:1/x?connect_timeout=2")
    assert result.returncode == 1
    assert "DatabaseUnavailable" in result.stderr and "127.0.0.1:1/x" in result.stderr
    assert "topsecretpw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


async def test_watch_prints_each_change_with_latency(table: tuple[str, str], tmp_path: Path) -> None:
    import asyncio

    from tests.integration.helpers import apply, make_spec

    profile, dsn = table
    await apply(dsn, make_spec({"maintenance": {"admin_mode": False}}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hubsettings_operator.cli",
        "watch",
        "--count",
        "1",
        env={"HUBSETTINGS_DSN": dsn, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 20)  # "watching ..." once connected
    assert b"watching hub_settings" in line and profile.encode() in line
    await apply(dsn, make_spec({"maintenance": {"admin_mode": True}}))
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    text = out.decode()
    assert proc.returncode == 0
    key = "maintenance" if profile == "scion" else "admin_mode"
    assert f"{key}:" in text and "ms after NOTIFY" in text
    assert "true" in text


async def test_plan_on_the_shipped_hub_table_shows_complete_documents_and_unset_fields(
    db: str, tmp_path: Path
) -> None:
    from tests.support.hubdb import SCION_DDL, execute

    await execute(db, SCION_DDL)
    hs = tmp_path / "hs.yaml"
    hs.write_text(
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\nmetadata: {name: hub, namespace: scion}\n"
        "spec:\n  database: {secretRef: {name: hub-db}}\n"
        "  settings:\n    access: {admin_emails: [ops@example.com]}\n    agent_defaults: {default_max_turns: 50}\n"
    )
    planned = run("plan", "-f", str(hs), dsn=db)
    assert planned.returncode == 2, planned.stderr
    assert "profile scion" in planned.stdout
    # The access document is complete: the defaults the CR left out are shown and written.
    assert '"user_access_mode": "open"' in planned.stdout
    assert "note: agent_defaults:" in planned.stdout and "default_max_model_calls" in planned.stdout
