#!/usr/bin/env python3
"""Generate the Hub settings fact table from a copy of Scion's settings-v1.schema.json.

Two tables come out:

* ``properties``: every settings.yaml key (see below);
* ``sections``: the JSON Schema of each of the Hub's Layer 1 section documents, as the Hub compiles it on its
  write path (``pkg/config/opsettings/registry.go``, ``compileSchemas``): a few sections are hand-written in
  that Go file, the others are properties of the root schema picked by path. ``SECTION_RULES`` below restates
  those rules as data (registry.go is code, so it cannot be read as data); each schema is written
  self-contained (local ``$ref``s inlined, as the Hub's ``SchemaInfo`` serves them), so tests can run a
  document through it with the ``jsonschema`` package.

The Scion Hub documents every settings.yaml key in ``pkg/config/schemas/settings-v1.schema.json``:
type, enum, default, constraints and, through the ``x-env-var`` / ``x-env-var-alias`` annotations,
the environment variables that set it. This script flattens that schema into a sorted list of leaf
properties keyed by their dotted koanf path (``server.hub.admin_emails``) so that the operator can
ship the facts as data without shipping a copy of the upstream file.

Usage::

    python hack/gen_hub_facts.py --schema /tmp/research/settings-v1.schema.json \\
        --repo ptone/scion --commit <sha> > operator/hubsettings_operator/data/hub_facts.json

``--properties-from FILE`` keeps the ``properties`` table of an earlier run and rebuilds only ``sections``
(for a schema copy that holds only what the sections use). Review the diff of ``SECTION_RULES`` against
registry.go of the new commit whenever the commit changes: a section or field the rules do not name is
missing from the output, and ``tests/unit/test_catalog.py`` then fails on the models.

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

Over 400 lines: one generator reads the Hub's Go sources and schemas end to end; splitting it would only move
its intermediate tables between files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emit_json import emit

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


# ---- Layer 1 section schemas (pkg/config/opsettings/registry.go) ---------------------------------------

REGISTRY_PATH = "pkg/config/opsettings/registry.go"
# The Hub compiles section schemas with github.com/santhosh-tekuri/jsonschema/v6 (draft 2020-12 by the root
# schema's $schema). registry.go never calls AssertFormat, so `format` is an annotation there, not a check.
SCHEMA_LIBRARY = {
    "name": "github.com/santhosh-tekuri/jsonschema/v6",
    "draft": "2020-12",
    "asserts_format": False,
}

# pkg/experiments/registry.go: NamePattern, and the compiled and retired experiment names.
EXPERIMENT_NAME_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
EXPERIMENTS_KNOWN = [
    "hub.artifacts",
    "hub.conduit",
    "hub.k8s_nfs_home",
    "web.gcs_links",
    "web.terminal_workspace",
]
EXPERIMENTS_RETIRED = ["web.access_boundaries_authoring", "web.access_boundaries_read"]

# registry.go constants (dns1123SubdomainOrEmptyPattern, dns1123LabelOrEmptyPattern).
_DNS1123_SUBDOMAIN_OR_EMPTY = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS1123_LABEL_OR_EMPTY = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SHARED_DIR_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"  # config.SharedDirNamePattern
_STR: JSONObj = {"type": "string"}
_BOOL: JSONObj = {"type": "boolean"}
_STR_MAP: JSONObj = {"type": "object", "additionalProperties": {"type": "string"}}
_STORAGE_BACKEND: JSONObj = {"type": "string", "enum": ["", "local", "nfs"]}
_HOME_LEAF: JSONObj = {"type": "string", "enum": ["", "pod", "broker"]}
_PULL_POLICY: JSONObj = {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]}
_KSA_MAPPINGS: JSONObj = {
    "type": "object",
    "propertyNames": {
        "pattern": r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+gserviceaccount\.com$"
    },
    "additionalProperties": {
        "type": "string",
        "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        "maxLength": 253,
    },
}
_SHARED_DIR_BACKENDS: JSONObj = {
    "type": "object",
    "propertyNames": {"pattern": _SHARED_DIR_NAME},
    "additionalProperties": {"type": "string", "enum": ["local", "nfs"]},
}
_STORAGE_FIELDS: JSONObj = {
    "shared_dir_storage_class": _STR,
    "shared_dir_size": _STR,
    "safe_to_evict": _BOOL,
    "shared_dir_storage_backend": _STORAGE_BACKEND,
    "shared_dir_storage_backends": _SHARED_DIR_BACKENDS,
    "home_storage_backend": _STORAGE_BACKEND,
    "home_storage_leaf": _HOME_LEAF,
    "kubernetes_service_account_mappings": _KSA_MAPPINGS,
}


def _closed(properties: JSONObj, **extra: Any) -> JSONObj:
    return {"type": "object", "properties": properties, **extra, "additionalProperties": False}


# The lifecycle section's keys under server.hub: both its key list and its property map are made from these.
_LIFECYCLE_KNOBS = (
    "auto_suspend_stalled",
    "stalled_threshold",
    "soft_delete_retention",
    "soft_delete_retain_files",
    "start_claim_lease_ttl",
    "start_max_duration",
    "start_unconfirmed_hold",
    "start_create_unconfirmed_hold",
)

# The agent_defaults keys taken whole from the root schema, before and after the two it types itself.
_AGENT_DEFAULTS_FIRST = (
    "default_template",
    "default_harness_config",
    "default_max_turns",
    "default_max_model_calls",
    "default_max_duration",
    "default_resources",
)
_AGENT_DEFAULTS_LAST = (
    "default_max_agent_role",
    "default_agent_role",
    "default_runtime_broker",
    "default_timezone",
    "default_gcp_identity_mode",
    "default_gcp_identity_service_account_id",
)

# One rule per section, in registry.go's order. A rule is either a schema (hand-written in registry.go) or a
# property map whose values are root-schema paths (getSchemaProperty) or schemas; ("root", path) takes a root
# property whole (schemaObject); "without" drops properties (withoutProperties); "string_intervals" keeps the
# string branch of the federation intervals (withStringOnlyIntervals).
SECTION_RULES: list[tuple[str, list[str] | None, JSONObj]] = [
    (
        "access",
        [
            "server.hub.admin_emails",
            "server.auth.user_access_mode",
            "server.auth.default_user_role",
            "server.auth.authorized_domains",
        ],
        {
            "props": {
                "admin_emails": ("server", "hub", "admin_emails"),
                "user_access_mode": ("server", "auth", "user_access_mode"),
                "default_user_role": ("server", "auth", "default_user_role"),
                "authorized_domains": ("server", "auth", "authorized_domains"),
            }
        },
    ),
    (
        "lifecycle",
        [f"server.hub.{n}" for n in _LIFECYCLE_KNOBS],
        {"props": {n: ("server", "hub", n) for n in _LIFECYCLE_KNOBS}},
    ),
    ("maintenance", None, {"schema": _closed({"admin_mode": _BOOL, "maintenance_message": _STR})}),
    (
        "messaging",
        None,
        {
            "schema": _closed(
                {
                    "conversation_envelope_switch": _BOOL,
                    "cross_project_messaging_enabled": _BOOL,
                    "offload_threshold_runes": {"type": "integer", "minimum": 0},
                }
            )
        },
    ),
    (
        "telemetry",
        [
            "telemetry.enabled",
            "telemetry.cloud",
            "telemetry.cloud.enabled",
            "telemetry.cloud.endpoint",
            "telemetry.cloud.protocol",
            "telemetry.cloud.headers",
            "telemetry.cloud.provider",
            "telemetry.cloud.tls",
            "telemetry.cloud.tls.enabled",
            "telemetry.cloud.tls.insecure_skip_verify",
            "telemetry.cloud.tls.ca_file",
            "telemetry.cloud.batch",
            "telemetry.cloud.batch.max_size",
            "telemetry.cloud.batch.timeout",
            "telemetry.hub",
            "telemetry.hub.enabled",
            "telemetry.hub.report_interval",
            "telemetry.local",
            "telemetry.local.enabled",
            "telemetry.local.file",
            "telemetry.local.console",
            "telemetry.filter",
            "telemetry.filter.enabled",
            "telemetry.filter.respect_debug_mode",
            "telemetry.filter.events",
            "telemetry.filter.events.include",
            "telemetry.filter.events.exclude",
            "telemetry.filter.attributes",
            "telemetry.filter.attributes.redact",
            "telemetry.filter.attributes.hash",
            "telemetry.filter.sampling",
            "telemetry.filter.sampling.default",
            "telemetry.filter.sampling.rates",
            "telemetry.resource",
        ],
        {"def": "telemetryConfig"},
    ),
    ("auto_expose_ports", ["auto_expose_ports.enabled"], {"root": ("auto_expose_ports",)}),
    ("quotas", ["quotas.enforce_broker_quotas"], {"root": ("quotas",)}),
    ("agent_secrets", ["agent_secrets.user_scope_only"], {"root": ("agent_secrets",)}),
    (
        "agent_defaults",
        [*_AGENT_DEFAULTS_FIRST, "default_model", "default_thinking_level", *_AGENT_DEFAULTS_LAST],
        {
            "props": {
                **{n: (n,) for n in _AGENT_DEFAULTS_FIRST},
                "default_model": _STR,
                "default_thinking_level": {"type": "integer"},
                **{n: (n,) for n in _AGENT_DEFAULTS_LAST},
            }
        },
    ),
    (
        "endpoints",
        ["server.hub.public_url", "server.hub.hub_name", "image_registry"],
        {
            "props": {
                "public_url": ("server", "hub", "public_url"),
                "hub_name": ("server", "hub", "hub_name"),
                "image_registry": ("image_registry",),
            }
        },
    ),
    (
        "github_app",
        [
            "server.github_app",
            "server.github_app.app_id",
            "server.github_app.api_base_url",
            "server.github_app.webhooks_enabled",
            "server.github_app.installation_url",
            "server.github_app.private_key_path",
        ],
        {"root": ("server", "github_app"), "without": ["private_key", "webhook_secret"]},
    ),
    (
        "notifications",
        ["server.notification_channels"],
        {
            "schema": _closed(
                {
                    "notification_channels": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "type": _STR,
                                "params": _STR_MAP,
                                "filter_types": {"type": "array", "items": _STR},
                                "filter_urgent_only": _BOOL,
                            },
                            "required": ["type"],
                        },
                    }
                }
            )
        },
    ),
    ("project_defaults", ["project_defaults.default_scratchpad"], {"root": ("project_defaults",)}),
    (
        "federation",
        [
            f"server.federation.{n}"
            for n in ("enabled", "trusted_issuers", "algorithms", "refresh_interval", "debounce_interval")
        ],
        {"root": ("server", "federation"), "string_intervals": True},
    ),
    (
        "runtimes",
        ["runtimes"],
        {
            "schema": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "type": _STR,
                        "host": _STR,
                        "context": _STR,
                        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS1123_LABEL_OR_EMPTY},
                        "env": _STR_MAP,
                        "sync": _STR,
                        "gke": _BOOL,
                        "list_all_namespaces": _BOOL,
                        "priority_class_name": {
                            "type": "string",
                            "maxLength": 253,
                            "pattern": _DNS1123_SUBDOMAIN_OR_EMPTY,
                        },
                        "cloudrun": {"type": "object"},
                        **_STORAGE_FIELDS,
                    },
                },
            }
        },
    ),
    (
        "profiles",
        ["profiles"],
        {
            "schema": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "runtime": _STR,
                        "default_template": _STR,
                        "default_harness_config": _STR,
                        "image_registry": _STR,
                        "env": _STR_MAP,
                        "volumes": {"type": "array"},
                        "resources": {"type": "object"},
                        "harness_overrides": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {
                                    "image": _STR,
                                    "image_pull_policy": _PULL_POLICY,
                                    "user": _STR,
                                    "env": _STR_MAP,
                                    "volumes": {"type": "array"},
                                    "resources": {"type": "object"},
                                    "auth_selected_type": _STR,
                                },
                            },
                        },
                        "secrets": {"type": "array"},
                        **_STORAGE_FIELDS,
                    },
                },
            }
        },
    ),
    (
        "harness_configs",
        ["harness_configs"],
        {
            "schema": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["harness"],
                    "properties": {
                        "name": _STR,
                        "harness": _STR,
                        "image": _STR,
                        "image_pull_policy": _PULL_POLICY,
                        "user": _STR,
                        "model": _STR,
                        "task_flag": _STR,
                        "args": {"type": "array", "items": _STR},
                        "env": _STR_MAP,
                        "volumes": {"type": "array"},
                        "auth_selected_type": _STR,
                        "secrets": {"type": "array"},
                        "model_aliases": _STR_MAP,
                    },
                },
            }
        },
    ),
    (
        "experiments",
        None,
        {
            "schema": _closed(
                {
                    "overrides": {
                        "type": "object",
                        "patternProperties": {EXPERIMENT_NAME_PATTERN: _BOOL},
                        "additionalProperties": False,
                    }
                }
            )
        },
    ),
    (
        "artifacts",
        None,
        {
            "schema": _closed(
                {
                    "enabled": _BOOL,
                    "max_file_bytes": {"type": "integer", "minimum": 1},
                    "max_bundle_bytes": {"type": "integer", "minimum": 1},
                    "max_files": {"type": "integer", "minimum": 1},
                    "default_retention_days": {"type": "integer", "minimum": 0},
                    "link_default_ttl_hours": {"type": "integer", "minimum": 1},
                    "link_max_ttl_hours": {"type": "integer", "minimum": 1},
                }
            )
        },
    ),
]


def schema_property(root: JSONObj, path: tuple[str, ...]) -> JSONObj:
    """registry.go getSchemaProperty: walk `properties`, resolving a `$ref` at each step."""
    defs = root.get("$defs", {})
    current = root
    for i, seg in enumerate(path):
        props = current.get("properties")
        if not isinstance(props, dict) or seg not in props:
            raise SchemaError(f"root schema has no property {'.'.join(path[: i + 1])}")
        val = props[seg]
        if i == len(path) - 1:
            if isinstance(val, dict) and isinstance(val.get("$ref"), str):
                return dict(defs[val["$ref"][len(REF_PREFIX) :]])
            return dict(val)
        current = resolve(val, defs)
    raise SchemaError("empty path")


def inline_refs(node: Any, defs: JSONObj, stack: tuple[str, ...] = ()) -> Any:
    """registry.go inlineRefs: a deep copy with local `$ref`s replaced by their definition (siblings win)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX) and ref not in stack:
            target = defs.get(ref[len(REF_PREFIX) :])
            if isinstance(target, dict):
                out = dict(inline_refs(target, defs, (*stack, ref)))
                out.update({k: inline_refs(v, defs, stack) for k, v in node.items() if k != "$ref"})
                return out
        return {k: inline_refs(v, defs, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, defs, stack) for v in node]
    return node


