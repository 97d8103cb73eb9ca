"""Offline commands on manifests: validate, crd, docs, import (no database, no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from hubsettings_operator.cli.app import CONTEXT, main, print_reports
from hubsettings_operator.cli.exitcodes import ExitCode
from hubsettings_operator.spec import crd as crd_module
from hubsettings_operator.spec.manifests import validate_paths
from hubsettings_operator.spec.models import Profile


@main.command(context_settings=CONTEXT)
@click.option(
    "-f", "--filename", "files", multiple=True, required=True, help="Manifest file(s); '-' is stdin."
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--hub-url", default=None, help="Validate against this running Hub's version and section schemas."
)
@click.option(
    "--token-file", default=None, type=click.Path(dir_okay=False), help="File holding a Hub admin token."
)
@click.argument("more_files", nargs=-1, type=click.Path())
def validate(
    files: tuple[str, ...],
    output: str,
    hub_url: str | None,
    token_file: str | None,
    more_files: tuple[str, ...],
) -> None:
    """Validate HubSettings manifests offline (multi-document YAML).

    Exits 0 when every HubSettings document is valid, 1 otherwise, listing every error with its field path.

    \b
    Examples:
      hubsettings validate -f examples/minimal.yaml -f examples/full.yaml
      kustomize build overlays/prod | hubsettings validate -f - -o json
      hubsettings validate -f hub.yaml --hub-url https://hub.example.com --token-file ~/.scion/admin-token

    With --hub-url, sections are checked against the schemas that Hub serves (and its version's rules); without
    a token, or when it cannot be reached, against the generated facts. stderr says which was used.
    """
    hub_version = live = None
    if hub_url:
        from hubsettings_operator.cli.live_hub import fetch

        found = fetch(hub_url, token_file)
        hub_version, live = found.version, found.live
        click.echo(found.note, err=True)
    # `-f examples/*.yaml` expands to one -f and more paths: take them all.
    reports, skipped = validate_paths((*files, *more_files), hub_version=hub_version, live=live)
    if not reports:
        click.echo("no HubSettings documents found", err=True)
        sys.exit(ExitCode.ERROR)
    print_reports(reports, output, skipped)
    sys.exit(ExitCode.OK if all(r.ok for r in reports) else ExitCode.ERROR)


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


@main.command("import", context_settings=CONTEXT)
@click.option("--settings-yaml", "settings_yaml", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--dsn-file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Read the live settings table of this database instead (file holding the DSN).",
)
@click.option("--table", default="hub_settings", show_default=True, help="Settings table (with --dsn-file).")
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=Profile.AUTO.value,
    show_default=True,
    help="Table layout (with --dsn-file).",
)
@click.option("--observe", is_flag=True, help="Start every section under policy Observe (with --dsn-file).")
@click.option("--name", required=True, help="metadata.name of the HubSettings.")
@click.option("--namespace", default="default", show_default=True, help="metadata.namespace.")
@click.option("--secret-name", default="hub-db", show_default=True, help="Secret holding the DSN (key url).")
def import_(
    settings_yaml: str | None,
    dsn_file: str | None,
    table: str,
    profile: str,
    observe: bool,
    name: str,
    namespace: str,
    secret_name: str,
) -> None:
    """Write a HubSettings manifest on stdout from a Hub settings.yaml or from the live settings table.

    --settings-yaml: Layer 1 keys go under spec.settings by section, Layer 0 keys under
    spec.bootstrap.expected; secrets are dropped with a warning on stderr.

    --dsn-file: every row of the table becomes its typed section (unknown sections: spec.extraSettings).
    Rows owned by another HubSettings are left out and listed on stderr. Applying the manifest changes no
    value: a section it would not reproduce exactly starts under policy Observe (warning on stderr).
    --observe starts every section under Observe. See docs/adoption.md.

    \b
    Examples:
      hubsettings import --settings-yaml ~/.scion/settings.yaml --name hub --namespace scion > hub.yaml
      hubsettings import --dsn-file /run/secrets/dsn --observe --name hub --namespace scion > hub.yaml
    """
    if (settings_yaml is None) == (dsn_file is None):
        raise click.UsageError("give exactly one of --settings-yaml and --dsn-file")
    if dsn_file is not None:
        from hubsettings_operator.cli.table_import import import_table

        import_table(dsn_file, table, Profile(profile), observe, name, namespace, secret_name)
        return
    from hubsettings_operator.spec.importer import import_settings_yaml

    assert settings_yaml is not None
    doc = yaml.safe_load(Path(settings_yaml).read_text(encoding="utf-8")) or {}
    try:
        result = import_settings_yaml(doc, name, namespace, secret_name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(yaml.safe_dump(result.manifest, sort_keys=False), nl=False)
