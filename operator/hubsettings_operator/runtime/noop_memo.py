"""The status outcome of a no-op reconcile, remembered per object so that an unchanged object does not
recompute its conditions and status fields at every resync.

A reconcile's status is a pure function of: the validated spec (validate_spec hands one read-only instance
per canonical spec text), the live schemas it was validated against, the object's status as read, the
generation, where the Secret points (database fingerprint, Secret name and key, both in the spec) and the
apply's result, which for a no-op is its plan (a plan is reused by the store only for the very same read,
wanted rows and intent, see table/rowcache.py, and never changes) and the table's profile. The clock does not
enter a no-op whose status patch was empty (no condition changed status, nothing was written). The key holds
all of them: the status by its JSON text (status is JSON data as the API server returns it), the others by
identity, with references held so their ids cannot be reused. Only an outcome with no write, no event and an
empty status patch is remembered, and it is handed back only for an equal key.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

NoopKey = tuple[Hashable, ...]


@dataclass(frozen=True)
class _Entry:
    key: NoopKey
    held: tuple[Any, ...]  # the objects whose ids are in `key`
    status: dict[str, Any]  # the owned status fields the reconcile wanted (and found in place)


class NoopMemo:
    """One remembered no-op outcome per object (uid)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    @staticmethod
    def key(
        status: Mapping[str, Any], generation: int | None, held: tuple[Any, ...], *values: Hashable
    ) -> NoopKey | None:
        """The key of a reconcile's inputs, or None when the status is not plain JSON data (never remembered)."""
        try:
            text = json.dumps(status, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return None
        return (text, generation, *(id(obj) for obj in held), *values)

    def get(self, uid: str, key: NoopKey) -> dict[str, Any] | None:
        found = self._entries.get(uid)
        if found is None or found.key != key:
            return None
        return dict(found.status)

    def put(self, uid: str, key: NoopKey, held: tuple[Any, ...], status: Mapping[str, Any]) -> None:
        self._entries[uid] = _Entry(key, held, dict(status))

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)
