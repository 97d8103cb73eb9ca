"""The store: reads and writes the Hub's settings table in PostgreSQL, one transaction per apply.

An apply reads the rows without a lock or a transaction and plans (`plan.make_plan`). Nothing to write (or a
dry run) ends there: one statement, no lock, so `plan` needs only SELECT and a no-op resync costs one round
trip. Otherwise, in one pipelined transaction: the advisory lock on the table, the table created (proposal,
if allowed), the rows read again `FOR UPDATE` and planned again (the first read may be stale: only the locked
plan is written), exactly that plan written by the table's layout, `pg_notify` if and only if a value
changed, commit. Replicas therefore never see half of a change (notifications are delivered at commit), and
a no-op writes nothing and notifies nobody. Skipping the lock for a no-op is safe: the unlocked read is one
consistent snapshot in which the table already held what we want, which is what a locked apply at that
instant would have concluded (writing nothing); any later write by someone else is simply later.

Identifiers go through `psycopg.sql.Identifier`, values are parameters. Every database error is mapped to
one of the typed errors of `errors.py` (`dberrors.database_errors`), whose messages never show the DSN.

Over 400 lines: the transaction protocol (optimistic read, lock, re-plan, pipelined write, retry) must be read
as one piece to be trusted; pools live in pool.py, SQL per layout in scion.py / proposal.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from hubsettings_operator.errors import ConcurrentWrite, HubSettingsError, SchemaMismatch
from hubsettings_operator.redact import describe_dsn, register_dsn
from hubsettings_operator.spec.models import IDENTIFIER_PATTERN, TABLE_PATTERN, ConflictMode, Profile
from hubsettings_operator.table import replicas
from hubsettings_operator.table.dberrors import PoolSaturated, database_errors, map_error
from hubsettings_operator.table.layout import TableInfo, TableLayout
from hubsettings_operator.table.layouts import creatable_layout, layout_for, resolve
from hubsettings_operator.table.plan import (
    Action,
    Change,
    CurrentRow,
    JSONValue,
    ModeOf,
    Plan,
    WrittenRecord,
    canonical_digest,
    canonical_json,
    make_plan,
    settings_hash,
)
from hubsettings_operator.table.pool import PoolRegistry, StoreOptions, dsn_key
from hubsettings_operator.table.rowcache import Memo, RowCache, RowTuple
from hubsettings_operator.table.wanted import Wanted

__all__ = [
    "ApplyResult",
    "DesiredFn",
    "PoolRegistry",
    "SettingsStore",
    "StoreOptions",
    "Target",
    "map_error",
    "summarize",
]

log = logging.getLogger(__name__)

# Advisory lock namespace, so our key never collides with the Hub's own `hub_settings_seed` lock.
LOCK_PREFIX = "hubsettings-operator:"
MAX_ATTEMPTS = 4
# One statement tells whether the table exists, its columns, and which of them carry a unique index.
INTROSPECT = """
SELECT n.nspname || '.' || c.relname, a.attname,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
               AND i.indkey[0] = a.attnum AND i.indpred IS NULL AND i.indexprs IS NULL)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = to_regclass(%s)
