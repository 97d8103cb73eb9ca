"""What the database can tell about the Hub replicas: the revisions written, and who is listening.

Read by the convergence probe (convergence/probe.py) through `SettingsStore.replica_view`, on the
operator's bounded pool like every other read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql


async def written_revisions(
    conn: psycopg.AsyncConnection[Any], table: sql.Composable, owner: str
) -> dict[str, int]:
    """Revision of each section (scion layout) owned by `owner`."""
    query = sql.SQL("SELECT section, revision FROM {} WHERE updated_by = %s").format(table)
    cur = await conn.execute(query, (owner,))
    return {str(section): int(revision) for section, revision in await cur.fetchall()}


# The Hub's listener connection (`pkg/hub/events_postgres.go`) runs every LISTEN and UNLISTEN of its replica:
# the global channel and the per-project channels `scion_ev_g_<id>` it opens while someone watches a project.
# pg_stat_activity shows only its last statement, so any of them identifies the connection.
HUB_CHANNEL_PREFIX = "scion_ev_"
HIDDEN_QUERY = "<insufficient privilege>"


@dataclass(frozen=True)
class ListenerView:
    """Client IPs holding an idle listener connection, and whether every session was visible: when some are
    hidden (the role is neither superuser, nor in pg_read_all_stats, nor the sessions' own role), an IP
    missing from `addresses` may still be listening."""

    addresses: frozenset[str]
    complete: bool

    def listening(self, ip: str) -> bool | None:
        return True if ip in self.addresses else (False if self.complete else None)


def listener_statement_pattern(channel: str) -> str:
    """POSIX regex for the last statement of a listener connection for `channel`: LISTEN or UNLISTEN of that
    channel or, for a Hub channel (`scion_ev_*`), of any channel of the Hub's family, quoted or not."""
    if channel.startswith(HUB_CHANNEL_PREFIX):
        name = rf'("{HUB_CHANNEL_PREFIX}[^"]+"|{HUB_CHANNEL_PREFIX}[A-Za-z0-9_$]+)'
    else:
        escaped = re.sub(r"([^A-Za-z0-9_])", r"\\\1", channel)
        name = rf'("{escaped}"|{escaped})'
    return rf"^\s*(UN)?LISTEN\s+{name}\s*;?\s*$"


async def listener_view(conn: psycopg.AsyncConnection[Any], channel: str) -> ListenerView:
    """Who holds a listener connection for `channel` on this database (see `listener_statement_pattern`).

    A listener waits for notifications between statements: `state = 'idle'`. Sessions this role may not see
    show `<insufficient privilege>` and no client address; their presence makes the view incomplete."""
    cur = await conn.execute(
        "SELECT host(client_addr), query = %s FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND (query = %s OR (client_addr IS NOT NULL AND state = 'idle' AND query ~* %s))",
        (HIDDEN_QUERY, HIDDEN_QUERY, listener_statement_pattern(channel)),
    )
    rows = await cur.fetchall()
    return ListenerView(
        addresses=frozenset(str(addr) for addr, hidden in rows if not hidden and addr),
        complete=not any(hidden for _addr, hidden in rows),
    )
