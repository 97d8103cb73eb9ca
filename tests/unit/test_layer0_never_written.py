"""No Layer 0 value is ever written to the database, whatever the spec says (issue 7)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import Profile
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.layouts import desired_rows

LAYER0 = [s for s in catalog.settings() if s.layer == 0]
BASE: dict[str, Any] = {
    "database": {"secretRef": {"name": "db"}},
    "settings": {"maintenance": {"admin_mode": True}},
}


def _places(key: str, value: Any) -> list[dict[str, Any]]:
    """Every place a user could try to smuggle a Layer 0 key into the written rows."""
    short = key.rsplit(".", 1)[-1]
    return [
        {**BASE, "settings": {**BASE["settings"], short: value}},
        {**BASE, "settings": {**BASE["settings"], key: value}},
        {**BASE, "settings": {"maintenance": {"admin_mode": True, short: value}}},
        {**BASE, "extraSettings": {key: value}},
        # (A bare short name such as `enabled` in extraSettings is just a row key: the Hub would never read
        # it as a bootstrap value, so only the full path is tried there.)
        {**BASE, "bootstrap": {"expected": {key: value}}},
    ]


def _written(rows: dict[str, Any]) -> str:
    import json

    return json.dumps(rows, sort_keys=True)


@pytest.mark.parametrize("setting", LAYER0, ids=lambda s: s.key)
def test_layer0_key_never_reaches_rows(setting: catalog.Setting) -> None:
    marker = "layer0-marker-value"
    for raw in _places(setting.key, marker):
        spec, errors = validate_spec(raw)
        if spec is None:
            assert errors  # refused, with a reason
            continue
        for profile in (Profile.SCION, Profile.PROPOSAL):
            rows = desired_rows(spec, profile)
            assert marker not in _written(rows), (setting.key, raw)
            assert not any(catalog.is_layer0_path(k) for k in rows)


@given(
    key=st.sampled_from([s.key for s in LAYER0]),
    value=st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
)
@settings(max_examples=200)
def test_bootstrap_expected_is_checked_not_written(key: str, value: Any) -> None:
    raw = {**BASE, "bootstrap": {"expected": {key: value}}}
    spec, errors = validate_spec(raw)
    assert spec is not None, errors
    for profile in (Profile.SCION, Profile.PROPOSAL):
        rows = desired_rows(spec, profile)
        assert key not in rows and set(rows) <= {"maintenance", "admin_mode"}
