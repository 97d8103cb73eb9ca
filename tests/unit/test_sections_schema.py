"""The section models against the Hub's own section schemas (carried in data/hub_facts.json).

The walk fails on a field of the Hub's schema the models miss, rename or type differently, on an enum looser
than the Hub's, and on a model field the Hub's schema would refuse (bounds are the Hub model's, per generation). Documents are then run through the
Hub's schema itself (the `jsonschema` package, draft 2020-12 as the Hub's library) and through validation.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.sections import MAP_SECTIONS, SECTION_MODELS, Settings
from hubsettings_operator.spec.validation import validate_object

ROOT = Path(__file__).resolve().parents[2]
Schema = dict[str, Any]


def hub_sections() -> dict[str, Schema]:
    return {s["name"]: s["schema"] for s in catalog.facts()["layer1"]["sections"]}


def _deref(node: Schema, defs: Schema) -> Schema:
    while "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    any_of = node.get("anyOf")
    if any_of:
        non_null = [_deref(b, defs) for b in any_of if b.get("type") != "null"]
        if len(non_null) == 1:
            return {**non_null[0], **{k: v for k, v in node.items() if k not in ("anyOf", "default")}}
    return node


def _type(node: Schema) -> str | None:
    typ = node.get("type")
    if typ is None and "enum" in node:
        return "string"
    return typ if isinstance(typ, str) else None


def compare(
    hub: Schema, ours: Schema, defs: Schema, path: str, problems: list[str], bounds: bool = False
) -> None:
    """Append every way `ours` is missing, renamed, differently typed or looser than `hub`."""
    ours = _deref(ours, defs)
    hub_type, our_type = _type(hub), _type(ours)
    if hub_type is not None and hub_type != our_type:
        problems.append(f"{path}: the Hub's type is {hub_type}, ours {our_type}")
        return
    if "enum" in hub and not set(ours.get("enum", [object()])) <= set(hub["enum"]):
        problems.append(f"{path}: enum {ours.get('enum')} is not within the Hub's {hub['enum']}")
    # Bounds, lengths and patterns differ between Hub generations: validation applies the ones of the Hub in
    # use from the facts (spec/hub_model.py); the models hold only what every generation shares.
    if bounds:
        for key, stricter in (
            ("minimum", lambda o, h: o >= h),
            ("maximum", lambda o, h: o <= h),
            ("minLength", lambda o, h: o >= h),
            ("maxLength", lambda o, h: o <= h),
        ):
            if key in hub and not (key in ours and stricter(ours[key], hub[key])):
                problems.append(f"{path}: {key} {ours.get(key)} is looser than the Hub's {hub[key]}")
    hub_props: Schema = hub.get("properties") or {}
    our_props: Schema = ours.get("properties") or {}
    for name, sub in hub_props.items():
        if name not in our_props:
            problems.append(f"{path}.{name}: missing (or renamed) in the models")
        else:
            compare(sub, our_props[name], defs, f"{path}.{name}", problems, bounds)
    if hub.get("additionalProperties") is False:
        for name in our_props:
            if name not in hub_props:
                problems.append(f"{path}.{name}: the Hub's schema refuses this field")
    for name in hub.get("required", []):
        if name not in ours.get("required", []):
            problems.append(f"{path}.{name}: required by the Hub, optional in the models")
    if isinstance(hub.get("items"), dict):
        if not isinstance(ours.get("items"), dict):
            problems.append(f"{path}[]: the Hub types the items, ours does not")
        else:
            compare(hub["items"], ours["items"], defs, f"{path}[]", problems, bounds)
    if isinstance(hub.get("additionalProperties"), dict):
        pattern_values = list((ours.get("patternProperties") or {}).values())
        if not isinstance(ours.get("additionalProperties"), dict) and len(pattern_values) == 1:
            ours = {**ours, "additionalProperties": pattern_values[0]}  # a map whose keys have a pattern
        if not isinstance(ours.get("additionalProperties"), dict):
            problems.append(f"{path}.*: the Hub types the map values, ours does not")
        else:
            compare(
                hub["additionalProperties"], ours["additionalProperties"], defs, f"{path}.*", problems, bounds
            )


def test_the_models_know_exactly_the_hubs_sections() -> None:
    assert list(hub_sections()) == [
        "access",
        "lifecycle",
        "maintenance",
        "messaging",
        "telemetry",
        "auto_expose_ports",
        "quotas",
        "gcp_iam",
        "agent_secrets",
        "agent_defaults",
        "endpoints",
        "github_app",
        "notifications",
        "project_defaults",
        "federation",
        "runtimes",
        "profiles",
        "harness_configs",
        "experiments",
        "artifacts",
        "profiling",
    ]
    assert set(SECTION_MODELS) == set(hub_sections())
    assert set(Settings.model_fields) == set(SECTION_MODELS)


@pytest.mark.parametrize("section", sorted(SECTION_MODELS))
def test_every_field_of_the_hubs_section_schema_is_typed_in_the_models(section: str) -> None:
    ours = SECTION_MODELS[section].model_json_schema()
    problems: list[str] = []
    compare(hub_sections()[section], ours, ours.get("$defs", {}), section, problems)
    assert problems == []


def test_the_walk_catches_a_missing_a_retyped_and_a_loosened_field() -> None:
    ours = SECTION_MODELS["messaging"].model_json_schema()
    hub = copy.deepcopy(hub_sections()["messaging"])
    hub["properties"]["new_switch"] = {"type": "boolean"}
    hub["properties"]["offload_threshold_runes"]["minimum"] = 10
    hub["properties"]["cross_project_messaging_enabled"] = {"type": "string"}
    problems: list[str] = []
    compare(hub, ours, {}, "messaging", problems, bounds=True)
    assert any("new_switch: missing" in p for p in problems)
    assert any("offload_threshold_runes: minimum 0 is looser" in p for p in problems)
    assert any("cross_project_messaging_enabled: the Hub's type is string" in p for p in problems)


def full_example() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples/full.yaml").read_text())
    return doc


def hub_errors(section: str, document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(hub_sections()[section])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_full_example_lists_every_section_and_the_hub_accepts_every_document_written() -> None:
    report = validate_object(full_example(), "examples/full.yaml")
    assert report.ok, report.summary()
    assert report.resource is not None
    settings = report.resource.spec.settings
    assert set(settings.listed()) == set(SECTION_MODELS)
    for section, document in catalog.section_documents(settings).items():
        assert hub_errors(section, document) == [], section


# Documents the Hub's write path refuses: the operator must refuse them too, naming the field.
REFUSED: list[tuple[str, Any, str]] = [
    ("quotas", {"bogus_field": 1}, "spec.settings.quotas.bogus_field"),
    (
        "messaging",
        {"cross_project_messaging_enabled": "yes"},
        "spec.settings.messaging.cross_project_messaging_enabled",
    ),
    ("messaging", {"offload_threshold_runes": -1}, "spec.settings.messaging.offload_threshold_runes"),
    ("artifacts", {"max_file_bytes": 0}, "spec.settings.artifacts.max_file_bytes"),
    ("artifacts", {"max_files": 1.5}, "spec.settings.artifacts.max_files"),
    ("experiments", {"overrides": {"NotAName": True}}, "spec.settings.experiments.overrides"),
    (
        "experiments",
        {"overrides": {"hub.artifacts": "on"}},
        'spec.settings.experiments.overrides["hub.artifacts"]',
    ),
    ("harness_configs", {"claude": {"image": "x"}}, "spec.settings.harness_configs.claude.harness"),
    ("federation", {"refresh_interval": 0}, "spec.settings.federation.refresh_interval"),
    ("federation", {"algorithms": ["HS256"]}, "spec.settings.federation.algorithms[0]"),
    (
        "federation",
        {"trusted_issuers": [{"jwks_url": "x"}]},
        "spec.settings.federation.trusted_issuers[0].issuer_url",
    ),
    ("runtimes", {"k8s": {"namespace": "Not_A_Label"}}, "spec.settings.runtimes.k8s.namespace"),
    (
        "profiles",
        {"p": {"harness_overrides": {"c": {"image_pull_policy": "Sometimes"}}}},
        "spec.settings.profiles.p.harness_overrides.c.image_pull_policy",
    ),
    ("agent_defaults", {"default_agent_role": "admin"}, "spec.settings.agent_defaults.default_agent_role"),
    ("access", {"default_user_role": "admin"}, "spec.settings.access.default_user_role"),
    ("endpoints", {"hub_name": "Hub One"}, "spec.settings.endpoints.hub_name"),
    ("agent_secrets", {"user_scope_only": 1}, "spec.settings.agent_secrets.user_scope_only"),
    ("auto_expose_ports", {"enabled": "true"}, "spec.settings.auto_expose_ports.enabled"),
    ("project_defaults", {"default_scratchpad": None, "x": 1}, "spec.settings.project_defaults.x"),
    ("github_app", {"private_key": "-----BEGIN"}, "spec.settings.github_app.private_key"),
]


@pytest.mark.parametrize(("section", "document", "path"), REFUSED, ids=[f"{r[0]}-{r[2]}" for r in REFUSED])
def test_documents_the_hub_refuses_are_refused_with_their_field_path(
    section: str, document: Any, path: str, manifest: dict[str, Any]
) -> None:
    hub_document = {k: v for k, v in document.items() if v is not None}
    assert hub_errors(section, hub_document), "the Hub's schema accepts it: the case proves nothing"
    manifest["spec"]["settings"] = {section: document}
    report = validate_object(manifest)
    assert not report.ok
    assert any(e.path.startswith(path) for e in report.errors), [str(e) for e in report.errors]
    assert all(e.reason for e in report.errors)


def test_artifacts_cross_field_rules_use_the_hubs_defaults(manifest: dict[str, Any]) -> None:
    # The Hub's schema accepts it, but its Resolve fails closed (800 > the default max TTL of 720): the
    # operator refuses it rather than write a section the Hub would mark malformed.
    manifest["spec"]["settings"] = {"artifacts": {"link_default_ttl_hours": 800}}
    assert hub_errors("artifacts", {"link_default_ttl_hours": 800}) == []
    report = validate_object(manifest)
    assert not report.ok and "link_max_ttl_hours" in report.summary()
    manifest["spec"]["settings"] = {"artifacts": {"link_default_ttl_hours": 800, "link_max_ttl_hours": 900}}
    assert validate_object(manifest).ok


def test_map_sections_are_typed_maps_of_entries(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"] = {
        "runtimes": {"k8s": {"type": "kubernetes", "namespace": "agents"}, "local": {"type": "docker"}},
        "harness_configs": {"claude": {"harness": "claude", "args": ["--verbose"]}},
        "profiles": {"prod": {"runtime": "k8s", "volumes": [{"target": "/cache"}]}},
    }
    report = validate_object(manifest)
    assert report.ok, report.summary()
    assert report.resource is not None
    docs = catalog.section_documents(report.resource.spec.settings)
    assert docs["runtimes"] == {
        "k8s": {"type": "kubernetes", "namespace": "agents"},
        "local": {"type": "docker"},
    }
    assert docs["profiles"] == {"prod": {"runtime": "k8s", "volumes": [{"target": "/cache"}]}}
    for section in MAP_SECTIONS:
        assert hub_errors(section, docs[section]) == []


def test_known_sections_in_extra_settings_are_refused_and_unknown_ones_reported(
    manifest: dict[str, Any],
) -> None:
    manifest["spec"]["extraSettings"] = {"quotas": {"bogus_field": 1}}
    report = validate_object(manifest)
    [error] = report.errors
    assert error.path == "spec.extraSettings.quotas" and "spec.settings.quotas" in error.hint
    manifest["spec"]["extraSettings"] = {"chat_bridge": True}
    [error] = validate_object(manifest).errors
    assert "must be a JSON object" in error.reason
    manifest["spec"]["extraSettings"] = {"chat_bridge": {"enabled": True}, "zz_new": {}}
    report = validate_object(manifest)
    assert report.ok and report.unvalidated_sections == ["chat_bridge", "zz_new"]
