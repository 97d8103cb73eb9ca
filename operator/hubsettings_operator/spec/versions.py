"""Which Hub version introduced each Layer 1 section and field, which Hub generation's rules apply to a Hub
version, and which version governs while replicas differ. Pure.

How the versions were found (docs/sections.md says the same): the Hub's tagged releases v0.2.4 to v0.2.21
(the newest tag in the history available to us) were compared with its development source at the commit
recorded in `data/hub_facts.json`. `pkg/config/opsettings/registry.go` first appears in v0.2.4 with 8
sections; `endpoints.hub_name` appears in v0.2.6; everything else (11 sections and the newer fields of the
first 8) is present in the development source only, so it is recorded as `NEXT_RELEASE` (the first release
after v0.2.21; correct it here once that release is tagged). What the newest generation in the facts adds
(gcp_iam, profiling, newer fields) takes that generation's `since` (hack/gen_hub_generations.py). The Hub's
own `x-since` annotations are schema versions ("1"), not Hub versions, so they cannot be used.

A Hub older than a field's version rejects a section document holding it on its write path and, on its read
path, silently drops it; a section it does not know is ignored. So: with `spec.hubVersion`, a section or
field the declared Hub does not know is refused before anything is written; without it, the running Hub's
version (the oldest replica's, `effective_hub_version`) governs when the caller knows it; otherwise newer
fields are written only when set, and `plan` lists what each needs (`requirements`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hubsettings_operator.spec import facts
from hubsettings_operator.spec.section_registry import REGISTRY
from hubsettings_operator.spec.sections import Settings

BASE_VERSION = "0.2.4"  # first release with Layer 1 sections in the database
NEXT_RELEASE = "0.2.22"  # first release after v0.2.21, the newest tag we could read
VERSION_PATTERN = r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"

_BASE_SECTIONS = (
    "access",
    "lifecycle",
    "maintenance",
    "telemetry",
    "agent_defaults",
    "endpoints",
    "github_app",
    "notifications",
)
_GENERATIONS = facts.generations()
OLDEST_GENERATION = _GENERATIONS[0]


def _first_seen(section: str, field: str | None = None) -> str:
    """The `since` of the first generation that knows the section (or the field of it); the oldest generation
    is a development source after v0.2.21, so what it has beyond the base came with NEXT_RELEASE."""
    for gen in _GENERATIONS:
        found = facts.section_facts(gen).get(section)
        if found is not None and (field is None or field in found["schema"].get("properties", {})):
            return NEXT_RELEASE if gen is OLDEST_GENERATION else str(gen["since"])
    return str(_GENERATIONS[-1]["since"])


# From the section registry and the generations: a section of v0.2.4, or the first generation knowing it.
SECTION_SINCE: dict[str, str] = {
    name: (BASE_VERSION if name in _BASE_SECTIONS else _first_seen(name)) for name in REGISTRY
}
# Fields newer than their section (dotted path below spec.settings). Fields of a section not listed here
# came with it.
FIELD_SINCE: dict[str, str] = {
    "endpoints.hub_name": "0.2.6",
    "access.default_user_role": NEXT_RELEASE,
    "lifecycle.stalled_threshold": NEXT_RELEASE,
    "lifecycle.start_claim_lease_ttl": NEXT_RELEASE,
    "lifecycle.start_max_duration": NEXT_RELEASE,
    "lifecycle.start_unconfirmed_hold": NEXT_RELEASE,
    "lifecycle.start_create_unconfirmed_hold": NEXT_RELEASE,
    "telemetry.cloud.provider": NEXT_RELEASE,
    "telemetry.cloud.gcp_project_id": NEXT_RELEASE,
    "telemetry.cloud.cloud_logging": NEXT_RELEASE,
    **{
        f"agent_defaults.{name}": NEXT_RELEASE
        for name in (
            "default_model",
            "default_thinking_level",
            "default_max_agent_role",
            "default_agent_role",
            "default_runtime_broker",
            "default_timezone",
            "default_gcp_identity_mode",
            "default_gcp_identity_service_account_id",
        )
    },
    # Fields a newer generation added to a section the older one knew (from the facts).
    **{
        f"{name}.{field}": _first_seen(name, field)
        for name, entry in REGISTRY.items()
        if name in facts.section_facts(OLDEST_GENERATION)
        for field in entry.schema.get("properties", {})
        if field not in facts.section_facts(OLDEST_GENERATION)[name]["schema"].get("properties", {})
    },
}


def parse_version(text: str) -> tuple[int, int, int]:
    """`v0.2.21` / `0.2.21-rc1` -> (0, 2, 21). Pre-release suffixes are ignored (a pre-release of a version
    is taken to know what that version knows)."""
    match = re.match(r"^v?([0-9]+)\.([0-9]+)\.([0-9]+)", text.strip())
    if match is None:
        raise ValueError(f"not a Hub version: {text!r} (expected MAJOR.MINOR.PATCH, e.g. 0.2.21)")
    return int(match[1]), int(match[2]), int(match[3])


def since(section: str, path: str = "") -> str:
    """The Hub version that introduced `section` or the field at dotted `path` inside it."""
    parts = path.split(".") if path else []
    for i in range(len(parts), 0, -1):
        found = FIELD_SINCE.get(".".join([section, *parts[:i]]))
        if found is not None:
            return found
    return SECTION_SINCE[section]


@dataclass(frozen=True)
class VersionRequirement:
    """A part of a spec that needs a Hub newer than the first one with Layer 1 sections."""

    path: str  # e.g. spec.settings.lifecycle.stalled_threshold
    version: str

    def __str__(self) -> str:
        return f"{self.path} needs Hub >= {self.version}"


def _paths(doc: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.append(path)
        if isinstance(value, Mapping):
            out += _paths(value, path)
    return out


def requirements(settings: Settings) -> list[VersionRequirement]:
    """What each set section and field of `settings` needs beyond BASE_VERSION, most specific first. Pure;
    `plan` prints it and validation refuses against `spec.hubVersion`."""
    base = parse_version(BASE_VERSION)
    out: list[VersionRequirement] = []
    for section, model in settings.listed().items():
        section_version = SECTION_SINCE[section]
        floor = max(base, parse_version(section_version))
        if floor > base:
            out.append(VersionRequirement(f"spec.settings.{section}", section_version))
        explicit = model.model_dump(mode="json", exclude_none=True, exclude_unset=True)
        for path in _paths(explicit):
            key = f"{section}.{path}"
            if key in FIELD_SINCE and parse_version(FIELD_SINCE[key]) > floor:  # newer than its section
                out.append(VersionRequirement(f"spec.settings.{key}", FIELD_SINCE[key]))
    return out


def unknown_to_hub(settings: Settings, hub_version: str) -> list[VersionRequirement]:
    """The requirements a Hub of `hub_version` does not meet (each is refused before writing)."""
    have = parse_version(hub_version)
    return [r for r in requirements(settings) if parse_version(r.version) > have]


def generation_for(hub_version: str | None) -> dict[str, Any]:
    """The Hub generation (facts block) whose rules apply to a Hub of `hub_version`: the newest generation
    that version has reached; without a version, the newest generation (docs/sections.md, "Versions")."""
    if not hub_version:
        return _GENERATIONS[-1]
    have = parse_version(hub_version)
    reached = [g for g in _GENERATIONS if parse_version(str(g["since"])) <= have]
    return reached[-1] if reached else _GENERATIONS[0]


@dataclass(frozen=True)
class EffectiveVersion:
    """What the replicas' reported `scion_version`s mean for validation (a rolling upgrade runs several)."""

    version: str | None  # the oldest parseable version, which governs; None when no replica told one
    versions: tuple[str, ...]  # the distinct parseable versions, oldest first
    unknown: int  # replicas that reported no version, or one that is not MAJOR.MINOR.PATCH

    @property
    def mixed(self) -> bool:
        """True while replicas run different versions (a rolling upgrade)."""
        return len(self.versions) > 1

    def message(self) -> str:
        """One line for status and logs ("" when every replica runs the same known version)."""
        if self.version is None:
            return "no replica reported its Hub version: validating against the newest known Hub"
        parts = []
        if self.mixed:
            parts.append(
                f"replicas run different Hub versions ({', '.join(self.versions)}): the oldest, "
                f"{self.version}, governs validation until the upgrade completes"
            )
        if self.unknown:
            parts.append(f"{self.unknown} replica(s) reported no usable version")
        return "; ".join(parts)


def effective_hub_version(reported: Sequence[str | None]) -> EffectiveVersion:
    """From each replica's `scion_version` (None when it did not answer), the version that governs: the
    oldest, since a document must suit every replica that will read it. Pure."""
    good: dict[tuple[int, int, int], str] = {}
    unknown = 0
    for text in reported:
        try:
            key = parse_version(text) if text else None
        except ValueError:
            key = None
        if key is None:
            unknown += 1
            continue
        good.setdefault(key, str(text).strip().removeprefix("v"))
    ordered = tuple(good[k] for k in sorted(good))
    return EffectiveVersion(version=ordered[0] if ordered else None, versions=ordered, unknown=unknown)
