"""The drift and convergence checks' verdicts (status/drift.py, status/convergence.py): what each writes and
which Events it posts, from what the check read. Pure: no cluster, no database."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.conditions import CondType, EventReason, EventType, Reason
from hubsettings_operator.convergence.decide import PodProbe, Tracking, decide
from hubsettings_operator.spec.models import DriftItem, DriftStatus
from hubsettings_operator.status.convergence import convergence_verdict, pending_write
from hubsettings_operator.status.drift import drift_verdict

MISMATCH = DriftItem(pod="hub-0", container="hub", key="server.log_level", reason="mismatch")


def _drifted(status: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Drifted", "status": status, "reason": "x"}]}


def test_drift_appears_once_and_clears_once() -> None:
    report = DriftStatus(checkedPods=2, driftedPods=1, items=[MISMATCH])
    update, events = drift_verdict(report, {}, 3, outside=None)
    [drifted] = update.verdict.set if update.verdict else ()
    assert (drifted.type, drifted.status, drifted.reason) == (
        CondType.DRIFTED,
        True,
        Reason.BOOTSTRAP_MISMATCH,
    )
    assert drifted.message == "1 of 2 pods differ on server.log_level"
    assert update.fields["drift"]["driftedPods"] == 1 and update.observe is False
    assert [(e.type, e.reason) for e in events] == [(EventType.WARNING, EventReason.DRIFT_DETECTED)]
    assert drift_verdict(report, _drifted("True"), 3, outside=None)[1] == [], "no Event per check"
    _update, cleared = drift_verdict(DriftStatus(checkedPods=2), _drifted("True"), 3, outside=None)
    assert [(e.type, e.reason) for e in cleared] == [(EventType.NORMAL, EventReason.DRIFT_CLEARED)]
    assert drift_verdict(DriftStatus(checkedPods=2), {}, 3, outside=None)[1] == [], "clean from the start"


def test_drift_names_pods_outside_the_watch_in_the_condition_not_the_event() -> None:
    report = DriftStatus(checkedPods=0, skippedPods=1)
    update, _ = drift_verdict(report, {}, None, outside="not within --pod-selector")
    [cond] = update.verdict.set if update.verdict else ()
    assert cond.reason is Reason.NO_PODS and cond.status is False
    assert cond.message.endswith("(1 skipped); not within --pod-selector")
    _, events = drift_verdict(
        DriftStatus(checkedPods=1, driftedPods=1, items=[MISMATCH]), {}, 1, outside="far"
    )
    assert "far" not in events[0].message


def _probe(name: str, loaded: dict[str, int], checked_at: str = "t1") -> PodProbe:
    return PodProbe(name=name, uid=name, listening=True, loaded=loaded, checked_at=checked_at)


def test_convergence_verdict_events_and_unchanged_report() -> None:
    tracking = Tracking()
    behind = decide(
        {"access": 2}, [_probe("hub-0", {"access": 1})], tracking, now=0, timeout_s=5, channel="c"
    )
    body: dict[str, Any] = {"metadata": {"generation": 4}, "spec": {}, "status": {}}
    _, events = convergence_verdict(body, behind, timeout_s=5)
    assert events == []
    late = decide({"access": 2}, [_probe("hub-0", {"access": 1})], tracking, now=9, timeout_s=5, channel="c")
    update, events = convergence_verdict(body, late, timeout_s=5)
    assert [(e.type, e.reason) for e in events] == [(EventType.WARNING, Reason.REPLICAS_BEHIND)]
    assert "hub-0" in events[0].message and "within 5 s" in events[0].message
    assert update.generation == 4 and update.observe is False
    before = {"type": "Converged", "status": "False", "reason": "ReplicasBehind"}
    body["status"] = {"conditions": [before], "convergence": update.fields["convergence"]}
    done = decide(
        {"access": 2}, [_probe("hub-0", {"access": 2}, "t2")], tracking, now=10, timeout_s=5, channel="c"
    )
    update, events = convergence_verdict(body, done, timeout_s=5)
    assert [(e.type, e.reason) for e in events] == [(EventType.NORMAL, EventReason.CONVERGED)]
    body["status"]["convergence"] = update.fields["convergence"]
    again = decide(
        {"access": 2}, [_probe("hub-0", {"access": 2}, "t3")], tracking, now=11, timeout_s=5, channel="c"
    )
    update, _ = convergence_verdict(body, again, timeout_s=5)
    assert update.fields["convergence"] is body["status"]["convergence"], "only checkedAt moved: no write"


def test_pending_write_until_the_current_generation_is_synced() -> None:
    synced = {"conditions": [{"type": "Synced", "status": "True"}], "observedGeneration": 2}
    assert pending_write(synced, 2) is None
    assert "generation 3" in (pending_write(synced, 3) or "")
    assert pending_write({"observedGeneration": 2}, 2) is not None


def test_convergence_verdict_releases_a_held_ready_in_the_same_write() -> None:
    """requiredForReady: the round that finds the replicas converged writes Ready too (no wait for a reconcile)."""
    synced = {"type": "Synced", "status": "True", "reason": "Applied", "message": "1 of 1 rows owned"}
    held = {
        "type": "Ready",
        "status": "False",
        "reason": "ReplicasBehind",
        "message": "spec.convergence.requiredForReady: hub-0 behind on access",
    }
    body: dict[str, Any] = {
        "metadata": {"generation": 2},
        "spec": {"convergence": {"requiredForReady": True}},
        "status": {"observedGeneration": 2, "conditions": [{**synced, "observedGeneration": 2}, held]},
    }
    done = decide(
        {"access": 2}, [_probe("hub-0", {"access": 2})], Tracking(), now=0, timeout_s=5, channel="c"
    )
    update, _ = convergence_verdict(body, done, timeout_s=5)
    wanted = {d.type: d for d in (update.verdict.set if update.verdict else ())}
    assert wanted[CondType.CONVERGED].status is True
    assert (wanted[CondType.READY].status, wanted[CondType.READY].reason) == (True, Reason.SYNCED)
    behind = decide(
        {"access": 3}, [_probe("hub-0", {"access": 2})], Tracking(), now=0, timeout_s=5, channel="c"
    )
    update, _ = convergence_verdict(body, behind, timeout_s=5)
    wanted = {d.type: d for d in (update.verdict.set if update.verdict else ())}
    assert (wanted[CondType.READY].status, wanted[CondType.READY].reason) == (False, Reason.REPLICAS_BEHIND)


def test_reconcile_drops_what_a_disabled_check_left() -> None:
    from hubsettings_operator.status.checks import drop_disabled_checks
    from hubsettings_operator.status.rules import StatusUpdate, success

    old = {"drift": {"checkedPods": 1}, "convergence": {"summary": "1/1"}}
    update = StatusUpdate(verdict=success("ok"))
    drop_disabled_checks({"convergence": {}}, old, update)  # an empty section is no section
    assert update.fields == {"drift": None, "convergence": None}
    assert update.verdict is not None and {CondType.DRIFTED, CondType.CONVERGED} <= set(update.verdict.remove)
    kept = StatusUpdate(verdict=success("ok"))
    drop_disabled_checks({"bootstrap": {"expected": {}}, "convergence": {"port": 8080}}, old, kept)
    assert kept.fields == {} and kept.verdict == success("ok")
