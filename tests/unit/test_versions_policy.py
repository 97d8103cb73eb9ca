"""Hub version awareness (spec.hubVersion) and per-section ownership policy (spec.policy.sections)."""

from __future__ import annotations

from typing import Any

import pytest

from hubsettings_operator.spec import versions
from hubsettings_operator.spec.models import ConflictMode, HubSettingsSpec
from hubsettings_operator.spec.policy import observed_sections, section_policy
from hubsettings_operator.spec.sections import SECTION_MODELS, Settings
from hubsettings_operator.spec.validation import validate_object


def test_every_section_has_a_version_and_the_first_eight_are_the_oldest() -> None:
    assert set(versions.SECTION_SINCE) == set(SECTION_MODELS)
    assert versions.since("maintenance") == versions.BASE_VERSION
    assert versions.since("quotas") == versions.NEXT_RELEASE
    assert versions.since("endpoints", "hub_name") == "0.2.6"
    assert versions.since("telemetry", "cloud.provider") == versions.NEXT_RELEASE
    assert versions.since("telemetry", "cloud.endpoint") == versions.BASE_VERSION
    for key in versions.FIELD_SINCE:
        section, _, field = key.partition(".")
        assert field.split(".")[0] in SECTION_MODELS[section].model_fields, key


def test_requirements_list_what_a_spec_needs() -> None:
    settings = Settings.model_validate(
        {"lifecycle": {"soft_delete_retention": "1h", "stalled_threshold": "5m"}, "quotas": {}, "access": {}}
    )
    assert [str(r) for r in versions.requirements(settings)] == [
        "spec.settings.lifecycle.stalled_threshold needs Hub >= 0.2.22",
        "spec.settings.quotas needs Hub >= 0.2.22",
    ]
    assert versions.unknown_to_hub(settings, "v0.2.22") == []
    assert len(versions.unknown_to_hub(settings, "0.2.21")) == 2


def test_a_declared_hub_version_refuses_what_it_does_not_know(manifest: dict[str, Any]) -> None:
    manifest["spec"]["hubVersion"] = "0.2.5"
    manifest["spec"]["settings"] = {"endpoints": {"public_url": "https://h.example.com", "hub_name": "h"}}
    report = validate_object(manifest)
    [error] = report.errors
    assert error.path == "spec.settings.endpoints.hub_name"
    assert "0.2.6" in error.reason and "0.2.5" in error.reason and "upgrade" in error.hint
    manifest["spec"]["hubVersion"] = "0.2.6"
    assert validate_object(manifest).ok
    manifest["spec"]["hubVersion"] = "0.2.21"
    manifest["spec"]["settings"] = {"artifacts": {"enabled": True}}
    assert [e.path for e in validate_object(manifest).errors] == ["spec.settings.artifacts"]


def test_without_hub_version_newer_fields_are_accepted(manifest: dict[str, Any]) -> None:
    manifest["spec"]["settings"] = {"artifacts": {"enabled": True}, "lifecycle": {"stalled_threshold": "5m"}}
    assert validate_object(manifest).ok


@pytest.mark.parametrize("bad", ["latest", "0.2", "v1"])
def test_hub_version_must_be_a_version(manifest: dict[str, Any], bad: str) -> None:
    manifest["spec"]["hubVersion"] = bad
    assert [e.path for e in validate_object(manifest).errors] == ["spec.hubVersion"]


def test_section_policy_overrides_the_cr_wide_mode(manifest: dict[str, Any]) -> None:
    manifest["spec"]["policy"] = {
        "conflicts": "Report",
        "sections": {"maintenance": {"conflicts": "Observe"}},
    }
    report = validate_object(manifest)
    assert report.ok and report.resource is not None
    spec: HubSettingsSpec = report.resource.spec
    assert section_policy(spec, "maintenance") is ConflictMode.OBSERVE
    assert section_policy(spec, "access") is ConflictMode.REPORT
    assert observed_sections(spec) == ["maintenance"]


def test_observe_is_per_section_only_and_names_must_be_sections(manifest: dict[str, Any]) -> None:
    manifest["spec"]["policy"] = {"conflicts": "Observe"}
    [error] = validate_object(manifest).errors
    assert error.path == "spec.policy" and "spec.policy.sections" in error.reason
    manifest["spec"]["policy"] = {"sections": {"maintenanse": {"conflicts": "Observe"}}}
    [error] = validate_object(manifest).errors
    assert error.path == "spec.policy.sections.maintenanse" and "'maintenance'" in error.hint
    manifest["spec"]["extraSettings"] = {"maintenanse": {}}
    assert validate_object(manifest).ok
