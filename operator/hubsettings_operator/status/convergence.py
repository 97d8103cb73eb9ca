"""The convergence check's verdict: a `convergence.decide` Decision in, `status.convergence`, the Converged
condition, the Ready gate (status/ready.py: held back or released in the same write) and the Events out.

Pure. Events: one Warning per pod overdue (decide reports each once per written revisions), a Warning when the
token is rejected, a Normal `Converged` when the replicas catch up after a change (not on the first check).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator.conditions import CondType, Desired, EventReason, EventType, Reason, find
from hubsettings_operator.convergence.decide import Decision
from hubsettings_operator.status import ready
from hubsettings_operator.status.rules import Event, StatusUpdate, Verdict

# What the convergence check owns in status: dropped by the reconcile once spec.convergence is gone.
SPEC_FIELD = "convergence"
STATUS_FIELD = "convergence"
CONDITIONS = (CondType.CONVERGED,)


def pending_write(status: Mapping[str, Any], generation: Any) -> str | None:
    """Why the written side is not settled (the current generation not yet Synced), or None."""
    synced = find(status, CondType.SYNCED) or {}
    if synced.get("status") != "True" or status.get("observedGeneration") != generation:
        return f"waiting for the settings of generation {generation} to be written (Synced is not True)"
    return None


def _without_checked_at(status: Mapping[str, Any] | None) -> Any:
    if not status:
        return status
    return {
        **status,
        "replicas": [{k: v for k, v in r.items() if k != "checkedAt"} for r in status.get("replicas") or []],
    }


def convergence_verdict(
    body: Mapping[str, Any], decision: Decision, *, timeout_s: float
) -> tuple[StatusUpdate, list[Event]]:
    """The status write and the Events of one convergence check of `body` (its status as last seen)."""
    status = body.get("status") or {}
    desired: list[Desired] = [decision.condition]
    generation = (body.get("metadata") or {}).get("generation")
    # Ready follows Converged in the same write: held back while not converged, released once converged.
    gated = ready.after_convergence(status, body.get("spec"), decision.condition, generation)
    if gated is not None:
        desired.append(gated)
    report = decision.status.model_dump(mode="json")
    if _without_checked_at(status.get("convergence")) == _without_checked_at(report):
        report = status["convergence"]  # only the check times moved: write nothing
    update = StatusUpdate(
        fields={"convergence": report},
        verdict=Verdict(tuple(desired)),
        generation=generation if isinstance(generation, int) else None,
        observe=False,  # convergence applies no spec: the top-level observedGeneration is the reconciler's
    )
    events = [
        Event(
            EventType.WARNING,
            Reason.REPLICAS_BEHIND,
            f"Hub pod {pod} has not loaded the written revisions within {timeout_s} s "
            f"(spec.convergence.timeoutSeconds): {decision.condition.message}",
        )
        for pod in decision.overdue
    ]
    before = find(status, CondType.CONVERGED)
    was = (before or {}).get("reason")
    now = decision.condition.reason.value
    if now != was and decision.token_rejected:
        events.append(Event(EventType.WARNING, decision.condition.reason, decision.condition.message))
    elif now != was and decision.converged and before is not None:
        events.append(Event(EventType.NORMAL, EventReason.CONVERGED, decision.condition.message))
    return update, events
