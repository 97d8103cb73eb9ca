"""The catalog against the generated facts of the Hub's settings schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.sections import SECTION_MODELS


def test_facts_record_their_source() -> None:
    source = catalog.facts()["source"]
    assert source["path"] == "pkg/config/schemas/settings-v1.schema.json"
    assert len(source["commit"]) == 40


def test_every_x_env_var_of_a_hub_setting_is_in_the_catalog_with_the_same_name() -> None:
    missing = []
    for prop in catalog.facts()["properties"]:
        path = prop["path"]
        owned = any(
            path == k or path.startswith(f"{k}.")
            for fields in catalog.SECTION_KOANF.values()
            for k in fields.values()
            if k
        )
        if not (catalog.is_layer0_path(path) or owned):
            continue  # not a Hub server setting (agent-side settings share the schema)
        for name in prop.get("env") or []:
            if name in catalog.INERT_ENV:
                continue  # the Hub itself ignores it (drift reports it as ineffective)
            setting = catalog.by_env(name)
            if setting is None or not (path == setting.key or path.startswith(setting.key + ".")):
                missing.append((path, name))
    # Layer 0 names let drift map pod env to catalog keys; Layer 1 names let it report overrides.
    assert missing == []


def test_every_layer1_field_has_a_type_and_section() -> None:
    fields = {(s.section, s.field) for s in catalog.layer1_settings()}
    for section, model in SECTION_MODELS.items():
        for name in model.model_fields:
            assert (section, name) in fields
    for s in catalog.layer1_settings():
        assert s.json_type in {"string", "integer", "boolean", "array", "object", "number"}, s
        assert s.proposal_key


def test_env_name_rule_matches_the_hub() -> None:
    assert catalog.server_env_name("server.hub.hub_id") == "SCION_SERVER_HUB_HUBID"
    assert catalog.server_env_name("server.database.url") == "SCION_SERVER_DATABASE_URL"
    assert catalog.seed_env_name("server.hub.admin_emails") == "SCION_SEED_SERVER_HUB_ADMINEMAILS"
    assert catalog.seed_env_name("image_registry") == "SCION_SEED_IMAGEREGISTRY"


def test_layer0_and_layer1_lookups() -> None:
    db = catalog.by_env("SCION_SERVER_DATABASE_URL")
    assert db is not None and db.layer == 0 and db.secret
    admins = catalog.by_env("SCION_SEED_SERVER_HUB_ADMINEMAILS")
    assert admins is not None and admins.layer == 1 and admins.section == "access"
    assert catalog.by_key("server.log_level") is not None


def test_secret_names() -> None:
    assert catalog.is_secret_name("client_secret")
    assert catalog.is_secret_name("dev_token")
    assert not catalog.is_secret_name("private_key_path")
    assert not catalog.is_secret_name("dev_token_file")
    assert not catalog.is_secret_name("admin_emails")


def test_inert_names_are_not_settings() -> None:
    for name in catalog.INERT_ENV:
        setting = catalog.by_env(name)
        assert setting is None or name in setting.env, name


def test_section_documents_are_complete_with_defaults() -> None:
    from hubsettings_operator.spec.sections import AccessSettings, Settings, TelemetrySettings

    docs = catalog.section_documents(
        Settings(access=AccessSettings(admin_emails=["a@b.co"]), telemetry=TelemetrySettings(enabled=False))
    )
    assert docs["access"] == {
        "admin_emails": ["a@b.co"],
        "user_access_mode": "open",
        "authorized_domains": [],
    }
    assert docs["telemetry"]["enabled"] is False
    assert docs["telemetry"]["cloud"]["batch"] == {"max_size": 512, "timeout": "5s"}


def test_proposal_values_only_explicit_fields() -> None:
    from hubsettings_operator.spec.sections import EndpointsSettings, Settings, TelemetrySettings

    rows = catalog.proposal_values(
        Settings(
            endpoints=EndpointsSettings(public_url="https://h.example"),
            telemetry=TelemetrySettings(enabled=True),
        )
    )
    assert rows == {"hub.public_url": "https://h.example", "telemetry_enabled": True}


def test_facts_carry_the_hubs_section_schemas_with_their_source() -> None:
    layer1 = catalog.facts()["layer1"]
    assert layer1["source"]["path"] == "pkg/config/opsettings/registry.go"
    assert len(layer1["source"]["commit"]) == 40
    assert layer1["library"]["asserts_format"] is False
    schemas = {s["name"]: s["schema"] for s in layer1["sections"]}
    assert len(schemas) == 21  # the newest generation: the 19 of 591e24c plus gcp_iam and profiling
    older, newest = catalog.facts()["generations"]
    assert [len(older["sections"]), len(newest["sections"])] == [19, 21]
    assert {"gcp_iam", "profiling"} == {s["name"] for s in newest["sections"]} - {
        s["name"] for s in older["sections"]
    }
    assert newest["source"]["commit"].startswith("1f1ac1d1") and older["source"]["commit"].startswith(
        "591e24c"
    )
    # Self-contained, as the Hub serves them: no $ref left to resolve.
    assert "$ref" not in str(schemas)
    assert schemas["quotas"]["additionalProperties"] is False
    assert "private_key" not in schemas["github_app"]["properties"]


def test_gen_hub_facts_applies_the_registry_rules(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    root = {
        "properties": {
            "quotas": {
                "type": "object",
                "properties": {"q": {"type": "boolean"}},
                "additionalProperties": False,
            },
            "server": {"type": "object", "properties": {"federation": {"$ref": "#/$defs/fed"}}},
        },
        "$defs": {
            "fed": {
                "type": "object",
                "properties": {
                    "refresh_interval": {
                        "anyOf": [{"type": "string", "pattern": "^x$"}, {"type": "integer"}]
                    },
                    "issuer": {"$ref": "#/$defs/issuer"},
                },
            },
            "issuer": {"type": "object", "properties": {"url": {"type": "string"}}},
        },
    }
    schema_file = tmp_path / "settings.json"
    schema_file.write_text(json.dumps(root))
    script = Path(__file__).resolve().parents[2] / "hack/gen_hub_facts.py"
    sys.path.insert(0, str(script.parent))
    try:
        import gen_hub_facts
    finally:
        sys.path.remove(str(script.parent))
    fed = gen_hub_facts.build_section(root, {"root": ("server", "federation"), "string_intervals": True})
    assert fed["properties"]["refresh_interval"] == {"type": "string", "pattern": "^x$"}
    assert fed["properties"]["issuer"] == {"type": "object", "properties": {"url": {"type": "string"}}}
    assert gen_hub_facts.build_section(root, {"root": ("quotas",)})["additionalProperties"] is False
    with pytest.raises(gen_hub_facts.SchemaError):
        gen_hub_facts.build_section(root, {"props": {"x": ("server", "nope")}})
    out = subprocess.run(
        [sys.executable, str(script), "--schema", str(schema_file), "--repo", "o/r", "--commit", "c" * 40],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1 and "no property" in out.stderr  # the real rules need the real schema


def test_layer0_prefixes_of_the_facts_and_the_catalog_agree() -> None:
    """koanf.go's layer0Prefixes (generated into the facts) are exactly the catalog's, every one is a Layer 0
    key for the catalog, and none belongs to a Layer 1 section."""
    newest = catalog.facts()["generations"][-1]
    assert tuple(newest["layer0_prefixes"]) == catalog.LAYER0_PREFIXES
    assert len(catalog.LAYER0_PREFIXES) == 34
    assert {"server.shared_dir_storage", "server.hub.conduit", "server.hub.perf_trace"} <= set(
        catalog.LAYER0_PREFIXES
    )
    layer1_paths = {p for s in newest["sections"] for p in s["koanf_paths"]}
    for prefix in catalog.LAYER0_PREFIXES:
        assert catalog.is_layer0_path(prefix)
        assert catalog.is_layer0_path(prefix + ".child")
        assert not any(p == prefix or p.startswith(prefix + ".") for p in layer1_paths), prefix
        assert any(
            s.key == prefix or s.key.startswith(prefix + ".") for s in catalog.settings() if s.layer == 0
        )


def test_gen_hub_generations_reads_the_go_sources(tmp_path: Path) -> None:
    """The generator parses registry.go, sections.go and koanf.go (copies under <commit>/<path>) and rebuilds
    the committed facts exactly from the previous run's facts and those copies' content."""
    import sys

    script = Path(__file__).resolve().parents[2] / "hack/gen_hub_generations.py"
    sys.path.insert(0, str(script.parent))
    try:
        import gen_hub_generations as gen
    finally:
        sys.path.remove(str(script.parent))
    koanf = 'var layer0Prefixes = []string{\n\t// Database\n\t"server.database",\n\t"server.hub.conduit", // x\n}\n'
    assert gen.parse_layer0(koanf) == ["server.database", "server.hub.conduit"]
    registry = (
        '{\n\tName: "gcp_iam",\n\tKoanfPaths: []string{\n\t\t"server.hub.gcp_iam_check_mode",\n\t},\n'
        "\tNew: func() any { return &GCPIAMSettings{} },\n},\n"
        '{\n\tName:       "profiling",\n\tKoanfPaths: nil,\n\tNew:        func() any { return &ProfilingSettings{} },\n},'
    )
    assert gen.parse_registry(registry) == [
        ("gcp_iam", ["server.hub.gcp_iam_check_mode"], "GCPIAMSettings"),
        ("profiling", [], "ProfilingSettings"),
    ]
    structs = gen.parse_structs(
        'type GitHubAppSettings struct {\n\tAppID int64 `json:"app_id,omitempty"`\n'
        '\tEnabled *bool `json:"enabled,omitempty"`\n}\n'
    )
    assert structs == {"GitHubAppSettings": {"app_id": "int64", "enabled": "bool"}}
    unwritten = 'var dbUnwrittenLayer1Paths = [][]string{\n\t{"default_agent_role"},\n\t{"server", "federation"},\n}\n'
    registry_rows = [("agent_defaults", ["default_agent_role"], "AgentDefaultsSettings")]
    assert gen.parse_unwritten(unwritten, registry_rows) == ["agent_defaults.default_agent_role"]
    with pytest.raises(gen.SourceError):
        gen.parse_layer0("nothing here")
    # The committed generations record where each part came from.
    older, newest = catalog.facts()["generations"]
    assert older["source"]["commits"]["layer0"].startswith("b508ce57")
    assert newest["source"]["commits"]["layer0"].startswith("27d000d6")
    assert (
        newest["sections"][[s["name"] for s in newest["sections"]].index("github_app")]["go_types"]["app_id"]
        == "int64"
    )
    assert set(newest["not_applied_from_table"]) == {
        "agent_defaults.default_max_agent_role",
        "agent_defaults.default_agent_role",
    }
