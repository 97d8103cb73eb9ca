"""Table layouts: everything that differs between the two shapes of the Hub's settings table, behind one protocol.

A `TableLayout` owns its columns, DDL, SQL statements, NOTIFY channel and payloads, the rows a spec turns
into, and how stored values parse. The store, the listener and the CLI call the layout; they never branch on
the profile themselves. Implementations: `table/scion.py` (the shipped Hub) and `table/proposal.py` (seed 000).

`detect` tells the layout from a table's columns (the one place a profile is chosen from the database).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

from hubsettings_operator.errors import SchemaMismatch
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.table.plan import JSONValue, Plan, WrittenRecord

# PostgreSQL's hard limit is 8000 bytes; the Hub moves payloads over 7000 bytes out of band.
MAX_NOTIFY_BYTES = 7000


@dataclass(frozen=True)
class TableInfo:
    """What introspection found about an existing table (cached per database and table name)."""

    qualified: str  # schema.name as PostgreSQL resolved it
    columns: frozenset[str]
    unique_columns: frozenset[str]  # columns carrying a single-column, non-partial unique index


@dataclass
class WriteOutcome:
    """What a layout's writer sent: NOTIFY payloads, rows written, and the revision each row now carries."""

    notifications: list[str] = field(default_factory=list)
    rows_written: int = 0
    revisions: dict[str, int] = field(default_factory=dict)


class TableLayout(Protocol):
    """One layout of the settings table. Statements select, in this order: key, value, updated_by,
    updated_at, revision, origin (`NULL` where the layout has no such column)."""

    profile: Profile
    channel: str  # the default NOTIFY channel
    columns: frozenset[str]  # columns a table must have to be of this layout
    key_column: str  # the row key; must carry a unique index
    revisioned: bool  # replicas apply a row only when its revision moves
    creatable: bool  # the operator may create the table (spec.database.createTable)

    def desired_rows(self, spec: HubSettingsSpec) -> dict[str, JSONValue]:
        """The rows the spec wants, keyed by row key, values as JSON-able data."""
        ...

    def parse(self, raw: Any) -> tuple[JSONValue, bool]:
        """A stored value -> (parsed JSON, parse_error)."""
        ...

    def section_of(self, key: str) -> str:
        """The section a row key belongs to (for the per-section policy); an unknown key is its own section."""
        ...

    def select_rows(self, table: sql.Composable, *, lock: bool) -> sql.Composed: ...

    def create_table(self, table: sql.Composable) -> sql.Composed | None:
        """DDL that creates the table, or `None` when the operator must not (the Hub's migrations do)."""
        ...

    def missing_table_hint(self) -> str: ...

    def notes(self, desired: Mapping[str, JSONValue]) -> list[str]:
        """Remarks for a human reading a plan (fields left to the Hub's zero value...)."""
        ...

    async def write(
        self,
        conn: psycopg.AsyncConnection[Any],
        table: sql.Composable,
        plan: Plan,
        channel: str,
        desired: Mapping[str, JSONValue],
        last_written: Mapping[str, WrittenRecord],
    ) -> WriteOutcome:
        """Queue the plan's writes and NOTIFYs on `conn`, inside the caller's transaction, with every row the
        plan touches already locked by the caller (so no statement needs a concurrency check of its own)."""
        ...


async def execute_writes(
    conn: psycopg.AsyncConnection[Any],
    writes: Sequence[tuple[sql.Composable, Sequence[Any]]],
    channel: str,
    payloads: Sequence[str],
) -> None:
    """Every write as a data-modifying CTE of one statement that then sends the NOTIFYs, in order: one round
    trip whatever the size of the change. PostgreSQL runs each data-modifying CTE to completion even when
    nothing references it; the rows they touch are disjoint and already locked by the caller."""
    parts = [sql.SQL("w{} AS ({})").format(sql.SQL(str(i)), stmt) for i, (stmt, _) in enumerate(writes)]
    params: list[Any] = [p for _, ps in writes for p in ps]
    head = sql.SQL("WITH {} ").format(sql.SQL(", ").join(parts)) if parts else sql.SQL("")
    if payloads:
        tail = sql.SQL(
            "SELECT pg_notify(%s, n.p) FROM unnest(%s::text[]) WITH ORDINALITY AS n(p, i) ORDER BY n.i"
        )
        params += [channel, list(payloads)]
    else:
        tail = sql.SQL("SELECT 0")
    await conn.execute(head + tail, params)


def all_layouts() -> tuple[TableLayout, ...]:
    """Every supported layout, in detection order."""
    from hubsettings_operator.table.proposal import ProposalLayout
    from hubsettings_operator.table.scion import ScionLayout

    return (ScionLayout(), ProposalLayout())


def layout_for(profile: Profile) -> TableLayout:
    """The layout of a concrete profile."""
    for layout in all_layouts():
        if layout.profile is profile:
            return layout
    raise ValueError("a concrete profile is needed (scion or proposal); detect() the table's first")


def creatable_layout() -> TableLayout:
    """The layout the operator creates a missing table with (spec.database.createTable)."""
    return next(layout for layout in all_layouts() if layout.creatable)


def desired_rows(spec: HubSettingsSpec, profile: Profile) -> dict[str, JSONValue]:
    """Rows the spec wants under a concrete profile."""
    return layout_for(profile).desired_rows(spec)


def detect(columns: Iterable[str] | None, *, create_table: bool, table: str) -> TableLayout:
    """The layout a table's columns say; `None` columns means the table does not exist."""
    if columns is None:
        if create_table:
            return creatable_layout()
        raise SchemaMismatch(
            f"table {table} does not exist: the shipped Hub creates it through its migrations (start the Hub "
            "once), or set spec.database.createTable: true with profile proposal"
        )
    cols = set(columns)
    layouts = all_layouts()
    for layout in layouts:
        if cols >= layout.columns:
            return layout
    expected = " nor ".join(f"{lay.profile.value}'s {sorted(lay.columns)}" for lay in layouts)
    raise SchemaMismatch(
        f"table {table} has columns {sorted(cols)}, which match neither {expected}; is this an older fork's "
        "table? Point spec.database.table at the Hub's settings table"
    )


def resolve(profile: Profile, info: TableInfo | None, *, create_table: bool, table: str) -> TableLayout:
    """The layout for a target: detected under `auto`, checked against the table's columns when forced, and
    refused when the row key has no unique index (concurrent inserts would then duplicate rows)."""
    columns = info.columns if info is not None else None
    if profile is Profile.AUTO:
        layout = detect(columns, create_table=create_table, table=table)
    else:
        layout = layout_for(profile)
        if info is None and not (create_table and layout.creatable):
            raise SchemaMismatch(f"table {table} does not exist: {layout.missing_table_hint()}")
        missing = layout.columns - set(columns or layout.columns)
        if missing:
            raise SchemaMismatch(
                f"table {table} lacks columns {sorted(missing)} required by profile {profile.value}; "
                "use profile auto or point spec.database.table at the Hub's settings table"
            )
    if info is not None and layout.key_column not in info.unique_columns:
        index = f"{info.qualified.rsplit('.', 1)[-1]}_{layout.key_column}_key"
        raise SchemaMismatch(
            f"table {table} has no unique index on {layout.key_column}: concurrent writers could duplicate rows. "
            f"Add it (the Hub's migration creates it): CREATE UNIQUE INDEX {index} ON {info.qualified} "
            f"({layout.key_column})"
        )
    return layout
