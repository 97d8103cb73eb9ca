"""The planner under the per-section policy (Observe / Report / Enforce per section), its rendering, and the
CLI's exit codes. Pure: no database."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime

from hubsettings_operator import cli
from hubsettings_operator.cli.exitcodes import ExitCode, worst
from hubsettings_operator.spec.models import ConflictMode, Profile
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.apply import section_modes
from hubsettings_operator.table.diff import render
from hubsettings_operator.table.plan import (
    Action,
    CurrentRow,
    WrittenRecord,
    make_plan,
    owner_marker,
    value_digest,
)

ME = owner_marker("ns", "me")
OTHER = owner_marker("ns", "other")
T = datetime(2026, 1, 1, tzinfo=UTC)
OBSERVE_MAINTENANCE = {"maintenance": ConflictMode.OBSERVE}


def row(key: str, value: object, by: str | None = ME) -> CurrentRow:
    return CurrentRow(key=key, value=value, updated_by=by, updated_at=T, revision=3, origin="managed")


def mode_of(modes: dict[str, ConflictMode]) -> object:
    return lambda key: modes.get(key, ConflictMode.ENFORCE)


def plan_with(current: dict[str, CurrentRow], desired: dict[str, object], **kw: object):  # type: ignore[no-untyped-def]
    return make_plan(current, desired, ME, mode_of=mode_of(OBSERVE_MAINTENANCE), **kw)  # type: ignore[arg-type]


def test_observe_never_writes_a_section_that_differs_whoever_wrote_it() -> None:
    on = {"admin_mode": True}
    off = {"admin_mode": False}
    for by in ("admin@example.com", ME, OTHER, None):
        plan = plan_with({"maintenance": row("maintenance", on, by=by)}, {"maintenance": off})
        (change,) = plan.changes
        assert change.action is Action.OBSERVED and change.observed, by
        assert (change.old, change.new) == (on, off)
        assert plan.is_noop and not plan.value_changes and not plan.conflicts and not plan.owned_by_other


def test_observe_never_inserts_nor_prunes_nor_adopts() -> None:
    missing = plan_with({}, {"maintenance": {"admin_mode": False}})
    assert [c.action for c in missing.changes] == [Action.OBSERVED] and missing.is_noop
    # A row of ours no longer listed is not pruned while its section is observed.
    kept = plan_with({"maintenance": row("maintenance", {"admin_mode": True})}, {})
    assert kept.changes == () and kept.is_noop
    # Same value, written by the Hub's seed: Enforce would adopt (a write); Observe only compares.
    same = plan_with(
        {"maintenance": row("maintenance", {"admin_mode": False}, by=None)},
        {"maintenance": {"admin_mode": False}},
    )
    assert (
        [c.action for c in same.changes] == [Action.UNCHANGED] and same.changes[0].observed and same.is_noop
    )


def test_observe_ignores_what_we_wrote_before() -> None:
    last = {"maintenance": WrittenRecord(revision=3, digest=value_digest({"admin_mode": False}))}
    plan = plan_with(
        {"maintenance": row("maintenance", {"admin_mode": True})},
        {"maintenance": {"admin_mode": False}},
        last_written=last,
    )
    assert [c.action for c in plan.changes] == [Action.OBSERVED] and plan.is_noop


def test_other_sections_keep_their_own_mode() -> None:
    modes = {"maintenance": ConflictMode.OBSERVE, "experiments": ConflictMode.REPORT}
    current = {
        "access": row("access", {"a": 1}, by="admin@example.com"),
        "experiments": row("experiments", {"x": True}, by="admin@example.com"),
        "maintenance": row("maintenance", {"admin_mode": True}, by="admin@example.com"),
    }
    desired = {"access": {"a": 2}, "experiments": {"x": False}, "maintenance": {"admin_mode": False}}
    plan = make_plan(current, desired, ME, conflicts=ConflictMode.ENFORCE, mode_of=mode_of(modes))  # type: ignore[arg-type]
    assert {c.key: c.action for c in plan.changes} == {
        "access": Action.UPDATE,  # Enforce: overwritten
        "experiments": Action.CONFLICT,  # Report: left as found
        "maintenance": Action.OBSERVED,  # Observe: compared only
    }
    assert [c.key for c in plan.value_changes] == ["access"]


def _spec(raw_policy: dict[str, object], extra: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    spec, errors = validate_spec(
        {
            "database": {"secretRef": {"name": "db"}},
            "settings": {"maintenance": {"admin_mode": False}, "access": {"admin_emails": ["a@b.co"]}},
            "extraSettings": extra or {},
            "policy": raw_policy,
        }
    )
    assert spec is not None, errors
    return spec


def test_section_modes_map_row_keys_to_sections_in_both_layouts() -> None:
    spec = _spec({"conflicts": "Report", "sections": {"maintenance": {"conflicts": "Observe"}}})
    modes_for = section_modes(spec)
    assert modes_for is not None
    scion, proposal = modes_for(Profile.SCION), modes_for(Profile.PROPOSAL)
    assert scion("maintenance") is ConflictMode.OBSERVE and scion("access") is ConflictMode.REPORT
    # The proposal layout stores maintenance as per-field keys: each follows its section's policy.
    assert proposal("admin_mode") is ConflictMode.OBSERVE
    assert proposal("maintenance_message") is ConflictMode.OBSERVE
    assert proposal("admin_emails") is ConflictMode.REPORT
    assert section_modes(_spec({})) is None  # no per-section policy: the CR-wide mode, no per-key lookups


def test_section_modes_of_an_extra_settings_key() -> None:
    spec = _spec({"sections": {"newsection": {"conflicts": "Observe"}}}, extra={"newsection": {"on": True}})
    modes_for = section_modes(spec)
    assert modes_for is not None
    assert modes_for(Profile.PROPOSAL)("newsection") is ConflictMode.OBSERVE


def test_render_never_says_no_changes_when_rows_are_held_back() -> None:
    owned = make_plan({"access": row("access", {"a": 1}, by=OTHER)}, {"access": {"a": 1}}, ME)
    text = render(owned)
    assert "No changes" not in text
    assert f"owned by {OTHER}; not written" in text and "1 not written" in text
    observed = plan_with(
        {"maintenance": row("maintenance", {"admin_mode": True}, by="admin@x.y")},
        {"maintenance": {"admin_mode": False}},
    )
    text = render(observed)
    assert "No changes" not in text
    assert "? maintenance (observed drift: policy Observe, not written)" in text
    assert "maintenance.admin_mode: true -> false" in text and "1 observed (differs, not written)" in text
    in_sync = plan_with(
        {"maintenance": row("maintenance", {"admin_mode": False}, by="admin@x.y")},
        {"maintenance": {"admin_mode": False}},
    )
    assert render(in_sync) == "No changes. The table matches the HubSettings.\n"


def test_exit_codes_are_one_set() -> None:
    # Every command exits with ExitCode: no module of the CLI keeps codes of its own.
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"{cli.__name__}.{info.name}")
        assert not [n for n in vars(module) if n.startswith("EXIT_")], info.name
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert worst([]) is ExitCode.OK
    assert worst([ExitCode.CHANGES, ExitCode.NOT_OWNED, ExitCode.OK]) is ExitCode.NOT_OWNED
    assert worst([ExitCode.NOT_OWNED, ExitCode.ERROR]) is ExitCode.ERROR
