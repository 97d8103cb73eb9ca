#!/usr/bin/env python3
"""Generate the Hub settings fact table from a copy of Scion's settings-v1.schema.json.

The Scion Hub documents every settings.yaml key in ``pkg/config/schemas/settings-v1.schema.json``:
type, enum, default, constraints and, through the ``x-env-var`` / ``x-env-var-alias`` annotations,
the environment variables that set it. This script flattens that schema into a sorted list of leaf
properties keyed by their dotted koanf path (``server.hub.admin_emails``) so that the operator can
ship the facts as data without shipping a copy of the upstream file.

Usage::

    python hack/gen_hub_facts.py --schema /tmp/research/settings-v1.schema.json \\
        --repo ptone/scion --commit <sha> > operator/hubsettings_operator/data/hub_facts.json

Rules:

* ``$ref`` (``#/$defs/...``) is resolved; keywords next to a ``$ref`` win over the definition's.
* An object with ``properties`` is descended into; its children become the facts.
* An object without ``properties`` (a free map such as ``telemetry.resource`` or ``runtimes``) is a
  leaf of type ``object``; ``values_type`` gives the type of its ``additionalProperties`` values.
* Arrays are leaves; ``items_type`` is the item type (after ``$ref`` resolution). For arrays of
  objects, ``items_properties`` and ``items_required`` describe the item shape.
* ``anyOf`` / ``oneOf`` branches contribute their types (``type`` becomes a list) and the first
  pattern found.

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_REPO_PATH = "pkg/config/schemas/settings-v1.schema.json"
REF_PREFIX = "#/$defs/"

JSONObj = dict[str, Any]

# Constraint keywords copied verbatim onto a fact when the schema carries them.
CONSTRAINT_KEYS: tuple[str, ...] = (
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "const",
)


class SchemaError(Exception):
    """The schema file cannot be interpreted."""


def resolve(node: Any, defs: JSONObj, stack: tuple[str, ...] = ()) -> JSONObj:
    """Return ``node`` with a top-level ``$ref`` expanded; sibling keywords override the definition."""
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    if not ref.startswith(REF_PREFIX):
        raise SchemaError(f"unsupported $ref {ref!r}")
    name = ref[len(REF_PREFIX) :]
    if name in stack:
        # Recursive reference: keep the node as it is rather than expanding forever.
        return {k: v for k, v in node.items() if k != "$ref"}
    target = defs.get(name)
    if not isinstance(target, dict):
        raise SchemaError(f"$ref {ref!r} names no definition")
    merged = dict(resolve(target, defs, (*stack, name)))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def type_of(node: JSONObj, defs: JSONObj) -> str | list[str] | None:
    """Return the JSON type of a (resolved) schema node; a list when several types are allowed."""
    declared = node.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list):
        return [str(t) for t in declared]
    types: list[str] = []
    for key in ("anyOf", "oneOf"):
        for branch in node.get(key, []) or []:
            branch_type = type_of(resolve(branch, defs), defs)
            for t in [branch_type] if isinstance(branch_type, str) else branch_type or []:
                if t not in types:
                    types.append(t)
    if types:
        return types[0] if len(types) == 1 else types
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node:
        return "array"
    return None


def as_list(value: Any) -> list[str]:
    """Normalise an ``x-env-var``-style annotation (absent, string or list) to a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise SchemaError(f"unexpected annotation value {value!r}")


def branch_keyword(node: JSONObj, defs: JSONObj, key: str) -> Any:
    """Return ``key`` from the node itself or, failing that, from its first anyOf/oneOf branch having it."""
    if key in node:
        return node[key]
    for combinator in ("anyOf", "oneOf"):
        for branch in node.get(combinator, []) or []:
            resolved = resolve(branch, defs)
            if key in resolved:
                return resolved[key]
    return None


