"""One entry per Hub section: its generated facts and its model. Every per-section table derives from here.

Adding a Hub section is: regenerate the facts (hack/gen_hub_generations.py), write the section's model in
`sections.py` (fields, `hub_defaults`) and list it in SECTION_MODELS. Koanf paths, the Hub version that
introduced it, the proposal layout's row, the CRD, the reference docs and validation all follow. A section in
the facts without a model, or a model without facts or without `hub_defaults`, fails at import: no table here
has a default to fall back on. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubsettings_operator.spec import facts
from hubsettings_operator.spec.sections import SECTION_MODELS, MapSection, Section

# Seed 000 (the two-tier proposal) knew these sections field by field; `github_app` and `telemetry` were one
# row each there. Every later section is written whole, one row under its own name, in the proposal layout
# (its field names, such as `enabled`, would otherwise collide between sections). History: never extended.
PROPOSAL_SEED_SECTIONS = frozenset(
    {
        "access",
        "lifecycle",
        "maintenance",
        "telemetry",
        "agent_defaults",
        "endpoints",
        "github_app",
        "notifications",
        "project_defaults",
    }
)
PROPOSAL_WHOLE_IN_SEED = frozenset({"github_app", "telemetry"})


class RegistryError(Exception):
    """The facts and the section models disagree."""


@dataclass(frozen=True)
class SectionEntry:
    """A Hub section: what the Hub says about it (facts, newest generation) and its model."""

    name: str
    model: type[Section]
    koanf_paths: tuple[str, ...]
    schema: Mapping[str, Any]  # the newest generation's section schema
    go_types: Mapping[str, str]
    generations: tuple[str, ...]  # ids of the Hub generations that know the section, oldest first
    hub_defaults: Mapping[str, Any]

    @property
    def is_map(self) -> bool:
        return issubclass(self.model, MapSection)

    @property
    def fields(self) -> tuple[str, ...]:
        return () if self.is_map else tuple(self.model.model_fields)

    def koanf(self, field: str) -> str | None:
        """The settings.yaml path of a field (None: database only). A map section's path is its own."""
        ends = [p for p in self.koanf_paths if p.rsplit(".", 1)[-1] == field]
        return min(ends, key=len) if ends else None

    @property
    def proposal_row(self) -> str | None:
        """The proposal layout's single row for the section, or None when its fields are rows of their own."""
        whole = self.name not in PROPOSAL_SEED_SECTIONS or self.name in PROPOSAL_WHOLE_IN_SEED
        return self.name if whole else None


def _build() -> dict[str, SectionEntry]:
    newest = facts.section_facts(facts.newest())
    missing_model = sorted(set(newest) - set(SECTION_MODELS))
    missing_facts = sorted(set(SECTION_MODELS) - set(newest))
    if missing_model or missing_facts:
        raise RegistryError(
            f"sections without a model: {missing_model}; models without facts: {missing_facts} "
            "(regenerate data/hub_facts.json, then add the model to spec/sections.py)"
        )
    entries: dict[str, SectionEntry] = {}
    for name, model in SECTION_MODELS.items():
        if "hub_defaults" not in vars(model):
            raise RegistryError(f"section model {model.__name__} has no hub_defaults")
        fact = newest[name]
        entries[name] = SectionEntry(
            name=name,
            model=model,
            koanf_paths=tuple(fact["koanf_paths"]),
            schema=fact["schema"],
            go_types=fact.get("go_types") or {},
            generations=tuple(g["id"] for g in facts.generations() if name in facts.section_facts(g)),
            hub_defaults=vars(model)["hub_defaults"],
        )
    return entries


REGISTRY: dict[str, SectionEntry] = _build()


def entry(section: str) -> SectionEntry:
    """The registry entry of a section (KeyError for a name that is not a Hub section)."""
    return REGISTRY[section]
