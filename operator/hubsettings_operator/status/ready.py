"""The one Ready gate: `spec.convergence.requiredForReady` keeps Ready False until the Converged condition is True.

Two callers, one rule: the reconcile (a Ready=True outcome is held back, `gate_reconcile`) and the convergence
check (a Ready that is True, or already held back by this gate, turns False when the replicas are not
converged, `gate_convergence`). A Ready=False written for another reason (database down, invalid spec) is
never touched by the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator.conditions import CondType, Desired, Reason, find

# The Ready reasons this gate writes (a Ready=False with another reason is someone else's verdict).
GATE_REASONS = frozenset(
    {Reason.REPLICAS_BEHIND, Reason.LISTENER_MISSING, Reason.UNKNOWN, Reason.TOKEN_REJECTED}
)
PREFIX = "spec.convergence.requiredForReady: "


def required_for_ready(spec: Mapping[str, Any] | None) -> bool:
    return bool(((spec or {}).get("convergence") or {}).get("requiredForReady"))


def held_back(converged: Mapping[str, Any] | None, *, changed: bool) -> Desired | None:
    """The Ready=False the gate wants given the Converged condition (`status`, `reason`, `message` as the API
    writes them), or None when Ready may be True. `changed`: rows were just written, so whatever Converged
    says is about older revisions."""
    if changed or converged is None:
        detail = "waiting for the Hub replicas to load the revisions just written"
        return Desired(CondType.READY, False, Reason.REPLICAS_BEHIND, PREFIX + detail)
    if converged.get("status") == "True":
        return None
    reason = converged.get("reason")
    gate_reason = Reason(reason) if reason in {r.value for r in GATE_REASONS} else Reason.UNKNOWN
    return Desired(CondType.READY, False, gate_reason, PREFIX + str(converged.get("message") or ""))


def gate_reconcile(
    desired: tuple[list[Desired], list[CondType]], body: Mapping[str, Any], *, changed: bool
) -> tuple[list[Desired], list[CondType]]:
    """A reconcile's Ready=True stays Ready=False until Converged (as it stands in status) is True."""
    if not required_for_ready(body.get("spec")):
        return desired
    wanted, remove = desired
    ready = next((d for d in wanted if d.type is CondType.READY), None)
    if ready is None or ready.status is not True:
        return desired
    gated = held_back(find(body.get("status"), CondType.CONVERGED), changed=changed)
    if gated is None:
        return desired
    return ([gated if d is ready else d for d in wanted], remove)


def gate_convergence(
    status: Mapping[str, Any], spec: Mapping[str, Any] | None, converged: Desired
) -> Desired | None:
    """The Ready=False a convergence check adds: only over a Ready that is True or already held back here."""
    if not required_for_ready(spec) or converged.status is True:
        return None
    ready = find(status, CondType.READY) or {}
    if ready.get("status") != "True" and ready.get("reason") not in {r.value for r in GATE_REASONS}:
        return None
    as_written = {"status": "False" if converged.status is False else "Unknown"}
    return held_back(
        {**as_written, "reason": converged.reason.value, "message": converged.message}, changed=False
    )
