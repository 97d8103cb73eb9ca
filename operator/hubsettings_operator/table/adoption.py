"""`hubsettings import --dsn-file`: the rows of a live settings table -> a HubSettings manifest (pure, no I/O).

Adopting a running Hub must not change it: the manifest this builds, applied as is, writes no value. So every
imported section is checked by the same code the operator writes with (`TableLayout.desired_rows`): a section
whose typed form would not reproduce its row exactly (the row leaves out fields the operator fills with the
Hub's defaults, say) is imported under policy Observe and named in a warning, never silently changed. Rows
owned by another HubSettings are left out and listed; unknown sections go under `extraSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import API_VERSION, KIND, Profile
from hubsettings_operator.spec.section_registry import REGISTRY
from hubsettings_operator.spec.sections import SECTION_MODELS
from hubsettings_operator.spec.validation import validate_spec_uncached
from hubsettings_operator.table.layout import TableLayout
from hubsettings_operator.table.layouts import layout_for
from hubsettings_operator.table.plan import OWNER_PREFIX, CurrentRow, canonical_json, owner_marker

OBSERVE = {"conflicts": "Observe"}


@dataclass
class Adoption:
    """The manifest, the rows left to their owners, and what a human should read before applying."""

    manifest: dict[str, Any]
    owned_by_other: dict[str, str] = field(default_factory=dict)  # row key -> its owner marker
    warnings: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)  # sections put under Observe by the round-trip check


@dataclass(frozen=True)
class ImportOptions:
    name: str
    namespace: str
    secret_name: str = "hub-db"
    secret_key: str = "url"
    table: str = "hub_settings"
    observe: bool = False  # every section starts under Observe (nothing written until switched to Enforce)


def _proposal_field(layout: TableLayout, key: str) -> tuple[str, str | None] | None:
    """(section, field) of a proposal row key; field None for a row holding a whole section's object;
    None for a key no section owns."""
    section = layout.section_of(key)
    if section not in SECTION_MODELS:
        return None
    if REGISTRY[section].proposal_row == key:
        return section, None
    renamed = {row: name for (sec, name), row in catalog.PROPOSAL_KEYS.items() if sec == section}
    return section, renamed.get(key, key)


def _group(layout: TableLayout, rows: Mapping[str, CurrentRow]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rows -> (spec.settings candidate, spec.extraSettings candidate)."""
    settings: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, row in sorted(rows.items()):
        if layout.profile is Profile.SCION:
            if key in SECTION_MODELS:
                settings[key] = row.value
            else:
                extra[key] = row.value
            continue
        owner = _proposal_field(layout, key)
        if owner is None:
            extra[key] = row.value
        elif owner[1] is None:
            if isinstance(row.value, Mapping):
                settings.setdefault(owner[0], {}).update(row.value)
            else:
                extra[key] = row.value  # not an object: validation below reports it
        else:
            settings.setdefault(owner[0], {})[owner[1]] = row.value
    return settings, extra


def _section_errors(base: dict[str, Any], where: str, name: str, value: Any) -> list[str]:
    _, errors = validate_spec_uncached({**base, where: {name: value}})
    return [str(e) for e in errors]


def import_rows(rows: Mapping[str, CurrentRow], profile: Profile, options: ImportOptions) -> Adoption:
    """Turn the table's rows into a manifest that applies without changing any value."""
    layout = layout_for(profile)
    me = owner_marker(options.namespace, options.name)
    warnings: list[str] = []
    owned_by_other: dict[str, str] = {}
    usable: dict[str, CurrentRow] = {}
    for key, row in rows.items():
        by = row.updated_by or ""
        if key.startswith("_"):
            continue  # the Hub's own bookkeeping rows (_meta): never settings
        if by.startswith(OWNER_PREFIX) and by != me:
            owned_by_other[key] = by
        elif row.parse_error:
            warnings.append(f"{key}: the stored value is not JSON; left out")
        else:
            usable[key] = row
    database: dict[str, Any] = {"secretRef": {"name": options.secret_name, "key": options.secret_key}}
    if options.table != "hub_settings":
        database["table"] = options.table
    database["profile"] = profile.value
    base: dict[str, Any] = {"database": database}
    settings, extra = _group(layout, usable)
    # A section the Hub's schema refuses (a newer Hub's fields...) is left out rather than guessed at.
    for where, found in (("settings", settings), ("extraSettings", extra)):
        for name in sorted(found):
            errors = _section_errors(base, where, name, found[name])
            if errors:
                warnings.append(f"{name}: cannot be imported ({'; '.join(errors)}); left out")
                del found[name]
    sections = sorted({*settings, *extra})
    policy: dict[str, Any] = {"sections": {s: dict(OBSERVE) for s in sections}} if options.observe else {}
    spec: dict[str, Any] = {**base, "settings": settings, "extraSettings": extra, "policy": policy}
    observed = _round_trip(spec, layout, usable, warnings)
    if observed and not options.observe:
        policy.setdefault("sections", {}).update({s: dict(OBSERVE) for s in observed})
    if not spec["extraSettings"]:
        del spec["extraSettings"]
    if not policy:
        del spec["policy"]
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": options.name, "namespace": options.namespace},
        "spec": spec,
    }
    return Adoption(manifest, owned_by_other, warnings, observed)


def _round_trip(
    spec: dict[str, Any], layout: TableLayout, rows: Mapping[str, CurrentRow], warnings: list[str]
) -> list[str]:
    """Sections whose rows the spec would not reproduce exactly (each with a warning saying which rows)."""
    parsed, errors = validate_spec_uncached(spec)
    if parsed is None:
        raise ValueError("the imported spec is invalid: " + "; ".join(str(e) for e in errors))
    desired = layout.desired_rows(parsed)
    differing: dict[str, list[str]] = {}
    for key in sorted(set(desired) | set(rows)):
        section = key if key in parsed.extraSettings else layout.section_of(key)
        if section not in parsed.settings.listed() and section not in parsed.extraSettings:
            continue  # left out above
        row = rows.get(key)
        if row is None or key not in desired or canonical_json(row.value) != canonical_json(desired[key]):
            differing.setdefault(section, []).append(key)
    for section, keys in sorted(differing.items()):
        warnings.append(
            f"{section}: applying it would change row(s) {', '.join(keys)} (fields the row leaves out would be "
            "written with the Hub's defaults): imported under policy Observe; run `hubsettings plan` after "
            "switching it to Enforce to see the change"
        )
    return sorted(differing)
