"""Pure planning: current rows of the settings table + desired rows -> what to write.

No I/O here. The store reads rows, calls `make_plan`, and writes exactly what the plan says, so the same
function backs `hubsettings plan`, the operator's reconcile and the tests.

A *row key* is what identifies a row under the table profile in use: a section name (`access`) for the
shipped Hub, a proposal key (`admin_emails`) for seed 000's table. Values are compared as canonical JSON,
so formatting, key order and `1` vs `1.0` are never a change, while `1` vs `true` is.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hubsettings_operator.spec.models import ConflictMode

OWNER_PREFIX = "hubsettings-operator:"
# Writers that are the Hub itself seeding defaults from its bootstrap config, not a person editing.
HUB_SEED_WRITERS = frozenset({"seed", "migration"})

JSONValue = Any
# The conflict mode of one row key (per-section policy: `spec.policy.sections`).
ModeOf = Callable[[str], ConflictMode]

# Length of a value digest (hex characters of SHA-256): enough to tell edits apart, short enough for status.
DIGEST_CHARS = 16


class ConflictReason(StrEnum):
    """Why a row is a conflict (reported in status, with the row key)."""

    EDITED_BY_OTHER = (
        "EditedByOther"  # last written by a person or tool other than the operator and the Hub seed
    )
    MODIFIED_OUT_OF_BAND = "ModifiedOutOfBand"  # still carries our marker, but not the value we last wrote


class Action(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    ADOPT = "adopt"  # same value, but the row becomes ours (e.g. a Hub `seeded` row turns `managed`)
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"  # edited out of band and left alone (policy Report)
    OWNED_BY_OTHER = "ownedByOther"
    OBSERVED = "observed"  # differs from the spec in a section under Observe: reported, never written


WRITE_ACTIONS = frozenset({Action.INSERT, Action.UPDATE, Action.DELETE, Action.ADOPT})
VALUE_ACTIONS = frozenset({Action.INSERT, Action.UPDATE, Action.DELETE})


def owner_marker(namespace: str, name: str) -> str:
    """The `updated_by` value that marks a row as written by one HubSettings."""
    return f"{OWNER_PREFIX}{namespace}/{name}"


def _normalize(value: JSONValue) -> JSONValue:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _plain(value: JSONValue) -> bool:
    """Whether `json.dumps` already spells `value` canonically: only dicts with str keys, lists, str, int,
    bool, None (no float to normalize). Checking is much cheaper than rebuilding the value."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def canonical_json(value: JSONValue) -> str:
    """One spelling per JSON value: sorted keys, no spaces, integral floats as integers."""
    plain = value if _plain(value) else _normalize(value)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def settings_hash(rows: Mapping[str, JSONValue]) -> str:
    """Fingerprint of a whole desired row set (reported in status and in proposal NOTIFY payloads)."""
    digest = hashlib.sha256(canonical_json(dict(rows)).encode()).hexdigest()
    return f"sha256:{digest}"


def settings_hash_of(canonical: Mapping[str, str]) -> str:
    """`settings_hash` of rows whose canonical JSON is already known (the same text, not re-encoded):
    `canonical_json` of a dict is its sorted keys, each JSON-encoded, with the values' canonical texts."""
    body = ",".join(f"{json.dumps(key, ensure_ascii=False)}:{canonical[key]}" for key in sorted(canonical))
    return f"sha256:{hashlib.sha256(('{' + body + '}').encode()).hexdigest()}"


def value_digest(value: JSONValue) -> str:
    """Short SHA-256 of a value's canonical JSON: what `WrittenRecord` remembers of a row's content."""
    return canonical_digest(canonical_json(value))