def make_fact(path: str, node: JSONObj, defs: JSONObj) -> JSONObj:
    """Build the fact record for one leaf property."""
    node_type = type_of(node, defs)
    fact: JSONObj = {
        "path": path,
        "type": node_type,
        "items_type": None,
        "enum": node.get("enum"),
        "default": node.get("default"),
        "env": as_list(node.get("x-env-var")),
        "env_aliases": as_list(node.get("x-env-var-alias")),
        "description": node.get("description", ""),
    }
    for key in CONSTRAINT_KEYS:
        # const is branch-specific (federation intervals: integer branch const 0); never lift it.
        value = node.get(key) if key == "const" else branch_keyword(node, defs, key)
        if value is not None:
            fact[key] = value
    if node_type == "array" or (isinstance(node_type, list) and "array" in node_type):
        items = resolve(node.get("items", {}), defs)
        fact["items_type"] = type_of(items, defs)
        if items.get("enum") is not None:
            fact["items_enum"] = items["enum"]
        for key in ("format", "pattern", "minimum", "maximum", "minLength", "maxLength"):
            if key in items:
                fact[f"items_{key}"] = items[key]
        if isinstance(items.get("properties"), dict):
            fact["items_properties"] = sorted(items["properties"])
            fact["items_required"] = sorted(items.get("required", []))
            if items.get("additionalProperties") is False:
                fact["items_additional_properties"] = False
    additional = node.get("additionalProperties")
    if node_type == "object" and isinstance(additional, dict):
        values = resolve(additional, defs)
        fact["values_type"] = type_of(values, defs)
        if values.get("enum") is not None:
            fact["values_enum"] = values["enum"]
        if isinstance(node.get("propertyNames"), dict) and "pattern" in node["propertyNames"]:
            fact["key_pattern"] = node["propertyNames"]["pattern"]
    if "x-scope" in node:
        fact["scope"] = node["x-scope"]
    if "x-since" in node:
        fact["since"] = node["x-since"]
    if node.get("x-sensitive") is True:
        fact["sensitive"] = True
    return fact


def walk(properties: JSONObj, prefix: str, defs: JSONObj, out: list[JSONObj], stack: tuple[str, ...]) -> None:
    """Append a fact for every leaf under ``properties`` (a schema ``properties`` mapping)."""
    for name, raw in properties.items():
        if name == "$schema" and not prefix:
            continue  # the IDE hint key, not a setting
        if not isinstance(raw, dict):
            continue
        ref = raw.get("$ref")
        ref_name = ref[len(REF_PREFIX) :] if isinstance(ref, str) and ref.startswith(REF_PREFIX) else None
        node = resolve(raw, defs, stack)
        path = f"{prefix}.{name}" if prefix else name
        children = node.get("properties")
        if isinstance(children, dict) and children and ref_name not in stack:
            walk(children, path, defs, out, (*stack, ref_name) if ref_name else stack)
        else:
            out.append(make_fact(path, node, defs))


def build_facts(schema: JSONObj, repo: str, commit: str) -> JSONObj:
    """Return the fact table for ``schema`` (the parsed settings-v1.schema.json)."""
    defs = schema.get("$defs", {})
    if not isinstance(defs, dict):
        raise SchemaError("$defs is not an object")
    root_props = schema.get("properties")
    if not isinstance(root_props, dict):
        raise SchemaError("schema has no top-level properties")
    facts: list[JSONObj] = []
    walk(root_props, "", defs, facts, ())
    facts.sort(key=lambda f: str(f["path"]))
    return {
        "source": {"repo": repo, "path": SCHEMA_REPO_PATH, "commit": commit},
        "properties": facts,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schema", required=True, type=Path, help="local copy of settings-v1.schema.json")
    parser.add_argument("--commit", required=True, help="commit SHA the schema copy was taken from")
    parser.add_argument("--repo", required=True, help="repository the schema came from, e.g. ptone/scion")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        schema = json.loads(args.schema.read_text(encoding="utf-8"))
        if not isinstance(schema, dict):
            raise SchemaError("schema root is not an object")
        facts = build_facts(schema, args.repo, args.commit)
    except (OSError, json.JSONDecodeError, SchemaError) as exc:
        print(f"gen_hub_facts: {exc}", file=sys.stderr)
        return 1
    json.dump(facts, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
