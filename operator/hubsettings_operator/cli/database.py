"""Commands on the Hub's settings table: plan, apply, watch.

`plan` and `apply` run the same planner as the operator (`table/apply.apply_spec`), one manifest at a time;
each manifest is its own transaction, so the last lines say, per manifest, what was committed and what not.
They never report success they did not achieve: rows owned by another HubSettings, suspended manifests and
failures each have their exit code (`cli/exitcodes.py`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import click

from hubsettings_operator.cli.app import CONTEXT, main, one_resource, read_dsn
from hubsettings_operator.cli.exitcodes import ExitCode, worst
from hubsettings_operator.errors import HubSettingsError
from hubsettings_operator.redact import scrub
from hubsettings_operator.spec.models import HubSettings, Profile
from hubsettings_operator.spec.validation import unvalidated_sections
from hubsettings_operator.spec.versions import requirements
from hubsettings_operator.table.plan import Action, owner_marker
from hubsettings_operator.table.store import ApplyResult


@dataclass
class Outcome:
    """What happened to one manifest: planned/applied (`result`), failed (`error`), or skipped (suspended)."""

    resource: HubSettings
    result: ApplyResult | None = None
    error: HubSettingsError | None = None
    suspended: bool = False

    @property
    def label(self) -> str:
        return f"{self.resource.metadata.namespace}/{self.resource.metadata.name}"

    def code(self, dry_run: bool) -> ExitCode:
        if self.error is not None:
            return ExitCode.ERROR
        if self.suspended or self.result is None:
            return ExitCode.OK  # the run's code says SUSPENDED when nothing else was applied
        plan = self.result.plan
        if plan.owned_by_other:
            return ExitCode.NOT_OWNED
        if dry_run and (plan.value_changes or plan.writes):
            return ExitCode.CHANGES
        return ExitCode.OK


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
) -> list[Outcome]:
    from hubsettings_operator.table.apply import apply_spec, target_for
    from hubsettings_operator.table.store import PoolRegistry, SettingsStore, StoreOptions

    # A one-shot command: fail fast when the database is down instead of waiting for a connection.
    registry = PoolRegistry(StoreOptions(pool_timeout=5.0, pool_max_size=2), max_connections=2)
    store = SettingsStore(dsn, registry, owner="cli")
    outcomes: list[Outcome] = []
    try:
        for res in resources:
            outcome = Outcome(res, suspended=res.spec.suspend)
            outcomes.append(outcome)
            if outcome.suspended and not dry_run:
                continue  # the operator would not write it either
            try:
                target = target_for(
                    res.spec,
                    table=overrides.get("table"),
                    profile=Profile(overrides["profile"]) if overrides.get("profile") else None,
                    channel=str(overrides["channel"]) if overrides.get("channel") is not None else None,
                    create_table=overrides.get("create_table"),
                )
                owner = owner_marker(res.metadata.namespace, res.metadata.name)
                outcome.result = await apply_spec(store, res.spec, owner, dry_run=dry_run, target=target)
            except HubSettingsError as exc:
                # Each manifest is its own transaction: this one rolled back, the others stand.
                outcome.error = exc
    finally:
        await registry.close()
    return outcomes


def _print_plan(outcome: Outcome, table: str, dry_run: bool) -> None:
    from hubsettings_operator.table.diff import render

    res, result = outcome.resource, outcome.result
    assert result is not None
    click.echo(f"# {outcome.label}: table {table}, profile {result.profile.value}, channel {result.channel}")
    if outcome.suspended:
        click.echo(
            "# suspended (spec.suspend: true): apply skips this manifest; below is what it would do once resumed"
        )
    click.echo(render(result.plan), nl=False)
    for note in result.notes:
        click.echo(f"  note: {note}")
    unvalidated = unvalidated_sections(res.spec)
    if unvalidated:
        click.echo(
            f"  unvalidated: {', '.join(unvalidated)} (spec.extraSettings: written as given, not checked "
            "against a section schema)"
        )
    needs = requirements(res.spec.settings)
    if needs:
        declared = res.spec.hubVersion
        why = (
            f"spec.hubVersion is {declared}"
            if declared
            else "spec.hubVersion is unset: an older Hub ignores these fields"
        )
        click.echo(f"  hub versions ({why}):")
        for need in needs:
            click.echo(f"    {need}")


def _summary(outcome: Outcome, dry_run: bool) -> str:
    """One line per manifest: what was committed, what was not, and why."""
    if outcome.error is not None:
        what = "nothing planned" if dry_run else "nothing of it written (rolled back)"
        return (
            f"{outcome.label}: FAILED ({outcome.error.reason.value}): {what}; {scrub(outcome.error.message)}"
        )
    if outcome.suspended and not dry_run:
        return f"{outcome.label}: skipped: spec.suspend is true (nothing written; the operator skips it too)"
    result = outcome.result
    assert result is not None
    plan = result.plan
    parts: list[str] = []
    if dry_run:
        n = len(plan.writes)
        parts.append(f"{n} row(s) to write" if n else "nothing to write")
        if outcome.suspended:
            parts.append("suspended: apply would skip it")
    elif plan.writes:
        parts.append(
            f"committed: {result.rows_written} row(s) written, {len(result.notifications)} NOTIFY sent"
        )
    else:
        parts.append("committed: nothing to write, no NOTIFY")
    if plan.owned_by_other:
        owners = ", ".join(sorted({str(c.current_by) for c in plan.owned_by_other}))
        keys = ", ".join(c.key for c in plan.owned_by_other)
        parts.append(f"NOT written: {keys} (owned by {owners})")
    left = [c.key for c in plan.by_action(Action.CONFLICT)]
    if left:
        parts.append(f"left as found (policy Report): {', '.join(left)}")
    if plan.observed_drift:
        parts.append(
            f"observed drift (policy Observe, not written): {', '.join(c.key for c in plan.observed_drift)}"
        )
    return f"{outcome.label}: " + "; ".join(parts)


def _run_db(
    files: tuple[str, ...], dsn: str | None, dsn_file: str | None, dry_run: bool, **overrides: Any
) -> ExitCode:
    resources = one_resource(files)
    value = read_dsn(dsn, dsn_file)
    outcomes = asyncio.run(_apply_all(resources, value, overrides, dry_run))
    for outcome in outcomes:
        if outcome.result is not None:
            _print_plan(outcome, overrides.get("table") or outcome.resource.spec.database.table, dry_run)
        if outcome.error is not None:
            exc = outcome.error
            click.echo(f"error ({exc.reason.value}) in {outcome.label}: {scrub(exc.message)}", err=True)
    click.echo("")
    click.echo("Plan summary:" if dry_run else "Apply summary (each manifest is its own transaction):")
    for outcome in outcomes:
        click.echo(f"  {_summary(outcome, dry_run)}")
    if all(o.suspended for o in outcomes):
        return ExitCode.SUSPENDED
    return worst([o.code(dry_run) for o in outcomes if not o.suspended])


@main.command(context_settings=CONTEXT)
@_db_options
def plan(files: tuple[str, ...], dsn: str | None, dsn_file: str | None, **overrides: Any) -> None:
    """Show what apply would change, without writing.

    Exit 0: no changes; 2: changes; 4: rows owned by another HubSettings (apply would not write them);
    5: every manifest suspended; 1: error. Also lists unvalidated extraSettings and which fields need which
    Hub version.

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

    One transaction per HubSettings, NOTIFY only when something changed. Layer 0 is never written. A
    suspended manifest (spec.suspend: true) is skipped. The last lines say, per manifest, what was committed.
    Exit 0: applied; 1: a manifest failed (the others may have been committed: see the summary); 4: rows
    owned by another HubSettings were not written; 5: every manifest suspended, nothing applied.

    \b
    Example:
      hubsettings apply -f hub.yaml --dsn-file /run/secrets/dsn
    """
    sys.exit(_run_db(files, dsn, dsn_file, False, **overrides))


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

    value = read_dsn(dsn, dsn_file)

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
        sys.exit(ExitCode.ERROR)
    except KeyboardInterrupt:
        pass
