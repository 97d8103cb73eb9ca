"""Seed 000's table layout (`proposal` profile).

One row per key: `key` (primary key), `value` TEXT holding JSON, `updated_at`, `updated_by`. One NOTIFY per
apply on `scion_settings_changed` with the changed keys and the settings hash, never values. The operator
may create this table (`spec.database.createTable`).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.table.layout import MAX_NOTIFY_BYTES, Render, WriteOutcome, execute_writes
from hubsettings_operator.table.plan import (
    Action,
    JSONValue,
    Plan,
    WrittenRecord,
    canonical_json,
    settings_hash,
)

CHANNEL = "scion_settings_changed"
COLUMNS = frozenset({"key", "value", "updated_at", "updated_by"})

# Seed 000's DDL, verbatim in meaning.
DDL = """CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT
)"""


def payload(plan: Plan, rows: Mapping[str, JSONValue], owner: str) -> str:
    """One small message per apply: changed keys and the settings hash, never values.

    If the key list would not fit, it is dropped and `"all": true` tells listeners to reload everything.
    """
    keys = sorted(c.key for c in plan.value_changes)
    body: dict[str, object] = {"keys": keys, "hash": settings_hash(rows), "by": owner}
    text = json.dumps(body, separators=(",", ":"))
    if len(text.encode()) > MAX_NOTIFY_BYTES:
        body = {"all": True, "count": len(keys), "hash": settings_hash(rows), "by": owner}
        text = json.dumps(body, separators=(",", ":"))
    return text


@functools.cache
def _key_sections() -> dict[str, str]:
    return {s.proposal_key: s.section for s in catalog.layer1_settings() if s.proposal_key and s.section}


class ProposalLayout:
    profile = Profile.PROPOSAL
    channel = CHANNEL
    columns = COLUMNS
    key_column = "key"
    revisioned = False
    creatable = True
    replica_endpoint = False
    env_overrides_table = True

    def desired_rows(self, spec: HubSettingsSpec) -> dict[str, JSONValue]:
        rows: dict[str, JSONValue] = dict(catalog.proposal_values(spec.settings))
        rows.update(spec.extraSettings)
        return rows

    def section_of(self, key: str) -> str:
        # Proposal keys are unique across sections (whole-section rows carry the section's name).
        return _key_sections().get(key, key)

    def parse(self, raw: Any) -> tuple[JSONValue, bool]:
        # The TEXT column holds JSON text; anything else is reported, never guessed.
        if isinstance(raw, str):
            with contextlib.suppress(ValueError):
                return json.loads(raw), False
            return raw, True
        return raw, False

    def select_rows(self, table: sql.Composable, *, lock: bool) -> sql.Composed:
        return sql.SQL(
            "SELECT key, value, updated_by, updated_at, NULL::bigint, NULL::text FROM {}{}"
        ).format(table, sql.SQL(" FOR UPDATE" if lock else ""))

    def create_table(self, table: sql.Composable) -> sql.Composed | None:
        return sql.SQL(DDL).format(table=table)

    def missing_table_hint(self) -> str:
        return "set spec.database.createTable: true to let the operator create it"

    def notes(self, desired: Mapping[str, JSONValue]) -> list[str]:
        return []

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
        out = WriteOutcome()
        inserts: list[tuple[str, str]] = []
        updates: list[tuple[str, str]] = []
        deletes: list[str] = []
        for change in plan.writes:
            if change.action is Action.INSERT:
                inserts.append((change.key, canonical_json(change.new)))
            elif change.action in (Action.UPDATE, Action.ADOPT):
                updates.append((change.key, canonical_json(change.new)))
            else:
                deletes.append(change.key)
            out.rows_written += 1
        # One set-based statement per kind of write, all in one statement with the NOTIFY.
        writes: list[tuple[str, tuple[Any, ...]]] = []
        if inserts:
            keys, values = (list(col) for col in zip(*inserts, strict=True))
            writes.append(
                (
                    (
                        "INSERT INTO {} (key, value, updated_at, updated_by) SELECT u.key, u.value, now(), %s "
                        "FROM unnest(%b::text[], %b::text[]) AS u(key, value)"
                    ),
                    (plan.owner, keys, values),
                )
            )
        if updates:
            keys, values = (list(col) for col in zip(*updates, strict=True))
            writes.append(
                (
                    (
                        "UPDATE {} AS t SET value = u.value, updated_at = now(), updated_by = %s "
                        "FROM unnest(%b::text[], %b::text[]) AS u(key, value) WHERE t.key = u.key"
                    ),
                    (plan.owner, keys, values),
                )
            )
        if deletes:
            writes.append(
                (
                    "DELETE FROM {} WHERE key = ANY(%b::text[]) AND updated_by = %s",
                    (deletes, plan.owner),
                )
            )
        if plan.value_changes:
            out.notifications.append(payload(plan, desired, plan.owner))
        await execute_writes(conn, table, writes, channel, out.notifications, render)
        return out


LAYOUT = ProposalLayout()
