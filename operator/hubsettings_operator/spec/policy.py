"""Per-section ownership policy: which conflict mode applies to a section. Pure.

`spec.policy.conflicts` is the CR-wide mode (Enforce or Report); `spec.policy.sections.<section>.conflicts`
overrides it for one section and may also be Observe: never write the section, only report how the table
differs from the spec. Observe suits sections that are runtime state changed through the Hub's own UI, such
as `maintenance` (see docs/sections.md and examples/maintenance-observe.yaml).
"""

from __future__ import annotations

from hubsettings_operator.spec.models import ConflictMode, HubSettingsSpec


def section_policy(spec: HubSettingsSpec, section: str) -> ConflictMode:
    """The conflict mode of one section (a section name, or an extraSettings key, in the scion profile)."""
    override = spec.policy.sections.get(section)
    return override.conflicts if override is not None else spec.policy.conflicts


def observed_sections(spec: HubSettingsSpec) -> list[str]:
    """Sections the operator must never write (Observe), sorted."""
    return sorted(name for name, p in spec.policy.sections.items() if p.conflicts is ConflictMode.OBSERVE)
