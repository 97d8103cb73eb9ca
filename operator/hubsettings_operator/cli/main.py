"""The `hubsettings` command line: validate, crd, docs, import, plan, apply, watch, drift, run.

Exit codes: 0 success / no changes; 1 invalid input or error; 2 `plan` found changes; 3 `drift` found drift.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml

from hubsettings_operator.errors import HubSettingsError
from hubsettings_operator.redact import install_log_scrubber, register_dsn, scrub
from hubsettings_operator.runtime.config import DEFAULTS as _D
from hubsettings_operator.runtime.config import OperatorConfig
from hubsettings_operator.spec import crd as crd_module
from hubsettings_operator.spec.manifests import validate_paths
from hubsettings_operator.spec.models import HubSettings, Profile
from hubsettings_operator.spec.validation import Report
from hubsettings_operator.table.plan import ConflictPolicy, owner_marker

EXIT_INVALID = 1
EXIT_CHANGES = 2
EXIT_DRIFT = 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="hubsettings-operator")
def main() -> None:
    """Declarative settings for the Scion Hub: the HubSettings operator and its tools.

    \b
    Examples:
      hubsettings validate -f examples/*.yaml
      hubsettings plan -f hub.yaml --dsn-file /run/secrets/dsn
      hubsettings run --namespace scion
    """
    install_log_scrubber()


# ---- validate -----------------------------------------------------------------------------------------


def _print_reports(reports: list[Report], output: str, skipped: int) -> None:
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "valid": all(r.ok for r in reports),
                    "documents": [
                        {
                            "source": r.source,
                            "name": r.name,
                            "namespace": r.namespace,
                            "valid": r.ok,
                            "errors": [e.as_dict() for e in r.errors],
                        }
                        for r in reports
                    ],
                    "skipped": skipped,
                },
                indent=2,
            )
        )
        return
    for r in reports:
        label = f"{r.source}" + (f" ({r.namespace or 'default'}/{r.name})" if r.name else "")
        if r.ok:
            click.echo(f"ok      {label}")
        else:
            click.echo(f"INVALID {label}")
            for err in r.errors:
                click.echo(f"  - {err}")
    if skipped:
        click.echo(f"({skipped} document(s) of other kinds skipped)", err=True)


@main.command(context_settings=CONTEXT)
@click.option(
    "-f", "--filename", "files", multiple=True, required=True, help="Manifest file(s); '-' is stdin."
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("more_files", nargs=-1, type=click.Path())
def validate(files: tuple[str, ...], output: str, more_files: tuple[str, ...]) -> None:
    """Validate HubSettings manifests offline (multi-document YAML).

    Exits 0 when every HubSettings document is valid, 1 otherwise, listing every error with its field path.

    \b
    Examples:
      hubsettings validate -f examples/minimal.yaml -f examples/full.yaml
      kustomize build overlays/prod | hubsettings validate -f - -o json
    """
    # `-f examples/*.yaml` expands to one -f and more paths: take them all.
    reports, skipped = validate_paths((*files, *more_files))
    if not reports:
        click.echo("no HubSettings documents found", err=True)
        sys.exit(EXIT_INVALID)
    _print_reports(reports, output, skipped)
    sys.exit(0 if all(r.ok for r in reports) else EXIT_INVALID)


# ---- crd / docs ---------------------------------------------------------------------------------------


@main.command(context_settings=CONTEXT)
def crd() -> None:
    """Print the HubSettings CustomResourceDefinition (generated from the models and the catalog).

    \b
    Example:
      hubsettings crd | kubectl apply --server-side -f -
    """
    click.echo(crd_module.render(), nl=False)


@main.command(context_settings=CONTEXT)
def docs() -> None:
    """Print the CRD field and settings catalog reference (docs/crd-reference.md).

    \b
    Example:
      hubsettings docs > docs/crd-reference.md
    """
    from hubsettings_operator.spec.reference import render

    click.echo(render(), nl=False)


# ---- import -------------------------------------------------------------------------------------------


@main.command("import", context_settings=CONTEXT)
@click.option("--settings-yaml", "settings_yaml", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="metadata.name of the HubSettings.")
@click.option("--namespace", default="default", show_default=True, help="metadata.namespace.")
@click.option("--secret-name", default="hub-db", show_default=True, help="Secret holding the DSN (key url).")
def import_(settings_yaml: str, name: str, namespace: str, secret_name: str) -> None:
    """Turn a Hub settings.yaml into a HubSettings manifest on stdout.

    Layer 1 keys go under spec.settings by section, Layer 0 keys under spec.bootstrap.expected. Secrets
    are dropped with a warning on stderr.

    \b
    Example:
      hubsettings import --settings-yaml ~/.scion/settings.yaml --name hub --namespace scion > hub.yaml
    """
    from hubsettings_operator.spec.importer import import_settings_yaml

    doc = yaml.safe_load(Path(settings_yaml).read_text(encoding="utf-8")) or {}
    try:
        result = import_settings_yaml(doc, name, namespace, secret_name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(yaml.safe_dump(result.manifest, sort_keys=False), nl=False)


# ---- plan / apply -------------------------------------------------------------------------------------


def _dsn(dsn: str | None, dsn_file: str | None) -> str:
    if dsn_file:
        value = Path(dsn_file).read_text(encoding="utf-8").strip()
    else:
        value = dsn or os.environ.get("HUBSETTINGS_DSN", "")
    if not value:
        raise click.UsageError("give the database with --dsn, --dsn-file or HUBSETTINGS_DSN")
    register_dsn(value)
    return value


def _one_resource(files: tuple[str, ...]) -> list[HubSettings]:
    reports, _ = validate_paths(files)
    bad = [r for r in reports if not r.ok]
    if bad or not reports:
        _print_reports(bad or reports, "text", 0)
        if not reports:
            click.echo("no HubSettings documents found", err=True)
        sys.exit(EXIT_INVALID)
    return [r.resource for r in reports if r.resource is not None]


def _db_options(func: Any) -> Any:
    options = [
        click.option("-f", "--filename", "files", multiple=True, required=True, help="Manifest file(s)."),
        click.option("--dsn", default=None, help="PostgreSQL DSN (prefer --dsn-file or HUBSETTINGS_DSN)."),
        click.option("--dsn-file", default=None, type=click.Path(exists=True, dir_okay=False)),
        click.option("--profile", type=click.Choice([p.value for p in Profile]), default=None),
        click.option("--table", default=None, help="Override spec.database.table."),
        click.option("--channel", default=None, help="Override spec.database.channel."),
        click.option(
            "--create-table/--no-create-table", default=None, help="Override spec.database.createTable."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


async def _apply_all(
    resources: list[HubSettings],
    dsn: str,
    overrides: dict[str, Any],
    dry_run: bool,
) -> list[tuple[HubSettings, Any]]:
    from hubsettings_operator.table.layout import desired_rows
    from hubsettings_operator.table.store import PoolRegistry, SettingsStore, StoreOptions, Target

    # A one-shot command: fail fast when the database is down instead of waiting for the pool.
    registry = PoolRegistry(StoreOptions(pool_timeout=5.0, pool_max_size=2))
    store = SettingsStore(dsn, registry)
    results = []
    try:
        for res in resources:
            db = res.spec.database
            target = Target(
                table=overrides.get("table") or db.table,
                profile=Profile(overrides["profile"]) if overrides.get("profile") else db.profile,
                channel=str(overrides["channel"]) if overrides.get("channel") is not None else db.channel,
                create_table=(
                    overrides["create_table"] if overrides.get("create_table") is not None else db.createTable
                ),
            )
            spec = res.spec
            result = await store.apply(
                target,
                functools.partial(desired_rows, spec),
                owner_marker(res.metadata.namespace, res.metadata.name),
                prune=spec.policy.prune,
                conflicts=ConflictPolicy(spec.policy.conflicts.value),
                dry_run=dry_run,
            )
            results.append((res, result))
    finally:
        await registry.close()
    return results


def _run_db(
    files: tuple[str, ...], dsn: str | None, dsn_file: str | None, dry_run: bool, **overrides: Any
) -> int:
    from hubsettings_operator.table.diff import render

    resources = _one_resource(files)
    value = _dsn(dsn, dsn_file)
    try:
        results = asyncio.run(_apply_all(resources, value, overrides, dry_run))
    except HubSettingsError as exc:
        click.echo(f"error ({exc.reason.value}): {scrub(exc.message)}", err=True)
        return EXIT_INVALID
    changed = False
    for res, result in results:
        click.echo(
            f"# {res.metadata.namespace}/{res.metadata.name}: table {overrides.get('table') or res.spec.database.table}"
            f", profile {result.profile.value}, channel {result.channel}"
        )
        if res.spec.suspend:
            click.echo("# note: spec.suspend is true; the operator would not write this")
        click.echo(render(result.plan), nl=False)
        if result.profile is Profile.SCION:
            from hubsettings_operator.spec.catalog import unset_fields

            for section, doc in sorted(result.desired.items()):
                missing = unset_fields(section, doc) if isinstance(doc, dict) else []
                if missing:
                    click.echo(
                        f"  note: {section}: {', '.join(missing)} left unset (the Hub's zero value applies)"
                    )
        if not dry_run and result.notifications:
            click.echo(
                f"Applied: {result.rows_written} row(s) written, {len(result.notifications)} NOTIFY sent."
            )
        changed = changed or bool(result.plan.value_changes or result.plan.writes)
    if dry_run:
        return EXIT_CHANGES if changed else 0
    return 0


@main.command(context_settings=CONTEXT)
@_db_options
def plan(files: tuple[str, ...], dsn: str | None, dsn_file: str | None, **overrides: Any) -> None:
    """Show what apply would change, without writing (exit 0: no changes, 2: changes, 1: error).

    \b
    Examples:
      HUBSETTINGS_DSN=postgres://... hubsettings plan -f hub.yaml
      hubsettings plan -f hub.yaml --dsn-file /run/secrets/dsn --profile scion
    """
    sys.exit(_run_db(files, dsn, dsn_file, True, **overrides))


@main.command(context_settings=CONTEXT)
@_db_options
def apply(files: tuple[str, ...], dsn: str | None, dsn_file: str | None, **overrides: Any) -> None:
    """Apply the manifests' Layer 1 settings to the database, without Kubernetes (CI, non-Kubernetes hosts).

    One transaction per HubSettings, NOTIFY only when something changed. Layer 0 is never written.

    \b
    Example:
      hubsettings apply -f hub.yaml --dsn-file /run/secrets/dsn
    """
    sys.exit(_run_db(files, dsn, dsn_file, False, **overrides))


# ---- watch --------------------------------------------------------------------------------------------


@main.command(context_settings=CONTEXT)
@click.option("--dsn", default=None, help="PostgreSQL DSN (prefer --dsn-file or HUBSETTINGS_DSN).")
@click.option("--dsn-file", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--table", default="hub_settings", show_default=True)
@click.option("--profile", type=click.Choice([p.value for p in Profile]), default="auto", show_default=True)
@click.option("--channel", default="", help="Default: the profile's channel.")
@click.option("--poll-interval", default=30.0, show_default=True, help="Fallback poll interval (seconds).")
@click.option("--count", default=0, help="Exit after this many changes (0: run until interrupted).")
def watch(
    dsn: str | None,
    dsn_file: str | None,
    table: str,
    profile: str,
    channel: str,
    poll_interval: float,
    count: int,
) -> None:
    """Print each settings change as a Hub replica sees it (key, old -> new, latency after NOTIFY).

    \b
    Example:
      hubsettings watch --dsn-file /run/secrets/dsn
    """
    from hubsettings_operator.table.diff import show
    from hubsettings_operator.table.listener import SettingsCache
    from hubsettings_operator.table.store import SettingsStore, Target

    value = _dsn(dsn, dsn_file)

    async def run() -> None:
        concrete = Profile(profile)
        if concrete is Profile.AUTO:
            store = SettingsStore(value)
            try:
                concrete, _ = await store.read(Target(table=table))
            finally:
                await store.close()
        seen = 0
        done = asyncio.Event()
        cache: SettingsCache

        def on_change(key: str, old: Any, new: Any) -> None:
            nonlocal seen
            lat = ""
            if cache.last_notify_at is not None:
                lat = f"  ({(time.monotonic() - cache.last_notify_at) * 1000:.1f} ms after NOTIFY)"
            click.echo(f"{time.strftime('%H:%M:%S')} {key}: {show(key, old)} -> {show(key, new)}{lat}")
            seen += 1
            if count and seen >= count:
                done.set()

        cache = SettingsCache(
            value, table=table, profile=concrete, channel=channel, poll_interval=poll_interval
        )
        await cache.start()
        cache.on_change = on_change
        click.echo(f"watching {table} ({concrete.value}, channel {cache.channel}); Ctrl-C to stop", err=True)
        try:
            await done.wait()
        finally:
            await cache.stop()

    try:
        asyncio.run(run())
    except HubSettingsError as exc:
        click.echo(f"error ({exc.reason.value}): {exc.message}", err=True)
        sys.exit(EXIT_INVALID)
    except KeyboardInterrupt:
        pass


# ---- drift / run (need Kubernetes) --------------------------------------------------------------------


@main.command(context_settings=CONTEXT)
@click.option("-f", "--filename", "files", multiple=True, required=True, help="Manifest file(s).")
@click.option("--namespace", default=None, help="Namespace of the pods (default: the manifest's).")
@click.option("--kubeconfig", default=None, help="Default: $KUBECONFIG or ~/.kube/config.")
@click.option("--profile", type=click.Choice(["scion", "proposal"]), default="scion", show_default=True)
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
    from hubsettings_operator.drift.sources_sync import run_drift

    resources = _one_resource(files)
    sys.exit(run_drift(resources, namespace, kubeconfig, Profile(profile), output))


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
@click.option("--health-seconds", default=_D.health_seconds, show_default=True, help="Database probe period.")
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
    help="Label selector of the pods the operator indexes for drift (it never watches other pods).",
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
        config.pod_labels  # noqa: B018 - validate --pod-selector before starting
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(run_operator(config))


if __name__ == "__main__":  # pragma: no cover
    main()
