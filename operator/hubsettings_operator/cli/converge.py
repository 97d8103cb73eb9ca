"""`hubsettings converge`: has every Hub replica loaded what the HubSettings wrote? The operator's convergence
round (the probe `convergence/probe.py` + the pure `convergence/decide.py`, without the operator's runtime), run
once or until done from a workstation or a CI job, with the user's kubeconfig (`cli/kube.py`).

It lists the Hub pods of the manifest's `spec.bootstrap.podSelector` (default app.kubernetes.io/name=scion-hub),
reads the revisions this HubSettings owns in the table (DSN from `spec.database.secretRef`, or --dsn-file), the
listener connections in pg_stat_activity, and asks each pod by its IP for the revisions it has loaded (token
from `spec.convergence.adminTokenSecretRef`). Pod IPs must be reachable from where it runs (e.g. a Job in the
cluster, or a CI runner on the pod network).

Exit codes (`cli/exitcodes.ExitCode`): 0 every replica has loaded the written revisions; 1 not (yet) when the time is up, naming the pods
behind, or an error; with --wait it keeps checking until --timeout.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path

import click

from hubsettings_operator import selectors
from hubsettings_operator.cli.exitcodes import ExitCode
from hubsettings_operator.cli.kube import Cluster, ClusterReader, dsn_from_secret
from hubsettings_operator.convergence import decide as convergence
from hubsettings_operator.convergence.decide import Tracking
from hubsettings_operator.errors import SecretNotFound
from hubsettings_operator.redact import register_dsn, scrub
from hubsettings_operator.spec.manifests import validate_paths
from hubsettings_operator.spec.models import BootstrapSpec, ConvergenceSpec, HubSettings, Profile
from hubsettings_operator.table import layouts
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.store import SettingsStore

ROUND_PAUSE_S = 1.0


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1m30s` -> seconds."""
    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not m or not (m.group(1) or m.group(2)):
        raise click.BadParameter(f"{text!r} is not a duration (e.g. 90s, 2m, 1m30s)")
    return float(m.group(1) or 0) * 60 + float(m.group(2) or 0)


async def _round(
    cluster: Cluster,
    resource: HubSettings,
    namespace: str,
    store: SettingsStore,
    profile: Profile,
    tracking: Tracking,
) -> convergence.Decision:
    # Imported here: the other commands do not need aiohttp.
    from hubsettings_operator.convergence import probe as io

    spec = resource.spec
    conv = spec.convergence or ConvergenceSpec()
    sel = (spec.bootstrap or BootstrapSpec()).podSelector
    query = selectors.to_query(selectors.from_label_selector(sel.matchLabels, sel.matchExpressions))
    pods = io.hub_pods(await cluster.list_pods(namespace, query), spec, namespace)
    token, problem = await io.read_token(cluster, namespace, conv)
    written, probes, channel = await io.observe(
        store, spec, profile, owner_marker(namespace, resource.metadata.name), pods, token, problem
    )
    return convergence.decide(
        written, probes, tracking, now=time.monotonic(), timeout_s=conv.timeoutSeconds, channel=channel
    )


async def _converge(
    cluster: Cluster,
    resource: HubSettings,
    namespace: str,
    dsn_given: str | None,
    profile: Profile,
    wait: bool,
    timeout: float,
) -> convergence.Decision:
    if dsn_given is not None:
        dsn = dsn_given
    else:
        try:
            dsn = await dsn_from_secret(cluster, namespace, resource.spec.database.secretRef)
        except SecretNotFound as exc:
            raise click.ClickException(f"spec.database.secretRef: {exc}; pass --dsn-file") from None
    deadline = time.monotonic() + timeout
    tracking = Tracking()
    store = SettingsStore(dsn)
    try:
        while True:
            decision = await _round(cluster, resource, namespace, store, profile, tracking)
            if decision.converged or not wait or decision.token_rejected or time.monotonic() >= deadline:
                return decision
            await asyncio.sleep(min(ROUND_PAUSE_S, max(0.0, deadline - time.monotonic())))
    finally:
        await store.close()


@click.command("converge", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-f", "--filename", "files", multiple=True, required=True, help="Manifest file (one HubSettings)."
)
@click.option("--namespace", default=None, help="Namespace of the pods (default: the manifest's).")
@click.option("--kubeconfig", default=None, help="Default: $KUBECONFIG or ~/.kube/config.")
@click.option(
    "--dsn-file", default=None, type=click.Path(exists=True, dir_okay=False), help="Default: the Secret."
)
@click.option("--profile", type=click.Choice(layouts.names()), default="scion", show_default=True)
@click.option("--wait", is_flag=True, help="Check again every second until converged or --timeout.")
@click.option("--timeout", default="90s", show_default=True, help="With --wait: give up after this long.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def converge(
    files: tuple[str, ...],
    namespace: str | None,
    kubeconfig: str | None,
    dsn_file: str | None,
    profile: str,
    wait: bool,
    timeout: str,
    output: str,
) -> None:
    """Check that every Hub replica has loaded the revisions the HubSettings wrote (exit 0), else exit 1."""
    seconds = parse_duration(timeout)
    reports, _skipped = validate_paths(files)
    if len(reports) != 1 or reports[0].resource is None:
        for report in reports:
            for error in report.errors:
                click.echo(f"{report.source}: {error}", err=True)
        raise click.ClickException("converge needs exactly one valid HubSettings manifest")
    resource = reports[0].resource
    ns = namespace or resource.metadata.namespace
    try:
        dsn = Path(dsn_file).read_text().strip() if dsn_file else None
        if dsn is not None:
            register_dsn(dsn)
        cluster = ClusterReader(kubeconfig)
        decision = asyncio.run(_converge(cluster, resource, ns, dsn, Profile(profile), wait, seconds))
    except click.ClickException:
        raise
    except Exception as exc:  # never a secret in the message
        raise click.ClickException(scrub(f"{type(exc).__name__}: {exc}")) from None
    if output == "json":
        click.echo(json.dumps(decision.status.model_dump(mode="json"), indent=2))
    else:
        for r in decision.status.replicas:
            state = (
                "loaded"
                if r.loaded and not r.behind
                else ("behind: " + ", ".join(r.behind) if r.behind else "unknown")
            )
            listening = {True: "listening", False: "NO LISTENER", None: "listener ?"}[r.listening]
            if r.unknownSections:  # its Hub version never loads them
                state += f"; unknown to scion {r.version or '?'}: {', '.join(r.unknownSections)}"
            click.echo(f"{r.name:30} {listening:12} {state}{'  (' + r.error + ')' if r.error else ''}")
        click.echo(f"{decision.condition.reason.value}: {decision.condition.message}")
    if not decision.converged:
        behind = decision.behind or [r.name for r in decision.status.replicas if r.error]
        click.echo(f"not converged: {', '.join(behind) or 'no Hub pods'}", err=True)
        sys.exit(ExitCode.ERROR)  # "could not do what you asked": the replicas did not all load in time
    sys.exit(ExitCode.OK)
