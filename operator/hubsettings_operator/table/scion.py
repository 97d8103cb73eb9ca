"""The shipped Hub's table layout (`scion` profile).

One row per section: `section` (unique), `value` jsonb holding the whole section document, `revision`,
`updated_by`, `origin` (`seeded` / `managed`), `create_time`, `update_time`. Replicas apply a section only
when its revision moves, so every value change bumps it; a NOTIFY on `scion_ev_global` carries the Hub's
`SettingsUpdatedEvent` envelope, one per changed section. The operator never creates this table: the Hub's
migrations do.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from hubsettings_operator.errors import HubRuleRefused
from hubsettings_operator.spec import catalog, gcp_iam
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.table.layout import Render, WriteOutcome, execute_writes
from hubsettings_operator.table.plan import Action, Change, JSONValue, Plan, WrittenRecord, canonical_json

CHANNEL = "scion_ev_global"
COLUMNS = frozenset({"id", "section", "value", "revision", "updated_by", "origin", "update_time"})


def envelope(section: str, revision: int, now_ns: int | None = None) -> str:
    """The Hub's SettingsUpdatedEvent envelope for one section (pkg/hub/operational_settings.go)."""
    return json.dumps(
        {
            "type": "SettingsUpdatedEvent",
            "subject": "admin.settings.updated",
            "data": {"section": section, "revision": revision},
            "ts": now_ns if now_ns is not None else time.time_ns(),
        },
        separators=(",", ":"),
    )


def next_revision(change: Change, last_written: Mapping[str, WrittenRecord]) -> int:
    """Revisions never go backwards: past both the row's and the one we last wrote (a managed row deleted
    and re-inserted continues where it was, so a replica never mistakes it for an old version)."""
    last = last_written.get(change.key)
    return max(change.current_revision or 0, (last.revision or 0) if last is not None else 0) + 1


def adopted_revision(change: Change, last_written: Mapping[str, WrittenRecord]) -> int | None:
    """Taking ownership of a row whose value stays (adopting a Hub seed row or an admin's edit) keeps its
    revision: replicas apply a section only when its revision moves, and nothing changed for them to apply
    (adopting a running Hub must not make every replica reload). `None` when the revision must move: any
    other write, or a row behind a revision we wrote before (revisions never go backwards)."""
    if change.action is not Action.ADOPT or change.current_revision is None:
        return None
    last = last_written.get(change.key)
    if last is not None and (last.revision or 0) > change.current_revision:
        return None
    return change.current_revision


class ScionLayout:
    profile = Profile.SCION
    channel = CHANNEL
    columns = COLUMNS
    key_column = "section"
    revisioned = True
    creatable = False
    replica_endpoint = True
    env_overrides_table = False

    def desired_rows(self, spec: HubSettingsSpec) -> dict[str, JSONValue]:
        rows: dict[str, JSONValue] = dict(catalog.section_documents(spec.settings))
        rows.update(spec.extraSettings)
        return rows

    def section_of(self, key: str) -> str:
        return key  # a row per section

    def parse(self, raw: Any) -> tuple[JSONValue, bool]:
        # Selected as text (jsonb's own spelling) so that readers can cache parses by text; jsonb is valid JSON.
        return (json.loads(raw), False) if isinstance(raw, str) else (raw, False)

    def select_rows(self, table: sql.Composable, *, lock: bool) -> sql.Composed:
        return sql.SQL(
            "SELECT section, value::text, updated_by, update_time, revision, origin FROM {}{}"
        ).format(table, sql.SQL(" FOR UPDATE" if lock else ""))

    def create_table(self, table: sql.Composable) -> sql.Composed | None:
        return None

    def missing_table_hint(self) -> str:
        return "the shipped Hub creates it through its migrations (start the Hub once)"

    def notes(self, desired: Mapping[str, JSONValue]) -> list[str]:
        out = []
        for section, doc in sorted(desired.items()):
            missing = catalog.unset_fields(section, doc) if isinstance(doc, dict) else []
            if missing:
                out.append(f"{section}: {', '.join(missing)} left unset (the Hub's zero value applies)")
        return out

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
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        deletes: list[str] = []
        notify: list[tuple[str, int]] = []
        for change in plan.writes:
            if change.key == gcp_iam.SECTION and change.action in (Action.INSERT, Action.UPDATE):
                # Checked against the row read under the lock, inside the write's transaction.
                refused = gcp_iam.refusal(change.old if change.action is Action.UPDATE else None, change.new)
                if refused is not None:
                    raise HubRuleRefused(refused)
            revision = adopted_revision(change, last_written)
            if revision is None:
                revision = next_revision(change, last_written)
            if change.action is Action.INSERT:
                inserts.append((uuid.uuid4(), change.key, canonical_json(change.new), revision))
            elif change.action in (Action.UPDATE, Action.ADOPT):
                updates.append((change.key, canonical_json(change.new), revision))
            else:
                deletes.append(change.key)
            if change.action is not Action.DELETE:
                out.revisions[change.key] = revision
            if change.action is not Action.ADOPT:  # adopting keeps the value: nothing for replicas to do
                notify.append((change.key, revision))
            out.rows_written += 1
        # One set-based statement per kind of write, all in one statement with the NOTIFYs.
        writes: list[tuple[str, tuple[Any, ...]]] = []
        if inserts:
            ids, sections, values, revisions = (list(col) for col in zip(*inserts, strict=True))
            writes.append(
                (
                    (
                        "INSERT INTO {} (id, section, value, revision, updated_by, origin, create_time, "
                        "update_time) SELECT u.id, u.section, u.value::jsonb, u.revision, %s, 'managed', now(), "
                        "now() FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bigint[]) "
                        "AS u(id, section, value, revision)"
                    ),
                    (plan.owner, ids, sections, values, revisions),
                )
            )
        if updates:
            sections, values, revisions = (list(col) for col in zip(*updates, strict=True))
            writes.append(
                (
                    (
                        "UPDATE {} AS t SET value = u.value::jsonb, revision = u.revision, updated_by = %s, "
                        "origin = 'managed', update_time = now() "
                        "FROM unnest(%b::text[], %b::text[], %b::bigint[]) AS u(section, value, revision) "
                        "WHERE t.section = u.section"
                    ),
                    (plan.owner, sections, values, revisions),
                )
            )
        if deletes:
            writes.append(
                (
                    "DELETE FROM {} WHERE section = ANY(%b::text[]) AND updated_by = %s",
                    (deletes, plan.owner),
                )
            )
        out.notifications = [envelope(section, revision) for section, revision in notify]
        await execute_writes(conn, table, writes, channel, out.notifications, render)
        return out


LAYOUT = ScionLayout()