"""


@dataclass(frozen=True)
class Target:
    """Where and how to write: the table, the profile (may be auto), the channel, table creation."""

    table: str = "hub_settings"
    profile: Profile = Profile.AUTO
    channel: str = ""
    create_table: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(TABLE_PATTERN, self.table):
            raise SchemaMismatch(f"invalid table name {self.table!r}: lower-case SQL identifier(s) expected")
        if self.channel and not re.fullmatch(IDENTIFIER_PATTERN, self.channel):
            raise SchemaMismatch(f"invalid channel name {self.channel!r}: lower-case SQL identifier expected")

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(*self.table.split("."))

    @property
    def schema_and_name(self) -> tuple[str | None, str]:
        if "." in self.table:
            schema, name = self.table.split(".", 1)
            return schema, name
        return None, self.table


@dataclass
class ApplyResult:
    """What one apply did. `notifications` are the payloads sent (empty for a no-op). `written` holds, for
    every row this owner holds after the apply, what it wrote or found in place: hand it back to the next
    apply as `last_written`."""

    profile: Profile
    channel: str
    plan: Plan
    desired: dict[str, JSONValue]
    notifications: list[str] = field(default_factory=list)
    written: dict[str, WrittenRecord] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rows_written: int = 0
    attempts: int = 1
    duration_s: float = 0.0
    dry_run: bool = False
    wanted: Wanted | None = None  # the desired rows' canonical texts, when the apply had them

    @property
    def changed(self) -> bool:
        return bool(self.plan.value_changes)

    @property
    def out_of_band(self) -> list[Change]:
        """Rows of ours found edited out of band (overwritten under Enforce: worth an event)."""
        return self.plan.out_of_band

    @property
    def owned_keys(self) -> list[str]:
        """Row keys this owner holds after the apply (what it listed and could write)."""
        return list(self.plan.owned_keys)

    def owned_settings_hash(self) -> str:
        """`settings_hash` of the desired rows this owner holds (from the texts the apply already has)."""
        owned = [k for k in self.owned_keys if k in self.desired]
        if self.wanted is not None:
            return self.wanted.settings_hash(owned)
        return settings_hash({k: self.desired[k] for k in owned})


# The rows to hold, given the concrete profile (known only once the table has been inspected).
DesiredFn = Callable[[Profile], Mapping[str, JSONValue] | Wanted]
# Each row key's conflict mode (per-section policy), given the concrete profile.
ModesFn = Callable[[Profile], ModeOf]


class SettingsStore:
    """Plan and apply HubSettings rows on one database (one DSN).

    The store retains its DSN in the registry for `owner` (an anonymous per-DSN owner when none is given);
    `close()` releases it (and closes the registry if the store made its own)."""

    def __init__(self, dsn: str, registry: PoolRegistry | None = None, *, owner: str | None = None) -> None:
        register_dsn(dsn)
        self._dsn = dsn
        self._registry = registry or PoolRegistry()
        self._own_registry = registry is None
        self._owner = owner or f"anonymous:{dsn_key(dsn)[:16]}"
        self._registry.retain(self._owner, dsn)

    @property
    def where(self) -> str:
        return describe_dsn(self._dsn)

    async def close(self) -> None:
        if self._own_registry:
            await self._registry.close()
        else:
            await self._registry.release(self._owner)

    @asynccontextmanager
    async def _connection(self, *, queue: bool = True) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self._registry.connection(self._dsn, queue=queue) as conn:
                with database_errors(self._dsn):
                    yield conn
        except HubSettingsError:
            raise
        except (psycopg.Error, OSError, PoolSaturated) as exc:  # connecting, or the cap stayed full
            # A full cap is the operator's own queue (WaitingForConnection), never "database unavailable";
            # no extra connection outside the cap is opened to find out more.
            raise map_error(exc, self._dsn) from None

    # ---- reading ------------------------------------------------------------------------------------

    async def _table_info(
        self, conn: psycopg.AsyncConnection[Any], target: Target, *, cached: bool = True
    ) -> TableInfo | None:
        """The table's columns and unique columns (`None`: no such table), cached per (DSN, table)."""
        if cached:
            info = self._registry.cached_table(self._dsn, target.table)
            if info is not None:
                return info
        cur = await conn.execute(INTROSPECT, (target.identifier.as_string(conn),))
        found = await cur.fetchall()
        if not found:
            return None
        info = TableInfo(
            qualified=found[0][0],
            columns=frozenset(r[1] for r in found),
            unique_columns=frozenset(r[1] for r in found if r[2]),
        )
        self._registry.cache_table(self._dsn, target.table, info)
        return info

    async def read_rows(
        self, conn: psycopg.AsyncConnection[Any], target: Target, layout: TableLayout, *, lock: bool
    ) -> dict[str, CurrentRow]:
        cur = await conn.execute(self._select(conn, target, layout, lock=lock))
        return rows_from(layout, await cur.fetchall(), self._registry.row_cache(self._dsn, target.table))

    def _select(
        self, conn: psycopg.AsyncConnection[Any], target: Target, layout: TableLayout, *, lock: bool
    ) -> bytes:
        """`layout.select_rows` as psycopg renders it (no parameters: only the table's identifier, quoted by
        `sql.Identifier`), rendered once per (database, table, profile, lock) instead of once per read."""
        return self._registry.row_cache(self._dsn, target.table).query(
            (layout.profile, lock), lambda: layout.select_rows(target.identifier, lock=lock).as_bytes(conn)
        )

    async def read(self, target: Target) -> tuple[Profile, dict[str, CurrentRow]]:
        """Current rows without locking (for `watch`, drift and tests)."""
        async with self._connection() as conn:
            info = await self._table_info(conn, target)
            layout = resolve(target.profile, info, create_table=target.create_table, table=target.table)
            rows = await self.read_rows(conn, target, layout, lock=False) if info is not None else {}
            return layout.profile, rows

    async def ping(self, target: Target, *, queue: bool = True) -> None:
        """Cheap liveness check of the database and the table (no lock, no write). `queue=False`: raise
        WaitingForConnection at once when the cap is full rather than queue behind the applies."""
        async with self._connection(queue=queue) as conn:
            await self._table_info(conn, target, cached=False)

    async def replica_view(
        self, target: Target, owner: str, channel: str, *, revisions: bool
    ) -> tuple[dict[str, int], replicas.ListenerView]:
        """(revision per section `owner` wrote, if `revisions`; who holds a listener connection for
        `channel`). One pooled connection, no lock."""
        async with self._connection() as conn:
            written = await replicas.written_revisions(conn, target.identifier, owner) if revisions else {}
            return written, await replicas.listener_view(conn, channel)

    # ---- writing ------------------------------------------------------------------------------------

    async def apply(
        self,
        target: Target,
        desired_for: DesiredFn,
        owner: str,
        *,
        prune: bool = True,
        conflicts: ConflictMode = ConflictMode.ENFORCE,
        dry_run: bool = False,
        released_owners: frozenset[str] = frozenset(),
        last_written: Mapping[str, WrittenRecord] | None = None,
        missing_ok: bool = False,
        modes_for: ModesFn | None = None,
    ) -> ApplyResult:
        """Make the table hold `desired_for(profile)` for `owner`, atomically. Retries concurrent writes.

        `desired_for` receives the concrete profile (known only once the table has been inspected) and
        returns the rows to hold. A dry run plans from a lock-free read and never writes. `missing_ok`: a
        table that does not exist is an empty table (deletion), not an error. `modes_for` gives each row
        key's own conflict mode (per-section policy; `conflicts` is the default).
        """
        started = time.perf_counter()
        last: HubSettingsError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                result = await self._apply_once(
                    target,
                    desired_for,
                    _Intent(owner, prune, conflicts, released_owners, dict(last_written or {}), modes_for),
                    dry_run=dry_run,
                    missing_ok=missing_ok,
                )
                result.attempts = attempt
                result.duration_s = time.perf_counter() - started
                return result
            except ConcurrentWrite as exc:
                last = exc
                log.info("concurrent write on %s (attempt %d), re-planning", target.table, attempt)
                await asyncio.sleep(0.05 * attempt)
            except SchemaMismatch:
                # The table may have changed under the cached introspection: look again next time.
                self._registry.forget_table(self._dsn, target.table)
                raise
        assert last is not None
        raise last

    async def _apply_once(
        self, target: Target, desired_for: DesiredFn, intent: _Intent, *, dry_run: bool, missing_ok: bool
    ) -> ApplyResult:
        async with self._connection() as conn:
            info = await self._table_info(conn, target)
            if info is None and missing_ok:
                layout = (
                    layout_for(target.profile) if target.profile is not Profile.AUTO else creatable_layout()
                )
                return ApplyResult(
                    layout.profile, target.channel or layout.channel, Plan(owner=intent.owner), {}
                )
            layout = resolve(target.profile, info, create_table=target.create_table, table=target.table)
            intent = intent.for_profile(layout.profile)
            wanted = _as_wanted(desired_for(layout.profile))
            desired = dict(wanted.rows)
            cache = self._registry.row_cache(self._dsn, target.table)
            # The same wanted rows and intent as this owner's last apply: what was derived from them holds.
            memo = cache.memo(intent.owner, wanted, (layout.profile, intent))
            if memo.must_write is None:
                memo.must_write = intent.must_write(wanted.digests)
            if not dry_run and memo.must_write:
                # What we wrote last differs from what we want now: skip the read that could only say so.
                return await self._write(
                    conn, target, layout, intent, wanted, (cache, memo), create=info is None
                )
            # Optimistic, lock-free read: all a dry run or a no-op needs.
            if info is not None:
                plan = await self._read_and_plan(
                    conn, target, layout, intent, wanted, cache, memo, lock=False
                )
            else:
                plan = intent.plan({}, desired, wanted.canonical)
            if not (dry_run or plan.is_noop):
                return await self._write(
                    conn, target, layout, intent, wanted, (cache, memo), create=info is None
                )
            result = ApplyResult(
                layout.profile, target.channel or layout.channel, plan, desired, dry_run=dry_run
            )
            if info is not None and memo.plan is plan:
                # Nothing written: the records follow from the plan alone, as the plan from the read.
                if memo.written is None:
                    memo.written = self._finish(result, layout, intent, wanted, {}).written
                result.wanted = wanted
                result.notes = wanted.notes(layout.profile, layout.notes)
                result.written = dict(memo.written)
                return result
            return self._finish(result, layout, intent, wanted, {})

    async def _read_and_plan(
        self,
        conn: psycopg.AsyncConnection[Any],
        target: Target,
        layout: TableLayout,
        intent: _Intent,
        wanted: Wanted,
        cache: RowCache,
        memo: Memo,
        *,
        lock: bool,
    ) -> Plan:
        """Read every row and plan over them; the plan made over this very read (same cache version) for the
        same wanted rows and intent is reused. No await between the read and the plan: the version is this
        read's."""
        cur = await conn.execute(self._select(conn, target, layout, lock=lock))
        # `cache` is the one `memo` belongs to (the registry may have dropped and remade the table's meanwhile).
        current = rows_from(layout, await cur.fetchall(), cache)
        if memo.plan is not None and memo.version == cache.version:
            return memo.plan
        memo.plan = intent.plan(current, wanted.rows, wanted.canonical)
        memo.version, memo.written = cache.version, None
        return memo.plan

    @staticmethod
    def _finish(
        result: ApplyResult,
        layout: TableLayout,
        intent: _Intent,
        wanted: Wanted,
        revisions: Mapping[str, int],
    ) -> ApplyResult:
        result.wanted = wanted
        result.notes = wanted.notes(layout.profile, layout.notes)
        result.written = written_records(result.plan, layout, intent.last_written, wanted.digests, revisions)
        return result

    async def _write(
        self,
        conn: psycopg.AsyncConnection[Any],
        target: Target,
        layout: TableLayout,
        intent: _Intent,
        wanted: Wanted,
        kept: tuple[RowCache, Memo],
        *,
        create: bool,
    ) -> ApplyResult:
        schema, name = target.schema_and_name
        table = target.identifier
        # Two round trips: BEGIN + lock (+ create) + locked read; then the writes + NOTIFY + COMMIT. BEGIN and
        # COMMIT are plain statements in the pipeline (psycopg's transaction block would sync on each).
        try:
            async with conn.pipeline():
                await conn.execute("BEGIN")
                # Keyed on the schema-qualified name, so `hub_settings` and `public.hub_settings` (or another
                # search_path) serialize on the same lock.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended("
                    "%s || coalesce(%s, current_schema()) || '.' || %s, 0))",
                    (LOCK_PREFIX, schema, name),
                )
                if create:
                    ddl = layout.create_table(table)
                    if ddl is not None:
                        await conn.execute(ddl)
                # Only this plan, made under the lock, is written: the optimistic one may be stale.
                plan = await self._read_and_plan(conn, target, layout, intent, wanted, *kept, lock=True)
                desired = dict(wanted.rows)
                result = ApplyResult(layout.profile, target.channel or layout.channel, plan, desired)
                revisions: dict[str, int] = {}
                if not plan.is_noop:
                    out = await layout.write(
                        conn,
                        table,
                        plan,
                        result.channel,
                        desired,
                        intent.last_written,
                        kept[0].query,
                    )
                    result.notifications = out.notifications
                    result.rows_written = out.rows_written
                    revisions = out.revisions
                await conn.execute("COMMIT")
        except BaseException:
            # Nothing of a failed apply may stay: roll back (a broken connection is discarded on return).
            if not conn.broken and conn.info.transaction_status is not TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error, OSError):
                    await conn.execute("ROLLBACK")
            raise
        if create:
            self._registry.forget_table(self._dsn, target.table)
        return self._finish(result, layout, intent, wanted, revisions)

    async def delete_owned(self, target: Target, owner: str) -> ApplyResult:
        """Remove every row `owner` wrote (the `Delete` deletion policy) and notify the replicas.

        A table that does not exist holds no rows of ours: that is a successful deletion, not an error."""
        return await self.apply(target, lambda _profile: {}, owner, prune=True, missing_ok=True)


