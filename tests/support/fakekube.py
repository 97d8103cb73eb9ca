"""The one in-memory stand-in for the Kubernetes calls the reconciler makes (`runtime.services.KubeAPI`).

For fast tests of the reconcile service against a real PostgreSQL, and for the no-op benchmark: Secrets and
HubSettings objects live in dicts, status patches are merged like a merge patch on `status` and recorded.
Never the only proof of a Kubernetes behaviour: the e2e tier runs the same code against a real API server.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from typing import Any

from hubsettings_operator.errors import SecretNotFound


class FakeKube:
    """Secrets and HubSettings in memory. Records every Secret read and the status after every patch.

    `default_dsn`: returned for any Secret not put in `secrets` (tests that need only one database)."""

    def __init__(self, default_dsn: str | None = None) -> None:
        self.default_dsn = default_dsn
        self.secrets: dict[tuple[str, str, str], str] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads: list[tuple[str, str, str]] = []
        self.history: list[dict[str, Any]] = []  # the whole status after each patch
        self.patches = 0

    async def dsn_from_secret(self, namespace: str, name: str, key: str) -> str:
        self.reads.append((namespace, name, key))
        found = self.secrets.get((namespace, name, key), self.default_dsn)
        if found is None:
            raise SecretNotFound(f"Secret {namespace}/{name} does not exist")
        return found

    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((namespace, name))
        # The spec is shared, not copied: a hostile spec may nest thousands of levels (never mutated here).
        return {**obj, "status": copy.deepcopy(obj.get("status") or {})} if obj is not None else None

    async def close(self) -> None:
        """Nothing to release (the real client closes its HTTP session)."""

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.patches += 1
        current = self.objects[(namespace, name)].setdefault("status", {})
        current.update(copy.deepcopy(dict(status)))
        self.history.append(copy.deepcopy(current))

    def put(self, namespace: str, name: str, spec: Any) -> dict[str, Any]:
        """Create or replace an object (generation bumped, status kept); returns it as kopf would pass it."""
        old = self.objects.get((namespace, name))
        meta = {
            "namespace": namespace,
            "name": name,
            "uid": old["metadata"]["uid"] if old else secrets.token_hex(8),
            "generation": old["metadata"]["generation"] + 1 if old else 1,
        }
        obj = {"metadata": meta, "spec": spec, "status": dict(old.get("status") or {}) if old else {}}
        self.objects[(namespace, name)] = obj
        return obj
