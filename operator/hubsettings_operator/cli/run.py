"""`hubsettings run`: the operator process (kopf) watching HubSettings in the given namespaces."""

from __future__ import annotations

import sys

import click

from hubsettings_operator.cli.app import CONTEXT, main


@main.command(context_settings=CONTEXT)
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Namespace to watch (repeatable).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace (cluster-wide RBAC).")
@click.option("--health-port", default=8080, show_default=True, help="Liveness endpoint port (/healthz).")
@click.option("--metrics-port", default=9090, show_default=True, help="Prometheus metrics port (/metrics).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--resync-seconds", default=300.0, show_default=True, help="Periodic reconcile of every CR.")
@click.option("--drift-seconds", default=60.0, show_default=True, help="Layer 0 drift check period.")
@click.option("--health-seconds", default=10.0, show_default=True, help="Database probe period.")
@click.option("--max-backoff-seconds", default=60.0, show_default=True, help="Cap of the retry backoff.")
@click.option(
    "--pod-selector",
    default="app.kubernetes.io/name=scion-hub",
    show_default=True,
    help="Label selector of the Hub pods the operator watches, sent to the API server (any syntax, e.g. 'app in (hub), tier!=agent'): other pods never reach it.",
)
@click.option("--peering", default="hubsettings-operator", show_default=True, help="kopf peering name (HA).")
@click.option("--standalone", is_flag=True, help="No peering (a single replica; development).")
@click.option("--priority", default=None, type=int, help="Peering priority (default: random, for HA).")
def run(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    health_port: int,
    metrics_port: int,
    log_format: str,
    log_level: str,
    resync_seconds: float,
    drift_seconds: float,
    health_seconds: float,
    max_backoff_seconds: float,
    pod_selector: str,
    peering: str,
    standalone: bool,
    priority: int | None,
) -> None:
    """Run the operator.

    \b
    Examples:
      hubsettings run --namespace scion
      hubsettings run --all-namespaces --log-format json
    """
    from hubsettings_operator.runtime.runner import OperatorConfig, run_operator

    if not namespaces and not all_namespaces:
        raise click.UsageError("give --namespace (repeatable) or --all-namespaces")
    config = OperatorConfig(
        namespaces=list(namespaces),
        all_namespaces=all_namespaces,
        health_port=health_port,
        metrics_port=metrics_port,
        log_format=log_format,
        log_level=log_level,
        resync_seconds=resync_seconds,
        drift_seconds=drift_seconds,
        health_seconds=health_seconds,
        max_backoff_seconds=max_backoff_seconds,
        pod_selector=pod_selector,
        peering=None if standalone else peering,
        priority=priority,
    )
    sys.exit(run_operator(config))