@dataclass(frozen=True)
class _Intent:
    """Who applies and under which policies (everything of an apply but the rows)."""

    owner: str
    prune: bool
    conflicts: ConflictMode
    released_owners: frozenset[str]
    last_written: dict[str, WrittenRecord]
    modes_for: ModesFn | None = None
    mode_of: ModeOf | None = None  # `modes_for` of the concrete profile (`for_profile`)

    def for_profile(self, profile: Profile) -> _Intent:
        if self.modes_for is None:
            return self
        return replace(self, mode_of=self.modes_for(profile))

    def must_write(self, digests: Mapping[str, str]) -> bool:
        """Whether a row we wrote last time now wants another value (or pruning): then an apply writes
        for sure (unless someone else already made the table match, which the locked plan sees)."""
        for key, record in self.last_written.items():
            if self.mode_of is not None and self.mode_of(key) is ConflictMode.OBSERVE:
                continue  # never written, whatever we wrote before
            digest = digests.get(key)
            if (digest is None and self.prune) or (digest is not None and digest != record.digest):
                return True
        return False

    def plan(
        self,
        current: Mapping[str, CurrentRow],
        desired: Mapping[str, JSONValue],
        canonical: Mapping[str, str],
    ) -> Plan:
        return make_plan(
            current,
            desired,
            self.owner,
            prune=self.prune,
            conflicts=self.conflicts,
            released_owners=self.released_owners,
            last_written=self.last_written,
            canonical=canonical,
            mode_of=self.mode_of,
        )