def canonical_digest(canonical: str) -> str:
    """`value_digest` of a value whose canonical JSON is already known."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:DIGEST_CHARS]


@dataclass(frozen=True)
class WrittenRecord:
    """What the operator last wrote (or found in place) in one of its rows: the revision (scion layout; `None`
    for the proposal layout) and the digest of the value. Handed back to the next apply, it tells an
    out-of-band edit that kept the owner marker from our own write, and keeps revisions moving forward."""

    revision: int | None
    digest: str


@dataclass(frozen=True)
class CurrentRow:
    """A row as read from the table (value already parsed from JSON; `None` means unparseable)."""

    key: str
    value: JSONValue
    updated_by: str | None = None
    updated_at: datetime | None = None
    revision: int | None = None
    origin: str | None = None
    parse_error: bool = False
    canonical: str | None = None  # canonical_json(value), when the reader already knows it

    @property
    def is_hub_seed(self) -> bool:
        """Written by the Hub from its own bootstrap config rather than by a person."""
        return self.origin == "seeded" or self.updated_by is None or self.updated_by in HUB_SEED_WRITERS


@dataclass(frozen=True)
class Change:
    key: str
    action: Action
    old: JSONValue = None
    new: JSONValue = None
    current_by: str | None = None
    current_at: datetime | None = None
    current_revision: int | None = None
    conflict: bool = False  # an out-of-band edit was found on this row (overwritten under Enforce)
    reason: ConflictReason | None = None  # set when `conflict` is
    observed: bool = False  # the row's section is under Observe: compared only, never written nor owned


@dataclass(frozen=True)
class Plan:
    owner: str
    changes: tuple[Change, ...] = field(default_factory=tuple)

    def by_action(self, *actions: Action) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @functools.cached_property
    def _writes(self) -> tuple[Change, ...]:
        # A plan never changes (frozen, and so are its changes): derived views are computed once per plan.
        return tuple(c for c in self.changes if c.action in WRITE_ACTIONS)

    @property
    def writes(self) -> list[Change]:
        return list(self._writes)

    @functools.cached_property
    def owned_keys(self) -> tuple[str, ...]:
        """Row keys the owner holds after this plan (what it listed and could write), sorted."""
        return tuple(
            sorted(
                c.key
                for c in self.changes
                if c.action in (Action.INSERT, Action.UPDATE, Action.ADOPT, Action.UNCHANGED)
                and not c.observed
            )
        )

    @property
    def value_changes(self) -> list[Change]:
        """Changes replicas must hear about (a NOTIFY is sent iff this is non-empty)."""
        return [c for c in self.changes if c.action in VALUE_ACTIONS]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.conflict or c.action is Action.CONFLICT]

    @property
    def out_of_band(self) -> list[Change]:
        """Rows of ours whose content was edited out of band (the owner marker kept)."""
        return [c for c in self.changes if c.reason is ConflictReason.MODIFIED_OUT_OF_BAND]

    @property
    def owned_by_other(self) -> list[Change]:
        return self.by_action(Action.OWNED_BY_OTHER)

    @property
    def observed_drift(self) -> list[Change]:
        """Rows of sections under Observe that differ from the spec (or are missing): reported, not written."""
        return self.by_action(Action.OBSERVED)

    @property
    def is_noop(self) -> bool:
        return not self._writes


def make_plan(
    current: Mapping[str, CurrentRow],
    desired: Mapping[str, JSONValue],
    owner: str,
    *,
    prune: bool = True,
    conflicts: ConflictMode = ConflictMode.ENFORCE,
    released_owners: frozenset[str] = frozenset(),
    last_written: Mapping[str, WrittenRecord] | None = None,
    canonical: Mapping[str, str] | None = None,
    mode_of: ModeOf | None = None,
) -> Plan:
    """Decide, row by row, what to do. Deterministic: changes are sorted by key.

    Ownership rules: a row marked by another HubSettings is never written (reported instead, so two CRs
    never flip-flop); a row last written by the Hub's own seeding is adopted silently; a row last edited
    by anybody else is a conflict, overwritten under Enforce, left under Report, reported either way.
    Pruning deletes only rows carrying this owner's marker. `released_owners` are markers of HubSettings
    that no longer exist: their rows are adopted like the Hub's seed rows instead of blocking forever.
    `last_written` is what this owner wrote last time: a row of ours whose content differs from it was edited
    out of band (a plain UPDATE that kept `updated_by`) and is a conflict like any other edit.
    `canonical` may carry `canonical_json` of desired values already computed by the caller.
    `mode_of` gives a row key's own mode (per-section policy), `conflicts` being the default. A row under
    Observe is never written, adopted nor pruned, whoever owns it: it is only compared with the spec
    (`Action.OBSERVED` when it differs or is missing).
    """
    last_written = last_written or {}
    canonical = canonical or {}

    def tampered(row: CurrentRow, row_canonical: str | None = None) -> bool:
        last = last_written.get(row.key)
        if last is None:
            return False
        return canonical_digest(row_canonical or row.canonical or canonical_json(row.value)) != last.digest

    changes: list[Change] = []
    for key in sorted(desired):
        new = desired[key]
        row = current.get(key)
        mode = mode_of(key) if mode_of is not None else conflicts
        if row is None:
            if mode is ConflictMode.OBSERVE:
                changes.append(Change(key, Action.OBSERVED, new=new, observed=True))
            else:
                changes.append(Change(key, Action.INSERT, new=new))
            continue
        row_canonical = row.canonical or canonical_json(row.value)
        same = not row.parse_error and row_canonical == (canonical.get(key) or canonical_json(new))
        common = {
            "old": row.value,
            "new": new,
            "current_by": row.updated_by,
            "current_at": row.updated_at,
            "current_revision": row.revision,
        }
        if mode is ConflictMode.OBSERVE:
            changes.append(
                Change(key, Action.UNCHANGED if same else Action.OBSERVED, observed=True, **common)
            )
            continue
        if row.updated_by == owner:
            if not same and tampered(row, row_canonical):
                action = Action.UPDATE if mode is ConflictMode.ENFORCE else Action.CONFLICT
                changes.append(
                    Change(key, action, conflict=True, reason=ConflictReason.MODIFIED_OUT_OF_BAND, **common)
                )
            elif not same:
                changes.append(Change(key, Action.UPDATE, **common))
            elif row.origin not in (None, "managed"):
                changes.append(Change(key, Action.ADOPT, **common))
            else:
                changes.append(Change(key, Action.UNCHANGED, **common))
        elif (
            row.updated_by is not None
            and row.updated_by.startswith(OWNER_PREFIX)
            and row.updated_by not in released_owners
        ):
            changes.append(Change(key, Action.OWNED_BY_OTHER, **common))
        elif row.is_hub_seed or row.updated_by in released_owners:
            changes.append(Change(key, Action.ADOPT if same else Action.UPDATE, **common))
        elif same:
            action = Action.ADOPT if mode is ConflictMode.ENFORCE else Action.UNCHANGED
            changes.append(Change(key, action, **common))
        else:
            action = Action.UPDATE if mode is ConflictMode.ENFORCE else Action.CONFLICT
            changes.append(
                Change(key, action, conflict=True, reason=ConflictReason.EDITED_BY_OTHER, **common)
            )
    if prune:
        for key in sorted(set(current) - set(desired)):
            row = current[key]
            mode = mode_of(key) if mode_of is not None else conflicts
            if row.updated_by != owner or mode is ConflictMode.OBSERVE:
                continue
            # Pruning a row edited out of band destroys that edit: the same policy as overwriting it.
            edited = tampered(row)
            action = Action.CONFLICT if edited and mode is ConflictMode.REPORT else Action.DELETE
            changes.append(
                Change(
                    key,
                    action,
                    old=row.value,
                    current_by=row.updated_by,
                    current_at=row.updated_at,
                    current_revision=row.revision,
                    conflict=edited,
                    reason=ConflictReason.MODIFIED_OUT_OF_BAND if edited else None,
                )
            )
    return Plan(owner=owner, changes=tuple(changes))