def _string_only_intervals(node: JSONObj) -> JSONObj:
    out = dict(node)
    props = dict(out.get("properties", {}))
    for key in ("refresh_interval", "debounce_interval"):
        prop = props.get(key)
        if not isinstance(prop, dict):
            continue
        for branch in prop.get("anyOf", []) or []:
            if isinstance(branch, dict) and branch.get("type") == "string":
                repl = dict(branch)
                if "description" in prop:
                    repl["description"] = prop["description"]
                props[key] = repl
    out["properties"] = props
    return out


def build_section(root: JSONObj, rule: JSONObj) -> JSONObj:
    defs = root.get("$defs", {})
    if "schema" in rule:
        schema: JSONObj = rule["schema"]
    elif "def" in rule:
        schema = dict(defs[rule["def"]])
    elif "root" in rule:
        schema = schema_property(root, rule["root"])
        if rule.get("without"):
            schema["properties"] = {
                k: v for k, v in schema.get("properties", {}).items() if k not in rule["without"]
            }
        if rule.get("string_intervals"):
            schema = _string_only_intervals(schema)
    else:
        props = {
            name: schema_property(root, spec) if isinstance(spec, tuple) else spec
            for name, spec in rule["props"].items()
        }
        schema = _closed(props)
    inlined: JSONObj = inline_refs(schema, defs)
    return inlined


