"""Table profiles: the two layouts of the Hub's settings table, as pure logic (no I/O).

- `scion`: the shipped Hub. One row per section (`section`, `value` jsonb = whole section document,
  `revision`, `updated_by`, `origin`, `create_time`, `update_time`); NOTIFY on `scion_ev_global` with the
  Hub's event envelope, one per changed section.
- `proposal`: seed 000. One row per key (`key`, `value` text JSON, `updated_at`, `updated_by`); one NOTIFY on
  `scion_settings_changed` with the changed keys and the settings hash, never values.

`desired_rows` turns a spec into the rows the profile stores; `detect` tells the profile from the columns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hubsettings_operator.errors import SchemaMismatch
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.table.plan import Action, Plan, settings_hash

SCION_CHANNEL = "scion_ev_global"
PROPOSAL_CHANNEL = "scion_settings_changed"
# PostgreSQL's hard limit is 8000 bytes; the Hub moves payloads over 7000 bytes out of band.
MAX_NOTIFY_BYTES = 7000

SCION_COLUMNS = frozenset({"id", "section", "value", "revision", "updated_by", "origin", "update_time"})
PROPOSAL_COLUMNS = frozenset({"key", "value", "updated_at", "updated_by"})

# Seed 000's DDL, verbatim in meaning.
PROPOSAL_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT
)"""


@dataclass(frozen=True)
class ResolvedProfile:
    name: Profile
    channel: str


def default_channel(profile: Profile) -> str:
    return SCION_CHANNEL if profile is Profile.SCION else PROPOSAL_CHANNEL


def resolve(profile: Profile, channel: str) -> ResolvedProfile:
    if profile is Profile.AUTO:
        raise ValueError("resolve a concrete profile (detect() first)")
    return ResolvedProfile(profile, channel or default_channel(profile))


def detect(columns: Iterable[str] | None, *, create_table: bool, table: str) -> Profile:
    """The profile a table's columns say; `None` columns means the table does not exist."""
    if columns is None:
        if create_table:
            return Profile.PROPOSAL
        raise SchemaMismatch(
            f"table {table} does not exist: the shipped Hub creates it through its migrations (start the Hub "
            "once), or set spec.database.createTable: true with profile proposal"
        )
    cols = set(columns)
    if cols >= SCION_COLUMNS:
        return Profile.SCION
    if cols >= PROPOSAL_COLUMNS:
        return Profile.PROPOSAL
    raise SchemaMismatch(
        f"table {table} has columns {sorted(cols)}, which match neither the shipped Hub's layout "
        f"({sorted(SCION_COLUMNS)}) nor seed 000's ({sorted(PROPOSAL_COLUMNS)}); is this an older fork's table?"
    )


def check_columns(profile: Profile, columns: Iterable[str] | None, table: str) -> None:
    """Refuse a forced profile whose columns the table does not have."""
    if columns is None:
        return
    need = SCION_COLUMNS if profile is Profile.SCION else PROPOSAL_COLUMNS
    missing = need - set(columns)
    if missing:
        raise SchemaMismatch(
            f"table {table} lacks columns {sorted(missing)} required by profile {profile.value}; "
            "use profile auto or point spec.database.table at the Hub's settings table"
        )


def desired_rows(spec: HubSettingsSpec, profile: Profile) -> dict[str, object]:
    """Rows the spec wants, keyed by row key (section or proposal key), values as JSON-able data."""
    rows: dict[str, object] = {}
    if profile is Profile.SCION:
        for section, doc in catalog.section_documents(spec.settings).items():
            rows[section] = doc
    else:
        for field, value in catalog.proposal_values(spec.settings).items():
            rows[field] = value
    rows.update(spec.extraSettings)
    return rows


def scion_payload(section: str, revision: int, now_ns: int | None = None) -> str:
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


def proposal_payload(plan: Plan, rows: Mapping[str, object], owner: str) -> str:
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


def changed_keys(plan: Plan) -> list[str]:
    return [c.key for c in plan.changes if c.action in (Action.INSERT, Action.UPDATE, Action.DELETE)]
