"""The one Ready gate: `spec.convergence.requiredForReady` keeps Ready False until the Converged condition is True.

Two callers, one rule: the reconcile (a Ready=True outcome is held back, `gate_reconcile`) and the convergence
check (a Ready that is True, or already held back by this gate, turns False when the replicas are not
converged, `gate_convergence`; and once Converged turns True, a Ready held back here is released at once,
`released_ready`, not at the next reconcile). A Ready=False written for another reason (database down,
invalid spec) is never touched by the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator.conditions import CondType, Desired, Reason, find

# The Ready reasons this gate writes (a Ready=False with another reason is someone else's verdict).
GATE_REASONS = frozenset(
    {
        Reason.REPLICAS_BEHIND,
        Reason.LISTENER_MISSING,
        Reason.UNKNOWN,
        Reason.TOKEN_REJECTED,
        Reason.TOKEN_FORBIDDEN,
        Reason.SECTIONS_UNKNOWN_TO_REPLICA,
    }
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


def released_ready(status: Mapping[str, Any], generation: object) -> Desired | None:
    """The Ready a convergence round gives when Converged has just turned True under requiredForReady: the
    Ready the reconciler's last outcome gave (Synced / ConflictsReported), so Ready follows Converged at once
    instead of at the next reconcile. None when Ready is not held by this gate, or the reconciler's outcome
    for this generation is not a success (then the reconciler decides)."""
    ready, synced = find(status, CondType.READY) or {}, find(status, CondType.SYNCED) or {}
    gated = ready.get("status") == "False" and str(ready.get("message") or "").startswith(PREFIX)
    if not gated or ready.get("reason") not in {r.value for r in GATE_REASONS}:
        return None
    if (
        find(status, CondType.STALLED) is not None
        or (find(status, CondType.RECONCILING) or {}).get("status") == "True"
    ):
        return None
    if status.get("observedGeneration") != generation or synced.get("observedGeneration") != generation:
        return None
    message = str(synced.get("message") or "")
    if synced.get("status") == "True":
        return Desired(CondType.READY, True, Reason.SYNCED, message)
    if synced.get("reason") == Reason.CONFLICTS_REPORTED.value:
        return Desired(CondType.READY, True, Reason.CONFLICTS_REPORTED, message)
    return None


def after_convergence(
    status: Mapping[str, Any], spec: Mapping[str, Any] | None, converged: Desired, generation: object
) -> Desired | None:
    """The Ready a convergence check writes, if any: held back while the replicas are not converged
    (`gate_convergence`), released as soon as they are (`released_ready`)."""
    if converged.status is not True:
        return gate_convergence(status, spec, converged)
    return released_ready(status, generation) if required_for_ready(spec) else None
