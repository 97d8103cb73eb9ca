"""`hubsettings import --dsn-file`: read the live settings table once (no lock, no write), print the manifest.

The manifest goes to stdout, everything a human must read before applying it (rows owned by another
HubSettings, sections imported under Observe, rows left out) to stderr.
"""

from __future__ import annotations

import asyncio

import click
import yaml

from hubsettings_operator.cli.app import read_dsn
from hubsettings_operator.errors import HubSettingsError
from hubsettings_operator.redact import scrub
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.adoption import Adoption, ImportOptions, import_rows
from hubsettings_operator.table.store import SettingsStore, Target


async def _read(dsn: str, target: Target, options: ImportOptions) -> Adoption:
    store = SettingsStore(dsn)
    try:
        profile, rows = await store.read(target)
    finally:
        await store.close()
    return import_rows(rows, profile, options)


def import_table(
    dsn_file: str, table: str, profile: Profile, observe: bool, name: str, namespace: str, secret_name: str
) -> None:
    dsn = read_dsn(None, dsn_file)
    options = ImportOptions(
        name=name, namespace=namespace, secret_name=secret_name, table=table, observe=observe
    )
    try:
        adoption = asyncio.run(_read(dsn, Target(table=table, profile=profile), options))
    except (HubSettingsError, ValueError) as exc:
        raise click.ClickException(scrub(str(exc))) from None
    for key, owner in sorted(adoption.owned_by_other.items()):
        click.echo(f"left out: {key} is owned by {owner.split(':', 1)[-1]} (another HubSettings)", err=True)
    for warning in adoption.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(yaml.safe_dump(adoption.manifest, sort_keys=False), nl=False)
