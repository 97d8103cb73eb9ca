"""What the database can tell about the Hub replicas: the revisions written, and who is listening.

Read by the convergence check (runtime/convergence_check.py) through `SettingsStore.replica_view`, on the
operator's bounded pool like every other read.
"""

from __future__ import annotations

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


async def listener_addresses(conn: psycopg.AsyncConnection[Any], channel: str) -> set[str] | None:
    """Client IPs holding an idle `LISTEN channel` connection to this database; None when this role cannot
    see other sessions' queries (grant pg_read_all_stats to tell)."""
    cur = await conn.execute(
        "SELECT current_setting('is_superuser') = 'on' OR pg_has_role('pg_read_all_stats', 'MEMBER')"
    )
    row = await cur.fetchone()
    if row is None or not row[0]:
        return None
    cur = await conn.execute(
        "SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
        "WHERE datname = current_database() AND client_addr IS NOT NULL AND state = 'idle' "
        "AND query ~* %s",
        (rf'^\s*LISTEN\s+"?{channel}"?\s*;?\s*$',),
    )
    return {str(r[0]) for r in await cur.fetchall()}
