"""The reference listener (`SettingsCache`, "a Hub replica") against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import psycopg

from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.listener import SettingsCache
from tests.integration.helpers import apply, make_spec
from tests.support.pgserver import PgServer


def admins(cache: SettingsCache) -> object:
    if cache.profile is Profile.SCION:
        doc = cache.snapshot.values.get("access")
        return doc.get("admin_emails") if isinstance(doc, dict) else None
    return cache.snapshot.values.get("admin_emails")


def spec_with(email: str) -> object:
    return make_spec({"access": {"admin_emails": [email]}})


async def test_twenty_replicas_converge_after_one_apply(table: tuple[str, str]) -> None:
    profile, dsn = table
    caches = [SettingsCache(dsn, profile=Profile(profile), poll_interval=60) for _ in range(20)]
    await asyncio.gather(*(c.start() for c in caches))
    try:
        started = time.monotonic()
        await apply(dsn, spec_with("new@example.com"))  # type: ignore[arg-type]
        await asyncio.gather(*(c.wait_for(lambda c: admins(c) == ["new@example.com"], 10) for c in caches))
        elapsed = time.monotonic() - started
        assert all(c.notifications >= 1 for c in caches), "converged by NOTIFY, not by polling"
        assert elapsed < 60  # far below the poll interval: the change came by NOTIFY
    finally:
        await asyncio.gather(*(c.stop() for c in caches))


async def test_listener_reconnects_and_catches_up_after_backend_killed(
    table: tuple[str, str], pg: PgServer
) -> None:
    profile, dsn = table
    await apply(dsn, spec_with("v0@example.com"))  # type: ignore[arg-type]
    cache = SettingsCache(dsn, profile=Profile(profile), poll_interval=60)
    await cache.start()
    try:
        assert admins(cache) == ["v0@example.com"]
        pid = cache.backend_pid
        async with await psycopg.AsyncConnection.connect(pg.superuser_dsn, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # Five changes while it is disconnected: their notifications are lost to it.
            for i in range(1, 6):
                await apply(dsn, spec_with(f"v{i}@example.com"))  # type: ignore[arg-type]
        await cache.wait_for(lambda c: admins(c) == ["v5@example.com"], 15)
        assert cache.reconnects >= 1
        assert cache.backend_pid != pid
    finally:
        await cache.stop()


async def test_poll_fallback_alone_catches_up(table: tuple[str, str]) -> None:
    """With LISTEN unavailable the cache still converges, within its poll interval."""
    profile, dsn = table
    await apply(dsn, spec_with("a@example.com"))  # type: ignore[arg-type]
    cache = SettingsCache(dsn, profile=Profile(profile), listen=False, poll_interval=0.5)
    await cache.start()
    try:
        started = time.monotonic()
        await apply(dsn, spec_with("b@example.com"))  # type: ignore[arg-type]
        await cache.wait_for(lambda c: admins(c) == ["b@example.com"], 5)
        assert time.monotonic() - started <= 0.5 * 1.1 + 1.0
        assert cache.notifications == 0
    finally:
        await cache.stop()


async def test_priority_chain_env_over_table_over_file_over_defaults(table: tuple[str, str]) -> None:
    profile, dsn = table
    await apply(dsn, make_spec({"maintenance": {"admin_mode": True}}))
    key = "maintenance" if profile == "scion" else "admin_mode"
    cache = SettingsCache(
        dsn,
        profile=Profile(profile),
        env={"SCION_SERVER_ADMIN_MODE": False},
        file_values={key: "from-file", "only_in_file": 1},
        defaults={"only_default": 2, key: "default"},
    )
    async with cache:
        assert cache.get(key, "SCION_SERVER_ADMIN_MODE") is False
        table_value = cache.get(key)
        assert table_value == (
            {"admin_mode": True, "maintenance_message": ""} if profile == "scion" else True
        )
        assert cache.get("only_in_file") == 1
        assert cache.get("only_default") == 2
