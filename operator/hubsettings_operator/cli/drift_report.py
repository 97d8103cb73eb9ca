"""`hubsettings drift`: Layer 0 drift of the Hub's pods, checked from a workstation with the user's kubeconfig.

The same pure `drift.compute` the operator's drift check runs, fed by the CLI's one Kubernetes reader
(`cli/kube.py`): one list of the selected pods, then the operator's async source reader (`drift/sources.py`)
for the ConfigMaps and Secrets they refer to. A Secret or ConfigMap that cannot be read (403, 404, any API
error) is reported as `unresolved`, never a crash. Secret values are only ever shown as `sha256:` fingerprints.

Exit codes (`cli/exitcodes.ExitCode`): 0 no drift, 3 drift found, 1 error (e.g. no spec.bootstrap).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import click

from hubsettings_operator.cli.exitcodes import ExitCode
from hubsettings_operator.cli.kube import Cluster, ClusterReader
from hubsettings_operator.drift import layer0 as drift
from hubsettings_operator.drift import sources
from hubsettings_operator.redact import scrub
from hubsettings_operator.spec.models import DriftStatus, HubSettings, Profile
from hubsettings_operator.table.layouts import layout_for

DRIFT_COLUMNS = ("POD", "CONTAINER", "KEY", "ENV", "EXPECTED", "ACTUAL", "REASON")
OVERRIDE_COLUMNS = ("POD", "CONTAINER", "KEY", "ENV", "EFFECT")
_MAX_CELL = 60


def _connect(kubeconfig: str | None) -> Cluster:
    return ClusterReader(kubeconfig)


async def check_resource(
    cluster: Cluster, resource: HubSettings, namespace: str, profile: Profile
) -> DriftStatus:
    """The drift report of one HubSettings (which must have spec.bootstrap) against the live pods."""
    bootstrap = resource.spec.bootstrap
    if bootstrap is None:
        raise ValueError("no spec.bootstrap")
    pods = await cluster.list_pods(namespace, drift.label_selector(bootstrap.podSelector))
    return drift.compute(
        pods,
        bootstrap.expected,
        sources=await sources.read_sources(cluster, namespace, pods),
        container=bootstrap.container,
        require_consistency=bootstrap.requireConsistency,
        env_overrides_table=layout_for(
            sources.resolve_profile(profile, resource.spec.database.profile)
        ).env_overrides_table,
        managed_sections=sorted(resource.spec.settings.listed()),
    )


def _cell(value: str | None) -> str:
    if value is None or value == "":
        return "-"
    text = value.replace("\n", "\\n")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def render_table(status: DriftStatus) -> str:
    """Human-readable report: drift items, Layer 1 overrides, and a summary line. Pure."""
    lines: list[str] = []
    if status.items:
        rows: list[tuple[str, ...]] = [
            (
                _cell(i.pod),
                _cell(i.container),
                _cell(i.key),
                _cell(i.env),
                _cell(i.expected),
                _cell(i.actual),
                i.reason,
            )
            for i in status.items
        ]
        lines += _table(DRIFT_COLUMNS, rows)
    else:
        lines.append("No drift.")
    if status.truncated:
        lines.append(f"... and {status.truncated} more drift item(s) not shown")
    if status.overrides:
        lines += ["", "Layer 1 settings set by env vars:"]
        orows: list[tuple[str, ...]] = [
            (_cell(o.pod), _cell(o.container), _cell(o.key), _cell(o.env), o.effect) for o in status.overrides
        ]
        lines += _table(OVERRIDE_COLUMNS, orows)
    lines += [
        "",
        f"{status.checkedPods} pod(s) checked, {status.driftedPods} drifted, {status.skippedPods} skipped",
    ]
    return "\n".join(lines)


def run_drift(
    resources: list[HubSettings],
    namespace: str | None,
    kubeconfig: str | None,
    profile: Profile,
    output: str,
) -> int:
    """`hubsettings drift`: check each HubSettings' pods; print text or JSON; return the exit code.

    `namespace` overrides each resource's own. JSON: one resource prints its `DriftStatus`; several print a
    list of {name, namespace, drift}. Returns 0 clean, 3 drift, 1 on any error (errors win over drift).
    """
    if not resources:
        click.echo("error: no HubSettings documents found", err=True)
        return ExitCode.ERROR
    missing = [r for r in resources if r.spec.bootstrap is None]
    for r in missing:
        click.echo(
            f"error: HubSettings {r.metadata.namespace}/{r.metadata.name} has no spec.bootstrap section: "
            "nothing to check (add spec.bootstrap with a podSelector and the expected Layer 0 values)",
            err=True,
        )
    todo = [r for r in resources if r.spec.bootstrap is not None]
    if not todo:
        return ExitCode.ERROR
    try:
        cluster = _connect(kubeconfig)
    except Exception as exc:  # kubeconfig missing or invalid: a message, not a traceback
        click.echo(f"error: cannot load kubeconfig: {scrub(str(exc))}", err=True)
        return ExitCode.ERROR
    return _run(cluster, todo, namespace, profile, output, failed=bool(missing), many=len(resources) > 1)


async def _check_all(
    cluster: Cluster, resources: list[HubSettings], namespace: str | None, profile: Profile
) -> tuple[list[tuple[HubSettings, str, DriftStatus]], bool]:
    """Each resource's report, in one event loop; an API error is printed and the others still run."""
    out: list[tuple[HubSettings, str, DriftStatus]] = []
    failed = False
    for r in resources:
        ns = namespace or r.metadata.namespace
        try:
            out.append((r, ns, await check_resource(cluster, r, ns, profile)))
        except Exception as exc:  # API server unreachable, pods not listable: report, go on with the others
            click.echo(
                f"error: HubSettings {ns}/{r.metadata.name}: cannot list pods: {scrub(str(exc))}", err=True
            )
            failed = True
    return out, failed


def _run(
    cluster: Cluster,
    resources: list[HubSettings],
    namespace: str | None,
    profile: Profile,
    output: str,
    *,
    failed: bool = False,
    many: bool = False,
) -> int:
    many = many or len(resources) > 1
    checked, failed_any = asyncio.run(_check_all(cluster, resources, namespace, profile))
    failed = failed or failed_any
    results: list[tuple[HubSettings, str, DriftStatus]] = []
    for r, ns, status in checked:
        if status.checkedPods == 0 and status.skippedPods == 0:
            bootstrap = r.spec.bootstrap
            selector = drift.label_selector(bootstrap.podSelector) if bootstrap else ""
            click.echo(f"warning: no pods in namespace {ns} match {selector or '(everything)'}", err=True)
        results.append((r, ns, status))
    if output == "json":
        if not many and len(results) == 1:
            payload: Any = results[0][2].model_dump(mode="json")
        else:
            payload = [
                {"name": r.metadata.name, "namespace": ns, "drift": s.model_dump(mode="json")}
                for r, ns, s in results
            ]
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        for index, (r, ns, status) in enumerate(results):
            if many:
                click.echo(("\n" if index else "") + f"== HubSettings {ns}/{r.metadata.name}")
            click.echo(render_table(status))
    if failed:
        return ExitCode.ERROR
    return ExitCode.DRIFT if any(s.items or s.truncated for _, _, s in results) else ExitCode.OK
