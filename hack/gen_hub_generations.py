#!/usr/bin/env python3
"""Add the Hub's generations to the fact table: Go field types, Layer 0 prefixes, the newest section registry.

`hack/gen_hub_facts.py` turns a copy of `settings-v1.schema.json` into the `properties` table and the section
schemas of one Hub source (ptone/scion@591e24c, 19 sections). This script reads local copies of the Hub's Go
files and writes `data/hub_facts.json` with one block per **Hub generation** the operator supports:

* the older generation: the section schemas of the previous run, kept as they are, with its Layer 0 prefixes
  (`koanf.go`) and the Go type of each top-level field;
* the newest generation: the sections and koanf paths parsed from `registry.go`'s `Registry`, the Go types
  parsed from `sections.go`'s section structs, the Layer 0 prefixes parsed from `koanf.go`'s `layer0Prefixes`,
  and the section schemas: the older generation's, changed by the rules in `NEWEST_SCHEMA_RULES` (restated
  from `compileSchemas` in registry.go, which is code, so it cannot be read as data).

The top-level `layer1` block is the newest generation (what the catalog, the CRD and the docs follow).

Usage (the Go files are copies saved under a temporary directory, never committed)::

    python hack/gen_hub_generations.py --previous operator/hubsettings_operator/data/hub_facts.json \\
        --src /tmp/hubsrc/ptone-scion --repo ptone/scion \\
        --registry-commit 1f1ac1d1... --koanf-commit 27d000d6... --older-koanf-commit b508ce57... \\
        > /tmp/hub_facts.json && mv /tmp/hub_facts.json operator/hubsettings_operator/data/hub_facts.json

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from emit_json import emit

JSONObj = dict[str, Any]

REGISTRY = "pkg/config/opsettings/registry.go"
SECTIONS = "pkg/config/opsettings/sections.go"
KOANF = "pkg/config/opsettings/koanf.go"
OLDER_ID = "591e24c"
NEWEST_ID = "1f1ac1d1"
# The Hub release each generation starts at (spec.hubVersion picks the generation). Both sources are untagged
# development commits after v0.2.21, the newest tag we could read: 591e24c is taken as the next release
# (0.2.22, as spec/versions.py has it), 1f1ac1d1 as the one after. Correct these once the releases are tagged.
GENERATION_SINCE = {OLDER_ID: "0.2.4", NEWEST_ID: "0.2.23"}

UNPERSISTED = "pkg/hub/admin_settings_db_unpersisted.go"
# Where a field the Hub never applies from a table row (dbUnwrittenLayer1Paths, parsed below) can be set
# instead, for the refusal message. A parsed field without an entry here gets the generic text.
NOT_APPLIED_HINTS = {
    "agent_defaults.default_max_agent_role": "each project's own max agent role (a database-backed Hub neither "
    "writes, reports nor applies the hub-wide default; its admin API refuses it too)",
    "agent_defaults.default_agent_role": "the agent create request or the project (a database-backed Hub "
    "neither writes, reports nor applies the hub-wide default; its admin API refuses it too)",
}
NOT_APPLIED_GENERIC = "nothing: a database-backed Hub does not apply it (its admin API refuses it too)"

# pkg/hub/gcp_iam_settings.go: the values each key may take, which value is the less strict one, and the audit
# row a replica needs before it applies a loosening change read from the table.
GCP_IAM_RULE = {
    "section": "gcp_iam",
    "loose": {"gcp_iam_check_mode": "off", "gcp_iam_deny_unknown_policy": "fail-open"},
    "strict": {"gcp_iam_check_mode": "enforce", "gcp_iam_deny_unknown_policy": "fail-closed"},
    "audit_table": "mutation_audits",
    "audit_mutation": "hub_setting_update",
    "refused_mutation": "hub_setting_apply_refused",
    "admin_api": "PUT /api/v1/admin/server-config",
}

_INT = {"type": "integer"}


def _closed(props: JSONObj) -> JSONObj:
    return {"type": "object", "properties": props, "additionalProperties": False}


class SourceError(Exception):
    """A Go file does not have the shape this script reads."""


def read_src(root: Path, commit: str, path: str) -> str:
    return (root / commit / path).read_text(encoding="utf-8")


def parse_layer0(text: str) -> list[str]:
    """koanf.go: the strings of `var layer0Prefixes = []string{...}`, in order."""
    match = re.search(r"var layer0Prefixes = \[\]string\{(.*?)\n\}", text, re.S)
    if match is None:
        raise SourceError("no layer0Prefixes in koanf.go")
    body = "\n".join(line.split("//", 1)[0] for line in match[1].splitlines())
    return re.findall(r'"([^"]+)"', body)


def parse_registry(text: str) -> list[tuple[str, list[str], str]]:
    """registry.go: (name, koanf paths, Go struct) of each Registry entry, in order."""
    out = []
    for match in re.finditer(
        r'Name:\s*"(\w+)",\s*KoanfPaths:\s*(nil|\[\]string\{(.*?)\}),\s*New:\s*func\(\) any \{(.*?)\}',
        text,
        re.S,
    ):
        paths = re.findall(r'"([^"]+)"', match[3] or "")
        struct = re.search(r"(\w+Settings)", match[4])
        if struct is None:
            raise SourceError(f"no struct for section {match[1]}")
        out.append((match[1], paths, struct[1]))
    if not out:
        raise SourceError("no Registry entries in registry.go")
    return out


def parse_structs(text: str) -> dict[str, dict[str, str]]:
    """sections.go: struct name -> {json field: Go type} (pointer stars dropped: nil is "absent")."""
    structs: dict[str, dict[str, str]] = {}
    for match in re.finditer(r"type (\w+) struct \{(.*?)\n\}", text, re.S):
        fields: dict[str, str] = {}
        for line in match[2].splitlines():
            field = re.match(r'\s*\w+\s+(\S+)\s+`json:"([^",]+)', line)
            if field:
                fields[field[2]] = field[1].lstrip("*")
        structs[match[1]] = fields
    return structs


def parse_constants(text: str) -> dict[str, Any]:
    """sections.go: integer constants and string-slice variables the registry's schemas use."""
    out: dict[str, Any] = {}
    for name, value in re.findall(r"^\s*(\w+)\s*=\s*(-?\d+)\s*$", text, re.M):
        out[name] = int(value)
    for name, body in re.findall(r"^\s*(\w+)\s*=\s*\[\]string\{([^}]*)\}", text, re.M):
        out[name] = re.findall(r'"([^"]*)"', body)
    return out


