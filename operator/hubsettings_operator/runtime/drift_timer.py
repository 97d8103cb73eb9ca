"""The drift service: one HubSettings + the indexed Hub pods in, `status.drift` and the Drifted condition out.

Reads only the ConfigMaps and Secrets the selected pods reference, in the HubSettings' own namespace, and
patches status only when the report changed; an Event marks each transition (drift appears / clears).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from hubsettings_operator.conditions import CondStatus, CondType, Desired, EventReason, EventType, Reason
from hubsettings_operator.drift import layer0 as drift
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.reconciler import Reconciler, snapshot
from hubsettings_operator.runtime.status import Event, StatusUpdate, Verdict
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.spec.validation import validate_spec


class SourceReader(Protocol):
    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None: ...
    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None: ...


async def read_sources(
    kube: SourceReader, namespace: str, pods: Iterable[Mapping[str, Any]]
) -> drift.Sources:
    configmaps, secrets = drift.referenced_sources(pods)
    return drift.Sources(
        configmaps={n: await kube.configmap_data(namespace, n) for n in sorted(configmaps)},
        secrets={n: await kube.secret_data(namespace, n) for n in sorted(secrets)},
    )


async def check(
    reconciler: Reconciler,
    reader: SourceReader,
    body: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
) -> dict[str, Any] | None:
    """Run the drift check for one object; returns the drift status written (None when not configured)."""
    body = snapshot(body)  # the timer's body is live: spec and generation must come from one moment
    spec, _errors = validate_spec(body.get("spec"))
    if spec is None or spec.bootstrap is None:
        return None
    meta = body.get("metadata", {})
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    selected = [
        p
        for p in pods
        if p.get("metadata", {}).get("namespace") == namespace
        and drift.matches_selector(spec.bootstrap.podSelector, p.get("metadata", {}).get("labels") or {})
    ]
    status = body.get("status") or {}
    profile_name = status.get("profile") or spec.database.profile.value
    profile = Profile.PROPOSAL if profile_name == Profile.PROPOSAL.value else Profile.SCION
    sources = await read_sources(reader, namespace, selected)
    report = drift.compute(
        selected,
        spec.bootstrap.expected,
        sources=sources,
        container=spec.bootstrap.container,
        require_consistency=spec.bootstrap.requireConsistency,
        profile=profile,
        managed_sections=list(spec.settings.listed()),
    )
    metrics.DRIFTED_PODS.labels(namespace, name).set(report.driftedPods)
    metrics.DRIFT_ITEMS.labels(namespace, name).set(len(report.items) + report.truncated)
    metrics.CHECKED_PODS.labels(namespace, name).set(report.checkedPods)
    drifted = bool(report.items)
    if report.checkedPods == 0:
        message = f"no running Hub pods match spec.bootstrap.podSelector ({report.skippedPods} skipped)"
        desired = Desired(CondType.DRIFTED, False, Reason.NO_PODS, message)
    elif drifted:
        keys = sorted({i.key for i in report.items})
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        message = f"{report.driftedPods} of {report.checkedPods} pods differ on {shown}"
        desired = Desired(CondType.DRIFTED, True, Reason.BOOTSTRAP_MISMATCH, message)
    else:
        message = f"{report.checkedPods} pods agree on their Layer 0 settings"
        desired = Desired(CondType.DRIFTED, False, Reason.BOOTSTRAP_CONSISTENT, message)
    drift_json = report.model_dump(mode="json")
    generation = meta.get("generation")
    update = StatusUpdate(
        fields={"drift": drift_json},
        verdict=Verdict((desired,)),
        generation=generation if isinstance(generation, int) else None,
        observe=False,  # drift applies no spec: the top-level observedGeneration is the reconciler's
    )
    before = next(
        (c for c in status.get("conditions") or [] if c.get("type") == CondType.DRIFTED.value), None
    )
    async with reconciler.lock_for(body):
        await reconciler.writer.write(body, update)
    was = before is not None and before.get("status") == CondStatus.TRUE
    if drifted != was and (before is not None or drifted):
        event = (
            Event(EventType.WARNING, EventReason.DRIFT_DETECTED, message)
            if drifted
            else Event(EventType.NORMAL, EventReason.DRIFT_CLEARED, message)
        )
        reconciler.emit(body, event)
    return drift_json
