"""Which Hub version governs validation of a reconcile, and where it came from: `status.hubVersion`. Pure.

Order (docs/sections.md, "Versions"; docs/status.md): `spec.hubVersion` when set (source `spec`); otherwise
the oldest `scion_version` the replicas reported to the last convergence check (status.convergence.replicas,
source `replicas`; `spec.versions.effective_hub_version`, the one rule); otherwise, with no token, no
reachable replica or no spec.convergence, the newest Hub generation of the generated facts (source `facts`),
as before the operator could ask the Hub.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubsettings_operator.conditions import EventReason, EventType
from hubsettings_operator.spec import versions
from hubsettings_operator.status.rules import Event

SOURCE_SPEC = "spec"
SOURCE_REPLICAS = "replicas"
SOURCE_FACTS = "facts"


@dataclass(frozen=True)
class Governing:
    """The version the reconcile validates against, and why."""

    effective: str  # the governing version (for `facts`: the newest generation's first version)
    source: str  # spec | replicas | facts
    versions: tuple[str, ...] = ()  # distinct replica versions, oldest first
    message: str = ""

    @property
    def mixed(self) -> bool:
        return len(self.versions) > 1

    @property
    def hub_version(self) -> str | None:
        """What to pass to validate_spec as `hub_version` (None: the facts' newest generation, as without)."""
        return self.effective if self.source == SOURCE_REPLICAS else None

    def as_status(self) -> dict[str, Any]:
        return {
            "effective": self.effective,
            "source": self.source,
            "mixed": self.mixed,
            "versions": list(self.versions),
            "message": self.message,
        }


def _replica_versions(status: Mapping[str, Any]) -> list[str | None]:
    conv = status.get("convergence")
    replicas = conv.get("replicas") if isinstance(conv, Mapping) else None
    if not isinstance(replicas, list):
        return []
    return [
        r.get("version") if isinstance(r.get("version"), str) else None
        for r in replicas
        if isinstance(r, Mapping)
    ]


def governing(spec: Any, status: Mapping[str, Any]) -> Governing:
    """The governing Hub version for a raw spec and the object's status as last written."""
    raw = spec if isinstance(spec, Mapping) else {}
    declared = raw.get("hubVersion")
    if isinstance(declared, str) and declared:
        return Governing(declared, SOURCE_SPEC, message="spec.hubVersion governs validation")
    reported = _replica_versions(status) if raw.get("convergence") else []
    found = versions.effective_hub_version(reported)
    if found.version is not None:
        note = found.message()
        return Governing(
            found.version,
            SOURCE_REPLICAS,
            found.versions,
            note or f"the replicas run Hub {found.version}: it governs validation",
        )
    newest = str(versions.generation_for(None)["since"])
    why = (
        "no replica reported its Hub version (no spec.convergence)"
        if not raw.get("convergence")
        else "no replica reported its Hub version yet (no admin token, no reachable replica, or no check yet)"
    )
    return Governing(
        newest,
        SOURCE_FACTS,
        message=f"{why}: validated against the newest Hub generation the operator knows (Hub >= {newest})",
    )


def mixed_event(old_status: Mapping[str, Any], now: Governing) -> Event | None:
    """A Normal Event when replicas start running different versions (a rolling upgrade), once."""
    before = old_status.get("hubVersion")
    was_mixed = isinstance(before, Mapping) and before.get("mixed") is True
    if now.mixed and not was_mixed:
        return Event(EventType.NORMAL, EventReason.HUB_VERSIONS_MIXED, now.message)
    return None


def changed(obj: Mapping[str, Any]) -> bool:
    """Whether the governing version of `obj` (its spec and status as now written) differs from the one its
    last reconcile validated with (status.hubVersion): the convergence check then asks for a reconcile, so a
    replaced old replica releases a refused spec (and a new old one refuses it) without waiting for a resync.
    False before the first reconcile wrote status.hubVersion (that reconcile is coming anyway)."""
    status = obj.get("status") or {}
    before = status.get("hubVersion")
    if not isinstance(before, Mapping):
        return False
    now = governing(obj.get("spec"), status)
    was = (before.get("effective"), before.get("source"), tuple(before.get("versions") or ()))
    return was != (now.effective, now.source, now.versions)
