"""`table/rowcache.py`: the read version moves on any difference from the previous read (and only then), plans
are kept per owner only for the same wanted rows and an equal intent, and the per-spec conflict modes are
stable functions that answer as the spec says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hubsettings_operator.spec.models import ConflictMode, Profile
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.apply import section_modes
from hubsettings_operator.table.plan import Plan
from hubsettings_operator.table.rowcache import RowCache
from hubsettings_operator.table.scion import LAYOUT
from hubsettings_operator.table.store import rows_from
from hubsettings_operator.table.wanted import WantedCache

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OWNER = "hubsettings-operator:scion/hub"
ROWS: list[tuple[Any, ...]] = [
    ("access", '{"admin_emails": ["ops@example.com"]}', OWNER, T0, 3, "managed"),
    ("maintenance", '{"admin_mode": true}', OWNER, T0, 7, "managed"),
]


def _read(cache: RowCache, rows: list[tuple[Any, ...]]) -> int:
    rows_from(LAYOUT, rows, cache)
    return cache.version


def test_the_same_read_keeps_the_version_and_the_parsed_rows() -> None:
    cache = RowCache()
    first = _read(cache, ROWS)
    parsed = dict(cache.parsed)
    assert _read(cache, list(reversed(ROWS))) == first  # order is not a difference
    assert cache.parsed == parsed and all(cache.parsed[r] is parsed[r] for r in parsed)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (1, '{"admin_mode": false}'),  # the value, revision and marker kept (an out-of-band edit)
        (1, '{"admin_mode": true }'),  # the same JSON spelled otherwise: still another read
        (2, "somebody"),
        (3, datetime(2026, 1, 2, tzinfo=UTC)),
        (4, 8),
        (5, "seeded"),
    ],
)
def test_any_column_of_any_row_changed_moves_the_version(column: int, value: Any) -> None:
    cache = RowCache()
    before = _read(cache, ROWS)
    edited = list(ROWS[1])
    edited[column] = value
    after = _read(cache, [ROWS[0], tuple(edited)])
    assert after != before
    assert _read(cache, [ROWS[0], tuple(edited)]) == after  # and stays while nothing else changes
    assert _read(cache, ROWS) not in (before, after)  # an edit undone is a new read too, never an old one


@pytest.mark.parametrize(
    "rows",
    [
        ROWS[:1],  # a row deleted
        [*ROWS, ("telemetry", '{"enabled": false}', None, T0, 1, "seeded")],  # a row added
        [ROWS[0], ROWS[0]],  # as many rows, but one twice (all of them cache hits)
        [ROWS[0], ("maintenance", None, OWNER, T0, 7, "managed")],  # a value that is not text (never cached)
        [],
    ],
)
def test_a_row_more_or_less_or_uncached_moves_the_version(rows: list[tuple[Any, ...]]) -> None:
    cache = RowCache()
    before = _read(cache, ROWS)
    assert _read(cache, rows) != before


def test_a_new_read_drops_every_plan() -> None:
    cache = RowCache()
    _read(cache, ROWS)
    wanted, intent = object(), ("intent",)
    memo = cache.memo(OWNER, wanted, intent)
    memo.plan, memo.version, memo.written, memo.must_write = Plan(owner=OWNER), cache.version, {}, False
    _read(cache, ROWS)
    assert cache.memo(OWNER, wanted, intent).plan is not None  # same read: kept
    _read(cache, ROWS[:1])
    kept = cache.memo(OWNER, wanted, intent)
    assert kept is memo and kept.plan is None and kept.written is None
    assert kept.must_write is False  # depends on the wanted rows and the intent only, not on the read


def test_a_memo_is_kept_only_for_the_same_wanted_rows_and_an_equal_intent() -> None:
    cache = RowCache()
    wanted = object()
    memo = cache.memo(OWNER, wanted, ("a", frozenset({"x"})))
    assert cache.memo(OWNER, wanted, ("a", frozenset({"x"}))) is memo  # equal intent
    assert cache.memo(OWNER, object(), ("a", frozenset({"x"}))) is not memo  # other wanted rows
    other = cache.memo(OWNER, wanted, ("a", frozenset({"x"})))
    assert cache.memo(OWNER, wanted, ("a", frozenset())) is not other  # another intent
    # Per owner: another owner's apply on the same table keeps its own.
    mine = cache.memo(OWNER, wanted, ("a",))
    cache.memo("hubsettings-operator:scion/other", wanted, ("a",))
    assert cache.memo(OWNER, wanted, ("a",)) is mine


def test_rendered_statements_are_kept_per_key() -> None:
    cache = RowCache()
    calls: list[str] = []

    def render(text: str) -> Any:
        def rendered() -> bytes:
            calls.append(text)
            return text.encode()

        return rendered

    assert cache.query(("scion", False), render("a")) == b"a"
    assert cache.query(("scion", False), render("b")) == b"a"
    assert cache.query(("scion", True), render("c")) == b"c"
    assert calls == ["a", "c"]


def _spec(policy: dict[str, Any]) -> Any:
    spec, errors = validate_spec(
        {
            "database": {"secretRef": {"name": "db"}},
            "settings": {"access": {"admin_emails": ["ops@example.com"]}},
            "extraSettings": {"custom.section": {"a": 1}},
            "policy": {
                **policy,
                "sections": {k: {"conflicts": v} for k, v in (policy.get("sections") or {}).items()},
            },
        }
    )
    assert spec is not None, errors
    return spec


def test_section_modes_are_stable_functions_answering_as_the_spec_says() -> None:
    spec = _spec({"conflicts": "Report", "sections": {"access": "Observe", "custom.section": "Enforce"}})
    modes_for = section_modes(spec)
    assert modes_for is not None
    mode_of = modes_for(Profile.SCION)
    assert modes_for(Profile.SCION) is mode_of
    for _ in range(2):  # the answers it remembers are the ones it computed
        assert mode_of("access") is ConflictMode.OBSERVE
        assert mode_of("custom.section") is ConflictMode.ENFORCE
        assert mode_of("maintenance") is ConflictMode.REPORT
    # The proposal profile maps keys to their sections: its own function.
    assert modes_for(Profile.PROPOSAL) is not mode_of
    assert modes_for(Profile.PROPOSAL)("admin_emails") is ConflictMode.OBSERVE
    assert section_modes(_spec({"conflicts": "Report"})) is None


def test_the_wanted_cache_hands_one_modes_function_per_spec_instance_and_policy() -> None:
    cache = WantedCache()
    spec = _spec({"sections": {"access": "Observe"}})
    made = cache.modes(spec, None, lambda: section_modes(spec))
    assert cache.modes(spec, None, lambda: section_modes(spec)) is made
    assert (
        cache.modes(spec, ConflictMode.REPORT, lambda: section_modes(spec, ConflictMode.REPORT)) is not made
    )
    other = _spec({"sections": {"access": "Report"}})
    theirs = cache.modes(other, None, lambda: section_modes(other))
    assert theirs is not made and theirs is not None and made is not None
    assert theirs(Profile.SCION)("access") is ConflictMode.REPORT
    assert made(Profile.SCION)("access") is ConflictMode.OBSERVE
