"""CRD generation: the HubSettings CustomResourceDefinition, built from the pydantic models and the catalog.

`hubsettings crd` prints it; `crds/hubsettings.yaml` is its committed output (a test keeps them equal).
Pydantic's JSON Schema is turned into a *structural* OpenAPI v3 schema (refs inlined, `anyOf [X, null]`
turned into `nullable`, free-form maps marked `x-kubernetes-preserve-unknown-fields`), and CEL rules are
added for what the API server can check itself: no Layer 0 key or secret under `spec.settings`, the
`extraSettings` key rules, `createTable` only with the proposal profile.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from hubsettings_operator.spec import catalog, versions
from hubsettings_operator.spec.models import (
    GROUP,
    KIND,
    MAX_EXTRA_KEYS,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    HubSettingsSpec,
    HubSettingsStatus,
)

Schema = dict[str, Any]

_DROP = {"title", "default", "$defs", "examples"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            target = copy.deepcopy(defs[name])
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _structural(node: Schema) -> Schema:
    """Make one pydantic schema node structural (recursively)."""
    node = dict(node)
    desc = node.get("description")
    default = node.get("default")
    for key in _DROP:
        node.pop(key, None)
    if desc is not None and default not in (None, [], {}, "") and "Default:" not in desc:
        node["description"] = f"{desc} Default: {json.dumps(default)}."

    any_of = node.pop("anyOf", None)
    if any_of is not None:
        non_null = [s for s in any_of if s.get("type") != "null"]
        nullable = len(non_null) != len(any_of)
        types = sorted({s.get("type") for s in non_null if "type" in s})
        if len(non_null) == 1:
            inner = _structural(non_null[0])
            inner.update({k: v for k, v in node.items() if k == "description"})
            node = {**inner, **({"nullable": True} if nullable else {})}
            return node
        if types == ["integer", "string"] and len(non_null) == 2:
            out: Schema = {"x-kubernetes-int-or-string": True}
            if desc:
                out["description"] = node.get("description", desc)
            return out
        # Any other union: keep it free-form; pydantic checks it.
        out = {"x-kubernetes-preserve-unknown-fields": True}
        if desc:
            out["description"] = node.get("description", desc)
        return out

    # A map with a key pattern (pydantic: patternProperties) is not structural: the API server types the
    # values, the operator checks the keys.
    pattern_props = node.pop("patternProperties", None)
    node.pop("propertyNames", None)
    if (
        isinstance(pattern_props, dict)
        and len(pattern_props) == 1
        and not isinstance(node.get("additionalProperties"), dict)
    ):
        node["additionalProperties"] = next(iter(pattern_props.values()))
        node.setdefault("type", "object")
    typ = node.get("type")
    if typ is None and "properties" not in node and "enum" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
        return node
    if "enum" in node and typ is None:
        node["type"] = "string"
    if typ == "object" or "properties" in node:
        node["type"] = "object"
        props = node.get("properties")
        if props:
            node["properties"] = {k: _structural(v) for k, v in props.items()}
        addl = node.get("additionalProperties")
        if addl is False:
            node.pop("additionalProperties")
        elif isinstance(addl, dict):
            if addl == {} or ("type" not in addl and "anyOf" not in addl and "$ref" not in addl):
                node.pop("additionalProperties")
                node["x-kubernetes-preserve-unknown-fields"] = True
            else:
                node["additionalProperties"] = _structural(addl)
        elif addl is True or (not props and addl is None):
            node.pop("additionalProperties", None)
            node["x-kubernetes-preserve-unknown-fields"] = True
    if typ == "array" and isinstance(node.get("items"), dict):
        node["items"] = _structural(node["items"])
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


def model_schema(model: Any) -> Schema:
    raw = model.model_json_schema(mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_inline(raw, defs))


def _trap_type(name: str) -> Schema:
    """A type CEL can see (an untyped, preserved field is invisible to CEL, so `has()` would not compile).

    Subtrees (`database`, `oauth`...) are objects, flags are booleans, the rest int-or-string. A value of
    the other kind is still refused, by the type check instead of the guidance message.
    """
    prefix = next((p for p in catalog.LAYER0_PREFIXES if p.rsplit(".", 1)[-1] == name), None)
    setting = catalog.find_misplaced(prefix or name)
    nested = name == "server" or (
        prefix is not None and any(s.key.startswith(prefix + ".") for s in catalog.settings())
    )
    if nested:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if setting is not None and setting.json_type == "boolean" and not catalog.is_secret_name(name):
        return {"type": "boolean"}
    return {"x-kubernetes-int-or-string": True}


def _trap_rules() -> tuple[dict[str, Schema], list[Schema]]:
    """Properties under spec.settings that exist only to be refused with guidance (CEL can only test
    fields the schema declares: undeclared ones are pruned or rejected before CEL sees them)."""
    props: dict[str, Schema] = {}
    rules: list[Schema] = []
    for name, message in catalog.settings_traps().items():
        props[name] = {"description": f"Not accepted here: {message}", **_trap_type(name)}
        rules.append({"rule": f"!has(self.{name})", "message": message, "fieldPath": f".{name}"})
    return props, rules


def _add_hub_versions(settings: Schema) -> None:
    """Say in each section's and newer field's description which Hub version introduced it."""
    base = versions.parse_version(versions.BASE_VERSION)
    for section, node in settings["properties"].items():
        since = versions.SECTION_SINCE.get(section)
        if since is None:
            continue
        if versions.parse_version(since) > base:
            node["description"] = f"{node.get('description', '')} Hub >= {since}.".strip()
        for key, version in versions.FIELD_SINCE.items():
            owner, _, path = key.partition(".")
            target: Schema | None = node if owner == section else None
            for part in path.split(".") if target is not None else []:
                target = (target or {}).get("properties", {}).get(part)
            if target is not None:
                target["description"] = f"{target.get('description', '')} Hub >= {version}.".strip()


def spec_schema() -> Schema:
    spec = model_schema(HubSettingsSpec)
    spec["required"] = sorted(set(spec.get("required", [])) | {"database"})
    settings = spec["properties"]["settings"]
    _add_hub_versions(settings)
    trap_props, trap_rules = _trap_rules()
    settings["properties"].update(trap_props)
    settings["x-kubernetes-validations"] = trap_rules
    extra = spec["properties"]["extraSettings"]
    # The key rules of extraSettings (no `_` prefix, no section names, key grammar) stay in the operator:
    # CEL cannot range over an object whose fields are preserved-unknown, and declaring it a typed map would
    # refuse the plain values (`some.key: 5`) the proposal profile stores as rows.
    extra["maxProperties"] = MAX_EXTRA_KEYS
    database = spec["properties"]["database"]
    database["x-kubernetes-validations"] = [
        {
            "rule": "!has(self.createTable) || !self.createTable || !has(self.profile) || self.profile != 'scion'",
            "message": "createTable applies to the proposal profile only: the shipped Hub creates its table "
            "through its own migrations",
        }
    ]
    return spec


# Before the operator's first status write (operator down, starting, or simply not yet), the API server itself
# fills `status.observedGeneration: -1` from this structural default: it applies to the create response and to
# every read of the object from etcd (get, list, watch), with no operator involved. kstatus reads
# observedGeneration != generation as InProgress, and the Argo CD health check (docs/argocd-health.lua)
# observedGeneration < generation as Progressing, so a just-created object is never Current. The first status
# patch stores the -1 until the reconciler acts on a generation and writes that generation.
NOT_OBSERVED = -1


def status_schema() -> Schema:
    schema = model_schema(HubSettingsStatus)
    schema["default"] = {"observedGeneration": NOT_OBSERVED}
    schema["properties"]["observedGeneration"]["default"] = NOT_OBSERVED
    return schema


def crd() -> dict[str, Any]:
    def cond(ctype: str) -> str:
        return f'.status.conditions[?(@.type=="{ctype}")].status'

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "hubsettings-operator",
                "app.kubernetes.io/part-of": "scion",
            },
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["scion"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Ready", "type": "string", "jsonPath": cond("Ready")},
                        {"name": "Synced", "type": "string", "jsonPath": cond("Synced")},
                        {"name": "Drifted", "type": "string", "jsonPath": cond("Drifted")},
                        {"name": "Keys", "type": "integer", "jsonPath": ".status.appliedKeys"},
                        {"name": "Converged", "type": "string", "jsonPath": ".status.convergence.summary"},
                        {"name": "Profile", "type": "string", "jsonPath": ".status.profile", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "HubSettings declares the Scion Hub's runtime settings: Layer 1 "
                            "(operational) settings the operator writes to the Hub's settings table, and "
                            "Layer 0 (bootstrap) values it checks on the Hub's pods.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = (
        "# Generated by `hubsettings crd` from the pydantic models and the settings catalog. Do not edit.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=110, allow_unicode=True)
