"""kopf's diff base in status, compact for large specs.

kopf keeps the essence of the last handled object (here: the spec) to tell a spec change from any other
event. Stored whole, it is a second, JSON-escaped copy of the spec in the same object: a spec of a few
hundred KB then pushes every status patch over etcd's request limit (`etcdserver: request is too large`),
and kopf retries each one. Over FULL_COPY_MAX_BYTES only a digest of the essence is stored: when the
object's current essence has that digest, kopf is given the current essence (no change); otherwise a stub
that differs from any spec (a change: the update handler runs, and the handlers never read kopf's `old`).

Only HubSettings have handlers that compare essences: for any other kind (the Hub pods of the drift index)
there is none to build, which would be a deep copy of every pod on every watch event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, cast

import kopf

from hubsettings_operator.spec.models import KIND

FULL_COPY_MAX_BYTES = 64 * 1024
DIGEST_PREFIX = "sha256:"


def digest(essence: Any) -> str:
    canonical = json.dumps(essence, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return DIGEST_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


class CompactStatusDiffBaseStorage(kopf.StatusDiffBaseStorage):
    """kopf's StatusDiffBaseStorage, storing a digest instead of the essence when the essence is large."""

    def __init__(self, *, field: str, ignored_fields: list[str]) -> None:
        super().__init__(field=field, ignored_fields=ignored_fields)
        self._path = field.split(".")

    def _stored(self, body: Any) -> Any:
        node: Any = body
        for part in self._path:
            node = node.get(part) if isinstance(node, dict) or hasattr(node, "get") else None
            if node is None:
                return None
        return node

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        if body.get("kind", KIND) != KIND:
            # kopf accepts no essence (None) here: no old, no new, no diff for an object without such handlers.
            return None  # type: ignore[return-value]
        return super().build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = self._stored(body)
        if isinstance(stored, str) and stored.startswith(DIGEST_PREFIX):
            current = self.build(body=body)
            if digest(current) == stored:
                return current
            return cast(kopf.BodyEssence, {"spec": {"_digest": stored}})
        return super().fetch(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        encoded = json.dumps(essence, separators=(",", ":"))
        if len(encoded.encode()) <= FULL_COPY_MAX_BYTES:
            super().store(body=body, patch=patch, essence=essence)
            return
        node: Any = patch
        for part in self._path[:-1]:
            node = node.setdefault(part, {})
        node[self._path[-1]] = digest(essence)
