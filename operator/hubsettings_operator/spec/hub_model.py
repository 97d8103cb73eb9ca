"""The Hub's own rules for one section document, generated from the facts. Pure.

A section document is accepted by the Hub when its write path validates it (the section's JSON Schema as
`pkg/config/opsettings/registry.go` compiles it, draft 2020-12, `format` not asserted) and its read path can
use it: the document decodes into the section's Go struct (`json.Unmarshal`: an integer must fit the Go field,
`int`/`int64` on the Hub's 64-bit builds, and must be written without a fraction; a number must fit a
`float64`) and, for `artifacts`, passes `ArtifactsSettings.Resolve` (the cross-field rules, which the newest
Hub also checks on its write path). Nothing here is hand-written per section: the schemas and Go types come
from `data/hub_facts.json`, one block per Hub generation, or from a live Hub's schema endpoint.

`check_section` is what validation, `hubsettings validate --hub-url` and the differential test
(`tests/unit/test_hub_differential.py`) call; the operator's own stricter rules are elsewhere
(`spec/operator_rules.py`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from hubsettings_operator.spec.hub_urls import dashboard_url_problem

# Go integer kinds and the values json.Unmarshal stores in them (int and uint are 64-bit on the Hub's builds).
GO_INT_RANGES: dict[str, tuple[int, int]] = {
    "int": (-(2**63), 2**63 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "uint": (0, 2**64 - 1),
    "uint64": (0, 2**64 - 1),
    "uint32": (0, 2**32 - 1),
    "uint16": (0, 2**16 - 1),
    "uint8": (0, 2**8 - 1),
}
# An integer the schema allows where the facts name no Go field: the Hub's nested config structs use int.
DEFAULT_GO_INT = "int"
FLOAT64_MAX = 1.7976931348623157e308


Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class HubProblem:
    """One reason the Hub would refuse (write path) or be unable to use (read path) a section document."""

    loc: Loc  # below the section document, e.g. ("cloud", "batch", "max_size")
    message: str
    read_path: bool = False  # True: the Hub's read path (decode/Resolve) fails, not its schema

    @property
    def path(self) -> str:
        out = ""
        for part in self.loc:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out

    def __str__(self) -> str:
        return f"{self.path or '(section)'}: {self.message}"


def _join(path: Loc, key: str | int) -> Loc:
    return (*path, key)


def _json_type_ok(kind: str, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "integer":
        # draft 2020-12: a number with a zero fractional part is an integer (the Go decode below refuses 1.0).
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality (true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def check_schema(schema: Mapping[str, Any], value: Any, path: Loc = ()) -> list[HubProblem]:
    """The JSON Schema keywords the Hub's section schemas use, evaluated as santhosh-tekuri/jsonschema does."""
    out: list[HubProblem] = []
    declared = schema.get("type")
    kinds = [declared] if isinstance(declared, str) else list(declared or [])
    if kinds and not any(_json_type_ok(k, value) for k in kinds):
        return [HubProblem(path, f"must be {' or '.join(kinds)}")]
    if "const" in schema and not _equal(schema["const"], value):
        out.append(HubProblem(path, f"must be {schema['const']!r}"))
    if "enum" in schema and not any(_equal(v, value) for v in schema["enum"]):
        out.append(HubProblem(path, f"must be one of {', '.join(repr(v) for v in schema['enum'])}"))
    for combinator in ("anyOf", "oneOf"):
        branches = schema.get(combinator)
        if isinstance(branches, list):
            passing = sum(1 for b in branches if not check_schema(b, value, path))
            if passing == 0 or (combinator == "oneOf" and passing > 1):
                out.append(HubProblem(path, f"matches {passing} of the {combinator} branches"))
    if isinstance(value, str):
        if schema.get("x-hub-check") == "config.ValidateMonitoringDashboardURL" and dashboard_url_problem(
            value
        ):
            out.append(HubProblem(path, dashboard_url_problem(value)))
        length = len(value)
        if "minLength" in schema and length < schema["minLength"]:
            out.append(HubProblem(path, f"must be at least {schema['minLength']} characters"))
        if "maxLength" in schema and length > schema["maxLength"]:
            out.append(HubProblem(path, f"must be at most {schema['maxLength']} characters"))
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            out.append(HubProblem(path, f"must match {schema['pattern']}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(HubProblem(path, f"must be >= {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.append(HubProblem(path, f"must be <= {schema['maximum']}"))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(HubProblem(path, f"must be > {schema['exclusiveMinimum']}"))
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append(HubProblem(path, f"must be < {schema['exclusiveMaximum']}"))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(HubProblem(path, f"must have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(HubProblem(path, f"must have at most {schema['maxItems']} items"))
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                out += check_schema(items, item, _join(path, i))
    if isinstance(value, Mapping):
        out += _check_object(schema, value, path)
    return out


def _check_object(schema: Mapping[str, Any], value: Mapping[str, Any], path: Loc) -> list[HubProblem]:
    out: list[HubProblem] = []
    props = schema.get("properties") or {}
    patterns = schema.get("patternProperties") or {}
    additional = schema.get("additionalProperties", True)
    for name in schema.get("required") or []:
        if name not in value:
            out.append(HubProblem(_join(path, name), "is required"))
    names = schema.get("propertyNames")
    for key, item in value.items():
        sub = _join(path, str(key))
        if isinstance(names, Mapping) and check_schema(names, key, sub):
            out.append(HubProblem(sub, f"key does not match {names.get('pattern', 'the key schema')}"))
        matched = False
        if key in props:
            matched = True
            out += check_schema(props[key], item, sub)
        for pattern, pschema in patterns.items():
            if _regex(pattern).search(str(key)):
                matched = True
                out += check_schema(pschema, item, sub)
        if not matched:
            if additional is False:
                out.append(HubProblem(sub, "is not a field the Hub's schema allows"))
            elif isinstance(additional, Mapping):
                out += check_schema(additional, item, sub)
    return out


def _check_decode(schema: Mapping[str, Any], value: Any, path: Loc, go_type: str | None) -> list[HubProblem]:
    """What json.Unmarshal into the section's Go struct refuses although the schema allowed it."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float) and "integer" in kinds and "number" not in kinds:
        if isinstance(value, float):
            return [
                HubProblem(path, "must be written as a whole number (the Hub's Go field is an integer)", True)
            ]
        go = go_type if go_type in GO_INT_RANGES else DEFAULT_GO_INT
        low, high = GO_INT_RANGES[go]
        if not low <= value <= high:
            return [HubProblem(path, f"does not fit the Hub's Go {go} field ({low} to {high})", True)]
    elif isinstance(value, int) and abs(value) > FLOAT64_MAX:
        return [HubProblem(path, "does not fit the Hub's Go float64 field", True)]
    out: list[HubProblem] = []
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            out += _check_decode(schema["items"], item, _join(path, i), None)
    elif isinstance(value, Mapping):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = schema.get("patternProperties", {})
            child = props.get(key)
            if child is None:
                child = next((s for p, s in sub.items() if _regex(p).search(str(key))), None)
            if child is None and isinstance(additional, Mapping):
                child = additional
            if isinstance(child, Mapping):
                out += _check_decode(child, item, _join(path, str(key)), None)
    return out


def _check_decode_section(
    schema: Mapping[str, Any], doc: Mapping[str, Any], go_types: Mapping[str, str]
) -> list[HubProblem]:
    out: list[HubProblem] = []
    props = schema.get("properties") or {}
    for key, value in doc.items():
        child = props.get(key)
        if isinstance(child, Mapping):
            out += _check_decode(child, value, (str(key),), go_types.get(str(key)))
        elif isinstance(schema.get("additionalProperties"), Mapping):
            out += _check_decode(schema["additionalProperties"], value, (str(key),), None)
    return out


# ArtifactsSettings.Resolve (sections.go): compiled defaults, then the rules that fail the whole section.
ARTIFACTS_DEFAULTS = {
    "max_file_bytes": 32 << 20,
    "max_bundle_bytes": 256 << 20,
    "max_files": 200,
    "link_default_ttl_hours": 168,
    "link_max_ttl_hours": 720,
    "remote_image_max_count": 32,
    "remote_image_max_bytes": 5 << 20,
    "remote_image_fetch_timeout_s": 10,
    "remote_image_total_budget_s": 30,
}


def _artifacts_cross_field(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[HubProblem]:
    known = schema.get("properties") or {}

    def value(name: str) -> int:
        got = doc.get(name)
        return int(got) if isinstance(got, int) and not isinstance(got, bool) else ARTIFACTS_DEFAULTS[name]

    out: list[HubProblem] = []
    if value("max_file_bytes") > value("max_bundle_bytes"):
        out.append(
            HubProblem(("max_file_bytes",), "exceeds max_bundle_bytes (the Hub disables artifacts)", True)
        )
    if value("link_default_ttl_hours") > value("link_max_ttl_hours"):
        out.append(
            HubProblem(
                ("link_default_ttl_hours",), "exceeds link_max_ttl_hours (the Hub disables artifacts)", True
            )
        )
    if "remote_image_max_bytes" not in known:
        return out  # an older Hub: no remote images
    # An absent remote image cap follows a lower file limit (Resolve), so only an explicit one can break a rule.
    count = value("remote_image_max_count") if "remote_image_max_count" in doc else 0
    size = value("remote_image_max_bytes") if "remote_image_max_bytes" in doc else 0
    if size > value("max_file_bytes"):
        out.append(HubProblem(("remote_image_max_bytes",), "exceeds max_file_bytes (the Hub refuses it)"))
    if count > value("max_files"):
        out.append(HubProblem(("remote_image_max_count",), "exceeds max_files (the Hub refuses it)"))
    if value("remote_image_total_budget_s") < value("remote_image_fetch_timeout_s"):
        out.append(
            HubProblem(
                ("remote_image_total_budget_s",), "is below remote_image_fetch_timeout_s (the Hub refuses it)"
            )
        )
    return out


def check_section(
    schema: Mapping[str, Any], doc: Any, go_types: Mapping[str, str] | None = None, *, section: str = ""
) -> list[HubProblem]:
    """Everything the Hub would refuse in `doc` (its write path) or fail to decode (its read path)."""
    problems = check_schema(schema, doc)
    if problems or not isinstance(doc, Mapping):
        return problems
    problems = _check_decode_section(schema, doc, go_types or {})
    if not problems and section == "artifacts":
        problems = _artifacts_cross_field(doc, schema)
    return problems