def _as_wanted(desired: Mapping[str, JSONValue] | Wanted) -> Wanted:
    return desired if isinstance(desired, Wanted) else Wanted.of(desired)


def rows_from(
    layout: TableLayout, rows: list[RowTuple], cache: RowCache | None = None
) -> dict[str, CurrentRow]:
    """Rows as `layout.select_rows` returns them -> `CurrentRow`s keyed by row key.

    `cache` maps a row, exactly as read (every column, the value as text), to its parse and canonical JSON:
    an unchanged row is neither parsed nor canonicalised again, while any edit (the value, even with the same
    revision, or who wrote it, or when) is a different row and a miss. Exact by construction: no digest of a
    digest, no trust in revisions. Every read reads every row, so the cache is left holding exactly the rows
    of this read: one entry per row of the table, never the versions before. A read that is not exactly the
    previous one (a miss, a row more or less) moves `cache.version` (the plans made over it are stale)."""
    previous = cache.parsed if cache is not None else {}
    out: dict[str, CurrentRow] = {}
    seen: list[tuple[RowTuple, CurrentRow]] = []
    hits = 0
    for row in rows:
        hit = previous.get(row) if type(row[1]) is str else None
        if hit is None:
            key, raw, updated_by, updated_at, revision, origin = row
            value, bad = layout.parse(raw)
            hit = CurrentRow(
                key=key,
                value=value,
                updated_by=updated_by,
                updated_at=updated_at,
                revision=revision,
                origin=origin,
                parse_error=bad,
                canonical=canonical_json(value),
            )
        else:
            hits += 1
        out[hit.key] = hit
        if type(row[1]) is str:
            seen.append((row, hit))
    # The same read as last time: every row found (so each is one of the cached rows), no two with one key
    # (so they are distinct), as many as the cache holds (so none of them is missing).
    same = hits == len(rows) == len(out) == len(previous)
    if cache is not None and not same:
        cache.replace(seen)
    return out


