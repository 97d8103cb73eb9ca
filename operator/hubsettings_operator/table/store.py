"""The store: reads and writes the Hub's settings table in PostgreSQL, one transaction per apply.

An apply is: advisory lock on the table -> (proposal, if allowed) create the table -> detect the profile from
the table's columns -> read rows `FOR UPDATE` -> `plan.make_plan` -> write exactly the plan -> `pg_notify`
in the same transaction if and only if a value changed. Replicas therefore never see half of a change
(notifications are delivered at commit) and a no-op apply writes nothing and notifies nobody.

Identifiers go through `psycopg.sql.Identifier`, values are parameters. Every database error is mapped to
one of the typed errors of `errors.py`, whose messages never contain the DSN or its password.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hubsettings_operator.errors import (
    ConcurrentWrite,
    DatabaseUnavailable,
    HubSettingsError,
    PermissionDenied,
    SchemaMismatch,
)
from hubsettings_operator.redact import describe_dsn, register_dsn
from hubsettings_operator.spec.models import IDENTIFIER_PATTERN, TABLE_PATTERN, Profile
from hubsettings_operator.table import layout as profiles
from hubsettings_operator.table.plan import (
    Action,
    Change,
    ConflictPolicy,
    CurrentRow,
    JSONValue,
    Plan,
    canonical_json,
    make_plan,
)

log = logging.getLogger(__name__)

# Advisory lock namespace, so our key never collides with the Hub's own `hub_settings_seed` lock.
LOCK_PREFIX = "hubsettings-operator:"
MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class StoreOptions:
    """Connection behaviour: bounded waits everywhere, so a sick database yields an error, not a hang."""

    connect_timeout: int = 5
    statement_timeout_ms: int = 15_000
    lock_timeout_ms: int = 10_000
    pool_timeout: float = 10.0
    pool_max_size: int = 4
    application_name: str = "hubsettings-operator"

    def connect_kwargs(self) -> dict[str, Any]:
        return {
            "connect_timeout": self.connect_timeout,
            "application_name": self.application_name,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "options": (
                f"-c statement_timeout={self.statement_timeout_ms} -c lock_timeout={self.lock_timeout_ms} "
                "-c idle_in_transaction_session_timeout=60000"
            ),
        }


@dataclass(frozen=True)
class Target:
    """Where and how to write: the table, the profile (may be auto), the channel, table creation."""

    table: str = "hub_settings"
    profile: Profile = Profile.AUTO
    channel: str = ""
    create_table: bool = False

    def __post_init__(self) -> None:
        import re

        if not re.fullmatch(TABLE_PATTERN, self.table):
            raise SchemaMismatch(f"invalid table name {self.table!r}: lower-case SQL identifier(s) expected")
        if self.channel and not re.fullmatch(IDENTIFIER_PATTERN, self.channel):
            raise SchemaMismatch(f"invalid channel name {self.channel!r}: lower-case SQL identifier expected")

    @property
    def identifier(self) -> sql.Composable:
        parts = self.table.split(".")
        return sql.Identifier(*parts)

    @property
    def schema_and_name(self) -> tuple[str | None, str]:
        if "." in self.table:
            schema, name = self.table.split(".", 1)
            return schema, name
        return None, self.table


@dataclass
class ApplyResult:
    """What one apply did. `notifications` are the payloads sent (empty for a no-op)."""

    profile: Profile
    channel: str
    plan: Plan
    desired: dict[str, JSONValue]
    notifications: list[str] = field(default_factory=list)
    rows_written: int = 0
    attempts: int = 1
    duration_s: float = 0.0
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.plan.value_changes)

    @property
    def owned_keys(self) -> list[str]:
        """Row keys this owner holds after the apply (what it listed and could write)."""
        return sorted(
            c.key
            for c in self.plan.changes
            if c.action in (Action.INSERT, Action.UPDATE, Action.ADOPT, Action.UNCHANGED)
        )


# The rows to hold, given the concrete profile (known only once the table has been inspected).
DesiredFn = Callable[[Profile], Mapping[str, JSONValue]]


class PoolRegistry:
    """One small pool per distinct DSN, shared by every HubSettings that points at the same database."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        self._pools: dict[str, AsyncConnectionPool] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def _key(dsn: str) -> str:
        return hashlib.sha256(dsn.encode()).hexdigest()

    async def get(self, dsn: str) -> AsyncConnectionPool:
        register_dsn(dsn)
        key = self._key(dsn)
        async with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = AsyncConnectionPool(
                    dsn,
                    min_size=1,
                    max_size=self.options.pool_max_size,
                    timeout=self.options.pool_timeout,
                    kwargs=self.options.connect_kwargs(),
                    check=AsyncConnectionPool.check_connection,
                    open=False,
                    name=f"hubsettings-{key[:8]}",
                    reconnect_timeout=0,
                )
                await pool.open(wait=False)
                self._pools[key] = pool
            return pool

    async def close(self) -> None:
        async with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()