def parse_unwritten(text: str, registry: list[tuple[str, list[str], str]]) -> list[str]:
    """admin_settings_db_unpersisted.go: the section fields of `dbUnwrittenLayer1Paths` (a one-segment path is
    a top-level koanf key; longer ones are request shapes, not section fields)."""
    match = re.search(r"var dbUnwrittenLayer1Paths = \[\]\[\]string\{(.*?)\n\}", text, re.S)
    if match is None:
        raise SourceError("no dbUnwrittenLayer1Paths in admin_settings_db_unpersisted.go")
    owner = {path: name for name, paths, _struct in registry for path in paths}
    out = []
    for body in re.findall(r"\{([^{}]*)\}", match[1]):
        parts = re.findall(r'"([^"]+)"', body)
        if len(parts) == 1 and parts[0] in owner:
            out.append(f"{owner[parts[0]]}.{parts[0]}")
    return out


def go_types(registry: list[tuple[str, list[str], str]], structs: dict[str, dict[str, str]]) -> JSONObj:
    """section -> {field: Go type} for the sections whose struct is declared in sections.go (map sections and
    embedded config structs have none here: their values follow the schema's JSON types)."""
    return {name: structs[struct] for name, _paths, struct in registry if structs.get(struct)}


def newest_schemas(
    older: dict[str, JSONObj], properties: dict[str, JSONObj], consts: dict[str, Any]
) -> JSONObj:
    """registry.go compileSchemas at the newest commit, as changes to the older generation's schemas."""
    out = copy.deepcopy(older)
    thinking = {k: v for k, v in properties["default_thinking_level"].items() if k in ("minimum", "maximum")}
    out["agent_defaults"]["properties"]["default_thinking_level"] = {
        "type": "integer",
        **thinking,
        "description": properties["default_thinking_level"]["description"],
    }
    # server.hub.monitoring_dashboard_url: the settings schema at that commit is not in the source index; its
    # maxLength is config.MonitoringDashboardURLMaxLength, its other checks (absolute http(s) URL with a host,
    # no user info, no whitespace or control characters) are config.ValidateMonitoringDashboardURL's.
    out["endpoints"]["properties"]["monitoring_dashboard_url"] = {
        "type": "string",
        "maxLength": 2048,
        "x-hub-check": "config.ValidateMonitoringDashboardURL",
    }
    out["profiles"]["additionalProperties"]["properties"]["clone_depth"] = {
        "type": "integer",
        "minimum": 0,
        "x-hub-check": "profileConfig.clone_depth (settings schema not in the source index)",
    }
    out["gcp_iam"] = _closed(
        {
            "gcp_iam_check_mode": {"type": "string", "enum": consts["GCPIAMCheckModes"]},
            "gcp_iam_deny_unknown_policy": {"type": "string", "enum": consts["GCPIAMDenyUnknownPolicies"]},
        }
    )
    out["profiling"] = _closed({"readiness_marks": {"type": "boolean"}})
    budget = consts["ArtifactsMaxRemoteImageTotalBudgetS"]
    out["artifacts"]["properties"].update(
        {
            "gc_grace_hours": {"type": "integer", "minimum": consts["ArtifactsMinGCGraceHours"]},
            "remote_images_enabled": {"type": "boolean"},
            "remote_image_max_count": {"type": "integer", "minimum": 1},
            "remote_image_max_bytes": {"type": "integer", "minimum": 1},
            "remote_image_fetch_timeout_s": {"type": "integer", "minimum": 1, "maximum": budget},
            "remote_image_total_budget_s": {"type": "integer", "minimum": 1, "maximum": budget},
        }
    )
    return out