def written_records(
    plan: Plan,
    layout: TableLayout,
    last_written: Mapping[str, WrittenRecord],
    digests: Mapping[str, str],
    revisions: Mapping[str, int],
) -> dict[str, WrittenRecord]:
    """What this owner holds after the plan, per row: the value's digest and (scion) the row's revision.

    A row of ours left alone after an out-of-band edit (policy Report) keeps its previous record, so the
    edit is still told apart from our own write on the next apply."""
    written: dict[str, WrittenRecord] = {}
    for change in plan.changes:
        if change.observed:
            continue  # a row under Observe is not ours, whoever wrote it
        if change.action in (Action.INSERT, Action.UPDATE, Action.ADOPT, Action.UNCHANGED):
            revision = revisions.get(change.key, change.current_revision) if layout.revisioned else None
            digest = digests.get(change.key) or canonical_digest(canonical_json(change.new))
            written[change.key] = WrittenRecord(revision=revision, digest=digest)
        elif (
            change.action is Action.CONFLICT
            and change.key in last_written
            and change.current_by == plan.owner
        ):
            written[change.key] = last_written[change.key]
    return written


def summarize(changes: list[Change]) -> str:
    """`3 changed (access, telemetry, +1 more)` style summaries for status messages and events."""
    keys = [c.key for c in changes]
    if not keys:
        return "no changes"
    shown = ", ".join(keys[:5]) + (f", +{len(keys) - 5} more" if len(keys) > 5 else "")
    return f"{len(keys)} changed ({shown})"
