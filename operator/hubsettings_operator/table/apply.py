"""The one path from a HubSettings spec to the table: spec -> `Target` -> store apply.

The operator's reconcile, `hubsettings plan` / `apply` and the tests all call `apply_spec`, so the rows a
spec means, its policies and the target table are derived in one place.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from hubsettings_operator.spec.models import ConflictMode, HubSettingsSpec, Profile
from hubsettings_operator.spec.policy import section_policy
from hubsettings_operator.table.layouts import desired_rows, layout_for
from hubsettings_operator.table.plan import ModeOf, WrittenRecord
from hubsettings_operator.table.store import ApplyResult, DesiredFn, ModesFn, SettingsStore, Target
from hubsettings_operator.table.wanted import Wanted, WantedCache


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


def section_modes(spec: HubSettingsSpec, default: ConflictMode | None = None) -> ModesFn | None:
    """Each row key's conflict mode under a concrete profile: its section's `spec.policy.sections` entry, else
    `default` (`spec.policy.conflicts`). `None` when no section has its own policy (every row: `default`).

    One `mode_of` per profile, each remembering its answers: the spec is never mutated (validate_spec's
    instances are read-only), so a key's mode never changes, and the store can tell an unchanged intent by
    the identity of these functions (table/rowcache.py)."""
    if not spec.policy.sections:
        return None
    fallback = default or spec.policy.conflicts
    per_profile: dict[Profile, ModeOf] = {}

    def modes_for(profile: Profile) -> ModeOf:
        found = per_profile.get(profile)
        if found is not None:
            return found
        layout = layout_for(profile)
        known: dict[str, ConflictMode] = {}

        def mode_of(key: str) -> ConflictMode:
            mode = known.get(key)
            if mode is None:
                # An extraSettings key is its own section (policy may name it); otherwise ask the layout.
                section = key if key in spec.extraSettings else layout.section_of(key)
                mode = section_policy(spec, section) if section in spec.policy.sections else fallback
                if len(known) < MODES_REMEMBERED:
                    known[key] = mode
            return mode

        per_profile[profile] = mode_of
        return mode_of

    return modes_for


# Row keys whose mode one `mode_of` remembers (a table's rows: a few dozen; bounded against a huge table).
MODES_REMEMBERED = 4096


def _cached_wanted(cache: WantedCache, spec: HubSettingsSpec, profile: Profile) -> Wanted:
    return cache.get(spec, profile, functools.partial(desired_rows, spec, profile))


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
    wanted: WantedCache | None = None,
) -> ApplyResult:
    """Make the table hold the spec's rows for `owner` (an `owner_marker`), atomically.

    `policy` defaults to `spec.policy.conflicts`; a section listed in `spec.policy.sections` follows its own
    mode (Observe: never written, only compared). Pruning follows `spec.policy.prune`, `target` defaults to
    `target_for(spec)`. `last_written` is the previous result's `written` (kept in status by the operator):
    with it, out-of-band edits that kept our owner marker are conflicts and revisions never go backwards.
    `wanted` remembers the canonical texts of the spec's rows across applies (the operator's no-op resync);
    only for specs never mutated afterwards (validate_spec's shared instances).
    """
    desired_for: DesiredFn = functools.partial(desired_rows, spec)
    modes_for: ModesFn | None
    if wanted is not None:
        desired_for = functools.partial(_cached_wanted, wanted, spec)
        modes_for = wanted.modes(spec, policy, functools.partial(section_modes, spec, policy))
    else:
        modes_for = section_modes(spec, policy)

    return await store.apply(
        target or target_for(spec),
        desired_for,
        owner,
        prune=spec.policy.prune,
        conflicts=policy or spec.policy.conflicts,
        dry_run=dry_run,
        released_owners=released_owners,
        last_written=last_written,
        modes_for=modes_for,
    )
