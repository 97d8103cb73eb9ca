"""The one path from a HubSettings spec to the table: spec -> `Target` -> store apply.

The operator's reconcile, `hubsettings plan` / `apply` and the tests all call `apply_spec`, so the rows a
spec means, its policies and the target table are derived in one place.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from hubsettings_operator.spec.models import ConflictMode, HubSettingsSpec, Profile
from hubsettings_operator.table.layout import desired_rows
from hubsettings_operator.table.plan import WrittenRecord
from hubsettings_operator.table.store import ApplyResult, SettingsStore, Target


def target_for(
    spec: HubSettingsSpec,
    *,
    table: str | None = None,
    profile: Profile | None = None,
    channel: str | None = None,
    create_table: bool | None = None,
) -> Target:
    """Where the spec's rows go: `spec.database`, each field overridable (the CLI's flags)."""
    db = spec.database
    return Target(
        table=table or db.table,
        profile=profile or db.profile,
        channel=channel if channel is not None else db.channel,
        create_table=create_table if create_table is not None else db.createTable,
    )


async def apply_spec(
    store: SettingsStore,
    spec: HubSettingsSpec,
    owner: str,
    *,
    policy: ConflictMode | None = None,
    last_written: Mapping[str, WrittenRecord] | None = None,
    dry_run: bool = False,
    released_owners: frozenset[str] = frozenset(),
    target: Target | None = None,
) -> ApplyResult:
    """Make the table hold the spec's rows for `owner` (an `owner_marker`), atomically.

    `policy` defaults to `spec.policy.conflicts`, pruning follows `spec.policy.prune`, `target` defaults to
    `target_for(spec)`. `last_written` is the previous result's `written` (kept in status by the operator):
    with it, out-of-band edits that kept our owner marker are conflicts and revisions never go backwards.
    """
    return await store.apply(
        target or target_for(spec),
        functools.partial(desired_rows, spec),
        owner,
        prune=spec.policy.prune,
        conflicts=policy or spec.policy.conflicts,
        dry_run=dry_run,
        released_owners=released_owners,
        last_written=last_written,
    )