def map_error(exc: BaseException, dsn: str) -> HubSettingsError:
    """A typed, printable error for a database failure. The DSN is described, never shown."""
    where = describe_dsn(dsn)
    if isinstance(exc, HubSettingsError):
        return exc
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return PermissionDenied(
            f"permission denied on {where}: {_first_line(exc)}; grant the role SELECT, INSERT, UPDATE, DELETE "
            "on the settings table (and CREATE on the schema for createTable)"
        )
    if isinstance(exc, pgerrors.UndefinedTable | pgerrors.UndefinedColumn | pgerrors.DatatypeMismatch):
        return SchemaMismatch(
            f"settings table does not match the expected layout on {where}: {_first_line(exc)}"
        )
    if isinstance(exc, pgerrors.QueryCanceled | pgerrors.LockNotAvailable):
        return DatabaseUnavailable(
            f"database {where} too slow: {_first_line(exc)} (statement or lock timeout)"
        )
    if isinstance(exc, pgerrors.UniqueViolation | pgerrors.SerializationFailure | pgerrors.DeadlockDetected):
        return ConcurrentWrite(f"concurrent write on {where}: {_first_line(exc)}")
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(f"database {where} unavailable: no connection within the pool timeout")
    if isinstance(exc, psycopg.OperationalError | OSError):
        return DatabaseUnavailable(f"database {where} unavailable: {_first_line(exc)}")
    if isinstance(exc, psycopg.Error):
        return DatabaseUnavailable(f"database error on {where}: {type(exc).__name__}: {_first_line(exc)}")
    return DatabaseUnavailable(f"unexpected error talking to {where}: {type(exc).__name__}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse(value: Any, profile: Profile) -> tuple[JSONValue, bool]:
    """Row value -> (parsed JSON, parse_error). jsonb (scion) arrives parsed, even a bare JSON string;
    the proposal's TEXT column holds JSON text."""
    if profile is Profile.PROPOSAL and isinstance(value, str):
        try:
            return json.loads(value), False
        except ValueError:
            return value, True
    return value, False


class SettingsStore:
    """Plan and apply HubSettings rows on one database (one DSN)."""

    def __init__(self, dsn: str, registry: PoolRegistry | None = None) -> None:
        register_dsn(dsn)
        self._dsn = dsn
        self._registry = registry or PoolRegistry()
        self._own_registry = registry is None

    @property
    def where(self) -> str:
        return describe_dsn(self._dsn)

    async def close(self) -> None:
        if self._own_registry:
            await self._registry.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            pool = await self._registry.get(self._dsn)
            async with pool.connection() as conn:
                yield conn
        except HubSettingsError:
            raise
        except PoolTimeout:
            # The pool only says "timed out"; one direct attempt tells why (refused, auth, DNS...).
            raise await self._diagnose() from None
        except (psycopg.Error, OSError) as exc:
            raise map_error(exc, self._dsn) from None

    async def _diagnose(self) -> HubSettingsError:
        opts = self._registry.options
        try:
            conn = await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=opts.connect_timeout)
        except (psycopg.Error, OSError) as exc:
            return map_error(exc, self._dsn)
        await conn.close()
        return DatabaseUnavailable(
            f"database {self.where} busy: no pooled connection free within {opts.pool_timeout:g}s "
            "(pool exhausted or the server is slow)"
        )

    # ---- reading ------------------------------------------------------------------------------------

    @staticmethod
    async def columns(conn: psycopg.AsyncConnection[Any], target: Target) -> list[str] | None:
        schema, name = target.schema_and_name
        cur = await conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = coalesce(%s, current_schema()) AND table_name = %s",
            (schema, name),
        )
        cols = [r[0] for r in await cur.fetchall()]
        return cols or None

    @staticmethod
    async def read_rows(
        conn: psycopg.AsyncConnection[Any], target: Target, profile: Profile, *, lock: bool
    ) -> dict[str, CurrentRow]:
        suffix = sql.SQL(" FOR UPDATE") if lock else sql.SQL("")
        if profile is Profile.SCION:
            query = sql.SQL(
                "SELECT section AS key, value, updated_by, update_time AS updated_at, revision, origin, id "
                "FROM {}{}"
            ).format(target.identifier, suffix)
        else:
            query = sql.SQL("SELECT key, value, updated_by, updated_at FROM {}{}").format(
                target.identifier, suffix
            )
        rows: dict[str, CurrentRow] = {}
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query)
            for r in await cur.fetchall():
                value, bad = _parse(r["value"], profile)
                rows[r["key"]] = CurrentRow(
                    key=r["key"],
                    value=value,
                    updated_by=r["updated_by"],
                    updated_at=r["updated_at"],
                    revision=r.get("revision"),
                    origin=r.get("origin"),
                    parse_error=bad,
                )
        return rows

    async def _resolve(
        self, conn: psycopg.AsyncConnection[Any], target: Target, *, create: bool
    ) -> tuple[Profile, bool]:
        """Concrete profile for the target, creating the proposal table if allowed. -> (profile, exists)."""
        cols = await self.columns(conn, target)
        if target.profile is Profile.AUTO:
            profile = profiles.detect(cols, create_table=target.create_table, table=target.table)
        else:
            profile = target.profile
            profiles.check_columns(profile, cols, target.table)
            if cols is None and not (profile is Profile.PROPOSAL and target.create_table):
                raise SchemaMismatch(
                    f"table {target.table} does not exist on {self.where}"
                    + (
                        ": the shipped Hub creates it through its migrations (start the Hub once)"
                        if profile is Profile.SCION
                        else ": set spec.database.createTable: true to let the operator create it"
                    )
                )
        if cols is None and create:
            await conn.execute(sql.SQL(profiles.PROPOSAL_DDL).format(table=target.identifier))
            return profile, True
        return profile, cols is not None

    async def read(self, target: Target) -> tuple[Profile, dict[str, CurrentRow]]:
        """Current rows without locking (for `plan`, drift and tests)."""
        async with self._connection() as conn:
            try:
                await conn.set_autocommit(True)
                profile, exists = await self._resolve(conn, target, create=False)
                rows = await self.read_rows(conn, target, profile, lock=False) if exists else {}
                return profile, rows
            except (psycopg.Error, OSError) as exc:
                raise map_error(exc, self._dsn) from None

    async def ping(self, target: Target) -> None:
        """Cheap liveness check of the database and the table (no lock, no write)."""
        async with self._connection() as conn:
            try:
                await conn.set_autocommit(True)
                await self.columns(conn, target)
            except (psycopg.Error, OSError) as exc:
                raise map_error(exc, self._dsn) from None

    # ---- writing ------------------------------------------------------------------------------------

    async def apply(
        self,
        target: Target,
        desired_for: DesiredFn,
        owner: str,
        *,
        prune: bool = True,
        conflicts: ConflictPolicy = ConflictPolicy.ENFORCE,
        dry_run: bool = False,
        released_owners: frozenset[str] = frozenset(),
    ) -> ApplyResult:
        """Make the table hold `desired_for(profile)` for `owner`, atomically. Retries concurrent writes.

        `desired_for` receives the concrete profile (known only once the table has been inspected) and
        returns the rows to hold. With `dry_run` the transaction is rolled back after planning.
        """
        started = time.perf_counter()
        last: HubSettingsError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                result = await self._apply_once(
                    target, desired_for, owner, prune, conflicts, dry_run, released_owners
                )
                result.attempts = attempt
                result.duration_s = time.perf_counter() - started
                return result
            except ConcurrentWrite as exc:
                last = exc
                log.info("concurrent write on %s (attempt %d), re-planning", target.table, attempt)
                await asyncio.sleep(0.05 * attempt)
        assert last is not None
        raise last

    async def _apply_once(
        self,
        target: Target,
        desired_for: DesiredFn,
        owner: str,
        prune: bool,
        conflicts: ConflictPolicy,
        dry_run: bool,
        released_owners: frozenset[str] = frozenset(),
    ) -> ApplyResult:
        async with self._connection() as conn:
            try:
                async with conn.transaction(force_rollback=dry_run):
                    # Keyed on the schema-qualified name, so `hub_settings` and `public.hub_settings` (or
                    # another search_path) serialize on the same lock.
                    schema, name = target.schema_and_name
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended("
                        "%s || coalesce(%s, current_schema()) || '.' || %s, 0))",
                        (LOCK_PREFIX, schema, name),
                    )
                    profile, exists = await self._resolve(
                        conn, target, create=target.create_table and not dry_run
                    )
                    desired = dict(desired_for(profile))
                    current = await self.read_rows(conn, target, profile, lock=True) if exists else {}
                    plan = make_plan(
                        current,
                        desired,
                        owner,
                        prune=prune,
                        conflicts=conflicts,
                        released_owners=released_owners,
                    )
                    channel = target.channel or profiles.default_channel(profile)
                    result = ApplyResult(profile=profile, channel=channel, plan=plan, desired=desired)
                    if dry_run or plan.is_noop:
                        result.dry_run = dry_run
                        return result
                    if profile is Profile.SCION:
                        await self._write_scion(conn, target, plan, channel, result)
                    else:
                        await self._write_proposal(conn, target, plan, channel, desired, result)
                    return result
            except HubSettingsError:
                raise
            except (psycopg.Error, OSError) as exc:
                raise map_error(exc, self._dsn) from None

    async def _write_scion(
        self,
        conn: psycopg.AsyncConnection[Any],
        target: Target,
        plan: Plan,
        channel: str,
        result: ApplyResult,
    ) -> None:
        table = target.identifier
        notify: list[tuple[str, int]] = []
        for change in plan.writes:
            if change.action is Action.INSERT:
                cur = await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, section, value, revision, updated_by, origin, create_time, "
                        "update_time) VALUES (%s, %s, %s::jsonb, 1, %s, 'managed', now(), now()) "
                        "ON CONFLICT (section) DO NOTHING"
                    ).format(table),
                    (uuid.uuid4(), change.key, canonical_json(change.new), plan.owner),
                )
                if cur.rowcount != 1:
                    raise ConcurrentWrite(f"section {change.key} was created concurrently")
                notify.append((change.key, 1))
            elif change.action in (Action.UPDATE, Action.ADOPT):
                cur = await conn.execute(
                    sql.SQL(
                        "UPDATE {} SET value = %s::jsonb, revision = revision + 1, updated_by = %s, "
                        "origin = 'managed', update_time = now() WHERE section = %s AND revision = %s "
                        "RETURNING revision"
                    ).format(table),
                    (canonical_json(change.new), plan.owner, change.key, change.current_revision),
                )
                row = await cur.fetchone()
                if row is None:
                    raise ConcurrentWrite(f"section {change.key} changed revision concurrently")
                if change.action is Action.UPDATE:
                    notify.append((change.key, int(row[0])))
            elif change.action is Action.DELETE:
                cur = await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE section = %s AND revision = %s AND updated_by = %s").format(
                        table
                    ),
                    (change.key, change.current_revision, plan.owner),
                )
                if cur.rowcount != 1:
                    raise ConcurrentWrite(f"section {change.key} changed concurrently before its deletion")
                notify.append((change.key, (change.current_revision or 0) + 1))
            result.rows_written += 1
        for section, revision in notify:
            payload = profiles.scion_payload(section, revision)
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            result.notifications.append(payload)

    async def _write_proposal(
        self,
        conn: psycopg.AsyncConnection[Any],
        target: Target,
        plan: Plan,
        channel: str,
        desired: Mapping[str, JSONValue],
        result: ApplyResult,
    ) -> None:
        table = target.identifier
        for change in plan.writes:
            if change.action is Action.INSERT:
                cur = await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (key, value, updated_at, updated_by) VALUES (%s, %s, now(), %s) "
                        "ON CONFLICT (key) DO NOTHING"
                    ).format(table),
                    (change.key, canonical_json(change.new), plan.owner),
                )
                if cur.rowcount != 1:
                    raise ConcurrentWrite(f"key {change.key} was created concurrently")
            elif change.action in (Action.UPDATE, Action.ADOPT):
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {t} AS t (key, value, updated_at, updated_by) VALUES (%s, %s, now(), %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), "
                        "updated_by = EXCLUDED.updated_by "
                        "WHERE t.value IS DISTINCT FROM EXCLUDED.value "
                        "OR t.updated_by IS DISTINCT FROM EXCLUDED.updated_by"
                    ).format(t=table),
                    (change.key, canonical_json(change.new), plan.owner),
                )
            elif change.action is Action.DELETE:
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE key = %s AND updated_by = %s").format(table),
                    (change.key, plan.owner),
                )
            result.rows_written += 1
        if plan.value_changes:
            payload = profiles.proposal_payload(plan, desired, plan.owner)
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            result.notifications.append(payload)

    async def delete_owned(self, target: Target, owner: str) -> ApplyResult:
        """Remove every row `owner` wrote (the `Delete` deletion policy) and notify the replicas.

        A table that does not exist holds no rows of ours: that is a successful deletion, not an error."""
        async with self._connection() as conn:
            try:
                await conn.set_autocommit(True)
                exists = await self.columns(conn, target) is not None
            except (psycopg.Error, OSError) as exc:
                raise map_error(exc, self._dsn) from None
        if not exists:
            profile = target.profile if target.profile is not Profile.AUTO else Profile.PROPOSAL
            channel = target.channel or profiles.default_channel(profile)
            return ApplyResult(profile=profile, channel=channel, plan=Plan(owner=owner), desired={})
        return await self.apply(target, lambda _profile: {}, owner, prune=True)


def summarize(changes: list[Change]) -> str:
    """`3 changed (access, telemetry, +1 more)` style summaries for status messages and events."""
    keys = [c.key for c in changes]
    if not keys:
        return "no changes"
    shown = ", ".join(keys[:5]) + (f", +{len(keys) - 5} more" if len(keys) > 5 else "")
    return f"{len(keys)} changed ({shown})"
