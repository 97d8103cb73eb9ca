"""The operator's own rules: every place it refuses a section value the Hub would accept. The one list. Pure.

The Hub's write path validates a section document against its JSON Schema and its read path decodes it into
a Go struct (`spec/hub_model.py` models both, from the facts). A few values pass both and still do harm:
the Hub stores them and then ignores, misreads or trips over them. The operator refuses those, and only
those listed here; each refusal says it is this operator's rule and names the Hub behaviour it protects
against. docs/sections.md ("Operator rules") shows this list; `tests/unit/test_hub_differential.py` checks
that every refusal of a document the Hub accepts carries one of these ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperatorRule:
    """One rule stricter than the Hub."""

    id: str
    what: str  # what the operator refuses
    hub_behaviour: str  # what the Hub would do with the value: why the rule exists


RULES: tuple[OperatorRule, ...] = (
    OperatorRule(
        "go-duration",
        "duration strings (lifecycle.*, telemetry timeouts and intervals, agent_defaults.default_max_duration, "
        "substrate template_ready_timeout) that Go's time.ParseDuration rejects; the empty string (unset) is "
        "accepted",
        "the Hub stores any string there and parses it only when it uses it: an unparsable value is ignored "
        "for the compiled default or fails the feature at run time",
    ),
    OperatorRule(
        "format",
        "access.admin_emails items that are not email addresses, endpoints.public_url that is not an absolute "
        "http(s) URL, endpoints.monitoring_dashboard_url that config.ValidateMonitoringDashboardURL rejects "
        "(empty strings are accepted)",
        "the Hub's schema names these formats but its schema library does not check them: an address that is "
        "not an email never matches a sign-in, agents cannot call back a public_url that is not a URL, and the "
        "Hub's own admin API refuses such a dashboard URL",
    ),
    OperatorRule(
        "known-values",
        "values the Hub's code does not know where its schema says only 'string': access.user_access_mode, "
        "runtimes.<name>.type, auth_selected_type, and the enumerations of the Go structs below",
        "the Hub stores any string but its code treats an unknown one as a default (an unknown "
        "user_access_mode signs everyone in as 'open') or fails when an agent starts with it",
    ),
    OperatorRule(
        "unknown-key",
        "keys the Hub's schema leaves open but its Go struct has no field for (for example an extra key in a "
        "notifications channel or a runtimes entry)",
        "the Hub's read path drops unknown keys silently, so the setting would look written and do nothing",
    ),
    OperatorRule(
        "go-shape",
        "values inside the parts the Hub's schema leaves open ({'type': 'object'} or {'type': 'array'} without "
        "a shape: runtimes' cloudrun, volumes, resources, secrets, harness config metadata): the shape of the Go "
        "struct the Hub decodes them into, with its required fields",
        "a wrong type there passes the Hub's write path but fails json.Unmarshal on its read path, which marks "
        "the whole section malformed and falls back to the Hub's defaults",
    ),
    OperatorRule(
        "not-applied",
        "agent_defaults.default_max_agent_role and agent_defaults.default_agent_role",
        "the Hub never applies these from a table row (pkg/hub/admin_settings_db_unpersisted.go): a value "
        "written there is silently without effect",
    ),
    OperatorRule(
        "gcp-iam-loosening",
        "a gcp_iam change that makes either key less strict than the table holds (check mode off, deny-unknown "
        "policy fail-open)",
        "each replica applies a loosening change read from the table only with a matching hub_setting_update "
        "row in mutation_audits (pkg/hub/gcp_iam_settings.go); otherwise every replica refuses it, keeps the "
        "stricter values and logs hub_setting_apply_refused",
    ),
    OperatorRule(
        "storage",
        "text holding a NUL character or a lone surrogate, section documents larger than the size limit or "
        "nested deeper than the depth limit",
        "PostgreSQL cannot store such text in jsonb, and an oversized row slows every replica's full refresh",
    ),
)
RULES_BY_ID: dict[str, OperatorRule] = {rule.id: rule for rule in RULES}


def rule(rule_id: str) -> OperatorRule:
    """The rule of that id (a KeyError for an unknown id: every refusal names a listed rule)."""
    return RULES_BY_ID[rule_id]


def message(rule_id: str, reason: str) -> str:
    """The reason of a refusal under an operator rule, saying whose rule it is and why."""
    found = rule(rule_id)
    return f"{reason} (this operator's rule {found.id!r}, stricter than the Hub: {found.hub_behaviour})"


def schema_at(schema: Mapping[str, Any], loc: Sequence[str | int]) -> Mapping[str, Any] | None:
    """The Hub's schema of the value at `loc` inside a section document, or None where the schema leaves the
    value open (no properties, items or additionalProperties shape describe it)."""
    node: Mapping[str, Any] = schema
    for part in loc:
        if isinstance(part, int):
            items = node.get("items")
            if not isinstance(items, Mapping):
                return None
            node = items
            continue
        props = node.get("properties") or {}
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            return None
    return node


# go_int: an integer beyond Go's int64 fails json.Unmarshal; where the Hub's schema describes the value the Hub
# model reports it first, so a model refusal left over is inside a part the schema leaves open.
_CUSTOM = {
    "go_duration": "go-duration",
    "format": "format",
    "not_applied": "not-applied",
    "go_int": "go-shape",
}


def classify(section_schema: Mapping[str, Any], loc: Sequence[str | int], error_type: str) -> str | None:
    """The operator rule behind a model refusal at `loc` (inside a section document) of a document the Hub
    accepts, or None when no listed rule explains it (a bug the differential test reports)."""
    if error_type in _CUSTOM:
        return _CUSTOM[error_type]
    parent = schema_at(section_schema, loc[:-1]) if loc else None
    here = schema_at(section_schema, loc)
    if error_type == "extra_forbidden":
        # The schema either leaves the parent open, or lists properties without closing it.
        return "unknown-key" if parent is None or parent.get("additionalProperties") is not False else None
    if here is None:
        return "go-shape"
    if error_type in ("literal_error", "enum") and here.get("type") == "string" and "enum" not in here:
        return "known-values"
    return None
