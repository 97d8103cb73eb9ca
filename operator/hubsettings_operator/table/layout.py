"""Table layouts: everything that differs between the two shapes of the Hub's settings table, behind one protocol.

A `TableLayout` owns its columns, DDL, SQL statements, NOTIFY channel and payloads, the rows a spec turns
into, how stored values parse, and the layout questions other layers ask (can replicas be asked what they
loaded, how a Layer 1 env var shows). The store, the listener, the checks and the CLI call the layout; they
never branch on the profile themselves. Implementations: `table/scion.py` (the shipped Hub) and
`table/proposal.py` (seed 000); the registry that finds them is `table/layouts.py`.

This module holds the protocol and the helpers the layouts share, and imports no layout.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

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
    replica_endpoint: bool  # each Hub replica reports the revisions it loaded (convergence can ask it)
    env_overrides_table: bool  # a Layer 1 env var wins over the table's row (else it is only a fallback)

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
        render: Render | None = None,
    ) -> WriteOutcome:
        """Queue the plan's writes and NOTIFYs on `conn`, inside the caller's transaction, with every row the
        plan touches already locked by the caller (so no statement needs a concurrency check of its own)."""
        ...


# Renders a statement once per (database, table) and remembers it under a key (the store's `RowCache.query`):
# psycopg's `sql` composition of identifiers and fixed text only, never a value.
Render = Callable[[Hashable, Callable[[], bytes]], bytes]


async def execute_writes(
    conn: psycopg.AsyncConnection[Any],
    table: sql.Composable,
    writes: Sequence[tuple[str, Sequence[Any]]],
    channel: str,
    payloads: Sequence[str],
    render: Render | None = None,
) -> None:
    """Every write (a statement template whose `{}` is the table, and its parameters) as a data-modifying CTE
    of one statement that then sends the NOTIFYs, in order: one round trip whatever the size of the change.
    PostgreSQL runs each data-modifying CTE to completion even when nothing references it; the rows they
    touch are disjoint and already locked by the caller. The statement depends only on which templates are
    used and whether there are NOTIFYs: with `render` it is composed once per table, not once per apply."""
    templates = tuple(template for template, _ in writes)

    def compose() -> bytes:
        parts = [
            sql.SQL("w{} AS ({})").format(sql.SQL(str(i)), sql.SQL(template).format(table))
            for i, template in enumerate(templates)
        ]
        head = sql.SQL("WITH {} ").format(sql.SQL(", ").join(parts)) if parts else sql.SQL("")
        tail = sql.SQL(
            "SELECT pg_notify(%s, n.p) FROM unnest(%b::text[]) WITH ORDINALITY AS n(p, i) ORDER BY n.i"
            if payloads
            else "SELECT 0"
        )
        return (head + tail).as_bytes(conn)

    query = render(("writes", templates, bool(payloads)), compose) if render is not None else compose()
    params: list[Any] = [p for _, ps in writes for p in ps]
    if payloads:
        params += [channel, list(payloads)]
    await conn.execute(query, params)
