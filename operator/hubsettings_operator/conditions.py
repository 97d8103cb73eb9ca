"""kstatus-compatible conditions: pure functions from a reconcile outcome to the `status.conditions` list.

kstatus (used by Flux, Argo CD via our Lua check, `kubectl wait`) reads `Reconciling=True` as in progress and
`Stalled=True` as failed, and `Ready` as the summary. The rules here:

- success: Ready=True, Synced=True; Reconciling and Stalled removed (abnormal-true conditions are only
  present while true, as kstatus recommends);
- transient failure (database down, secret missing, permission denied): Ready=False, Synced=False,
  Reconciling=True with the reason: the operator keeps retrying;
- spec the operator cannot apply (InvalidSpec, KeyOwnedByOther): Ready=False, Stalled=True: only a spec
  change (or the other owner going away) makes progress;
- suspended: Ready=False, Synced=False, reason Suspended, neither Reconciling nor Stalled.

`lastTransitionTime` changes only when a condition's status changes, so an unchanged outcome produces an
identical list and the operator can skip the status patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CondType(StrEnum):
    READY = "Ready"
    SYNCED = "Synced"
    DRIFTED = "Drifted"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    CONVERGED = "Converged"


class Reason(StrEnum):
    SYNCED = "Synced"
    APPLIED = "Applied"
    UP_TO_DATE = "UpToDate"
    CONFLICTS_REPORTED = "ConflictsReported"
    INVALID_SPEC = "InvalidSpec"
    DATABASE_UNAVAILABLE = "DatabaseUnavailable"
    PERMISSION_DENIED = "PermissionDenied"
    SCHEMA_MISMATCH = "SchemaMismatch"
    SECRET_NOT_FOUND = "SecretNotFound"
    KEY_OWNED_BY_OTHER = "KeyOwnedByOther"
    CONCURRENT_WRITE = "ConcurrentWrite"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    DELETING = "Deleting"
    BOOTSTRAP_MISMATCH = "BootstrapMismatch"
    BOOTSTRAP_CONSISTENT = "BootstrapConsistent"
    NO_PODS = "NoPods"
    ALL_REPLICAS_LOADED = "AllReplicasLoaded"
    REPLICAS_BEHIND = "ReplicasBehind"
    LISTENER_MISSING = "ListenerMissing"
    UNKNOWN = "Unknown"
    TOKEN_REJECTED = "TokenRejected"


class Condition(BaseModel):
    """A Kubernetes condition (metav1.Condition shape)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = Field(description="Condition type: Ready, Synced, Drifted, Reconciling or Stalled.")
    status: str = Field(description='"True", "False" or "Unknown".')
    reason: str = Field(description="CamelCase reason, e.g. Applied, InvalidSpec, DatabaseUnavailable.")
    message: str = Field(default="", description="Human-readable detail; never contains secret values.")
    lastTransitionTime: str = Field(default="", description="When status last changed (RFC 3339).")
    observedGeneration: int | None = Field(default=None, description="metadata.generation this reflects.")


@dataclass(frozen=True)
class Desired:
    """One condition as the outcome wants it (lastTransitionTime is filled by `merge`)."""

    type: CondType
    status: bool | None  # None: "Unknown"
    reason: Reason
    message: str = ""


def _status_str(value: bool | None) -> str:
    if value is None:
        return "Unknown"
    return "True" if value else "False"


def merge(
    existing: Sequence[Condition],
    desired: Iterable[Desired],
    *,
    generation: int | None,
    now: str,
    remove: Iterable[CondType] = (),
    keep_others: bool = True,
) -> list[Condition]:
    """New condition list: `desired` set, `remove` dropped, others kept (e.g. Drifted, owned by the drift timer).

    Message length is capped so status never grows unbounded.
    """
    by_type = {c.type: c for c in existing}
    out: dict[str, Condition] = dict(by_type) if keep_others else {}
    for t in remove:
        out.pop(t.value, None)
    for d in desired:
        old = by_type.get(d.type.value)
        status = _status_str(d.status)
        transition = old.lastTransitionTime if old is not None and old.status == status else now
        out[d.type.value] = Condition(
            type=d.type.value,
            status=status,
            reason=d.reason.value,
            message=d.message[:1024],
            lastTransitionTime=transition,
            observedGeneration=generation,
        )
    order = [t.value for t in CondType]
    return sorted(out.values(), key=lambda c: (order.index(c.type) if c.type in order else 99, c.type))


def success(message: str, reason: Reason = Reason.APPLIED) -> tuple[list[Desired], list[CondType]]:
    return (
        [
            Desired(CondType.READY, True, Reason.SYNCED, message),
            Desired(CondType.SYNCED, True, reason, message),
        ],
        [CondType.RECONCILING, CondType.STALLED],
    )


def transient_failure(reason: Reason, message: str) -> tuple[list[Desired], list[CondType]]:
    return (
        [
            Desired(CondType.READY, False, reason, message),
            Desired(CondType.SYNCED, False, reason, message),
            Desired(CondType.RECONCILING, True, reason, message),
        ],
        [CondType.STALLED],
    )


def stalled(reason: Reason, message: str) -> tuple[list[Desired], list[CondType]]:
    return (
        [
            Desired(CondType.READY, False, reason, message),
            Desired(CondType.SYNCED, False, reason, message),
            Desired(CondType.STALLED, True, reason, message),
        ],
        [CondType.RECONCILING],
    )


def suspended() -> tuple[list[Desired], list[CondType]]:
    msg = "spec.suspend is true: nothing is written; drift is still reported"
    return (
        [
            Desired(CondType.READY, False, Reason.SUSPENDED, msg),
            Desired(CondType.SYNCED, False, Reason.SUSPENDED, msg),
        ],
        [CondType.RECONCILING, CondType.STALLED],
    )


def get(conditions: Sequence[Condition], ctype: CondType) -> Condition | None:
    return next((c for c in conditions if c.type == ctype.value), None)
