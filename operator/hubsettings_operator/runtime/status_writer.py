"""The one way status is written: per-object lock, re-read, merge, patch only what changed.

The reconciler, the health probe, the drift and convergence checks and the finalizer each own different parts
of status (conditions by type, fields by name). All of them write through `StatusWriter.write`, which re-reads the
object and merges over its latest status, so they never undo each other's writes, and which refuses to
put an older generation over a newer one (`status/rules.render`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from hubsettings_operator.status.rules import StatusUpdate, render, rfc3339


class StatusAPI(Protocol):
    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...


@dataclass
class Written:
    """What a write found and did: the object as re-read (None: gone) and the patch sent (empty: none)."""

    fresh: dict[str, Any] | None
    patch: dict[str, Any]

    @property
    def status(self) -> dict[str, Any]:
        """The object's status after the write."""
        base = dict((self.fresh or {}).get("status") or {})
        base.update(self.patch)
        return base

    @property
    def generation(self) -> int | None:
        gen = ((self.fresh or {}).get("metadata") or {}).get("generation")
        return gen if isinstance(gen, int) else None


def uid(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StatusWriter:
    """Per-object locks and status writes. One instance per operator process."""

    def __init__(self, kube: StatusAPI, clock: Callable[[], datetime] = _utcnow) -> None:
        self.kube = kube
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    def lock_for(self, body: Mapping[str, Any]) -> asyncio.Lock:
        """The lock every reconcile, probe, drift check and finalizer of this object holds while it works."""
        return self._locks.setdefault(uid(body), asyncio.Lock())

    def forget(self, body: Mapping[str, Any]) -> None:
        self._locks.pop(uid(body), None)

    async def write(
        self, body: Mapping[str, Any], update: StatusUpdate, *, only_first: bool = False
    ) -> Written:
        """Merge `update` over the object's latest status and patch what differs. Call with `lock_for` held.

        Skips the GET when nothing would change against `body`'s status (a no-op resync costs no request).
        `only_first`: write only when the latest status has no conditions yet (the first write of an object
        whose `body` may be a stale copy: under load kopf's body lags the API server by seconds)."""
        now = rfc3339(self.clock())
        known = body.get("status") or {}
        if not render(known, update, now):
            return Written(dict(body), {})
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        fresh = await self.kube.get_hubsettings(namespace, name)
        if fresh is None:
            return Written(None, {})
        if only_first and (fresh.get("status") or {}).get("conditions"):
            return Written(fresh, {})
        return await self._merge(fresh, update, now)

    async def write_over(self, fresh: Mapping[str, Any], update: StatusUpdate) -> Written:
        """`write` for a caller that has just read the object from the API itself, under `lock_for` (as
        `write` would have): merge over that status and patch what differs, without reading it again."""
        return await self._merge(dict(fresh), update, rfc3339(self.clock()))

    async def _merge(self, fresh: dict[str, Any], update: StatusUpdate, now: str) -> Written:
        meta = fresh.get("metadata", {})
        patch = render(fresh.get("status") or {}, update, now)
        if patch:
            await self.kube.patch_status(str(meta.get("namespace")), str(meta.get("name")), patch)
        return Written(fresh, patch or {})
