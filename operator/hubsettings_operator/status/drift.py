"""The drift check's verdict: a Layer 0 report in, `status.drift`, the Drifted condition and its Events out.

Pure. Drifted=True (BootstrapMismatch) while any selected pod differs; False with NoPods when no running pod
matches, else BootstrapConsistent. An Event marks each transition (DriftDetected / DriftCleared), none per
check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator import conditions as cond
from hubsettings_operator.conditions import CondType, Desired, Reason
from hubsettings_operator.spec.models import DriftStatus
from hubsettings_operator.status.rules import Event, StatusUpdate, Verdict

SHOWN_KEYS = 5
# What the drift check owns in status: dropped by the reconcile once spec.bootstrap is gone (status/checks.py).
SPEC_FIELD = "bootstrap"
STATUS_FIELD = "drift"
CONDITIONS = (CondType.DRIFTED,)


def drifted_condition(report: DriftStatus, outside: str | None) -> Desired:
    """The Drifted condition a report says; `outside`: why some pods may not be seen (named in the message)."""
    if report.checkedPods == 0:
        message = f"no running Hub pods match spec.bootstrap.podSelector ({report.skippedPods} skipped)"
        desired = Desired(CondType.DRIFTED, False, Reason.NO_PODS, message)
    elif report.items:
        keys = sorted({i.key for i in report.items})
        shown = ", ".join(keys[:SHOWN_KEYS])
        more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
        message = f"{report.driftedPods} of {report.checkedPods} pods differ on {shown}{more}"
        desired = Desired(CondType.DRIFTED, True, Reason.BOOTSTRAP_MISMATCH, message)
    else:
        message = f"{report.checkedPods} pods agree on their Layer 0 settings"
        desired = Desired(CondType.DRIFTED, False, Reason.BOOTSTRAP_CONSISTENT, message)
    if outside:
        desired = Desired(desired.type, desired.status, desired.reason, f"{message}; {outside}")
    return desired


def drift_verdict(
    report: DriftStatus, old_status: Mapping[str, Any], generation: int | None, *, outside: str | None
) -> tuple[StatusUpdate, list[Event]]:
    """The status write and the Events of one drift check."""
    desired = drifted_condition(report, outside)
    update = StatusUpdate(
        fields={"drift": report.model_dump(mode="json")},
        verdict=Verdict((desired,)),
        generation=generation,
        observe=False,  # drift applies no spec: the top-level observedGeneration is the reconciler's
    )
    before = cond.find(old_status, CondType.DRIFTED)
    drifted = bool(report.items)
    was = before is not None and before.get("status") == cond.CondStatus.TRUE
    events: list[Event] = []
    if drifted != was and (before is not None or drifted):
        # The message without the watch note, as before: the Event says what drifted.
        message = drifted_condition(report, None).message
        events.append(
            Event(cond.EventType.WARNING, cond.EventReason.DRIFT_DETECTED, message)
            if drifted
            else Event(cond.EventType.NORMAL, cond.EventReason.DRIFT_CLEARED, message)
        )
    return update, events
