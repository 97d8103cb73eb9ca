"""What the operator can tell about a Hub replica, against a real PostgreSQL and real stand-in replica processes
that behave as the Hub does (`tests/support/hub_standin.py`): the listener connection found whatever channel its last
statement named (the global one or a per-project `scion_ev_g_<id>`, LISTEN or UNLISTEN), what a database role
must be allowed to see for that, and the server-config answer of a replica (its own registry only, omitted
empty fields, its version, the Hub's 401 messages and 403).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from hubsettings_operator.table.replicas import ListenerView, listener_view
from tests.integration.helpers import apply, make_spec
from tests.support.hubdb import SCION_DDL, execute
from tests.support.pgserver import PgServer, free_port
from tests.support.standin import StandInProcess, allow_loopback_clients
from tests.support.waits import poll

TOKEN = "scion_pat_" + base64.b32encode(os.urandom(10)).decode().lower()
FORBIDDEN = "scion_pat_" + base64.b32encode(os.urandom(10)).decode().lower()
CHANNEL = "scion_ev_global"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    return poll(probe, timeout=timeout, interval=0.1, what=what)


def role_dsn(pg: PgServer, db: str, role: str, password: str) -> str:
    return pg.dsn(db.rsplit("/", 1)[1].split("?", maxsplit=1)[0], user=role, password=password)


@pytest.fixture
def roles(pg: PgServer, db: str) -> Iterator[Callable[[str], tuple[str, str]]]:
    """Make a login role on the test database: returns (role, password); dropped afterwards."""
    made: list[str] = []

    def make(prefix: str) -> tuple[str, str]:
        role, password = f"{prefix}_{secrets.token_hex(4)}", "pw-" + secrets.token_hex(8)
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
                )
            )
            conn.execute(
                psycopg.sql.SQL("GRANT ALL ON TABLE hub_settings TO {}").format(psycopg.sql.Identifier(role))
            )
        made.append(role)
        return role, password

    yield make
    with psycopg.connect(db, autocommit=True) as conn:
        for role in made:
            conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


@pytest.fixture
async def hub_table(pg: PgServer, db: str) -> str:
    allow_loopback_clients(pg)
    await execute(db, SCION_DDL)
    return db


async def view(dsn: str) -> ListenerView:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await listener_view(conn, CHANNEL)


def last_statement(db: str, ip: str) -> list[str]:
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE host(client_addr) = %s AND query ILIKE %s",
            (ip, "%listen%"),
        ).fetchall()
    return [str(r[0]) for r in rows]


async def test_listener_found_whatever_channel_it_named_last(
    hub_table: str, pg: PgServer, roles: Callable[[str], tuple[str, str]], tmp_path: Path
) -> None:
    """The replica's listener LISTENs a project channel, then UNLISTENs it: pg_stat_activity shows that last
    statement, not `LISTEN "scion_ev_global"`, and the connection is still recognised as its listener."""
    hub_role, hub_pw = roles("hub")
    hub_dsn = role_dsn(pg, hub_table, hub_role, hub_pw)
    ip = "127.0.0.41"
    replica = StandInProcess(hub_dsn, ip, free_port(), TOKEN, tmp_path).start()
    try:
        assert (await view(hub_table)).listening(ip) is True
        project = "0f3c9a52-7d1e-4c55-9a10-b2f1e3c4d5e6"  # a UUID with hyphens, as the Hub's project ids
        replica.control("project", id=project, state="watch")
        eventually(lambda: f'LISTEN "scion_ev_g_{project}"' in last_statement(hub_table, ip), 10, "LISTEN")
        assert (await view(hub_table)).listening(ip) is True
        replica.control("project", id=project, state="unwatch")
        eventually(
            lambda: f'UNLISTEN "scion_ev_g_{project}"' in last_statement(hub_table, ip), 10, "UNLISTEN"
        )
        seen = await view(hub_table)
        assert seen.listening(ip) is True and seen.complete
        # Seen by the Hub's own role too (a role sees its own sessions without pg_read_all_stats).
        assert (await view(hub_dsn)).listening(ip) is True
        # No listener: False (every session is visible), not merely unknown.
        replica.control("listener", state="off")
        assert (await view(hub_table)).listening(ip) is False
    finally:
        replica.stop()


async def test_what_the_role_must_see(
    hub_table: str, pg: PgServer, roles: Callable[[str], tuple[str, str]], tmp_path: Path
) -> None:
    """Another role without pg_read_all_stats sees the listener's session as `<insufficient privilege>` with no
    client address: `listening` is null (cannot tell), never a false "no listener". pg_read_all_stats fixes it."""
    hub_role, hub_pw = roles("hub")
    observer, observer_pw = roles("observer")
    ip = "127.0.0.42"
    replica = StandInProcess(
        role_dsn(pg, hub_table, hub_role, hub_pw), ip, free_port(), TOKEN, tmp_path
    ).start()
    try:
        blind = await view(role_dsn(pg, hub_table, observer, observer_pw))
        assert not blind.complete and blind.listening(ip) is None
        with psycopg.connect(hub_table, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("GRANT pg_read_all_stats TO {}").format(psycopg.sql.Identifier(observer))
            )
        seen = await view(role_dsn(pg, hub_table, observer, observer_pw))
        assert seen.complete and seen.listening(ip) is True and seen.listening("127.0.0.99") is False
    finally:
        replica.stop()


async def test_server_config_answers_like_the_hub(hub_table: str, tmp_path: Path) -> None:
    """An older replica (registry of two sections, version 0.2.4): every section of its registry and no other,
    absent ones as `default`, no null fields; the Hub's 401 messages and its 403 for a principal without
    hub.config.read."""
    await apply(
        hub_table,
        make_spec(
            {
                "maintenance": {"admin_mode": False, "maintenance_message": "hi"},
                "telemetry": {"enabled": False},
            }
        ),
    )
    with psycopg.connect(hub_table) as conn:
        revision = conn.execute("SELECT revision FROM hub_settings WHERE section = 'maintenance'").fetchone()
    assert revision is not None
    replica = StandInProcess(
        hub_table,
        "127.0.0.43",
        free_port(),
        TOKEN,
        tmp_path,
        sections=["access", "maintenance"],
        version="0.2.4",
        forbidden_token=FORBIDDEN,
    ).start()
    try:
        status, body = replica.server_config(TOKEN)
        assert status == 200
        assert body["scion_version"] == "0.2.4" and body["settings_tier"] == "db" and body["scion_commit"]
        # telemetry is in the table but not in this replica's registry: never listed.
        assert body["section_metadata"] == {
            "access": {"source": "default"},
            "maintenance": {"source": "db", "revision": int(revision[0])},
        }
        assert not _nulls(body)
        assert replica.server_config(None) == (
            401,
            {"error": {"code": "unauthorized", "message": "missing authorization header"}},
        )
        assert replica.server_config("scion_pat_wrong")[1]["error"]["message"] == "invalid access token"
        assert replica.server_config("scion_dev_wrong")[1]["error"]["message"] == "invalid development token"
        assert replica.server_config(FORBIDDEN) == (
            403,
            {"error": {"code": "forbidden", "message": "Insufficient permissions"}},
        )
        # The newest registry by default: every section, absent ones as default.
        newest = StandInProcess(hub_table, "127.0.0.44", replica.port, TOKEN, tmp_path, name="newest").start()
        try:
            meta = newest.server_config(TOKEN)[1]["section_metadata"]
            assert meta["telemetry"]["source"] == "db" and meta["access"] == {"source": "default"}
            assert len(meta) > 10
        finally:
            newest.stop()
    finally:
        replica.stop()


def _nulls(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _nulls(v) for v in value.values())
    if isinstance(value, list):
        return any(_nulls(v) for v in value)
    return False
