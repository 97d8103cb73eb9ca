"""The pure status rules of the reconcile (status/rules.py): kstatus transitions, progress deadline, generations,
finalizer, events. The Ready gate: test_status_ready.py; drift and convergence verdicts: test_status_checks.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hubsettings_operator.conditions import Condition, CondType, Desired, EventReason, EventType, Reason
from hubsettings_operator.status import rules as status


def _merge(existing: list[Condition], verdict: status.Verdict, generation: int, now: str) -> list[Condition]:
    return status.merge(existing, verdict.set, generation=generation, now=now, remove=verdict.remove)


def test_last_transition_time_moves_only_on_status_change() -> None:
    first = _merge([], status.success("ok"), 1, "t1")
    ready = status.get(first, CondType.READY)
    assert ready is not None and ready.lastTransitionTime == "t1"
    second = _merge(first, status.success("other message"), 2, "t2")
    ready2 = status.get(second, CondType.READY)
    assert ready2 is not None and ready2.lastTransitionTime == "t1" and ready2.message == "other message"
    third = _merge(second, status.transient_failure(Reason.DATABASE_UNAVAILABLE, "down"), 2, "t3")
    assert status.get(third, CondType.READY).lastTransitionTime == "t3"  # type: ignore[union-attr]
    assert status.get(third, CondType.RECONCILING) is not None and status.get(third, CondType.STALLED) is None


def test_stalled_and_suspended_shapes() -> None:
    merged = _merge([], status.stalled(Reason.INVALID_SPEC, "spec.x: bad"), 1, "t")
    types = {c.type: (c.status, c.reason) for c in merged}
    assert types == {
        "Ready": ("False", "InvalidSpec"),
        "Synced": ("False", "InvalidSpec"),
        "Stalled": ("True", "InvalidSpec"),
    }
    merged = _merge(merged, status.suspended(), 1, "t")
    assert {c.type for c in merged} == {"Ready", "Synced"}
    assert status.get(merged, CondType.READY).reason == "Suspended"  # type: ignore[union-attr]


def test_other_owners_conditions_are_kept() -> None:
    drifted = status.merge(
        [], [Desired(CondType.DRIFTED, True, Reason.BOOTSTRAP_MISMATCH, "x")], generation=1, now="t"
    )
    merged = _merge(drifted, status.success("ok"), 1, "t")
    assert status.get(merged, CondType.DRIFTED) is not None


def _status_of(verdict: status.Verdict, generation: int, now: str) -> dict[str, Any]:
    patch = status.render({}, status.StatusUpdate(verdict=verdict, generation=generation), now)
    assert patch
    return patch


def test_first_sight_is_reconciling_so_kstatus_reads_in_progress() -> None:
    st = _status_of(status.progressing(), 1, "t")
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Reconciling"]["status"] == "True" and conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == Reason.PROGRESSING == conds["Reconciling"]["reason"]
    assert st["observedGeneration"] == 1 and "Stalled" not in conds


def test_transient_failure_turns_stalled_past_the_progress_deadline_and_back() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def secret_missing(old_status: dict[str, Any], after_seconds: int) -> status.Verdict:
        """The same transient failure (Secret not found), seen `after_seconds` after t0 with a 60 s deadline."""
        return status.failure(
            Reason.SECRET_NOT_FOUND,
            "no secret",
            transient=True,
            old_status=old_status,
            now=t0 + timedelta(seconds=after_seconds),
            deadline_seconds=60,
        )

    failing = _status_of(
        status.transient_failure(Reason.SECRET_NOT_FOUND, "no secret"), 3, status.rfc3339(t0)
    )
    within = secret_missing(old_status=failing, after_seconds=59)
    assert within.get(CondType.RECONCILING) is not None and within.get(CondType.STALLED) is None
    past = secret_missing(old_status=failing, after_seconds=61)
    stalled_cond = past.get(CondType.STALLED)
    assert stalled_cond is not None and stalled_cond.status and stalled_cond.reason is Reason.SECRET_NOT_FOUND
    assert CondType.RECONCILING in past.remove and "progress deadline" in stalled_cond.message
    # Stalled and retried: the deadline keeps counting from when Ready turned False (no flip-flop).
    merged = {**failing, **status.render(failing, status.StatusUpdate(verdict=past, generation=3), "t1")}  # type: ignore[dict-item]
    again = secret_missing(old_status=merged, after_seconds=120)
    assert again.get(CondType.STALLED) is not None
    # The cause goes: success removes Stalled.
    healed = status.render(merged, status.StatusUpdate(verdict=status.success("ok"), generation=3), "t2")
    assert healed is not None
    assert {c["type"] for c in healed["conditions"]} == {"Ready", "Synced"}
    # A permanent error is Stalled at once.
    assert status.failure(
        Reason.INVALID_SPEC, "x", transient=False, old_status={}, now=t0, deadline_seconds=60
    ).get(CondType.STALLED)


def test_an_older_generation_never_overwrites_a_newer_status() -> None:
    newer = _status_of(status.success("applied gen 5"), 5, "t")
    older = status.render(
        newer, status.StatusUpdate(verdict=status.success("applied gen 4"), generation=4), "t2"
    )
    assert older is None
    # The probe (generation None) keeps the observed generation for its conditions, top level untouched.
    down = status.render(
        newer,
        status.StatusUpdate(
            verdict=status.transient_failure(Reason.DATABASE_UNAVAILABLE, "down"), generation=None
        ),
        "t3",
    )
    assert down is not None and "observedGeneration" not in down
    assert {c["observedGeneration"] for c in down["conditions"]} == {5}
    # Nothing changed: an empty patch.
    assert (
        status.render(newer, status.StatusUpdate(verdict=status.success("applied gen 5"), generation=5), "t4")
        == {}
    )


def test_finalizer_branches() -> None:
    # Delete failed: retry, and status says why deletion is blocked, for the current generation.
    failed = status.finalize_failed("database db:5432/hub unavailable", 0, {}, generation=7)
    assert failed.retry and [e.reason for e in failed.events] == [EventReason.DELETE_FAILED]
    assert failed.update is not None and failed.update.generation == 7
    st = status.render({}, failed.update, "t")
    assert st is not None
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "Deleting"
    assert conds["Reconciling"]["status"] == "True" and conds["Reconciling"]["reason"] == "Deleting"
    assert "deletion blocked" in conds["Ready"]["message"] and st["observedGeneration"] == 7
    # Attempts exhausted without the annotation: still retrying, and the hint names the annotation.
    late = status.finalize_failed("down", status.DELETE_ATTEMPTS_BEFORE_RELEASE - 1, {}, generation=7)
    assert late.retry and status.FORCE_RELEASE_ANNOTATION in late.events[0].message
    # Released by the annotation: no retry, a FinalizerReleased warning, no status write.
    released = status.finalize_failed(
        "down",
        status.DELETE_ATTEMPTS_BEFORE_RELEASE - 1,
        {status.FORCE_RELEASE_ANNOTATION: "true"},
        generation=7,
    )
    assert not released.retry and released.update is None
    assert [e.reason for e in released.events] == [EventReason.FINALIZER_RELEASED]
    # Rows left (spec.database invalid) and rows deleted.
    left = status.finalize_invalid("hubsettings-operator:ns/x")
    assert not left.retry and left.events[0].reason is EventReason.ROWS_LEFT
    done = status.finalize_done(["access", "maintenance"], 2)
    assert not done.retry and "access, maintenance" in done.events[0].message
    assert done.events[0].type is EventType.NORMAL


def test_events_only_on_transitions_and_never_for_progress() -> None:
    verdict = status.transient_failure(Reason.DATABASE_UNAVAILABLE, "down")
    first = status.transition_events({}, verdict)
    assert [e.reason for e in first] == [Reason.DATABASE_UNAVAILABLE]
    st = _status_of(verdict, 1, "t")
    assert status.transition_events(st, verdict) == []
    assert status.transition_events({}, status.progressing()) == []
    assert status.transition_events({}, status.deleting("blocked")) == []


def test_health_probe_decision() -> None:
    invalid = _status_of(status.stalled(Reason.INVALID_SPEC, "x"), 1, "t")
    assert not status.should_probe(invalid)
    assert not status.should_probe(_status_of(status.suspended(), 1, "t"))
    owned = _status_of(status.stalled(Reason.KEY_OWNED_BY_OTHER, "x"), 1, "t")
    assert status.should_probe(owned) and status.should_probe({})
    assert status.is_ready(_status_of(status.success("ok"), 1, "t")) and not status.is_ready(owned)


def test_out_of_band_edits_are_named_by_key_never_by_value_and_once_under_report() -> None:
    from hubsettings_operator.spec.models import Profile
    from hubsettings_operator.table.plan import Action, Change, Plan
    from hubsettings_operator.table.store import ApplyResult

    secret_value = {"token": "value-never-in-events-42"}
    enforce = ApplyResult(
        profile=Profile.SCION,
        channel="scion_ev_global",
        plan=Plan(
            owner="hubsettings-operator:ns/hub",
            changes=(
                Change(
                    "access", Action.UPDATE, old=secret_value, new={"a": 1}, current_by="psql", conflict=True
                ),
            ),
        ),
        desired={"access": {"a": 1}},
    )
    _update, events = status.applied(enforce, {}, 2, "t")
    oob = [e for e in events if e.reason is EventReason.MODIFIED_OUT_OF_BAND]
    assert len(oob) == 1 and oob[0].type is EventType.WARNING
    assert "access" in oob[0].message and "overwritten" in oob[0].message
    assert "value-never-in-events-42" not in str(events)
    report = ApplyResult(
        profile=Profile.SCION,
        channel="scion_ev_global",
        plan=Plan(
            owner="hubsettings-operator:ns/hub",
            changes=(Change("access", Action.CONFLICT, old=secret_value, current_by="psql", conflict=True),),
        ),
        desired={"access": {"a": 1}},
    )
    update, events = status.applied(report, {}, 2, "t")
    assert [e.reason for e in events if e.reason is EventReason.MODIFIED_OUT_OF_BAND] == [
        EventReason.MODIFIED_OUT_OF_BAND
    ]
    # The next resync finds the same edit, already reported as left: no new event.
    _update, again = status.applied(report, update.fields, 2, "t2")
    assert not [e for e in again if e.reason is EventReason.MODIFIED_OUT_OF_BAND]
