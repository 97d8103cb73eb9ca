"""The drift check: one HubSettings + the indexed Hub pods in, `status.drift` and the Drifted condition out.

Reads (only the ConfigMaps and Secrets the selected pods reference, in the HubSettings' own namespace), hands
what it read to the pure report (`drift.layer0.compute`) and verdict (`status/drift.py`), then writes through
the one status writer (a patch only when the report changed) and posts the verdict's Events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hubsettings_operator.drift import layer0 as drift
from hubsettings_operator.drift.sources import outside_watch, read_sources, resolve_profile, select_pods
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.services import Services, generation_of, snapshot
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status.drift import drift_verdict
from hubsettings_operator.table.layouts import layout_for


async def check(
    services: Services,
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
    sources = await read_sources(services.kube, namespace, selected)
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
    update, events = drift_verdict(
        report,
        status,
        generation_of(body),
        outside=outside_watch(spec.bootstrap.podSelector, watch_selector),
    )
    async with services.writer.lock_for(body):
        await services.writer.write(body, update)
    for event in events:
        services.emit(body, event)
    return update.fields["drift"]  # type: ignore[no-any-return]
