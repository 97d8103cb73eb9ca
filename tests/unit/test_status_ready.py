"""The one Ready gate (status/ready.py): spec.convergence.requiredForReady, from the reconcile and from the
convergence check."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.conditions import CondType, Desired, Reason
from hubsettings_operator.status.ready import (
    PREFIX,
    after_convergence,
    gate_convergence,
    gate_reconcile,
    released_ready,
)


def body(required: bool, converged: str | None) -> dict[str, Any]:
    conds = [
        {"type": "Converged", "status": converged, "reason": "ReplicasBehind", "message": "hub-1 behind"}
    ]
    return {
        "spec": {"convergence": {"requiredForReady": required}},
        "status": {"conditions": conds if converged else []},
    }


READY = ([Desired(CondType.READY, True, Reason.SYNCED, "ok")], [])


def test_gate_reconcile() -> None:
    assert gate_reconcile(READY, body(False, "False"), changed=True) == READY
    assert gate_reconcile(READY, body(True, "True"), changed=False) == READY
    [gated], _ = gate_reconcile(READY, body(True, "True"), changed=True)
    assert gated.status is False and gated.reason is Reason.REPLICAS_BEHIND
    [gated], _ = gate_reconcile(READY, body(True, "False"), changed=False)
    assert gated.status is False and "hub-1 behind" in gated.message


def test_convergence_check_turns_ready_false_only_over_its_own_ready() -> None:
    behind = Desired(CondType.CONVERGED, False, Reason.LISTENER_MISSING, "hub-2 has no listener")
    spec = {"convergence": {"requiredForReady": True}}
    ready_true = {"conditions": [{"type": "Ready", "status": "True", "reason": "Synced"}]}
    gated = gate_convergence(ready_true, spec, behind)
    assert gated == Desired(
        CondType.READY,
        False,
        Reason.LISTENER_MISSING,
        "spec.convergence.requiredForReady: hub-2 has no listener",
    )
    db_down = {"conditions": [{"type": "Ready", "status": "False", "reason": "DatabaseUnavailable"}]}
    assert gate_convergence(db_down, spec, behind) is None, "another verdict's Ready=False is left alone"
    held = {"conditions": [{"type": "Ready", "status": "False", "reason": "ReplicasBehind"}]}
    assert gate_convergence(held, spec, behind) is not None
    assert gate_convergence(ready_true, {"convergence": {}}, behind) is None, "not required"
    done = Desired(CondType.CONVERGED, True, Reason.ALL_REPLICAS_LOADED, "3/3")
    assert gate_convergence(ready_true, spec, done) is None


def _status(ready: dict[str, Any], synced: dict[str, Any], **extra: Any) -> dict[str, Any]:
    conds = [{"type": "Ready", **ready}, {"type": "Synced", "observedGeneration": 3, **synced}]
    conds += [{"type": t, **c} for t, c in extra.items()]
    return {"observedGeneration": 3, "conditions": conds}


def test_ready_released_as_soon_as_converged() -> None:
    gated = {"status": "False", "reason": "ReplicasBehind", "message": PREFIX + "hub-0 behind"}
    ok = {"status": "True", "reason": "Applied", "message": "2 of 2 rows owned (scion)"}
    released = released_ready(_status(gated, ok), 3)
    assert released is not None and released.status is True and released.reason is Reason.SYNCED
    assert released.message == "2 of 2 rows owned (scion)"
    conflicts = {"status": "False", "reason": "ConflictsReported", "message": "1 conflict"}
    assert released_ready(_status(gated, conflicts), 3).reason is Reason.CONFLICTS_REPORTED  # type: ignore[union-attr]
    # Not the gate's doing, another generation, a failure or a retry in progress: the reconciler decides.
    assert (
        released_ready(_status({"status": "False", "reason": "DatabaseUnavailable", "message": "x"}, ok), 3)
        is None
    )
    assert released_ready(_status(gated, ok), 4) is None
    assert released_ready(_status(gated, {"status": "False", "reason": "DatabaseUnavailable"}), 3) is None
    assert released_ready(_status(gated, ok, Reconciling={"status": "True"}), 3) is None
    assert released_ready(_status({"status": "True", "reason": "Synced"}, ok), 3) is None


def test_convergence_check_holds_back_then_releases_ready_in_its_own_write() -> None:
    spec = {"convergence": {"requiredForReady": True}}
    ok = {"status": "True", "reason": "Applied", "message": "2 of 2 rows owned (scion)"}
    forbidden = Desired(CondType.CONVERGED, None, Reason.TOKEN_FORBIDDEN, "token forbidden: hub.config.read")
    held = after_convergence(_status({"status": "True", "reason": "Synced"}, ok), spec, forbidden, 3)
    assert held is not None and held.status is False and held.reason is Reason.TOKEN_FORBIDDEN
    done = Desired(CondType.CONVERGED, True, Reason.ALL_REPLICAS_LOADED, "2/2")
    gated = {"status": "False", "reason": held.reason.value, "message": held.message}
    released = after_convergence(_status(gated, ok), spec, done, 3)
    assert released is not None and released.status is True and released.reason is Reason.SYNCED
    assert after_convergence(_status(gated, ok), {"convergence": {}}, done, 3) is None, "not required"
