"""Which Hub version introduced each Layer 1 section and field, and what a spec therefore needs. Pure.

How the versions were found (docs/sections.md says the same): the Hub's tagged releases v0.2.4 to v0.2.21
(the newest tag in the history available to us) were compared with its development source at the commit
recorded in `data/hub_facts.json`. `pkg/config/opsettings/registry.go` first appears in v0.2.4 with 8
sections; `endpoints.hub_name` appears in v0.2.6; everything else (11 sections and the newer fields of the
first 8) is present in the development source only, so it is recorded as `NEXT_RELEASE` (the first release
after v0.2.21; correct it here once that release is tagged). The Hub's own `x-since` annotations are schema
versions ("1"), not Hub versions, so they cannot be used.

A Hub older than a field's version rejects a section document holding it on its write path and, on its read
path, silently drops it; a section it does not know is ignored. So: with `spec.hubVersion`, a section or
field the declared Hub does not know is refused before anything is written; without it, newer fields are
written only when set, and `plan` lists what each needs (`requirements`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubsettings_operator.spec.sections import SECTION_MODELS, Settings

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
SECTION_SINCE: dict[str, str] = {
    name: (BASE_VERSION if name in _BASE_SECTIONS else NEXT_RELEASE) for name in SECTION_MODELS
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
    return SECTION_SINCE.get(section, NEXT_RELEASE)


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
        if parse_version(section_version) > base:
            out.append(VersionRequirement(f"spec.settings.{section}", section_version))
            continue  # its fields came with it
        explicit = model.model_dump(mode="json", exclude_none=True, exclude_unset=True)
        for path in _paths(explicit):
            key = f"{section}.{path}"
            if key in FIELD_SINCE and parse_version(FIELD_SINCE[key]) > base:
                out.append(VersionRequirement(f"spec.settings.{key}", FIELD_SINCE[key]))
    return out


def unknown_to_hub(settings: Settings, hub_version: str) -> list[VersionRequirement]:
    """The requirements a Hub of `hub_version` does not meet (each is refused before writing)."""
    have = parse_version(hub_version)
    return [r for r in requirements(settings) if parse_version(r.version) > have]
