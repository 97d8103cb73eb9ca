"""Reference listener: the Hub's settings cache in Python (load, LISTEN, reload on NOTIFY, poll backstop).

`SettingsCache` behaves like one Hub replica: it LISTENs on the profile's channel on a dedicated autocommit
connection, reloads every row on each notification, reloads everything after any reconnect (notifications
sent while it was disconnected are lost), and polls as a fallback. Values are resolved through the Hub's
priority chain: env var > table > settings.yaml > defaults.

Used by the integration and e2e tests and the benchmarks as "a Hub replica", and by `hubsettings watch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from hubsettings_operator.redact import describe_dsn, register_dsn
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.layouts import layout_for

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.25
BACKOFF_MAX_S = 10.0


@dataclass(frozen=True)
class Snapshot:
    """All rows of the table at one reload. `revisions` is filled for the scion profile only."""

    values: dict[str, Any]
    revisions: dict[str, int] = field(default_factory=dict)


ChangeCallback = Callable[[str, Any, Any], None]


class SettingsCache:
    """A cache of the settings table that converges on every committed change.

    `version` increases by one each time the cached values change; `await wait_for(...)` lets tests and
    benchmarks wait for a condition without sleeping.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "hub_settings",
        profile: Profile = Profile.PROPOSAL,
        channel: str = "",
        listen: bool = True,
        poll_interval: float = 30.0,
        env: Mapping[str, Any] | None = None,
        file_values: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        on_change: ChangeCallback | None = None,
    ) -> None:
        if profile is Profile.AUTO:
            raise ValueError("SettingsCache needs a concrete profile (scion or proposal)")
        register_dsn(dsn)
        self._dsn = dsn
        self._table = sql.Identifier(*table.split("."))
        self.profile = profile
        self._layout = layout_for(profile)
        self.channel = channel or self._layout.channel
        self.listen = listen
        self.poll_interval = poll_interval
        self.env = dict(env or {})
        self.file_values = dict(file_values or {})
        self.defaults = dict(defaults or {})
        self.on_change = on_change
        self.snapshot = Snapshot(values={})
        self.version = 0
        self.notifications = 0
        self.reconnects = 0
        self.last_notify_at: float | None = None
        self.last_change_at: float | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self._conn: psycopg.AsyncConnection[Any] | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def start(self, wait: bool = True, timeout: float = 10.0) -> None:
        self._task = asyncio.create_task(self._run(), name=f"settings-cache-{describe_dsn(self._dsn)}")
        if wait:
            await asyncio.wait_for(self._ready.wait(), timeout)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    async def __aenter__(self) -> SettingsCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def backend_pid(self) -> int | None:
        """PID of the server backend serving this cache (tests terminate it to simulate a lost connection)."""
        return self._conn.info.backend_pid if self._conn is not None and not self._conn.closed else None

    # ---- reading values -----------------------------------------------------------------------------

    def get(self, key: str, env_name: str | None = None) -> Any:
        """A value through the Hub's priority chain: env var > table > settings.yaml > defaults."""
        if env_name and env_name in self.env:
            return self.env[env_name]
        if key in self.snapshot.values:
            return self.snapshot.values[key]
        if key in self.file_values:
            return self.file_values[key]
        return self.defaults.get(key)

    async def wait_for(self, predicate: Callable[[SettingsCache], bool], timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)

    # ---- the loop -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        first = True
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=5, application_name="hubsettings-cache"
                ) as conn:
                    self._conn = conn
                    if self.listen:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    if not first:
                        self.reconnects += 1
                    first = False
                    # Anything sent while we were away is lost: reload everything after (re)connecting.
                    await self._reload(conn)
                    self._ready.set()
                    backoff = BACKOFF_MIN_S
                    await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.debug(
                    "settings cache connection lost (%s); retrying in %.2fs", type(exc).__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while not self._stopping:
            deadline = self.poll_interval * (1 + random.uniform(0, 0.1))
            if self.listen:
                got = False
                async for _note in conn.notifies(timeout=deadline, stop_after=1):
                    got = True
                if got:
                    self.notifications += 1
                    self.last_notify_at = time.monotonic()
                    # Coalesce a burst: drain what is already queued, then reload once.
                    async for _note in conn.notifies(timeout=0.0):
                        self.notifications += 1
            else:
                await asyncio.sleep(deadline)
            await self._reload(conn)

    async def _reload(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            cur = await conn.execute(self._layout.select_rows(self._table, lock=False))
            rows = await cur.fetchall()
        except psycopg.errors.UndefinedTable:
            rows = []
        values: dict[str, Any] = {}
        revisions: dict[str, int] = {}
        for key, raw, _by, _at, revision, _origin in rows:
            values[key], _bad = self._layout.parse(raw)
            revisions[key] = int(revision or 0)
        old = self.snapshot
        # Like the Hub: apply a snapshot only if something changed (scion: a revision; proposal: a value).
        # The shipped Hub applies a section only when its revision changed: a value rewritten without a
        # revision bump is cached but never applied. Mirror that, so tests catch a missing bump.
        changed = revisions != old.revisions if self._layout.revisioned else values != old.values
        if not changed:
            return
        self.snapshot = Snapshot(values=values, revisions=revisions)
        self.last_change_at = time.monotonic()
        if self.on_change is not None:
            for key in sorted(set(values) | set(old.values)):
                if values.get(key) != old.values.get(key):
                    self.on_change(key, old.values.get(key), values.get(key))
        async with self._changed:
            self.version += 1
            self._changed.notify_all()
