"""`hubsettings run`: the operator process (kopf) watching HubSettings in the given namespaces.

Every default comes from `runtime/config.py` (`OperatorConfig`), the one place defaults are written.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from hubsettings_operator.cli.app import CONTEXT, main
from hubsettings_operator.runtime.config import DEFAULTS as _D
from hubsettings_operator.runtime.config import OperatorConfig


@main.command(context_settings=CONTEXT)
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Namespace to watch (repeatable).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace (cluster-wide RBAC).")
@click.option(
    "--health-port", default=_D.health_port, show_default=True, help="Liveness endpoint port (/healthz)."
)
@click.option(
    "--metrics-port", default=_D.metrics_port, show_default=True, help="Prometheus port (/metrics)."
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=_D.log_format, show_default=True)
@click.option("--log-level", default=_D.log_level, show_default=True)
@click.option(
    "--resync-seconds", default=_D.resync_seconds, show_default=True, help="Periodic reconcile of every CR."
)
@click.option(
    "--drift-seconds", default=_D.drift_seconds, show_default=True, help="Layer 0 drift check period."
)
@click.option(
    "--convergence-seconds",
    default=_D.convergence_seconds,
    show_default=True,
    envvar="HUBSETTINGS_CONVERGENCE_SECONDS",
    help="Convergence check period (1 s while a replica is behind).",
)
@click.option(
    "--trim-seconds",
    default=_D.trim_seconds,
    show_default=True,
    envvar="HUBSETTINGS_TRIM_SECONDS",
    help="How often freed memory is given back to the OS.",
)
@click.option("--health-seconds", default=_D.health_seconds, show_default=True, help="Database probe period.")
@click.option(
    "--secret-seconds",
    default=_D.secret_seconds,
    show_default=True,
    envvar="HUBSETTINGS_SECRET_SECONDS",
    help="How often the health probe re-reads each DSN Secret (a failing probe re-reads it at once).",
)
@click.option(
    "--probe-timeout-seconds",
    default=None,
    type=float,
    help="Longest wait of one database probe (default: half the health period, at most 5 s).",
)
@click.option(
    "--max-backoff-seconds", default=_D.max_backoff_seconds, show_default=True, help="Retry backoff cap."
)
@click.option(
    "--progress-deadline-seconds",
    default=_D.progress_deadline_seconds,
    show_default=True,
    help="Not Ready with a transient error for longer than this: Stalled (per CR: spec.progressDeadlineSeconds).",
)
@click.option(
    "--max-db-connections",
    default=_D.max_db_connections,
    show_default=True,
    help="Upper bound of PostgreSQL connections held open, over all databases.",
)
@click.option(
    "--pod-selector",
    default=_D.pod_selector,
    show_default=True,
    help="Label selector of the Hub pods the operator watches, sent to the API server (any syntax, e.g. "
    "'app in (hub), tier!=agent'): other pods never reach it.",
)
@click.option(
    "--shard-selector",
    default=_D.shard_selector,
    help="Label selector of the HubSettings this operator handles (sharding; sent to the API server). Give each "
    "shard its own --peering name. Default: every HubSettings.",
)
@click.option(
    "--cluster-scanning/--no-cluster-scanning",
    default=_D.cluster_scanning,
    show_default=True,
    help="List namespaces and watch CRDs cluster-wide (off: no cluster-scoped RBAC needed; docs/rbac.md).",
)
@click.option("--peering", default=_D.peering, show_default=True, help="kopf peering name (HA).")
@click.option("--standalone", is_flag=True, help="No peering (a single replica; development).")
@click.option("--priority", default=None, type=int, help="Peering priority (default: random, for HA).")
def run(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    standalone: bool,
    peering: str,
    **options: Any,
) -> None:
    """Run the operator.

    \b
    Examples:
      hubsettings run --namespace scion
      hubsettings run --all-namespaces --log-format json
    """
    # The operator process never needs the official `kubernetes` client (runtime/kube.py uses aiohttp), but kopf
    # imports it when installed (19 MiB RSS, 0.5 s CPU at start): make that import fail before kopf loads.
    if not any(m == "kubernetes" or m.startswith("kubernetes.") for m in sys.modules):
        sys.modules["kubernetes"] = None  # type: ignore[assignment]
    from hubsettings_operator.runtime.runner import run_operator

    if not namespaces and not all_namespaces:
        raise click.UsageError("give --namespace (repeatable) or --all-namespaces")
    try:
        config = OperatorConfig(
            namespaces=tuple(namespaces),
            all_namespaces=all_namespaces,
            peering=None if standalone else peering,
            **options,
        )
        config.pod_watch_selector  # noqa: B018 - refuse a bad --pod-selector before starting
        config.shard_watch_selector  # noqa: B018 - and a bad --shard-selector
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(run_operator(config))
