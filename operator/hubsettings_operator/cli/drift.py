"""`hubsettings drift`: the Hub pods' Layer 0 environment against spec.bootstrap (needs Kubernetes)."""

from __future__ import annotations

import sys

import click

from hubsettings_operator.cli.app import CONTEXT, main
from hubsettings_operator.cli.app import one_resource as _one_resource
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table import layouts


@main.command(context_settings=CONTEXT)
@click.option("-f", "--filename", "files", multiple=True, required=True, help="Manifest file(s).")
@click.option("--namespace", default=None, help="Namespace of the pods (default: the manifest's).")
@click.option("--kubeconfig", default=None, help="Default: $KUBECONFIG or ~/.kube/config.")
@click.option("--profile", type=click.Choice(layouts.names()), default="scion", show_default=True)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def drift(
    files: tuple[str, ...], namespace: str | None, kubeconfig: str | None, profile: str, output: str
) -> None:
    """Check the Hub pods' Layer 0 environment against spec.bootstrap (exit 0 clean, 3 drift).

    Uses your kubeconfig: Secret-backed env vars are resolved only if you may read them, and shown as
    fingerprints.

    \b
    Example:
      hubsettings drift -f hub.yaml --namespace scion
    """
    from hubsettings_operator.cli.drift_report import run_drift

    resources = _one_resource(files)
    sys.exit(run_drift(resources, namespace, kubeconfig, Profile(profile), output))
