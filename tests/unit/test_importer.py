"""`hubsettings import`: every Layer 1 koanf path of the Hub's 19 sections lands in its section."""

from __future__ import annotations

from typing import Any

import yaml

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.importer import _owner, import_settings_yaml
from hubsettings_operator.spec.validation import validate_object

# A settings.yaml setting every leaf koanf path the Hub's registry gives a section.
SETTINGS_YAML = """
default_template: default
default_harness_config: claude
default_max_turns: 100
default_max_model_calls: 300
default_max_duration: 2h
default_resources: {requests: {cpu: 500m}}
default_model: large
default_thinking_level: 40
default_max_agent_role: full
default_agent_role: baseline
default_runtime_broker: broker-1
default_timezone: UTC
default_gcp_identity_mode: passthrough
default_gcp_identity_service_account_id: agents@p.iam.gserviceaccount.com
image_registry: registry.example.com/scion
auto_expose_ports: {enabled: true}
quotas: {enforce_broker_quotas: false}
agent_secrets: {user_scope_only: true}
project_defaults: {default_scratchpad: false}
telemetry:
  enabled: true
  cloud:
    enabled: true
    endpoint: collector:4317
    protocol: grpc
    headers: {x-tenant: ops}
    provider: gcp
    tls: {enabled: true, insecure_skip_verify: false, ca_file: /etc/ca.pem}
    batch: {max_size: 256, timeout: 5s}
  hub: {enabled: true, report_interval: 30s}
  local: {enabled: false, file: /tmp/t.jsonl, console: false}
  filter:
    enabled: true
    respect_debug_mode: true
    events: {include: [a], exclude: [b]}
    attributes: {redact: [c], hash: [d]}
    sampling: {default: 0.5, rates: {e: 0.1}}
  resource: {service.name: hub}
runtimes:
  k8s: {type: kubernetes, namespace: agents}
profiles:
  prod: {runtime: k8s}
harness_configs:
  claude: {harness: claude, image: img}
server:
  hub:
    admin_emails: Ops@Example.com, dev@example.com
    public_url: https://hub.example.com
    hub_name: hub-a
    monitoring_dashboard_url: https://dash.example.com/d/hub
    gcp_iam_check_mode: enforce
    gcp_iam_deny_unknown_policy: fail-closed
    auto_suspend_stalled: true
    stalled_threshold: 10m
    soft_delete_retention: 72h
    soft_delete_retain_files: true
    start_claim_lease_ttl: 90s
    start_max_duration: 12m
    start_unconfirmed_hold: 13m
    start_create_unconfirmed_hold: 5m
    port: 9810
  auth:
    user_access_mode: invite_only
    default_user_role: viewer
    authorized_domains: [example.com]
  github_app:
    app_id: 42
    api_base_url: https://api.github.com
    webhooks_enabled: true
    installation_url: https://github.com/apps/x
    private_key_path: /keys/gh.pem
  notification_channels:
    - {type: slack, params: {channel: "#ops"}}
  federation:
    enabled: true
    trusted_issuers: [{issuer_url: https://other.example.com}]
    algorithms: [RS256]
    refresh_interval: 0
    debounce_interval: 30s
"""


def _leaf_paths(doc: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.add(path)
        if isinstance(value, dict) and path not in catalog.MAP_SECTION_KOANF:
            out |= _leaf_paths(value, path)
    return out


def test_every_registry_koanf_path_is_owned_by_its_section() -> None:
    for section in catalog.facts()["layer1"]["sections"]:
        for path in section["koanf_paths"]:
            deeper = [p for p in section["koanf_paths"] if p.startswith(path + ".")]
            probe = deeper[0] if deeper else path
            owner = _owner(probe)
            assert owner is not None and owner[0] == section["name"], (path, owner)


def test_the_sample_sets_every_leaf_path_of_the_registry() -> None:
    registry = {p for s in catalog.facts()["layer1"]["sections"] for p in s["koanf_paths"]}
    leaves = {p for p in registry if not any(q.startswith(p + ".") for q in registry)}
    assert leaves <= _leaf_paths(yaml.safe_load(SETTINGS_YAML))


def test_import_maps_all_sections_and_the_result_validates() -> None:
    result = import_settings_yaml(yaml.safe_load(SETTINGS_YAML), "hub", "scion")
    settings = result.manifest["spec"]["settings"]
    assert set(settings) == {s["name"] for s in catalog.facts()["layer1"]["sections"] if s["koanf_paths"]}
    assert settings["access"]["admin_emails"] == ["Ops@Example.com", "dev@example.com"]
    assert settings["runtimes"] == {"k8s": {"type": "kubernetes", "namespace": "agents"}}
    assert settings["federation"]["refresh_interval"] == "0"
    assert settings["lifecycle"]["start_max_duration"] == "12m"
    assert settings["agent_defaults"]["default_timezone"] == "UTC"
    assert "default_agent_role" not in settings["agent_defaults"]  # never applied from the table
    assert any(w.startswith("default_agent_role: left out") for w in result.warnings)
    assert settings["gcp_iam"] == {
        "gcp_iam_check_mode": "enforce",
        "gcp_iam_deny_unknown_policy": "fail-closed",
    }
    assert result.manifest["spec"]["bootstrap"]["expected"] == {"server.hub.port": 9810}
    report = validate_object(result.manifest)
    assert report.ok, report.summary()
    assert report.resource is not None
    assert report.resource.spec.settings.access is not None
    assert report.resource.spec.settings.access.admin_emails == ["ops@example.com", "dev@example.com"]
