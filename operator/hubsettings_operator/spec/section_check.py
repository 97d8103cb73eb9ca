"""Spec sections against the Hub that will read them, and the operator's rules beyond it. Pure.

Validation calls this for spec.settings (and extraSettings rows a live Hub knows): every section document goes
through the Hub's own rules (`hub_model`, with the schemas of the Hub generation `spec.hubVersion` or the live
Hub selects, or the live Hub's own schemas), and a model refusal of a value the Hub accepts is reported under
the operator rule that explains it (`operator_rules`). The outcome is a list of (path, reason, hint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hubsettings_operator.spec import facts, operator_rules, versions
from hubsettings_operator.spec.hub_model import HubProblem, Loc, check_section
from hubsettings_operator.spec.live_schema import LiveSchemas
from hubsettings_operator.spec.section_registry import REGISTRY


@dataclass(frozen=True)
class Finding:
    """One problem of a section document, with where it is below spec.settings."""

    section: str
    loc: Loc
    reason: str
    hint: str = ""


@dataclass(frozen=True)
class HubView:
    """Which Hub the sections are checked against."""

    generation: Mapping[str, Any]
    live: LiveSchemas | None = None

    @classmethod
    def for_version(cls, hub_version: str | None, live: LiveSchemas | None = None) -> HubView:
        return cls(versions.generation_for(hub_version), live)

    def label(self) -> str:
        if self.live is not None:
            return f"the running Hub's schema (version {self.live.version or 'unknown'})"
        return f"Hub generation {self.generation['id']} (Hub >= {self.generation['since']})"

    def schema(self, section: str) -> Mapping[str, Any] | None:
        if self.live is not None and section in self.live.schemas:
            return self.live.schemas[section]
        found = facts.section_facts(self.generation).get(section)
        return found["schema"] if found else None

    def go_types(self, section: str) -> Mapping[str, str]:
        found = facts.section_facts(self.generation).get(section) or facts.section_facts(facts.newest()).get(
            section
        )
        return (found or {}).get("go_types") or {}


def hub_findings(section: str, doc: Any, view: HubView) -> list[Finding]:
    """What the Hub of `view` refuses or cannot decode in one section document."""
    schema = view.schema(section)
    if schema is None:
        return []
    problems: list[HubProblem] = check_section(schema, doc, view.go_types(section), section=section)
    return [
        Finding(
            section,
            p.loc,
            f"{'the Hub cannot decode it' if p.read_path else 'the Hub refuses it'}: {p.message} "
            f"({view.label()})",
            "A row the Hub cannot use makes it mark the whole section malformed and fall back to its defaults"
            if p.read_path
            else "Fix the value: the Hub's own write path refuses this document",
        )
        for p in problems
    ]


def not_applied_findings(section: str, doc: Any) -> list[Finding]:
    """Fields the Hub never applies from a table row (operator rule not-applied)."""
    if not isinstance(doc, Mapping):
        return []
    where: Mapping[str, str] = facts.newest().get("not_applied_from_table") or {}
    out = []
    for key, goes in where.items():
        name, _, field = key.partition(".")
        if name == section and field in doc:
            out.append(
                Finding(
                    section,
                    (field,),
                    operator_rules.message("not-applied", "the Hub ignores this field in a table row"),
                    f"Remove it; set it through {goes}",
                )
            )
    return out


def covered(loc: Sequence[str | int], found: Sequence[Finding]) -> bool:
    """Whether a finding already reports `loc` or a value containing it."""
    return any(tuple(loc[: len(f.loc)]) == f.loc for f in found)


def explain_model_error(section: str, loc: Sequence[str | int], error_type: str, reason: str) -> str:
    """The reason of a model refusal of a value the Hub accepts, under its operator rule (unchanged when no
    rule explains it: the differential test reports those)."""
    entry = REGISTRY.get(section)
    if entry is None:
        return reason
    rule_id = operator_rules.classify(entry.schema, loc, error_type)
    return operator_rules.message(rule_id, reason) if rule_id else reason
