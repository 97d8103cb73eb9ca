"""What the store remembers of one table between applies: the rows of the last read, parsed, and the plans made
over exactly that read.

`RowCache.version` counts the distinct reads: it moves whenever a read returns anything else than the previous
read did (a row added, removed, or different in any column, the value compared as text). A plan is a pure
function of the rows read, the wanted rows and the intent (owner, policies, what this owner wrote last), so a
plan made over version N is reused for the same wanted rows and an equal intent while the version is still N:
a no-op resync of an unchanged table plans nothing again. Nothing here trusts revisions or digests: an edit
that keeps the revision, the owner marker and update_time is still a different row as read, hence a new
version.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from hubsettings_operator.table.plan import CurrentRow, Plan, WrittenRecord

# A row exactly as `layout.select_rows` returned it: key, value text, updated_by, updated_at, revision, origin.
RowTuple = tuple[Any, ...]

# Owners remembered per table (one per HubSettings writing to it, and the odd CLI run).
MEMO_OWNERS = 64


@dataclass
class Memo:
    """One owner's last apply on a table. `wanted` and `intent` are the inputs compared on reuse (`wanted` by
    identity, held here so its id is not reused; `intent` by equality); `version` the read `plan` was made over."""

    wanted: object
    intent: object
    must_write: bool | None = None
    version: int = -1
    plan: Plan | None = None
    written: dict[str, WrittenRecord] | None = None


class RowCache:
    """Per (database, table): parsed rows of the last read, a version per distinct read, plans per owner."""

    def __init__(self) -> None:
        self.parsed: dict[RowTuple, CurrentRow] = {}
        self.version = 0
        self._memos: dict[str, Memo] = {}
        self._queries: dict[Hashable, bytes] = {}

    def query(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """A statement on this table as rendered once (`render`: psycopg's `sql` composition, no values)."""
        found = self._queries.get(key)
        if found is None:
            found = self._queries[key] = render()
        return found

    def __len__(self) -> int:
        return len(self.parsed)

    def replace(self, seen: list[tuple[RowTuple, CurrentRow]]) -> None:
        """A read that differs from the previous one: keep exactly its rows; every plan is stale."""
        self.parsed = dict(seen)
        self.version += 1
        for memo in self._memos.values():
            memo.plan = memo.written = None

    def memo(self, owner: str, wanted: object, intent: object) -> Memo:
        """`owner`'s memo for these inputs: the one kept if both are the same, else a fresh one (kept)."""
        found = self._memos.get(owner)
        if found is not None and found.wanted is wanted and found.intent == intent:
            return found
        found = self._memos[owner] = Memo(wanted, intent)
        if len(self._memos) > MEMO_OWNERS:
            del self._memos[next(iter(self._memos))]
        return found