def generation_block(
    gen_id: str,
    repo: str,
    commits: JSONObj,
    sections: list[tuple[str, list[str]]],
    schemas: dict[str, JSONObj],
    types: JSONObj,
    layer0: list[str],
    base: JSONObj,
    not_applied: list[str],
) -> JSONObj:
    return {
        "id": gen_id,
        "since": GENERATION_SINCE[gen_id],
        "source": {"repo": repo, "path": REGISTRY, "commit": commits["sections"], "commits": commits},
        "library": base["library"],
        "experiments": base["experiments"],
        "sections": [
            {"name": name, "koanf_paths": paths, "schema": schemas[name], "go_types": types.get(name, {})}
            for name, paths in sections
        ],
        "layer0_prefixes": layer0,
        "not_applied_from_table": {
            key: NOT_APPLIED_HINTS.get(key, NOT_APPLIED_GENERIC) for key in not_applied
        },
        "gcp_iam": GCP_IAM_RULE if any(n == "gcp_iam" for n, _ in sections) else None,
    }


def build(args: argparse.Namespace) -> JSONObj:
    previous = json.loads(args.previous.read_text(encoding="utf-8"))
    older_layer1 = previous["generations"][0] if "generations" in previous else previous["layer1"]
    older_schemas = {s["name"]: s["schema"] for s in older_layer1["sections"]}
    properties = {p["path"]: p for p in previous["properties"]}
    registry = parse_registry(read_src(args.src, args.registry_commit, REGISTRY))
    sections_go = read_src(args.src, args.registry_commit, SECTIONS)
    structs, consts = parse_structs(sections_go), parse_constants(sections_go)
    types = go_types(registry, structs)
    older_types = {
        s["name"]: {
            f: t for f, t in types.get(s["name"], {}).items() if f in s["schema"].get("properties", {})
        }
        for s in older_layer1["sections"]
    }
    older = generation_block(
        OLDER_ID,
        args.repo,
        {
            "sections": older_layer1["source"].get("commit") or older_layer1["source"]["commits"]["sections"],
            "layer0": args.older_koanf_commit,
            "go_types": args.registry_commit,
        },
        [(s["name"], s["koanf_paths"]) for s in older_layer1["sections"]],
        older_schemas,
        older_types,
        parse_layer0(read_src(args.src, args.older_koanf_commit, KOANF)),
        older_layer1,
        [],  # admin_settings_db_unpersisted.go is newer than this generation
    )
    newest = generation_block(
        NEWEST_ID,
        args.repo,
        {
            "sections": args.registry_commit,
            "layer0": args.koanf_commit,
            "go_types": args.registry_commit,
            "not_applied": args.koanf_commit,
        },
        [(name, paths) for name, paths, _struct in registry],
        newest_schemas(older_schemas, properties, consts),
        types,
        parse_layer0(read_src(args.src, args.koanf_commit, KOANF)),
        older_layer1,
        parse_unwritten(read_src(args.src, args.koanf_commit, UNPERSISTED), registry),
    )
    return {
        "source": previous["source"],
        "properties": previous["properties"],
        "layer1": newest,
        "generations": [older, newest],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--previous", required=True, type=Path, help="an earlier hub_facts.json")
    parser.add_argument("--src", required=True, type=Path, help="directory of <commit>/<path> Go file copies")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--registry-commit", required=True, help="commit of registry.go and sections.go")
    parser.add_argument(
        "--koanf-commit",
        required=True,
        help="commit of the newest koanf.go and admin_settings_db_unpersisted.go",
    )
    parser.add_argument("--older-koanf-commit", required=True, help="commit of the older koanf.go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return emit(
        "gen_hub_generations", lambda: build(args), (OSError, json.JSONDecodeError, SourceError, KeyError)
    )


if __name__ == "__main__":
    sys.exit(main())
