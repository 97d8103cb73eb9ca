"""The one Ready gate (status/ready.py): spec.convergence.requiredForReady, from the reconcile and from the
convergence check."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.conditions import CondType, Desired, Reason
from hubsettings_operator.status.ready import gate_convergence, gate_reconcile


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
