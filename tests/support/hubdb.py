"""The Hub's side of the database for tests: its real table definitions, and helpers to read and listen.

`SCION_DDL` is the shipped Hub's `hub_settings` table as its Ent migration creates it on PostgreSQL
(`pkg/ent/schema/hubsetting.go` at ptone/scion@591e24c3: uuid id, unique section, jsonb value, revision
default 1, nullable updated_by, origin default 'seeded', create/update times set by the writer).
`PROPOSAL_DDL` is seed 000's table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

SCION_DDL = """
CREATE TABLE "hub_settings" (
  "id" uuid NOT NULL,
  "section" character varying NOT NULL,
  "value" jsonb NOT NULL,
  "revision" bigint NOT NULL DEFAULT 1,
  "updated_by" character varying NULL,
  "origin" character varying NOT NULL DEFAULT 'seeded',
  "create_time" timestamptz NOT NULL,
  "update_time" timestamptz NOT NULL,
  PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "hub_settings_section_key" ON "hub_settings" ("section");
CREATE UNIQUE INDEX "hubsetting_section" ON "hub_settings" ("section");
"""

PROPOSAL_DDL = """
CREATE TABLE hub_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT
);
"""


async def execute(dsn: str, statement: str, params: tuple[Any, ...] | None = None) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(statement, params)  # type: ignore[arg-type]


async def rows(dsn: str, profile: str, table: str = "hub_settings") -> dict[str, dict[str, Any]]:
    """All rows keyed by section / key, values parsed ({} when the table does not exist)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT to_regclass(%s)", (table,))
        found = await cur.fetchone()
        if found is None or found[0] is None:
            return {}
        if profile == "scion":
            cur = await conn.execute(
                f"SELECT section, value, revision, updated_by, origin, update_time FROM {table}"
            )
            return {
                r[0]: {
                    "value": r[1],
                    "revision": r[2],
                    "updated_by": r[3],
                    "origin": r[4],
                    "updated_at": r[5],
                }
                for r in await cur.fetchall()
            }
        cur = await conn.execute(f"SELECT key, value, updated_by, updated_at FROM {table}")
        return {
            r[0]: {"value": json.loads(r[1]), "updated_by": r[2], "updated_at": r[3], "raw": r[1]}
            for r in await cur.fetchall()
        }


async def hub_write_section(
    dsn: str,
    section: str,
    value: Any,
    *,
    updated_by: str | None = "admin@example.com",
    origin: str = "managed",
) -> None:
    """Write a section the way the Hub's store does (FOR UPDATE, revision + 1)."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT revision FROM hub_settings WHERE section = %s FOR UPDATE", (section,)
        )
        row = await cur.fetchone()
        if row is None:
            await conn.execute(
                "INSERT INTO hub_settings (id, section, value, revision, updated_by, origin, create_time, "
                "update_time) VALUES (%s, %s, %s, 1, %s, %s, now(), now())",
                (uuid.uuid4(), section, json.dumps(value), updated_by, origin),
            )
        else:
            await conn.execute(
                "UPDATE hub_settings SET value = %s, revision = revision + 1, updated_by = %s, origin = %s, "
                "update_time = now() WHERE section = %s",
                (json.dumps(value), updated_by, origin, section),
            )


@dataclass
class Notifications:
    """Payloads received on a channel, each with its arrival time."""

    items: list[tuple[float, str]] = field(default_factory=list)

    @property
    def payloads(self) -> list[str]:
        return [p for _, p in self.items]

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads]


@asynccontextmanager
async def listening(dsn: str, channel: str, settle: float = 0.3) -> AsyncIterator[Notifications]:
    """Collect NOTIFY payloads on `channel` while the block runs (and `settle` seconds after it)."""
    got = Notifications()
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))

    async def pump() -> None:
        async for note in conn.notifies():
            got.items.append((time.monotonic(), note.payload))

    task = asyncio.create_task(pump())
    try:
        yield got
        await asyncio.sleep(settle)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
            await task
        await conn.close()
