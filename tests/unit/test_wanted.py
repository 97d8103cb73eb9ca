"""`table/wanted.py`: the wanted rows' canonical texts computed once per spec, and the same figures as before."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.plan import canonical_json, settings_hash, value_digest
from hubsettings_operator.table.wanted import Wanted, WantedCache

ROWS: dict[str, Any] = {
    "maintenance": {"admin_mode": True, "window": 2.0, "message": 'é "quoted"'},
    "access": {"admin_emails": ["ops@example.com"], "n": 1},
    "ü key": [1.5, None, {"b": 1, "a": 2}],
}


def test_texts_digests_and_hash_are_those_of_the_plan_functions() -> None:
    wanted = Wanted.of(ROWS)
    assert dict(wanted.canonical) == {k: canonical_json(v) for k, v in ROWS.items()}
    assert dict(wanted.digests) == {k: value_digest(v) for k, v in ROWS.items()}
    assert wanted.settings_hash(ROWS) == settings_hash(ROWS)
    subset = ["access", "ü key"]
    assert wanted.settings_hash(subset) == settings_hash({k: ROWS[k] for k in subset})
    assert wanted.settings_hash([]) == settings_hash({})


def test_one_wanted_per_spec_instance_and_profile() -> None:
    cache = WantedCache(entries=2)
    calls: list[str] = []

    def rows_for(tag: str) -> Any:
        def rows() -> dict[str, Any]:
            calls.append(tag)
            return {"k": tag}

        return rows

    spec_a, spec_b = object(), object()
    first = cache.get(spec_a, Profile.SCION, rows_for("a"))
    assert cache.get(spec_a, Profile.SCION, rows_for("a")) is first
    assert cache.get(spec_a, Profile.PROPOSAL, rows_for("a-proposal")).rows == {"k": "a-proposal"}
    assert cache.get(spec_b, Profile.SCION, rows_for("b")).rows == {"k": "b"}  # evicts spec_a/scion
    again = cache.get(spec_a, Profile.SCION, rows_for("a"))
    assert again is not first and again.rows == {"k": "a"}
    assert calls == ["a", "a-proposal", "b", "a"]
