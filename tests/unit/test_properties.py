"""Property tests: catalog-valid specs round-trip; validation never raises on arbitrary input."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.layouts import desired_rows
from hubsettings_operator.table.plan import make_plan

emails = st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.(com|org|dev)", fullmatch=True)
durations = st.from_regex(r"[1-9][0-9]{0,3}(s|m|h)", fullmatch=True)
short_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)

access = st.fixed_dictionaries(
    {},
    optional={
        "admin_emails": st.lists(emails, max_size=4),
        "user_access_mode": st.sampled_from(["open", "invite_only", "domain_restricted"]),
        "authorized_domains": st.lists(st.from_regex(r"[a-z]{1,10}\.com", fullmatch=True), max_size=3),
    },
)
lifecycle = st.fixed_dictionaries(
    {},
    optional={
        "auto_suspend_stalled": st.booleans(),
        "soft_delete_retention": durations,
        "soft_delete_retain_files": st.booleans(),
    },
)
maintenance = st.fixed_dictionaries(
    {}, optional={"admin_mode": st.booleans(), "maintenance_message": short_text}
)
agent_defaults = st.fixed_dictionaries(
    {},
    optional={
        "default_template": short_text,
        "default_max_turns": st.integers(1, 10_000),
        "default_max_model_calls": st.integers(1, 10_000),
        "default_max_duration": durations,
    },
)
telemetry = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "hub": st.fixed_dictionaries({}, optional={"enabled": st.booleans(), "report_interval": durations}),
        "filter": st.fixed_dictionaries(
            {}, optional={"sampling": st.fixed_dictionaries({}, optional={"default": st.floats(0, 1)})}
        ),
        "resource": st.dictionaries(st.from_regex(r"[a-z.]{1,12}", fullmatch=True), short_text, max_size=3),
    },
)
settings_st = st.fixed_dictionaries(
    {},
    optional={
        "access": access,
        "lifecycle": lifecycle,
        "maintenance": maintenance,
        "agent_defaults": agent_defaults,
        "telemetry": telemetry,
    },
)
specs = st.fixed_dictionaries(
    {
        "database": st.fixed_dictionaries(
            {
                "secretRef": st.fixed_dictionaries(
                    {"name": st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)}
                )
            },
            optional={"profile": st.sampled_from(["auto", "scion", "proposal"])},
        ),
        "settings": settings_st,
    },
    optional={"suspend": st.booleans()},
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(specs)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_valid_specs_round_trip(raw: dict[str, Any]) -> None:
    spec, errors = validate_spec(raw)
    assert errors == [] and spec is not None
    dumped = spec.model_dump(mode="json", exclude_unset=True)
    again = HubSettingsSpec.model_validate(dumped)
    assert again == spec
    assert again.model_dump(mode="json", exclude_unset=True) == dumped
    # The rows it produces are stable too.
    for profile in (Profile.SCION, Profile.PROPOSAL):
        assert desired_rows(again, profile) == desired_rows(spec, profile)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
@settings(max_examples=300)
def test_validation_never_raises_on_arbitrary_input(raw: dict[str, Any]) -> None:
    spec, errors = validate_spec(raw)
    assert (spec is None) == bool(errors)


@given(
    st.fixed_dictionaries(
        {"database": st.just({"secretRef": {"name": "db"}})},
        optional={
            "settings": st.dictionaries(st.text(max_size=12), json_values, max_size=4),
            "extraSettings": st.dictionaries(st.text(max_size=12), json_values, max_size=4),
        },
    )
)
@settings(max_examples=300)
def test_plan_only_for_valid_specs(raw: dict[str, Any]) -> None:
    spec, errors = validate_spec(raw)
    if spec is None:
        assert errors
        return
    rows = desired_rows(spec, Profile.PROPOSAL)
    plan = make_plan({}, rows, "hubsettings-operator:ns/x")
    assert len(plan.writes) == len(rows)
