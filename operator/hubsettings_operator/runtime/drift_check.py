"""The drift service: one HubSettings + the indexed Hub pods in, `status.drift` and the Drifted condition out.

Reads only the ConfigMaps and Secrets the selected pods reference, in the HubSettings' own namespace, and
patches status only when the report changed; an Event marks each transition (drift appears / clears).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hubsettings_operator import selectors
from hubsettings_operator.conditions import CondStatus, CondType, Desired, EventReason, EventType, Reason
from hubsettings_operator.drift import layer0 as drift
from hubsettings_operator.drift.sources import SourceReader, read_sources, resolve_profile, select_pods
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.reconciler import Reconciler, snapshot
from hubsettings_operator.spec.models import LabelSelector
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status.rules import Event, StatusUpdate, Verdict
from hubsettings_operator.table.layouts import layout_for


def outside_watch(selector: LabelSelector, watch_selector: str) -> str | None:
    """A warning when `selector` may pick pods the operator's pod watch (--pod-selector) never delivers."""
    if not watch_selector:
        return None
    wanted = selectors.from_label_selector(selector.matchLabels, selector.matchExpressions)
    if selectors.implies(wanted, selectors.parse(watch_selector)):
        return None
    return (
        f"spec.bootstrap.podSelector ({selectors.to_query(wanted) or 'every pod'}) is not within the operator's "
        f"--pod-selector ({watch_selector}): pods outside it are never watched and are not checked; narrow "
        "the podSelector or widen --pod-selector"
    )


async def check(
    reconciler: Reconciler,
    reader: SourceReader,
    body: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    *,
    watch_selector: str = "",
) -> dict[str, Any] | None:
    """Run the drift check for one object; returns the drift status written (None when not configured).

    `watch_selector`: the operator's --pod-selector; a podSelector that may select pods outside it is named in
    the Drifted message (the operator never receives those pods)."""
    body = snapshot(body)  # the timer's body is live: spec and generation must come from one moment
    spec, _errors = validate_spec(body.get("spec"))
    if spec is None or spec.bootstrap is None:
        return None
    meta = body.get("metadata", {})
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    selected = select_pods(pods, spec.bootstrap.podSelector, namespace)
    status = body.get("status") or {}
    profile = resolve_profile(status.get("profile"), spec.database.profile)
    sources = await read_sources(reader, namespace, selected)
    report = drift.compute(
        selected,
        spec.bootstrap.expected,
        sources=sources,
        container=spec.bootstrap.container,
        require_consistency=spec.bootstrap.requireConsistency,
        env_overrides_table=layout_for(profile).env_overrides_table,
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
    outside = outside_watch(spec.bootstrap.podSelector, watch_selector)
    if outside:
        desired = Desired(desired.type, desired.status, desired.reason, f"{message}; {outside}")
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