def build_sections(schema: JSONObj, repo: str, commit: str) -> JSONObj:
    return {
        "source": {"repo": repo, "path": REGISTRY_PATH, "commit": commit},
        "library": SCHEMA_LIBRARY,
        "sections": [
            {"name": name, "koanf_paths": paths or [], "schema": build_section(schema, rule)}
            for name, paths, rule in SECTION_RULES
        ],
        "experiments": {
            "name_pattern": EXPERIMENT_NAME_PATTERN,
            "known": EXPERIMENTS_KNOWN,
            "retired": EXPERIMENTS_RETIRED,
        },
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schema", required=True, type=Path, help="local copy of settings-v1.schema.json")
    parser.add_argument("--commit", required=True, help="commit SHA the schema copy was taken from")
    parser.add_argument("--repo", required=True, help="repository the schema came from, e.g. ptone/scion")
    parser.add_argument(
        "--properties-from",
        type=Path,
        default=None,
        help="keep the properties table of this earlier output; rebuild only the section schemas",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def build() -> JSONObj:
        schema = json.loads(args.schema.read_text(encoding="utf-8"))
        if not isinstance(schema, dict):
            raise SchemaError("schema root is not an object")
        if args.properties_from is not None:
            previous = json.loads(args.properties_from.read_text(encoding="utf-8"))
            facts = {"source": previous["source"], "properties": previous["properties"]}
        else:
            facts = build_facts(schema, args.repo, args.commit)
        facts["layer1"] = build_sections(schema, args.repo, args.commit)
        return facts

    return emit("gen_hub_facts", build, (OSError, json.JSONDecodeError, SchemaError, KeyError))


if __name__ == "__main__":
    sys.exit(main())
