"""Every rejection rule of the validation, with the exact field path and the guidance in the message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hubsettings_operator.spec.models import MAX_EXTRA_KEYS, MAX_VALUE_BYTES
from hubsettings_operator.spec.validation import validate_object, validate_spec


def errors_for(manifest: dict[str, Any]) -> dict[str, str]:
    report = validate_object(manifest, "test")
    assert not report.ok
    return {e.path: str(e) for e in report.errors}


def test_valid_manifest_passes(manifest: dict[str, Any]) -> None:
    report = validate_object(manifest)
    assert report.ok, report.errors
    assert report.resource is not None
    assert report.resource.spec.settings.access is not None


def test_layer0_key_under_settings_names_env_var_and_bootstrap(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["log_level"] = "debug"
    errs = errors_for(manifest)
    msg = errs["spec.settings.log_level"]
    assert "bootstrap (Layer 0)" in msg
    assert "SCION_SERVER_LOGLEVEL" in msg or "SCION_LOG_LEVEL" in msg
    assert "spec.bootstrap.expected" in msg


def test_layer0_key_inside_a_section(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["access"]["hub_id"] = "x"
    msg = errors_for(manifest)["spec.settings.access.hub_id"]
    assert "server.hub.hub_id" in msg and "SCION_SERVER_HUB_HUBID" in msg


def test_formerly_layer1_cors_says_it_would_change_nothing(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["cors"] = {"enabled": True}
    msg = errors_for(manifest)["spec.settings.cors"]
    assert "only at startup" in msg


@pytest.mark.parametrize(
    ("where", "name"),
    [(("github_app",), "private_key"), ((), "client_secret"), (("telemetry",), "password")],
)
def test_secret_keys_are_rejected(manifest: dict[str, Any], where: tuple[str, ...], name: str) -> None:
    target = manifest["spec"]["settings"]
    for part in where:
        target = target.setdefault(part, {})
    target[name] = "s3cr3t"
    path = ".".join(("spec.settings", *where, name))
    msg = errors_for(manifest)[path]
    assert "secret backend" in msg
    assert "s3cr3t" not in msg


def test_unknown_section_suggests_extra_settings(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["acess"] = {}
    msg = errors_for(manifest)["spec.settings.acess"]
    assert "'access'" in msg and "extraSettings" in msg


def test_unknown_field_in_section_lists_fields(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["access"]["adminemails"] = []
    msg = errors_for(manifest)["spec.settings.access.adminemails"]
    assert "admin_emails" in msg and "rejects unknown fields" in msg


def test_field_of_another_section_points_to_it(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["access"]["admin_mode"] = True
    msg = errors_for(manifest)["spec.settings.access.admin_mode"]
    assert "spec.settings.maintenance.admin_mode" in msg


def test_wrong_type_names_path(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["agent_defaults"] = {"default_max_turns": "200"}
    msg = errors_for(manifest)["spec.settings.agent_defaults.default_max_turns"]
    assert "integer" in msg


def test_bool_is_not_an_integer(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["agent_defaults"] = {"default_max_turns": True}
    assert "spec.settings.agent_defaults.default_max_turns" in errors_for(manifest)


def test_minimum_is_enforced(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["agent_defaults"] = {"default_max_turns": 0}
    assert "spec.settings.agent_defaults.default_max_turns" in errors_for(manifest)


def test_bad_email_names_list_index(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["access"]["admin_emails"] = ["ok@example.com", "not-an-email"]
    assert "spec.settings.access.admin_emails[1]" in errors_for(manifest)


def test_go_duration_is_checked(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["lifecycle"] = {"soft_delete_retention": "3 days"}
    assert "spec.settings.lifecycle.soft_delete_retention" in errors_for(manifest)


@pytest.mark.parametrize("table", ["x;drop table y", "Hub_Settings", 'a"b', "a.b.c", "1abc", "a" * 64])
def test_table_must_be_a_sql_identifier(manifest: dict[str, Any], table: str) -> None:
    manifest["spec"]["database"]["table"] = table
    assert "spec.database.table" in errors_for(manifest)


@pytest.mark.parametrize("channel", ["bad-channel", "x; NOTIFY y", "UPPER"])
def test_channel_must_be_a_sql_identifier(manifest: dict[str, Any], channel: str) -> None:
    manifest["spec"]["database"]["channel"] = channel
    assert "spec.database.channel" in errors_for(manifest)


def test_schema_qualified_table_is_accepted(manifest: dict[str, Any]) -> None:
    manifest["spec"]["database"]["table"] = "scion.hub_settings"
    assert validate_object(manifest).ok


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("_meta", "Hub's own rows"),
        ("Bad Key", "key grammar"),
        ("access", "known section"),
        ("server.log_level", "bootstrap (Layer 0)"),
        ("server.database.url", "secret"),
        ("api_token", "secret"),
        ("admin_emails", "known setting"),
    ],
)
def test_extra_settings_key_rules(manifest: dict[str, Any], key: str, fragment: str) -> None:
    manifest["spec"]["extraSettings"] = {key: 1}
    errs = errors_for(manifest)
    [msg] = [m for p, m in errs.items() if p.startswith("spec.extraSettings")]
    assert fragment in msg


def test_extra_settings_accepts_arbitrary_json(manifest: dict[str, Any]) -> None:
    manifest["spec"]["extraSettings"] = {"chat_bridge": {"max_agents": 5, "nested": [1, {"a": None}]}}
    report = validate_object(manifest)
    assert report.ok and report.unvalidated_sections == ["chat_bridge"]


def test_value_size_limit(manifest: dict[str, Any]) -> None:
    manifest["spec"]["extraSettings"] = {"big": "x" * (MAX_VALUE_BYTES + 1)}
    assert "larger than" in errors_for(manifest)["spec.extraSettings.big"]


def test_section_size_limit(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["maintenance"] = {"maintenance_message": "x" * 4000}
    assert validate_object(manifest).ok
    manifest["spec"]["settings"]["notifications"] = {
        "notification_channels": [
            {"type": "webhook", "params": {"p": "y" * 60_000}},
            {"type": "x", "params": {"q": "z" * 10_000}},
        ]
    }
    assert "larger than" in errors_for(manifest)["spec.settings.notifications"]


def test_depth_limit(manifest: dict[str, Any]) -> None:
    deep: Any = 1
    for _ in range(20):
        deep = {"d": deep}
    manifest["spec"]["extraSettings"] = {"deep": deep}
    assert "deeper" in errors_for(manifest)["spec.extraSettings.deep"]


def test_key_count_limit(manifest: dict[str, Any]) -> None:
    manifest["spec"]["extraSettings"] = {f"k{i}": i for i in range(MAX_EXTRA_KEYS + 1)}
    assert "spec.extraSettings" in errors_for(manifest)


def test_nul_bytes_rejected(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["maintenance"] = {"maintenance_message": "a\x00b"}
    assert "NUL" in errors_for(manifest)["spec.settings.maintenance.maintenance_message"]


def test_bootstrap_expected_keys(manifest: dict[str, Any]) -> None:
    manifest["spec"]["bootstrap"] = {"expected": {"server.log_levl": "info", "server.hub.admin_emails": "x"}}
    errs = errors_for(manifest)
    assert "server.log_level" in errs['spec.bootstrap.expected["server.log_levl"]']
    assert "Layer 1" in errs['spec.bootstrap.expected["server.hub.admin_emails"]']


def test_unknown_top_level_spec_field(manifest: dict[str, Any]) -> None:
    manifest["spec"]["setting"] = {}
    assert "spec.setting" in errors_for(manifest)


def test_missing_database(manifest: dict[str, Any]) -> None:
    del manifest["spec"]["database"]
    assert "required" in errors_for(manifest)["spec.database"]


def test_wrong_kind_and_api_version(manifest: dict[str, Any]) -> None:
    manifest["kind"] = "HubSetting"
    manifest["apiVersion"] = "scion.dev/v1"
    errs = errors_for(manifest)
    assert "kind" in errs and "apiVersion" in errs


def test_admin_emails_normalized_like_the_hub(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"]["access"]["admin_emails"] = ["  Ops@Example.COM "]
    report = validate_object(manifest)
    assert report.resource is not None and report.resource.spec.settings.access is not None
    assert report.resource.spec.settings.access.admin_emails == ["ops@example.com"]


def test_validate_spec_never_raises_on_garbage() -> None:
    for raw in [None, 1, "x", [], {"settings": 5}, {"database": None, "settings": {"access": 3}}]:
        spec, errors = validate_spec(raw)
        assert spec is None and errors


def test_secrets_nested_in_extra_settings_are_rejected(manifest: dict[str, Any]) -> None:
    manifest["spec"]["extraSettings"] = {"chat_bridge": {"slack": {"bot_token": "xoxb-SECRET"}}}
    errs = errors_for(manifest)
    msg = errs["spec.extraSettings.chat_bridge.slack.bot_token"]
    assert "secret backend" in msg and "xoxb-SECRET" not in msg


def test_plan_output_masks_nested_secret_like_keys() -> None:
    from hubsettings_operator.table.diff import show

    text = show("messaging", {"slack": {"webhook_secret": "hunter2-value", "channel": "#ops"}})
    assert "hunter2-value" not in text and "#ops" in text and "<secret sha256:" in text


def test_create_table_with_scion_profile_is_refused_offline_as_by_the_api_server(
    manifest: dict[str, Any],
) -> None:
    manifest["spec"]["database"].update({"profile": "scion", "createTable": True})
    assert "proposal profile only" in errors_for(manifest)["spec.database"]
    manifest["spec"]["database"]["profile"] = "proposal"
    assert validate_object(manifest).ok


def test_validation_is_cached_by_canonical_json_without_collisions(manifest: dict[str, Any]) -> None:
    import datetime

    raw = manifest["spec"]
    raw["settings"] = {"maintenance": {"admin_mode": True}}
    first, errors = validate_spec(copy.deepcopy(raw))
    again, _ = validate_spec(copy.deepcopy(raw))
    assert first is not None and errors == [] and again is first
    raw["settings"] = {"maintenance": {"admin_mode": 1}}  # equal to True in Python, not in JSON
    spec, errors = validate_spec(copy.deepcopy(raw))
    assert spec is None and errors[0].path == "spec.settings.maintenance.admin_mode"
    raw["settings"] = {
        "maintenance": {"maintenance_message": datetime.date(2026, 1, 1)}
    }  # YAML date: not JSON
    for _ in range(2):
        spec, errors = validate_spec(copy.deepcopy(raw))
        assert spec is None and errors[0].path == "spec.settings.maintenance.maintenance_message"
