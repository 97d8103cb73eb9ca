"""Faithful to the Hub that runs: what each Hub generation accepts, Go's duration grammar, the live Hub's
version and schema (issue 21)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from hubsettings_operator.spec import operator_rules, versions
from hubsettings_operator.spec.goduration import parse_duration
from hubsettings_operator.spec.live_schema import LiveSchemaError, parse_schema_response
from hubsettings_operator.spec.section_registry import REGISTRY
from hubsettings_operator.spec.validation import validate_spec

OLDER, NEWEST = "0.2.22", "0.2.23"
BASE: dict[str, Any] = {"database": {"secretRef": {"name": "db", "key": "url"}}}


def errors(settings: dict[str, Any], hub_version: str | None = None, **spec: Any) -> list[str]:
    raw = {**BASE, "settings": settings, **spec}
    if hub_version:
        raw["hubVersion"] = hub_version
    _spec, found = validate_spec(raw)
    return [str(e) for e in found]


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("-1h", -3_600_000_000_000),
        ("+5m", 300_000_000_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),
        ("1\u00b5s", 1_000),  # micro sign
        ("1\u03bcs", 1_000),  # Greek mu
        ("-0", 0),
        ("0", 0),
        ("1h30m0.5s", 5_400_500_000_000),
        ("9223372036854775807ns", 2**63 - 1),
        ("-9223372036854775808ns", -(2**63)),
    ],
)
def test_go_durations_the_hub_parses_are_parsed_alike(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize(
    "text", ["", ".", "1", "00", "1h2", "1e3s", " 1s", "1S", "-", "9223372036854775808ns"]
)
def test_strings_go_refuses_as_durations_are_refused(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize("version", [OLDER, NEWEST])
def test_go_duration_forms_are_accepted_for_both_generations(version: str) -> None:
    lifecycle = {
        "soft_delete_retention": "-1h",
        "stalled_threshold": "+5m",
        "start_claim_lease_ttl": ".5s",
        "start_max_duration": "1.s",
        "start_unconfirmed_hold": "1\u03bcs",
        "start_create_unconfirmed_hold": "-0",
    }
    assert errors({"lifecycle": lifecycle}, version) == []
    assert errors({"lifecycle": {"soft_delete_retention": ""}}, version) == []  # the Hub's "unset"
    (msg,) = errors({"lifecycle": {"soft_delete_retention": "3 days"}}, version)
    assert "this operator's rule 'go-duration'" in msg


@pytest.mark.parametrize("version", [OLDER, NEWEST])
@pytest.mark.parametrize(
    ("settings", "path"),
    [
        ({"messaging": {"offload_threshold_runes": 2**63}}, "messaging.offload_threshold_runes"),
        ({"artifacts": {"max_bundle_bytes": 2**63}}, "artifacts.max_bundle_bytes"),
        ({"github_app": {"app_id": 2**63}}, "github_app.app_id"),
        ({"agent_defaults": {"default_max_turns": 2**63}}, "agent_defaults.default_max_turns"),
        ({"agent_defaults": {"default_max_model_calls": 2**64}}, "agent_defaults.default_max_model_calls"),
        ({"telemetry": {"cloud": {"batch": {"max_size": 2**63}}}}, "telemetry.cloud.batch.max_size"),
        ({"telemetry": {"cloud": {"batch": {"max_size": -(2**63) - 1}}}}, "telemetry.cloud.batch.max_size"),
    ],
)
def test_integers_beyond_the_go_field_are_refused(settings: dict[str, Any], path: str, version: str) -> None:
    found = errors(settings, version)
    assert found, settings
    assert all(e.startswith(f"spec.settings.{path}") for e in found), found
    assert any("Go int" in e for e in found), found


@pytest.mark.parametrize("version", [OLDER, NEWEST])
def test_values_the_hub_accepts_and_decodes_are_accepted(version: str) -> None:
    settings = {
        "messaging": {"offload_threshold_runes": 2**63 - 1},
        "github_app": {"app_id": -1, "api_base_url": "u" * 5000},
        "telemetry": {"cloud": {"batch": {"max_size": 0}, "endpoint": "e" * 3000}},
        "maintenance": {"maintenance_message": "m" * 5000},
        "agent_defaults": {"default_model": "", "default_template": "t" * 400},
        "notifications": {"notification_channels": [{"type": ""}]},
        "harness_configs": {"c": {"harness": "", "name": "not a name!"}},
        "endpoints": {"public_url": "", "image_registry": "r" * 600},
        "access": {"authorized_domains": ["d" * 300]},
    }
    assert errors(settings, version) == []


def test_default_thinking_level_follows_each_generation() -> None:
    # 591e24c's registry replaces the schema bound with a plain integer; 1f1ac1d1 takes the schema's 1-100.
    assert errors({"agent_defaults": {"default_thinking_level": 0}}, OLDER) == []
    assert errors({"agent_defaults": {"default_thinking_level": 755}}, OLDER) == []
    (msg,) = errors({"agent_defaults": {"default_thinking_level": 0}}, NEWEST)
    assert "the Hub refuses it" in msg and "1f1ac1d1" in msg


def test_no_coercion_of_telemetry_sampling() -> None:
    for bad in ("0.5", True):
        (msg,) = errors({"telemetry": {"filter": {"sampling": {"default": bad}}}})
        assert msg.startswith("spec.settings.telemetry.filter.sampling.default: the Hub refuses it")
    assert errors({"telemetry": {"filter": {"sampling": {"default": 1, "rates": {"e": 0.25}}}}}) == []


def test_refusals_beyond_the_hub_name_their_operator_rule() -> None:
    (extra,) = errors({"notifications": {"notification_channels": [{"type": "slack", "x": 1}]}})
    assert "this operator's rule 'unknown-key'" in extra and "drops unknown keys" in extra
    (runtime,) = errors({"runtimes": {"r": {"type": "nomad"}}})
    assert "this operator's rule 'known-values'" in runtime
    (shape,) = errors({"runtimes": {"r": {"cloudrun": {"project_id": 5}}}})
    assert "this operator's rule 'go-shape'" in shape and "malformed" in shape
    (email,) = errors({"access": {"admin_emails": ["not-an-email"]}})
    assert "this operator's rule 'format'" in email


def test_fields_the_hub_never_applies_from_the_table_are_refused_saying_where_they_go() -> None:
    (msg,) = errors({"agent_defaults": {"default_max_agent_role": "full"}})
    assert "this operator's rule 'not-applied'" in msg
    assert "each project's own max agent role" in msg
    (msg,) = errors({"agent_defaults": {"default_agent_role": "baseline"}})
    assert "agent create request" in msg


def test_the_new_sections_need_the_newest_generation() -> None:
    gcp = {"gcp_iam": {"gcp_iam_check_mode": "enforce", "gcp_iam_deny_unknown_policy": "fail-closed"}}
    assert errors({**gcp, "profiling": {"readiness_marks": True}}, NEWEST) == []
    assert any("needs Hub >= 0.2.23" in e for e in errors(gcp, OLDER))
    (msg,) = errors({"gcp_iam": {"gcp_iam_check_mode": ""}}, NEWEST)
    assert "the Hub refuses it" in msg
    assert any(
        "needs Hub >= 0.2.23" in e for e in errors({"endpoints": {"monitoring_dashboard_url": ""}}, OLDER)
    )
    (cred,) = errors({"endpoints": {"monitoring_dashboard_url": "https://u:p@dash.example/"}}, NEWEST)
    assert "user credentials" in cred
    assert errors({"profiles": {"p": {"clone_depth": 0}}}, NEWEST) == []


def test_artifacts_cross_field_rules_of_the_newest_hub() -> None:
    assert errors({"artifacts": {"remote_image_fetch_timeout_s": 40}}, NEWEST)  # over the default budget 30
    assert (
        errors({"artifacts": {"remote_image_fetch_timeout_s": 40, "remote_image_total_budget_s": 60}}, NEWEST)
        == []
    )
    assert errors({"artifacts": {"max_files": 10}}, NEWEST) == []  # an absent image cap follows max_files
    assert errors({"artifacts": {"max_files": 10, "remote_image_max_count": 11}}, NEWEST)
    assert errors({"artifacts": {"gc_grace_hours": 23}}, NEWEST)


def test_every_rule_id_is_documented_once() -> None:
    ids = [r.id for r in operator_rules.RULES]
    assert len(ids) == len(set(ids))
    text = (Path(__file__).resolve().parents[2] / "docs/sections.md").read_text(encoding="utf-8")
    for rule in operator_rules.RULES:
        assert f"`{rule.id}`" in text, rule.id


def test_effective_version_is_the_oldest_replica_and_says_when_they_differ() -> None:
    same = versions.effective_hub_version(["0.2.23", "v0.2.23"])
    assert (same.version, same.mixed, same.message()) == ("0.2.23", False, "")
    rolling = versions.effective_hub_version(["0.2.23", None, "0.2.22", "nightly"])
    assert rolling.version == "0.2.22" and rolling.mixed and rolling.unknown == 2
    assert "0.2.22, 0.2.23" in rolling.message() and "oldest" in rolling.message()
    none = versions.effective_hub_version([None])
    assert none.version is None and "newest known Hub" in none.message()
    assert versions.generation_for(rolling.version)["id"] == "591e24c"
    assert versions.generation_for(same.version)["id"] == "1f1ac1d1"


def test_the_running_hubs_version_governs_when_spec_hub_version_is_unset() -> None:
    raw = {**BASE, "settings": {"gcp_iam": {"gcp_iam_check_mode": "enforce"}}}
    assert validate_spec(raw, hub_version=NEWEST)[1] == []
    _spec, found = validate_spec(raw, hub_version=OLDER)
    assert any("needs Hub >= 0.2.23" in str(e) for e in found)


def test_live_schemas_validate_sections_the_catalog_does_not_know() -> None:
    body = {
        "sections": {
            "quotas": {
                "schema": {
                    "type": "object",
                    "properties": {"enforce_broker_quotas": {"type": "boolean"}},
                    "additionalProperties": False,
                },
                "koanf_paths": ["quotas.enforce_broker_quotas"],
            },
            "future": {
                "schema": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "minimum": 1}},
                    "additionalProperties": False,
                },
                "koanf_paths": [],
            },
        }
    }
    live = parse_schema_response(body, version="0.3.0")
    raw = {
        **BASE,
        "settings": {"quotas": {"enforce_broker_quotas": True}},
        "extraSettings": {"future": {"n": 0}},
    }
    _spec, found = validate_spec(raw, live=live)
    assert [e.path for e in found] == ['spec.extraSettings["future"].n']
    assert "running Hub's schema (version 0.3.0)" in found[0].reason
    ok = {**raw, "extraSettings": {"future": {"n": 2}}}
    spec, found = validate_spec(ok, live=live)
    assert found == [] and spec is not None
    from hubsettings_operator.spec.validation import unvalidated_sections

    assert unvalidated_sections(spec, live) == [] and unvalidated_sections(spec) == ["future"]
    with pytest.raises(LiveSchemaError):
        parse_schema_response({"schema": {}})


class _Hub(http.server.BaseHTTPRequestHandler):
    """A Hub answering the two admin endpoints on loopback (the version and the schema of one section)."""

    token = "t0ken"

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            self.end_headers()
            return
        if self.path == "/api/v1/admin/server-config":
            body: dict[str, Any] = {"scion_version": "0.2.22", "settings_tier": "database"}
        else:
            schema = {
                "type": "object",
                "properties": {"n": {"type": "integer", "maximum": 3}},
                "additionalProperties": False,
            }
            body = {"sections": {"newer": {"schema": schema, "koanf_paths": []}}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


def test_cli_validate_against_the_live_hub_and_falls_back_saying_so(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hubsettings_operator.cli import main

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        manifest = tmp_path / "hub.yaml"
        spec = {
            **BASE,
            "extraSettings": {"newer": {"n": 5}},
            "settings": {"gcp_iam": {"gcp_iam_check_mode": "enforce"}},
        }
        manifest.write_text(
            json.dumps(
                {
                    "apiVersion": "scion.dev/v1alpha1",
                    "kind": "HubSettings",
                    "metadata": {"name": "h"},
                    "spec": spec,
                }
            )
        )
        token = tmp_path / "token"
        token.write_text("t0ken\n")
        runner = CliRunner()
        live = runner.invoke(
            main, ["validate", "-f", str(manifest), "--hub-url", url, "--token-file", str(token)]
        )
        assert live.exit_code == 1
        assert "live schema of the Hub" in live.output and "version 0.2.22" in live.output
        assert 'extraSettings["newer"].n' in live.output  # the live Hub knows the section: checked
        assert "needs Hub >= 0.2.23" in live.output  # its version governs: gcp_iam is newer
        assert "t0ken" not in live.output
        token.write_text("wrong\n")
        denied = runner.invoke(
            main, ["validate", "-f", str(manifest), "--hub-url", url, "--token-file", str(token)]
        )
        assert "generated Hub facts: the Hub answered HTTP 401" in denied.output
        assert denied.exit_code == 0  # the facts know neither the section nor the Hub's version
        none = runner.invoke(main, ["validate", "-f", str(manifest), "--hub-url", url])
        assert "generated Hub facts: no --token-file" in none.output
    finally:
        server.shutdown()
        server.server_close()


# apiextensions.k8s.io/v1 JSONSchemaProps fields: the API server refuses a CRD whose schema has any other key.
_OPENAPI_KEYS = {
    "$ref", "$schema", "additionalItems", "additionalProperties", "allOf", "anyOf", "default", "definitions",
    "dependencies", "description", "enum", "example", "exclusiveMaximum", "exclusiveMinimum", "externalDocs",
    "format", "id", "items", "maxItems", "maxLength", "maxProperties", "maximum", "minItems", "minLength",
    "minProperties", "minimum", "multipleOf", "not", "nullable", "oneOf", "pattern", "patternProperties",
    "properties", "required", "title", "type", "uniqueItems", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
    "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
}  # fmt: skip


def test_the_crd_schema_uses_only_openapi_keywords_and_exact_bounds() -> None:
    import yaml

    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds/hubsettings.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        assert set(node) <= _OPENAPI_KEYS, f"{path}: {sorted(set(node) - _OPENAPI_KEYS)}"
        # The API server compiles patterns with Go's RE2, which has no \u escape.
        assert "\\u" not in node.get("pattern", ""), f"{path}.pattern"
        for bound in ("minimum", "maximum"):
            # float64 in the API server: only bounds it represents exactly (not the int64 limits).
            assert bound not in node or abs(node[bound]) < 2**53, f"{path}.{bound}"
        for key in ("properties", "patternProperties", "definitions"):
            for name, sub in (node.get(key) or {}).items():
                walk(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key), f"{path}.{key}")
        for key in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(node.get(key) or []):
                walk(sub, f"{path}.{key}[{i}]")

    walk(schema, "openAPIV3Schema")
    settings = schema["properties"]["spec"]["properties"]["settings"]["properties"]
    assert {"gcp_iam", "profiling"} <= set(settings) and len([s for s in settings if s in REGISTRY]) == 21
