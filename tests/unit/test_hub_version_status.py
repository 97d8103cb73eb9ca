"""Which Hub version governs a reconcile's validation (status/hub_version.py) and what validation says then."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.conditions import EventReason
from hubsettings_operator.spec import versions
from hubsettings_operator.spec.live_schema import parse_schema_response
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status.hub_version import governing, mixed_event

DB = {"database": {"secretRef": {"name": "db"}}}
CONV = {**DB, "convergence": {"adminTokenSecretRef": {"name": "tok"}}}


def status_with(*versions_: str | None) -> dict[str, Any]:
    return {
        "convergence": {"replicas": [{"name": f"hub-{i}", "version": v} for i, v in enumerate(versions_)]}
    }


def test_spec_hub_version_wins_over_replicas() -> None:
    got = governing({**CONV, "hubVersion": "0.2.6"}, status_with("0.2.23"))
    assert (got.effective, got.source, got.hub_version) == ("0.2.6", "spec", None)


def test_oldest_replica_governs_and_mixed_is_reported() -> None:
    got = governing(CONV, status_with("0.2.23", "v0.2.4", None))
    assert (got.effective, got.source, got.hub_version) == ("0.2.4", "replicas", "0.2.4")
    assert got.mixed and got.versions == ("0.2.4", "0.2.23")
    assert (
        "0.2.4, governs validation" in got.message
        and "1 replica(s) reported no usable version" in got.message
    )
    status = got.as_status()
    assert status == {
        "effective": "0.2.4",
        "source": "replicas",
        "mixed": True,
        "versions": ["0.2.4", "0.2.23"],
        "message": got.message,
    }


def test_one_version_is_not_mixed() -> None:
    got = governing(CONV, status_with("0.2.23", "0.2.23"))
    assert not got.mixed and got.source == "replicas" and "0.2.23" in got.message


def test_facts_without_a_reported_version() -> None:
    newest = str(versions.generation_for(None)["since"])
    for spec, status in ((CONV, status_with(None)), (CONV, {}), (DB, status_with("0.2.4"))):
        got = governing(spec, status)
        assert (got.effective, got.source, got.hub_version) == (newest, "facts", None)
        assert "newest Hub generation" in got.message
    assert "no spec.convergence" in governing(DB, status_with("0.2.4")).message


def test_mixed_event_once_per_rolling_upgrade() -> None:
    now = governing(CONV, status_with("0.2.4", "0.2.23"))
    event = mixed_event({}, now)
    assert event is not None and event.reason is EventReason.HUB_VERSIONS_MIXED and "0.2.4" in event.message
    assert mixed_event({"hubVersion": now.as_status()}, now) is None
    assert mixed_event({}, governing(CONV, status_with("0.2.23"))) is None


def test_old_replica_refuses_a_newer_section_with_guidance() -> None:
    raw = {**CONV, "settings": {"gcp_iam": {"gcp_iam_check_mode": "enforce"}}}
    hub = governing(raw, status_with("0.2.4", "0.2.23"))
    spec, errors = validate_spec(raw, hub_version=hub.hub_version)
    assert spec is None
    error = next(e for e in errors if e.path == "spec.settings.gcp_iam")
    assert "the oldest running replica runs 0.2.4" in error.reason
    assert "Upgrade every replica" in error.hint and "drop" in error.hint
    newer = governing(raw, status_with("0.2.23", "0.2.23"))
    assert validate_spec(raw, hub_version=newer.hub_version)[0] is not None


def test_live_schema_of_the_governing_version_validates_sections() -> None:
    """A live schema narrower than the facts (a running Hub's) is what the section is checked against."""
    live = parse_schema_response(
        {
            "sections": {
                "maintenance": {
                    "schema": {
                        "type": "object",
                        "properties": {"admin_mode": {"type": "boolean"}},
                        "additionalProperties": False,
                    },
                    "koanf_paths": ["server.maintenance"],
                }
            }
        },
        "0.2.23",
    )
    raw = {**CONV, "settings": {"maintenance": {"admin_mode": True, "maintenance_message": "down"}}}
    assert validate_spec(raw, hub_version="0.2.23")[0] is not None
    spec, errors = validate_spec(raw, hub_version="0.2.23", live=live)
    assert spec is None and any("running Hub's schema (version 0.2.23)" in e.reason for e in errors)


def test_changed_asks_for_a_reconcile_only_when_the_governing_version_moved() -> None:
    from hubsettings_operator.status.hub_version import changed

    mixed = status_with("0.2.4", "0.2.23")
    validated = governing(CONV, mixed).as_status()
    assert not changed({"spec": CONV, "status": {**mixed}})  # no reconcile wrote hubVersion yet
    assert not changed({"spec": CONV, "status": {**mixed, "hubVersion": validated}})
    upgraded = status_with("0.2.23", "0.2.23")
    assert changed({"spec": CONV, "status": {**upgraded, "hubVersion": validated}})
    facts_said = governing(CONV, {}).as_status()
    assert changed({"spec": CONV, "status": {**mixed, "hubVersion": facts_said}})  # first versions reported
    pinned = {**CONV, "hubVersion": "0.2.6"}
    said = governing(pinned, mixed).as_status()
    assert not changed({"spec": pinned, "status": {**upgraded, "hubVersion": said}})  # spec.hubVersion wins
