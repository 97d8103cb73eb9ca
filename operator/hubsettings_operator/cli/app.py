"""The `hubsettings` click group and what its commands share: reading manifests, the DSN, printing reports.

Each command lives in the module of its job (`manifests`, `database`, `drift`, `run`) and registers itself on
`main` when `hubsettings_operator.cli` imports it. Exit codes are `cli/exitcodes.ExitCode`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from hubsettings_operator.cli.exitcodes import ExitCode
from hubsettings_operator.redact import install_log_scrubber, register_dsn
from hubsettings_operator.spec.manifests import validate_paths
from hubsettings_operator.spec.models import HubSettings
from hubsettings_operator.spec.validation import Report

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="hubsettings-operator")
def main() -> None:
    """Declarative settings for the Scion Hub: the HubSettings operator and its tools.

    \b
    Exit codes: 0 success / no changes, 1 error, 2 plan: changes, 3 drift, 4 rows owned by another
    HubSettings (not written), 5 every manifest suspended (nothing applied).

    \b
    Examples:
      hubsettings validate -f examples/*.yaml
      hubsettings plan -f hub.yaml --dsn-file /run/secrets/dsn
      hubsettings run --namespace scion
    """
    install_log_scrubber()


def print_reports(reports: list[Report], output: str, skipped: int) -> None:
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


def one_resource(files: tuple[str, ...]) -> list[HubSettings]:
    """Every HubSettings of the files, validated; exits with ERROR (printing every error) if any is invalid."""
    reports, _ = validate_paths(files)
    bad = [r for r in reports if not r.ok]
    if bad or not reports:
        print_reports(bad or reports, "text", 0)
        if not reports:
            click.echo("no HubSettings documents found", err=True)
        sys.exit(ExitCode.ERROR)
    return [r.resource for r in reports if r.resource is not None]


def read_dsn(dsn: str | None, dsn_file: str | None) -> str:
    """The DSN from --dsn-file, --dsn or HUBSETTINGS_DSN, registered with the log scrubber before any use."""
    if dsn_file:
        value = Path(dsn_file).read_text(encoding="utf-8").strip()
    else:
        value = dsn or os.environ.get("HUBSETTINGS_DSN", "")
    if not value:
        raise click.UsageError("give the database with --dsn, --dsn-file or HUBSETTINGS_DSN")
    register_dsn(value)
    return value
