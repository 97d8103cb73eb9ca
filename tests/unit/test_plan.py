"""The pure planner: ownership, conflicts, pruning, adoption, JSON comparison."""

from __future__ import annotations

from datetime import UTC, datetime

from hubsettings_operator.spec.models import ConflictMode
from hubsettings_operator.table.plan import (
    Action,
    ConflictReason,
    CurrentRow,
    WrittenRecord,
    make_plan,
    owner_marker,
    settings_hash,
    value_digest,
)

ME = owner_marker("ns", "me")
OTHER = owner_marker("ns", "other")
T = datetime(2026, 1, 1, tzinfo=UTC)


def row(
    key: str, value: object, by: str | None = ME, origin: str | None = "managed", revision: int = 1
) -> CurrentRow:
    return CurrentRow(key=key, value=value, updated_by=by, updated_at=T, revision=revision, origin=origin)


def actions(plan: object) -> dict[str, Action]:
    return {c.key: c.action for c in plan.changes}  # type: ignore[attr-defined]


def test_insert_update_unchanged_and_prune() -> None:
    current = {
        "a": row("a", 1),
        "b": row("b", {"x": [1, 2]}),
        "gone": row("gone", True),
        "theirs": row("theirs", 1, by="x@y.z"),
    }
    plan = make_plan(current, {"a": 2, "b": {"x": [1, 2.0]}, "new": "v"}, ME)
    assert actions(plan) == {
        "a": Action.UPDATE,
        "b": Action.UNCHANGED,
        "new": Action.INSERT,
        "gone": Action.DELETE,
    }
    assert [c.key for c in plan.value_changes] == ["a", "new", "gone"]
    assert not make_plan(current, {"a": 2}, ME, prune=False).by_action(Action.DELETE)


def test_formatting_and_key_order_are_not_changes_but_types_are() -> None:
    current = {"a": row("a", {"b": 1, "a": [True]})}
    assert make_plan(current, {"a": {"a": [True], "b": 1.0}}, ME).is_noop
    assert actions(make_plan(current, {"a": {"a": [1], "b": 1}}, ME)) == {"a": Action.UPDATE}


def test_other_operator_marker_is_never_written() -> None:
    plan = make_plan({"a": row("a", 1, by=OTHER)}, {"a": 2}, ME)
    assert actions(plan) == {"a": Action.OWNED_BY_OTHER} and plan.is_noop
    assert plan.owned_by_other[0].current_by == OTHER


def test_released_owner_rows_are_adopted() -> None:
    plan = make_plan({"a": row("a", 1, by=OTHER)}, {"a": 2}, ME, released_owners=frozenset({OTHER}))
    [change] = plan.changes
    assert change.action is Action.UPDATE and not change.conflict
    same = make_plan({"a": row("a", 2, by=OTHER)}, {"a": 2}, ME, released_owners=frozenset({OTHER}))
    assert actions(same) == {"a": Action.ADOPT} and not same.value_changes


def test_hub_seed_rows_are_adopted_without_conflict() -> None:
    for by, origin in (("seed", "seeded"), (None, "seeded"), ("seed", None)):
        plan = make_plan({"a": row("a", 1, by=by, origin=origin)}, {"a": 1}, ME)
        assert actions(plan) == {"a": Action.ADOPT} and not plan.conflicts and not plan.value_changes


def test_out_of_band_edit_enforce_and_report() -> None:
    current = {"a": row("a", 1, by="admin@example.com")}
    enforce = make_plan(current, {"a": 2}, ME, conflicts=ConflictMode.ENFORCE)
    assert actions(enforce) == {"a": Action.UPDATE} and enforce.conflicts[0].conflict
    report = make_plan(current, {"a": 2}, ME, conflicts=ConflictMode.REPORT)
    assert actions(report) == {"a": Action.CONFLICT} and report.is_noop and report.conflicts
    # Same value under Report: nothing to report, nothing to write.
    assert make_plan(
        {"a": row("a", 2, by="admin@example.com")}, {"a": 2}, ME, conflicts=ConflictMode.REPORT
    ).is_noop


def test_prune_never_deletes_rows_of_others() -> None:
    current = {
        "x": row("x", 1, by=OTHER),
        "y": row("y", 1, by="seed", origin="seeded"),
        "_meta": row("_meta", {}, by=None),
    }
    assert make_plan(current, {}, ME).changes == ()


def test_own_row_not_yet_managed_is_adopted() -> None:
    assert actions(make_plan({"a": row("a", 1, origin="seeded")}, {"a": 1}, ME)) == {"a": Action.ADOPT}


def test_unparseable_row_is_rewritten() -> None:
    bad = CurrentRow(key="a", value="{not json", updated_by=ME, parse_error=True)
    assert actions(make_plan({"a": bad}, {"a": "{not json"}, ME)) == {"a": Action.UPDATE}


def test_settings_hash_is_canonical() -> None:
    assert settings_hash({"a": 1.0, "b": [1]}) == settings_hash({"b": [1], "a": 1})
    assert settings_hash({"a": 1}) != settings_hash({"a": True})


def test_own_row_edited_out_of_band_is_a_conflict_only_with_a_record_of_what_we_wrote() -> None:
    written = {"a": WrittenRecord(revision=3, digest=value_digest(1))}
    current = {"a": row("a", 5, by=ME)}  # our marker, but not the value we wrote
    without = make_plan(current, {"a": 1}, ME)
    assert [(c.action, c.conflict) for c in without.changes] == [(Action.UPDATE, False)]
    report = make_plan(current, {"a": 1}, ME, conflicts=ConflictMode.REPORT, last_written=written)
    [change] = report.changes
    assert change.action is Action.CONFLICT and change.reason is ConflictReason.MODIFIED_OUT_OF_BAND
    assert report.is_noop and report.out_of_band == [change]
    enforce = make_plan(current, {"a": 1}, ME, last_written=written)
    assert [(c.action, c.conflict) for c in enforce.changes] == [(Action.UPDATE, True)]
    # A spec change (the row still holds what we wrote) is a plain update; an edit that happens to equal
    # the desired value needs no write at all.
    assert (
        make_plan({"a": row("a", 1, by=ME)}, {"a": 2}, ME, last_written=written).changes[0].conflict is False
    )
    assert make_plan(current, {"a": 5}, ME, last_written=written).is_noop


def test_pruning_an_own_row_edited_out_of_band_follows_the_conflict_policy() -> None:
    written = {"a": WrittenRecord(revision=None, digest=value_digest(1))}
    current = {"a": row("a", 5, by=ME)}
    report = make_plan(current, {}, ME, conflicts=ConflictMode.REPORT, last_written=written)
    assert [(c.action, c.reason) for c in report.changes] == [
        (Action.CONFLICT, ConflictReason.MODIFIED_OUT_OF_BAND)
    ]
    enforce = make_plan(current, {}, ME, last_written=written)
    assert [(c.action, c.conflict) for c in enforce.changes] == [(Action.DELETE, True)]
